//! Reading the audit log: CloudTrail's LookupEvents (one attribute, time bounds, newest first, 50 a
//! page), Coffer's search (the same plus `*`/`?` wildcards on the value), and export/tail pages in
//! chain order. All are authorized as `cloudtrail:LookupEvents`.

use base64::Engine as _;
use coffer_audit::{Event, LookupAttribute};
use coffer_store::{AuditQuery, AuditRecord, EpochMillis, ValueMatch};

use crate::context::RequestContext;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::iam::Access;
use crate::Service;

/// A lookup.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    /// At most one attribute, as CloudTrail allows.
    pub attribute: Option<(LookupAttribute, String)>,
    /// Whether `*` and `?` in the attribute's value are wildcards (Coffer's search; LookupEvents
    /// matches exactly).
    pub wildcards: bool,
    pub start_ms: Option<EpochMillis>,
    pub end_ms: Option<EpochMillis>,
    pub max_results: usize,
    pub next_token: Option<String>,
}

/// One event as lookups show it.
#[derive(Debug, Clone)]
pub struct AuditEventView {
    pub seq: u64,
    pub event_id: String,
    pub time_ms: EpochMillis,
    pub event_name: String,
    pub event_source: String,
    pub read_only: bool,
    pub access_key_id: Option<String>,
    pub username: Option<String>,
    /// (type, name) of each resource.
    pub resources: Vec<(String, String)>,
    /// The whole event, CloudTrail's JSON.
    pub cloudtrail_event: String,
}

#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub next_token: Option<String>,
}

/// Records in chain order, for export and tail.
#[derive(Debug, Clone)]
pub struct ExportPage {
    /// (seq, the event's JSON)
    pub records: Vec<(u64, String)>,
    /// The seq to ask for next (one past the last returned, or the same `from` when none).
    pub next_seq: u64,
    /// The newest seq in the log when the page was read.
    pub head_seq: u64,
}

/// A wildcard search reads at most this many records per page before it answers with a token.
const MAX_SCANNED_PER_PAGE: usize = 20_000;
const TOKEN_PREFIX: &str = "coffer-v1:audit:";

impl Service {
    pub async fn lookup_events(&self, ctx: &RequestContext, search: AuditSearch) -> ServiceResult<AuditPage> {
        self.authorize(ctx, &Access::new("cloudtrail:LookupEvents", "*")).await?;
        let limit = search.max_results.clamp(1, 50);
        let mut before_seq = match &search.next_token {
            Some(token) => Some(parse_token(token)?),
            None => None,
        };
        let (lookup, filter) = plan(&search);
        let mut events = Vec::with_capacity(limit);
        let mut scanned = 0usize;
        loop {
            let want = if filter.is_some() { 500 } else { limit - events.len() };
            let records = self
                .store
                .query_audit(AuditQuery {
                    lookup: lookup.clone(),
                    start_ms: search.start_ms,
                    end_ms: search.end_ms,
                    before_seq,
                    limit: want,
                })
                .await?;
            let exhausted = records.len() < want;
            for record in records {
                scanned += 1;
                before_seq = Some(record.seq);
                let event = Event::from_json(&record.body).map_err(|_| corrupt(record.seq))?;
                if filter.as_ref().is_some_and(|f| !f.matches(&record, &event)) {
                    continue;
                }
                events.push(view_of(record, event));
                if events.len() == limit {
                    break;
                }
            }
            if exhausted && events.len() < limit {
                return Ok(AuditPage { events, next_token: None });
            }
            if events.len() == limit || scanned >= MAX_SCANNED_PER_PAGE {
                // More may follow; an empty next page is possible (as with CloudTrail).
                let next_token = before_seq.map(token_for);
                return Ok(AuditPage { events, next_token });
            }
        }
    }

    /// Records with `seq >= from_seq` in chain order (export, tail).
    pub async fn read_audit_events(
        &self,
        ctx: &RequestContext,
        from_seq: u64,
        limit: usize,
    ) -> ServiceResult<ExportPage> {
        self.authorize(ctx, &Access::new("cloudtrail:LookupEvents", "*")).await?;
        let head_seq = self.store.audit_head().await?.seq;
        let records = self.store.audit_records_from(from_seq.max(1), limit.clamp(1, 1_000)).await?;
        let next_seq = records.last().map_or(from_seq, |r| r.seq + 1);
        let records = records.into_iter().map(|r| (r.seq, String::from_utf8_lossy(&r.body).into_owned())).collect();
        Ok(ExportPage { records, next_seq, head_seq })
    }

