//! `coffer import`: move a dotenv file into Coffer, as secrets or as Parameter Store parameters.
//!
//! First a plan, one line per key — create, update, unchanged, or why not — found by reading what is
//! stored and comparing it with the file's value in constant time; then the writes, and the counts.
//! Only names are ever printed: neither the file's values nor the stored ones, nor a server message
//! that quotes one.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use coffer_client::{dotenv, Client, ClientError};
use coffer_crypto::SecretBytes;
use coffer_wire::secretsmanager::{
    self, CreateSecretRequest, GetSecretValueRequest, GetSecretValueResponse, PutSecretValueRequest,
    PutSecretValueResponse, SecretIdentityResponse,
};
use coffer_wire::ssm::{self, GetParameterRequest, GetParameterResponse, PutParameterRequest, PutParameterResponse};
use coffer_wire::{Sensitive, Tag};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::secret::{client_for, explain, parse_tag};
use crate::Connection;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreAs {
    /// Secrets Manager secrets
    #[default]
    Secret,
    /// Parameter Store String parameters
    Param,
    /// Parameter Store SecureString parameters (encrypted)
    Securestring,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The dotenv file to import
    file: PathBuf,
    /// The path to import under, e.g. /prod/backend/: each key K becomes <prefix>K
    #[arg(long)]
    prefix: String,
    /// What to store each key as
    #[arg(long = "as", value_enum, default_value_t = StoreAs::Secret)]
    store_as: StoreAs,
    /// KMS key for new secrets or SecureString parameters [default: the service's default key]
    #[arg(long)]
    kms_key_id: Option<String>,
    /// Tag for what is created, as KEY=VALUE (repeatable)
    #[arg(long = "tag", value_parser = parse_tag)]
    tags: Vec<Tag>,
    /// Show the plan and write nothing
    #[arg(long)]
    dry_run: bool,
    /// Replace parameters that exist with a different value (secrets always get a new version)
    #[arg(long)]
    overwrite: bool,
    /// Lower-case the keys in the names (DATABASE_URL becomes <prefix>database_url)
    #[arg(long)]
    lowercase: bool,
    #[command(flatten)]
    conn: Connection,
}

/// What to do with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Create,
    /// `retype` names a parameter type change (String to SecureString or back).
    Update {
        retype: Option<(String, String)>,
    },
    Unchanged,
    /// A parameter exists with a different value and `--overwrite` was not given.
    Conflict,
    /// Not imported, and not an error: an empty value (the server stores none), so a `.env` with
    /// `OPTIONAL=` lines imports the rest and succeeds.
    Skip(String),
    /// Cannot be imported; why (never with a value).
    Fail(String),
}

struct Item {
    name: String,
    value: Zeroizing<String>,
    action: Action,
}

/// The names' common start: a path ending in `/` (for parameters, also starting with one, as
/// hierarchical parameter names must); empty for none.
fn normalize_prefix(prefix: &str, store_as: StoreAs) -> String {
    let prefix = prefix.trim();
    if prefix.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(prefix.len() + 2);
    if store_as != StoreAs::Secret && !prefix.starts_with('/') {
        out.push('/');
    }
    out.push_str(prefix);
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn parameter_type(store_as: StoreAs) -> &'static str {
    if store_as == StoreAs::Securestring {
        "SecureString"
    } else {
        "String"
    }
}

fn same_value(stored: &[u8], wanted: &str) -> bool {
    bool::from(stored.ct_eq(wanted.as_bytes()))
}

/// A failed call, described without any value: an API error's message is left out when it quotes
/// the value (validation messages do).
fn describe_failure(e: &ClientError, value: &str) -> String {
    match e {
        ClientError::Api { code, message, .. } if !value.is_empty() && message.contains(value) => {
            format!("{code} (the server's message is withheld: it quotes the value)")
        }
        other => other.to_string(),
    }
}

fn is_code(e: &ClientError, wanted: &str) -> bool {
    matches!(e, ClientError::Api { code, .. } if code == wanted)
}

fn token() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn sensitive(value: &str) -> Sensitive {
    Sensitive(SecretBytes::from(value))
}

/// A `[n/total]` counter rewritten in place on stderr, only for a person watching a long import.
struct Progress {
    label: &'static str,
    total: usize,
    shown: bool,
}

impl Progress {
    fn new(label: &'static str, total: usize) -> Self {
        Progress { label, total, shown: total > 20 && std::io::stderr().is_terminal() }
    }

    fn tick(&self, done: usize) {
        if self.shown {
            eprint!("\r{} [{done}/{}]", self.label, self.total);
        }
    }

