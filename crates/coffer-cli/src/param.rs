//! `coffer param ...`: Parameter Store from the command line, over the same signed AWS protocol.

use std::process::ExitCode;

use anyhow::bail;
use coffer_client::{Client, ClientError};
use coffer_wire::ssm::*;
use coffer_wire::Tag;
use serde_json::Value;

use crate::output::{self, Format};
use crate::secret::{client_for, explain, parse_tag, show, OutputArgs, ValueSource};
use crate::Connection;

#[derive(clap::Subcommand, Debug)]
pub enum ParamCommand {
    /// Create a parameter, or with --overwrite store a new version of it
    Put {
        name: String,
        #[command(flatten)]
        value: ValueSource,
        /// String, StringList or SecureString (required when creating)
        #[arg(long = "type")]
        parameter_type: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// KMS key for a SecureString [default: alias/aws/ssm]
        #[arg(long)]
        key_id: Option<String>,
        #[arg(long)]
        overwrite: bool,
        /// Tag as KEY=VALUE (repeatable; only when creating)
        #[arg(long = "tag", value_parser = parse_tag)]
        tags: Vec<Tag>,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print a parameter's value (name, name:version or name:label); SecureStrings are decrypted
    Get {
        name: String,
        /// Print the whole response as JSON instead of the bare value
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// List the parameters under a path
    List {
        /// The hierarchy to list [default: /]
        #[arg(long, default_value = "/")]
        path: String,
        /// Include every level below the path, not only direct children
        #[arg(long, short = 'r')]
        recursive: bool,
        /// Show values (SecureStrings decrypted)
        #[arg(long)]
        values: bool,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show a parameter's versions (values only with --values)
    History {
        name: String,
        #[arg(long)]
        values: bool,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Attach labels to a version (the latest unless --parameter-version)
    Label {
        name: String,
        #[arg(long)]
        parameter_version: Option<i64>,
        #[arg(required = true)]
        labels: Vec<String>,
        #[command(flatten)]
        conn: Connection,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a parameter and all its versions
    Delete {
        name: String,
        #[command(flatten)]
        conn: Connection,
    },
}

async fn call<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    client: &Client,
    op: &str,
    req: &Req,
) -> Result<Resp, ClientError> {
    client.call(SERVICE, &format!("AmazonSSM.{op}"), req).await
}

fn client(conn: &Connection) -> anyhow::Result<Client> {
    client_for(conn, "SSM")
}

pub async fn run(cmd: ParamCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ParamCommand::Put { name, value, parameter_type, description, key_id, overwrite, tags, conn, out } => {
            let Some(value) = value.read()? else {
                bail!("give the value with --value, --value-file or --value-stdin")
            };
            let req = PutParameterRequest {
                name,
                value: Some(value),
                parameter_type,
                description,
                key_id,
                overwrite: overwrite.then_some(true),
                tags: (!tags.is_empty()).then_some(tags),
                ..Default::default()
            };
            let resp: PutParameterResponse = call(&client(&conn)?, "PutParameter", &req).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        ParamCommand::Get { name, json, conn } => {
            let req = GetParameterRequest { name, with_decryption: Some(true) };
            let resp: GetParameterResponse = call(&client(&conn)?, "GetParameter", &req).await.map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
            } else {
                println!("{}", resp.parameter.value.0.expose_str()?);
            }
        }
        ParamCommand::List { path, recursive, values, conn, out } => {
            let all = client(&conn)?
                .call_all_pages(
                    SERVICE,
                    "AmazonSSM.GetParametersByPath",
                    |next_token| GetParametersByPathRequest {
                        path: path.clone(),
                        recursive: Some(recursive),
                        with_decryption: Some(values),
                        next_token,
                        ..Default::default()
                    },
                    |r: GetParametersByPathResponse| (r.parameters, r.next_token),
                )
                .await
                .map_err(explain)?;
            if out.output == Format::Table && out.query.is_none() {
                let rows: Vec<Value> = all
                    .iter()
                    .map(|p| {
                        let mut row =
                            serde_json::json!({"Name": p.name, "Type": p.parameter_type, "Version": p.version});
                        if values {
                            row["Value"] = Value::String(p.value.0.expose_str().unwrap_or("<binary>").to_string());
                        }
                        row
                    })
                    .collect();
                output::print(&Value::Array(rows), Format::Table);
            } else {
                let mut doc = serde_json::to_value(&all)?;
                if !values {
                    // Without --values no value is printed, not even a SecureString's ciphertext.
                    if let Value::Array(items) = &mut doc {
                        items.iter_mut().filter_map(Value::as_object_mut).for_each(|o| {
                            o.remove("Value");
                        });
                    }
                }
                show(&serde_json::json!({ "Parameters": doc }), &out)?;
            }
        }
        ParamCommand::History { name, values, conn, out } => {
            let all = client(&conn)?
                .call_all_pages(
                    SERVICE,
                    "AmazonSSM.GetParameterHistory",
                    |next_token| GetParameterHistoryRequest {
                        name: name.clone(),
                        with_decryption: Some(values),
                        next_token,
                        ..Default::default()
                    },
                    |r: GetParameterHistoryResponse| (r.parameters, r.next_token),
                )
                .await
                .map_err(explain)?;
            let rows: Vec<Value> = all
                .iter()
                .map(|h| {
                    let mut row = serde_json::json!({
                        "Version": h.version,
                        "Labels": h.labels.join(","),
                        "LastModifiedDate": h.last_modified_date,
                        "Description": h.description.clone().unwrap_or_default(),
                    });
                    if values {
                        row["Value"] = Value::String(h.value.0.expose_str().unwrap_or("<binary>").to_string());
                    }
                    row
                })
                .collect();
            if out.output == Format::Table && out.query.is_none() {
                output::print(&Value::Array(rows), Format::Table);
            } else {
                show(&serde_json::json!({ "Parameters": rows }), &out)?;
            }
        }
        ParamCommand::Label { name, parameter_version, labels, conn, out } => {
            let req = LabelParameterVersionRequest { name, parameter_version, labels };
            let resp: LabelParameterVersionResponse =
                call(&client(&conn)?, "LabelParameterVersion", &req).await.map_err(explain)?;
            show(&resp, &out)?;
        }
        ParamCommand::Delete { name, conn } => {
            let _: Value = call(&client(&conn)?, "DeleteParameter", &NameRequest { name }).await.map_err(explain)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
