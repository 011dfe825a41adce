//! Policy documents: parsing, validation and the compiled form evaluation runs on.

use serde_json::{Map, Value};

use crate::condition::{compile_conditions, Condition};
use crate::context::RequestContext;
use crate::error::PolicyError;
use crate::pattern::{compile_at, Pattern};

/// Identity-based policies are attached to a user or role and name no principal; resource-based
/// policies are attached to a resource and must name one in every statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    Identity,
    Resource,
}

/// The policy language version. Policy variables are substituted only under `V2012_10_17`; a
/// document without `Version` is read as `V2008_10_17`, as AWS does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V2008_10_17,
    V2012_10_17,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

/// A maximum document size. IAM counts identity policies without white space; Secrets Manager
/// counts a resource policy's characters as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    pub max_chars: usize,
    pub count_whitespace: bool,
}

impl SizeLimit {
    /// IAM managed (identity-based) policies: 6,144 characters, white space not counted.
    pub const IDENTITY: SizeLimit = SizeLimit { max_chars: 6_144, count_whitespace: false };
    /// Secrets Manager resource policies: 20,480 characters.
    pub const SECRETS_MANAGER_RESOURCE: SizeLimit = SizeLimit { max_chars: 20_480, count_whitespace: true };
}

/// Checks a document against a size limit before parsing it.
pub fn check_size(document: &str, limit: SizeLimit) -> Result<(), PolicyError> {
    let actual = if limit.count_whitespace {
        document.chars().count()
    } else {
        document.chars().filter(|c| !c.is_whitespace()).count()
    };
    if actual > limit.max_chars {
        return Err(PolicyError::TooLarge { actual, limit: limit.max_chars });
    }
    Ok(())
}

/// One entry of a `Principal` / `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalEntry {
    /// `"*"` or `{"AWS": "*"}`: everyone.
    Any,
    /// A 12-digit account id or `arn:aws:iam::ACCOUNT:root`: the account (delegation).
    Account(String),
    /// A user, role, assumed-role session or other principal ARN.
    Arn(String),
    /// `{"Service": "..."}`.
    Service(String),
    /// `{"Federated": "..."}`.
    Federated(String),
    /// `{"CanonicalUser": "..."}`.
    CanonicalUser(String),
}

/// How a principal element matched the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PrincipalMatch {
    None,
    /// Only through the caller's account: delegates to the account's identity-based policies.
    Account,
    /// The caller itself (its ARN, its role, a service, or `*`).
    Direct,
}

impl PrincipalEntry {
    fn matches(&self, ctx: &RequestContext) -> PrincipalMatch {
        let caller = ctx.principal_arn();
        let hit = match self {
            PrincipalEntry::Any => true,
            PrincipalEntry::Account(acct) => {
                if !ctx.account().is_empty() && acct == ctx.account() {
                    // The root user itself is the account.
                    let root = caller.ends_with(":root") && arn_account(caller) == Some(acct.as_str());
                    return if root { PrincipalMatch::Direct } else { PrincipalMatch::Account };
                }
                false
            }
            PrincipalEntry::Arn(arn) => arn == caller || session_of_role(caller, arn),
            PrincipalEntry::Service(s) => ctx.service_principal() == Some(s.as_str()),
            PrincipalEntry::Federated(f) | PrincipalEntry::CanonicalUser(f) => f == caller,
        };
        if hit {
            PrincipalMatch::Direct
        } else {
            PrincipalMatch::None
        }
    }
}

fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

/// Whether `caller` is a session `arn:P:sts::A:assumed-role/ROLE/SESSION` of `role`
/// (`arn:P:iam::A:role/[PATH/]ROLE`).
fn session_of_role(caller: &str, role: &str) -> bool {
    let c: Vec<&str> = caller.splitn(6, ':').collect();
    let r: Vec<&str> = role.splitn(6, ':').collect();
    let (&[_, cp, "sts", _, ca, cres], &[_, rp, "iam", _, ra, rres]) = (c.as_slice(), r.as_slice()) else {
        return false;
    };
    let (Some(session), Some(role_path)) = (cres.strip_prefix("assumed-role/"), rres.strip_prefix("role/")) else {
        return false;
    };
    let Some((role_name, _)) = session.split_once('/') else {
        return false;
    };
    cp == rp && ca == ra && role_path.rsplit('/').next() == Some(role_name)
}

/// A compiled `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principals {
    entries: Vec<PrincipalEntry>,
}

impl Principals {
    pub(crate) fn matches(&self, ctx: &RequestContext) -> PrincipalMatch {
        self.entries.iter().map(|e| e.matches(ctx)).max().unwrap_or(PrincipalMatch::None)
    }
}

