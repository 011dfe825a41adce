//! A private PostgreSQL instance for tests that must do to a server what cannot be done to the shared
//! one (127.0.0.1:5432, which every other test uses at the same time): stop and restart it mid-test,
//! or require passwords (the shared server trusts every local connection).
//!
//! Made from the installed binaries (`/usr/lib/postgresql/<version>/bin`, the newest) in a temporary
//! directory, run as the `postgres` user (the tests run as root; PostgreSQL refuses to run as root),
//! listening on 127.0.0.1 at a free port with `fsync=off` (nothing here must survive a power cut).
//! Tests fail, never skip, when it cannot start. Stopped and removed on drop.

// Test support: a failure here is a failed test, said as plainly as possible.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How clients authenticate to the instance.
#[derive(Clone, Copy, Debug)]
pub enum Auth {
    /// Every local connection is let in, as on the shared server.
    Trust,
    /// SCRAM passwords; the superuser `postgres` has this one.
    Password(&'static str),
}

/// A private PostgreSQL server.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

fn postgres_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn as_postgres(bin: &Path, program: &str) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(bin.join(program));
    cmd
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown").arg("postgres:postgres").arg(path).status().unwrap();
    assert!(status.success(), "chown {} to postgres (the tests run as root)", path.display());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PrivatePostgres {
    /// Creates the cluster and starts the server; [`wait_ready`](Self::wait_ready) before connecting.
    pub fn start(auth: Auth) -> PrivatePostgres {
        let dir = tempfile::tempdir().unwrap();
        chown_to_postgres(dir.path());
        let bin = postgres_bin();
        let data = dir.path().join("data");
        let mut initdb = as_postgres(&bin, "initdb");
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "--no-sync"]);
        match auth {
            Auth::Trust => {
                initdb.args(["-A", "trust"]);
            }
            Auth::Password(password) => {
                let pwfile = dir.path().join("pw");
                std::fs::write(&pwfile, password).unwrap();
                chown_to_postgres(&pwfile);
                initdb.args(["-A", "scram-sha-256"]).arg(format!("--pwfile={}", pwfile.display()));
            }
        }
        let out = initdb.output().unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut instance = PrivatePostgres { bin, data, port: free_port(), child: None, dir };
        instance.start_again();
        instance
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Waits until the server accepts connections (up to 30 s).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = as_postgres(&self.bin, "pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "the private PostgreSQL did not start within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server the fast way (open sessions are cut off) and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl").arg("-D").arg(&self.data).args(["-m", "fast", "-w", "stop"]).output();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port and data.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the private PostgreSQL is already running");
        let child = as_postgres(&self.bin, "postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .arg("-k")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl").arg("-D").arg(&self.data).args(["-m", "immediate", "stop"]).output();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
