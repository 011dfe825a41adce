//! When a secret rotates: RotateSecret's RotationRules (`AutomaticallyAfterDays`, or a
//! `ScheduleExpression` — `rate(N hours|days)` or a six-field UTC `cron(...)` — with an optional
//! `Duration` window), validated as Secrets Manager validates them, and the next rotation time they
//! give. Pure: time is a parameter.

use coffer_store::EpochMillis;

use crate::clock::MILLIS_PER_DAY;
use crate::error::{ServiceError, ServiceResult};

const MILLIS_PER_HOUR: i64 = 3_600_000;
const MILLIS_PER_MINUTE: i64 = 60_000;

/// A validated rotation schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every N days after the last rotation.
    AfterDays(i64),
    /// `rate(N hours)` / `rate(N days)`: every interval after the last rotation.
    Rate { millis: i64 },
    /// `cron(...)`: at the next matching minute (UTC).
    Cron(Box<CronExpression>),
}

/// The rules as RotateSecret takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationRulesInput {
    pub automatically_after_days: Option<i64>,
    pub schedule_expression: Option<String>,
    pub duration: Option<String>,
}

/// Validated rules: the schedule and the window length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRules {
    pub schedule: Schedule,
    /// How long after a scheduled time the rotation may still start.
    pub window_millis: Option<i64>,
}

impl RotationRules {
    /// Validates the rules; errors are Secrets Manager's InvalidParameterException.
    pub fn parse(input: &RotationRulesInput) -> ServiceResult<RotationRules> {
        let schedule = match (input.automatically_after_days, input.schedule_expression.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ServiceError::invalid_parameter(
                    "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.",
                ))
            }
            (Some(days), None) => {
                if !(1..=1000).contains(&days) {
                    return Err(ServiceError::invalid_parameter(
                        "The AutomaticallyAfterDays value must be between 1 and 1000 days.",
                    ));
                }
                Schedule::AfterDays(days)
            }
            (None, Some(expression)) => parse_expression(expression)?,
            (None, None) => {
                return Err(ServiceError::invalid_parameter(
                    "You must specify either AutomaticallyAfterDays or ScheduleExpression in RotationRules.",
                ))
            }
        };
        let window_millis = input.duration.as_deref().map(parse_duration).transpose()?;
        if let Some(window) = window_millis {
            let period = match &schedule {
                Schedule::AfterDays(days) => days * MILLIS_PER_DAY,
                Schedule::Rate { millis } => *millis,
                Schedule::Cron(_) => MILLIS_PER_DAY,
            };
            if window > period {
                return Err(ServiceError::invalid_parameter(
                    "The rotation window (Duration) can't extend into the next rotation window.",
                ));
            }
        }
        Ok(RotationRules { schedule, window_millis })
    }

    /// The next time the secret is due after a rotation (or the rules being set) at `from`.
    pub fn next_after(&self, from: EpochMillis) -> Option<EpochMillis> {
        match &self.schedule {
            Schedule::AfterDays(days) => Some(from + days * MILLIS_PER_DAY),
            Schedule::Rate { millis } => Some(from + millis),
            Schedule::Cron(cron) => cron.next_after(from),
        }
    }
}

/// `Nh`, 1 to 24 hours (`^[0-9]+h$`, 2..3 characters).
fn parse_duration(duration: &str) -> ServiceResult<i64> {
    let hours = duration
        .strip_suffix('h')
        .filter(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|h| (1..=24).contains(h));
    hours.map(|h| h * MILLIS_PER_HOUR).ok_or_else(|| {
        ServiceError::invalid_parameter(format!(
            "The Duration value {duration:?} is not valid: use a number of hours from 1h to 24h."
        ))
    })
}

fn parse_expression(expression: &str) -> ServiceResult<Schedule> {
    let invalid = || ServiceError::invalid_parameter(format!("The schedule expression {expression} is not valid."));
    let expression = expression.trim();
    if let Some(body) = expression.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        let mut parts = body.split_whitespace();
        let n: i64 = parts.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0).ok_or_else(invalid)?;
        let unit = parts.next().ok_or_else(invalid)?;
        if parts.next().is_some() {
            return Err(invalid());
        }
        let millis = match unit {
            "hour" | "hours" => n * MILLIS_PER_HOUR,
            "day" | "days" => n * MILLIS_PER_DAY,
            _ => return Err(invalid()),
        };
        if millis < 4 * MILLIS_PER_HOUR {
            return Err(ServiceError::invalid_parameter(
                "The schedule expression rate must be at least 4 hours apart.",
            ));
        }
        if millis > 1000 * MILLIS_PER_DAY {
            return Err(ServiceError::invalid_parameter("The rotation interval can't be longer than 1000 days."));
        }
        return Ok(Schedule::Rate { millis });
    }
    if let Some(body) = expression.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        return CronExpression::parse(body).map(|c| Schedule::Cron(Box::new(c))).ok_or_else(invalid);
    }
    Err(invalid())
}

