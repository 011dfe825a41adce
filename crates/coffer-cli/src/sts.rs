//! `coffer sts ...`: who the caller is, and temporary credentials (a role's, or a session of one's own,
//! possibly MFA-authenticated), over STS's query protocol (`Version=2011-06-15`, signed for `sts`).
//! Credentials print as `export AWS_…=…` lines for `eval "$(coffer sts …)"`, or as JSON.

use std::process::ExitCode;

use coffer_client::sts::{self, TemporaryCredentials};
use coffer_client::{Client, Params};
use zeroize::Zeroizing;

use crate::output;
use crate::secret::{client_for, explain, OutputArgs};
use crate::Connection;

/// `coffer sts [connection flags] COMMAND`.
#[derive(clap::Args, Debug)]
pub struct StsArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: StsCommand,
}

/// `--mfa-serial` and `--mfa-code` go together.
#[derive(clap::Args, Debug)]
pub struct MfaArgs {
    /// The MFA device's serial number (its ARN)
    #[arg(long, requires = "mfa_code")]
    mfa_serial: Option<String>,
    /// The device's current six-digit code
    #[arg(long, requires = "mfa_serial")]
    mfa_code: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum StsCommand {
    /// Show the caller: account, user id and ARN (GetCallerIdentity)
    Whoami {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Temporary credentials of a role (ARN, or a role name in the caller's account)
    AssumeRole {
        /// The role's ARN, or its name in the caller's account
        role_arn: String,
        /// Session name: shows in the assumed-role ARN and the audit log
        session_name: String,
        /// Lifetime in seconds [default: 3600]
        #[arg(long)]
        duration: Option<u32>,
        #[command(flatten)]
        mfa: MfaArgs,
        /// Print JSON instead of export lines
        #[arg(long)]
        json: bool,
    },
    /// Temporary credentials of the caller, e.g. after proving MFA (GetSessionToken)
    SessionToken {
        /// Lifetime in seconds [default: 43200]
        #[arg(long)]
        duration: Option<u32>,
        #[command(flatten)]
        mfa: MfaArgs,
        /// Print JSON instead of export lines
        #[arg(long)]
        json: bool,
    },
}

/// Quotes a value for a POSIX shell: `'…'`, with `'` written as `'\''`.
fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `export AWS_ACCESS_KEY_ID=…` lines, eval-able by sh, bash and zsh.
fn export_lines(t: &TemporaryCredentials) -> Zeroizing<String> {
    let c = &t.credentials;
    let mut out = Zeroizing::new(String::new());
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", c.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.expose()),
        ("AWS_SESSION_TOKEN", c.session_token.expose()),
    ] {
        let quoted = Zeroizing::new(shell_quote(value));
        out.push_str(&format!("export {name}={}\n", quoted.as_str()));
    }
    out
}

fn print_credentials(t: &TemporaryCredentials, json: bool) -> anyhow::Result<()> {
    if json {
        let text = Zeroizing::new(serde_json::to_string_pretty(t)?);
        println!("{}", text.as_str());
        return Ok(());
    }
    print!("{}", export_lines(t).as_str());
    let expiry =
        t.credentials.expiration.map(|e| coffer_client::query::format_timestamp(&e)).unwrap_or_else(|| "?".into());
    match &t.assumed_role_user {
        Some(u) => eprintln!("# credentials for {} until {expiry}", u.arn),
        None => eprintln!("# session credentials until {expiry}"),
    }
    Ok(())
}

async fn call(client: &Client, action: &str, params: Params) -> anyhow::Result<coffer_client::XmlDoc> {
    client.query(sts::SERVICE, sts::VERSION, action, params.as_slice()).await.map_err(explain)
}

pub async fn run(args: StsArgs) -> anyhow::Result<ExitCode> {
    let StsArgs { conn, command } = args;
    let client = client_for(&conn, "STS")?;
    match command {
        StsCommand::Whoami { out } => {
            let doc = call(&client, "GetCallerIdentity", Params::new()).await?;
            let id = sts::CallerIdentity::from_result(doc.result())?;
            let value = serde_json::to_value(&id)?;
            output::print(&output::select(&value, out.query.as_deref()), out.output);
        }
        StsCommand::AssumeRole { role_arn, session_name, duration, mfa, json } => {
            let role_arn = if role_arn.starts_with("arn:") {
                role_arn
            } else {
                let (partition, account) = crate::iam::caller_account(&conn).await?;
                format!("arn:{partition}:iam::{account}:role/{}", role_arn.trim_start_matches('/'))
            };
            let params = Params::new()
                .add("RoleArn", role_arn)
                .add("RoleSessionName", session_name)
                .opt("DurationSeconds", duration.map(|d| d.to_string()))
                .opt("SerialNumber", mfa.mfa_serial)
                .opt("TokenCode", mfa.mfa_code);
            let doc = call(&client, "AssumeRole", params).await?;
            print_credentials(&TemporaryCredentials::from_result(doc.result())?, json)?;
        }
        StsCommand::SessionToken { duration, mfa, json } => {
            let params = Params::new()
                .opt("DurationSeconds", duration.map(|d| d.to_string()))
                .opt("SerialNumber", mfa.mfa_serial)
                .opt("TokenCode", mfa.mfa_code);
            let doc = call(&client, "GetSessionToken", params).await?;
            print_credentials(&TemporaryCredentials::from_result(doc.result())?, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_client::XmlDoc;

    #[test]
    fn export_lines_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("abc/+="), "'abc/+='");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        let doc = XmlDoc::parse(
            "<GetSessionTokenResponse><GetSessionTokenResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>\
             <SecretAccessKey>s/e+c=</SecretAccessKey><SessionToken>tok'en</SessionToken>\
             <Expiration>2026-11-23T10:00:00Z</Expiration></Credentials></GetSessionTokenResult></GetSessionTokenResponse>",
        )
        .unwrap();
        let t = TemporaryCredentials::from_result(doc.result()).unwrap();
        assert_eq!(
            export_lines(&t).as_str(),
            "export AWS_ACCESS_KEY_ID='ASIA1'\nexport AWS_SECRET_ACCESS_KEY='s/e+c='\nexport AWS_SESSION_TOKEN='tok'\\''en'\n"
        );
    }
}