    /// Clears the counter's line.
    fn finish(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

struct Importer {
    client: Client,
    args: ImportArgs,
}

/// Whether an error stops the whole import (no server, bad credentials) rather than one key.
fn is_fatal(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } | ClientError::Config(_) => true,
        ClientError::Api { code, .. } => matches!(
            code.as_str(),
            "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "MissingAuthenticationToken"
                | "ExpiredToken"
        ),
        ClientError::Decode(_) => false,
    }
}

impl Importer {
    /// What to do with one key; `Err` for a failure that stops the whole import.
    async fn plan(&self, name: &str, value: &str) -> Result<Action, ClientError> {
        if value.is_empty() {
            return Ok(Action::Skip("empty value: secrets and parameters cannot be empty".into()));
        }
        let action = match self.args.store_as {
            StoreAs::Secret => {
                let request = GetSecretValueRequest { secret_id: name.to_string(), ..Default::default() };
                let stored: Result<GetSecretValueResponse, _> =
                    self.client.call(secretsmanager::SERVICE, "secretsmanager.GetSecretValue", &request).await;
                match stored {
                    Ok(stored) => match &stored.secret_string {
                        Some(text) if same_value(text.0.expose(), value) => Action::Unchanged,
                        _ => Action::Update { retype: None },
                    },
                    Err(e) if is_code(&e, "ResourceNotFoundException") => Action::Create,
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => Action::Fail(format!("cannot read it: {}", describe_failure(&e, value))),
                }
            }
            StoreAs::Param | StoreAs::Securestring => {
                let request = GetParameterRequest { name: name.to_string(), with_decryption: Some(true) };
                let stored: Result<GetParameterResponse, _> =
                    self.client.call(ssm::SERVICE, "AmazonSSM.GetParameter", &request).await;
                match stored {
                    Ok(stored) => {
                        let wanted_type = parameter_type(self.args.store_as);
                        let stored_type = stored.parameter.parameter_type;
                        let same = same_value(stored.parameter.value.0.expose(), value);
                        if same && stored_type == wanted_type {
                            Action::Unchanged
                        } else if !self.args.overwrite {
                            Action::Conflict
                        } else {
                            let retype = (stored_type != wanted_type).then(|| (stored_type, wanted_type.to_string()));
                            Action::Update { retype }
                        }
                    }
                    Err(e) if is_code(&e, "ParameterNotFound") => Action::Create,
                    Err(e) if is_fatal(&e) => return Err(e),
                    Err(e) => Action::Fail(format!("cannot read it: {}", describe_failure(&e, value))),
                }
            }
        };
        Ok(action)
    }

    /// Carries out a create or an update.
    async fn write(&self, name: &str, value: &str, create: bool) -> Result<(), ClientError> {
        let args = &self.args;
        let tags = (create && !args.tags.is_empty()).then(|| args.tags.clone());
        match (args.store_as, create) {
            (StoreAs::Secret, true) => {
                let request = CreateSecretRequest {
                    name: name.to_string(),
                    client_request_token: Some(token()),
                    kms_key_id: args.kms_key_id.clone(),
                    secret_string: Some(sensitive(value)),
                    tags,
                    ..Default::default()
                };
                let _: SecretIdentityResponse =
                    self.client.call(secretsmanager::SERVICE, "secretsmanager.CreateSecret", &request).await?;
            }
            (StoreAs::Secret, false) => {
                let request = PutSecretValueRequest {
                    secret_id: name.to_string(),
                    client_request_token: Some(token()),
                    secret_string: Some(sensitive(value)),
                    ..Default::default()
                };
                let _: PutSecretValueResponse =
                    self.client.call(secretsmanager::SERVICE, "secretsmanager.PutSecretValue", &request).await?;
            }
            (StoreAs::Param | StoreAs::Securestring, _) => {
                let request = PutParameterRequest {
                    name: name.to_string(),
                    value: Some(sensitive(value)),
                    parameter_type: Some(parameter_type(args.store_as).to_string()),
                    key_id: args.kms_key_id.clone(),
                    overwrite: (!create).then_some(true),
                    tags,
                    ..Default::default()
                };
                let _: PutParameterResponse =
                    self.client.call(ssm::SERVICE, "AmazonSSM.PutParameter", &request).await?;
            }
        }
        Ok(())
    }
}