    /// The first seq at or after `time_ms` (export's `--since`), or one past the head.
    pub async fn audit_seq_at(&self, ctx: &RequestContext, time_ms: EpochMillis) -> ServiceResult<u64> {
        self.authorize(ctx, &Access::new("cloudtrail:LookupEvents", "*")).await?;
        match self.store.audit_seq_at(time_ms).await? {
            Some(seq) => Ok(seq),
            None => Ok(self.store.audit_head().await?.seq + 1),
        }
    }
}

fn corrupt(seq: u64) -> ServiceError {
    tracing::error!(seq, "an audit record does not parse");
    ServiceError::internal("an audit record could not be read")
}

fn view_of(record: AuditRecord, event: Event) -> AuditEventView {
    let resources = event
        .resources
        .into_iter()
        .map(|r| {
            let name = coffer_audit::friendly_resource_name(&r.arn).unwrap_or(r.arn);
            (r.resource_type, name)
        })
        .collect();
    AuditEventView {
        seq: record.seq,
        time_ms: record.time_ms,
        event_name: event.event_name,
        event_source: event.event_source,
        read_only: event.read_only,
        access_key_id: event.user_identity.access_key_id,
        username: event.user_identity.user_name,
        resources,
        cloudtrail_event: String::from_utf8_lossy(&record.body).into_owned(),
        event_id: record.event_id,
    }
}

/// What the store is asked for and what the service checks on each record it returns.
fn plan(search: &AuditSearch) -> (Option<(LookupAttribute, ValueMatch)>, Option<Filter>) {
    let Some((attribute, value)) = &search.attribute else { return (None, None) };
    let attribute = *attribute;
    let glob = search.wildcards && (value.contains('*') || value.contains('?'));
    let filter =
        Filter { attribute, value: value.clone(), glob: if glob { coffer_policy::Wildcard::new(value) } else { None } };
    if !attribute.is_indexed() {
        // A broad attribute: scan newest first and filter.
        return (None, Some(filter));
    }
    if glob {
        let prefix: String = value.chars().take_while(|c| *c != '*' && *c != '?').collect();
        if attribute == LookupAttribute::ResourceName && prefix.starts_with("arn:") {
            // Names are indexed, not ARNs: a pattern over ARNs is a scan.
            return (None, Some(filter));
        }
        return (Some((attribute, ValueMatch::Prefix(prefix))), Some(filter));
    }
    if attribute == LookupAttribute::ResourceName && value.starts_with("arn:") {
        // Indexed under its name; keep only the events that name this exact ARN.
        let indexed = coffer_audit::index_name(value);
        if indexed != *value {
            return (Some((attribute, ValueMatch::Exact(indexed))), Some(filter));
        }
    }
    (Some((attribute, ValueMatch::Exact(value.clone()))), None)
}

/// A check on one record's attribute values: exact, or a `*`/`?` pattern (compiled once).
struct Filter {
    attribute: LookupAttribute,
    value: String,
    glob: Option<coffer_policy::Wildcard>,
}

impl Filter {
    fn matches(&self, record: &AuditRecord, event: &Event) -> bool {
        let hit = |v: &str| match &self.glob {
            Some(pattern) => pattern.matches(v),
            None => v == self.value,
        };
        if self.attribute == LookupAttribute::EventId {
            return hit(&record.event_id);
        }
        event.lookup_entries().iter().any(|(a, v)| *a == self.attribute && hit(v))
    }
}

fn token_for(before_seq: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_PREFIX}{before_seq}"))
}

fn parse_token(token: &str) -> ServiceResult<u64> {
    let invalid = || ServiceError::new(ErrorKind::InvalidNextToken, "The NextToken is not valid.");
    let bytes = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    text.strip_prefix(TOKEN_PREFIX).and_then(|n| n.parse().ok()).ok_or_else(invalid)
}

impl Service {
    /// Records with `seq >= from_seq` in chain order, for the server's own file sink (no caller: the
    /// server itself reads).
    pub async fn audit_records_for_sink(&self, from_seq: u64, limit: usize) -> ServiceResult<Vec<(u64, Vec<u8>)>> {
        let records = self.store.audit_records_from(from_seq.max(1), limit).await?;
        Ok(records.into_iter().map(|r| (r.seq, r.body)).collect())
    }
}
