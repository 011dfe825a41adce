//! Coffer's secret scanner: finds credentials committed to files, the git index or history, and tells
//! real ones from look-alikes. Local only: nothing here opens a network connection.
//!
//! How a file is scanned:
//! 1. One Aho-Corasick automaton finds every rule keyword in the file at once (case-insensitively).
//!    A file without keywords costs that one pass and nothing more.
//! 2. Each line holding a keyword runs the regexes of the rules that keyword belongs to (or, for
//!    multi-line secrets such as PEM keys, from that line on; for context rules, the whole file).
//! 3. Candidates go through the rule's checks (checksums, decodable headers, parsable keys, entropy)
//!    and the shared "is this really a secret" heuristics (placeholders, references, hashes, UUIDs…).
//! 4. Lines holding keywords are also re-read as a program would see them: escapes undone (JSON strings,
//!    notebooks), split string literals joined; Kubernetes Secret `data:` values are decoded.
//! 5. Overlapping findings keep the most specific rule; inline `coffer:allow` comments drop findings.
//!
//! ```
//! let scanner = coffer_scan::Scanner::new().unwrap();
//! // coffer:allow-next-line (an example, not a secret)
//! let findings = scanner.scan_bytes("config.py", b"password = \"correct-Horse-7\"\n");
//! assert_eq!(findings[0].rule, "hardcoded-password");
//! assert!(!findings[0].preview.contains("Horse"));
//! ```

mod assign;
pub mod baseline;
pub mod git;
pub mod heuristics;
pub mod ignorefile;
mod lex;
pub mod report;
pub mod rules;
pub mod validate;
pub mod walk;

use std::collections::HashSet;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use rules::{Compiled, Kind, RuleMask, Scope, Validator};
pub use rules::{RuleSet, RuleSpec};

/// Errors from loading rules, reading inputs or running git.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule file is malformed.
    #[error("rules: {0}")]
    Rules(String),
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What was being read.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A git command failed (not a repository, unknown revision…).
    #[error("git: {0}")]
    Git(String),
    /// A baseline or ignore file is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// One secret found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The file, relative to the scanned path (or as git names it).
    pub file: String,
    /// First line of the secret, from 1.
    pub line: usize,
    /// Column of the secret's first byte on that line, from 1.
    pub column: usize,
    /// The rule that found it.
    pub rule: String,
    /// What the rule finds.
    pub description: String,
    /// A redacted form: at most a short prefix and the last four characters.
    pub preview: String,
    /// Hex SHA-256 of the rule id and the secret, truncated: stable across runs, reveals nothing.
    pub fingerprint: String,
    /// The commit that added it (history scans only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// The stored values of one source of known secrets, as keyed fingerprints: the scanner reports any
/// value whose HMAC-SHA256 under `hmac_key` is in `fingerprints`, without ever holding the values.
/// This is how a caller plugs in, for instance, the secrets a Coffer server stores.
#[derive(Debug, Clone)]
pub struct KnownSecret {
    /// Reported in the finding's description (e.g. the secret's name on the server).
    pub name: String,
    /// The key the fingerprints were computed under.
    pub hmac_key: Vec<u8>,
    /// HMAC-SHA256(hmac_key, value) of each value to look for.
    pub fingerprints: HashSet<[u8; 32]>,
    /// The values' lengths in bytes, when known: only candidates of these lengths are fingerprinted
    /// (empty: every candidate is).
    pub lengths: HashSet<usize>,
}