/// A six-field cron expression (minutes hours day-of-month month day-of-week year), UTC, as
/// EventBridge and Secrets Manager read it: `*`, `?`, lists, ranges, `/` steps, month and weekday
/// names. Each field is the set of values it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpression {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    /// 1 = Sunday ... 7 = Saturday, as AWS numbers them.
    days_of_week: u8,
    /// `None` = every year; else the allowed years.
    years: Option<Vec<i32>>,
    day_of_month_any: bool,
    day_of_week_any: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl CronExpression {
    pub fn parse(body: &str) -> Option<CronExpression> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() != 6 {
            return None;
        }
        let minutes = field_set(fields[0], 0, 59, &[])?;
        let hours = field_set(fields[1], 0, 23, &[])?;
        let dom_any = fields[2] == "?" || fields[2] == "*";
        let dow_any = fields[4] == "?" || fields[4] == "*";
        // One of day-of-month and day-of-week must be `?`, as in EventBridge.
        if fields[2] != "?" && fields[4] != "?" {
            return None;
        }
        let days_of_month = field_set(fields[2], 1, 31, &[])?;
        let months = field_set(fields[3], 1, 12, &MONTHS)?;
        let days_of_week = field_set(fields[4], 1, 7, &WEEKDAYS)?;
        // Years do not fit a bitmask: the field is enumerated instead.
        let years = if fields[5] == "*" { None } else { Some(year_list(fields[5])?) };
        Some(CronExpression {
            minutes: minutes as u64,
            hours: hours as u32,
            days_of_month: days_of_month as u32,
            months: months as u16,
            days_of_week: days_of_week as u8,
            years,
            day_of_month_any: dom_any,
            day_of_week_any: dow_any,
        })
    }

    /// The first matching minute strictly after `from`, within the next five years.
    pub fn next_after(&self, from: EpochMillis) -> Option<EpochMillis> {
        let start_minute = from.div_euclid(MILLIS_PER_MINUTE) + 1;
        let first_day = (start_minute * MILLIS_PER_MINUTE).div_euclid(MILLIS_PER_DAY);
        for day in first_day..first_day + 5 * 366 {
            let date = time::Date::from_julian_day(day as i32 + 2_440_588).ok()?;
            if !self.matches_day(date) {
                continue;
            }
            for hour in 0..24i64 {
                if self.hours & (1 << hour) == 0 {
                    continue;
                }
                for minute in 0..60i64 {
                    if self.minutes & (1 << minute) == 0 {
                        continue;
                    }
                    let at = day * MILLIS_PER_DAY + hour * MILLIS_PER_HOUR + minute * MILLIS_PER_MINUTE;
                    if at >= start_minute * MILLIS_PER_MINUTE {
                        return Some(at);
                    }
                }
            }
        }
        None
    }

    fn matches_day(&self, date: time::Date) -> bool {
        if let Some(years) = &self.years {
            if !years.contains(&date.year()) {
                return false;
            }
        }
        if self.months & (1 << (date.month() as u8)) == 0 {
            return false;
        }
        let dom_ok = self.days_of_month & (1 << date.day()) != 0;
        let dow = date.weekday().number_from_sunday();
        let dow_ok = self.days_of_week & (1 << dow) != 0;
        match (self.day_of_month_any, self.day_of_week_any) {
            (true, true) => true,
            (true, false) => dow_ok,
            (false, true) => dom_ok,
            (false, false) => dom_ok && dow_ok,
        }
    }
}

/// The bitmask of values a field allows (`*`/`?` = all).
fn field_set(field: &str, min: u32, max: u32, names: &[&str]) -> Option<u128> {
    let mut set: u128 = 0;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, names)?, value(b, min, names)?)
        } else {
            let v = value(range, min, names)?;
            (v, if item.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return None;
        }
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    Some(set)
}

fn value(text: &str, min: u32, names: &[&str]) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return Some(n);
    }
    let upper = text.to_ascii_uppercase();
    names.iter().position(|n| *n == upper).map(|i| i as u32 + min)
}

