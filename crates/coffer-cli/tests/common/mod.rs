//! The end-to-end test kit: starts the real `coffer` binary on 127.0.0.1 with a fresh data directory,
//! waits for it to listen, and hands out its endpoint and root credentials.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `coffer server` child process. Killed on drop.
pub struct TestServer {
    pub endpoint: String,
    /// Everything the server wrote to stderr (its logs), drained continuously so it never blocks.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    pub data_dir: PathBuf,
    pub child: Child,
    _tmp: Option<tempfile::TempDir>,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
}

pub fn coffer_bin() -> &'static str {
    env!("CARGO_BIN_EXE_coffer")
}

impl TestServer {
    /// A server on a fresh data directory.
    pub fn start() -> TestServer {
        Self::start_with(&[], &[])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut server = Self::spawn(&data_dir, args, env).expect("server starts");
        server._tmp = Some(tmp);
        server
    }

    /// Starts `coffer server` on `data_dir`; `Err` carries the server's stderr if it exits instead.
    pub fn spawn(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<TestServer, String> {
        Self::spawn_listening(data_dir, "127.0.0.1:0", args, env)
    }

    /// Starts `coffer server` on `data_dir` listening on `listen` (`127.0.0.1:0` picks a free port).
    pub fn spawn_listening(
        data_dir: &Path,
        listen: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<TestServer, String> {
        let mut cmd = Command::new(coffer_bin());
        cmd.arg("server").arg("--listen").arg(listen).arg("--data-dir").arg(data_dir);
        cmd.args(args);
        cmd.env_remove("COFFER_MASTER_KEY").env("COFFER_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().expect("stdout");
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut stderr = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("log buffer").extend_from_slice(&buf[..n]);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("coffer listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(url) = rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(TestServer {
                    endpoint: url,
                    logs,
                    data_dir: data_dir.to_path_buf(),
                    child,
                    _tmp: None,
                    extra_args: args.iter().map(|s| s.to_string()).collect(),
                    extra_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                });
            }
            if let Ok(Some(_status)) = child.try_wait() {
                // Give the drain thread a moment to collect the last words.
                std::thread::sleep(Duration::from_millis(100));
                return Err(String::from_utf8_lossy(&logs.lock().expect("log buffer")).into_owned());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("server did not start within 60 s".into());
            }
        }
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops and starts the server again on the same data directory (a new port).
    pub fn restart(&mut self) {
        self.stop();
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let fresh = Self::spawn(&self.data_dir, &args, &env).expect("server restarts");
        self.endpoint = fresh.endpoint.clone();
        self.logs = fresh.logs.clone();
        // Move the new child in; the old handle is already reaped.
        let mut fresh = fresh;
        std::mem::swap(&mut self.child, &mut fresh.child);
        std::mem::forget(fresh);
    }

    /// Like [`restart`](Self::restart), but on the same port, so clients configured with the old
    /// endpoint (such as `coffer agent --endpoint-url`) reach the new server.
    pub fn restart_on_same_port(&mut self) {
        self.stop();
        let listen = self.endpoint.trim_start_matches("http://").trim_start_matches("https://").to_string();
        let args: Vec<&str> = self.extra_args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let fresh = Self::spawn_listening(&self.data_dir, &listen, &args, &env).expect("server restarts on its port");
        self.endpoint = fresh.endpoint.clone();
        self.logs = fresh.logs.clone();
        let mut fresh = fresh;
        std::mem::swap(&mut self.child, &mut fresh.child);
        std::mem::forget(fresh);
    }

    /// `<data-dir>/root-credentials`, an AWS shared-credentials file with a `[default]` profile.
    pub fn credentials_file(&self) -> PathBuf {
        self.data_dir.join("root-credentials")
    }

    /// (access key id, secret access key) of the root credentials.
    pub fn root_keys(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.credentials_file()).expect("root credentials file");
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_string()))
                .expect("key present")
        };
        (get("aws_access_key_id"), get("aws_secret_access_key"))
    }

    /// Environment for AWS tools pointed at this server.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), self.endpoint.clone()),
            ("AWS_SHARED_CREDENTIALS_FILE".into(), self.credentials_file().display().to_string()),
            ("AWS_CONFIG_FILE".into(), "/dev/null".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// A `coffer` CLI command with this server's environment.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(coffer_bin());
        cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").env_remove("AWS_PROFILE");
        // The machine's own Coffer profiles (a `[profile.default]` would apply) stay out of the tests.
        cmd.env_remove("COFFER_CONFIG").env_remove("COFFER_PROFILE").env("XDG_CONFIG_HOME", "/nonexistent");
        for (k, v) in self.aws_env() {
            cmd.env(k, v);
        }
        cmd
    }
}

impl TestServer {
    /// The server's log output so far.
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().expect("log buffer")).into_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both output streams of a finished command, for assertion messages.
pub fn text(out: &std::process::Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs `coffer ARGS` against `server` with the root credentials, or with `creds` (id, secret, token).
pub fn coffer_as(
    server: &TestServer,
    creds: Option<(&str, &str, Option<&str>)>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = server.cli();
    cmd.env_remove("AWS_SESSION_TOKEN");
    if let Some((id, secret, token)) = creds {
        cmd.env("AWS_ACCESS_KEY_ID", id).env("AWS_SECRET_ACCESS_KEY", secret);
        if let Some(token) = token {
            cmd.env("AWS_SESSION_TOKEN", token);
        }
    }
    cmd.args(args).output().expect("coffer runs")
}

/// Runs `coffer ARGS` against `server` with the root credentials.
pub fn coffer(server: &TestServer, args: &[&str]) -> std::process::Output {
    coffer_as(server, None, args)
}