impl KnownSecret {
    /// The keyed fingerprint of `value`, as the scanner computes it.
    pub fn fingerprint(hmac_key: &[u8], value: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match Hmac::<Sha256>::new_from_slice(hmac_key) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

/// Where a stored value may sit in a line, whatever its format: the contents of each quoted string,
/// each run of characters between separators (spaces, quotes, `=,;()<>[]{}`), the pieces of those runs
/// between `:@/?&#` (URL user info, `user:password`), and what follows the first `=` or `: ` of a line
/// (an unquoted value with spaces). Byte ranges, possibly overlapping.
fn known_candidates(data: &[u8]) -> Vec<(usize, usize)> {
    const MAX_LINE: usize = 16 << 10;
    let is_sep = |b: u8| b.is_ascii_whitespace() || b"\"'`=,;()<>[]{}".contains(&b);
    let is_inner_sep = |b: u8| b":@/?&#".contains(&b);
    let mut out = Vec::new();
    let mut line_start = 0;
    while line_start < data.len() {
        let line_end = memchr::memchr(b'\n', &data[line_start..]).map_or(data.len(), |p| line_start + p);
        let line = &data[line_start..line_end];
        if line.len() <= MAX_LINE {
            let at = |i: usize| line_start + i;
            // Quoted strings.
            let mut i = 0;
            while i < line.len() {
                let q = line[i];
                if q == b'"' || q == b'\'' || q == b'`' {
                    if let Some(len) = memchr::memchr(q, &line[i + 1..]) {
                        if len > 0 {
                            out.push((at(i + 1), at(i + 1 + len)));
                        }
                        i += len + 2;
                        continue;
                    }
                }
                i += 1;
            }
            // Runs between separators, and their pieces.
            let mut i = 0;
            while i < line.len() {
                if is_sep(line[i]) {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < line.len() && !is_sep(line[i]) {
                    i += 1;
                }
                out.push((at(start), at(i)));
                // URL user info: the password between the last `:` and an `@` (it may hold `&`, `#`, ...).
                for (k, _) in line[start..i].iter().enumerate().filter(|(_, &b)| b == b'@') {
                    if let Some(c) = line[start..start + k].iter().rposition(|&b| b == b':') {
                        if c + 1 < k {
                            out.push((at(start + c + 1), at(start + k)));
                        }
                    }
                }
                let mut p = start;
                let ends = line[start..i]
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| is_inner_sep(b))
                    .map(|(k, _)| start + k)
                    .chain(std::iter::once(i));
                for j in ends {
                    if j > p && (p != start || j != i) {
                        out.push((at(p), at(j)));
                    }
                    p = j + 1;
                }
            }
            // The rest of a line after `=` or `: `, trimmed and unquoted.
            let eq = memchr::memchr(b'=', line).map(|p| p + 1);
            let colon = line.windows(2).position(|w| w == b": ").map(|p| p + 2);
            if let Some(from) = [eq, colon].into_iter().flatten().min() {
                let rest = &line[from..];
                let lead = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
                let trail = rest.iter().rev().take_while(|b| b.is_ascii_whitespace()).count();
                if lead + trail < rest.len() {
                    let (mut s, mut e) = (from + lead, line.len() - trail);
                    if e - s >= 2 && (line[s] == b'"' || line[s] == b'\'') && line[e - 1] == line[s] {
                        s += 1;
                        e -= 1;
                    }
                    if e > s {
                        out.push((at(s), at(e)));
                    }
                }
            }
        }
        line_start = line_end + 1;
    }
    out
}

/// Id reported for a value matching a [`KnownSecret`].
pub const KNOWN_SECRET_RULE: &str = "coffer-known-secret";

/// Longest line the generic assignment rules read: longer ones are minified bundles or data.
const MAX_ASSIGNMENT_LINE: usize = 4096;
/// How far a multi-line secret may reach from its first line.
const BLOCK_LIMIT: usize = 256 * 1024;

/// A compiled rule set, ready to scan. Cheap to share between threads (`&Scanner` is `Sync`).
pub struct Scanner {
    compiled: Compiled,
    known: Vec<KnownSecret>,
    /// The lengths of the known values, when every one of them is given (None: any length).
    known_lengths: Option<HashSet<usize>>,
    excluded_paths: ignore::gitignore::Gitignore,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner").field("rules", &self.compiled.rules.len()).field("known", &self.known.len()).finish()
    }
}

#[derive(Debug)]
struct Candidate {
    rule: usize,
    start: usize,
    end: usize,
    secret: Vec<u8>,
    preview: String,
    priority: i32,
    known: Option<usize>,
}

struct FileCtx {
    config: bool,
    /// Byte ranges of Kubernetes Secret `data:` lines, whose base64 is reported decoded, not raw.
    encoded_ranges: Vec<(usize, usize)>,
}

impl FileCtx {
    fn in_encoded_range(&self, at: usize) -> bool {
        let i = self.encoded_ranges.partition_point(|&(s, _)| s <= at);
        i > 0 && at < self.encoded_ranges[i - 1].1
    }
}

impl Scanner {
    /// The built-in rules.
    pub fn new() -> Result<Scanner, Error> {
        Scanner::from_rules(&RuleSet::builtin()?)
    }

