//! `.cofferignore`: paths (gitignore-style globs), rule ids (`rule:ID`) and fingerprints
//! (`fingerprint:HEX`, or a bare 32-digit hex fingerprint) whose findings are not reported.
//! `#` starts a comment.

use std::collections::HashSet;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::{Error, Finding};

/// A parsed `.cofferignore` (several files may be merged into one).
#[derive(Debug)]
pub struct IgnoreFile {
    paths: Gitignore,
    rules: HashSet<String>,
    fingerprints: HashSet<String>,
}

impl Default for IgnoreFile {
    fn default() -> Self {
        IgnoreFile { paths: Gitignore::empty(), rules: HashSet::new(), fingerprints: HashSet::new() }
    }
}

fn is_fingerprint(s: &str) -> bool {
    s.len() >= 16 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl IgnoreFile {
    /// Parses the text of one or more ignore files.
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<IgnoreFile, Error> {
        let mut builder = GitignoreBuilder::new("");
        let mut out = IgnoreFile::default();
        for text in texts {
            for line in text.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some(rule) = line.strip_prefix("rule:") {
                    out.rules.insert(rule.trim().to_string());
                } else if let Some(fp) = line.strip_prefix("fingerprint:") {
                    out.fingerprints.insert(fp.trim().to_ascii_lowercase());
                } else if is_fingerprint(line) {
                    out.fingerprints.insert(line.to_ascii_lowercase());
                } else {
                    builder.add_line(None, line).map_err(|e| Error::Invalid(format!(".cofferignore: {line}: {e}")))?;
                }
            }
        }
        out.paths = builder.build().map_err(|e| Error::Invalid(format!(".cofferignore: {e}")))?;
        Ok(out)
    }

    /// Reads the `.cofferignore` files that exist among `paths`.
    pub fn load(paths: &[&Path]) -> Result<IgnoreFile, Error> {
        let mut texts = Vec::new();
        for p in paths {
            match std::fs::read_to_string(p) {
                Ok(t) => texts.push(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path: p.display().to_string(), source }),
            }
        }
        IgnoreFile::parse(texts.iter().map(String::as_str))
    }

    /// Whether a path (relative, `/`-separated) is ignored.
    pub fn ignores_path(&self, path: &str) -> bool {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        !path.is_empty() && self.paths.matched_path_or_any_parents(path, false).is_ignore()
    }

    /// Whether a finding is ignored by path, rule or fingerprint.
    pub fn ignores(&self, f: &Finding) -> bool {
        self.rules.contains(&f.rule) || self.fingerprints.contains(&f.fingerprint) || self.ignores_path(&f.file)
    }
}
