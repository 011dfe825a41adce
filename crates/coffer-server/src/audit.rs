//! The server's audit tasks: the flusher (group commit of read events), signed digests at intervals
//! and at shutdown, daily retention, and the JSON-lines file sink.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use coffer_service::Service;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::AuditSettings;

/// How often the sink looks for new records.
const SINK_POLL: Duration = Duration::from_millis(500);
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Starts the audit tasks; they stop when `stop` turns true, after a last flush and a last digest.
pub(crate) fn spawn_audit_tasks(
    service: Arc<Service>,
    settings: AuditSettings,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !service.audit_config().enabled {
            tracing::warn!("the audit log is OFF: requests are served unrecorded (a measurement setting only)");
            return;
        }
        let mut flusher_stop = stop.clone();
        let flusher = service.run_audit_flusher(async move {
            let _ = flusher_stop.wait_for(|stopped| *stopped).await;
        });
        let periodic = async {
            let mut digests = tokio::time::interval(Duration::from_secs(settings.digest_interval_secs.max(1)));
            let mut retention = tokio::time::interval(RETENTION_EVERY);
            let mut sink_tick = tokio::time::interval(SINK_POLL);
            let mut sink =
                settings.sink_path.as_ref().map(|p| Sink::new(p, settings.sink_max_bytes, settings.sink_keep));
            loop {
                tokio::select! {
                    _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => break,
                    _ = digests.tick() => sign(&service).await,
                    _ = retention.tick() => {
                        if let Err(e) = service.prune_audit().await {
                            tracing::warn!(error = %e, "audit retention pass failed");
                        }
                    }
                    _ = sink_tick.tick() => {
                        if let Some(sink) = sink.as_mut() {
                            sink.follow(&service).await;
                        }
                    }
                }
            }
            sink
        };
        let ((), sink) = tokio::join!(flusher, periodic);
        // The flusher has written what was queued; the digest now covers every event of this run.
        sign(&service).await;
        if let Some(mut sink) = sink {
            sink.follow(&service).await;
        }
    })
}

async fn sign(service: &Service) {
    match service.sign_audit_digest().await {
        Ok(Some(number)) => tracing::debug!(number, "signed an audit digest"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "signing an audit digest failed"),
    }
}

/// The JSON-lines copy of the chain: appended in seq order, rotated by size; its position (the last
/// seq written) kept beside it so a restart neither skips nor repeats records.
struct Sink {
    files: SinkFiles,
    next_seq: Option<u64>,
    failing: bool,
}

/// Where the sink writes and how it rotates; the writing itself runs on a blocking thread (it fsyncs).
#[derive(Clone)]
struct SinkFiles {
    path: PathBuf,
    position_path: PathBuf,
    max_bytes: u64,
    keep: u32,
}

impl Sink {
    fn new(path: &Path, max_bytes: u64, keep: u32) -> Sink {
        let mut position_path = path.as_os_str().to_owned();
        position_path.push(".position");
        Sink {
            files: SinkFiles {
                path: path.to_path_buf(),
                position_path: PathBuf::from(position_path),
                max_bytes: max_bytes.max(1),
                keep,
            },
            next_seq: None,
            failing: false,
        }
    }

    async fn follow(&mut self, service: &Service) {
        loop {
            let from = match self.next_seq {
                Some(seq) => seq,
                None => read_position(&self.files.position_path).map_or(1, |last| last + 1),
            };
            let records = match service.audit_records_for_sink(from, 1_000).await {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(error = %e, "the audit sink could not read the log");
                    return;
                }
            };
            let Some(&(last, _)) = records.last() else {
                self.next_seq = Some(from);
                return;
            };
            let count = records.len();
            let files = self.files.clone();
            let written = tokio::task::spawn_blocking(move || files.write(&records, last))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match written {
                Ok(()) => {
                    if self.failing {
                        tracing::info!(path = %self.files.path.display(), "the audit sink is writable again");
                        self.failing = false;
                    }
                    self.next_seq = Some(last + 1);
                }
                Err(e) => {
                    if !self.failing {
                        tracing::error!(path = %self.files.path.display(), error = %e, "the audit sink cannot be written");
                        self.failing = true;
                    }
                    self.next_seq = None;
                    return;
                }
            }
            if count < 1_000 {
                return;
            }
        }
    }
}

impl SinkFiles {
    fn write(&self, records: &[(u64, Vec<u8>)], last: u64) -> std::io::Result<()> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.max_bytes) {
            self.rotate()?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        let mut buffer = Vec::with_capacity(records.iter().map(|(_, body)| body.len() + 1).sum());
        for (_, body) in records {
            buffer.extend_from_slice(body);
            buffer.push(b'\n');
        }
        file.write_all(&buffer)?;
        file.sync_data()?;
        let tmp = self.position_path.with_extension("position.tmp");
        std::fs::write(&tmp, last.to_string())?;
        std::fs::rename(&tmp, &self.position_path)
    }

    /// `path` → `path.1` → `path.2` …; the oldest beyond `keep` is removed.
    fn rotate(&self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut p = self.path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(numbered(self.keep));
        for n in (1..self.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))
    }
}

fn read_position(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sink_appends_in_order_keeps_its_position_and_rotates_by_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        let sink = Sink::new(&path, 100, 2);
        let record = |seq: u64| (seq, format!(r#"{{"seq":{seq},"pad":"{}"}}"#, "x".repeat(40)).into_bytes());
        for seq in 1..=6u64 {
            sink.files.write(&[record(seq)], seq).expect("written");
        }
        assert_eq!(read_position(&sink.files.position_path), Some(6));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
        // Each file holds at most what fits before it passed 100 bytes; the oldest beyond `keep` is gone.
        assert!(read(&path).contains(r#""seq":6"#));
        assert!(read(&numbered(1)).contains(r#""seq":4"#) || read(&numbered(1)).contains(r#""seq":5"#));
        assert!(numbered(2).exists());
        assert!(!numbered(3).exists());
        let all = format!("{}{}{}", read(&numbered(2)), read(&numbered(1)), read(&path));
        let seqs: Vec<u64> = all
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line")["seq"].as_u64().expect("seq"))
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "chain order across the files: {seqs:?}");
        assert_eq!(seqs.last(), Some(&6));
    }
}
