//! The AWS query protocol front-end (STS and IAM): a form-encoded POST body whose `Action` names the
//! operation, SigV4-signed for the service's signing name, answered in XML. Errors use the query
//! protocol's `<ErrorResponse>` document.
//!
//! This module is the protocol plumbing shared by both services: reading the form ([`Form`]: scalars,
//! lists `X.member.N`, lists of structures `X.member.N.Field`), writing answers ([`Xml`]: the
//! `<XResponse><XResult>…</XResult><ResponseMetadata>` wrapper, escaping, a buffer that is wiped
//! because some answers carry secret keys) and URL-encoding policy documents as IAM returns them.
//! The actions live in [`crate::iam`] and [`crate::sts`].

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use coffer_crypto::SecretBytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use zeroize::Zeroize;

use crate::error::ApiError;
use crate::{audit, auth, read_body, request_context, request_view, ApiState};

/// A query-protocol service Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryService {
    Sts,
    Iam,
}

impl QueryService {
    fn from_signing_name(name: &str) -> Option<Self> {
        match name {
            "sts" => Some(QueryService::Sts),
            "iam" => Some(QueryService::Iam),
            _ => None,
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            QueryService::Sts => crate::sts::NAMESPACE,
            QueryService::Iam => crate::iam::NAMESPACE,
        }
    }
}

/// Whether a request is for the query protocol: no `X-Amz-Target`, a form-encoded body.
pub fn is_query_request<B>(req: &Request<B>) -> bool {
    req.headers().get("x-amz-target").is_none()
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

// ---- the request form ----

/// A query-protocol request body: `Name=value` pairs, where lists are `Name.member.N` (N from 1) and
/// lists of structures `Name.member.N.Field`. The first occurrence of a name wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    fields: BTreeMap<String, String>,
}

