//! `coffer audit ...`: the audit log from the command line, over CloudTrail's protocol (signed for
//! `cloudtrail`): `search` (Coffer's `CofferAudit.SearchEvents`, LookupEvents with wildcards), `tail`
//! and `export` (`CofferAudit.ReadEvents`, records in chain order, `CofferAudit.SeqAt` to find where a
//! time starts). Tables show the time, caller, operation, resource, source IP and error code of each
//! event; JSON output is each event's CloudTrail JSON, one per line.

use std::borrow::Cow;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use coffer_audit::Event;
use coffer_client::Client;
use coffer_wire::cloudtrail::{LookupAttribute, LookupEventsRequest, MAX_READ_LIMIT, MAX_RESULTS};
use coffer_wire::epoch_seconds;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::output::{self, Format};
use crate::secret::{client_for, explain};
use crate::Connection;

/// `coffer audit [connection flags] COMMAND`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AuditCommand {
    /// Find events, newest first, by one attribute (`*` and `?` are wildcards in its value) and time
    Search(SearchArgs),
    /// Print the newest events; with -f, keep printing new ones as they are recorded
    Tail(TailArgs),
    /// Write events in chain order as JSON lines or CSV, to a file or standard output
    Export(ExportArgs),
    /// Check the hash chain and every signed digest offline, from a copy of the data (no server)
    Verify(crate::audit_verify::VerifyArgs),
}

/// At most one attribute, as CloudTrail allows.
#[derive(clap::Args, Debug, Default)]
#[group(multiple = false)]
pub struct Filter {
    /// Events of this operation (GetSecretValue, PutParameter, Decrypt, ...)
    #[arg(long, value_name = "NAME")]
    event_name: Option<String>,
    /// Events on this resource: its name (prod/db, /app/param, alias/key) or ARN
    #[arg(long, value_name = "NAME")]
    resource_name: Option<String>,
    /// Events by this user (or role)
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
    /// Events signed with this access key
    #[arg(long, value_name = "ID")]
    access_key_id: Option<String>,
    /// Events of one service: secretsmanager.amazonaws.com, ssm.amazonaws.com, kms.amazonaws.com, iam.amazonaws.com, sts.amazonaws.com, cloudtrail.amazonaws.com
    #[arg(long, value_name = "SOURCE")]
    event_source: Option<String>,
    /// Events on one kind of resource: AWS::SecretsManager::Secret, AWS::SSM::Parameter, AWS::KMS::Key, AWS::IAM::User, ...
    #[arg(long, value_name = "TYPE")]
    resource_type: Option<String>,
    /// One event by its id
    #[arg(long, value_name = "ID")]
    event_id: Option<String>,
    /// Only reads (true) or only changes (false)
    #[arg(long, value_parser = ["true", "false"])]
    read_only: Option<String>,
}