    /// A rule set of one's own (e.g. the built-in one extended with [`RuleSet::extend`]).
    pub fn from_rules(set: &RuleSet) -> Result<Scanner, Error> {
        let compiled = Compiled::new(set)?;
        let mut builder = ignore::gitignore::GitignoreBuilder::new("");
        for p in &compiled.allow_paths {
            builder.add_line(None, p).map_err(|e| Error::Rules(format!("allow path {p}: {e}")))?;
        }
        let excluded_paths = builder.build().map_err(|e| Error::Rules(format!("allow paths: {e}")))?;
        Ok(Scanner { compiled, known: Vec::new(), known_lengths: None, excluded_paths })
    }

    /// Also reports values matching these known secrets (rule [`KNOWN_SECRET_RULE`]).
    pub fn with_known(mut self, known: Vec<KnownSecret>) -> Scanner {
        self.known_lengths = known
            .iter()
            .all(|k| !k.lengths.is_empty())
            .then(|| known.iter().flat_map(|k| k.lengths.iter().copied()).collect());
        self.known = known;
        self
    }

    /// The rules as (id, description), in order.
    pub fn rules(&self) -> impl Iterator<Item = (&str, &str)> {
        self.compiled.rules.iter().map(|r| (r.id.as_str(), r.description.as_str()))
    }

    /// Whether a path (relative, `/`-separated) is never scanned: lockfiles, source maps, minified
    /// bundles and the rule set's other excluded paths.
    pub fn is_path_excluded(&self, path: &str) -> bool {
        // The matcher expects relative paths (an absolute one would trip its assertion).
        let path = path.trim_start_matches("./").trim_start_matches('/');
        if path.is_empty() {
            return false;
        }
        self.excluded_paths.matched_path_or_any_parents(path, false).is_ignore()
    }

    /// Scans one file's content. `path` names the file in findings and tells its type (configuration
    /// files may hold unquoted values; `-` is standard input).
    pub fn scan_bytes(&self, path: &str, data: &[u8]) -> Vec<Finding> {
        self.scan_bytes_with_base(path, data, 0)
    }

    /// As [`Scanner::scan_bytes`], with line numbers counted from `first_line` + 1 (for fragments such as
    /// the added lines of a diff hunk).
    pub fn scan_bytes_with_base(&self, path: &str, data: &[u8], first_line: usize) -> Vec<Finding> {
        if looks_binary(data) || data.starts_with(b"$ANSIBLE_VAULT;") {
            return Vec::new();
        }
        let mut ctx = FileCtx { config: is_config_path(path), encoded_ranges: Vec::new() };
        let mut cands = Vec::new();
        if let Some((view, ranges)) = lex::kubernetes_secret_data(data) {
            ctx.encoded_ranges = ranges;
            let decoded_ctx = FileCtx { config: true, encoded_ranges: Vec::new() };
            self.scan_view(&view.text, Some(&view.origin), &decoded_ctx, 1, &mut cands);
        }
        self.scan_view(data, None, &ctx, 0, &mut cands);
        if !self.known.is_empty() {
            self.scan_known(data, &mut cands);
        }
        self.finish(path, data, cands, first_line)
    }