/// The name a request member has in AWS's validation messages: `UserName` → `userName`.
fn field_name(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// AWS's message for a required member that is missing.
pub fn missing(field: &str) -> ApiError {
    ApiError::bad_request(
        "ValidationError",
        format!("1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"),
    )
}

fn invalid_value(key: &str, value: &str, constraint: &str) -> ApiError {
    ApiError::bad_request(
        "ValidationError",
        format!(
            "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: {constraint}",
            field_name(key)
        ),
    )
}

impl Form {
    /// Every field, by name.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Parses a form-encoded body (`+` is a space, `%XX` escapes; invalid UTF-8 becomes U+FFFD).
    pub fn parse(body: &[u8]) -> Form {
        let mut fields = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            fields.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Form { fields }
    }

    /// The value of a member, if present (possibly empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// The value of a member as an owned string.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }

    /// A required member: missing is AWS's "Value null at 'member'" validation error.
    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key).ok_or_else(|| missing(&field_name(key)))
    }

    /// Whether a member is present at all, as a scalar, an (empty) list or a list with members.
    pub fn has(&self, key: &str) -> bool {
        self.fields.contains_key(key) || self.entries(key).next().is_some()
    }

    /// A boolean member (`true` / `false`, as the SDKs send them).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(invalid_value(key, v, "Member must be a boolean")),
        }
    }

    /// An integer member.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| invalid_value(key, v, "Member must be an integer")),
        }
    }

    /// A member that must be one of `allowed` (AWS's enums), if present.
    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<&str>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if allowed.contains(&v) => Ok(Some(v)),
            Some(v) => {
                Err(invalid_value(key, v, &format!("Member must satisfy enum value set: [{}]", allowed.join(", "))))
            }
        }
    }

    /// `key.member.N[.rest]` entries: (N, rest without its leading dot, value).
    fn entries<'a>(&'a self, key: &str) -> impl Iterator<Item = (u32, &'a str, &'a str)> + 'a {
        let prefix = format!("{key}.member.");
        let skip = prefix.len();
        self.fields.range(prefix.clone()..).take_while(move |(k, _)| k.starts_with(&prefix)).filter_map(
            move |(k, v)| {
                let rest = k.get(skip..)?;
                let (index, tail) = match rest.split_once('.') {
                    Some((i, t)) => (i, t),
                    None => (rest, ""),
                };
                let index: u32 = index.parse().ok().filter(|&n| n >= 1)?;
                Some((index, tail, v.as_str()))
            },
        )
    }

    /// A list of strings, `key.member.1`, `key.member.2`, … in index order. An absent list and the
    /// empty list (`key=`, as the SDKs send it) are both empty.
    pub fn list(&self, key: &str) -> Vec<String> {
        let mut items: Vec<(u32, &str)> =
            self.entries(key).filter(|(_, tail, _)| tail.is_empty()).map(|(i, _, v)| (i, v)).collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, v)| v.to_string()).collect()
    }

    /// A required list: present, though it may be empty.
    pub fn required_list(&self, key: &str) -> Result<Vec<String>, ApiError> {
        if !self.has(key) {
            return Err(missing(&field_name(key)));
        }
        Ok(self.list(key))
    }

    /// A list of structures, each as its own form of fields (`key.member.N.Field` → `Field`), in
    /// index order.
    pub fn structs(&self, key: &str) -> Vec<Form> {
        let mut by_index: BTreeMap<u32, Form> = BTreeMap::new();
        for (i, tail, v) in self.entries(key) {
            if !tail.is_empty() {
                by_index.entry(i).or_default().fields.entry(tail.to_string()).or_insert_with(|| v.to_string());
            }
        }
        by_index.into_values().collect()
    }

    /// A list of `Key`/`Value` tags (`Tags.member.N.Key`, `Tags.member.N.Value`).
    pub fn tags(&self, key: &str) -> Result<Vec<coffer_store::Tag>, ApiError> {
        self.structs(key)
            .iter()
            .enumerate()
            .map(|(n, t)| {
                let at = |field: &str| format!("{}.{}.member.{field}", field_name(key), n + 1);
                let k = t.get("Key").ok_or_else(|| missing(&at("key")))?;
                let v = t.get("Value").ok_or_else(|| missing(&at("value")))?;
                Ok(coffer_store::Tag { key: k.to_string(), value: v.to_string() })
            })
            .collect()
    }
}

/// One page of a listing: `MaxItems` (1–1000) items from `Marker` on. Without `MaxItems` every item
/// is returned, untruncated. The marker is the offset of the next item.
pub struct Page<T> {
    pub items: Vec<T>,
    /// Set when there is more: the `Marker` of the next page.
    pub next_marker: Option<String>,
}

impl<T> Page<T> {
    pub fn of(form: &Form, mut items: Vec<T>) -> Result<Page<T>, ApiError> {
        let start = match form.get("Marker") {
            None => 0,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= items.len())
                .ok_or_else(|| ApiError::bad_request("InvalidInput", "Invalid Marker."))?,
        };
        let max = match form.int("MaxItems")? {
            None => usize::MAX,
            Some(n) if (1..=1000).contains(&n) => n as usize,
            Some(n) => {
                return Err(invalid_value(
                    "MaxItems",
                    &n.to_string(),
                    "Member must have value less than or equal to 1000 and greater than or equal to 1",
                ))
            }
        };
        let end = start.saturating_add(max).min(items.len());
        let next_marker = (end < items.len()).then(|| end.to_string());
        items.truncate(end);
        items.drain(..start);
        Ok(Page { items, next_marker })
    }

    /// Writes `IsTruncated` and, when truncated, `Marker`.
    pub fn write_truncation(&self, x: &mut Xml) {
        x.text("IsTruncated", if self.next_marker.is_some() { "true" } else { "false" });
        if let Some(m) = &self.next_marker {
            x.text("Marker", m);
        }
    }
}

// ---- writing XML ----

/// Where escaped text goes.
trait Sink {
    fn push_str(&mut self, s: &str);
}

