//! Condition operators: compiled once from the `Condition` element, evaluated against a context.

use std::net::IpAddr;

use crate::context::RequestContext;
use crate::error::PolicyError;
use crate::pattern::{compile_at, Pattern};

/// The comparison family of an operator (negation, `IfExists` and set qualifiers are separate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnEquals,
    ArnLike,
    Null,
}

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, PartialEq)]
enum Values {
    Str(Vec<Pattern>),
    Num(Vec<f64>),
    Date(Vec<i128>),
    Bool(Vec<bool>),
    Ip(Vec<Cidr>),
    Arn(Vec<ArnPattern>),
}

/// One operator applied to one key with its values (values ORed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    base: Base,
    negated: bool,
    if_exists: bool,
    qualifier: Qualifier,
    key: Box<str>,
    values: Values,
}

const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Base::StringEqualsIgnoreCase, true),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("NumericEquals", Base::NumericEquals, false),
    ("NumericNotEquals", Base::NumericEquals, true),
    ("NumericLessThan", Base::NumericLessThan, false),
    ("NumericLessThanEquals", Base::NumericLessThanEquals, false),
    ("NumericGreaterThan", Base::NumericGreaterThan, false),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals, false),
    ("DateEquals", Base::DateEquals, false),
    ("DateNotEquals", Base::DateEquals, true),
    ("DateLessThan", Base::DateLessThan, false),
    ("DateLessThanEquals", Base::DateLessThanEquals, false),
    ("DateGreaterThan", Base::DateGreaterThan, false),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals, false),
    ("Bool", Base::Bool, false),
    ("BinaryEquals", Base::BinaryEquals, false),
    ("IpAddress", Base::IpAddress, false),
    ("NotIpAddress", Base::IpAddress, true),
    ("ArnEquals", Base::ArnEquals, false),
    ("ArnNotEquals", Base::ArnEquals, true),
    ("ArnLike", Base::ArnLike, false),
    ("ArnNotLike", Base::ArnLike, true),
    ("Null", Base::Null, false),
];