    fn scan_view(&self, text: &[u8], origin: Option<&[usize]>, ctx: &FileCtx, depth: u8, out: &mut Vec<Candidate>) {
        let c = &self.compiled;
        let mut windows: Vec<(usize, usize, RuleMask)> = Vec::new();
        let mut file_mask = RuleMask::default();
        for m in c.keywords.find_overlapping_iter(text) {
            let k = m.pattern().as_usize();
            file_mask.union(&c.keyword_file_rules[k]);
            let mask = &c.keyword_line_rules[k];
            if mask.is_empty() {
                continue;
            }
            if let Some(last) = windows.last_mut() {
                if m.start() >= last.0 && m.start() <= last.1 {
                    last.2.union(mask);
                    continue;
                }
            }
            let ls = memchr::memrchr(b'\n', &text[..m.start()]).map_or(0, |p| p + 1);
            let le = memchr::memchr(b'\n', &text[m.start()..]).map_or(text.len(), |p| m.start() + p);
            windows.push((ls, le, *mask));
        }
        if windows.is_empty() && file_mask.is_empty() {
            return;
        }
        let map = |p: usize| -> usize {
            match origin {
                None => p,
                Some(o) => o.get(p).or(o.last()).copied().unwrap_or(0),
            }
        };
        let mut found: Vec<Candidate> = Vec::new();
        let mut block_end = vec![0usize; c.rules.len()];
        let mut requires_ok: Vec<Option<bool>> = vec![None; c.rules.len()];
        let mut values = Vec::new();
        for &(ls, le, mask) in &windows {
            let mut assignments_done = false;
            for r in mask.iter() {
                let rule = &c.rules[r];
                if !self.requirement_met(r, text, &mut requires_ok) {
                    continue;
                }
                match (rule.kind, &rule.regex) {
                    (Kind::Assignment, _) => {
                        if assignments_done || le - ls > MAX_ASSIGNMENT_LINE {
                            continue;
                        }
                        assignments_done = true;
                        values.clear();
                        assign::scan_line(text, ls, le, ctx.config, &mut values);
                        for v in &values {
                            let secret = &text[v.start..v.end];
                            self.check_known(secret, v.start, v.end, &mut found);
                            let Some(class) = v.class else { continue };
                            let Some(ri) = c.rules.iter().position(|x| x.kind == Kind::Assignment && x.class == class)
                            else {
                                continue;
                            };
                            if ctx.in_encoded_range(v.start) {
                                continue;
                            }
                            if self.globally_allowed(secret) {
                                continue;
                            }
                            found.push(Candidate {
                                rule: ri,
                                start: v.start,
                                end: v.end,
                                secret: secret.to_vec(),
                                preview: redact(secret),
                                priority: c.rules[ri].priority,
                                known: None,
                            });
                        }
                    }
                    (Kind::Regex, Some(re)) => match rule.scope {
                        Scope::Line => {
                            for caps in re.captures_iter(&text[ls..le]) {
                                self.regex_candidate(r, &caps, ls, &mut found);
                            }
                        }
                        Scope::Block => {
                            if ls < block_end[r] {
                                continue;
                            }
                            let limit = ls.saturating_add(BLOCK_LIMIT).min(text.len());
                            match re.captures(&text[ls..limit]).and_then(|c| c.get(0).map(|m| (m.start(), m.end(), c)))
                            {
                                Some((start, end, caps)) if start <= le - ls => {
                                    block_end[r] = ls + end;
                                    self.regex_candidate(r, &caps, ls, &mut found);
                                }
                                // Nothing starts before the next match: skip the lines up to it.
                                Some((start, _, _)) => block_end[r] = ls + start,
                                // Nothing ends within the limit: only a block longer than half of it
                                // could start in the first half, so the next search starts past it.
                                None => block_end[r] = ls + (limit - ls) / 2,
                            }
                        }
                        Scope::File => {}
                    },
                    (Kind::Regex, None) => {}
                }
            }
            if depth == 0 {
                let derived = [lex::unescape_line(text, ls, le), lex::join_concatenation(text, ls, le)];
                for view in derived.into_iter().flatten() {
                    self.scan_view(&view.text, Some(&view.origin), ctx, depth + 1, &mut found);
                }
            }
        }
        for r in file_mask.iter() {
            let rule = &c.rules[r];
            if !self.requirement_met(r, text, &mut requires_ok) {
                continue;
            }
            if let Some(re) = &rule.regex {
                for caps in re.captures_iter(text) {
                    self.regex_candidate(r, &caps, 0, &mut found);
                }
            }
        }
        for mut cand in found {
            if depth == 0 || origin.is_some() {
                let last = cand.end.saturating_sub(1).max(cand.start);
                cand.start = map(cand.start);
                cand.end = map(last) + 1;
            }
            out.push(cand);
        }
    }

