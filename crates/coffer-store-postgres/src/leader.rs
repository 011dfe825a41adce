//! Scheduler leadership: the background duties (scheduled deletion, rotation, key rotation) run on one
//! node at a time.
//!
//! The leader is the node holding a session-level advisory lock, taken with `pg_try_advisory_lock` on a
//! connection of its own (a pooled connection would be recycled, and the lock would go with it to
//! whichever request used it next). PostgreSQL releases a session lock when its session ends, so a
//! leader that dies — process killed, machine gone — loses the lock as soon as the server notices the
//! connection is gone (at once for a killed process, whose kernel closes the socket; within the TCP
//! keepalive probes otherwise), and the next node to try takes it over.
//!
//! Each scheduler pass asks first ([`Leadership::hold`]). The leader checks that its connection still
//! answers — a leader whose connection dropped has lost the lock and says so — and the others try to
//! take the lock. Between two passes the lock can move; what the duties do is safe to overlap for that
//! moment anyway (rotations claim their secret with a compare-and-swap; deletions are idempotent).

use std::time::Duration;

use coffer_store::{StoreError, StoreResult};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// The advisory lock's first key: "CoSc" (Coffer scheduler). The second is a hash of the schema's name,
/// so installations in different schemas of one database each have their own leader.
const LEADER_LOCK_CLASS: i32 = 0x436f_5363;

/// Keepalive probing for the lock's connection, so a vanished server or leader is noticed in seconds.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);

/// This node's part in the election: the connection holding the lock, while it leads.
#[derive(Default)]
pub(crate) struct Leadership {
    held: Mutex<Option<Client>>,
}

impl Leadership {
    /// Whether this node leads now: keeps a held lock if its connection still answers, else tries to
    /// take the lock.
    pub(crate) async fn hold(&self, config: &tokio_postgres::Config, server: &str) -> StoreResult<bool> {
        let mut held = self.held.lock().await;
        if let Some(client) = held.as_ref() {
            if !client.is_closed() && client.simple_query("SELECT 1").await.is_ok() {
                return Ok(true);
            }
            tracing::warn!(%server, "lost the connection holding the scheduler leadership");
            *held = None;
        }
        let mut config = config.clone();
        config.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| StoreError::Unavailable(format!("postgres: connecting for the scheduler lock: {e}")))?;
        tokio::spawn(async move {
            // Ends when the client is dropped (leadership given up) or the connection fails.
            let _ = connection.await;
        });
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", &[&LEADER_LOCK_CLASS])
            .await
            .map_err(|e| StoreError::Unavailable(format!("postgres: taking the scheduler lock: {e}")))?;
        let won: bool = row
            .try_get(0)
            .map_err(|e| StoreError::Corrupt(format!("postgres: reading the scheduler lock's answer: {e}")))?;
        if won {
            tracing::info!(%server, "this node now leads the scheduler");
            *held = Some(client);
        }
        // Not won: dropping the client closes its connection.
        Ok(won)
    }

    /// Gives the lock up by closing its connection.
    pub(crate) async fn release(&self) {
        if self.held.lock().await.take().is_some() {
            tracing::info!("gave up the scheduler leadership");
        }
    }
}
