//! `coffer scan` end to end: the real binary over directories, standard input, a git index and history,
//! the installed pre-commit hook blocking a commit, baselines, ignore files and allow comments.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn coffer_bin() -> &'static str {
    env!("CARGO_BIN_EXE_coffer")
}

/// Synthetic secrets in real formats, built at run time so none is committed.
mod synth {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    fn chars(seed: &mut u64, n: usize) -> String {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                BASE62[(*seed % 62) as usize] as char
            })
            .collect()
    }

    /// A GitHub classic token with a valid CRC32 checksum.
    pub fn github(seed: u64) -> String {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let random = chars(&mut s, 30);
        format!("ghp_{random}{}", coffer_scan::validate::base62_checksum(crc32fast_hash(random.as_bytes())))
    }

    /// A Stripe secret key.
    pub fn stripe(seed: u64) -> String {
        let mut s = seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1;
        format!("sk_live_{}9aZ", chars(&mut s, 28))
    }

    /// CRC-32 (IEEE), as GitHub computes token checksums.
    fn crc32fast_hash(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}

fn scan(dir: &Path, args: &[&str]) -> Output {
    Command::new(coffer_bin())
        .current_dir(dir)
        .arg("scan")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("coffer runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn jsonl(out: &Output) -> Vec<serde_json::Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git runs")
}

fn git_ok(dir: &Path, args: &[&str]) {
    let out = git(dir, args);
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn directory_scan_exit_codes_and_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("src")).unwrap();
    let gh = synth::github(1);
    std::fs::write(d.join(".env"), format!("GH_TOKEN={gh}\n")).unwrap();
    std::fs::write(d.join("src/app.py"), "import os\ntoken = os.environ['GH_TOKEN']\n").unwrap();
    std::fs::write(d.join(".gitignore"), "ignored.txt\n").unwrap();
    std::fs::write(d.join("ignored.txt"), format!("T={}\n", synth::github(2))).unwrap();
    std::fs::write(d.join("image.png"), format!("\u{0}\u{0}{}", synth::github(3))).unwrap();
    std::fs::write(d.join("package-lock.json"), format!("{{\"t\": \"{}\"}}", synth::github(4))).unwrap();

    let out = scan(d, &[".", "--format", "jsonl"]);
    assert_eq!(code(&out), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let found = jsonl(&out);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["file"], ".env");
    assert_eq!(found[0]["line"], 1);
    assert_eq!(found[0]["rule"], "github-token");
    assert!(!stdout(&out).contains(&gh[4..36]), "the secret leaked");

    // .gitignore is honored unless --no-ignore.
    let out = scan(d, &[".", "--format", "jsonl", "--no-ignore"]);
    let files: Vec<String> = jsonl(&out).iter().map(|f| f["file"].as_str().unwrap().to_string()).collect();
    assert_eq!(files, [".env", "ignored.txt"]);

    // Files relative to the scanned path.
    let out = Command::new(coffer_bin()).arg("scan").arg(d).args(["--format", "jsonl"]).output().unwrap();
    assert_eq!(jsonl(&out)[0]["file"], ".env");

    // Clean: 0. Usage errors: 2.
    assert_eq!(code(&scan(d, &["src"])), 0);
    assert_eq!(code(&scan(d, &["does-not-exist"])), 2);
    assert_eq!(code(&scan(d, &["--format", "yaml"])), 2);
    assert_eq!(code(&scan(d, &["--since", "HEAD"])), 2);
}

