//! The audit event: one request, shaped like an AWS CloudTrail record so tools that read CloudTrail
//! read Coffer's log too. The service fills it in; [`Event::to_canonical_json`] renders the bytes the
//! chain hashes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AuditError, LookupAttribute};

/// The CloudTrail record version Coffer writes.
pub const EVENT_VERSION: &str = "1.08";
/// A request made by a caller.
pub const EVENT_TYPE_API_CALL: &str = "AwsApiCall";
/// Something Coffer did on its own (rotation, scheduled deletion).
pub const EVENT_TYPE_SERVICE_EVENT: &str = "AwsServiceEvent";
/// Every event Coffer records is a management event.
pub const EVENT_CATEGORY_MANAGEMENT: &str = "Management";

/// One CloudTrail record. Field order is the serialization order, so it is part of the canonical
/// form: do not reorder fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_version: String,
    pub user_identity: UserIdentity,
    /// ISO-8601 in whole seconds, UTC (see [`iso8601_seconds`]).
    pub event_time: String,
    /// `secretsmanager.amazonaws.com`, `ssm.amazonaws.com`, …
    pub event_source: String,
    /// The operation (`GetSecretValue`).
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress", default, skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Identifiers only (see [`crate::params`]); CloudTrail writes `null` when there are none.
    #[serde(default, serialize_with = "canonical::value")]
    pub request_parameters: Value,
    /// Identifiers only; `null` when there are none.
    #[serde(default, serialize_with = "canonical::value")]
    pub response_elements: Value,
    /// Coffer writes `{"actorSource": "api" | "cli" | "rotation" | "scheduler" | "emergency"}`.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "canonical::optional_value")]
    pub additional_event_data: Option<Value>,
    #[serde(rename = "requestID", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    /// CloudTrail omits `resources` when the request named none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<EventResource>,
    /// [`EVENT_TYPE_API_CALL`] or [`EVENT_TYPE_SERVICE_EVENT`].
    pub event_type: String,
    #[serde(default = "management_event")]
    pub management_event: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    #[serde(default = "management_category")]
    pub event_category: String,
}

fn management_event() -> bool {
    true
}

fn management_category() -> String {
    EVENT_CATEGORY_MANAGEMENT.to_string()
}

impl Default for Event {
    fn default() -> Self {
        Event {
            event_version: EVENT_VERSION.to_string(),
            user_identity: UserIdentity::default(),
            event_time: String::new(),
            event_source: String::new(),
            event_name: String::new(),
            aws_region: String::new(),
            source_ip_address: None,
            user_agent: None,
            error_code: None,
            error_message: None,
            request_parameters: Value::Null,
            response_elements: Value::Null,
            additional_event_data: None,
            request_id: None,
            event_id: String::new(),
            read_only: false,
            resources: Vec::new(),
            event_type: EVENT_TYPE_API_CALL.to_string(),
            management_event: true,
            recipient_account_id: None,
            event_category: management_category(),
        }
    }
}

/// Who made the request (CloudTrail's `userIdentity`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// `Root`, `IAMUser`, `AssumedRole`, `AWSService` or `Unknown`.
    #[serde(rename = "type")]
    pub identity_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// For an assumed role, the session name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
    /// For `AWSService`: which service acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
}

impl Default for UserIdentity {
    fn default() -> Self {
        UserIdentity {
            identity_type: "Unknown".to_string(),
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id: None,
            user_name: None,
            session_context: None,
            invoked_by: None,
        }
    }
}

/// The temporary credentials a request was signed with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// The role an assumed-role session was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuer>,
    pub attributes: SessionAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    /// ISO-8601, whole seconds (see [`iso8601_seconds`]).
    pub creation_date: String,
    /// `"true"` or `"false"`: CloudTrail writes a string here, not a boolean.
    pub mfa_authenticated: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// `Role`.
    #[serde(rename = "type")]
    pub issuer_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// A resource the request touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResource {
    /// CloudTrail capitalises this one key.
    #[serde(rename = "ARN")]
    pub arn: String,
    #[serde(rename = "accountId", default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `AWS::SecretsManager::Secret`, …
    #[serde(rename = "type")]
    pub resource_type: String,
}