    fn requirement_met(&self, r: usize, text: &[u8], cache: &mut [Option<bool>]) -> bool {
        let rule = &self.compiled.rules[r];
        let Some(req) = &rule.requires else { return true };
        *cache[r].get_or_insert_with(|| req.is_match(text))
    }

    fn globally_allowed(&self, secret: &[u8]) -> bool {
        self.compiled.allow_values.contains(secret) || self.compiled.allow_regexes.iter().any(|re| re.is_match(secret))
    }

    /// Known values anywhere in the text, whatever their format: every token a value could be (see
    /// [`known_candidates`]) of a length some known value has is fingerprinted and looked up.
    fn scan_known(&self, data: &[u8], out: &mut Vec<Candidate>) {
        let mut seen: HashSet<(usize, usize)> =
            out.iter().filter(|c| c.known.is_some()).map(|c| (c.start, c.end)).collect();
        for (start, end) in known_candidates(data) {
            let wanted = self.known_lengths.as_ref().is_none_or(|lengths| lengths.contains(&(end - start)));
            if !wanted || !seen.insert((start, end)) {
                continue;
            }
            self.check_known(&data[start..end], start, end, out);
        }
    }

    fn check_known(&self, value: &[u8], start: usize, end: usize, out: &mut Vec<Candidate>) {
        if self.known.is_empty() || value.is_empty() {
            return;
        }
        // The fingerprints of one server share its scan's key: one HMAC per candidate and key.
        let mut last: Option<(&[u8], [u8; 32])> = None;
        for (i, k) in self.known.iter().enumerate() {
            if !k.lengths.is_empty() && !k.lengths.contains(&value.len()) {
                continue;
            }
            let fingerprint = match last {
                Some((key, f)) if key == k.hmac_key.as_slice() => f,
                _ => {
                    let f = KnownSecret::fingerprint(&k.hmac_key, value);
                    last = Some((k.hmac_key.as_slice(), f));
                    f
                }
            };
            if k.fingerprints.contains(&fingerprint) {
                out.push(Candidate {
                    rule: usize::MAX,
                    start,
                    end,
                    secret: value.to_vec(),
                    preview: redact(value),
                    priority: i32::MAX,
                    known: Some(i),
                });
            }
        }
    }

