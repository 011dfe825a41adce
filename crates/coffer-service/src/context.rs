//! Who is calling and from where. Every service call takes a [`RequestContext`]; there is no
//! unauthenticated path into the service.

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::<account>:root`, `arn:aws:iam::<account>:user/<name>`, ...
    pub arn: String,
    pub account_id: String,
    pub user_name: String,
    /// The access key the request was signed with.
    pub access_key_id: String,
}

/// How a request reached the service; recorded with every action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorSource {
    /// A client over one of the AWS protocols.
    Api,
    /// The server's own background work (scheduled deletion).
    Scheduler,
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
}
