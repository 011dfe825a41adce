//! Compiled match patterns: literal text, `*` / `?` wildcards, and policy variables (`${aws:username}`,
//! `${aws:PrincipalTag/team, 'default'}`, the escapes `${*}`, `${?}`, `${$}`), matched without
//! allocating unless the pattern holds a variable.

use crate::context::RequestContext;
use crate::error::PolicyError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Lit(Box<str>),
    Star,
    One,
    Var { key: Box<str>, default: Option<Box<str>> },
}

/// A compiled pattern (a resource, an action, or one condition value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    segs: Vec<Seg>,
    has_vars: bool,
}

#[derive(Clone, Copy)]
pub(crate) enum Atom<'a> {
    Lit(&'a str),
    Star,
    One,
    Never,
}

pub(crate) trait AsAtom {
    fn atom(&self) -> Atom<'_>;
}

impl AsAtom for Seg {
    fn atom(&self) -> Atom<'_> {
        match self {
            Seg::Lit(s) => Atom::Lit(s),
            Seg::Star => Atom::Star,
            Seg::One => Atom::One,
            Seg::Var { .. } => Atom::Never,
        }
    }
}

impl AsAtom for Atom<'_> {
    fn atom(&self) -> Atom<'_> {
        *self
    }
}

impl Pattern {
    /// Compiles `text`. With `wildcards`, `*` and `?` match any run / any one character; with
    /// `variables`, `${...}` is a policy variable or escape (policy version 2012-10-17 only).
    pub(crate) fn compile(text: &str, wildcards: bool, variables: bool) -> Result<Pattern, String> {
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut has_vars = false;
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                if let Some(end) = rest.find('}') {
                    let inner = &rest[2..end];
                    rest = &rest[end + 1..];
                    match inner {
                        "*" => lit.push('*'),
                        "?" => lit.push('?'),
                        "$" => lit.push('$'),
                        _ => {
                            let (key, default) = parse_variable(inner)?;
                            flush(&mut lit, &mut segs);
                            segs.push(Seg::Var { key, default });
                            has_vars = true;
                        }
                    }
                    continue;
                }
            }
            rest = &rest[c.len_utf8()..];
            match c {
                '*' if wildcards => {
                    flush(&mut lit, &mut segs);
                    if segs.last() != Some(&Seg::Star) {
                        segs.push(Seg::Star);
                    }
                }
                '?' if wildcards => {
                    flush(&mut lit, &mut segs);
                    segs.push(Seg::One);
                }
                _ => lit.push(c),
            }
        }
        flush(&mut lit, &mut segs);
        Ok(Pattern { segs, has_vars })
    }

    /// Matches `text`; `ci` compares characters case-insensitively. A variable whose key is missing
    /// from the context (and has no default) makes the pattern match nothing.
    /// Whether the pattern holds a policy variable (its match reads the request context).
    pub(crate) fn has_vars(&self) -> bool {
        self.has_vars
    }

    pub(crate) fn matches(&self, text: &str, ci: bool, ctx: &RequestContext) -> bool {
        if !self.has_vars {
            return glob(&self.segs, text, ci);
        }
        match self.resolve(ctx) {
            Some(atoms) => glob(&atoms, text, ci),
            None => false,
        }
    }

    fn resolve<'a>(&'a self, ctx: &'a RequestContext) -> Option<Vec<Atom<'a>>> {
        let mut atoms = Vec::with_capacity(self.segs.len());
        for seg in &self.segs {
            atoms.push(match seg {
                Seg::Var { key, default } => match ctx.single(key) {
                    Some(v) => Atom::Lit(v),
                    None => Atom::Lit(default.as_deref()?),
                },
                other => other.atom(),
            });
        }
        Some(atoms)
    }
}

fn flush(lit: &mut String, segs: &mut Vec<Seg>) {
    if !lit.is_empty() {
        segs.push(Seg::Lit(std::mem::take(lit).into_boxed_str()));
    }
}

