//! Who is calling and from where. Every service call takes a [`RequestContext`]; there is no
//! unauthenticated path into the service.

/// What kind of identity signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root credentials: allowed everything but a resource policy's explicit deny.
    Root,
    /// An IAM user, with its long-term access key or a session from GetSessionToken.
    User { name: String },
    /// A session of a role, from AssumeRole.
    AssumedRole { role_name: String, session_name: String },
}

/// A temporary credential's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// When the session was opened (milliseconds since the epoch).
    pub issued: i64,
    pub expires: i64,
    /// Whether it was opened with a valid MFA code (`aws:MultiFactorAuthPresent`).
    pub mfa_authenticated: bool,
    /// The unique id of the role (or user) when the session was opened: a role deleted and
    /// re-created under the same name does not honour the old role's sessions.
    pub entity_id: String,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::<account>:root`, `arn:aws:iam::<account>:user/<name>`,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    pub account_id: String,
    /// The user name for users and root ("root"); the session name for role sessions.
    pub user_name: String,
    /// The access key the request was signed with.
    pub access_key_id: String,
    pub kind: PrincipalKind,
    /// Set for temporary credentials.
    pub session: Option<SessionInfo>,
}

impl Principal {
    /// The account's root principal.
    pub fn root(account_id: &str, access_key_id: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:iam::{account_id}:root"),
            account_id: account_id.to_string(),
            user_name: "root".to_string(),
            access_key_id: access_key_id.to_string(),
            kind: PrincipalKind::Root,
            session: None,
        }
    }

    pub fn is_root(&self) -> bool {
        self.kind == PrincipalKind::Root
    }
}

/// How a request reached the service; recorded with every action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorSource {
    /// A client over one of the AWS protocols.
    Api,
    /// The `coffer` command line (an API request whose user agent is Coffer's CLI).
    Cli,
    /// The server's own background work (scheduled deletion, key rotation, retention).
    Scheduler,
    /// A secret rotation step.
    Rotation,
    /// An emergency rotation.
    Emergency,
}

impl ActorSource {
    /// The name the audit log records.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorSource::Api => "api",
            ActorSource::Cli => "cli",
            ActorSource::Scheduler => "scheduler",
            ActorSource::Rotation => "rotation",
            ActorSource::Emergency => "emergency",
        }
    }

    /// Whether the service acts on its own (not a caller's request): such actions are not authorized
    /// against a caller, and their audit events are service events.
    pub fn is_internal(self) -> bool {
        matches!(self, ActorSource::Scheduler | ActorSource::Rotation | ActorSource::Emergency)
    }
}

/// Everything the service knows about one request besides its input.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    /// The region from the request's credential scope; secrets live per region.
    pub region: String,
    pub request_id: String,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub source: ActorSource,
    /// Whether the request arrived over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// What the audit event of this request will say; filled in as the request runs.
    pub audit: crate::audit::AuditNotes,
}

impl RequestContext {
    /// The context of the service's own work (a scheduled deletion, a key rotation, a rotation step):
    /// not authorized against a caller, recorded as a service event of `event_source`/`event_name`.
    pub fn internal(
        account_id: &str,
        region: &str,
        source: ActorSource,
        event_source: &'static str,
        event_name: &'static str,
    ) -> RequestContext {
        RequestContext {
            principal: Principal::root(account_id, ""),
            region: region.to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
            source_ip: None,
            user_agent: None,
            source,
            secure_transport: true,
            audit: crate::audit::AuditNotes::new(event_source, event_name, false),
        }
    }
}