#[test]
fn stdin_text_json_and_sarif() {
    let dir = tempfile::tempdir().unwrap();
    let sk = synth::stripe(5);
    let run = |args: &[&str]| {
        let mut child = Command::new(coffer_bin())
            .current_dir(dir.path())
            .arg("scan")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("x = 1\nstripe.api_key = \"{sk}\"\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(&["-", "--color", "never"]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(text.starts_with("-:2:19: stripe-secret-key sk_live_\u{2026}"), "{text}");
    assert!(!text.contains(&sk[8..30]));

    let out = run(&["-", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["rule"], "stripe-secret-key");
    assert_eq!(v[0]["fingerprint"].as_str().unwrap().len(), 32);

    let out = run(&["-", "--format", "sarif"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let result = &v["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "stripe-secret-key");
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 2);
    let index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(v["runs"][0]["tool"]["driver"]["rules"][index]["id"], "stripe-secret-key");
}

#[test]
fn baseline_ignore_file_and_allow_comments() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("old.py"), format!("T = \"{}\"\n", synth::github(6))).unwrap();
    let out = scan(d, &["--write-baseline=base.json", "."]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let base: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("base.json")).unwrap()).unwrap();
    assert_eq!(base["findings"].as_array().unwrap().len(), 1);
    assert_eq!(code(&scan(d, &[".", "--baseline", "base.json"])), 0);

    // Something new is reported, the baselined finding is not.
    std::fs::write(d.join("new.py"), format!("K = \"{}\"\n", synth::stripe(7))).unwrap();
    let out = scan(d, &[".", "--baseline", "base.json", "--format", "jsonl"]);
    assert_eq!(code(&out), 1);
    let found = jsonl(&out);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["file"], "new.py");

    // .cofferignore by fingerprint, by rule, by path.
    let fp = found[0]["fingerprint"].as_str().unwrap().to_string();
    std::fs::write(d.join(".cofferignore"), format!("# accepted\nfingerprint:{fp}\n")).unwrap();
    assert_eq!(code(&scan(d, &[".", "--baseline", "base.json"])), 0);
    std::fs::write(d.join(".cofferignore"), "rule:stripe-secret-key\nold.py\n").unwrap();
    assert_eq!(code(&scan(d, &["."])), 0);
    std::fs::remove_file(d.join(".cofferignore")).unwrap();

    // Inline allow comments.
    std::fs::write(d.join("new.py"), format!("K = \"{}\"  # coffer:allow test key\n", synth::stripe(7))).unwrap();
    std::fs::write(d.join("old.py"), format!("# coffer:allow-next-line\nT = \"{}\"\n", synth::github(6))).unwrap();
    assert_eq!(code(&scan(d, &["."])), 0);
    assert_eq!(code(&scan(d, &[".", "--baseline", "missing.json"])), 2);
}

#[test]
fn staged_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git_ok(d, &["init", "-q", "-b", "main"]);
    std::fs::write(d.join("a.py"), "x = 1\n").unwrap();
    git_ok(d, &["add", "."]);
    git_ok(d, &["commit", "-q", "-m", "init"]);
    assert_eq!(code(&scan(d, &["--staged"])), 0);

    std::fs::write(d.join("a.py"), format!("x = 1\nT = \"{}\"\n", synth::github(8))).unwrap();
    // Not staged yet: the index is clean.
    assert_eq!(code(&scan(d, &["--staged"])), 0);
    git_ok(d, &["add", "a.py"]);
    let out = scan(d, &["--staged", "--format", "jsonl"]);
    assert_eq!(code(&out), 1);
    assert_eq!(jsonl(&out)[0]["line"], 2);
    git_ok(d, &["commit", "-q", "--no-verify", "-m", "oops"]);

    let out = scan(d, &["--git", "--format", "jsonl"]);
    assert_eq!(code(&out), 1);
    let found = jsonl(&out);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["commit"].as_str().unwrap().len(), 40);
    assert_eq!(code(&scan(d, &["--git", "--since", "HEAD"])), 0);
    assert_eq!(code(&scan(d, &["--git", "--since", "HEAD~1"])), 1);
    assert_eq!(code(&scan(d, &["--git", "--since", "nope"])), 2);

    let outside = tempfile::tempdir().unwrap();
    assert_eq!(code(&scan(outside.path(), &["--staged"])), 2);
}

#[test]
fn installed_hook_blocks_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git_ok(d, &["init", "-q", "-b", "main"]);
    let out = scan(d, &["install-hook"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let hook = std::fs::read_to_string(d.join(".git/hooks/pre-commit")).unwrap();
    assert!(hook.contains("scan --staged"));
    // A second install of our own hook is fine; someone else's hook is kept unless --force.
    assert_eq!(code(&scan(d, &["install-hook"])), 0);
    std::fs::write(d.join(".git/hooks/pre-commit"), "#!/bin/sh\nexit 0\n").unwrap();
    assert_eq!(code(&scan(d, &["install-hook"])), 2);
    assert_eq!(code(&scan(d, &["install-hook", "--force"])), 0);

    std::fs::write(d.join("clean.py"), "x = 1\n").unwrap();
    git_ok(d, &["add", "."]);
    git_ok(d, &["commit", "-q", "-m", "clean"]);

    std::fs::write(d.join("leak.py"), format!("T = \"{}\"\n", synth::github(9))).unwrap();
    git_ok(d, &["add", "."]);
    let out = git(d, &["commit", "-q", "-m", "leak"]);
    assert!(!out.status.success(), "the hook let the commit through");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("commit blocked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = git(d, &["log", "--oneline"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 1);

    // Accepted with an allow comment, the commit goes through.
    std::fs::write(d.join("leak.py"), format!("T = \"{}\"  # coffer:allow fixture\n", synth::github(9))).unwrap();
    git_ok(d, &["add", "."]);
    git_ok(d, &["commit", "-q", "-m", "fixture"]);
}
