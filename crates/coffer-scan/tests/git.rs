//! `--staged` and `--git` against a real temporary repository.

mod support;

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn staged_reports_only_added_lines() {
    let mut g = support::Gen::new(31);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    let old = g.github_classic();
    std::fs::write(d.join("app.py"), format!("OLD = \"{old}\"\nx = 1\n")).unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "--no-verify", "-m", "first"]);

    let scanner = coffer_scan::Scanner::new().unwrap();
    assert!(coffer_scan::git::scan_staged(&scanner, d).unwrap().is_empty());

    let new = g.stripe_secret();
    std::fs::write(d.join("app.py"), format!("OLD = \"{old}\"\nx = 1\nNEW = \"{new}\"\n")).unwrap();
    let pem = g.pem_ec();
    std::fs::write(d.join("deploy key.pem"), &pem).unwrap();
    // Unstaged changes are not what the commit holds.
    std::fs::write(d.join("unstaged.py"), format!("T = \"{}\"\n", g.github_classic())).unwrap();
    git(d, &["add", "app.py", "deploy key.pem"]);
    let found = coffer_scan::git::scan_staged(&scanner, d).unwrap();
    let got: Vec<(&str, usize, &str)> = found.iter().map(|f| (f.file.as_str(), f.line, f.rule.as_str())).collect();
    assert_eq!(got, [("app.py", 3, "stripe-secret-key"), ("deploy key.pem", 1, "private-key")]);
}

#[test]
fn history_reports_added_lines_per_commit() {
    let mut g = support::Gen::new(32);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    let scanner = coffer_scan::Scanner::new().unwrap();
    assert!(coffer_scan::git::scan_history(&scanner, d, None, 2).unwrap().is_empty());
    let t1 = g.github_classic();
    std::fs::write(d.join("a.py"), format!("x = 1\nT = \"{t1}\"\n")).unwrap();
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "one"]);
    // The secret is removed later: history still has it.
    std::fs::write(d.join("a.py"), "x = 1\n").unwrap();
    let pw = g.password();
    std::fs::write(d.join(".env"), format!("DB_PASSWORD={pw}\n")).unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "two"]);
    let all = coffer_scan::git::scan_history(&scanner, d, None, 2).unwrap();
    let got: Vec<(&str, usize, &str)> = all.iter().map(|f| (f.file.as_str(), f.line, f.rule.as_str())).collect();
    assert_eq!(got, [("a.py", 2, "github-token"), (".env", 1, "hardcoded-password")]);
    assert!(all.iter().all(|f| f.commit.as_ref().is_some_and(|c| c.len() == 40)));
    let since = coffer_scan::git::scan_history(&scanner, d, Some("HEAD~1"), 2).unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].rule, "hardcoded-password");
    assert!(coffer_scan::git::scan_history(&scanner, d, Some("no-such-rev"), 2).is_err());
}
