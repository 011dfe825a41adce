//! `coffer validate`: a deployment pipeline's check that every secret and parameter it needs exists, can
//! be read and decrypted by the caller, and (optionally) matches a pattern, holds some JSON keys, or is
//! younger than some days. One line per item, never a value; exit 1 when any item fails.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use coffer_client::manifest::{ItemKind, Manifest, ManifestItem};
use coffer_client::{Client, ClientError};
use coffer_wire::secretsmanager::{GetSecretValueRequest, GetSecretValueResponse};
use coffer_wire::ssm::{GetParameterRequest, GetParameterResponse};

use crate::secret::client_for;
use crate::Connection;

const DAY_SECONDS: f64 = 86_400.0;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// A required secret or parameter (repeatable); `secret:NAME` or `param:NAME` says which, else a
    /// secret is looked for first, then a parameter
    #[arg(long = "require", value_name = "NAME")]
    required: Vec<String>,
    /// A TOML manifest (the one `SecretCache::load_manifest` reads): [[secret]] and [[parameter]] tables
    /// with name, and optionally required = false (absent is then no failure), pattern (a regular
    /// expression the value must match), json_keys (keys a JSON value must have) and max_age_days
    #[arg(long)]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    conn: Connection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    Parameter,
    /// `--require NAME` without a prefix.
    Either,
}

impl From<ItemKind> for Kind {
    fn from(kind: ItemKind) -> Kind {
        match kind {
            ItemKind::Secret => Kind::Secret,
            ItemKind::Parameter => Kind::Parameter,
        }
    }
}

/// What was read: the value (zeroized when dropped) and when that version was written.
struct Found {
    kind: &'static str,
    value: zeroize::Zeroizing<String>,
    written: f64,
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

async fn read_secret(client: &Client, name: &str) -> Result<Found, ClientError> {
    let req = GetSecretValueRequest { secret_id: name.to_string(), version_id: None, version_stage: None };
    let resp: GetSecretValueResponse =
        client.call(coffer_wire::secretsmanager::SERVICE, "secretsmanager.GetSecretValue", &req).await?;
    let value = match &resp.secret_string {
        Some(text) => text.0.expose_str().map(str::to_string).unwrap_or_default(),
        // A binary secret has no text to check a pattern against; its presence is what counts.
        None => String::new(),
    };
    Ok(Found { kind: "secret", value: zeroize::Zeroizing::new(value), written: resp.created_date })
}

async fn read_parameter(client: &Client, name: &str) -> Result<Found, ClientError> {
    let req = GetParameterRequest { name: name.to_string(), with_decryption: Some(true) };
    let resp: GetParameterResponse = client.call(coffer_wire::ssm::SERVICE, "AmazonSSM.GetParameter", &req).await?;
    let value = resp.parameter.value.0.expose_str().map(str::to_string).unwrap_or_default();
    Ok(Found { kind: "parameter", value: zeroize::Zeroizing::new(value), written: resp.parameter.last_modified_date })
}

fn not_found(e: &ClientError) -> bool {
    matches!(e, ClientError::Api { code, .. } if code == "ResourceNotFoundException" || code == "ParameterNotFound")
}

/// The error's code alone: the server's message could quote what the caller sent, never a value, but the
/// code is what a pipeline log needs.
fn reason(e: &ClientError) -> String {
    match e {
        ClientError::Api { code, .. } => code.clone(),
        other => other.to_string(),
    }
}

/// Checks one requirement; `Ok(description)` or `Err(reason)`, neither ever holding the value.
async fn check(secrets: &Client, parameters: &Client, kind: Kind, req: &ManifestItem) -> Result<String, String> {
    let found = match kind {
        Kind::Secret => read_secret(secrets, &req.name).await.map_err(|e| reason(&e))?,
        Kind::Parameter => read_parameter(parameters, &req.name).await.map_err(|e| reason(&e))?,
        Kind::Either => match read_secret(secrets, &req.name).await {
            Ok(found) => found,
            Err(e) if not_found(&e) => read_parameter(parameters, &req.name).await.map_err(|e| {
                if not_found(&e) {
                    "no secret or parameter of this name".to_string()
                } else {
                    reason(&e)
                }
            })?,
            Err(e) => return Err(reason(&e)),
        },
    };
    if let Some(pattern) = &req.pattern {
        let re =
            regex::Regex::new(pattern).map_err(|e| format!("the pattern is not a valid regular expression: {e}"))?;
        if !re.is_match(&found.value) {
            return Err(format!("the {} does not match the pattern {pattern:?}", found.kind));
        }
    }
    if !req.json_keys.is_empty() {
        let doc: serde_json::Value = serde_json::from_str(&found.value)
            .map_err(|_| format!("the {} is not a JSON object, so it has none of the keys", found.kind))?;
        let missing: Vec<&str> =
            req.json_keys.iter().filter(|k| doc.get(k.as_str()).is_none()).map(String::as_str).collect();
        if !missing.is_empty() {
            return Err(format!("the {} lacks the JSON keys {}", found.kind, missing.join(", ")));
        }
    }
    let age_days = (now_seconds() - found.written).max(0.0) / DAY_SECONDS;
    if let Some(max) = req.max_age_days {
        if age_days > max {
            return Err(format!("the {} was last written {age_days:.0} days ago (at most {max} allowed)", found.kind));
        }
    }
    Ok(format!("{}, readable, written {age_days:.0} days ago", found.kind))
}

/// Why an item failed: absent (it does not exist), or anything else.
fn is_absence(why: &str) -> bool {
    why == "ResourceNotFoundException" || why == "ParameterNotFound" || why == "no secret or parameter of this name"
}

pub async fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut items: Vec<(Kind, ManifestItem)> = Vec::new();
    if let Some(path) = &args.manifest {
        let manifest = Manifest::load(path)?;
        items.extend(manifest.items().map(|(kind, item)| (Kind::from(kind), item.clone())));
    }
    for name in &args.required {
        let (kind, name) = match name.split_once(':') {
            Some(("secret", rest)) => (Kind::Secret, rest),
            Some(("param" | "parameter", rest)) => (Kind::Parameter, rest),
            _ => (Kind::Either, name.as_str()),
        };
        items.push((kind, ManifestItem::required(name)));
    }
    if items.is_empty() {
        bail!("nothing to validate: give --require NAME or --manifest FILE");
    }
    let secrets = client_for(&args.conn, "SECRETS_MANAGER")?;
    let parameters = client_for(&args.conn, "SSM")?;
    let (mut failed, mut required_ok, mut optional_present) = (0, 0, 0);
    for (kind, item) in &items {
        match check(&secrets, &parameters, *kind, item).await {
            Ok(what) => {
                println!("ok      {} ({what})", item.name);
                if item.required {
                    required_ok += 1;
                } else {
                    optional_present += 1;
                }
            }
            // An optional item may be absent; then its default (if any) is what the application gets.
            Err(why) if !item.required && is_absence(&why) => {
                let default = if item.default.is_some() { "; its default applies" } else { "" };
                println!("absent  {} (optional{default})", item.name);
            }
            Err(why) => {
                failed += 1;
                println!("FAILED  {}: {why}", item.name);
            }
        }
    }
    let required = items.iter().filter(|(_, item)| item.required).count();
    let optional = items.len() - required;
    if optional == 0 {
        println!("{required_ok} of {required} required items ok");
    } else {
        println!(
            "{required_ok} of {required} required items ok, {optional_present} of {optional} optional items present"
        );
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
