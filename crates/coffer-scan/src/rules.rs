//! Rules as data: the TOML schema, the built-in set, merging a user file, and compiling a set into
//! regexes and one keyword automaton.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::Error;

/// The built-in rule set, embedded in the binary.
pub const BUILTIN_RULES: &str = include_str!("rules.toml");

/// Most rules one set may hold: rule membership per line is a fixed-size bit set.
pub const MAX_RULES: usize = 256;

/// A rule set as written in TOML (the built-in one, or a user's file layered on top of it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Global exclusions.
    #[serde(default)]
    pub allow: AllowList,
    /// The rules, in reporting order.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// Values and paths excluded from every rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowList {
    /// Exact values that are never secrets (published documentation or emulator keys).
    #[serde(default)]
    pub values: Vec<String>,
    /// Regexes: a secret matching any of them is never reported.
    #[serde(default)]
    pub regexes: Vec<String>,
    /// Gitignore-style globs of paths that are never scanned.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Where a rule's regex runs once one of its keywords is seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// On the line holding the keyword.
    #[default]
    Line,
    /// From the start of that line on, for secrets that span lines.
    Block,
    /// Over the whole file.
    File,
}

/// How a rule matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Its own regex.
    #[default]
    Regex,
    /// The built-in assignment matcher (`name = value` in code and configuration).
    Assignment,
}

/// Which assignments an assignment rule reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignmentClass {
    /// High-randomness values under key/secret/token-like names.
    #[default]
    Entropy,
    /// Human-chosen or random values under password-like names.
    Password,
}

/// A structural check run on a candidate secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// GitHub's (and npm's) CRC32 checksum in the last six base62 characters.
    GithubChecksum,
    /// A JSON Web Token whose header decodes to a JSON object with an `alg`.
    Jwt,
    /// A PEM, OpenSSH or PGP private key whose body decodes and parses.
    PrivateKey,
    /// An AWS secret access key: mixed case and digits, as AWS generates them.
    AwsSecretKey,
}

/// One rule as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable identifier, reported with each finding and used in ignore files and baselines.
    pub id: String,
    /// What the rule finds, for people.
    #[serde(default)]
    pub description: String,
    /// Lower-case words, one of which must appear for the rule to run.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The regex (Rust `regex` syntax, matched on bytes, ASCII-only classes and `\b`).
    #[serde(default)]
    pub regex: Option<String>,
    /// How the rule matches.
    #[serde(default)]
    pub kind: Kind,
    /// For assignment rules: which values are reported.
    #[serde(default)]
    pub class: AssignmentClass,
    /// Where the regex runs.
    #[serde(default)]
    pub scope: Scope,
    /// A structural check.
    #[serde(default)]
    pub validate: Option<Validator>,
    /// Least Shannon entropy of the secret, in bits per character.
    #[serde(default)]
    pub entropy: Option<f64>,
    /// Regexes of secrets this rule does not report.
    #[serde(default)]
    pub allow: Vec<String>,
    /// A regex that must match somewhere in the file.
    #[serde(default)]
    pub requires: Option<String>,
    /// Higher wins when findings overlap.
    #[serde(default)]
    pub priority: i32,
}

impl RuleSet {
    /// The built-in rules.
    pub fn builtin() -> Result<RuleSet, Error> {
        RuleSet::parse(BUILTIN_RULES)
    }

    /// Parses a rule set from TOML.
    pub fn parse(text: &str) -> Result<RuleSet, Error> {
        toml::from_str(text).map_err(|e| Error::Rules(e.to_string()))
    }

    /// Layers `user` on top: rules with an existing id replace it, others are appended, and the
    /// allow lists are concatenated.
    pub fn extend(&mut self, user: RuleSet) {
        for rule in user.rules {
            match self.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(existing) => *existing = rule,
                None => self.rules.push(rule),
            }
        }
        self.allow.values.extend(user.allow.values);
        self.allow.regexes.extend(user.allow.regexes);
        self.allow.paths.extend(user.allow.paths);
    }
}

/// A rule ready to run.
#[derive(Debug)]
pub(crate) struct Rule {
    pub id: String,
    pub description: String,
    pub kind: Kind,
    pub class: AssignmentClass,
    pub scope: Scope,
    pub regex: Option<Regex>,
    pub secret_group: Option<usize>,
    pub validate: Option<Validator>,
    pub entropy: Option<f64>,
    pub allow: Vec<Regex>,
    pub requires: Option<Regex>,
    pub priority: i32,
}