/// `aws:username` or `aws:username, 'default'`; the key is lowercased (context keys are
/// case-insensitive).
type Variable = (Box<str>, Option<Box<str>>);

fn parse_variable(inner: &str) -> Result<Variable, String> {
    let (key, default) = match inner.split_once(',') {
        Some((k, d)) => {
            let d = d.trim();
            let quoted = d.len() >= 2 && d.starts_with('\'') && d.ends_with('\'');
            if !quoted {
                return Err(format!("policy variable ${{{inner}}}: the default value must be in single quotes"));
            }
            (k.trim(), Some(d[1..d.len() - 1].into()))
        }
        None => (inner.trim(), None),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(format!("invalid policy variable ${{{inner}}}"));
    }
    Ok((key.to_ascii_lowercase().into_boxed_str(), default))
}

/// Compiles a pattern, turning a variable syntax fault into a located error.
pub(crate) fn compile_at(path: &str, text: &str, wildcards: bool, variables: bool) -> Result<Pattern, PolicyError> {
    Pattern::compile(text, wildcards, variables).map_err(|m| PolicyError::invalid(path, m))
}

enum El {
    Char(char),
    Star,
    One,
    End,
    Never,
}

/// The pattern element at `(idx, off)` and the position after it, skipping exhausted literals.
fn peek<A: AsAtom>(pat: &[A], mut idx: usize, mut off: usize) -> (El, usize, usize) {
    loop {
        let Some(a) = pat.get(idx) else {
            return (El::End, idx, 0);
        };
        match a.atom() {
            Atom::Lit(s) => match s.get(off..).and_then(|r| r.chars().next()) {
                Some(c) => return (El::Char(c), idx, off + c.len_utf8()),
                None => {
                    idx += 1;
                    off = 0;
                }
            },
            Atom::Star => return (El::Star, idx + 1, 0),
            Atom::One => return (El::One, idx + 1, 0),
            Atom::Never => return (El::Never, idx + 1, 0),
        }
    }
}

fn char_eq(a: char, b: char, ci: bool) -> bool {
    a == b || (ci && a.to_lowercase().eq(b.to_lowercase()))
}

/// Wildcard match with single-star backtracking (linear in practice, no allocation).
pub(crate) fn glob<A: AsAtom>(pat: &[A], text: &str, ci: bool) -> bool {
    if let Some(matched) = glob_ascii(pat, text, ci) {
        return matched;
    }
    glob_chars(pat, text, ci)
}

/// The common case — an ASCII pattern against an ASCII text (ARNs, actions) — matched a literal run at
/// a time on bytes: the run before the first `*` anchors at the start, the one after the last at the
/// end, and each run between is found leftmost (which is correct for `*`, which has no length limit).
/// `None` when either side is not ASCII (Unicode case folding then needs the char-wise matcher).
fn glob_ascii<A: AsAtom>(pat: &[A], text: &str, ci: bool) -> Option<bool> {
    if !text.is_ascii() {
        return None;
    }
    for a in pat {
        match a.atom() {
            Atom::Lit(s) if !s.is_ascii() => return None,
            Atom::Never => return Some(false),
            _ => {}
        }
    }
    let text = text.as_bytes();
    // Runs: the atoms between stars.
    let mut runs = pat.split(|a| matches!(a.atom(), Atom::Star)).peekable();
    let first = runs.next().unwrap_or(&[]);
    let first_len = run_len(first);
    if runs.peek().is_none() {
        // No star: the one run is the whole text.
        return Some(first_len == text.len() && run_matches(first, text, ci));
    }
    if first_len > text.len() || !run_matches(first, &text[..first_len], ci) {
        return Some(false);
    }
    let mut rest = &text[first_len..];
    while let Some(run) = runs.next() {
        let len = run_len(run);
        if runs.peek().is_none() {
            // The last run anchors at the end.
            return Some(len <= rest.len() && run_matches(run, &rest[rest.len() - len..], ci));
        }
        if len == 0 {
            continue;
        }
        match (0..(rest.len() + 1).saturating_sub(len)).find(|&i| run_matches(run, &rest[i..i + len], ci)) {
            Some(i) => rest = &rest[i + len..],
            None => return Some(false),
        }
    }
    Some(true)
}

