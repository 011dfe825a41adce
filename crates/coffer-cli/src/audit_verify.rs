//! `coffer audit verify`: checks the audit chain and every signed digest offline, from a copy of the
//! data, with only the public key — no server, no master key. Opens the database read-only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use coffer_audit::{AuditPublicKey, DigestInput, RecordInput, Verifier};
use coffer_store::Store;

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The data directory (its coffer.db) to check; a copy is fine
    #[arg(long, conflicts_with = "storage")]
    data_dir: Option<PathBuf>,
    /// Storage URL instead of a data directory: sqlite://PATH or postgres://... (opened read-only)
    #[arg(long)]
    storage: Option<String>,
    /// The PEM public key that verifies the digests. Take it from a trusted copy: the one inside the
    /// data directory (the default) is only as trustworthy as the directory
    #[arg(long)]
    public_key: Option<PathBuf>,
}

/// Records read per page.
const PAGE: usize = 10_000;

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let (store_url, key_path) = match (&args.data_dir, &args.storage) {
        (Some(dir), _) => (
            format!("sqlite://{}", dir.join("coffer.db").display()),
            args.public_key.clone().unwrap_or_else(|| dir.join(coffer_server::AUDIT_PUBLIC_KEY_FILE)),
        ),
        (None, Some(url)) => {
            let key = args.public_key.clone().context("--public-key is needed with --storage")?;
            (url.clone(), key)
        }
        (None, None) => {
            anyhow::bail!("say which data to check: --data-dir DIR or --storage sqlite://PATH|postgres://...")
        }
    };
    if args.public_key.is_none() {
        eprintln!(
            "note: using the public key inside the data directory ({}); pass --public-key with a copy kept elsewhere \
             to rule out a rewritten key",
            key_path.display()
        );
    }
    let key = read_key(&key_path)?;
    let store = coffer_server::storage::open_url(&store_url, coffer_server::storage::OpenMode::ReadOnly).await?;
    let started = Instant::now();
    let report = check(store.as_ref(), key).await?;
    let elapsed = started.elapsed();
    let rate = report.records_checked as f64 / elapsed.as_secs_f64().max(1e-9);
    println!(
        "checked {} records (seq {}..{}) and {} digests in {:.2} s ({:.0} records/s)",
        report.records_checked,
        report.first_seq.map_or("-".into(), |s| s.to_string()),
        report.last_seq.map_or("-".into(), |s| s.to_string()),
        report.digests_checked,
        elapsed.as_secs_f64(),
        rate
    );
    if let Some(signed) = report.last_signed_seq {
        println!("signed up to seq {signed}; {} newer records are protected by the chain only", report.unsigned_tail);
    }
    match &report.fault {
        None => {
            println!("OK: the audit log is intact");
            Ok(ExitCode::SUCCESS)
        }
        Some(fault) => {
            println!("TAMPERED: {fault}");
            Ok(ExitCode::from(1))
        }
    }
}

fn read_key(path: &Path) -> anyhow::Result<AuditPublicKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading the public key {}", path.display()))?;
    AuditPublicKey::from_pem(&pem).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Streams every record through the verifier, page by page, stopping at the first fault.
pub async fn check(store: &dyn Store, key: AuditPublicKey) -> anyhow::Result<coffer_audit::VerifyReport> {
    let mut digests = Vec::new();
    let mut from = 1;
    loop {
        let page = store.audit_digests(from, 1_000).await.context("reading the digests")?;
        let Some(last) = page.last() else { break };
        from = last.number + 1;
        let full = page.len() == 1_000;
        digests.extend(page.into_iter().map(|d| DigestInput {
            number: d.number,
            time_ms: d.time_ms,
            last_seq: d.last_seq,
            body: d.body,
            signature: d.signature,
        }));
        if !full {
            break;
        }
    }
    let mut verifier = Verifier::new(key, digests);
    let first = store.audit_oldest_seq().await.context("reading the log")?.unwrap_or(1);
    let mut page = store.audit_records_from(first, PAGE).await.context("reading the log")?;
    // A pipeline over the two cores: the next page is read (on the store's reader thread) while this
    // one is hashed here.
    while !page.is_empty() {
        let full = page.len() == PAGE;
        let next_seq = page.last().map_or(first, |r| r.seq + 1);
        let read_next = async {
            if full {
                store.audit_records_from(next_seq, PAGE).await.context("reading the log")
            } else {
                Ok(Vec::new())
            }
        };
        let check_this = async {
            for r in &page {
                verifier.push_record(RecordInput {
                    seq: r.seq,
                    event_id: &r.event_id,
                    time_ms: r.time_ms,
                    prev_hash: r.prev_hash,
                    body: &r.body,
                });
            }
        };
        let (next, ()) = tokio::join!(read_next, check_this);
        if verifier.fault().is_some() {
            break;
        }
        page = next?;
    }
    Ok(verifier.finish())
}