    fn regex_candidate(&self, r: usize, caps: &regex::bytes::Captures<'_>, base: usize, out: &mut Vec<Candidate>) {
        let rule = &self.compiled.rules[r];
        let Some(whole) = caps.get(0) else { return };
        let m = match rule.secret_group {
            Some(i) => caps.get(i),
            None => (1..caps.len()).find_map(|i| caps.get(i)).or(Some(whole)),
        };
        let Some(m) = m else { return };
        let secret = m.as_bytes();
        self.check_known(secret, base + m.start(), base + m.end(), out);
        if self.globally_allowed(secret) || rule.allow.iter().any(|a| a.is_match(secret)) {
            return;
        }
        let is_key = rule.validate == Some(Validator::PrivateKey);
        if !is_key && (heuristics::is_reference(secret) || heuristics::is_placeholder(secret)) {
            return;
        }
        if let Some(min) = rule.entropy {
            if heuristics::shannon_entropy(secret) < min {
                return;
            }
        }
        let normalized = match rule.validate {
            Some(v) => match validate::run(v, whole.as_bytes(), secret) {
                Some(n) => n,
                None => return,
            },
            None => secret.to_vec(),
        };
        let preview = if is_key {
            let label = whole.as_bytes().split(|&b| b == b'\n' || b == b'\\').next().unwrap_or_default();
            let label = String::from_utf8_lossy(label);
            let label = label.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace());
            match label.find("-----BEGIN ") {
                Some(p) => {
                    let rest = &label[p..];
                    let end = rest[11..].find("-----").map_or(rest.len(), |e| e + 16);
                    format!("{}\u{2026}", &rest[..end.min(rest.len())])
                }
                None => "-----BEGIN PRIVATE KEY-----\u{2026}".to_string(),
            }
        } else {
            redact(secret)
        };
        out.push(Candidate {
            rule: r,
            start: base + m.start(),
            end: base + m.end(),
            secret: normalized,
            preview,
            priority: rule.priority,
            known: None,
        });
    }

    fn finish(&self, path: &str, data: &[u8], mut cands: Vec<Candidate>, first_line: usize) -> Vec<Finding> {
        if cands.is_empty() {
            return Vec::new();
        }
        // Most specific first; among equals, the longest (a joined split string over its first part).
        cands.sort_by(|a, b| {
            b.priority.cmp(&a.priority).then((b.end - b.start).cmp(&(a.end - a.start))).then(a.start.cmp(&b.start))
        });
        // Kept spans never overlap, so the one starting last before a candidate's end is the only one
        // that can overlap it.
        let mut spans: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
        let mut kept: Vec<Candidate> = Vec::new();
        for c in cands {
            let end = c.end.max(c.start + 1);
            let overlaps = spans.range(..end).next_back().is_some_and(|(_, &k_end)| k_end > c.start);
            if !overlaps {
                spans.insert(c.start, end);
                kept.push(c);
            }
        }
        kept.sort_by_key(|c| c.start);
        let lines = LineIndex::new(data);
        let mut out = Vec::with_capacity(kept.len());
        for c in kept {
            let (line, column) = lines.position(c.start);
            let (end_line, _) = lines.position(c.end.saturating_sub(1).max(c.start));
            if lines.allowed(data, line, end_line) {
                continue;
            }
            let (rule, description) = match c.known {
                Some(i) => (
                    KNOWN_SECRET_RULE.to_string(),
                    format!("Value of a known secret ({})", self.known.get(i).map_or("", |k| k.name.as_str())),
                ),
                None => {
                    let r = &self.compiled.rules[c.rule];
                    (r.id.clone(), r.description.clone())
                }
            };
            let fingerprint = fingerprint(&rule, &c.secret);
            out.push(Finding {
                file: path.to_string(),
                line: line + first_line,
                column,
                rule,
                description,
                preview: c.preview,
                fingerprint,
                commit: None,
            });
        }
        out
    }
}

/// Hex SHA-256 of `rule`, a NUL and `secret`, truncated to 32 hex digits (128 bits).
pub fn fingerprint(rule: &str, secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    h.update([0u8]);
    h.update(secret);
    let digest = h.finalize();
    hex::encode(&digest[..16])
}

