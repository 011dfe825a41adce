//! `coffer template`: a `.env.example` for the secrets and parameters under some paths — each variable
//! name with its description as a comment and an empty value. It reads only metadata (ListSecrets,
//! DescribeParameters), never a value.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use coffer_client::source::{SecretSource, Selection, VariableInfo};

use crate::envset::print_stdout;
use crate::exec::explain_source;
use crate::secret::client_for;
use crate::Connection;

#[derive(clap::Args, Debug)]
pub struct TemplateArgs {
    /// The secrets and parameters under this path (repeatable)
    #[arg(long = "path", value_name = "PATH", required = true)]
    paths: Vec<String>,
    /// Also every level below each path, not only its direct children
    #[arg(long, short = 'r')]
    recursive: bool,
    /// Write to this file (e.g. .env.example) instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    conn: Connection,
}

/// The template text: variables sorted by name, each once (a name two origins share takes the first
/// description found), a description's lines as `# ` comments above it.
fn render(paths: &[String], infos: Vec<VariableInfo>) -> (String, usize) {
    let mut unique: Vec<VariableInfo> = Vec::with_capacity(infos.len());
    for info in infos {
        match unique.iter_mut().find(|u| u.name == info.name) {
            Some(existing) => {
                if existing.description.as_deref().is_none_or(str::is_empty) {
                    existing.description = info.description;
                }
            }
            None => unique.push(info),
        }
    }
    unique.sort_by(|a, b| a.name.cmp(&b.name));
    let count = unique.len();
    let mut out = format!("# Variables under {} (from `coffer template`): fill in the values.\n", paths.join(", "));
    for info in unique {
        out.push('\n');
        for line in info.description.as_deref().unwrap_or_default().lines().filter(|l| !l.trim().is_empty()) {
            out.push_str("# ");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&info.name);
        out.push_str("=\n");
    }
    (out, count)
}

pub async fn run(args: TemplateArgs) -> anyhow::Result<ExitCode> {
    let source = SecretSource::Server {
        secrets: client_for(&args.conn, "SECRETS_MANAGER")?,
        parameters: client_for(&args.conn, "SSM")?,
    };
    let selection = Selection { paths: args.paths.clone(), recursive: args.recursive };
    let infos = source.describe(&selection).await.map_err(explain_source)?;
    let (text, count) = render(&args.paths, infos);
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {count} variable(s) to {}", path.display());
        }
        None => print_stdout(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_client::source::Origin;

    fn info(name: &str, description: Option<&str>) -> VariableInfo {
        VariableInfo {
            name: name.into(),
            description: description.map(str::to_string),
            origin: Origin::Parameter { name: format!("/p/{name}") },
        }
    }

    #[test]
    fn descriptions_become_comments_above_empty_values() {
        let (text, count) = render(
            &["/p".into()],
            vec![info("B", Some("line one\nline two")), info("A", None), info("B", Some("ignored"))],
        );
        assert_eq!(
            text,
            "# Variables under /p (from `coffer template`): fill in the values.\n\nA=\n\n# line one\n# line two\nB=\n"
        );
        assert_eq!(count, 2);
    }
}