impl Sink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s)
    }
}

/// What a character becomes in XML text: the five markup characters as entities, a carriage return as
/// a character reference (so the parser does not fold it), characters XML 1.0 cannot carry at all as
/// U+FFFD.
fn escaped(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&apos;"),
        '\r' => Some("&#13;"),
        '\t' | '\n' => None,
        c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => Some("\u{FFFD}"),
        _ => None,
    }
}

fn escape_into(out: &mut impl Sink, text: &str) {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if let Some(replacement) = escaped(c) {
            out.push_str(&text[start..i]);
            out.push_str(replacement);
            start = i + c.len_utf8();
        }
    }
    out.push_str(&text[start..]);
}

/// Escapes text for an XML element.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// A byte buffer that wipes its old storage when it grows and its contents when it is dropped: answers
/// that carry a secret access key or an MFA seed leave no copy behind in freed memory of this process's
/// making (the HTTP stack's own write buffers are beyond reach).
struct WipedBuf(Vec<u8>);

impl WipedBuf {
    fn push(&mut self, bytes: &[u8]) {
        if self.0.capacity() - self.0.len() < bytes.len() {
            let wanted = (self.0.len() + bytes.len()).max(self.0.capacity() * 2);
            let mut bigger = Vec::with_capacity(wanted);
            bigger.extend_from_slice(&self.0);
            std::mem::swap(&mut bigger, &mut self.0);
            bigger.zeroize();
        }
        self.0.extend_from_slice(bytes);
    }
}

impl Sink for WipedBuf {
    fn push_str(&mut self, s: &str) {
        self.push(s.as_bytes())
    }
}

impl AsRef<[u8]> for WipedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for WipedBuf {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An answer being written: `<{Action}Response xmlns="…"><{Action}Result>`, the caller's elements,
/// then (by [`Xml::finish`]) `</{Action}Result><ResponseMetadata><RequestId>…`.
pub struct Xml {
    buf: WipedBuf,
    action: String,
    result: bool,
}

impl Xml {
    /// An answer with a result element.
    pub fn result(action: &str, namespace: &str) -> Xml {
        Self::start(action, namespace, true)
    }

    /// An answer without output: only the response metadata.
    pub fn empty(action: &str, namespace: &str, request_id: &str) -> Bytes {
        Self::start(action, namespace, false).finish(request_id)
    }

    fn start(action: &str, namespace: &str, result: bool) -> Xml {
        let mut x = Xml { buf: WipedBuf(Vec::with_capacity(2048)), action: action.to_string(), result };
        x.raw("<");
        x.raw(action);
        x.raw("Response xmlns=\"");
        escape_into(&mut x.buf, namespace);
        x.raw("\">");
        if result {
            x.raw("<");
            x.raw(action);
            x.raw("Result>");
        }
        x
    }

