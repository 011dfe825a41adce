//! `coffer profile list|show`: the profiles a command can use — Coffer's own configuration file
//! (`$COFFER_CONFIG` or `~/.config/coffer/config.toml`) and the AWS config and credentials files — and
//! what one resolves to, each setting with where it came from. Secret keys and session tokens are never
//! printed: only whether they are set, and an access key id's last four characters.

use std::process::ExitCode;

use coffer_client::config::{AwsFiles, Resolved};
use coffer_client::profile::{Profile, ProfileFile};
use coffer_client::{ClientConfig, ResolveOptions};
use serde_json::{json, Value};

use crate::output::{self, Format};
use crate::Connection;

#[derive(clap::Subcommand, Debug)]
pub enum ProfileCommand {
    /// List the profiles of the Coffer configuration file and of the AWS config and credentials files
    List {
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Show the endpoint, region and credentials a command would use, and where each one comes from
    Show {
        /// The profile to resolve, as --profile NAME would (else COFFER_PROFILE, AWS_PROFILE or default)
        name: Option<String>,
        #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
        output: Format,
        #[command(flatten)]
        conn: Connection,
    },
}

/// An access key id with all but its last four characters hidden, as `aws configure list` shows it.
fn mask(access_key_id: &str) -> String {
    let chars: Vec<char> = access_key_id.chars().collect();
    let shown: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("****{shown}")
}

/// How a Coffer profile gives its credentials, without the secret.
fn coffer_credentials(file: &ProfileFile, name: &str, profile: &Profile) -> String {
    match (&profile.access_key_id, file.credentials_location(name)) {
        (Some(id), _) => format!("access key {}", mask(id)),
        (None, Some((path, section))) => format!("[{section}] of {}", path.display()),
        (None, None) => String::new(),
    }
}

/// Warns when the configuration file holds secret keys and others may read it.
fn warn_if_readable_by_others(file: &ProfileFile) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let holds_secrets = file.profiles.values().any(|p| p.secret_access_key.is_some() || p.session_token.is_some());
        let mode = std::fs::metadata(&file.path).map(|m| m.permissions().mode()).unwrap_or(0);
        if holds_secrets && mode & 0o077 != 0 {
            eprintln!(
                "warning: {} holds secret keys and other users may read it: chmod 600 {}",
                file.path.display(),
                file.path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = file;
}

fn list(output: Format) -> anyhow::Result<()> {
    let coffer = ProfileFile::load_from_environment()?;
    let aws = AwsFiles::from_environment();
    // What a command without --profile would use now (an invalid COFFER_PROFILE marks nothing).
    let active = ClientConfig::resolve_explained(&ResolveOptions::default(), "SECRETS_MANAGER").ok();
    let active_coffer = active.as_ref().and_then(|r| r.coffer_profile.as_ref().map(|(name, _)| name.clone()));
    let active_aws = active.as_ref().map(|r| r.aws_profile.clone());

    let mut rows: Vec<Value> = Vec::new();
    if let Some(file) = &coffer {
        warn_if_readable_by_others(file);
        for (name, profile) in &file.profiles {
            rows.push(json!({
                "Active": active_coffer.as_deref() == Some(name.as_str()),
                "Name": name,
                "From": "coffer",
                "Endpoint": profile.endpoint,
                "Region": profile.region,
                "Credentials": coffer_credentials(file, name, profile),
                "Description": profile.description,
            }));
        }
    }
    for name in aws.profile_names() {
        rows.push(json!({
            "Active": active_aws.as_deref() == Some(name.as_str()),
            "Name": name,
            "From": "aws",
            "Endpoint": aws.setting(&name, "endpoint_url"),
            "Region": aws.setting(&name, "region"),
            "Credentials": aws.access_key_id(&name).map(|(id, _)| format!("access key {}", mask(&id))).unwrap_or_default(),
            "Description": Value::Null,
        }));
    }
    match output {
        Format::Json => output::print(
            &json!({
                "ConfigFile": coffer.as_ref().map(|f| f.path.display().to_string()),
                "AwsCredentialsFile": aws.credentials_file.as_ref().map(|p| p.display().to_string()),
                "AwsConfigFile": aws.config_file.as_ref().map(|p| p.display().to_string()),
                "Profiles": rows,
            }),
            Format::Json,
        ),
        Format::Raw => rows.iter().for_each(|r| println!("{}", output::cell(&r["Name"]))),
        Format::Table => {
            if rows.is_empty() {
                eprintln!(
                    "no profiles: add [profile.NAME] tables to {} (or $COFFER_CONFIG), or use the AWS config files",
                    coffer_client::profile::config_path_from_environment()
                        .map_or_else(|| "~/.config/coffer/config.toml".into(), |p| p.display().to_string())
                );
                return Ok(());
            }
            let headers = ["ACTIVE", "NAME", "FROM", "ENDPOINT", "REGION", "CREDENTIALS", "DESCRIPTION"];
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let active = if r["Active"] == Value::Bool(true) { "*" } else { "" };
                    let mut row = vec![active.to_string()];
                    row.extend(headers[1..].iter().map(|h| output::cell(&r[title(h)])));
                    row
                })
                .collect();
            output::print_columns(&headers, &cells);
        }
    }
    Ok(())
}

