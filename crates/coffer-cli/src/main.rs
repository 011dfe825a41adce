//! `coffer`: the server (`coffer server`) and the command-line client (`coffer secret ...`) in one
//! binary. The client talks to a server over the same SigV4-signed AWS protocol the AWS tools use.

mod agent;
mod audit;
mod audit_verify;
mod envset;
mod exec;
mod export;
mod hints;
mod history;
mod iam;
mod import;
mod kms;
mod operator;
mod output;
mod param;
mod profile;
mod rotation;
mod scan;
mod secret;
mod server;
mod status;
mod storage;
mod sts;
mod template;
mod validate;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

// The server allocates small, short-lived buffers on every request; mimalloc handles that pattern
// markedly better than glibc's allocator (allocation was the largest single cost on the read path).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `coffer --help` says after the commands: where the client finds its server and credentials, and
/// the exit status every command follows.
const AFTER_HELP: &str = "\
Where requests go (highest first): flags (--endpoint-url, --region, --profile), environment variables
(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID...), the Coffer profile (--profile or COFFER_PROFILE, in
$COFFER_CONFIG or ~/.config/coffer/config.toml), the AWS config and credentials files, then
http://127.0.0.1:8200 and us-east-1. `coffer profile show` says what a command would use and why.

Exit status:
  0  success
  1  failure; the error on stderr says what went wrong and, on a `hint:` line, what to do next
  2  usage error: an unknown command or flag, a missing or invalid argument
Some commands give their status a meaning of their own: `coffer exec` exits as its program does (128 + N
after signal N); `coffer scan` 1 when it finds a secret; `coffer validate`, `coffer rotation status` and
`coffer audit verify` 1 when something fails, is overdue or was tampered with; `coffer operator status` 2
when the server is sealed.";

/// Coffer: a self-hosted secrets manager that speaks the AWS Secrets Manager protocol.
#[derive(Parser)]
#[command(name = "coffer", version, about, long_about = None, propagate_version = true, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the client sends its requests (all optional: the AWS environment variables and files are used
/// otherwise, as the aws CLI does).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Connection {
    /// Server URL (else AWS_ENDPOINT_URL_<SERVICE> such as AWS_ENDPOINT_URL_SECRETS_MANAGER or AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL, the profile's endpoint_url, or http://127.0.0.1:8200)
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// Region (else AWS_REGION, AWS_DEFAULT_REGION, the profile's region, or us-east-1)
    #[arg(long, global = true)]
    region: Option<String>,
    /// Profile: a [profile.NAME] of the Coffer configuration file, else a profile of the AWS config and
    /// credentials files (else COFFER_PROFILE, AWS_PROFILE, or default; `coffer profile list` shows them)
    #[arg(long, global = true)]
    profile: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Coffer server
    Server(server::ServerArgs),
    /// Create, read and manage secrets
    #[command(subcommand)]
    Secret(secret::SecretCommand),
    /// Create, read and manage Parameter Store parameters
    #[command(subcommand)]
    Param(param::ParamCommand),
    /// Manage KMS keys and aliases, rotate and re-wrap, encrypt and decrypt
    #[command(subcommand)]
    Kms(kms::KmsCommand),
    /// Users, access keys, groups, roles, policies, MFA devices and the policy simulator (AWS IAM)
    Iam(iam::IamArgs),
    /// Who am I, and temporary credentials: assume a role, or a session token after MFA (AWS STS)
    Sts(sts::StsArgs),
    /// The audit log: search events, follow them as they are recorded, export them (AWS CloudTrail)
    Audit(audit::AuditArgs),
    /// Initialize, unseal, seal and rekey a server sealed with key shares (--master-key-source shamir)
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Rotate secrets now or on a schedule, roll back, and see what is overdue or failing
    #[command(subcommand)]
    Rotation(rotation::RotationCommand),
    /// Emergency rotation after a leak: open an incident, approve it, report on it
    #[command(subcommand)]
    Incident(rotation::IncidentCommand),
    /// Find secrets in files, the git index or history, or standard input (local only; exit 1 when found)
    Scan(scan::ScanArgs),
    /// Run a command with the secrets and parameters under some paths as environment variables
    Exec(exec::ExecArgs),
    /// Print the variables `exec` would set (dotenv, shell or JSON)
    Env(envset::EnvArgs),
    /// Import a dotenv file as secrets or parameters (shows a plan; never prints values)
    Import(import::ImportArgs),
    /// Print the values of the secrets and parameters under some paths (dotenv or JSON)
    Export(export::ExportArgs),
    /// Write a .env.example: the variable names under some paths with their descriptions, no values
    Template(template::TemplateArgs),
    /// Serve secrets and parameters to local applications from a cache (AWS Secrets Manager Agent's HTTP interface)
    Agent(agent::AgentArgs),
    /// Check that required secrets and parameters exist, can be read, and meet a manifest's rules (exit 1 if not)
    Validate(validate::ValidateArgs),
    /// A node's detailed status: version, storage, counts, audit log, scheduler (exit 1 if unhealthy)
    Status(status::StatusArgs),
    /// Move an installation between SQLite and PostgreSQL (stop the nodes first)
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// The profiles of the Coffer and AWS configuration files, and what a command resolves (never a secret key)
    #[command(subcommand)]
    Profile(profile::ProfileCommand),
    /// Print a shell completion script
    #[command(after_help = "\
Install it where the shell looks for completions, e.g.:
  bash        coffer completions bash > ~/.local/share/bash-completion/completions/coffer
  zsh         coffer completions zsh > \"${fpath[1]}/_coffer\"
  fish        coffer completions fish > ~/.config/fish/completions/coffer.fish
  powershell  coffer completions powershell | Out-String | Invoke-Expression   (add it to $PROFILE)")]
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = match &cli.command {
        // The agent's thread count is its own flag (see `agent --threads`).
        Command::Agent(args) if args.threads == 1 => tokio::runtime::Builder::new_current_thread(),
        Command::Agent(args) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(usize::try_from(args.threads).unwrap_or(1));
            b
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args).await,
            Command::Secret(cmd) => secret::run(cmd).await,
            Command::Param(cmd) => param::run(cmd).await,
            Command::Kms(cmd) => kms::run(cmd).await,
            Command::Iam(args) => iam::run(args).await,
            Command::Sts(args) => sts::run(args).await,
            Command::Audit(args) => audit::run(args).await,
            Command::Operator(cmd) => operator::run(cmd).await,
            Command::Rotation(cmd) => rotation::run_rotation(cmd).await,
            Command::Incident(cmd) => rotation::run_incident(cmd).await,
            Command::Scan(args) => scan::run(args).await,
            Command::Exec(args) => exec::run(args).await,
            Command::Env(args) => envset::run(args).await,
            Command::Import(args) => import::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::Template(args) => template::run(args).await,
            Command::Validate(args) => validate::run(args).await,
            Command::Profile(cmd) => profile::run(cmd).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Storage(cmd) => storage::run(cmd).await,
            Command::Status(args) => status::run(args).await,
            Command::Completions { shell } => {
                clap_complete::generate(shell, &mut Cli::command(), "coffer", &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clap checks a command tree only when a command is parsed; this checks every subcommand at once
    /// (duplicate flags, bad defaults), so a broken one fails here and not in a user's hands.
    #[test]
    fn command_tree_is_well_formed() {
        Cli::command().debug_assert();
    }
}