/// How many bytes a run of literals and `?` covers (ASCII: one byte per `?`).
fn run_len<A: AsAtom>(run: &[A]) -> usize {
    run.iter()
        .map(|a| match a.atom() {
            Atom::Lit(s) => s.len(),
            _ => 1,
        })
        .sum()
}

/// Whether `bytes` (exactly the run's length) match the run.
fn run_matches<A: AsAtom>(run: &[A], bytes: &[u8], ci: bool) -> bool {
    let mut at = 0;
    for a in run {
        match a.atom() {
            Atom::Lit(s) => {
                let Some(part) = bytes.get(at..at + s.len()) else { return false };
                let equal = if ci { part.eq_ignore_ascii_case(s.as_bytes()) } else { part == s.as_bytes() };
                if !equal {
                    return false;
                }
                at += s.len();
            }
            _ => at += 1,
        }
    }
    at == bytes.len()
}

/// The general matcher, a character at a time (Unicode case folding when `ci`).
fn glob_chars<A: AsAtom>(pat: &[A], text: &str, ci: bool) -> bool {
    let (mut pi, mut po) = (0usize, 0usize);
    let mut t = 0usize;
    let mut star: Option<(usize, usize, usize)> = None;
    loop {
        let (el, ni, no) = peek(pat, pi, po);
        match text.get(t..).and_then(|r| r.chars().next()) {
            Some(tc) => {
                match el {
                    El::Star => {
                        star = Some((ni, no, t));
                        pi = ni;
                        po = no;
                        continue;
                    }
                    El::One => {
                        pi = ni;
                        po = no;
                        t += tc.len_utf8();
                        continue;
                    }
                    El::Char(c) if char_eq(c, tc, ci) => {
                        pi = ni;
                        po = no;
                        t += tc.len_utf8();
                        continue;
                    }
                    _ => {}
                }
                let Some((si, so, st)) = star else {
                    return false;
                };
                let Some(sc) = text.get(st..).and_then(|r| r.chars().next()) else {
                    return false;
                };
                let nt = st + sc.len_utf8();
                star = Some((si, so, nt));
                pi = si;
                po = so;
                t = nt;
            }
            None => match el {
                El::Star => {
                    pi = ni;
                    po = no;
                }
                El::End => return true,
                _ => return false,
            },
        }
    }
}

#[cfg(test)]
mod ascii_matcher_tests {
    use super::*;

    /// The byte-wise matcher and the char-wise one agree on every pattern/text pair drawn here
    /// (a small alphabet makes overlaps, repeats and backtracking cases frequent).
    #[test]
    fn ascii_fast_path_agrees_with_the_general_matcher() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let alphabet = ['a', 'b', 'A', ':', '/'];
        for _ in 0..20_000 {
            let mut pattern = String::new();
            for _ in 0..next(7) {
                match next(8) {
                    0 => pattern.push('*'),
                    1 => pattern.push('?'),
                    _ => pattern.push(alphabet[next(5) as usize]),
                }
            }
            let text: String = (0..next(9)).map(|_| alphabet[next(5) as usize]).collect();
            let compiled = Pattern::compile(&pattern, true, false).expect("compiles");
            for ci in [false, true] {
                let fast = glob_ascii(&compiled.segs, &text, ci).expect("ASCII on both sides");
                assert_eq!(fast, glob_chars(&compiled.segs, &text, ci), "{pattern:?} vs {text:?} (ci: {ci})");
            }
        }
    }

    #[test]
    fn non_ascii_falls_back_to_the_char_matcher() {
        let compiled = Pattern::compile("caf*", true, false).expect("compiles");
        assert_eq!(glob_ascii(&compiled.segs, "café", false), None);
        assert!(glob(&compiled.segs, "café", false));
        let unicode = Pattern::compile("CAFÉ", true, false).expect("compiles");
        assert!(glob(&unicode.segs, "café", true));
    }
}
