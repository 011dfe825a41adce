//! `coffer operator ...`: initialize, unseal, seal and rekey a server whose master key is sealed with
//! Shamir key shares (`coffer server --master-key-source shamir`), in the manner of `vault operator`.
//!
//! `status`, `init` and `unseal` are unsigned (a sealed server has no keys to check a signature with);
//! `seal` and `rekey` are signed with the root credentials.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{bail, Context};
use coffer_client::{Client, ClientConfig, ClientError, ResolveOptions};
use coffer_server::seal::{
    InitRequest, InitResponse, RekeyRequest, RekeyResponse, SealStatusResponse, UnsealRequest, SIGNING_SERVICE,
    TARGET_PREFIX,
};
use zeroize::Zeroizing;

use crate::Connection;

/// `AWS_ENDPOINT_URL_COFFER` overrides `AWS_ENDPOINT_URL` for these commands.
const ENDPOINT_ENV_SUFFIX: &str = "COFFER";

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OperatorFormat {
    /// Lines for people
    #[default]
    Text,
    /// The API response as JSON
    Json,
}

#[derive(clap::Subcommand, Debug)]
pub enum OperatorCommand {
    /// Initialize a server started with --master-key-source shamir: prints the key shares and the root
    /// credentials, once
    Init {
        /// Number of key shares to split the unseal key into (1-255)
        #[arg(long, default_value_t = 5)]
        key_shares: u32,
        /// Number of key shares needed to unseal (2 up to --key-shares; 1 only with a single share)
        #[arg(long, default_value_t = 3)]
        key_threshold: u32,
        #[arg(long, value_enum, default_value_t)]
        format: OperatorFormat,
        #[command(flatten)]
        conn: Connection,
    },
    /// Submit one key share; the server unseals when the threshold is reached. Without SHARE it is read
    /// from a hidden prompt (on a terminal) or the first line of standard input
    Unseal {
        /// The key share (visible in shell history and the process list; prefer the prompt or stdin)
        share: Option<String>,
        /// Forget the shares submitted so far instead
        #[arg(long, conflicts_with = "share")]
        reset: bool,
        #[arg(long, value_enum, default_value_t)]
        format: OperatorFormat,
        #[command(flatten)]
        conn: Connection,
    },
    /// Seal the server: it drops its keys from memory and serves nothing until unsealed (root only)
    Seal {
        #[command(flatten)]
        conn: Connection,
    },
    /// Show whether the server is initialized and sealed, and the unseal progress (exit code 2 when sealed)
    Status {
        #[arg(long, value_enum, default_value_t)]
        format: OperatorFormat,
        #[command(flatten)]
        conn: Connection,
    },
    /// Replace the key shares; the master key and the data stay as they are, the old shares stop
    /// working (root only). The current shares (at least the threshold) are read one per line from
    /// standard input, or from hidden prompts on a terminal
    Rekey {
        /// Number of new key shares (1-255)
        #[arg(long, default_value_t = 5)]
        key_shares: u32,
        /// Number of new key shares needed to unseal
        #[arg(long, default_value_t = 3)]
        key_threshold: u32,
        #[arg(long, value_enum, default_value_t)]
        format: OperatorFormat,
        #[command(flatten)]
        conn: Connection,
    },
}

fn options(conn: &Connection) -> ResolveOptions {
    ResolveOptions {
        endpoint_url: conn.endpoint_url.clone(),
        region: conn.region.clone(),
        profile: conn.profile.clone(),
    }
}

/// A client for the unsigned targets: no credentials needed.
fn unsigned_client(conn: &Connection) -> anyhow::Result<Client> {
    Ok(Client::new(ClientConfig::resolve_unsigned(&options(conn), ENDPOINT_ENV_SUFFIX)?)?)
}

fn signed_client(conn: &Connection) -> anyhow::Result<Client> {
    Ok(Client::new(ClientConfig::resolve(&options(conn), ENDPOINT_ENV_SUFFIX)?)?)
}

fn target(operation: &str) -> String {
    format!("{TARGET_PREFIX}.{operation}")
}

/// Adds what to do next to the operator errors, then the hints every command shares.
fn explain(e: ClientError) -> anyhow::Error {
    let hint = match &e {
        ClientError::Api { code, .. } => match code.as_str() {
            "InvalidKeyShareException" => Some("check the share for typos; old shares stop working after a rekey"),
            "DuplicateKeyShareException" => Some("each holder submits a different share"),
            "AccessDeniedException" => {
                Some("seal and rekey need the root credentials printed by `coffer operator init`")
            }
            "UnknownOperationException" => Some("is the server started with --master-key-source shamir?"),
            _ => None,
        },
        _ => None,
    };
    match hint {
        Some(h) => anyhow::anyhow!("{e}\nhint: {h}"),
        None => crate::secret::explain(e),
    }
}

async fn status(client: &Client) -> anyhow::Result<SealStatusResponse> {
    client.call_unsigned(&target("SealStatus"), &serde_json::json!({})).await.map_err(explain)
}

/// Reads one share: from a hidden prompt on a terminal, else the first line of standard input.
fn read_share(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    let text = if std::io::stdin().is_terminal() {
        Zeroizing::new(rpassword::prompt_password(prompt).context("reading the key share")?)
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).context("reading the key share from standard input")?;
        line
    };
    let trimmed = Zeroizing::new(text.trim().to_string());
    if trimmed.is_empty() {
        bail!("no key share given");
    }
    Ok(trimmed)
}

