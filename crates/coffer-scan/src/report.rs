//! Output formats: human text (optionally colored), JSON, JSON lines and SARIF 2.1.0. None of them
//! carries a secret: only redacted previews and fingerprints.

use std::io::Write;

use serde_json::json;

use crate::{Finding, Scanner};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One block per finding, for people.
    Text,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
}

fn finding_json(f: &Finding) -> serde_json::Value {
    let mut v = json!({
        "file": f.file,
        "line": f.line,
        "column": f.column,
        "rule": f.rule,
        "description": f.description,
        "preview": f.preview,
        "fingerprint": f.fingerprint,
    });
    if let (Some(c), Some(obj)) = (&f.commit, v.as_object_mut()) {
        obj.insert("commit".into(), json!(c));
    }
    v
}

/// Writes `findings` in `format`. `color` applies to text only.
pub fn write(
    out: &mut dyn Write,
    format: Format,
    findings: &[Finding],
    scanner: &Scanner,
    color: bool,
) -> std::io::Result<()> {
    match format {
        Format::Text => write_text(out, findings, color),
        Format::Json => {
            let all: Vec<_> = findings.iter().map(finding_json).collect();
            serde_json::to_writer_pretty(&mut *out, &all)?;
            writeln!(out)
        }
        Format::Jsonl => {
            for f in findings {
                serde_json::to_writer(&mut *out, &finding_json(f))?;
                writeln!(out)?;
            }
            Ok(())
        }
        Format::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(findings, scanner))?;
            writeln!(out)
        }
    }
}

fn write_text(out: &mut dyn Write, findings: &[Finding], color: bool) -> std::io::Result<()> {
    let (red, bold, dim, reset) = if color { ("\x1b[31m", "\x1b[1m", "\x1b[2m", "\x1b[0m") } else { ("", "", "", "") };
    for f in findings {
        write!(out, "{bold}{}:{}:{}{reset}: {red}{}{reset} {}", f.file, f.line, f.column, f.rule, f.preview)?;
        if let Some(c) = &f.commit {
            write!(out, " {dim}(commit {}){reset}", &c[..c.len().min(12)])?;
        }
        writeln!(out, " {dim}[{}]{reset}", f.fingerprint)?;
    }
    Ok(())
}

/// The SARIF 2.1.0 log of a scan: one run, the rule set as the tool's rules, one result per finding
/// with its fingerprint as a partial fingerprint (so dashboards track it across commits).
pub fn sarif(findings: &[Finding], scanner: &Scanner) -> serde_json::Value {
    let mut rules: Vec<(String, String)> = scanner.rules().map(|(id, d)| (id.to_string(), d.to_string())).collect();
    if findings.iter().any(|f| f.rule == crate::KNOWN_SECRET_RULE) {
        rules.push((crate::KNOWN_SECRET_RULE.to_string(), "Value of a known secret".to_string()));
    }
    let rule_objs: Vec<_> = rules
        .iter()
        .map(|(id, d)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": d },
                "defaultConfiguration": { "level": "error" },
            })
        })
        .collect();
    let results: Vec<_> = findings
        .iter()
        .map(|f| {
            let index = rules.iter().position(|(id, _)| *id == f.rule);
            let mut r = json!({
                "ruleId": f.rule,
                "level": "error",
                "message": { "text": format!("{}: {}", f.description, f.preview) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.file.trim_start_matches("./") },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
                "partialFingerprints": { "cofferFingerprint/v1": f.fingerprint },
            });
            if let Some(obj) = r.as_object_mut() {
                if let Some(i) = index {
                    obj.insert("ruleIndex".into(), json!(i));
                }
                if let Some(c) = &f.commit {
                    obj.insert("properties".into(), json!({ "commit": c }));
                }
            }
            r
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "coffer-scan",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_objs,
            }},
            "results": results,
        }],
    })
}