/// Splits `ForAnyValue:StringLikeIfExists` into its parts; `None` for an unknown operator.
fn parse_operator(name: &str) -> Option<(Qualifier, Base, bool, bool)> {
    let (qualifier, rest) = if let Some(r) = strip_prefix_ci(name, "ForAnyValue:") {
        (Qualifier::ForAnyValue, r)
    } else if let Some(r) = strip_prefix_ci(name, "ForAllValues:") {
        (Qualifier::ForAllValues, r)
    } else {
        (Qualifier::None, name)
    };
    let lookup = |n: &str| OPERATORS.iter().find(|(op, _, _)| op.eq_ignore_ascii_case(n)).map(|&(_, b, neg)| (b, neg));
    if let Some((b, neg)) = lookup(rest) {
        return Some((qualifier, b, neg, false));
    }
    let stem = rest.len().checked_sub("IfExists".len()).and_then(|n| {
        let (stem, suffix) = (rest.get(..n)?, rest.get(n..)?);
        suffix.eq_ignore_ascii_case("IfExists").then_some(stem)
    })?;
    match lookup(stem) {
        Some((Base::Null, _)) | None => None,
        Some((b, neg)) => Some((qualifier, b, neg, true)),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Compiles one `Condition` element (`path` is e.g. `Statement[0].Condition`).
pub(crate) fn compile_conditions(
    path: &str,
    value: &serde_json::Value,
    variables: bool,
) -> Result<Vec<Condition>, PolicyError> {
    let serde_json::Value::Object(ops) = value else {
        return Err(PolicyError::invalid(path, "must be an object of condition operators"));
    };
    let mut out = Vec::new();
    for (op_name, block) in ops {
        let op_path = format!("{path}.{op_name}");
        let (qualifier, base, negated, if_exists) = parse_operator(op_name)
            .ok_or_else(|| PolicyError::invalid(&op_path, format!("unknown condition operator {op_name}")))?;
        let serde_json::Value::Object(keys) = block else {
            return Err(PolicyError::invalid(&op_path, "must be an object of condition keys"));
        };
        if keys.is_empty() {
            return Err(PolicyError::invalid(&op_path, "must name at least one condition key"));
        }
        for (key, raw) in keys {
            let key_path = format!("{op_path}.{key}");
            if key.is_empty() || key.chars().any(char::is_whitespace) {
                return Err(PolicyError::invalid(&key_path, "invalid condition key"));
            }
            let strings = condition_values(&key_path, raw)?;
            let values = compile_values(&key_path, base, &strings, variables)?;
            out.push(Condition {
                base,
                negated,
                if_exists,
                qualifier,
                key: key.to_lowercase().into_boxed_str(),
                values,
            });
        }
    }
    Ok(out)
}

/// A condition value is a string, number or boolean, or a list of those.
fn condition_values(path: &str, raw: &serde_json::Value) -> Result<Vec<String>, PolicyError> {
    use serde_json::Value as V;
    let scalar = |v: &V, p: &str| match v {
        V::String(s) => Ok(s.clone()),
        V::Number(n) => Ok(n.to_string()),
        V::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError::invalid(p, "condition values must be strings, numbers or booleans")),
    };
    match raw {
        V::Array(items) => items.iter().enumerate().map(|(i, v)| scalar(v, &format!("{path}[{i}]"))).collect(),
        other => Ok(vec![scalar(other, path)?]),
    }
}

fn compile_values(path: &str, base: Base, strings: &[String], variables: bool) -> Result<Values, PolicyError> {
    let each = |i: usize| if strings.len() == 1 { path.to_owned() } else { format!("{path}[{i}]") };
    Ok(match base {
        Base::StringEquals | Base::StringEqualsIgnoreCase | Base::BinaryEquals => Values::Str(
            strings
                .iter()
                .enumerate()
                .map(|(i, s)| compile_at(&each(i), s, false, variables))
                .collect::<Result<_, _>>()?,
        ),
        Base::StringLike => Values::Str(
            strings
                .iter()
                .enumerate()
                .map(|(i, s)| compile_at(&each(i), s, true, variables))
                .collect::<Result<_, _>>()?,
        ),
        Base::NumericEquals
        | Base::NumericLessThan
        | Base::NumericLessThanEquals
        | Base::NumericGreaterThan
        | Base::NumericGreaterThanEquals => Values::Num(
            strings
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    parse_number(s).ok_or_else(|| PolicyError::invalid(each(i), format!("invalid number '{s}'")))
                })
                .collect::<Result<_, _>>()?,
        ),
        Base::DateEquals
        | Base::DateLessThan
        | Base::DateLessThanEquals
        | Base::DateGreaterThan
        | Base::DateGreaterThanEquals => Values::Date(
            strings
                .iter()
                .enumerate()
                .map(|(i, s)| parse_date(s).ok_or_else(|| PolicyError::invalid(each(i), format!("invalid date '{s}'"))))
                .collect::<Result<_, _>>()?,
        ),
        Base::Bool | Base::Null => Values::Bool(
            strings
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    parse_bool(s).ok_or_else(|| PolicyError::invalid(each(i), format!("'{s}' is not true or false")))
                })
                .collect::<Result<_, _>>()?,
        ),
        Base::IpAddress => Values::Ip(
            strings
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    Cidr::parse(s)
                        .ok_or_else(|| PolicyError::invalid(each(i), format!("invalid IP address or CIDR '{s}'")))
                })
                .collect::<Result<_, _>>()?,
        ),
        Base::ArnEquals | Base::ArnLike => Values::Arn(
            strings
                .iter()
                .enumerate()
                .map(|(i, s)| ArnPattern::compile(&each(i), s, variables))
                .collect::<Result<_, _>>()?,
        ),
    })
}

impl Condition {
    /// Whether this condition holds for the request.
    pub(crate) fn holds(&self, ctx: &RequestContext) -> bool {
        let present = ctx.values(&self.key);
        if self.base == Base::Null {
            let absent = present.is_none_or(<[String]>::is_empty);
            let Values::Bool(wanted) = &self.values else {
                return false;
            };
            return wanted.contains(&absent);
        }
        let request = match present {
            Some(v) if !v.is_empty() => v,
            _ => {
                return self.if_exists
                    || match self.qualifier {
                        Qualifier::ForAllValues => true,
                        Qualifier::ForAnyValue => false,
                        Qualifier::None => self.negated,
                    }
            }
        };
        match self.qualifier {
            Qualifier::None => request.iter().any(|r| self.matches(r, ctx)) != self.negated,
            Qualifier::ForAnyValue => request.iter().any(|r| self.matches(r, ctx) != self.negated),
            Qualifier::ForAllValues => request.iter().all(|r| self.matches(r, ctx) != self.negated),
        }
    }

