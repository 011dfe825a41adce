//! `coffer status`: a node's detailed status (`CofferStatus.GetStatus`) — version, storage, counts,
//! audit log and scheduler — for operators. Exit 1 when the node is not healthy (storage unreachable or
//! the audit log refusing events), so it can gate a script.

use std::process::ExitCode;

use coffer_wire::status::{GetStatusRequest, GetStatusResponse, SERVICE, TARGET_PREFIX};

use crate::output::Format;
use crate::secret::{client_for, explain};
use crate::Connection;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(flatten)]
    conn: Connection,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = client_for(&args.conn, "SECRETS_MANAGER")?;
    let status: GetStatusResponse =
        client.call(SERVICE, &format!("{TARGET_PREFIX}.GetStatus"), &GetStatusRequest {}).await.map_err(explain)?;
    let healthy = status.storage.reachable && status.audit.failure.is_none();
    if args.output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print_table(&status);
    }
    Ok(if healthy { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

fn print_table(s: &GetStatusResponse) {
    let storage = match (&s.storage.error, s.storage.reachable) {
        (_, true) => format!("{} (reachable)", s.storage.backend),
        (Some(e), false) => format!("{} UNREACHABLE: {e}", s.storage.backend),
        (None, false) => format!("{} UNREACHABLE", s.storage.backend),
    };
    let c = &s.counts;
    let rows = [
        ("version", s.version.clone()),
        ("storage", storage),
        ("region", s.region.clone()),
        (
            "secrets",
            format!(
                "{} ({} pending deletion, {} rotated)",
                count(c.secrets),
                count(c.secrets_pending_deletion),
                count(c.secrets_with_rotation)
            ),
        ),
        ("parameters", count(c.parameters)),
        (
            "KMS keys",
            format!(
                "{} ({} enabled, {} pending deletion)",
                count(c.kms_keys),
                count(c.kms_keys_enabled),
                count(c.kms_keys_pending_deletion)
            ),
        ),
        (
            "audit log",
            match &s.audit.failure {
                Some(reason) => format!("REFUSING EVENTS: {reason}"),
                None => format!("head seq {}, {} events pending", count(s.audit.head_seq), s.audit.pending_events),
            },
        ),
        (
            "scheduler",
            format!(
                "{}{}",
                if s.scheduler.leading { "this node leads" } else { "another node leads (or none yet)" },
                s.scheduler.last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default()
            ),
        ),
    ];
    for (key, value) in rows {
        println!("{key:<12} {value}");
    }
}