/// A column header's JSON member (`CREDENTIALS` is `Credentials`).
fn title(header: &str) -> &'static str {
    match header {
        "NAME" => "Name",
        "FROM" => "From",
        "ENDPOINT" => "Endpoint",
        "REGION" => "Region",
        "CREDENTIALS" => "Credentials",
        _ => "Description",
    }
}

fn show(resolved: &Resolved, output: Format) {
    let credentials = &resolved.config.credentials;
    let has_credentials = resolved.credentials_source.is_some();
    let setting = |value: Value, source: Option<String>| json!({ "Value": value, "Source": source });
    let doc = json!({
        "Profile": resolved.coffer_profile.as_ref().map(|(name, _)| name),
        "ConfigFile": resolved.coffer_profile.as_ref().map(|(_, file)| file.display().to_string()),
        "AwsProfile": resolved.aws_profile,
        "Endpoint": setting(json!(resolved.config.endpoint), Some(resolved.endpoint_source.to_string())),
        "Region": setting(json!(resolved.config.region), Some(resolved.region_source.to_string())),
        "AccessKeyId": setting(
            if has_credentials { json!(mask(&credentials.access_key_id)) } else { Value::Null },
            resolved.credentials_source.as_ref().map(ToString::to_string),
        ),
        "SecretAccessKey": if has_credentials { "set (not shown)" } else { "not set" },
        "SessionToken": if credentials.session_token.is_some() { "set (not shown)" } else { "not set" },
        "CaBundle": resolved.config.ca_bundle.as_ref().map(|p| p.display().to_string()),
    });
    if output != Format::Table {
        output::print(&doc, Format::Json);
        return;
    }
    let line =
        |name: &str, value: &Value, source: &Value| vec![name.to_string(), output::cell(value), output::cell(source)];
    let rows = vec![
        line("profile", &doc["Profile"], &doc["ConfigFile"]),
        line("aws profile", &doc["AwsProfile"], &Value::Null),
        line("endpoint", &doc["Endpoint"]["Value"], &doc["Endpoint"]["Source"]),
        line("region", &doc["Region"]["Value"], &doc["Region"]["Source"]),
        line("access key id", &doc["AccessKeyId"]["Value"], &doc["AccessKeyId"]["Source"]),
        line("secret access key", &doc["SecretAccessKey"], &Value::Null),
        line("session token", &doc["SessionToken"], &Value::Null),
        line("ca bundle", &doc["CaBundle"], &Value::Null),
    ];
    output::print_columns(&["SETTING", "VALUE", "FROM"], &rows);
    if !has_credentials {
        eprintln!(
            "note: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give the profile access_key_id and \
             secret_access_key or credentials_file"
        );
    }
}

pub async fn run(cmd: ProfileCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProfileCommand::List { output } => list(output)?,
        ProfileCommand::Show { name, output, conn } => {
            let options = ResolveOptions {
                endpoint_url: conn.endpoint_url.clone(),
                region: conn.region.clone(),
                profile: name.or(conn.profile.clone()),
            };
            if let Ok(Some(file)) = ProfileFile::load_from_environment() {
                warn_if_readable_by_others(&file);
            }
            show(&ClientConfig::resolve_explained(&options, "SECRETS_MANAGER")?, output);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_ids_show_their_last_four_characters() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "****MPLE");
        assert_eq!(mask("AB"), "****AB");
    }
}