impl Event {
    /// The bytes the chain hashes: compact JSON, fields in declaration order, object keys inside
    /// free-form values sorted, so the same event always renders to the same bytes. Rendered through
    /// [`EventRef`], the one definition of the canonical form.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        self.borrowed().to_canonical_json()
    }

    /// The event as an [`EventRef`] borrowing from it.
    pub fn borrowed(&self) -> EventRef<'_> {
        // Destructured field by field: a field added to `Event` must be added here (and so to the
        // canonical form) or this stops compiling.
        let Event {
            event_version,
            user_identity,
            event_time,
            event_source,
            event_name,
            aws_region,
            source_ip_address,
            user_agent,
            error_code,
            error_message,
            request_parameters,
            response_elements,
            additional_event_data,
            request_id,
            event_id,
            read_only,
            resources,
            event_type,
            management_event,
            recipient_account_id,
            event_category,
        } = self;
        let UserIdentity {
            identity_type,
            principal_id,
            arn,
            account_id,
            access_key_id,
            user_name,
            session_context,
            invoked_by,
        } = user_identity;
        EventRef {
            event_version,
            user_identity: UserIdentityRef {
                identity_type,
                principal_id: principal_id.as_deref().map(Cow::Borrowed),
                arn: arn.as_deref().map(Cow::Borrowed),
                account_id: account_id.as_deref(),
                access_key_id: access_key_id.as_deref(),
                user_name: user_name.as_deref(),
                session_context: session_context.as_ref().map(|c| SessionContextRef {
                    session_issuer: c.session_issuer.as_ref().map(|i| SessionIssuerRef {
                        issuer_type: &i.issuer_type,
                        principal_id: i.principal_id.as_deref(),
                        arn: i.arn.as_deref().map(Cow::Borrowed),
                        account_id: i.account_id.as_deref(),
                        user_name: i.user_name.as_deref(),
                    }),
                    attributes: SessionAttributesRef {
                        creation_date: Cow::Borrowed(&c.attributes.creation_date),
                        mfa_authenticated: &c.attributes.mfa_authenticated,
                    },
                }),
                invoked_by: invoked_by.as_deref(),
            },
            event_time,
            event_source,
            event_name,
            aws_region,
            source_ip_address: source_ip_address.as_deref(),
            user_agent: user_agent.as_deref(),
            error_code: error_code.as_deref(),
            error_message: error_message.as_deref(),
            request_parameters,
            response_elements,
            additional_event_data: additional_event_data.as_ref().map(ExtraData::Value),
            request_id: request_id.as_deref(),
            event_id,
            read_only: *read_only,
            resources: resources
                .iter()
                .map(|r| EventResourceRef {
                    arn: &r.arn,
                    account_id: r.account_id.as_deref(),
                    resource_type: &r.resource_type,
                })
                .collect(),
            event_type,
            management_event: *management_event,
            recipient_account_id: recipient_account_id.as_deref(),
            event_category,
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Event, AuditError> {
        serde_json::from_slice(bytes).map_err(AuditError::Event)
    }

    /// `additionalEventData.actorSource`: `api`, `cli`, `rotation`, `scheduler` or `emergency`.
    pub fn actor_source(&self) -> Option<&str> {
        self.additional_event_data.as_ref()?.get("actorSource")?.as_str()
    }

    /// Everything the event can be looked up by, without repeats. `EventId` is left out: the store
    /// indexes the event id itself.
    pub fn lookup_entries(&self) -> Vec<(LookupAttribute, String)> {
        let mut entries: Vec<(LookupAttribute, String)> = Vec::with_capacity(6 + 3 * self.resources.len());
        let mut add = |attribute: LookupAttribute, value: &str| {
            if !value.is_empty() && !entries.iter().any(|(a, v)| *a == attribute && v == value) {
                entries.push((attribute, value.to_string()));
            }
        };
        add(LookupAttribute::EventName, &self.event_name);
        add(LookupAttribute::EventSource, &self.event_source);
        add(LookupAttribute::ReadOnly, if self.read_only { "true" } else { "false" });
        if let Some(user) = &self.user_identity.user_name {
            add(LookupAttribute::Username, user);
        }
        if let Some(key) = &self.user_identity.access_key_id {
            add(LookupAttribute::AccessKeyId, key);
        }
        for resource in &self.resources {
            add(LookupAttribute::ResourceType, &resource.resource_type);
            add(LookupAttribute::ResourceName, &resource.arn);
            if let Some(name) = friendly_resource_name(&resource.arn) {
                add(LookupAttribute::ResourceName, &name);
            }
        }
        entries
    }
}