/// One compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) actions: Vec<Pattern>,
    pub(crate) not_action: bool,
    pub(crate) resources: Vec<Pattern>,
    pub(crate) not_resource: bool,
    pub(crate) principals: Option<Principals>,
    pub(crate) not_principal: bool,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The principal entries of `Principal` / `NotPrincipal` (empty for identity policies) and
    /// whether they are `NotPrincipal`.
    pub fn principals(&self) -> (&[PrincipalEntry], bool) {
        (self.principals.as_ref().map_or(&[], |p| p.entries.as_slice()), self.not_principal)
    }

    /// Whether the statement's action, resource and conditions apply to the request (the principal
    /// is checked separately).
    pub(crate) fn applies(&self, ctx: &RequestContext) -> bool {
        let action = ctx.action();
        let a = self.actions.iter().any(|p| p.matches(action, true, ctx));
        if a == self.not_action {
            return false;
        }
        let resource = ctx.resource();
        let r = self.resources.iter().any(|p| p.matches(resource, false, ctx));
        if r == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(ctx))
    }
}

/// A parsed, validated and compiled policy document: parse once, evaluate many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) id: String,
    pub(crate) kind: PolicyKind,
    pub(crate) version: Version,
    pub(crate) document_id: Option<String>,
    pub(crate) statements: Vec<Statement>,
}

impl Policy {
    /// Parses and compiles `document`. `id` names the policy in evaluation results (e.g. its ARN or
    /// name).
    pub fn parse(id: impl Into<String>, document: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_str(document).map_err(|e| PolicyError::Json {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })?;
        Policy::from_value(id, &value, kind)
    }

    /// Compiles an already-parsed JSON document.
    pub fn from_value(id: impl Into<String>, value: &Value, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let Value::Object(doc) = value else {
            return Err(PolicyError::invalid("(document)", "must be a JSON object"));
        };
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::invalid(key.as_str(), "unknown policy element"));
            }
        }
        let version = match doc.get("Version") {
            None => Version::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(_) => return Err(PolicyError::invalid("Version", "must be 2012-10-17 or 2008-10-17")),
        };
        let document_id = match doc.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(PolicyError::invalid("Id", "must be a string")),
        };
        let raw: Vec<(String, &Value)> = match doc.get("Statement") {
            None => return Err(PolicyError::invalid("Statement", "is missing")),
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(PolicyError::invalid("Statement", "must contain at least one statement"))
            }
            Some(Value::Array(items)) => {
                items.iter().enumerate().map(|(i, v)| (format!("Statement[{i}]"), v)).collect()
            }
            Some(v @ Value::Object(_)) => vec![("Statement".to_owned(), v)],
            Some(_) => return Err(PolicyError::invalid("Statement", "must be an object or a list of objects")),
        };
        let variables = version == Version::V2012_10_17;
        let mut statements = Vec::with_capacity(raw.len());
        for (path, v) in raw {
            let stmt = parse_statement(&path, v, kind, variables)?;
            if let Some(sid) = &stmt.sid {
                if kind == PolicyKind::Identity && statements.iter().any(|s: &Statement| s.sid.as_ref() == Some(sid)) {
                    return Err(PolicyError::invalid(format!("{path}.Sid"), format!("duplicate Sid {sid}")));
                }
            }
            statements.push(stmt);
        }
        Ok(Policy { id: id.into(), kind, version, document_id, statements })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The document's own `Id` element.
    pub fn document_id(&self) -> Option<&str> {
        self.document_id.as_deref()
    }

    /// Whether evaluating this policy reads any condition key: a Condition, or a policy variable in an
    /// Action or Resource. When none of a request's policies does, the request's condition keys need
    /// not be gathered at all — only the principal, action and resource matter.
    pub fn uses_condition_keys(&self) -> bool {
        self.statements
            .iter()
            .any(|s| !s.conditions.is_empty() || s.actions.iter().chain(s.resources.iter()).any(|p| p.has_vars()))
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn parse_statement(path: &str, v: &Value, kind: PolicyKind, variables: bool) -> Result<Statement, PolicyError> {
    let Value::Object(obj) = v else {
        return Err(PolicyError::invalid(path, "must be an object"));
    };
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "Sid"
                | "Effect"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Principal"
                | "NotPrincipal"
                | "Condition"
        ) {
            return Err(PolicyError::invalid(path, format!("unknown element {key}")));
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => {
            if kind == PolicyKind::Identity && !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(PolicyError::invalid(format!("{path}.Sid"), "must be alphanumeric"));
            }
            Some(s.clone())
        }
        Some(_) => return Err(PolicyError::invalid(format!("{path}.Sid"), "must be a string")),
    };
    let effect = match obj.get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(_) => return Err(PolicyError::invalid(format!("{path}.Effect"), "must be Allow or Deny")),
        None => return Err(PolicyError::invalid(path, "is missing Effect")),
    };

    let (action_key, not_action) = pick(path, obj, "Action", "NotAction")?
        .ok_or_else(|| PolicyError::invalid(path, "must contain Action or NotAction"))?;
    let action_path = format!("{path}.{action_key}");
    let actions = string_list(&action_path, obj.get(action_key).unwrap_or(&Value::Null))?
        .into_iter()
        .map(|(p, a)| {
            if a != "*" && !valid_action(&a) {
                return Err(PolicyError::invalid(p, format!("invalid action '{a}': must be service:Action or *")));
            }
            compile_at(&p, &a, true, false)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let (resources, not_resource) = match pick(path, obj, "Resource", "NotResource")? {
        Some((key, not)) => {
            let rpath = format!("{path}.{key}");
            let list = string_list(&rpath, obj.get(key).unwrap_or(&Value::Null))?
                .into_iter()
                .map(|(p, r)| {
                    if r != "*" && !r.starts_with("arn:") {
                        return Err(PolicyError::invalid(&p, format!("resource '{r}' must be an ARN or *")));
                    }
                    compile_at(&p, &r, true, variables)
                })
                .collect::<Result<Vec<_>, _>>()?;
            (list, not)
        }
        None if kind == PolicyKind::Identity => {
            return Err(PolicyError::invalid(path, "must contain Resource or NotResource"))
        }
        // A resource policy without Resource applies to the resource it is attached to.
        None => (vec![compile_at(path, "*", true, false)?], false),
    };

    let (principals, not_principal) = match pick(path, obj, "Principal", "NotPrincipal")? {
        Some((key, not)) => {
            if kind == PolicyKind::Identity {
                return Err(PolicyError::invalid(
                    format!("{path}.{key}"),
                    "an identity-based policy must not specify a principal",
                ));
            }
            (Some(parse_principals(&format!("{path}.{key}"), obj.get(key).unwrap_or(&Value::Null))?), not)
        }
        None if kind == PolicyKind::Resource => {
            return Err(PolicyError::invalid(path, "must contain Principal or NotPrincipal"))
        }
        None => (None, false),
    };

    let conditions = match obj.get("Condition") {
        Some(c) => compile_conditions(&format!("{path}.Condition"), c, variables)?,
        None => Vec::new(),
    };

    Ok(Statement { sid, effect, actions, not_action, resources, not_resource, principals, not_principal, conditions })
}

/// Which of two mutually exclusive elements is present (`true` for the `Not` one).
fn pick<'k>(
    path: &str,
    obj: &Map<String, Value>,
    yes: &'k str,
    not: &'k str,
) -> Result<Option<(&'k str, bool)>, PolicyError> {
    match (obj.contains_key(yes), obj.contains_key(not)) {
        (true, true) => Err(PolicyError::invalid(path, format!("has both {yes} and {not}"))),
        (true, false) => Ok(Some((yes, false))),
        (false, true) => Ok(Some((not, true))),
        (false, false) => Ok(None),
    }
}

