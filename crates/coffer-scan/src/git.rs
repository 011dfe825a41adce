//! Git inputs: the index (what the next commit will hold; for the pre-commit hook) and the lines added by
//! each commit of the history. Runs the local `git` binary only.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};

use crate::{Error, Finding, Scanner};

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args(["-c", "core.quotePath=false", "-c", "diff.noprefix=false"]);
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let out = git(dir).args(args).output().map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::Git(if msg.is_empty() { format!("git {} failed", args.join(" ")) } else { msg }));
    }
    Ok(out.stdout)
}

/// The top of the work tree holding `dir`.
pub fn toplevel(dir: &Path) -> Result<PathBuf, Error> {
    let out = run(dir, &["rev-parse", "--show-toplevel"])?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim_end_matches(['\n', '\r'])))
}

/// The directory git keeps hooks in for the repository holding `dir` (honors `core.hooksPath`).
pub fn hooks_dir(dir: &Path) -> Result<PathBuf, Error> {
    let out = run(dir, &["rev-parse", "--git-path", "hooks"])?;
    let p = PathBuf::from(String::from_utf8_lossy(&out).trim_end_matches(['\n', '\r']));
    Ok(if p.is_absolute() { p } else { dir.join(p) })
}

/// Undoes git's C-style quoting of unusual path names (`"a\tb"`).
fn unquote(path: &[u8]) -> String {
    // Diff headers end a name holding spaces with a tab.
    let path = path.strip_suffix(b"\t").unwrap_or(path);
    let Some(inner) = path.strip_prefix(b"\"").and_then(|p| p.strip_suffix(b"\"")) else {
        return String::from_utf8_lossy(path).into_owned();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            let c = inner[i + 1];
            if c.is_ascii_digit() && inner.len() >= i + 4 {
                let oct = &inner[i + 1..i + 4];
                if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(oct), 8) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            out.push(match c {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                other => other,
            });
            i += 2;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `@@ -a,b +c,d @@` → (c, d).
fn hunk_target(line: &[u8]) -> Option<(usize, usize)> {
    let s = std::str::from_utf8(line).ok()?;
    let plus = s.split(' ').find(|p| p.starts_with('+'))?;
    let mut it = plus[1..].split(',');
    let start = it.next()?.parse().ok()?;
    let count = it.next().map_or(Some(1), |c| c.parse().ok())?;
    Some((start, count))
}

/// Lines added per file in the index, against HEAD (or against nothing before the first commit).
fn staged_added_lines(repo: &Path) -> Result<HashMap<String, HashSet<usize>>, Error> {
    let diff =
        run(repo, &["diff", "--cached", "-U0", "--no-color", "--no-ext-diff", "--diff-filter=ACMR", "--no-renames"])?;
    let mut added: HashMap<String, HashSet<usize>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in diff.split(|&b| b == b'\n') {
        if let Some(p) = line.strip_prefix(b"+++ ") {
            current = if p == b"/dev/null" {
                None
            } else {
                let name = unquote(p);
                Some(name.strip_prefix("b/").map(str::to_string).unwrap_or(name))
            };
        } else if line.starts_with(b"@@ ") {
            if let (Some(file), Some((start, count))) = (&current, hunk_target(line)) {
                added.entry(file.clone()).or_default().extend(start..start + count);
            }
        }
    }
    Ok(added)
}

/// Reads blobs (`:path` for the index) through one `git cat-file --batch`.
fn read_blobs(repo: &Path, names: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
    let mut child = git(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| Error::Git("no stdin".into()))?;
    let requests: Vec<u8> = names.iter().flat_map(|n| format!(":{n}\n").into_bytes()).collect();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&requests);
    });
    let stdout = child.stdout.take().ok_or_else(|| Error::Git("no stdout".into()))?;
    let mut reader = BufReader::new(stdout);
    let mut out = Vec::with_capacity(names.len());
    for _ in names {
        let mut header = Vec::new();
        if reader.read_until(b'\n', &mut header).map_err(|e| Error::Git(e.to_string()))? == 0 {
            break;
        }
        let header = String::from_utf8_lossy(&header);
        let mut parts = header.split_whitespace();
        let (_, kind, size) = (parts.next(), parts.next(), parts.next());
        match (kind, size.and_then(|s| s.parse::<usize>().ok())) {
            (Some(_), Some(size)) => {
                let mut data = vec![0u8; size];
                reader.read_exact(&mut data).map_err(|e| Error::Git(e.to_string()))?;
                let mut nl = [0u8; 1];
                reader.read_exact(&mut nl).map_err(|e| Error::Git(e.to_string()))?;
                out.push(Some(data));
            }
            _ => out.push(None),
        }
    }
    let _ = writer.join();
    let _ = child.wait();
    out.resize(names.len(), None);
    Ok(out)
}