    fn raw(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// `<tag>`.
    pub fn open(&mut self, tag: &str) {
        self.raw("<");
        self.raw(tag);
        self.raw(">");
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &str) {
        self.raw("</");
        self.raw(tag);
        self.raw(">");
    }

    /// `<tag>text</tag>`, the text escaped.
    pub fn text(&mut self, tag: &str, text: &str) {
        self.open(tag);
        escape_into(&mut self.buf, text);
        self.close(tag);
    }

    /// `<tag>text</tag>` when there is text.
    pub fn opt_text(&mut self, tag: &str, text: Option<&str>) {
        if let Some(t) = text {
            self.text(tag, t);
        }
    }

    /// `<tag>n</tag>`.
    pub fn int(&mut self, tag: &str, n: i64) {
        self.text(tag, &n.to_string());
    }

    /// `<tag>true|false</tag>`.
    pub fn bool(&mut self, tag: &str, b: bool) {
        self.text(tag, if b { "true" } else { "false" });
    }

    /// `<tag>2026-11-23T10:00:00Z</tag>` from milliseconds since the epoch.
    pub fn time(&mut self, tag: &str, millis: i64) {
        self.text(tag, &coffer_service::iam::model::iso8601(millis));
    }

    /// A policy document, URL-encoded as IAM returns documents (the SDKs decode them).
    pub fn policy(&mut self, tag: &str, document: &str) {
        self.open(tag);
        for piece in utf8_percent_encode(document, POLICY_ENCODE_SET) {
            self.raw(piece);
        }
        self.close(tag);
    }

    /// `<tag>secret</tag>`: secret text written straight into the wiped buffer, escaped.
    pub fn secret(&mut self, tag: &str, secret: &SecretBytes) -> Result<(), ApiError> {
        let text = secret.expose_str().map_err(|_| internal("a secret is not valid UTF-8"))?;
        self.text(tag, text);
        Ok(())
    }

    /// `<tag>base64</tag>` of secret bytes (a blob member), encoded straight into the wiped buffer.
    pub fn secret_blob(&mut self, tag: &str, secret: &SecretBytes) {
        use base64::Engine as _;
        self.open(tag);
        let mut chunk = [0u8; 64];
        // 48 input bytes are 64 output characters; base64 has nothing to escape.
        for part in secret.expose().chunks(48) {
            let n = base64::engine::general_purpose::STANDARD.encode_slice(part, &mut chunk).unwrap_or(0);
            self.buf.push(&chunk[..n]);
        }
        chunk.zeroize();
        self.close(tag);
    }

    /// Closes the result and adds the request id: the response body.
    pub fn finish(mut self, request_id: &str) -> Bytes {
        let action = std::mem::take(&mut self.action);
        if self.result {
            self.close(&format!("{action}Result"));
        }
        self.open("ResponseMetadata");
        self.text("RequestId", request_id);
        self.close("ResponseMetadata");
        self.close(&format!("{action}Response"));
        Bytes::from_owner(self.buf)
    }
}

/// RFC 3986: everything but the unreserved characters is percent-encoded (UTF-8 bytes), as IAM encodes
/// the policy documents in its answers.
const POLICY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A policy document as IAM's answers carry it.
pub fn encode_policy(document: &str) -> String {
    utf8_percent_encode(document, POLICY_ENCODE_SET).to_string()
}

pub fn internal(what: &str) -> ApiError {
    tracing::error!(what, "query protocol answer failed");
    ApiError::new(500, "InternalFailure", "An internal error occurred.")
}

// ---- serving ----

fn xml_response(status: u16, body: Bytes, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

fn error_document(e: &ApiError, namespace: &str, request_id: &str) -> String {
    let kind = if e.status >= 500 { "Receiver" } else { "Sender" };
    format!(
        "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        xml_escape(e.code),
        xml_escape(&e.message),
        xml_escape(request_id)
    )
}

/// Serves one query-protocol request.
pub async fn handle<B>(state: &ApiState, remote: SocketAddr, req: Request<B>, request_id: &str) -> Response<Full<Bytes>>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    // Until the signature names the service, errors are answered in STS's namespace.
    let mut namespace = QueryService::Sts.namespace();
    match serve(state, remote, req, request_id, &mut namespace).await {
        Ok(body) => xml_response(200, body, request_id),
        Err(e) => {
            let e = query_protocol_names(e);
            if e.status >= 500 {
                tracing::warn!(%request_id, code = e.code, "request failed");
            } else {
                tracing::debug!(%request_id, code = e.code, "request rejected");
            }
            xml_response(e.status, Bytes::from(error_document(&e, namespace, request_id)), request_id)
        }
    }
}

/// The query-protocol services name the authentication failures differently from the JSON ones, and
/// answer them with 403.
fn query_protocol_names(mut e: ApiError) -> ApiError {
    let renamed = match e.code {
        "InvalidSignatureException" => Some("SignatureDoesNotMatch"),
        "UnrecognizedClientException" => Some("InvalidClientTokenId"),
        "MissingAuthenticationTokenException" => Some("MissingAuthenticationToken"),
        "ExpiredTokenException" => Some("ExpiredToken"),
        _ => None,
    };
    if let Some(code) = renamed {
        e.code = code;
        e.status = 403;
    }
    e
}

async fn serve<B>(
    state: &ApiState,
    remote: SocketAddr,
    req: Request<B>,
    request_id: &str,
    namespace: &mut &'static str,
) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let (parts, body) = req.into_parts();
    let body = read_body(body, state.max_body_bytes).await?;
    let view = request_view(&parts, &body);
    let parsed = coffer_sigv4::parse(&view)?;
    let service = QueryService::from_signing_name(&parsed.service).ok_or_else(|| {
        ApiError::bad_request("InvalidAction", format!("The service {} is not served here.", parsed.service))
    })?;
    *namespace = service.namespace();
    let form = Form::parse(&body);
    let action = form.get("Action").unwrap_or_default();
    let source = crate::event_source(&parsed.service);
    let name = crate::event_name(action);
    let (principal, region) =
        match auth::authenticate(&state.service, &state.signing_keys, &view, &parsed.service).await {
            Ok(caller) => caller,
            Err(e) => {
                let e = query_protocol_names(e);
                let ua = crate::user_agent(&parts);
                audit::record_unauthenticated(&state.service, &view, source, &name, request_id, remote, ua, &e).await;
                return Err(e);
            }
        };
    let notes = coffer_service::audit::AuditNotes::new(source, name.clone(), audit::is_read_only(&name));
    notes.set_request_parameters(audit::form_request_parameters(form.fields()));
    let ctx = request_context(principal, region, request_id, remote, &parts, state.secure_transport, notes);
    let answer = if action.is_empty() {
        Err(ApiError::bad_request("MissingAction", "The request must contain the parameter Action."))
    } else {
        match service {
            QueryService::Sts => crate::sts::dispatch(&state.service, &ctx, action, &form).await,
            QueryService::Iam => crate::iam::dispatch(&state.service, &ctx, action, &form).await,
        }
        .and_then(|answer| answer.ok_or_else(|| invalid_action(action, &form)))
    };
    let answer = answer.map_err(query_protocol_names);
    // Fail closed: an answer whose event cannot be taken is not given.
    state.service.record_request(&ctx, &audit::outcome(&answer)).await.map_err(crate::error::audit_error)?;
    answer
}

/// The answer to an action the service does not have.
fn invalid_action(action: &str, form: &Form) -> ApiError {
    ApiError::bad_request(
        "InvalidAction",
        format!(
            "Could not find operation {} for version {}",
            action,
            form.get("Version").unwrap_or("NO_VERSION_SPECIFIED")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(x: Xml) -> String {
        String::from_utf8(x.finish("rid").to_vec()).expect("utf-8")
    }

    #[test]
    fn escapes_xml_special_characters() {
        assert_eq!(xml_escape(r#"a<b>&"c"'"#), "a&lt;b&gt;&amp;&quot;c&quot;&apos;");
        assert_eq!(xml_escape("arn:aws:iam::000000000000:root"), "arn:aws:iam::000000000000:root");
        assert_eq!(xml_escape("line\r\nnext\ttab"), "line&#13;\nnext\ttab");
        assert_eq!(xml_escape("nul\u{0}bell\u{7}ü€"), "nul\u{FFFD}bell\u{FFFD}ü€");
    }

    #[test]
    fn error_documents_follow_the_query_protocol() {
        let e = ApiError::bad_request("InvalidAction", "Could not find operation X <for> version Y");
        let doc = error_document(&e, "https://sts.amazonaws.com/doc/2011-06-15/", "rid");
        assert_eq!(
            doc,
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>Could not find operation X &lt;for&gt; version Y</Message></Error><RequestId>rid</RequestId></ErrorResponse>"
        );
    }

    #[test]
    fn authentication_failures_take_the_query_names_and_403() {
        let e = query_protocol_names(ApiError::unrecognized_client());
        assert_eq!((e.status, e.code), (403, "InvalidClientTokenId"));
        let e = query_protocol_names(ApiError::bad_request("ValidationError", "x"));
        assert_eq!((e.status, e.code), (400, "ValidationError"));
    }

    #[test]
    fn forms_read_scalars_and_first_occurrences() {
        let f = Form::parse(b"Action=CreateUser&Version=2010-05-08&UserName=al%2Bice&Path=%2Fteam+a%2F&UserName=bob");
        assert_eq!(f.get("Action"), Some("CreateUser"));
        assert_eq!(f.get("UserName"), Some("al+ice"));
        assert_eq!(f.get("Path"), Some("/team a/"));
        assert_eq!(f.required("UserName").ok(), Some("al+ice"));
        let e = f.required("GroupName").expect_err("missing");
        assert_eq!(e.code, "ValidationError");
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'groupName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn forms_read_lists_in_index_order() {
        let f = Form::parse(
            b"TagKeys.member.2=b&TagKeys.member.10=j&TagKeys.member.1=a&TagKeys.member.x=bad&TagKeys.member.0=zero&Other.member.1=o",
        );
        assert_eq!(f.list("TagKeys"), vec!["a", "b", "j"]);
        assert_eq!(f.list("Absent"), Vec::<String>::new());
        assert!(f.required_list("Absent").is_err());
        // The SDKs send an empty list as the bare name.
        let empty = Form::parse(b"TagKeys=");
        assert_eq!(empty.required_list("TagKeys").expect("present"), Vec::<String>::new());
        // A name that merely starts like the list is not part of it.
        let f = Form::parse(b"Tags.member.1.Key=a&TagsX.member.1=b&Tags.member.1.Value=1");
        assert_eq!(f.list("Tags"), Vec::<String>::new());
        assert_eq!(f.structs("Tags").len(), 1);
    }

    #[test]
    fn forms_read_nested_structures_and_tags() {
        let f = Form::parse(
            b"Tags.member.1.Key=team&Tags.member.1.Value=payments&Tags.member.2.Key=env&Tags.member.2.Value=&\
              ContextEntries.member.1.ContextKeyName=aws%3ASourceIp&ContextEntries.member.1.ContextKeyType=ip&\
              ContextEntries.member.1.ContextKeyValues.member.2=10.0.0.2&ContextEntries.member.1.ContextKeyValues.member.1=10.0.0.1",
        );
        let tags = f.tags("Tags").expect("tags");
        assert_eq!(tags.len(), 2);
        assert_eq!((tags[0].key.as_str(), tags[0].value.as_str()), ("team", "payments"));
        assert_eq!((tags[1].key.as_str(), tags[1].value.as_str()), ("env", ""));
        let entries = f.structs("ContextEntries");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].get("ContextKeyName"), Some("aws:SourceIp"));
        assert_eq!(entries[0].list("ContextKeyValues"), vec!["10.0.0.1", "10.0.0.2"]);

        let e = Form::parse(b"Tags.member.1.Key=a&Tags.member.1.Value=x&Tags.member.2.Value=b")
            .tags("Tags")
            .expect_err("no key");
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'tags.2.member.key' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn forms_check_booleans_and_integers() {
        let f = Form::parse(b"SetAsDefault=true&OnlyAttached=FALSE&MaxItems=5&Bad=yes&N=x");
        assert_eq!(f.bool("SetAsDefault").expect("bool"), Some(true));
        assert_eq!(f.bool("OnlyAttached").expect("bool"), Some(false));
        assert_eq!(f.bool("Absent").expect("bool"), None);
        assert_eq!(f.bool("Bad").expect_err("bad").code, "ValidationError");
        assert_eq!(f.int("MaxItems").expect("int"), Some(5));
        assert_eq!(f.int("N").expect_err("bad").code, "ValidationError");
    }

    #[test]
    fn malformed_forms_do_not_panic() {
        for body in [
            &b"%"[..],
            b"&&&==&",
            b"a.member.=1",
            b"a.member.99999999999999999999=1",
            b"\xff\xfe=\xff",
            b".member.1.=x",
        ] {
            let f = Form::parse(body);
            let _ = f.list("a");
            let _ = f.structs("a");
            let _ = f.tags("");
            let _ = f.structs("");
        }
    }

    #[test]
    fn pages_follow_max_items_and_marker() {
        let all: Vec<u32> = (0..5).collect();
        let p = Page::of(&Form::default(), all.clone()).expect("page");
        assert_eq!((p.items.len(), p.next_marker.as_deref()), (5, None));
        let p = Page::of(&Form::parse(b"MaxItems=2"), all.clone()).expect("page");
        assert_eq!((p.items, p.next_marker.as_deref()), (vec![0, 1], Some("2")));
        let p = Page::of(&Form::parse(b"MaxItems=2&Marker=4"), all.clone()).expect("page");
        assert_eq!((p.items, p.next_marker), (vec![4], None));
        assert!(Page::of(&Form::parse(b"Marker=9"), all.clone()).is_err());
        assert!(Page::of(&Form::parse(b"MaxItems=0"), all).is_err());
    }

    #[test]
    fn policy_documents_are_url_encoded_as_rfc_3986() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::b/a b~ü"}]}"#;
        let encoded = encode_policy(doc);
        assert_eq!(
            encoded,
            "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3AGet%2A%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%2Fa%20b~%C3%BC%22%7D%5D%7D"
        );
        let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().expect("utf-8");
        assert_eq!(decoded, doc);
        let mut x = Xml::result("GetUserPolicy", crate::iam::NAMESPACE);
        x.policy("PolicyDocument", "{\"a\":\"<&>\"}");
        assert!(body(x).contains("<PolicyDocument>%7B%22a%22%3A%22%3C%26%3E%22%7D</PolicyDocument>"));
    }

    #[test]
    fn answers_have_the_result_and_metadata_wrappers() {
        let mut x = Xml::result("GetUser", "https://iam.amazonaws.com/doc/2010-05-08/");
        x.open("User");
        x.text("UserName", "a&b");
        x.close("User");
        assert_eq!(
            body(x),
            "<GetUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetUserResult><User><UserName>a&amp;b</UserName></User></GetUserResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetUserResponse>"
        );
        let empty = Xml::empty("DeleteUser", "https://iam.amazonaws.com/doc/2010-05-08/", "rid");
        assert_eq!(
            &empty[..],
            b"<DeleteUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DeleteUserResponse>"
        );
    }

    #[test]
    fn secrets_are_written_escaped_and_blobs_base64() {
        let mut x = Xml::result("CreateAccessKey", "ns");
        x.secret("SecretAccessKey", &SecretBytes::from("ab+/<c")).expect("utf-8");
        let seed: Vec<u8> = (0..=255u8).collect();
        x.secret_blob("Base32StringSeed", &SecretBytes::new(seed.clone()));
        let text = body(x);
        assert!(text.contains("<SecretAccessKey>ab+/&lt;c</SecretAccessKey>"));
        use base64::Engine as _;
        let expected = base64::engine::general_purpose::STANDARD.encode(&seed);
        assert!(text.contains(&format!("<Base32StringSeed>{expected}</Base32StringSeed>")));
    }

    #[test]
    fn the_wiped_buffer_grows_keeping_its_contents() {
        let mut b = WipedBuf(Vec::with_capacity(4));
        for i in 0..1000u32 {
            b.push(i.to_string().as_bytes());
        }
        let expected: String = (0..1000u32).map(|i| i.to_string()).collect();
        assert_eq!(b.as_ref(), expected.as_bytes());
    }
}