/// A string or a non-empty list of strings, each with its path.
fn string_list(path: &str, v: &Value) -> Result<Vec<(String, String)>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![(path.to_owned(), s.clone())]),
        Value::Array(items) if items.is_empty() => Err(PolicyError::invalid(path, "must not be empty")),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok((format!("{path}[{i}]"), s.clone())),
                _ => Err(PolicyError::invalid(format!("{path}[{i}]"), "must be a string")),
            })
            .collect(),
        _ => Err(PolicyError::invalid(path, "must be a string or a list of strings")),
    }
}

fn valid_action(a: &str) -> bool {
    match a.split_once(':') {
        Some((service, op)) => {
            !service.is_empty()
                && service.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !op.is_empty()
                && op.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '-' | '_'))
        }
        None => false,
    }
}

fn parse_principals(path: &str, v: &Value) -> Result<Principals, PolicyError> {
    let entries = match v {
        Value::String(s) if s == "*" => vec![PrincipalEntry::Any],
        Value::Object(map) if !map.is_empty() => {
            let mut entries = Vec::new();
            for (ty, val) in map {
                let tpath = format!("{path}.{ty}");
                for (p, s) in string_list(&tpath, val)? {
                    entries.push(match ty.as_str() {
                        "AWS" => aws_principal(&p, &s)?,
                        "Service" => PrincipalEntry::Service(s),
                        "Federated" => PrincipalEntry::Federated(s),
                        "CanonicalUser" => PrincipalEntry::CanonicalUser(s),
                        _ => return Err(PolicyError::invalid(&tpath, "unknown principal type")),
                    });
                }
            }
            entries
        }
        _ => {
            return Err(PolicyError::invalid(path, "must be \"*\" or an object such as {\"AWS\": \"arn:...\"}"));
        }
    };
    Ok(Principals { entries })
}

fn aws_principal(path: &str, s: &str) -> Result<PrincipalEntry, PolicyError> {
    if s == "*" {
        return Ok(PrincipalEntry::Any);
    }
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(PrincipalEntry::Account(s.to_owned()));
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, service, _region, account, resource]
            if !partition.is_empty() && !service.is_empty() && !resource.is_empty() && !s.contains(['*', '?']) =>
        {
            if *service == "iam" && *resource == "root" {
                Ok(PrincipalEntry::Account((*account).to_owned()))
            } else {
                Ok(PrincipalEntry::Arn(s.to_owned()))
            }
        }
        _ => Err(PolicyError::invalid(path, format!("invalid principal '{s}'"))),
    }
}
