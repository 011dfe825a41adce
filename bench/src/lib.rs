//! Pieces shared by the benchmark binaries: reading an AWS shared-credentials file, the loopback-only
//! rule, bounded durations, and the names of the benchmark's key space.
//!
//! Everything here is for `bench/run.sh` and for running the binaries by hand; nothing in the benchmark
//! is a test, and neither binary ever sends traffic anywhere but to a loopback address.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context};

/// The SigV4 signing name (and `X-Amz-Target` prefix) of Secrets Manager.
pub const SERVICE: &str = coffer_wire::secretsmanager::SERVICE;

/// AWS's documented example key pair: what `loadgen` and `fixed-server` use when given nothing else
/// (moto accepts any credentials).
pub const EXAMPLE_ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const EXAMPLE_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// The name of secret `i` of the key space: `bench/secret-00000`, `bench/secret-00001`, ...
pub fn secret_name(i: usize) -> String {
    format!("bench/secret-{i:05}")
}

/// An access key pair read from the command line or a credentials file.
pub struct KeyPair {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Reads `aws_access_key_id` and `aws_secret_access_key` of `[profile]` from an AWS shared-credentials
/// file (the format of Coffer's `<data-dir>/root-credentials`).
pub fn read_credentials_file(path: &Path, profile: &str) -> anyhow::Result<KeyPair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut section = String::new();
    let (mut id, mut secret) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().trim_start_matches("profile ").trim().to_string();
            continue;
        }
        if section != profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(KeyPair { access_key_id, secret_access_key }),
        _ => bail!("{}: profile [{profile}] lacks aws_access_key_id or aws_secret_access_key", path.display()),
    }
}

/// Refuses any address outside the loopback range: the benchmark only ever loads this machine.
pub fn require_loopback(addr: &SocketAddr) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        bail!("refusing {addr}: the benchmark only talks to loopback addresses (127.0.0.0/8, ::1)");
    }
    Ok(())
}

/// Resolves `host:port` and requires every address it resolves to to be a loopback address (so a name
/// that also resolves elsewhere is refused too). Returns the first one.
pub async fn resolve_loopback(authority: &str) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host(authority).await.with_context(|| format!("resolving {authority}"))?.collect();
    let Some(first) = addrs.first().copied() else { bail!("{authority} resolves to no address") };
    for addr in &addrs {
        require_loopback(addr)?;
    }
    Ok(first)
}

/// A clap value parser for a number of seconds within `[0, max]` (fractions allowed).
pub fn seconds_up_to(max: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
        if !v.is_finite() || !(0.0..=max).contains(&v) {
            return Err(format!("{s} s is outside 0..={max} s"));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_requested_profile() {
        let dir = std::env::temp_dir().join(format!("coffer-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("credentials");
        std::fs::write(
            &path,
            "[other]\naws_access_key_id = A\naws_secret_access_key = B\n\n[default]\naws_access_key_id=AKID\n\
             aws_secret_access_key = s/e+c=r\n",
        )
        .expect("write");
        let k = read_credentials_file(&path, "default").expect("parsed");
        assert_eq!((k.access_key_id.as_str(), k.secret_access_key.as_str()), ("AKID", "s/e+c=r"));
        assert!(read_credentials_file(&path, "missing").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_loopback_is_accepted() {
        for ok in ["127.0.0.1:1", "127.9.8.7:80", "[::1]:8200"] {
            assert!(require_loopback(&ok.parse().expect("addr")).is_ok(), "{ok}");
        }
        for bad in ["10.0.0.1:80", "192.168.1.1:80", "8.8.8.8:53", "[2001:db8::1]:80", "0.0.0.0:80"] {
            assert!(require_loopback(&bad.parse().expect("addr")).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_are_bounded() {
        let p = seconds_up_to(60.0);
        assert_eq!(p("1.5"), Ok(1.5));
        assert!(p("61").is_err());
        assert!(p("-1").is_err());
        assert!(p("nan").is_err());
    }
}
