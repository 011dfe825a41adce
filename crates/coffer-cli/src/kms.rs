//! `coffer kms ...`: KMS keys, aliases and envelope encryption from the command line, over the same
//! signed AWS protocol (`TrentService.<Op>`; re-wrapping is Coffer's `CofferKms.Rewrap`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use coffer_client::Client;
use coffer_crypto::SecretBytes;
use coffer_wire::kms::*;
use coffer_wire::SensitiveBlob;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::output::{self, Format};
use crate::secret::{client_for, explain, show, OutputArgs};
use crate::Connection;

#[derive(clap::Subcommand, Debug)]
pub enum KmsCommand {
    /// Create a symmetric key
    Create {
        #[arg(long)]
        description: Option<String>,
        /// Tag as KEY=VALUE (repeatable)
        #[arg(long = "tag", value_parser = parse_kms_tag)]
        tags: Vec<KmsTag>,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show a key (id, ARN, alias/NAME or alias ARN)
    Describe {
        key_id: String,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List keys with their aliases
    List {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Point a new alias (alias/NAME) at a key
    CreateAlias {
        alias_name: String,
        key_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Point an existing alias at another key
    UpdateAlias {
        alias_name: String,
        key_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    DeleteAlias {
        alias_name: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Allow the key to be used again
    Enable {
        key_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Stop all use of the key: values under it can't be read or written until it is enabled
    Disable {
        key_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Rotate the key every N days (90..2560, default 365)
    EnableRotation {
        key_id: String,
        #[arg(long)]
        days: Option<i64>,
        #[command(flatten)]
        conn: Connection,
    },
    DisableRotation {
        key_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show whether and when the key rotates
    RotationStatus {
        key_id: String,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// New key material now; stored values are re-wrapped in the background (or with `coffer kms rewrap`)
    Rotate {
        key_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Re-wrap every stored data key under the newest material of its key, without decrypting values
    Rewrap {
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete the key after 7..30 days (refused while secrets or parameters use it, unless --force)
    ScheduleDeletion {
        key_id: String,
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Delete even though secrets or parameters still depend on it (they become unreadable)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Keep a key scheduled for deletion (it comes back disabled)
    CancelDeletion {
        key_id: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Encrypt up to 4096 bytes; prints the base64 ciphertext
    Encrypt {
        key_id: String,
        /// The plaintext (else read from stdin)
        #[arg(long)]
        plaintext: Option<String>,
        /// Encryption context as KEY=VALUE (repeatable); decryption needs the same
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Decrypt a base64 ciphertext (argument or stdin); prints the plaintext
    Decrypt {
        ciphertext: Option<String>,
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        #[command(flatten)]
        conn: Connection,
    },
    /// A fresh data key: its plaintext and ciphertext (base64), for client-side envelope encryption
    GenerateDataKey {
        key_id: String,
        /// AES_256 or AES_128
        #[arg(long, default_value = "AES_256")]
        key_spec: String,
        #[arg(long = "context", value_parser = parse_pair)]
        context: Vec<(String, String)>,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Tag a key (KEY=VALUE ...)
    Tag {
        key_id: String,
        #[arg(required = true, value_parser = parse_kms_tag)]
        tags: Vec<KmsTag>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Remove tags from a key by name
    Untag {
        key_id: String,
        #[arg(required = true)]
        tag_keys: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

fn parse_kms_tag(s: &str) -> Result<KmsTag, String> {
    parse_pair(s).map(|(k, v)| KmsTag { tag_key: k, tag_value: v })
}

fn context(pairs: Vec<(String, String)>) -> Option<EncryptionContext> {
    (!pairs.is_empty()).then(|| pairs.into_iter().collect::<BTreeMap<_, _>>())
}

async fn call<Req: Serialize, Resp: DeserializeOwned>(client: &Client, op: &str, req: &Req) -> anyhow::Result<Resp> {
    client.call(SERVICE, &format!("TrentService.{op}"), req).await.map_err(explain)
}

/// For operations that answer `{}`.
async fn call_empty<Req: Serialize>(client: &Client, op: &str, req: &Req) -> anyhow::Result<()> {
    let _: Value = call(client, op, req).await?;
    Ok(())
}

fn client(conn: &Connection) -> anyhow::Result<Client> {
    client_for(conn, "KMS")
}

fn read_stdin_trimmed() -> anyhow::Result<SecretBytes> {
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(SecretBytes::new(buf))
}

pub async fn run(cmd: KmsCommand) -> anyhow::Result<ExitCode> {
    use KmsCommand::*;
    match cmd {
        Create { description, tags, conn, out } => {
            let req = CreateKeyRequest { description, tags: (!tags.is_empty()).then_some(tags), ..Default::default() };
            let resp: KeyMetadataResponse = call(&client(&conn)?, "CreateKey", &req).await?;
            show(&resp, &out)?;
        }
        Describe { key_id, conn, out } => {
            let resp: KeyMetadataResponse = call(&client(&conn)?, "DescribeKey", &KeyIdRequest { key_id }).await?;
            show(&resp, &out)?;
        }
        List { conn, out } => {
            let client = client(&conn)?;
            let keys = client
                .call_all_pages(
                    SERVICE,
                    "TrentService.ListKeys",
                    |marker| PageRequest { marker, ..Default::default() },
                    |r: ListKeysResponse| (r.keys, r.next_marker),
                )
                .await
                .map_err(explain)?;
            let aliases = client
                .call_all_pages(
                    SERVICE,
                    "TrentService.ListAliases",
                    |marker| PageRequest { marker, ..Default::default() },
                    |r: ListAliasesResponse| (r.aliases, r.next_marker),
                )
                .await
                .map_err(explain)?;
            let rows: Vec<Value> = keys
                .iter()
                .map(|k| {
                    let names: Vec<&str> = aliases
                        .iter()
                        .filter(|a| a.target_key_id.as_deref() == Some(k.key_id.as_str()))
                        .map(|a| a.alias_name.as_str())
                        .collect();
                    serde_json::json!({"KeyId": k.key_id, "Aliases": names.join(","), "KeyArn": k.key_arn})
                })
                .collect();
            if out.output == Format::Table && out.query.is_none() {
                output::print(&Value::Array(rows), Format::Table);
            } else {
                show(&serde_json::json!({ "Keys": rows }), &out)?;
            }
        }
        CreateAlias { alias_name, key_id, conn } => {
            let req = AliasRequest { alias_name, target_key_id: Some(key_id) };
            call_empty(&client(&conn)?, "CreateAlias", &req).await?;
        }
        UpdateAlias { alias_name, key_id, conn } => {
            let req = AliasRequest { alias_name, target_key_id: Some(key_id) };
            call_empty(&client(&conn)?, "UpdateAlias", &req).await?;
        }
        DeleteAlias { alias_name, conn } => {
            call_empty(&client(&conn)?, "DeleteAlias", &AliasRequest { alias_name, target_key_id: None }).await?;
        }
        Enable { key_id, conn } => call_empty(&client(&conn)?, "EnableKey", &KeyIdRequest { key_id }).await?,
        Disable { key_id, conn } => call_empty(&client(&conn)?, "DisableKey", &KeyIdRequest { key_id }).await?,
        EnableRotation { key_id, days, conn } => {
            let req = EnableKeyRotationRequest { key_id, rotation_period_in_days: days };
            call_empty(&client(&conn)?, "EnableKeyRotation", &req).await?;
        }
        DisableRotation { key_id, conn } => {
            call_empty(&client(&conn)?, "DisableKeyRotation", &KeyIdRequest { key_id }).await?
        }
        RotationStatus { key_id, conn, out } => {
            let resp: GetKeyRotationStatusResponse =
                call(&client(&conn)?, "GetKeyRotationStatus", &KeyIdRequest { key_id }).await?;
            show(&resp, &out)?;
        }
        Rotate { key_id, conn } => {
            let _: KeyIdResponse = call(&client(&conn)?, "RotateKeyOnDemand", &KeyIdRequest { key_id }).await?;
        }
        Rewrap { conn, out } => {
            let resp: RewrapResponse =
                client(&conn)?.call(SERVICE, "CofferKms.Rewrap", &serde_json::json!({})).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        ScheduleDeletion { key_id, days, force, conn, out } => {
            let req =
                ScheduleKeyDeletionRequest { key_id, pending_window_in_days: Some(days), force: force.then_some(true) };
            let resp: ScheduleKeyDeletionResponse = call(&client(&conn)?, "ScheduleKeyDeletion", &req).await?;
            show(&resp, &out)?;
        }
        CancelDeletion { key_id, conn } => {
            let _: KeyIdResponse = call(&client(&conn)?, "CancelKeyDeletion", &KeyIdRequest { key_id }).await?;
        }
        Encrypt { key_id, plaintext, context: pairs, conn } => {
            let plaintext = match plaintext {
                Some(p) => SecretBytes::from(p),
                None => read_stdin_trimmed()?,
            };
            let req = EncryptRequest {
                key_id,
                plaintext: SensitiveBlob(plaintext),
                encryption_context: context(pairs),
                encryption_algorithm: None,
                grant_tokens: None,
                dry_run: None,
            };
            let resp: EncryptResponse = call(&client(&conn)?, "Encrypt", &req).await?;
            println!("{}", STANDARD.encode(&resp.ciphertext_blob.0));
        }
        Decrypt { ciphertext, context: pairs, conn } => {
            let text = match ciphertext {
                Some(c) => c,
                None => String::from_utf8(read_stdin_trimmed()?.expose().to_vec())?,
            };
            let blob = STANDARD.decode(text.trim()).map_err(|_| anyhow::anyhow!("the ciphertext is not base64"))?;
            let req = DecryptRequest {
                ciphertext_blob: Blob(blob),
                encryption_context: context(pairs),
                ..Default::default()
            };
            let resp: DecryptResponse = call(&client(&conn)?, "Decrypt", &req).await?;
            match resp.plaintext.0.expose_str() {
                Ok(text) => println!("{text}"),
                Err(_) => println!("{}", STANDARD.encode(resp.plaintext.0.expose())),
            }
        }
        GenerateDataKey { key_id, key_spec, context: pairs, conn, out } => {
            let req = GenerateDataKeyRequest {
                key_id,
                key_spec: Some(key_spec),
                encryption_context: context(pairs),
                ..Default::default()
            };
            let resp: GenerateDataKeyResponse = call(&client(&conn)?, "GenerateDataKey", &req).await?;
            show(&resp, &out)?;
        }
        Tag { key_id, tags, conn } => {
            call_empty(&client(&conn)?, "TagResource", &TagResourceRequest { key_id, tags }).await?
        }
        Untag { key_id, tag_keys, conn } => {
            call_empty(&client(&conn)?, "UntagResource", &UntagResourceRequest { key_id, tag_keys }).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}
