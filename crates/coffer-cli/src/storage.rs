//! `coffer storage migrate`: copies an installation between the embedded SQLite file and PostgreSQL,
//! either way, then checks that the copy holds exactly what the source does.
//!
//! The copy moves ciphertext as it is (no master key is needed, nothing is decrypted) and keeps the
//! audit chain whole; see `coffer_store::copy`. Stop every node first: the source is opened read-only,
//! but a node still writing to it would make the copy miss its last writes (the final comparison would
//! report them).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use coffer_server::config::redact_password;
use coffer_server::storage::{open_url, OpenMode};
use coffer_store::copy::{compare, copy_store, CopyStep};

#[derive(clap::Subcommand, Debug)]
pub enum StorageCommand {
    /// Copy everything (secrets, parameters, keys, IAM, settings, the audit log) into empty storage,
    /// then verify the copy; stop every node first
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The installation to copy: sqlite://PATH, postgres://..., a coffer.db file or a data directory
    #[arg(long)]
    from: String,
    /// Where to copy it (must be empty): postgres://... or sqlite://PATH (or a data directory)
    #[arg(long)]
    to: String,
}

pub async fn run(cmd: StorageCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StorageCommand::Migrate(args) => migrate(args).await,
    }
}

/// A storage URL from what the user gave: URLs as they are, a directory as its `coffer.db`, a file path
/// as an SQLite file.
fn storage_url(given: &str) -> String {
    if given.contains("://") {
        return given.to_string();
    }
    let path = Path::new(given);
    if path.is_dir() {
        format!("sqlite://{}", path.join("coffer.db").display())
    } else {
        format!("sqlite://{given}")
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let (from_url, to_url) = (storage_url(&args.from), storage_url(&args.to));
    if from_url == to_url {
        anyhow::bail!("--from and --to name the same storage");
    }
    let (from_name, to_name) = (redact_password(&from_url), redact_password(&to_url));
    if let Some(path) = to_url.strip_prefix("sqlite://") {
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
    }
    let from = open_url(&from_url, OpenMode::ReadOnly).await?;
    let to = open_url(&to_url, OpenMode::Serve).await?;
    eprintln!("copying {from_name} ({}) to {to_name} ({})", from.backend_name(), to.backend_name());

    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut show = |step: CopyStep| match step {
        CopyStep::Records(what) => eprintln!("  {what}"),
        CopyStep::Audit { copied, total } if terminal => eprint!("\r  audit log [{copied}/{total}]"),
        CopyStep::Audit { .. } => {}
    };
    let report =
        copy_store(from.as_ref(), to.as_ref(), &mut show).await.with_context(|| format!("copying into {to_name}"))?;
    if terminal && report.audit_records > 0 {
        eprintln!();
    }
    println!(
        "copied {} secrets ({} versions), {} parameters ({} versions), {} KMS keys, {} aliases, {} IAM entities, \
         {} access keys, {} settings, {} audit records (head seq {}) and {} digests in {:.2} s",
        report.secrets,
        report.secret_versions,
        report.parameters,
        report.parameter_versions,
        report.kms_keys,
        report.aliases,
        report.iam_entities,
        report.access_keys,
        report.settings,
        report.audit_records,
        report.audit_head_seq,
        report.audit_digests,
        started.elapsed().as_secs_f64()
    );

    let differences = compare(from.as_ref(), to.as_ref()).await.context("comparing the copy with the source")?;
    if differences.is_empty() {
        println!("verified: the copy holds every record of the source, byte for byte, and the same audit chain");
        println!(
            "next: start the nodes on {to_name} with the same master key as the source (key file, environment, \
             passphrase or key shares); check the audit log with `coffer audit verify --storage ...`"
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("NOT verified: the copy differs from the source:");
        for difference in &differences {
            println!("  {difference}");
        }
        println!("was a node still writing to the source? stop every node, empty the target, and copy again");
        Ok(ExitCode::from(1))
    }
}