impl Event {
    /// What the store indexes: the selective attributes only (event name, user, access key, and each
    /// resource by its name — its ARN when it has none). Every index entry is written on the hot path,
    /// so the broad attributes (ReadOnly, EventSource, ResourceType) and the ARN form of a name are
    /// found by scanning and filtering with [`lookup_entries`](Self::lookup_entries) instead.
    pub fn index_entries(&self) -> Vec<(LookupAttribute, String)> {
        self.borrowed().index_entries()
    }
}

/// An [`Event`] that borrows what it says from wherever it already lives. The request path renders
/// its events through this, so recording a request copies its identifiers once, into the rendered
/// bytes, instead of into an owned `Event` first. Field order and names are the canonical form's
/// ([`Event::borrowed`] keeps the two in step).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRef<'a> {
    pub event_version: &'a str,
    pub user_identity: UserIdentityRef<'a>,
    pub event_time: &'a str,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub aws_region: &'a str,
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<&'a str>,
    #[serde(serialize_with = "canonical::value_ref")]
    pub request_parameters: &'a Value,
    #[serde(serialize_with = "canonical::value_ref")]
    pub response_elements: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<ExtraData<'a>>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(rename = "eventID")]
    pub event_id: &'a str,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<EventResourceRef<'a>>,
    pub event_type: &'a str,
    pub management_event: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<&'a str>,
    pub event_category: &'a str,
}

/// `additionalEventData`: Coffer's own `{"actorSource": ...}` without building a map, or any value.
pub enum ExtraData<'a> {
    ActorSource(&'a str),
    Value(&'a Value),
}

impl Serialize for ExtraData<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            ExtraData::ActorSource(source) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("actorSource", source)?;
                map.end()
            }
            ExtraData::Value(value) => canonical::value(value, serializer),
        }
    }
}

/// [`UserIdentity`], borrowed; the strings a principal does not hold as such (an assumed role's
/// principal id, its role's ARN, a session's creation date) are rendered into owned ones.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentityRef<'a> {
    #[serde(rename = "type")]
    pub identity_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContextRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<&'a str>,
}

impl<'a> UserIdentityRef<'a> {
    /// An identity of `identity_type` and nothing else (`Unknown`, a service).
    pub fn of_type(identity_type: &'a str) -> Self {
        UserIdentityRef {
            identity_type,
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id: None,
            user_name: None,
            session_context: None,
            invoked_by: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContextRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuerRef<'a>>,
    pub attributes: SessionAttributesRef<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributesRef<'a> {
    pub creation_date: Cow<'a, str>,
    pub mfa_authenticated: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuerRef<'a> {
    #[serde(rename = "type")]
    pub issuer_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<&'a str>,
}

#[derive(Serialize)]
pub struct EventResourceRef<'a> {
    #[serde(rename = "ARN")]
    pub arn: &'a str,
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(rename = "type")]
    pub resource_type: &'a str,
}