impl Filter {
    fn attribute(self) -> Option<LookupAttribute> {
        let pairs = [
            ("EventName", self.event_name),
            ("ResourceName", self.resource_name),
            ("Username", self.username),
            ("AccessKeyId", self.access_key_id),
            ("EventSource", self.event_source),
            ("ResourceType", self.resource_type),
            ("EventId", self.event_id),
            ("ReadOnly", self.read_only),
        ];
        pairs.into_iter().find_map(|(key, value)| {
            value.map(|v| LookupAttribute { attribute_key: key.to_string(), attribute_value: v })
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    filter: Filter,
    /// Only events at or after T: RFC 3339 (2026-11-23T10:00:00Z) or a time ago (30s, 15m, 2h, 7d, 2w)
    #[arg(long, value_name = "T", value_parser = parse_time)]
    since: Option<i64>,
    /// Only events at or before T: RFC 3339 or a time ago
    #[arg(long, value_name = "T", value_parser = parse_time)]
    until: Option<i64>,
    /// Show at most N events
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    max: u32,
    /// table, or json: each event's CloudTrail JSON, one per line
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// Keep printing new events until interrupted (your own polling is not shown)
    #[arg(short = 'f', long)]
    follow: bool,
    /// How often to look for new events with -f, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    interval_ms: u64,
    /// How many of the newest events to print first
    #[arg(short = 'n', long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=1000))]
    lines: u64,
    /// table, or json: each event's CloudTrail JSON, one per line
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// One CloudTrail event (JSON) per line, exactly as recorded
    #[default]
    Jsonl,
    /// A header line, then one row per event (RFC 4180: quoted where needed, CRLF line ends)
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// From the first event at or after T: RFC 3339 or a time ago (7d) [default: the oldest kept]
    #[arg(long, value_name = "T", value_parser = parse_time)]
    since: Option<i64>,
    /// Up to the last event at or before T [default: now]
    #[arg(long, value_name = "T", value_parser = parse_time)]
    until: Option<i64>,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    format: ExportFormat,
    /// Write to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339, or a time ago: a number and one of s, m, h, d, w (`15m`, `2h`, `7d`). Milliseconds.
fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let invalid =
        || format!("{text:?} is neither an RFC 3339 time (2026-11-23T10:00:00Z) nor a time ago (30s, 15m, 2h, 7d, 2w)");
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (count, unit) = text.split_at(digits);
    let count: i64 = count.parse().map_err(|_| invalid())?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(invalid()),
    };
    let ago = count.checked_mul(unit_ms).ok_or_else(invalid)?;
    Ok(now_ms().saturating_sub(ago))
}

/// An event's time (`eventTime`, RFC 3339) in milliseconds.
fn event_ms(event: &Event) -> anyhow::Result<i64> {
    let t = OffsetDateTime::parse(&event.event_time, &Rfc3339)
        .map_err(|e| anyhow!("event {} has an unreadable eventTime {:?}: {e}", event.event_id, event.event_time))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// An event's JSON on one line (the recorded form already is; this only guards JSON lines output).
fn one_line(json: &str) -> Cow<'_, str> {
    if !json.contains('\n') {
        return Cow::Borrowed(json);
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) => Cow::Owned(v.to_string()),
        Err(_) => Cow::Owned(json.replace('\n', " ")),
    }
}

const COLUMNS: [&str; 6] = ["TIME", "USER", "EVENT", "RESOURCE", "SOURCE-IP", "ERROR"];

/// The table row of an event's CloudTrail JSON.
fn row(json: &str) -> Vec<String> {
    let Ok(e) = Event::from_json(json.as_bytes()) else {
        return vec![
            "?".into(),
            String::new(),
            "(an event that does not parse)".into(),
            String::new(),
            String::new(),
            String::new(),
        ];
    };
    let who = &e.user_identity;
    let user = who.user_name.clone().or_else(|| who.arn.clone()).unwrap_or_else(|| who.identity_type.clone());
    let resources: Vec<String> = e
        .resources
        .iter()
        .map(|r| coffer_audit::friendly_resource_name(&r.arn).unwrap_or_else(|| r.arn.clone()))
        .collect();
    vec![
        e.event_time.clone(),
        user,
        e.event_name.clone(),
        resources.join(","),
        e.source_ip_address.clone().unwrap_or_default(),
        e.error_code.clone().unwrap_or_default(),
    ]
}

/// Prints events one at a time (tail): table rows under a header printed once, or JSON lines.
struct Printer {
    table: bool,
    header_done: bool,
}

/// Column widths of streamed table rows (a longer cell widens its row only).
const STREAM_WIDTHS: [usize; 6] = [20, 16, 24, 36, 15, 0];

impl Printer {
    fn new(format: Format) -> Self {
        Printer { table: format == Format::Table, header_done: false }
    }

    fn line(cells: &[&str]) -> String {
        let text = cells.iter().zip(STREAM_WIDTHS).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ");
        text.trim_end().to_string()
    }

    fn header(&mut self) {
        if self.table && !self.header_done {
            println!("{}", Self::line(&COLUMNS));
            self.header_done = true;
        }
    }

    fn print(&mut self, json: &str) {
        if self.table {
            self.header();
            let cells = row(json);
            println!("{}", Self::line(&cells.iter().map(String::as_str).collect::<Vec<_>>()));
        } else {
            println!("{}", one_line(json));
        }
    }
}

async fn search(client: &Client, args: SearchArgs) -> anyhow::Result<()> {
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since > until {
            bail!("--since is after --until");
        }
    }
    let attribute = args.filter.attribute();
    let table = args.output == Format::Table;
    let mut remaining = args.max as usize;
    let mut rows = Vec::new();
    let mut next_token = None;
    while remaining > 0 {
        let request = LookupEventsRequest {
            lookup_attributes: attribute.clone().map(|a| vec![a]),
            start_time: args.since.map(epoch_seconds),
            end_time: args.until.map(epoch_seconds),
            event_category: None,
            max_results: Some(remaining.min(MAX_RESULTS as usize) as i64),
            next_token: next_token.take(),
        };
        let page = client.search_events(&request).await.map_err(explain)?;
        for event in page.events.into_iter().take(remaining) {
            remaining -= 1;
            if table {
                rows.push(row(&event.cloud_trail_event));
            } else {
                println!("{}", one_line(&event.cloud_trail_event));
            }
        }
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => break,
        }
    }
    if table {
        output::print_columns(&COLUMNS, &rows);
    }
    Ok(())
}

/// Whether an event is this command's own polling (a tail's reads would otherwise show up in it).
fn own_polling(json: &str, access_key_id: &str) -> bool {
    let Ok(e) = Event::from_json(json.as_bytes()) else { return false };
    e.event_source == "cloudtrail.amazonaws.com"
        && matches!(e.event_name.as_str(), "ReadEvents" | "SeqAt")
        && e.user_identity.access_key_id.as_deref() == Some(access_key_id)
}

/// A time later than any event: `SeqAt` answers one past the newest record.
const FAR_FUTURE_MS: i64 = 253_402_300_799_000;

