//! `coffer scan`: finds secrets in files, the git index or history, or standard input (coffer-scan does
//! the work; this is argument handling, ignore files, baselines, output and exit status). Local only,
//! except `--known`, which asks a Coffer server for keyed fingerprints of the values the caller may read
//! (never the values) and reports them wherever they appear, as `coffer-known-secret`.
//!
//! Exit status: 0 when nothing new is found, 1 when something is, 2 on usage errors (a missing path, a
//! bad rules or baseline file, not a git repository, an unknown revision).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use coffer_scan::baseline::Baseline;
use coffer_scan::ignorefile::IgnoreFile;
use coffer_scan::report::{self, Format};
use coffer_scan::walk::{self, WalkOptions};
use coffer_scan::{Finding, KnownSecret, RuleSet, Scanner};

use crate::Connection;

/// Default baseline file name.
const BASELINE: &str = ".coffer-baseline.json";

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScanArgs {
    #[command(subcommand)]
    command: Option<ScanCommand>,
    /// Files or directories to scan, or - for standard input (default: the current directory)
    paths: Vec<PathBuf>,
    /// Scan what is staged in git's index: the lines the next commit adds (for the pre-commit hook)
    #[arg(long, conflicts_with_all = ["git", "paths"])]
    staged: bool,
    /// Scan the lines added by each commit of HEAD's history
    #[arg(long, conflicts_with = "paths")]
    git: bool,
    /// With --git: only the commits after this revision (REV..HEAD)
    #[arg(long, requires = "git", value_name = "REV")]
    since: Option<String>,
    /// Also scan files that .gitignore excludes
    #[arg(long)]
    no_ignore: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Report only findings whose fingerprints are not in this baseline file
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write every finding to a baseline file (default .coffer-baseline.json) and exit 0
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = BASELINE)]
    write_baseline: Option<PathBuf>,
    /// More rules, or replacements for built-in ones (TOML, the shape of the built-in set)
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// An ignore file read in addition to .cofferignore (paths, rule:ID, fingerprint:HEX)
    #[arg(long, value_name = "FILE")]
    ignore_file: Option<PathBuf>,
    /// Color the text output
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    color: ColorArg,
    /// Worker threads (0: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Skip files larger than this many bytes
    #[arg(long, default_value_t = 64 << 20)]
    max_file_size: u64,
    /// No summary line on standard error
    #[arg(long, short)]
    quiet: bool,
    /// Also report the values a Coffer server stores that you may read, in any format (a human-chosen
    /// password too): the server answers keyed fingerprints, never the values
    #[arg(long)]
    known: bool,
    #[command(flatten)]
    conn: Connection,
}

#[derive(clap::Subcommand, Debug)]
enum ScanCommand {
    /// Install a git pre-commit hook that runs `coffer scan --staged`
    InstallHook {
        /// Replace an existing pre-commit hook
        #[arg(long)]
        force: bool,
        /// A directory inside the repository (default: the current directory)
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum FormatArg {
    Text,
    Json,
    Jsonl,
    Sarif,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

/// A usage error: reported, exit status 2.
struct Usage(String);

impl<E: std::fmt::Display> From<E> for Usage {
    fn from(e: E) -> Usage {
        Usage(e.to_string())
    }
}

pub async fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let known = if args.known && args.command.is_none() { known_secrets(&args.conn).await? } else { Vec::new() };
    // Scanning is CPU-bound and runs its own threads; keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || match args.command {
        Some(ScanCommand::InstallHook { force, ref repo }) => install_hook(repo.as_deref(), force),
        None => scan(&args, known),
    })
    .await?;
    Ok(match result {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    })
}

fn scanner(args: &ScanArgs) -> Result<Scanner, Usage> {
    let mut set = RuleSet::builtin()?;
    if let Some(path) = &args.rules {
        let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
        set.extend(RuleSet::parse(&text).map_err(|e| Usage(format!("{}: {e}", path.display())))?);
    }
    Ok(Scanner::from_rules(&set)?)
}

/// The fingerprints of the stored values the caller may read, under a key derived from a fresh salt.
async fn known_secrets(conn: &Connection) -> anyhow::Result<Vec<KnownSecret>> {
    use base64::Engine as _;
    use coffer_wire::scan::GetKnownFingerprintsRequest;
    use coffer_wire::SensitiveBlob;

    let client = crate::secret::client_for(conn, "SECRETS_MANAGER")?;
    let mut salt = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    let request = GetKnownFingerprintsRequest { salt: SensitiveBlob(coffer_crypto::SecretBytes::new(salt)) };
    let answer = client.get_known_fingerprints(&request).await.map_err(crate::secret::explain)?;
    let key = answer.key.0.expose().to_vec();
    let mut known = Vec::with_capacity(answer.fingerprints.len());
    for f in answer.fingerprints {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&f.fingerprint)
            .map_err(|_| anyhow::anyhow!("the server sent a fingerprint that is not base64"))?;
        let fingerprint: [u8; 32] =
            raw.try_into().map_err(|_| anyhow::anyhow!("the server sent a fingerprint that is not 32 bytes"))?;
        let name = match &f.version_stage {
            Some(stage) => format!("{} {} ({stage})", f.kind, f.name),
            None => format!("{} {}", f.kind, f.name),
        };
        known.push(KnownSecret {
            name,
            hmac_key: key.clone(),
            fingerprints: std::collections::HashSet::from([fingerprint]),
            lengths: usize::try_from(f.length).into_iter().collect(),
        });
    }
    Ok(known)
}