impl EventRef<'_> {
    /// The canonical bytes (see [`Event::to_canonical_json`]).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serializing plain structs, strings, bools and `Value`s into a Vec cannot fail (no I/O, no
        // non-string map keys), so an empty result is unreachable rather than a silent loss.
        // Sized for a typical event (about 900 bytes), so the buffer is not regrown while writing.
        let mut out = Vec::with_capacity(1_024);
        match serde_json::to_writer(&mut out, self) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }

    /// See [`Event::index_entries`].
    pub fn index_entries(&self) -> Vec<(LookupAttribute, String)> {
        let mut entries: Vec<(LookupAttribute, String)> = Vec::with_capacity(3 + self.resources.len());
        let mut add = |attribute: LookupAttribute, value: &str| {
            if !value.is_empty() {
                entries.push((attribute, value.to_string()));
            }
        };
        add(LookupAttribute::EventName, self.event_name);
        if let Some(user) = self.user_identity.user_name {
            add(LookupAttribute::Username, user);
        }
        if let Some(key) = self.user_identity.access_key_id {
            add(LookupAttribute::AccessKeyId, key);
        }
        for resource in &self.resources {
            let name = index_name(resource.arn);
            if !name.is_empty() && !entries.iter().any(|(a, v)| *a == LookupAttribute::ResourceName && *v == name) {
                entries.push((LookupAttribute::ResourceName, name));
            }
        }
        entries
    }
}

/// The value a resource is indexed under: its friendly name, or the ARN itself when it has none. A
/// lookup by ARN searches the index under this and keeps the events that name the exact ARN.
pub fn index_name(arn: &str) -> String {
    friendly_resource_name(arn).unwrap_or_else(|| arn.to_string())
}

impl LookupAttribute {
    /// Whether the store indexes this attribute (see [`Event::index_entries`]); the others are
    /// answered by scanning newest first and filtering.
    pub fn is_indexed(self) -> bool {
        matches!(
            self,
            LookupAttribute::EventId
                | LookupAttribute::EventName
                | LookupAttribute::Username
                | LookupAttribute::AccessKeyId
                | LookupAttribute::ResourceName
        )
    }
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range a four-digit ISO-8601 year can show.
const MIN_ISO_SECONDS: i64 = -62_167_219_200;
const MAX_ISO_SECONDS: i64 = 253_402_300_799;

/// `2026-11-23T11:53:58Z`: UTC, whole seconds (truncated), as CloudTrail writes times. Instants
/// outside years 0–9999 are clamped to that range rather than rendered in a non-standard form.
pub fn iso8601_seconds(epoch_ms: i64) -> String {
    let seconds = epoch_ms.div_euclid(1000).clamp(MIN_ISO_SECONDS, MAX_ISO_SECONDS);
    // Every event names its time; within a second they all name the same one, so each thread keeps
    // the last second it rendered instead of formatting a calendar date per event.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, String)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((cached, text)) if *cached == seconds => text.clone(),
            _ => {
                let text = format_iso8601(seconds);
                *last = Some((seconds, text.clone()));
                text
            }
        }
    })
}

fn format_iso8601(seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        // Unreachable: the clamped range lies inside what `time` represents.
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// The name a person knows a resource by, from its ARN: a secret's name without the random suffix,
/// a parameter's name, a KMS key id or alias, an IAM entity's name. `None` when the ARN is of no
/// shape Coffer names.
pub fn friendly_resource_name(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let _partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let _account = parts.next()?;
    let resource = parts.next()?;
    let name = match service {
        "secretsmanager" => secret_name(resource.strip_prefix("secret:")?),
        "ssm" => parameter_name(resource.strip_prefix("parameter/")?),
        "kms" => {
            if let Some(id) = resource.strip_prefix("key/") {
                id.to_string()
            } else if resource.starts_with("alias/") {
                resource.to_string()
            } else {
                return None;
            }
        }
        "iam" => {
            let (kind, rest) = resource.split_once('/')?;
            match kind {
                // IAM paths sit between the kind and the name: `user/division/team/alice`.
                "user" | "role" | "policy" | "group" => rest.rsplit('/').next()?.to_string(),
                _ => return None,
            }
        }
        _ => return None,
    };
    if name.is_empty() {
        None
    } else {
        Some(name)
    }
}

/// Secrets Manager appends `-` and six random characters to a secret's name in its ARN.
fn secret_name(with_suffix: &str) -> String {
    if let Some((name, suffix)) = with_suffix.rsplit_once('-') {
        if !name.is_empty() && suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return name.to_string();
        }
    }
    with_suffix.to_string()
}