async fn tail(client: &Client, args: TailArgs) -> anyhow::Result<()> {
    let me = client.config().credentials.access_key_id.clone();
    let mut printer = Printer::new(args.output);
    let head = client.audit_seq_at(FAR_FUTURE_MS).await.map_err(explain)?.saturating_sub(1);
    if args.lines > 0 && head > 0 {
        // Look back over a window wider than asked for, so that polling noise does not crowd out events.
        let from = head.saturating_sub(MAX_READ_LIMIT as u64 - 1).max(1);
        let page = client.read_events(from, Some((head - from + 1) as i64)).await.map_err(explain)?;
        let shown: Vec<_> =
            page.events.into_iter().filter(|e| e.seq <= head && !own_polling(&e.cloud_trail_event, &me)).collect();
        let skip = shown.len().saturating_sub(args.lines as usize);
        for event in shown.iter().skip(skip) {
            printer.print(&event.cloud_trail_event);
        }
    }
    printer.header();
    if !args.follow {
        return Ok(());
    }
    let interval = Duration::from_millis(args.interval_ms);
    let mut next = head + 1;
    loop {
        let page = client.read_events(next, Some(MAX_READ_LIMIT)).await.map_err(explain)?;
        for event in &page.events {
            if !own_polling(&event.cloud_trail_event, &me) {
                printer.print(&event.cloud_trail_event);
            }
        }
        std::io::stdout().flush().ok();
        next = page.next_seq.max(next);
        if page.events.is_empty() || next > page.head_seq {
            tokio::time::sleep(interval).await;
        }
    }
}

async fn export(client: &Client, args: ExportArgs) -> anyhow::Result<()> {
    let until = args.until.unwrap_or_else(now_ms);
    if args.since.is_some_and(|since| since > until) {
        bail!("--since is after --until");
    }
    // Event times are whole seconds: an event in the same second as `since` is in.
    let since = args.since.map(|ms| ms - ms.rem_euclid(1000));
    let mut from = match args.since {
        Some(since) => client.audit_seq_at(since).await.map_err(explain)?,
        None => 1,
    };
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    if args.format == ExportFormat::Csv {
        out.write_all(coffer_audit::CSV_HEADER.as_bytes())?;
    }
    let progress = std::io::stderr().is_terminal();
    let mut count = 0u64;
    // The head when the export started: later records are left for the next export.
    let mut last: Option<u64> = None;
    'pages: loop {
        let page = client.read_events(from, Some(MAX_READ_LIMIT)).await.map_err(explain)?;
        let last = *last.get_or_insert(page.head_seq);
        for record in &page.events {
            if record.seq > last {
                break 'pages;
            }
            let event = Event::from_json(record.cloud_trail_event.as_bytes())
                .map_err(|e| anyhow!("record {} does not parse as an event: {e}", record.seq))?;
            let time = event_ms(&event)?;
            if time > until {
                break 'pages;
            }
            // A record committed after `since`'s place in the chain but stamped earlier.
            if since.is_some_and(|since| time < since) {
                continue;
            }
            match args.format {
                ExportFormat::Jsonl => out.write_all(&coffer_audit::jsonl_line(record.cloud_trail_event.as_bytes()))?,
                ExportFormat::Csv => out.write_all(coffer_audit::csv_row(&event).as_bytes())?,
            }
            count += 1;
        }
        if progress {
            eprint!("\rexported {count} events");
        }
        if page.events.is_empty() || page.next_seq > last {
            break;
        }
        from = page.next_seq;
    }
    out.flush()?;
    if progress {
        eprintln!("\rexported {count} events");
    }
    Ok(())
}

pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let AuditArgs { conn, command } = args;
    if let AuditCommand::Verify(args) = command {
        return crate::audit_verify::run(args).await;
    }
    let client = client_for(&conn, "CLOUDTRAIL")?;
    match command {
        AuditCommand::Search(args) => search(&client, args).await?,
        AuditCommand::Tail(args) => tail(&client, args).await?,
        AuditCommand::Export(args) => export(&client, args).await?,
        AuditCommand::Verify(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ago() {
        assert_eq!(parse_time("2026-11-23T10:00:00Z").unwrap(), 1_795_428_000_000);
        assert_eq!(parse_time("2026-11-23T10:00:00.250+01:00").unwrap(), 1_795_424_400_250);
        let now = now_ms();
        for (text, ms) in
            [("15m", 900_000), ("2h", 7_200_000), ("7d", 604_800_000), ("30s", 30_000), ("1w", 604_800_000)]
        {
            let t = parse_time(text).unwrap();
            assert!((now - ms - 5_000..=now - ms + 5_000).contains(&t), "{text}: {t}");
        }
        for bad in ["", "m", "15", "15x", "-5m", "yesterday", "2026-11-23"] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_filter_becomes_one_attribute() {
        assert_eq!(Filter::default().attribute(), None);
        let f = Filter { resource_name: Some("prod/*".into()), ..Filter::default() };
        assert_eq!(
            f.attribute(),
            Some(LookupAttribute { attribute_key: "ResourceName".into(), attribute_value: "prod/*".into() })
        );
    }

    #[test]
    fn json_lines_stay_on_one_line() {
        assert_eq!(one_line(r#"{"a":1}"#), r#"{"a":1}"#);
        assert_eq!(one_line("{\n\"a\": 1\n}"), r#"{"a":1}"#);
    }
}
