//! `coffer export`: the values of the secrets and parameters under some paths, as a dotenv file (named
//! as `coffer exec` names them) or as JSON keyed by their full names. For migrating and backing up;
//! printing values is its purpose.

use std::process::ExitCode;

use anyhow::bail;
use coffer_client::source::{resolve, SecretSource, Selection};

use crate::envset::{print_stdout, render, EnvFormat};
use crate::exec::explain_source;
use crate::secret::client_for;
use crate::Connection;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// KEY=value lines, each key named as `coffer exec` names the variable
    #[default]
    Dotenv,
    /// One JSON object: full secret or parameter name -> value
    Json,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Export the secrets and parameters under this path (repeatable)
    #[arg(long = "path", value_name = "PATH", required = true)]
    paths: Vec<String>,
    /// Also export every level below each path, not only its direct children
    #[arg(long, short = 'r')]
    recursive: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = ExportFormat::Dotenv)]
    format: ExportFormat,
    #[command(flatten)]
    conn: Connection,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let source = SecretSource::Server {
        secrets: client_for(&args.conn, "SECRETS_MANAGER")?,
        parameters: client_for(&args.conn, "SSM")?,
    };
    let selection = Selection { paths: args.paths, recursive: args.recursive };
    let loaded = source.load(&selection).await.map_err(explain_source)?;
    for skipped in &loaded.skipped {
        eprintln!("warning: skipping {}: {}", skipped.origin, skipped.reason);
    }
    let text = match args.format {
        ExportFormat::Dotenv => {
            let (variables, _) = resolve(loaded.variables, false).map_err(|c| {
                anyhow::anyhow!("{c}\nhint: export them one path at a time, or use --format json (full names)")
            })?;
            let pairs: Vec<(&str, &str)> = variables.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
            render(&pairs, EnvFormat::Dotenv)?
        }
        ExportFormat::Json => {
            let mut pairs: Vec<(&str, &str)> =
                loaded.variables.iter().map(|v| (v.origin.name(), v.value.as_str())).collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            if let Some(pair) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
                bail!("{} names both a secret and a parameter, which one JSON key cannot hold; rename one", pair[0].0);
            }
            render(&pairs, EnvFormat::Json)?
        }
    };
    print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