/// Scans what is staged in the repository holding `dir`: each staged file is read whole from the index
/// (so multi-line and context-dependent secrets are seen) and findings on lines the commit adds are kept.
/// Paths are relative to the top of the work tree.
pub fn scan_staged(scanner: &Scanner, dir: &Path) -> Result<Vec<Finding>, Error> {
    let repo = toplevel(dir)?;
    let added = staged_added_lines(&repo)?;
    let mut names: Vec<String> = added.keys().filter(|n| !scanner.is_path_excluded(n)).cloned().collect();
    names.sort();
    let blobs = read_blobs(&repo, &names)?;
    let mut findings = Vec::new();
    for (name, blob) in names.iter().zip(blobs) {
        let Some(data) = blob else { continue };
        let lines = &added[name];
        findings.extend(scanner.scan_bytes(name, &data).into_iter().filter(|f| lines.contains(&f.line)));
    }
    Ok(findings)
}

/// A run of added lines in one commit's diff of one file.
struct Hunk {
    commit: String,
    file: String,
    first_line: usize,
    text: Vec<u8>,
}

/// Scans the lines each commit added, oldest first: all of HEAD's history, or the commits after `since`
/// (`since..HEAD`). A secret added again by a later commit is reported once, at its first appearance.
pub fn scan_history(scanner: &Scanner, dir: &Path, since: Option<&str>, threads: usize) -> Result<Vec<Finding>, Error> {
    let repo = toplevel(dir)?;
    let range = match since {
        Some(rev) => {
            run(&repo, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
                .map_err(|_| Error::Git(format!("unknown revision: {rev}")))?;
            format!("{rev}..HEAD")
        }
        None => "HEAD".to_string(),
    };
    // An empty repository has no history to scan.
    if run(&repo, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]).is_err() {
        return Ok(Vec::new());
    }
    let mut child = git(&repo)
        .args([
            "log",
            "-p",
            "-U0",
            "--no-color",
            "--no-ext-diff",
            "--no-renames",
            "--reverse",
            "--format=%x00commit %H",
            &range,
            "--",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    let stdout = child.stdout.take().ok_or_else(|| Error::Git("no stdout".into()))?;
    let threads = if threads == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { threads };
    let (tx, rx) = mpsc::sync_channel::<Vec<Hunk>>(threads * 4);
    let rx = Mutex::new(rx);
    let results: Mutex<Vec<(usize, Finding)>> = Mutex::new(Vec::new());
    let order = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let batch = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(batch) = batch else { return };
                let mut local = Vec::new();
                for h in batch {
                    if scanner.is_path_excluded(&h.file) {
                        continue;
                    }
                    for mut f in scanner.scan_bytes_with_base(&h.file, &h.text, h.first_line.saturating_sub(1)) {
                        f.commit = Some(h.commit.clone());
                        local.push(f);
                    }
                }
                if let Ok(mut all) = results.lock() {
                    all.extend(local.into_iter().map(|f| (0, f)));
                }
            });
        }
        let mut reader = BufReader::new(stdout);
        let mut line = Vec::new();
        let mut commit = String::new();
        let mut file: Option<String> = None;
        let mut hunk: Option<Hunk> = None;
        let mut batch: Vec<Hunk> = Vec::new();
        let mut order: Vec<String> = Vec::new();
        let flush = |hunk: &mut Option<Hunk>, batch: &mut Vec<Hunk>| {
            if let Some(h) = hunk.take() {
                if !h.text.is_empty() {
                    batch.push(h);
                }
            }
        };
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let l = line.strip_suffix(b"\n").unwrap_or(&line);
            if let Some(sha) = l.strip_prefix(b"\0commit ") {
                flush(&mut hunk, &mut batch);
                commit = String::from_utf8_lossy(sha).into_owned();
                order.push(commit.clone());
                file = None;
            } else if let Some(p) = l.strip_prefix(b"+++ ") {
                flush(&mut hunk, &mut batch);
                file = if p == b"/dev/null" {
                    None
                } else {
                    let name = unquote(p);
                    Some(name.strip_prefix("b/").map(str::to_string).unwrap_or(name))
                };
            } else if l.starts_with(b"@@ ") {
                flush(&mut hunk, &mut batch);
                if let (Some(f), Some((start, _))) = (&file, hunk_target(l)) {
                    hunk = Some(Hunk { commit: commit.clone(), file: f.clone(), first_line: start, text: Vec::new() });
                }
            } else if let Some(added) = l.strip_prefix(b"+") {
                if let Some(h) = hunk.as_mut() {
                    h.text.extend_from_slice(added);
                    h.text.push(b'\n');
                }
            } else if l.starts_with(b"diff --git ") {
                flush(&mut hunk, &mut batch);
                file = None;
            }
            if batch.len() >= 256 && tx.send(std::mem::take(&mut batch)).is_err() {
                break;
            }
        }
        flush(&mut hunk, &mut batch);
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        order
    });
    // Commit order, oldest first, for a stable report.
    let rank: HashMap<String, usize> = order.into_iter().enumerate().map(|(i, c)| (c, i)).collect();
    let _ = child.wait();
    let mut all = results.into_inner().unwrap_or_else(|e| e.into_inner());
    for (r, f) in all.iter_mut() {
        *r = f.commit.as_ref().and_then(|c| rank.get(c)).copied().unwrap_or(usize::MAX);
    }
    all.sort_by(|(ra, a), (rb, b)| (ra, &a.file, a.line).cmp(&(rb, &b.file, b.line)));
    let mut seen = HashSet::new();
    Ok(all.into_iter().map(|(_, f)| f).filter(|f| seen.insert((f.fingerprint.clone(), f.file.clone()))).collect())
}
