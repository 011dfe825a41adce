//! The request context: who asks, for what, on which resource, and the condition keys of the request.

use std::collections::HashMap;

/// Everything evaluation needs to know about one request. Condition keys are stored lowercased
/// (context keys are case-insensitive); each key holds one value or many (a multivalued key such as
/// `aws:TagKeys` may also hold none — present but empty).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    principal_arn: String,
    account: String,
    service_principal: Option<String>,
    action: String,
    resource: String,
    keys: HashMap<String, Vec<String>>,
}

impl RequestContext {
    /// A context for `principal_arn` performing `action` (`service:Operation`) on `resource` (an ARN).
    /// Sets `aws:PrincipalArn` and, when the ARN names one, the account (`aws:PrincipalAccount`).
    pub fn new(principal_arn: impl Into<String>, action: impl Into<String>, resource: impl Into<String>) -> Self {
        let principal_arn = principal_arn.into();
        let account = principal_arn.split(':').nth(4).unwrap_or_default().to_owned();
        let mut ctx = RequestContext {
            principal_arn: principal_arn.clone(),
            account: String::new(),
            service_principal: None,
            action: action.into(),
            resource: resource.into(),
            keys: HashMap::new(),
        };
        ctx.keys.insert("aws:principalarn".into(), vec![principal_arn]);
        if !account.is_empty() {
            ctx = ctx.with_account(account);
        }
        ctx
    }

    /// The principal's account id (`aws:PrincipalAccount`).
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        let account = account.into();
        self.keys.insert("aws:principalaccount".into(), vec![account.clone()]);
        self.account = account;
        self
    }

    /// The friendly user name (`aws:username`).
    pub fn with_username(self, name: impl Into<String>) -> Self {
        self.with_value("aws:username", name)
    }

    /// The unique user id (`aws:userid`).
    pub fn with_userid(self, id: impl Into<String>) -> Self {
        self.with_value("aws:userid", id)
    }

    /// A tag of the principal (`aws:PrincipalTag/KEY`).
    pub fn with_principal_tag(self, key: &str, value: impl Into<String>) -> Self {
        self.with_value(&format!("aws:principaltag/{key}"), value)
    }

    /// `aws:MultiFactorAuthPresent`.
    pub fn with_mfa(self, present: bool) -> Self {
        self.with_value("aws:multifactorauthpresent", bool_str(present))
    }

    /// `aws:SecureTransport`.
    pub fn with_secure_transport(self, secure: bool) -> Self {
        self.with_value("aws:securetransport", bool_str(secure))
    }

    /// `aws:SourceIp` (an IPv4 or IPv6 address).
    pub fn with_source_ip(self, ip: impl Into<String>) -> Self {
        self.with_value("aws:sourceip", ip)
    }

    /// The time of the request in milliseconds since the Unix epoch: sets `aws:CurrentTime`
    /// (ISO 8601, UTC) and `aws:EpochTime` (seconds). A time outside the representable range sets
    /// only `aws:EpochTime`.
    pub fn with_current_time_millis(mut self, millis: i64) -> Self {
        let secs = millis.div_euclid(1000);
        let nanos = i128::from(millis) * 1_000_000;
        if let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            if let Ok(s) = t.format(&time::format_description::well_known::Rfc3339) {
                self.keys.insert("aws:currenttime".into(), vec![s]);
            }
        }
        self.with_value("aws:epochtime", secs.to_string())
    }

    /// The calling service for a service principal (`{"Service": "lambda.amazonaws.com"}`).
    pub fn with_service_principal(mut self, service: impl Into<String>) -> Self {
        self.service_principal = Some(service.into());
        self
    }

    /// Sets a single-valued condition key (the key is case-insensitive).
    pub fn with_value(mut self, key: &str, value: impl Into<String>) -> Self {
        self.keys.insert(key.to_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multivalued condition key, e.g. `aws:TagKeys`; an empty list is a present, empty set.
    pub fn with_values<I, S>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys.insert(key.to_lowercase(), values.into_iter().map(Into::into).collect());
        self
    }

    /// Removes a condition key.
    pub fn without(mut self, key: &str) -> Self {
        self.keys.remove(&key.to_lowercase());
        self
    }

    pub fn principal_arn(&self) -> &str {
        &self.principal_arn
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn service_principal(&self) -> Option<&str> {
        self.service_principal.as_deref()
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The values of a condition key (case-insensitive); `None` when absent.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        if key.bytes().any(|b| b.is_ascii_uppercase()) || !key.is_ascii() {
            self.keys.get(&key.to_lowercase()).map(Vec::as_slice)
        } else {
            self.keys.get(key).map(Vec::as_slice)
        }
    }

    /// The value of a key already lowercased, when it has exactly one.
    pub(crate) fn single(&self, lower_key: &str) -> Option<&str> {
        match self.keys.get(lower_key).map(Vec::as_slice) {
            Some([v]) => Some(v),
            _ => None,
        }
    }

    /// The values of a key already lowercased.
    pub(crate) fn values(&self, lower_key: &str) -> Option<&[String]> {
        self.keys.get(lower_key).map(Vec::as_slice)
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