/// A redacted form of a secret: a vendor prefix (`ghp_`, `sk_live_`) or two characters, an ellipsis and
/// the last four; short secrets show only their length.
pub fn redact(secret: &[u8]) -> String {
    let s = String::from_utf8_lossy(secret);
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n < 12 {
        return format!("\u{2026}({n} chars)");
    }
    if n < 20 {
        let head: String = chars[..2].iter().collect();
        let tail: String = chars[n - 2..].iter().collect();
        return format!("{head}\u{2026}{tail}");
    }
    let head_len = chars[..12.min(n)]
        .iter()
        .rposition(|&c| c == '_' || c == '-')
        .filter(|&p| chars[..p].iter().any(|c| c.is_ascii_alphabetic()))
        .map_or(2, |p| p + 1);
    let head: String = chars[..head_len].iter().collect();
    let tail: String = chars[n - 4..].iter().collect();
    format!("{head}\u{2026}{tail}")
}

/// Text files only: a NUL byte in the first 8 KiB means binary.
fn looks_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(8192)]).is_some()
}

/// Files whose values may be unquoted: environment files, INI/properties/YAML/TOML, shell scripts,
/// Dockerfiles, credential files, and standard input.
fn is_config_path(path: &str) -> bool {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path).to_ascii_lowercase();
    if path == "-" || name.starts_with(".env") || name.ends_with(".env") || !name.contains('.') {
        return true;
    }
    const NAMES: &[&str] = &[".npmrc", ".pypirc", ".netrc", ".pgpass", ".gitconfig", ".s3cfg", ".boto", ".htpasswd"];
    const EXT: &[&str] = &[
        "env",
        "ini",
        "cfg",
        "conf",
        "config",
        "properties",
        "yaml",
        "yml",
        "toml",
        "sh",
        "bash",
        "zsh",
        "ksh",
        "envrc",
        "tfvars",
        "txt",
        "service",
        "dockerfile",
        "cnf",
        "rc",
    ];
    NAMES.contains(&name.as_str()) || name.rsplit('.').next().is_some_and(|e| EXT.contains(&e))
}

/// Byte offset → (line, column), and the inline allow comments.
struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    fn new(data: &[u8]) -> LineIndex {
        LineIndex { newlines: memchr::memchr_iter(b'\n', data).collect() }
    }

    /// (line, column), both from 1.
    fn position(&self, offset: usize) -> (usize, usize) {
        let idx = self.newlines.partition_point(|&p| p < offset);
        let line_start = if idx == 0 { 0 } else { self.newlines[idx - 1] + 1 };
        (idx + 1, offset.saturating_sub(line_start) + 1)
    }

    fn line<'a>(&self, data: &'a [u8], line: usize) -> &'a [u8] {
        if line == 0 || line > self.newlines.len() + 1 {
            return &[];
        }
        let start = if line == 1 { 0 } else { self.newlines[line - 2] + 1 };
        let end = self.newlines.get(line - 1).copied().unwrap_or(data.len());
        &data[start.min(end)..end]
    }

    /// `coffer:allow` on any line of the secret, or `coffer:allow-next-line` on the line before it.
    fn allowed(&self, data: &[u8], first: usize, last: usize) -> bool {
        let has = |line: usize, marker: &[u8]| memchr::memmem::find(self.line(data, line), marker).is_some();
        (first..=last.min(first + 200)).any(|l| has(l, b"coffer:allow"))
            || (first > 1 && has(first - 1, b"coffer:allow-next-line"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_never_shows_the_middle() {
        assert_eq!(redact(b"ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "ghp_\u{2026}6789");
        assert_eq!(redact(b"hunter22"), "\u{2026}(8 chars)");
        assert_eq!(redact(b"abcdefghijklmn"), "ab\u{2026}mn");
        assert_eq!(redact(b"AKIAZZZZZZZZZZZZZZZZ"), "AK\u{2026}ZZZZ");
    }

    #[test]
    fn lines_and_columns() {
        let idx = LineIndex::new(b"ab\ncd\n");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position(4), (2, 2));
    }
}
