//! `coffer secret ...`: the everyday Secrets Manager operations, signed with the same SigV4 code the
//! server verifies.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use coffer_client::{Client, ClientConfig, ClientError, ResolveOptions};
use coffer_crypto::SecretBytes;
use coffer_wire::secretsmanager::*;
use coffer_wire::{Sensitive, Tag};
use serde_json::Value;

use crate::output::{self, Format};
use crate::Connection;

#[derive(clap::Args, Debug)]
pub struct ValueSource {
    /// The value (visible in shell history; prefer --value-file or --value-stdin)
    #[arg(long, conflicts_with_all = ["value_file", "value_stdin"])]
    value: Option<String>,
    /// Read the value from a file
    #[arg(long, conflicts_with = "value_stdin")]
    value_file: Option<PathBuf>,
    /// Read the value from standard input
    #[arg(long)]
    value_stdin: bool,
}

impl ValueSource {
    pub(crate) fn read(self) -> anyhow::Result<Option<Sensitive>> {
        let text = if let Some(v) = self.value {
            v
        } else if let Some(path) = self.value_file {
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?
        } else if self.value_stdin {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        } else {
            return Ok(None);
        };
        Ok(Some(Sensitive(SecretBytes::from(text))))
    }
}

#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Json)]
    pub(crate) output: Format,
    /// Print only this field of the response (dotted path), like aws --query
    #[arg(long)]
    pub(crate) query: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum SecretCommand {
    /// Create a secret (with a first value, or empty)
    Create {
        name: String,
        #[command(flatten)]
        value: ValueSource,
        #[arg(long)]
        description: Option<String>,
        /// Tag as KEY=VALUE (repeatable)
        #[arg(long = "tag", value_parser = parse_tag)]
        tags: Vec<Tag>,
        #[arg(long)]
        kms_key_id: Option<String>,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print a secret's value (AWSCURRENT unless told otherwise)
    Get {
        /// Name or ARN
        secret_id: String,
        #[arg(long)]
        version_id: Option<String>,
        #[arg(long)]
        version_stage: Option<String>,
        /// For a JSON secret: print only this key's value
        #[arg(long)]
        json_key: Option<String>,
        /// Print the whole response as JSON instead of the bare value
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Store a new value; it becomes AWSCURRENT (the old one AWSPREVIOUS)
    Put {
        secret_id: String,
        #[command(flatten)]
        value: ValueSource,
        /// Staging label for the new version (repeatable) [default: AWSCURRENT]
        #[arg(long = "stage")]
        stages: Vec<String>,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Move AWSCURRENT back to the AWSPREVIOUS version (after a bad rotation)
    Rollback {
        /// Name or ARN
        secret_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// List secrets
    List {
        /// Only names starting with this prefix
        #[arg(long)]
        prefix: Option<String>,
        /// Include secrets scheduled for deletion
        #[arg(long)]
        include_deleted: bool,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show a secret's metadata (never its value)
    Describe {
        secret_id: String,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Schedule a secret for deletion (or delete it now with --force)
    Delete {
        secret_id: String,
        /// Days before the deletion is carried out (7-30) [default: 30]
        #[arg(long, conflicts_with = "force")]
        recovery_window_days: Option<i64>,
        /// Delete immediately, without a recovery window
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Cancel a scheduled deletion
    Restore {
        secret_id: String,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Every version of a secret, newest first: created date, staging labels, and who created it (from
    /// the audit log, when the caller may read it). Never a value
    History {
        /// Name or ARN
        secret_id: String,
        /// Accepted for older scripts: versions without labels are always listed now
        #[arg(long, hide = true)]
        all: bool,
        /// Do not look up who created each version in the audit log
        #[arg(long)]
        no_audit: bool,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
}

pub(crate) fn parse_tag(s: &str) -> Result<Tag, String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("tags are KEY=VALUE, got {s:?}"))?;
    Ok(Tag { key: k.to_string(), value: v.to_string() })
}

fn client(conn: &Connection) -> anyhow::Result<Client> {
    client_for(conn, "SECRETS_MANAGER")
}

/// A client for one service; `env_suffix` names its endpoint variable (`AWS_ENDPOINT_URL_<SUFFIX>`).
pub(crate) fn client_for(conn: &Connection, env_suffix: &str) -> anyhow::Result<Client> {
    let opts = ResolveOptions {
        endpoint_url: conn.endpoint_url.clone(),
        region: conn.region.clone(),
        profile: conn.profile.clone(),
    };
    let config = ClientConfig::resolve(&opts, env_suffix)?;
    Ok(Client::new(config)?)
}

async fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    client: &Client,
    op: &str,
    req: &Req,
) -> Result<Resp, ClientError> {
    client.call(SERVICE, &format!("secretsmanager.{op}"), req).await
}

fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn show<T: serde::Serialize>(resp: &T, out: &OutputArgs) -> anyhow::Result<()> {
    let value = serde_json::to_value(resp)?;
    output::print(&output::select(&value, out.query.as_deref()), out.output);
    Ok(())
}

pub(crate) use crate::hints::explain;

pub async fn run(cmd: SecretCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretCommand::Create { name, value, description, tags, kms_key_id, conn, out } => {
            let value = value.read()?;
            let req = CreateSecretRequest {
                name,
                client_request_token: value.as_ref().map(|_| new_token()),
                description,
                kms_key_id,
                secret_string: value,
                tags: (!tags.is_empty()).then_some(tags),
                ..Default::default()
            };
            let resp: SecretIdentityResponse = call(&client(&conn)?, "CreateSecret", &req).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        SecretCommand::Rollback { secret_id, conn } => {
            return crate::rotation::rollback(&client(&conn)?, &secret_id).await
        }
        SecretCommand::Get { secret_id, version_id, version_stage, json_key, json, conn } => {
            let req = GetSecretValueRequest { secret_id, version_id, version_stage };
            let resp: GetSecretValueResponse = call(&client(&conn)?, "GetSecretValue", &req).await.map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
                return Ok(ExitCode::SUCCESS);
            }
            let Some(text) = resp.secret_string.as_ref() else {
                bail!("this secret holds a binary value; use --json to get it base64-encoded");
            };
            let text = text.0.expose_str()?;
            match json_key {
                None => println!("{text}"),
                Some(key) => {
                    let doc: Value = serde_json::from_str(text).context("the secret value is not a JSON object")?;
                    match doc.get(&key) {
                        Some(Value::String(s)) => println!("{s}"),
                        Some(other) => println!("{other}"),
                        None => bail!("the secret has no key {key:?}"),
                    }
                }
            }
        }
        SecretCommand::Put { secret_id, value, stages, conn, out } => {
            let Some(value) = value.read()? else {
                bail!("give the new value with --value, --value-file or --value-stdin")
            };
            let req = PutSecretValueRequest {
                secret_id,
                client_request_token: Some(new_token()),
                secret_string: Some(value),
                version_stages: (!stages.is_empty()).then_some(stages),
                ..Default::default()
            };
            let resp: PutSecretValueResponse = call(&client(&conn)?, "PutSecretValue", &req).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        SecretCommand::List { prefix, include_deleted, conn, out } => {
            let client = client(&conn)?;
            let all = client
                .call_all_pages(
                    SERVICE,
                    "secretsmanager.ListSecrets",
                    |next_token| ListSecretsRequest {
                        include_planned_deletion: include_deleted.then_some(true),
                        next_token,
                        filters: prefix.clone().map(|p| vec![Filter { key: "name".into(), values: vec![p] }]),
                        ..Default::default()
                    },
                    |r: ListSecretsResponse| (r.secret_list, r.next_token),
                )
                .await
                .map_err(explain)?;
            if out.output == Format::Table && out.query.is_none() {
                let rows: Vec<Value> = all
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "Name": s.name,
                            "Description": s.description.clone().unwrap_or_default(),
                            "Deleted": s.deleted_date.map(|_| "scheduled").unwrap_or(""),
                        })
                    })
                    .collect();
                output::print(&Value::Array(rows), Format::Table);
            } else {
                show(&serde_json::json!({ "SecretList": all }), &out)?;
            }
        }
        SecretCommand::Describe { secret_id, conn, out } => {
            let resp: SecretDescription =
                call(&client(&conn)?, "DescribeSecret", &SecretIdRequest { secret_id }).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        SecretCommand::Delete { secret_id, recovery_window_days, force, conn, out } => {
            let req = DeleteSecretRequest {
                secret_id,
                recovery_window_in_days: recovery_window_days,
                force_delete_without_recovery: force.then_some(true),
            };
            let resp: DeleteSecretResponse = call(&client(&conn)?, "DeleteSecret", &req).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        SecretCommand::Restore { secret_id, conn, out } => {
            let resp: SecretIdentityResponse =
                call(&client(&conn)?, "RestoreSecret", &SecretIdRequest { secret_id }).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        SecretCommand::History { secret_id, all: _, no_audit, conn, out } => {
            return crate::history::run(secret_id, !no_audit, &conn, &out).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
