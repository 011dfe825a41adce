//! The change feed: how every node hears the changes any node commits, so it can drop cached copies
//! they made stale.
//!
//! Sending: every write transaction that changes a secret, a parameter or a KMS key also runs
//! `SELECT pg_notify('coffer_changes', <payload>)` (`write.rs`). PostgreSQL delivers a notification only
//! when its transaction commits, and after the data it announces is visible: a rolled-back or
//! conflicting write announces nothing, and a node that reloads on a notice reads the new state.
//!
//! Hearing: the first [`crate::PostgresStore::change_feed`] call starts [`listen`], a task on a
//! connection of its own (a pooled connection would be recycled and lose its `LISTEN`), which parses
//! each notification into a [`ChangeNotice`] and broadcasts it. When that connection is lost, the
//! notices sent meanwhile are lost with it: the task reconnects with a growing backoff and, once it
//! listens again, broadcasts [`ChangeNotice::Everything`] so every cache starts over. It does the same
//! after its first `LISTEN`, for the changes committed before it listened. The task ends when the
//! store is dropped or closed.
//!
//! Payloads (at most [`MAX_PAYLOAD`] bytes, PostgreSQL's limit being 8000): `s:<arn>`,
//! `p:<region>\n<name>`, `k:<region>\n<key_id>`; `*` for "everything" (a key too long to name). Names
//! never hold a newline (Secrets Manager, SSM and KMS refuse it), so the first one splits region and
//! name unambiguously.

use std::time::Duration;

use coffer_store::ChangeNotice;
use tokio::sync::{broadcast, watch};
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel every node notifies and listens on. One per database: schemas of one database share
/// it, so a node also hears another schema's changes (an extra invalidation, never a missed one).
pub(crate) const CHANNEL: &str = "coffer_changes";

/// The longest payload sent; PostgreSQL refuses 8000 bytes and more.
pub(crate) const MAX_PAYLOAD: usize = 7_999;

/// How many notices a receiver may fall behind before it is told it lagged (and flushes everything).
pub(crate) const FEED_CAPACITY: usize = 1_024;

/// Reconnection backoff: the first pause, and the longest.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long the listening connection may be silent before TCP keepalives probe it, so a connection
/// whose peer vanished (no FIN, no RST) is noticed in seconds rather than the system's two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);

/// The payload announcing `notice`.
pub(crate) fn payload(notice: &ChangeNotice) -> String {
    let text = match notice {
        ChangeNotice::Secret { arn } => format!("s:{arn}"),
        ChangeNotice::Parameter { region, name } => format!("p:{region}\n{name}"),
        ChangeNotice::KmsKey { region, key_id } => format!("k:{region}\n{key_id}"),
        ChangeNotice::Everything => return "*".into(),
    };
    // Validated names are far shorter; should one ever not be, a coarser notice beats a failed write.
    if text.len() > MAX_PAYLOAD {
        return "*".into();
    }
    text
}

/// The notice a payload announces. A payload this node does not understand (sent by a newer Coffer)
/// flushes everything: dropping too much is safe, keeping a stale copy is not.
pub(crate) fn parse(payload: &str) -> ChangeNotice {
    let split = |rest: &str| rest.split_once('\n').map(|(region, name)| (region.to_string(), name.to_string()));
    let parsed = match payload.split_once(':') {
        Some(("s", arn)) if !arn.is_empty() => Some(ChangeNotice::Secret { arn: arn.to_string() }),
        Some(("p", rest)) => split(rest).map(|(region, name)| ChangeNotice::Parameter { region, name }),
        Some(("k", rest)) => split(rest).map(|(region, key_id)| ChangeNotice::KmsKey { region, key_id }),
        _ => None,
    };
    parsed.unwrap_or_else(|| {
        if payload != "*" {
            tracing::debug!(len = payload.len(), "a change notice of an unknown form; flushing every cache");
        }
        ChangeNotice::Everything
    })
}

/// Listens for change notices until `stop` changes or its sender is dropped, broadcasting each on
/// `feed`; reconnects after any failure. `server` (`host:port/dbname`) is for logs.
pub(crate) async fn listen(
    mut config: tokio_postgres::Config,
    server: std::sync::Arc<str>,
    feed: broadcast::Sender<ChangeNotice>,
    mut stop: watch::Receiver<bool>,
) {
    config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let outcome = tokio::select! {
            outcome = listen_once(&config, &feed) => outcome,
            _ = stop.changed() => return,
        };
        match outcome {
            // It listened before it failed: the next attempt starts with a short pause again.
            Session { listened: true, error } => {
                tracing::warn!(%server, %error, "lost the connection that hears other nodes' changes; reconnecting");
                backoff = FIRST_BACKOFF;
            }
            Session { listened: false, error } => {
                tracing::warn!(%server, %error, retry_in_ms = backoff.as_millis() as u64,
                    "cannot listen for other nodes' changes; caches rely on their maximum age meanwhile");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// How one connection's session ended.
struct Session {
    /// Whether its `LISTEN` took effect (and `Everything` was announced).
    listened: bool,
    /// Why it ended, for the log (tokio-postgres' text: it never quotes a payload or a parameter).
    error: String,
}

/// Connects, listens, and broadcasts notices until the connection fails.
async fn listen_once(config: &tokio_postgres::Config, feed: &broadcast::Sender<ChangeNotice>) -> Session {
    let (client, mut connection) = match config.connect(NoTls).await {
        Ok(pair) => pair,
        Err(e) => return Session { listened: false, error: e.to_string() },
    };
    // The connection only makes progress while it is polled, and `poll_message` is what polls it: the
    // LISTEN below completes through the same loop that receives the notifications.
    let statement = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    let mut listened = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listened => match done {
                Ok(()) => {
                    listened = true;
                    tracing::debug!("listening for change notices");
                    // Changes committed before the LISTEN took effect went unheard: start over. A send
                    // fails only when nobody subscribes, which is nothing to report.
                    let _ = feed.send(ChangeNotice::Everything);
                }
                Err(e) => return Session { listened, error: e.to_string() },
            },
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                    let _ = feed.send(parse(n.payload()));
                }
                // Server notices (warnings) and other channels: nothing for the caches.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Session { listened, error: e.to_string() },
                None => return Session { listened, error: "the server closed the connection".into() },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let notices = [
            ChangeNotice::Secret { arn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:a/b:c-AbC123".into() },
            ChangeNotice::Parameter { region: "eu-west-1".into(), name: "/app/db:url".into() },
            ChangeNotice::KmsKey { region: "us-east-1".into(), key_id: "0b0e7f6c-5a49-4a43-9f4e-1f2a3b4c5d6e".into() },
            ChangeNotice::Everything,
        ];
        for notice in notices {
            assert_eq!(parse(&payload(&notice)), notice);
        }
    }

    #[test]
    fn oversized_and_unknown_payloads_mean_everything() {
        let long = ChangeNotice::Parameter { region: "us-east-1".into(), name: "/".repeat(MAX_PAYLOAD) };
        assert_eq!(payload(&long), "*");
        for unknown in ["", "x:whatever", "p:no-newline", "s:", "secret"] {
            assert_eq!(parse(unknown), ChangeNotice::Everything, "{unknown:?}");
        }
    }
}
