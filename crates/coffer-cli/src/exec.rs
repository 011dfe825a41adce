//! `coffer exec`: run a program with the secrets and parameters under some paths in its environment
//! (or, with `COFFER_SOURCE=dotenv:PATH`, the keys of a local dotenv file), forward the signals a
//! supervisor sends to it, and exit as it exits. Also the loading options `coffer env` shares.
//!
//! With `--watch` it subscribes to the server's change events for the paths and, when a change makes
//! the environment differ, restarts the program with the new one (SIGTERM, SIGKILL after a grace
//! period, run again). Only a fingerprint (SHA-256) of the running program's environment is kept to
//! compare against, not the values.

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
    /// Restart the command with the new values when a loaded secret or parameter changes, or one is
    /// added or deleted under a --path: it gets SIGTERM, then SIGKILL if it has not exited after
    /// --restart-grace-seconds, and runs again with the new environment. A change that leaves the
    /// environment as it was restarts nothing; a signal coffer exec receives meanwhile is passed on as
    /// usual (SIGINT, SIGTERM or SIGQUIT during a restart ends it, with the command's exit code). While
    /// the server cannot be reached the command keeps running with what it has. Needs the server as the
    /// source, and coffer:WaitForChanges in the caller's policies
    #[arg(long)]
    watch: bool,
    /// With --watch: how long the command has to exit after SIGTERM before it is killed
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    restart_grace_seconds: u64,
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
    let Some((program, program_args)) = args.command.split_first() else {
        bail!("give the command to run after `--`");
    };
    #[cfg(unix)]
    if args.watch {
        let grace = std::time::Duration::from_secs(args.restart_grace_seconds);
        return watch::run(&args.load, program, program_args, grace).await;
    }
    #[cfg(not(unix))]
    if args.watch {
        bail!("--watch is supported on Unix only");
    }
    let environment = load_environment(&args.load).await?;
    // Handlers go in before the child exists, so a signal that arrives while it starts is still passed on.
    #[cfg(unix)]
    let mut forwarder = signals::Forwarder::install()?;
    let mut child = match spawn(program, program_args, environment) {
        Ok(child) => child,
        Err(code) => return Ok(code),
    };
    #[cfg(unix)]
    let status = forwarder.wait(&mut child).await?;
    #[cfg(not(unix))]
    let status = child.wait().await?;
    Ok(exit_code(status))
}

/// Starts the program with `environment`, consuming it; a program that cannot be started answers the
/// exit code to end with.
fn spawn(program: &OsString, args: &[OsString], environment: Environment) -> Result<tokio::process::Child, ExitCode> {
    let mut command = tokio::process::Command::new(program);
    command.args(args);
    for variable in &environment.variables {
        command.env(&variable.name, variable.value.as_str());
    }
    let spawned = command.spawn();
    // The child has its copy; ours are wiped (`Zeroizing`) and the command's copies freed.
    drop(command);
    drop(environment);
    spawned.map_err(|e| {
        // The shells' conventions: 127 for a command not found, 126 for one that cannot run.
        let code = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
        eprintln!("error: cannot run {}: {e}", program.to_string_lossy());
        ExitCode::from(code)
    })
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
        /// Whether a signal asking to stop (SIGINT, SIGTERM, SIGQUIT) was passed on since the last
        /// [`take_stop_request`](Self::take_stop_request).
        stop_requested: bool,
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
            Ok(Forwarder { streams, stop_requested: false })
        }

        /// Waits for the child to exit, passing on every forwarded signal that arrives meanwhile.
        /// Cancel-safe: dropped midway, no signal is lost (an undelivered one stays queued).
        pub(super) async fn wait(&mut self, child: &mut tokio::process::Child) -> anyhow::Result<ExitStatus> {
            loop {
                tokio::select! {
                    status = child.wait() => return Ok(status?),
                    received = next_signal(&mut self.streams) => {
                        if matches!(received, Signal::SIGINT | Signal::SIGTERM | Signal::SIGQUIT) {
                            self.stop_requested = true;
                        }
                        send(child, received);
                    }
                }
            }
        }

        /// Whether a signal asking to stop was passed on since the last call.
        pub(super) fn take_stop_request(&mut self) -> bool {
            std::mem::take(&mut self.stop_requested)
        }
    }

    /// Sends `signal` to the child, if it is still there (it may have just exited: then there is no
    /// one left to tell).
    pub(super) fn send(child: &tokio::process::Child, signal: Signal) {
        if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), signal);
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

