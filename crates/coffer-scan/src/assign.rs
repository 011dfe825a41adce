//! The generic rules: values assigned to secret-bearing names (`api_key = "…"`, `password: …`,
//! `<password>…</password>`, `key="ApiKey" value="…"`) in code and configuration, judged by what the
//! name promises and what the value looks like.

use std::sync::OnceLock;

use regex::bytes::Regex;

use crate::heuristics::{self as h, NameKind};
use crate::rules::AssignmentClass;

fn assignment_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // The pattern is a constant; failing to compile it is a bug caught by every test.
        #[allow(clippy::expect_used)]
        Regex::new(
            r#"(?ix-u)
            \bkey\s*=\s*"(?P<kname>[^"]{1,80})"\s+value\s*=\s*"(?P<kval>[^"]{1,512})"
          | (?P<name>[a-z0-9_.\-]*(?:key|secret|token|auth|cred|api|pass|pwd)[a-z0-9_.\-]*)
            ["']?\]?[\x20\t]*(?P<op>:=|=>|=|:)[\x20\t]*
            (?:
                "(?P<dq>[^"\\\r\n]{0,512})"
              | '(?P<sq>[^'\\\r\n]{0,512})'
              | `(?P<bq>[^`\\\r\n]{0,512})`
              | (?P<bare>[^\s"'`,;\#)\]}<]{1,512})
            )
          | <(?P<xname>[a-z0-9_.:\-]*(?:key|secret|token|auth|cred|pass|pwd)[a-z0-9_.:\-]*)>(?P<xval>[^<\s]{1,512})</
            "#,
        )
        .expect("assignment regex compiles")
    })
}

/// An assignment value, reported or not (for known-secret matching).
#[derive(Debug)]
pub struct Value {
    pub start: usize,
    pub end: usize,
    pub class: Option<AssignmentClass>,
}

/// Scans one line (`text[start..end]`; following lines are read for YAML block scalars).
/// `config` allows unquoted values (configuration files), which in code are identifiers.
pub fn scan_line(text: &[u8], start: usize, end: usize, config: bool, out: &mut Vec<Value>) {
    let line = &text[start..end];
    for caps in assignment_regex().captures_iter(line) {
        let (name, value, quoted) = if let (Some(n), Some(v)) = (caps.name("xname"), caps.name("xval")) {
            (n, v, true)
        } else if let (Some(n), Some(v)) = (caps.name("kname"), caps.name("kval")) {
            (n, v, true)
        } else {
            let Some(name) = caps.name("name") else { continue };
            let Some(op) = caps.name("op") else { continue };
            // Comparisons are not assignments (`==`, `!=`, `<=`, `>=`), nor are paths (`Type::name`).
            let before = op.start().checked_sub(1).map(|i| line[i]);
            let after = line.get(op.end()).copied();
            match op.as_bytes() {
                b"=" if matches!(before, Some(b'!' | b'<' | b'>' | b'=')) || after == Some(b'=') => continue,
                b":" if before == Some(b':') || after == Some(b':') => continue,
                _ => {}
            }
            let quoted = caps.name("dq").or(caps.name("sq")).or(caps.name("bq"));
            match (quoted, caps.name("bare")) {
                (Some(v), _) => (name, v, true),
                (None, Some(v)) => (name, v, false),
                _ => continue,
            }
        };
        let kind = h::classify_name(name.as_bytes());
        if kind == NameKind::None {
            continue;
        }
        let mut v_start = start + value.start();
        let mut v_end = start + value.end();
        if !quoted {
            let v = value.as_bytes();
            if matches!(v.first(), Some(b'|' | b'>')) && v.len() <= 3 {
                // A YAML block scalar: the value is on the following, more indented lines.
                let indent = line.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
                match block_scalar(text, end, indent) {
                    Some((s, e)) => {
                        v_start = s;
                        v_end = e;
                    }
                    None => continue,
                }
            } else if !config && !in_connection_string(line, name.start(), value.end(), op_is_eq(&caps)) {
                continue;
            }
        } else if followed_by_concatenation(line, value.end() + 1) {
            // Part of a split string: the joined view reports the whole value.
            continue;
        }
        // Authorization values carry a scheme before the credential.
        for scheme in [&b"Bearer "[..], b"bearer ", b"Basic ", b"basic ", b"token ", b"Token "] {
            if text[v_start..v_end].starts_with(scheme) {
                v_start += scheme.len();
            }
        }
        let class = judge(kind, &text[v_start..v_end]);
        out.push(Value { start: v_start, end: v_end, class });
    }
}