    /// The positive comparison: whether one request value matches any of the policy values.
    fn matches(&self, r: &str, ctx: &RequestContext) -> bool {
        match &self.values {
            Values::Str(patterns) => {
                let ci = self.base == Base::StringEqualsIgnoreCase;
                patterns.iter().any(|p| p.matches(r, ci, ctx))
            }
            Values::Num(nums) => {
                let Some(x) = parse_number(r) else {
                    return false;
                };
                nums.iter().any(|&n| match self.base {
                    Base::NumericEquals => x == n,
                    Base::NumericLessThan => x < n,
                    Base::NumericLessThanEquals => x <= n,
                    Base::NumericGreaterThan => x > n,
                    _ => x >= n,
                })
            }
            Values::Date(dates) => {
                let Some(x) = parse_date(r) else {
                    return false;
                };
                dates.iter().any(|&d| match self.base {
                    Base::DateEquals => x == d,
                    Base::DateLessThan => x < d,
                    Base::DateLessThanEquals => x <= d,
                    Base::DateGreaterThan => x > d,
                    _ => x >= d,
                })
            }
            Values::Bool(bools) => parse_bool(r).is_some_and(|x| bools.contains(&x)),
            Values::Ip(cidrs) => {
                let Ok(ip) = r.trim().parse::<IpAddr>() else {
                    return false;
                };
                cidrs.iter().any(|c| c.contains(ip))
            }
            Values::Arn(arns) => arns.iter().any(|a| a.matches(r, ctx)),
        }
    }
}

fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || s.contains(['e', 'E']) || s.eq_ignore_ascii_case("nan") || s.contains("inf") {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A date as nanoseconds since the epoch: epoch seconds (`1700000000`), RFC 3339 / ISO 8601
/// (`2024-01-31T12:00:00Z`, offsets, fractions), or a bare date (`2024-01-31`, midnight UTC).
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let s = s.trim();
    if !s.is_empty() && s.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().map(|secs| i128::from(secs) * 1_000_000_000);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).ok().map(|d| d.midnight().assume_utc().unix_timestamp_nanos())
}

/// An IPv4 or IPv6 network (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An ARN condition value: its six colon-delimited components matched separately (wildcards do not
/// cross `:` except in the resource part); `*` matches any value; a value with fewer than six
/// components matches nothing.
#[derive(Debug, Clone, PartialEq)]
struct ArnPattern {
    parts: Vec<Pattern>,
}

impl ArnPattern {
    fn compile(path: &str, s: &str, variables: bool) -> Result<ArnPattern, PolicyError> {
        let parts = split_arn_outside_vars(s);
        if parts.len() != 6 && s != "*" {
            // Fewer than six components: a malformed ARN value, which matches nothing.
            return Ok(ArnPattern { parts: Vec::new() });
        }
        let parts = if parts.len() == 6 { parts } else { vec![s] };
        Ok(ArnPattern { parts: parts.iter().map(|p| compile_at(path, p, true, variables)).collect::<Result<_, _>>()? })
    }

    fn matches(&self, r: &str, ctx: &RequestContext) -> bool {
        match self.parts.as_slice() {
            [] => return false,
            [whole] => return whole.matches(r, false, ctx),
            _ => {}
        }
        let mut req = r.splitn(6, ':');
        self.parts.iter().all(|p| req.next().is_some_and(|rp| p.matches(rp, false, ctx)))
    }
}

/// Splits an ARN into at most six parts at colons that are not inside `${...}`.
fn split_arn_outside_vars(s: &str) -> Vec<&str> {
    let mut parts = Vec::with_capacity(6);
    let mut start = 0;
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth > 0 => depth -= 1,
            b':' if depth == 0 && parts.len() < 5 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}