fn plan_line(item: &Item, dry_run: bool) -> String {
    let verb = |now: &'static str, later: &'static str| if dry_run { later } else { now };
    match &item.action {
        Action::Create => format!("{:<10} {}", verb("create", "would create"), item.name),
        Action::Update { retype: None } => format!("{:<10} {}", verb("update", "would update"), item.name),
        Action::Update { retype: Some((from, to)) } => {
            format!("{:<10} {} ({from} -> {to})", verb("update", "would update"), item.name)
        }
        Action::Unchanged => format!("{:<10} {}", "unchanged", item.name),
        Action::Conflict => format!(
            "{:<10} {} (a parameter with a different value exists; --overwrite replaces it)",
            "conflict", item.name
        ),
        Action::Skip(why) => format!("{:<10} {} ({why})", "skipped", item.name),
        Action::Fail(why) => format!("{:<10} {} ({why})", "failed", item.name),
    }
}

pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.store_as == StoreAs::Param && args.kms_key_id.is_some() {
        bail!("--kms-key-id applies to secrets and SecureString parameters; String parameters are not encrypted");
    }
    let all = dotenv::read_file(&args.file)?;
    let mut entries = dotenv::last_wins(all.clone());
    for entry in &entries {
        let times = all.iter().filter(|e| e.key == entry.key).count();
        if times > 1 {
            eprintln!(
                "note: {} is set {times} times in {}; the last (line {}) is imported",
                entry.key,
                args.file.display(),
                entry.line
            );
        }
    }
    drop(all);
    let prefix = normalize_prefix(&args.prefix, args.store_as);
    let service = if args.store_as == StoreAs::Secret { "SECRETS_MANAGER" } else { "SSM" };
    let importer = Importer { client: client_for(&args.conn, service)?, args };
    let dry_run = importer.args.dry_run;

    let total = entries.len();
    let progress = Progress::new("checking", total);
    let mut items = Vec::with_capacity(total);
    for (done, entry) in entries.drain(..).enumerate() {
        progress.tick(done + 1);
        let key = if importer.args.lowercase { entry.key.to_lowercase() } else { entry.key };
        let name = format!("{prefix}{key}");
        let action = match importer.plan(&name, &entry.value).await {
            Ok(action) => action,
            Err(e) => {
                progress.finish();
                return Err(explain(e));
            }
        };
        items.push(Item { name, value: entry.value, action });
    }
    progress.finish();
    for item in &items {
        println!("{}", plan_line(item, dry_run));
    }

    let count = |f: fn(&Action) -> bool| items.iter().filter(|i| f(&i.action)).count();
    let creates = count(|a| matches!(a, Action::Create));
    let updates = count(|a| matches!(a, Action::Update { .. }));
    let unchanged = count(|a| matches!(a, Action::Unchanged));
    let skipped = count(|a| matches!(a, Action::Skip(_)));
    let mut failed = count(|a| matches!(a, Action::Conflict | Action::Fail(_)));
    if dry_run {
        println!(
            "dry run, nothing written: would create {creates}, update {updates}; unchanged {unchanged}, skipped {skipped}, failed {failed}"
        );
        return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }

    let (mut created, mut updated) = (0, 0);
    let to_write = creates + updates;
    let progress = Progress::new("writing", to_write);
    let mut written = 0;
    for item in &items {
        let create = match item.action {
            Action::Create => true,
            Action::Update { .. } => false,
            _ => continue,
        };
        written += 1;
        progress.tick(written);
        match importer.write(&item.name, &item.value, create).await {
            Ok(()) if create => created += 1,
            Ok(()) => updated += 1,
            Err(e) => {
                progress.finish();
                eprintln!("error: writing {}: {}", item.name, describe_failure(&e, &item.value));
                failed += 1;
            }
        }
    }
    progress.finish();
    println!("created {created}, updated {updated}, unchanged {unchanged}, skipped {skipped}, failed {failed}");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_become_paths() {
        assert_eq!(normalize_prefix("/prod/backend", StoreAs::Secret), "/prod/backend/");
        assert_eq!(normalize_prefix("prod/backend/", StoreAs::Secret), "prod/backend/");
        assert_eq!(normalize_prefix("prod/backend", StoreAs::Param), "/prod/backend/");
        assert_eq!(normalize_prefix("/prod/", StoreAs::Securestring), "/prod/");
        assert_eq!(normalize_prefix("", StoreAs::Param), "");
    }

    #[test]
    fn failures_never_quote_the_value() {
        let e = ClientError::Api {
            status: 400,
            code: "ValidationException".into(),
            message: "Value 'hunter2' at 'value' failed to satisfy constraint".into(),
            request_id: None,
        };
        let text = describe_failure(&e, "hunter2");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.starts_with("ValidationException"), "{text}");
        assert!(describe_failure(&e, "other").contains("failed to satisfy"));
    }

    #[test]
    fn values_compare_exactly() {
        assert!(same_value(b"abc", "abc"));
        assert!(!same_value(b"abc", "abd"));
        assert!(!same_value(b"abc", "abcd"));
        assert!(!same_value(b"", "a"));
    }
}
