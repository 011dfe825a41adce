//! `coffer env`: print the variables `coffer exec` would set, as a dotenv file, shell `export` lines or
//! a JSON object. Printing values is this command's purpose; nothing else is printed to stdout.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use coffer_client::dotenv;
use zeroize::Zeroizing;

use crate::exec::{load_environment, LoadArgs};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EnvFormat {
    /// KEY=value lines, quoted so any dotenv parser reads the exact value back
    #[default]
    Dotenv,
    /// `export KEY='value'` lines for `eval "$(coffer env ...)"`
    Shell,
    /// One JSON object, name -> value
    Json,
}

#[derive(clap::Args, Debug)]
pub struct EnvArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = EnvFormat::Dotenv)]
    format: EnvFormat,
}

/// Whether a shell accepts `name` as a variable name.
fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `value` in single quotes, each `'` written as `'\''`: POSIX shells take everything else in single
/// quotes literally (newlines, `$`, backslashes, backticks).
fn shell_quote(value: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 2));
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

/// The pairs in `format`.
pub(crate) fn render(pairs: &[(&str, &str)], format: EnvFormat) -> anyhow::Result<Zeroizing<String>> {
    match format {
        EnvFormat::Dotenv => Ok(dotenv::write(pairs.iter().copied())?),
        EnvFormat::Shell => {
            let mut out = Zeroizing::new(String::new());
            for (name, value) in pairs {
                if !is_shell_name(name) {
                    bail!("{name} is not a valid shell variable name; use --format dotenv or json");
                }
                out.push_str("export ");
                out.push_str(name);
                out.push('=');
                out.push_str(&shell_quote(value));
                out.push('\n');
            }
            Ok(out)
        }
        EnvFormat::Json => {
            let map: std::collections::BTreeMap<&str, &str> = pairs.iter().copied().collect();
            let mut text = Zeroizing::new(serde_json::to_string_pretty(&map)?);
            text.push('\n');
            Ok(text)
        }
    }
}

/// Writes `text` to stdout; a closed pipe (`coffer env | head`) is an error, not a panic.
pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("writing to standard output")
}

pub async fn run(args: EnvArgs) -> anyhow::Result<ExitCode> {
    let environment = load_environment(&args.load).await?;
    let pairs: Vec<(&str, &str)> = environment.variables.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
    print_stdout(&render(&pairs, args.format)?)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's").as_str(), r"'it'\''s'");
        assert_eq!(shell_quote("").as_str(), "''");
        assert!(is_shell_name("_A1"));
        assert!(!is_shell_name("1A"));
        assert!(!is_shell_name("A-B"));
        assert!(!is_shell_name(""));
    }

    #[test]
    fn rendering_in_each_format() {
        let pairs = [("A", "x y"), ("B", "it's")];
        assert_eq!(render(&pairs, EnvFormat::Dotenv).unwrap().as_str(), "A='x y'\nB=\"it's\"\n");
        assert_eq!(render(&pairs, EnvFormat::Shell).unwrap().as_str(), "export A='x y'\nexport B='it'\\''s'\n");
        let json: serde_json::Value = serde_json::from_str(&render(&pairs, EnvFormat::Json).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"A": "x y", "B": "it's"}));
        assert!(render(&[("a.b", "1")], EnvFormat::Shell).is_err());
    }
}