fn year_list(field: &str) -> Option<Vec<i32>> {
    let mut years = Vec::new();
    for item in field.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b): (i32, i32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 200 {
                    return None;
                }
                years.extend(a..=b);
            }
            None => years.push(item.parse().ok()?),
        }
    }
    Some(years)
}

/// Seed 003's sensitivity levels and the rotation interval each implies when no rule is set.
pub fn default_interval_days(sensitivity: &str) -> Option<i64> {
    match sensitivity {
        "critical" => Some(14),
        "high" => Some(30),
        "medium" => Some(90),
        "low" => Some(365),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> EpochMillis {
        let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    fn rules(days: Option<i64>, expr: Option<&str>, duration: Option<&str>) -> ServiceResult<RotationRules> {
        RotationRules::parse(&RotationRulesInput {
            automatically_after_days: days,
            schedule_expression: expr.map(str::to_string),
            duration: duration.map(str::to_string),
        })
    }

    #[test]
    fn days_and_rates_add_their_interval() {
        let from = at("2026-01-10T08:30:00Z");
        assert_eq!(rules(Some(30), None, None).unwrap().next_after(from), Some(at("2026-02-09T08:30:00Z")));
        assert_eq!(
            rules(None, Some("rate(4 hours)"), Some("2h")).unwrap().next_after(from),
            Some(at("2026-01-10T12:30:00Z"))
        );
        assert_eq!(
            rules(None, Some("rate(10 days)"), None).unwrap().next_after(from),
            Some(at("2026-01-20T08:30:00Z"))
        );
    }

    #[test]
    fn invalid_rules_are_refused_as_aws_refuses_them() {
        for (days, expr, duration) in [
            (Some(0), None, None),
            (Some(1001), None, None),
            (Some(30), Some("rate(4 hours)"), None),
            (None, None, None),
            (None, Some("rate(3 hours)"), None),
            (None, Some("rate(4 weeks)"), None),
            (None, Some("every day"), None),
            (None, Some("cron(0 8 * * * *)"), None),
            (None, Some("cron(0 25 * * ? *)"), None),
            (Some(30), None, Some("25h")),
            (Some(30), None, Some("3d")),
            (None, Some("rate(4 hours)"), Some("5h")),
        ] {
            let e = rules(days, expr, duration).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::InvalidParameter, "{days:?} {expr:?} {duration:?}");
        }
    }

    #[test]
    fn cron_finds_the_next_matching_minute() {
        let daily = rules(None, Some("cron(0 16 * * ? *)"), Some("2h")).unwrap();
        assert_eq!(daily.next_after(at("2026-03-01T10:00:00Z")), Some(at("2026-03-01T16:00:00Z")));
        assert_eq!(daily.next_after(at("2026-03-01T16:00:00Z")), Some(at("2026-03-02T16:00:00Z")));
        // The first Sunday-to-Monday... every Monday at 06:30: 2026-03-02 is a Monday.
        let mondays = rules(None, Some("cron(30 6 ? * MON *)"), None).unwrap();
        assert_eq!(mondays.next_after(at("2026-03-01T00:00:00Z")), Some(at("2026-03-02T06:30:00Z")));
        assert_eq!(mondays.next_after(at("2026-03-02T06:30:00Z")), Some(at("2026-03-09T06:30:00Z")));
        // The first of each quarter at midnight, only in 2027.
        let quarterly = rules(None, Some("cron(0 0 1 JAN,APR,JUL,OCT ? 2027)"), None).unwrap();
        assert_eq!(quarterly.next_after(at("2026-05-01T00:00:00Z")), Some(at("2027-01-01T00:00:00Z")));
        assert_eq!(quarterly.next_after(at("2027-01-01T00:00:00Z")), Some(at("2027-04-01T00:00:00Z")));
        let stepped = rules(None, Some("cron(0/15 */6 ? * * *)"), None).unwrap();
        assert_eq!(stepped.next_after(at("2026-03-01T06:01:00Z")), Some(at("2026-03-01T06:15:00Z")));
        assert_eq!(stepped.next_after(at("2026-03-01T06:45:00Z")), Some(at("2026-03-01T12:00:00Z")));
    }

    #[test]
    fn sensitivities_imply_seed_intervals() {
        assert_eq!(default_interval_days("critical"), Some(14));
        assert_eq!(default_interval_days("high"), Some(30));
        assert_eq!(default_interval_days("medium"), Some(90));
        assert_eq!(default_interval_days("low"), Some(365));
        assert_eq!(default_interval_days("extreme"), None);
    }
}
