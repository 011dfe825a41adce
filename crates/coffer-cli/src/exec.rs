//! `coffer exec`: run a program with the secrets and parameters under some paths in its environment
//! (or, with `COFFER_SOURCE=dotenv:PATH`, the keys of a local dotenv file), forward the signals a
//! supervisor sends to it, and exit as it exits. Also the loading options `coffer env` shares.

use std::ffi::OsString;
use std::process::{ExitCode, ExitStatus};

use anyhow::bail;
use coffer_client::source::{EnvOptions, Environment, SecretSource, Selection, SourceError, SourceSpec};

use crate::secret::{client_for, explain};
use crate::Connection;

/// Which variables to load, and from where.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Load the secrets and parameters under this path, e.g. /non-prod/backend (repeatable; the leading
    /// `/` of secret names is optional). Not used with a dotenv source, which loads every key of its file
    #[arg(long = "path", value_name = "PATH")]
    pub(crate) paths: Vec<String>,
    /// Also load every level below each path, not only its direct children
    #[arg(long, short = 'r')]
    pub(crate) recursive: bool,
    /// A value that is a JSON object becomes one variable per key (<NAME>_<KEY>)
    #[arg(long)]
    pub(crate) expand_json: bool,
    /// When two values map to one variable name, let the later --path win (reported on stderr) instead of failing
    #[arg(long)]
    pub(crate) allow_override: bool,
    /// Where values come from: `server`, or `dotenv:FILE` to read a local dotenv file instead (offline
    /// development: all its keys, no server or credentials needed)
    #[arg(long, env = "COFFER_SOURCE", default_value = "server", value_name = "SOURCE")]
    pub(crate) source: SourceSpec,
    #[command(flatten)]
    pub(crate) conn: Connection,
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// Builds the source: clients for the server only when the server is the source, so a dotenv source
/// needs no endpoint or credentials.
fn open_source(load: &LoadArgs) -> anyhow::Result<SecretSource> {
    Ok(match &load.source {
        SourceSpec::Server => {
            if load.paths.is_empty() {
                bail!("give at least one --path (or read a local dotenv file with --source dotenv:FILE)");
            }
            SecretSource::Server {
                secrets: client_for(&load.conn, "SECRETS_MANAGER")?,
                parameters: client_for(&load.conn, "SSM")?,
            }
        }
        SourceSpec::Dotenv(path) => SecretSource::Dotenv(path.clone()),
    })
}

/// A loading failure as a message that says what to do next (never with a value).
pub(crate) fn explain_source(e: SourceError) -> anyhow::Error {
    match e {
        SourceError::Server { action, source } => anyhow::anyhow!("{action}: {}", explain(source)),
        SourceError::Collision(c) => {
            anyhow::anyhow!("{c}\nhint: rename one of them, or pass --allow-override to let the later --path win")
        }
        other => anyhow::anyhow!("{other}"),
    }
}

/// The variables to set, with what was replaced or skipped reported on stderr (names, never values).
pub(crate) async fn load_environment(load: &LoadArgs) -> anyhow::Result<Environment> {
    let source = open_source(load)?;
    let options = EnvOptions {
        selection: Selection { paths: load.paths.clone(), recursive: load.recursive },
        expand_json: load.expand_json,
        allow_override: load.allow_override,
    };
    let environment = source.environment(&options).await.map_err(explain_source)?;
    for skipped in &environment.skipped {
        eprintln!("warning: skipping {}: {}", skipped.origin, skipped.reason);
    }
    for o in &environment.overrides {
        eprintln!("note: {} from {} overrides {}", o.name, o.by, o.replaced);
    }
    Ok(environment)
}

pub async fn run(args: ExecArgs) -> anyhow::Result<ExitCode> {
    let environment = load_environment(&args.load).await?;
    let Some((program, program_args)) = args.command.split_first() else {
        bail!("give the command to run after `--`");
    };
    let mut command = tokio::process::Command::new(program);
    command.args(program_args);
    for variable in &environment.variables {
        command.env(&variable.name, variable.value.as_str());
    }
    // Handlers go in before the child exists, so a signal that arrives while it starts is still passed on.
    #[cfg(unix)]
    let forwarder = signals::Forwarder::install()?;
    let spawned = command.spawn();
    // The child has its copy; ours are wiped (`Zeroizing`) and the command's copies freed.
    drop(command);
    drop(environment);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            // The shells' conventions: 127 for a command not found, 126 for one that cannot run.
            let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
            eprintln!("error: cannot run {}: {e}", program.to_string_lossy());
            return Ok(ExitCode::from(code));
        }
    };
    #[cfg(unix)]
    let status = forwarder.wait(&mut child).await?;
    #[cfg(not(unix))]
    let status = child.wait().await?;
    Ok(exit_code(status))
}

/// The child's exit code, or 128 + the signal that ended it (as shells report it).
fn exit_code(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
        }
    }
    ExitCode::from(1)
}

#[cfg(unix)]
mod signals {
    use std::process::ExitStatus;
    use std::task::Poll;

    use anyhow::Context;
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use tokio::signal::unix::{signal, SignalKind};

    /// What a supervisor (a terminal, systemd, a container runtime) sends to stop, reload or poke a
    /// program: passed on to the child, which decides what they mean.
    const FORWARDED: [Signal; 6] =
        [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

    pub(super) struct Forwarder {
        streams: Vec<(Signal, tokio::signal::unix::Signal)>,
    }

    impl Forwarder {
        /// Catches the forwarded signals from now on (instead of letting them end this process).
        pub(super) fn install() -> anyhow::Result<Self> {
            let streams = FORWARDED
                .iter()
                .map(|&s| {
                    signal(SignalKind::from_raw(s as i32))
                        .map(|stream| (s, stream))
                        .with_context(|| format!("catching {s}"))
                })
                .collect::<anyhow::Result<_>>()?;
            Ok(Forwarder { streams })
        }

        /// Waits for the child to exit, passing on every forwarded signal that arrives meanwhile.
        pub(super) async fn wait(mut self, child: &mut tokio::process::Child) -> anyhow::Result<ExitStatus> {
            loop {
                tokio::select! {
                    status = child.wait() => return Ok(status?),
                    received = next_signal(&mut self.streams) => {
                        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
                            // The child may have just exited: then there is no one left to tell.
                            let _ = kill(Pid::from_raw(pid), received);
                        }
                    }
                }
            }
        }
    }

    async fn next_signal(streams: &mut [(Signal, tokio::signal::unix::Signal)]) -> Signal {
        std::future::poll_fn(|cx| {
            for (signal, stream) in streams.iter_mut() {
                if let Poll::Ready(Some(())) = stream.poll_recv(cx) {
                    return Poll::Ready(*signal);
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn exit_codes_follow_the_shell_convention() {
        use std::os::unix::process::ExitStatusExt;
        // A raw wait status: exit code in the high byte, or the signal number alone.
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), ExitCode::from(7));
        assert_eq!(exit_code(ExitStatus::from_raw(0)), ExitCode::SUCCESS);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), ExitCode::from(143));
        assert_eq!(exit_code(ExitStatus::from_raw(9)), ExitCode::from(137));
    }
}