#[cfg(unix)]
mod watch {
    use std::ffi::OsString;
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::time::Duration;

    use anyhow::bail;
    use coffer_client::events::{ChangeSubscription, Notification, WatchRequest};
    use coffer_client::source::{Environment, SourceSpec};
    use coffer_client::ClientError;
    use nix::sys::signal::Signal;
    use sha2::{Digest, Sha256};

    use super::signals::{send, Forwarder};
    use super::{exit_code, load_environment, spawn, LoadArgs};
    use crate::secret::{client_for, explain};

    /// After a change is heard, how long to let a burst of changes (a rotation's steps, a batch of
    /// puts) settle before reloading, so they cost one restart rather than several.
    const SETTLE: Duration = Duration::from_millis(200);

    /// A fingerprint of an environment (names and values, in name order): enough to tell whether a
    /// reload changed anything, without keeping the values.
    fn fingerprint(environment: &Environment) -> [u8; 32] {
        let mut hash = Sha256::new();
        for variable in &environment.variables {
            hash.update(variable.name.as_bytes());
            hash.update([0]);
            hash.update(variable.value.as_bytes());
            hash.update([0]);
        }
        hash.finalize().into()
    }

    /// `coffer exec --watch`: runs the program, and runs it again with the new environment whenever a
    /// change event makes the environment differ, until it exits on its own (or is told to stop).
    pub(super) async fn run(
        load: &LoadArgs,
        program: &OsString,
        program_args: &[OsString],
        grace: Duration,
    ) -> anyhow::Result<ExitCode> {
        if load.source != SourceSpec::Server {
            bail!("--watch watches the server: it cannot be used with a dotenv source");
        }
        let client = Arc::new(client_for(&load.conn, "SECRETS_MANAGER")?);
        let prefixes = load.paths.clone();
        let mut subscription = ChangeSubscription::new(client, WatchRequest::paths(prefixes));
        // The cursor before the values: a change made while they load is reported, not lost.
        match subscription.start().await {
            Ok(()) => {}
            Err(ClientError::Api { status, code, message, .. }) if status < 500 => {
                bail!("cannot watch for changes: {code}: {message}");
            }
            Err(e) => eprintln!("coffer exec: not watching for changes yet ({}); retrying", explain(e)),
        }
        let mut environment = load_environment(load).await?;
        let mut forwarder = Forwarder::install()?;
        loop {
            let running = fingerprint(&environment);
            let mut child = match spawn(program, program_args, environment) {
                Ok(child) => child,
                Err(code) => return Ok(code),
            };
            let replacement = tokio::select! {
                status = forwarder.wait(&mut child) => return Ok(exit_code(status?)),
                changed = changed_environment(&mut subscription, load, running) => changed,
            };
            eprintln!("coffer exec: values changed; restarting {}", program.to_string_lossy());
            forwarder.take_stop_request();
            send(&child, Signal::SIGTERM);
            let status = match tokio::time::timeout(grace, forwarder.wait(&mut child)).await {
                Ok(status) => status?,
                Err(_) => {
                    eprintln!(
                        "coffer exec: {} did not exit within {} s of SIGTERM; killing it",
                        program.to_string_lossy(),
                        grace.as_secs()
                    );
                    child.kill().await?;
                    child.wait().await?
                }
            };
            if forwarder.take_stop_request() {
                // Asked to stop while restarting: stopping wins.
                return Ok(exit_code(status));
            }
            environment = replacement;
        }
    }

    /// Waits for change events and reloads after each; answers the environment once it differs from
    /// the `running` one. A reload that fails is reported and the program keeps its values until the
    /// next change.
    async fn changed_environment(
        subscription: &mut ChangeSubscription,
        load: &LoadArgs,
        running: [u8; 32],
    ) -> Environment {
        loop {
            match subscription.next().await {
                Ok(Notification::Changes(_) | Notification::Reset) => {}
                Err(e) => {
                    if subscription.failures() == 1 {
                        eprintln!("coffer exec: change events unavailable ({}); retrying", explain(e));
                    }
                    continue;
                }
            }
            tokio::time::sleep(SETTLE).await;
            match load_environment(load).await {
                Ok(environment) if fingerprint(&environment) != running => return environment,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("coffer exec: reloading after a change failed ({e:#}); the command keeps its values")
                }
            }
        }
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
