//! Baselines: the findings a team has accepted, so a scan reports only what is new.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Finding};

/// One accepted finding. The fingerprint is what matters; the rest helps people review the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineEntry {
    /// The finding's fingerprint.
    pub fingerprint: String,
    /// Its rule.
    pub rule: String,
    /// Where it was when accepted.
    pub file: String,
    /// Its line then.
    pub line: usize,
}

/// A baseline file (`.coffer-baseline.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    /// Format version (1).
    pub version: u32,
    /// The accepted findings, sorted by file and line.
    pub findings: Vec<BaselineEntry>,
}

impl Baseline {
    /// A baseline accepting `findings`.
    pub fn from_findings(findings: &[Finding]) -> Baseline {
        let mut entries: Vec<BaselineEntry> = findings
            .iter()
            .map(|f| BaselineEntry {
                fingerprint: f.fingerprint.clone(),
                rule: f.rule.clone(),
                file: f.file.clone(),
                line: f.line,
            })
            .collect();
        entries.sort_by(|a, b| (&a.file, a.line, &a.fingerprint).cmp(&(&b.file, b.line, &b.fingerprint)));
        entries.dedup();
        Baseline { version: 1, findings: entries }
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        serde_json::from_slice(&text).map_err(|e| Error::Invalid(format!("baseline {}: {e}", path.display())))
    }

    /// Writes the baseline as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| Error::Invalid(e.to_string()))?;
        text.push(b'\n');
        std::fs::write(path, text).map_err(|source| Error::Io { path: path.display().to_string(), source })
    }

    /// The fingerprints it accepts.
    pub fn fingerprints(&self) -> HashSet<&str> {
        self.findings.iter().map(|e| e.fingerprint.as_str()).collect()
    }

    /// Keeps only the findings not in the baseline.
    pub fn filter_new(&self, findings: Vec<Finding>) -> Vec<Finding> {
        let known = self.fingerprints();
        findings.into_iter().filter(|f| !known.contains(f.fingerprint.as_str())).collect()
    }
}