fn scan(args: &ScanArgs, known: Vec<KnownSecret>) -> Result<ExitCode, Usage> {
    let scanner = scanner(args)?.with_known(known);
    let cwd = std::env::current_dir()?;
    let mut ignore_paths: Vec<PathBuf> = Vec::new();
    let mut files = 0u64;
    let mut bytes = 0u64;
    let findings: Vec<Finding> = if args.staged || args.git {
        let top = coffer_scan::git::toplevel(&cwd)?;
        ignore_paths.push(top.join(".cofferignore"));
        if args.staged {
            coffer_scan::git::scan_staged(&scanner, &cwd)?
        } else {
            coffer_scan::git::scan_history(&scanner, &cwd, args.since.as_deref(), args.threads)?
        }
    } else {
        let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
        ignore_paths.push(cwd.join(".cofferignore"));
        let mut out = Vec::new();
        let mut roots = Vec::new();
        for p in paths {
            if p.as_os_str() == "-" {
                let mut data = Vec::new();
                std::io::stdin().read_to_end(&mut data)?;
                files += 1;
                bytes += data.len() as u64;
                out.extend(scanner.scan_bytes("-", &data));
            } else {
                if !p.exists() {
                    return Err(Usage(format!("{}: no such file or directory", p.display())));
                }
                if p.is_dir() {
                    ignore_paths.push(p.join(".cofferignore"));
                }
                roots.push(p);
            }
        }
        let opts = WalkOptions { no_ignore: args.no_ignore, max_file_size: args.max_file_size, threads: args.threads };
        let report = walk::scan_paths(&scanner, &roots, &opts)?;
        files += report.files;
        bytes += report.bytes;
        out.extend(report.findings);
        out
    };
    if let Some(extra) = &args.ignore_file {
        if !extra.exists() {
            return Err(Usage(format!("{}: no such file", extra.display())));
        }
        ignore_paths.push(extra.clone());
    }
    ignore_paths.dedup();
    let refs: Vec<&Path> = ignore_paths.iter().map(PathBuf::as_path).collect();
    let ignores = IgnoreFile::load(&refs)?;
    let mut findings: Vec<Finding> = findings.into_iter().filter(|f| !ignores.ignores(f)).collect();

    if let Some(path) = &args.write_baseline {
        Baseline::from_findings(&findings).save(path)?;
        if !args.quiet {
            eprintln!("coffer scan: wrote {} finding(s) to {}", findings.len(), path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut baselined = 0;
    if let Some(path) = &args.baseline {
        let base = Baseline::load(path)?;
        let before = findings.len();
        findings = base.filter_new(findings);
        baselined = before - findings.len();
    }

    let format = match args.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Sarif => Format::Sarif,
    };
    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    report::write(&mut out, format, &findings, &scanner, color)?;
    out.flush()?;
    if !args.quiet {
        let what = if args.staged {
            "in the staged changes".to_string()
        } else if args.git {
            "in the history".to_string()
        } else {
            format!("in {files} file(s), {:.1} MB", bytes as f64 / 1e6)
        };
        let base = if baselined > 0 { format!(" ({baselined} more in the baseline)") } else { String::new() };
        eprintln!("coffer scan: {} finding(s) {what}{base}", findings.len());
        if !findings.is_empty() && args.staged {
            eprintln!(
                "coffer scan: commit blocked. Remove the secret, or accept it: a `coffer:allow` comment on its line, \
                 its fingerprint in .cofferignore, or a baseline (coffer scan --write-baseline)."
            );
        }
    }
    Ok(if findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Marks a hook as ours (a re-install replaces it without --force).
const HOOK_MARKER: &str = "installed by `coffer scan install-hook`";

fn hook_script() -> String {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "coffer".to_string());
    let exe = exe.replace('\'', "'\\''");
    format!(
        r#"#!/bin/sh
# coffer scan: blocks commits that add secrets (installed by `coffer scan install-hook`).
# Bypass once with `git commit --no-verify`; accept a finding with a `coffer:allow` comment on its line,
# its fingerprint in .cofferignore, or a baseline file (.coffer-baseline.json, used when present).
INSTALLED='{exe}'
COFFER="${{COFFER_BIN:-$INSTALLED}}"
if [ ! -x "$COFFER" ]; then COFFER=coffer; fi
if [ -f .coffer-baseline.json ]; then set -- --baseline .coffer-baseline.json; fi
exec "$COFFER" scan --staged "$@"
"#
    )
}

fn install_hook(repo: Option<&Path>, force: bool) -> Result<ExitCode, Usage> {
    let dir = match repo {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir()?,
    };
    let hooks = coffer_scan::git::hooks_dir(&dir)?;
    std::fs::create_dir_all(&hooks).map_err(|e| Usage(format!("{}: {e}", hooks.display())))?;
    let hook = hooks.join("pre-commit");
    if hook.exists() && !force {
        let existing = std::fs::read_to_string(&hook).unwrap_or_default();
        if !existing.contains(HOOK_MARKER) {
            return Err(Usage(format!("{} exists; run with --force to replace it", hook.display())));
        }
    }
    std::fs::write(&hook, hook_script()).map_err(|e| Usage(format!("{}: {e}", hook.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Usage(format!("{}: {e}", hook.display())))?;
    }
    eprintln!("coffer scan: installed {}", hook.display());
    Ok(ExitCode::SUCCESS)
}