/// A parameter ARN drops the name's leading slash: `parameter/a/b` is `/a/b`, `parameter/plain`
/// is `plain` (SSM refuses single-segment names with a leading slash that are also multi-level, so
/// the two forms cannot collide).
fn parameter_name(path: &str) -> String {
    if path.contains('/') {
        format!("/{path}")
    } else {
        path.to_string()
    }
}

/// Serializes `Value`s with object keys in sorted order whatever map type serde_json was built
/// with: if another crate in a build turned on `preserve_order`, the bytes stay the same.
mod canonical {
    use serde::ser::{SerializeMap, SerializeSeq};
    use serde::{Serialize, Serializer};
    use serde_json::Value;

    struct Sorted<'a>(&'a Value);

    impl Serialize for Sorted<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match self.0 {
                Value::Object(map) => {
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    let mut out = serializer.serialize_map(Some(entries.len()))?;
                    for (key, value) in entries {
                        out.serialize_entry(key, &Sorted(value))?;
                    }
                    out.end()
                }
                Value::Array(items) => {
                    let mut out = serializer.serialize_seq(Some(items.len()))?;
                    for item in items {
                        out.serialize_element(&Sorted(item))?;
                    }
                    out.end()
                }
                scalar => scalar.serialize(serializer),
            }
        }
    }

    pub(super) fn value<S: Serializer>(value: &Value, serializer: S) -> Result<S::Ok, S::Error> {
        Sorted(value).serialize(serializer)
    }

    pub(super) fn value_ref<S: Serializer>(value: &&Value, serializer: S) -> Result<S::Ok, S::Error> {
        Sorted(value).serialize(serializer)
    }

    pub(super) fn optional_value<S: Serializer>(value: &Option<Value>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_some(&Sorted(v)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assumed_role_event() -> Event {
        Event {
            user_identity: UserIdentity {
                identity_type: "AssumedRole".into(),
                principal_id: Some("AROAEXAMPLE:deploy".into()),
                arn: Some("arn:aws:sts::111122223333:assumed-role/ci/deploy".into()),
                account_id: Some("111122223333".into()),
                access_key_id: Some("ASIAEXAMPLE".into()),
                user_name: Some("deploy".into()),
                session_context: Some(SessionContext {
                    session_issuer: Some(SessionIssuer {
                        issuer_type: "Role".into(),
                        principal_id: Some("AROAEXAMPLE".into()),
                        arn: Some("arn:aws:iam::111122223333:role/ci".into()),
                        account_id: Some("111122223333".into()),
                        user_name: Some("ci".into()),
                    }),
                    attributes: SessionAttributes {
                        creation_date: "2026-11-23T11:00:00Z".into(),
                        mfa_authenticated: "false".into(),
                    },
                }),
                invoked_by: None,
            },
            event_time: "2026-11-23T11:53:58Z".into(),
            event_source: "secretsmanager.amazonaws.com".into(),
            event_name: "GetSecretValue".into(),
            aws_region: "us-east-1".into(),
            source_ip_address: Some("192.0.2.1".into()),
            user_agent: Some("aws-cli/2".into()),
            request_parameters: json!({"secretId": "prod/db"}),
            additional_event_data: Some(json!({"actorSource": "api"})),
            request_id: Some("req-1".into()),
            event_id: "6f1c3b52-0000-4000-8000-000000000001".into(),
            read_only: true,
            resources: vec![EventResource {
                arn: "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf".into(),
                account_id: Some("111122223333".into()),
                resource_type: "AWS::SecretsManager::Secret".into(),
            }],
            recipient_account_id: Some("111122223333".into()),
            ..Event::default()
        }
    }

    #[test]
    fn renders_exactly_as_cloudtrail_names_things() {
        let json = String::from_utf8(assumed_role_event().to_canonical_json()).unwrap();
        let expected = concat!(
            r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:deploy","#,
            r#""arn":"arn:aws:sts::111122223333:assumed-role/ci/deploy","accountId":"111122223333","#,
            r#""accessKeyId":"ASIAEXAMPLE","userName":"deploy","sessionContext":{"sessionIssuer":{"type":"Role","#,
            r#""principalId":"AROAEXAMPLE","arn":"arn:aws:iam::111122223333:role/ci","accountId":"111122223333","#,
            r#""userName":"ci"},"attributes":{"creationDate":"2026-11-23T11:00:00Z","mfaAuthenticated":"false"}}},"#,
            r#""eventTime":"2026-11-23T11:53:58Z","eventSource":"secretsmanager.amazonaws.com","#,
            r#""eventName":"GetSecretValue","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.1","#,
            r#""userAgent":"aws-cli/2","requestParameters":{"secretId":"prod/db"},"responseElements":null,"#,
            r#""additionalEventData":{"actorSource":"api"},"requestID":"req-1","#,
            r#""eventID":"6f1c3b52-0000-4000-8000-000000000001","readOnly":true,"#,
            r#""resources":[{"ARN":"arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf","#,
            r#""accountId":"111122223333","type":"AWS::SecretsManager::Secret"}],"eventType":"AwsApiCall","#,
            r#""managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#,
        );
        assert_eq!(json, expected);
    }

    #[test]
    fn optional_fields_are_omitted_but_parameters_and_elements_are_null() {
        let event = Event {
            event_time: iso8601_seconds(0),
            event_source: "ssm.amazonaws.com".into(),
            event_name: "GetParameter".into(),
            aws_region: "eu-west-1".into(),
            event_id: "id".into(),
            ..Event::default()
        };
        let value: Value = serde_json::from_slice(&event.to_canonical_json()).unwrap();
        let object = value.as_object().unwrap();
        for absent in [
            "sourceIPAddress",
            "userAgent",
            "errorCode",
            "errorMessage",
            "additionalEventData",
            "requestID",
            "resources",
            "recipientAccountId",
        ] {
            assert!(!object.contains_key(absent), "{absent} should be omitted");
        }
        assert_eq!(object["requestParameters"], Value::Null);
        assert_eq!(object["responseElements"], Value::Null);
        assert_eq!(object["userIdentity"], json!({"type": "Unknown"}));
        assert_eq!(object["managementEvent"], json!(true));
        assert_eq!(object["eventCategory"], json!("Management"));
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let mut event = assumed_role_event();
        event.error_code = Some("AccessDeniedException".into());
        event.error_message = Some("denied".into());
        event.response_elements = json!({"aRN": "arn:x", "name": "n"});
        let bytes = event.to_canonical_json();
        let parsed = Event::from_json(&bytes).unwrap();
        assert_eq!(parsed, event);
        assert_eq!(parsed.to_canonical_json(), bytes);
    }

    #[test]
    fn free_form_values_render_with_sorted_keys() {
        let mut map = serde_json::Map::new();
        for key in ["zeta", "alpha", "mid"] {
            map.insert(key.to_string(), json!([{"b": 1, "a": 2}]));
        }
        let event = Event { request_parameters: Value::Object(map), event_id: "e".into(), ..Event::default() };
        let json = String::from_utf8(event.to_canonical_json()).unwrap();
        assert!(json
            .contains(r#""requestParameters":{"alpha":[{"a":2,"b":1}],"mid":[{"a":2,"b":1}],"zeta":[{"a":2,"b":1}]}"#));
    }

    #[test]
    fn parses_records_missing_defaulted_fields() {
        let event = Event::from_json(
            br#"{"eventVersion":"1.08","userIdentity":{"type":"Root"},"eventTime":"2026-01-01T00:00:00Z",
                "eventSource":"kms.amazonaws.com","eventName":"Decrypt","awsRegion":"us-east-1",
                "eventID":"x","readOnly":true,"eventType":"AwsApiCall","somethingNew":1}"#,
        )
        .unwrap();
        assert_eq!(event.request_parameters, Value::Null);
        assert!(event.management_event);
        assert_eq!(event.event_category, "Management");
        assert!(event.resources.is_empty());
    }

    #[test]
    fn the_borrowed_form_renders_what_the_owned_event_serializes_to() {
        // Every optional part present, then every optional part absent, then free-form values with
        // unsorted keys and an additionalEventData that is not Coffer's own shape.
        let full = {
            let mut e = assumed_role_event();
            e.error_code = Some("AccessDeniedException".into());
            e.error_message = Some("User: x is not \"authorized\"\n".into());
            e.response_elements = json!({"zeta": 1, "aRN": "arn:x", "nested": {"b": [1, {"d": 2, "c": 3}], "a": null}});
            e.additional_event_data = Some(json!({"z": true, "actorSource": "rotation"}));
            e.user_identity.invoked_by = Some("coffer.internal".into());
            e
        };
        let bare = Event { event_id: "id".into(), ..Event::default() };
        for event in [assumed_role_event(), full, bare] {
            let serialized = serde_json::to_vec(&event).unwrap();
            assert_eq!(
                String::from_utf8(event.borrowed().to_canonical_json()).unwrap(),
                String::from_utf8(serialized).unwrap()
            );
            assert_eq!(Event::from_json(&event.to_canonical_json()).unwrap(), event);
            assert_eq!(event.borrowed().index_entries(), event.index_entries());
        }
    }

    #[test]
    fn coffers_actor_source_renders_as_the_map_it_stands_for() {
        let mut event = assumed_role_event();
        let mut borrowed = event.borrowed();
        borrowed.additional_event_data = Some(ExtraData::ActorSource("emergency"));
        let bytes = borrowed.to_canonical_json();
        event.additional_event_data = Some(json!({"actorSource": "emergency"}));
        assert_eq!(bytes, serde_json::to_vec(&event).unwrap());
        assert_eq!(Event::from_json(&bytes).unwrap().actor_source(), Some("emergency"));
    }

    #[test]
    fn times_render_the_same_from_the_per_thread_cache() {
        // Same second twice (cached), the next second, and back: each is the calendar time.
        for ms in [1_795_953_238_123, 1_795_953_238_999, 1_795_953_239_000, 1_795_953_238_500, 0, -1] {
            assert_eq!(iso8601_seconds(ms), format_iso8601(ms.div_euclid(1000)));
        }
        assert_eq!(iso8601_seconds(1_795_953_238_123), "2026-11-29T11:53:58Z");
        assert_eq!(iso8601_seconds(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn rejects_what_is_not_an_event() {
        assert!(matches!(Event::from_json(b"not json"), Err(AuditError::Event(_))));
        assert!(Event::from_json(br#"{"eventVersion":"1.08"}"#).is_err());
        assert!(Event::from_json(b"").is_err());
    }

    #[test]
    fn actor_source_reads_additional_event_data() {
        assert_eq!(assumed_role_event().actor_source(), Some("api"));
        let mut event = assumed_role_event();
        event.additional_event_data = None;
        assert_eq!(event.actor_source(), None);
        event.additional_event_data = Some(json!({"actorSource": 3}));
        assert_eq!(event.actor_source(), None);
        event.additional_event_data = Some(json!({"actorSource": "rotation"}));
        assert_eq!(event.actor_source(), Some("rotation"));
    }

    #[test]
    fn iso8601_is_whole_seconds_utc() {
        assert_eq!(iso8601_seconds(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_seconds(1_795_434_838_999), "2026-11-23T11:53:58Z");
        assert_eq!(iso8601_seconds(951_782_400_000), "2000-02-29T00:00:00Z");
        // Before the epoch, truncation goes towards the earlier second.
        assert_eq!(iso8601_seconds(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso8601_seconds(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(iso8601_seconds(i64::MIN), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn lookup_entries_cover_every_attribute_but_the_event_id() {
        let mut event = assumed_role_event();
        event.resources.push(EventResource {
            arn: "arn:aws:kms:us-east-1:111122223333:key/1234abcd".into(),
            account_id: None,
            resource_type: "AWS::KMS::Key".into(),
        });
        // A repeated resource adds nothing.
        event.resources.push(event.resources[0].clone());
        let entries = event.lookup_entries();
        let expected: Vec<(LookupAttribute, String)> = vec![
            (LookupAttribute::EventName, "GetSecretValue".into()),
            (LookupAttribute::EventSource, "secretsmanager.amazonaws.com".into()),
            (LookupAttribute::ReadOnly, "true".into()),
            (LookupAttribute::Username, "deploy".into()),
            (LookupAttribute::AccessKeyId, "ASIAEXAMPLE".into()),
            (LookupAttribute::ResourceType, "AWS::SecretsManager::Secret".into()),
            (
                LookupAttribute::ResourceName,
                "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf".into(),
            ),
            (LookupAttribute::ResourceName, "prod/db".into()),
            (LookupAttribute::ResourceType, "AWS::KMS::Key".into()),
            (LookupAttribute::ResourceName, "arn:aws:kms:us-east-1:111122223333:key/1234abcd".into()),
            (LookupAttribute::ResourceName, "1234abcd".into()),
        ];
        assert_eq!(entries, expected);
        assert!(entries.iter().all(|(a, _)| *a != LookupAttribute::EventId));
    }

    #[test]
    fn lookup_entries_skip_what_is_absent() {
        let event = Event { event_name: "ListSecrets".into(), event_source: "s".into(), ..Event::default() };
        assert_eq!(
            event.lookup_entries(),
            vec![
                (LookupAttribute::EventName, "ListSecrets".into()),
                (LookupAttribute::EventSource, "s".into()),
                (LookupAttribute::ReadOnly, "false".into()),
            ]
        );
    }

    #[test]
    fn friendly_names_by_arn_shape() {
        let cases = [
            ("arn:aws:secretsmanager:r:a:secret:prod/db-AbCdEf", Some("prod/db")),
            ("arn:aws:secretsmanager:r:a:secret:my-app-key-x1Y2z3", Some("my-app-key")),
            // No recognisable suffix: the name as it stands.
            ("arn:aws:secretsmanager:r:a:secret:plain", Some("plain")),
            ("arn:aws:secretsmanager:r:a:secret:short-abc", Some("short-abc")),
            ("arn:aws:ssm:r:a:parameter/prod/db", Some("/prod/db")),
            ("arn:aws:ssm:r:a:parameter/a/b", Some("/a/b")),
            ("arn:aws:ssm:r:a:parameter/plain", Some("plain")),
            ("arn:aws:kms:r:a:key/1234abcd-12ab", Some("1234abcd-12ab")),
            ("arn:aws:kms:r:a:alias/app", Some("alias/app")),
            ("arn:aws:iam::a:user/alice", Some("alice")),
            ("arn:aws:iam::a:user/division/team/alice", Some("alice")),
            ("arn:aws:iam::a:role/ci", Some("ci")),
            ("arn:aws:iam::a:policy/ReadOnly", Some("ReadOnly")),
            ("arn:aws:iam::a:group/admins", Some("admins")),
            ("arn:aws:iam::a:root", None),
            ("arn:aws:iam::a:mfa/alice", None),
            ("arn:aws:s3:::bucket", None),
            ("arn:aws:kms:r:a:grant/x", None),
            ("arn:aws:secretsmanager:r:a:other:x", None),
            ("arn:aws:ssm:r:a:parameter/", None),
            ("not-an-arn", None),
            ("", None),
        ];
        for (arn, expected) in cases {
            assert_eq!(friendly_resource_name(arn).as_deref(), expected, "{arn}");
        }
    }
}