/// Reads the current shares for a rekey: `count` hidden prompts on a terminal, else every non-empty
/// line of standard input.
fn read_shares(count: u32) -> anyhow::Result<Vec<String>> {
    let mut shares = Vec::new();
    if std::io::stdin().is_terminal() {
        for i in 1..=count {
            shares.push(read_share(&format!("Current key share {i} of {count}: "))?.to_string());
        }
    } else {
        for line in std::io::stdin().lock().lines() {
            let line = Zeroizing::new(line.context("reading key shares from standard input")?);
            if !line.trim().is_empty() {
                shares.push(line.trim().to_string());
            }
        }
    }
    if shares.is_empty() {
        bail!("no key shares given: pass the current key shares one per line on standard input");
    }
    Ok(shares)
}

fn print_status(s: &SealStatusResponse, format: OperatorFormat) -> anyhow::Result<()> {
    if format == OperatorFormat::Json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!("Initialized      {}", s.initialized);
    println!("Sealed           {}", s.sealed);
    if let (Some(shares), Some(threshold)) = (s.shares, s.threshold) {
        println!("Key shares       {shares}");
        println!("Key threshold    {threshold}");
        if s.sealed {
            println!("Unseal progress  {}/{threshold}", s.progress);
        }
    }
    Ok(())
}

fn print_shares(keys: &[String], shares: u32, threshold: u32, what: &str) {
    for (i, key) in keys.iter().enumerate() {
        println!("Key share {}: {key}", i + 1);
    }
    println!();
    println!(
        "{what} with {shares} key shares and a key threshold of {threshold}. Hand each key share to a different\n\
         person and keep them safe: Coffer keeps only a hash of each, and they cannot be shown again.\n\
         Whenever Coffer starts or is sealed, {threshold} of them must be given to `coffer operator unseal`\n\
         before it serves requests again."
    );
}

pub async fn run(cmd: OperatorCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        OperatorCommand::Init { key_shares, key_threshold, format, conn } => {
            let client = unsigned_client(&conn)?;
            let req = InitRequest { secret_shares: key_shares, secret_threshold: key_threshold };
            let resp: InitResponse = client.call_unsigned(&target("Init"), &req).await.map_err(explain)?;
            if format == OperatorFormat::Json {
                println!("{}", Zeroizing::new(serde_json::to_string_pretty(&resp)?).as_str());
                return Ok(ExitCode::SUCCESS);
            }
            print_shares(&resp.keys, resp.secret_shares, resp.secret_threshold, "Coffer initialized");
            println!();
            match (&resp.root_access_key_id, &resp.root_secret_access_key) {
                (Some(id), Some(secret)) => println!(
                    "Root credentials (shown only once):\n\
                     \x20 aws_access_key_id     = {id}\n\
                     \x20 aws_secret_access_key = {secret}\n\
                     Use the root credentials only to set up other principals, and to seal or rekey."
                ),
                _ => println!(
                    "The root access key could not be created now; it is created at the first unseal and its\n\
                     credentials are written to <data-dir>/root-credentials on the server."
                ),
            }
            println!();
            println!("Coffer is still sealed: unseal it with `coffer operator unseal`.");
        }
        OperatorCommand::Unseal { share, reset, format, conn } => {
            let client = unsigned_client(&conn)?;
            let req = if reset {
                UnsealRequest { key: None, reset: true }
            } else {
                let key = match share {
                    Some(s) => Zeroizing::new(s),
                    None => read_share("Key share (will be hidden): ")?,
                };
                UnsealRequest { key: Some(key.to_string()), reset: false }
            };
            let resp: SealStatusResponse = client.call_unsigned(&target("Unseal"), &req).await.map_err(explain)?;
            print_status(&resp, format)?;
            if format == OperatorFormat::Text && !resp.sealed {
                println!("Coffer is unsealed.");
            }
        }
        OperatorCommand::Seal { conn } => {
            let client = signed_client(&conn)?;
            let resp: SealStatusResponse =
                client.call(SIGNING_SERVICE, &target("Seal"), &serde_json::json!({})).await.map_err(explain)?;
            if !resp.sealed {
                bail!("the server answered but is not sealed");
            }
            println!("Coffer is sealed.");
        }
        OperatorCommand::Status { format, conn } => {
            let resp = status(&unsigned_client(&conn)?).await?;
            print_status(&resp, format)?;
            // As `vault status`: 0 unsealed, 2 sealed (or uninitialized), 1 error.
            if resp.sealed {
                return Ok(ExitCode::from(2));
            }
        }
        OperatorCommand::Rekey { key_shares, key_threshold, format, conn } => {
            let client = signed_client(&conn)?;
            let current = status(&client).await?;
            let (Some(threshold), false) = (current.threshold, current.sealed) else {
                bail!("the server must be initialized and unsealed to rekey (see `coffer operator status`)");
            };
            let req = RekeyRequest {
                keys: read_shares(threshold)?,
                secret_shares: key_shares,
                secret_threshold: key_threshold,
            };
            let resp: RekeyResponse = client.call(SIGNING_SERVICE, &target("Rekey"), &req).await.map_err(explain)?;
            if format == OperatorFormat::Json {
                println!("{}", Zeroizing::new(serde_json::to_string_pretty(&resp)?).as_str());
                return Ok(ExitCode::SUCCESS);
            }
            print_shares(&resp.keys, resp.secret_shares, resp.secret_threshold, "Coffer was rekeyed");
            println!("The previous key shares no longer work.");
        }
    }
    Ok(ExitCode::SUCCESS)
}