/// A set of rules, as a bit per rule index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RuleMask([u64; MAX_RULES / 64]);

impl RuleMask {
    pub fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    pub fn union(&mut self, other: &RuleMask) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= *b;
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            let mut bits = *bits;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
        })
    }
}

/// Compiled rules plus the keyword automaton that decides which of them run where.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub rules: Vec<Rule>,
    pub keywords: AhoCorasick,
    /// For each keyword pattern, the rules it triggers, split by scope.
    pub keyword_line_rules: Vec<RuleMask>,
    pub keyword_file_rules: Vec<RuleMask>,
    pub allow_values: std::collections::HashSet<Vec<u8>>,
    pub allow_regexes: Vec<Regex>,
    pub allow_paths: Vec<String>,
}

fn compile_regex(rule: &str, pattern: &str) -> Result<Regex, Error> {
    // ASCII classes and word boundaries: Unicode `\b` would keep the regex off its fast DFA engines,
    // and secrets are ASCII.
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(32 << 20)
        .build()
        .map_err(|e| Error::Rules(format!("rule {rule}: bad regex: {e}")))
}

impl Compiled {
    pub fn new(set: &RuleSet) -> Result<Compiled, Error> {
        if set.rules.len() > MAX_RULES {
            return Err(Error::Rules(format!("at most {MAX_RULES} rules, got {}", set.rules.len())));
        }
        let mut rules = Vec::with_capacity(set.rules.len());
        let mut keyword_index: std::collections::HashMap<String, usize> = Default::default();
        let mut patterns: Vec<String> = Vec::new();
        let mut line_masks: Vec<RuleMask> = Vec::new();
        let mut file_masks: Vec<RuleMask> = Vec::new();
        for (i, spec) in set.rules.iter().enumerate() {
            if spec.id.is_empty() {
                return Err(Error::Rules("a rule has an empty id".into()));
            }
            if spec.keywords.is_empty() {
                return Err(Error::Rules(format!("rule {}: needs at least one keyword", spec.id)));
            }
            let regex = match (&spec.kind, &spec.regex) {
                (Kind::Regex, Some(r)) => Some(compile_regex(&spec.id, r)?),
                (Kind::Regex, None) => return Err(Error::Rules(format!("rule {}: needs a regex", spec.id))),
                (Kind::Assignment, _) => None,
            };
            let secret_group = regex.as_ref().and_then(|r| {
                r.capture_names().position(|n| n == Some("secret")).or(if r.captures_len() > 1 {
                    None
                } else {
                    Some(0)
                })
            });
            let allow = spec.allow.iter().map(|a| compile_regex(&spec.id, a)).collect::<Result<Vec<_>, _>>()?;
            let requires = spec.requires.as_deref().map(|r| compile_regex(&spec.id, r)).transpose()?;
            for kw in &spec.keywords {
                let kw = kw.to_ascii_lowercase();
                if kw.is_empty() {
                    return Err(Error::Rules(format!("rule {}: empty keyword", spec.id)));
                }
                let k = *keyword_index.entry(kw.clone()).or_insert_with(|| {
                    patterns.push(kw);
                    line_masks.push(RuleMask::default());
                    file_masks.push(RuleMask::default());
                    patterns.len() - 1
                });
                if spec.scope == Scope::File {
                    file_masks[k].set(i);
                } else {
                    line_masks[k].set(i);
                }
            }
            rules.push(Rule {
                id: spec.id.clone(),
                description: spec.description.clone(),
                kind: spec.kind,
                class: spec.class,
                scope: spec.scope,
                regex,
                secret_group,
                validate: spec.validate,
                entropy: spec.entropy,
                allow,
                requires,
                priority: spec.priority,
            });
        }
        // Overlapping matches: a keyword inside another ("sk-" in "sk-ant-") must trigger both rules.
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .map_err(|e| Error::Rules(format!("keyword automaton: {e}")))?;
        let allow_regexes =
            set.allow.regexes.iter().map(|a| compile_regex("allow", a)).collect::<Result<Vec<_>, _>>()?;
        Ok(Compiled {
            rules,
            keywords,
            keyword_line_rules: line_masks,
            keyword_file_rules: file_masks,
            allow_values: set.allow.values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            allow_regexes,
            allow_paths: set.allow.paths.clone(),
        })
    }
}