fn op_is_eq(caps: &regex::bytes::Captures<'_>) -> bool {
    caps.name("op").is_some_and(|o| o.as_bytes() == b"=")
}

/// `…;Password=value;…` inside a string: a connection string, where values are unquoted even in code.
fn in_connection_string(line: &[u8], name_start: usize, value_end: usize, eq: bool) -> bool {
    let before = name_start.checked_sub(1).map(|i| line[i]);
    let after = line.get(value_end).copied();
    eq && matches!(before, Some(b';' | b'"' | b'\'')) && matches!(after, Some(b';' | b'"' | b'\''))
}

fn followed_by_concatenation(line: &[u8], at: usize) -> bool {
    let rest = line.get(at..).unwrap_or_default().trim_ascii_start();
    match rest.first() {
        Some(b'+' | b'&' | b'"' | b'\'') => true,
        Some(b'.') => !rest.get(1).is_some_and(u8::is_ascii_alphabetic),
        _ => false,
    }
}

/// The first non-empty line of a YAML block scalar after `after` (one secret per scalar is the norm).
fn block_scalar(text: &[u8], after: usize, key_indent: usize) -> Option<(usize, usize)> {
    let mut pos = after + 1;
    while pos < text.len() {
        let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |p| pos + p);
        let line = &text[pos..end];
        let indent = line.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let content = line[indent..].trim_ascii_end();
        if !content.is_empty() {
            if indent <= key_indent {
                return None;
            }
            return Some((pos + indent, pos + indent + content.len()));
        }
        pos = end + 1;
    }
    None
}

/// Decides whether a value assigned to a name of `kind` is reported, and as what.
pub fn judge(kind: NameKind, v: &[u8]) -> Option<AssignmentClass> {
    if v.len() > 200 || v.is_empty() {
        return None;
    }
    if h::is_reference(v) || h::is_placeholder(v) {
        return None;
    }
    if memchr::memmem::find(v, b"://").is_some() || v.starts_with(b"data:") {
        return None;
    }
    if h::is_uuid(v) || h::is_path_like(v) || h::is_version_like(v) || h::is_identifier_like(v) {
        return None;
    }
    if v.starts_with(b"pk_") || v.starts_with(b"pub_") {
        return None; // publishable keys are meant to be public
    }
    if v.iter().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return None;
    }
    // Code and templates rather than values: calls, indexing, paths, `{placeholders}`.
    if v.iter().any(|b| b"([{}".contains(b)) || memchr::memmem::find(v, b"::").is_some() {
        return None;
    }
    // `a=1&b=2`: a query string; `=` inside base64 comes only at the end.
    if v.iter().position(|&b| b == b'=').is_some_and(|i| v[i..].iter().any(|&b| b != b'=')) {
        return None;
    }
    if h::is_date_like(v) || h::is_sequential_data(v) {
        return None;
    }
    match kind {
        NameKind::Password => password_like(v).then_some(AssignmentClass::Password),
        NameKind::Strong | NameKind::Weak => random_like(kind, v).then_some(AssignmentClass::Entropy),
        NameKind::None => None,
    }
}

fn password_like(v: &[u8]) -> bool {
    if v.len() < 6 || v.len() > 128 || h::is_hash_like(v) {
        return false;
    }
    if v.iter().all(u8::is_ascii_digit) || v.ends_with(b":") {
        return false;
    }
    // Format strings are templates, not values (`%s` alone: `%stone` may well be a password).
    const FORMAT: &[&[u8]] = &[b"{}", b"{0}", b"%(", b"%s%", b"%d%"];
    if v.windows(2)
        .enumerate()
        .any(|(i, w)| matches!(w, b"%s" | b"%d") && !v.get(i + 2).is_some_and(u8::is_ascii_alphanumeric))
    {
        return false;
    }
    if FORMAT.iter().any(|f| memchr::memmem::find(v, f).is_some()) {
        return false;
    }
    h::char_classes(v) >= 2 || (v.len() >= 10 && !v.iter().any(|b| b"_.-".contains(b)))
}

fn random_like(kind: NameKind, v: &[u8]) -> bool {
    if v.len() < 16 {
        return false;
    }
    if !v.iter().any(u8::is_ascii_digit) || !v.iter().any(u8::is_ascii_alphabetic) {
        return false;
    }
    if h::is_hash_like(v) && (kind == NameKind::Weak || !h::is_hex(v)) {
        return false;
    }
    let bits = (v.len() as f64).log2() - 0.7;
    let threshold = if h::is_hex(v) { bits.min(3.0) } else { bits.min(3.5) };
    h::shannon_entropy(v) >= threshold
}
