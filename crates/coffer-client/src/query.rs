//! The AWS query protocol (IAM, STS): a form-encoded `POST /` whose `Action` and `Version` name the
//! operation, answered with XML — `<XResponse><XResult>…</XResult><ResponseMetadata>…` on success,
//! `<ErrorResponse><Error><Code>…<Message>…</Error><RequestId>…` on failure.
//!
//! Requests: [`Params`] builds the flattened parameter list (`Users.member.1`, `Tags.member.2.Key`),
//! [`encode_form`] the body. Responses: [`XmlDoc`] is an owned, namespace-free copy of the answer whose
//! text is zeroized on drop (answers carry secret access keys, session tokens and MFA seeds), with
//! helpers for list members, maps, URL-encoded policy documents and timestamps.

use std::collections::BTreeMap;
use std::fmt;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::{Zeroize, Zeroizing};

use crate::ClientError;

/// The query protocol's request content type.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// RFC 3986 unreserved characters pass through; everything else is percent-encoded (so a space is `%20`
/// and a `+` is `%2B`, which every form decoder reads back unchanged).
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The form body for `params`, in order: `k1=v1&k2=v2`, keys and values percent-encoded.
pub fn encode_form(params: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in params {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k, FORM_VALUE));
        out.push('=');
        out.extend(utf8_percent_encode(v, FORM_VALUE));
    }
    out
}

/// The parameters of one query-protocol request, flattened the way the protocol wants them. `Action`
/// and `Version` are added by [`Client::query`](crate::Client::query).
#[derive(Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parameters may carry policy documents or MFA codes: list the names only.
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

impl Params {
    pub fn new() -> Self {
        Params::default()
    }

    /// `name=value`.
    pub fn add(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.push((name.into(), value.into()));
        self
    }

    /// `name=value` when there is a value.
    pub fn opt(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.add(name, v),
            None => self,
        }
    }

    /// A list of strings: `name.member.1=a&name.member.2=b`. Nothing for an empty list.
    pub fn list<S: AsRef<str>>(mut self, name: &str, items: &[S]) -> Self {
        for (i, item) in items.iter().enumerate() {
            self.0.push((format!("{name}.member.{}", i + 1), item.as_ref().to_string()));
        }
        self
    }

    /// A list of structures: `name.member.N.Field=value` for each `(Field, value)` of each item.
    pub fn structs(mut self, name: &str, items: &[Vec<(String, String)>]) -> Self {
        for (i, fields) in items.iter().enumerate() {
            for (field, value) in fields {
                self.0.push((format!("{name}.member.{}.{field}", i + 1), value.clone()));
            }
        }
        self
    }

    /// A tag list: `name.member.N.Key` / `name.member.N.Value`.
    pub fn tags(self, name: &str, tags: &[(String, String)]) -> Self {
        let items: Vec<Vec<(String, String)>> =
            tags.iter().map(|(k, v)| vec![("Key".to_string(), k.clone()), ("Value".to_string(), v.clone())]).collect();
        self.structs(name, &items)
    }

    pub fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn into_vec(mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        for (_, v) in &mut self.0 {
            v.zeroize();
        }
    }
}

/// No IAM or STS answer nests nearly this deep; a deeper one is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

/// One XML element: its local name (namespaces dropped), its text (the concatenated text nodes, not
/// trimmed) and its child elements in order. The text is zeroized on drop.
#[derive(Clone, Default)]
pub struct XmlNode {
    name: String,
    text: String,
    children: Vec<XmlNode>,
}

impl fmt::Debug for XmlNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text may be a secret: show the structure only.
        f.debug_struct("XmlNode").field("name", &self.name).field("children", &self.children).finish_non_exhaustive()
    }
}

impl Drop for XmlNode {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

impl XmlNode {
    fn from_roxml(node: roxmltree::Node<'_, '_>, depth: usize) -> Result<XmlNode, ClientError> {
        if depth > MAX_DEPTH {
            return Err(ClientError::Decode(format!("the XML answer nests deeper than {MAX_DEPTH} elements")));
        }
        let mut out = XmlNode { name: node.tag_name().name().to_string(), text: String::new(), children: Vec::new() };
        for child in node.children() {
            if child.is_element() {
                out.children.push(XmlNode::from_roxml(child, depth + 1)?);
            } else if child.is_text() {
                out.text.push_str(child.text().unwrap_or_default());
            }
        }
        Ok(out)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The element's own text, trimmed of surrounding whitespace.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    pub fn children(&self) -> &[XmlNode] {
        &self.children
    }

    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<&XmlNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Follows child names from here: `path(&["Credentials", "AccessKeyId"])`.
    pub fn path(&self, names: &[&str]) -> Option<&XmlNode> {
        names.iter().try_fold(self, |node, name| node.child(name))
    }

    /// The text of child `name`, if the child is there (an empty element gives `Some("")`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.child(name).map(XmlNode::text)
    }

    /// The text of child `name`, owned; `None` when absent.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    /// The text of a child the protocol promises.
    pub fn required(&self, name: &str) -> Result<&str, ClientError> {
        self.get(name).ok_or_else(|| ClientError::Decode(format!("<{}> has no <{name}>", self.name)))
    }

    /// A child the protocol promises.
    pub fn required_child(&self, name: &str) -> Result<&XmlNode, ClientError> {
        self.child(name).ok_or_else(|| ClientError::Decode(format!("<{}> has no <{name}>", self.name)))
    }

    /// The `<member>` elements of list child `name` (`<Users><member>…</member>…</Users>`); empty when
    /// the list is empty or absent.
    pub fn members(&self, name: &str) -> Vec<&XmlNode> {
        self.child(name).map(|list| list.children.iter().filter(|c| c.name == "member").collect()).unwrap_or_default()
    }

    /// The texts of a list of strings.
    pub fn member_texts(&self, name: &str) -> Vec<String> {
        self.members(name).into_iter().map(|m| m.text().to_string()).collect()
    }

    /// A map child: `<name><entry><key>k</key><value>v</value></entry>…</name>`.
    pub fn map(&self, name: &str) -> BTreeMap<String, String> {
        let Some(map) = self.child(name) else { return BTreeMap::new() };
        map.children
            .iter()
            .filter(|e| e.name == "entry")
            .filter_map(|e| Some((e.get("key")?.to_string(), e.get("value").unwrap_or_default().to_string())))
            .collect()
    }

    /// A boolean child (`true`/`false`); `None` when absent or not a boolean.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// An integer child; `None` when absent or not a number.
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.parse().ok()
    }

    /// A timestamp child (ISO 8601, as IAM and STS answer); `Err` when present but unreadable.
    pub fn timestamp(&self, name: &str) -> Result<Option<OffsetDateTime>, ClientError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => parse_timestamp(text)
                .map(Some)
                .ok_or_else(|| ClientError::Decode(format!("<{name}> is not a timestamp: {text:?}"))),
        }
    }

    /// A URL-encoded policy document child, decoded (IAM answers `%7B%22Version%22…`).
    pub fn document(&self, name: &str) -> Option<String> {
        self.get(name).map(decode_document)
    }

    /// Whether a list answer says more pages follow, and the marker to ask for the next one.
    pub fn next_marker(&self) -> Option<String> {
        if self.bool("IsTruncated") == Some(true) {
            self.string("Marker").filter(|m| !m.is_empty())
        } else {
            None
        }
    }
}

/// A parsed query-protocol answer: the root element (`<XResponse>`), owned.
#[derive(Debug, Clone)]
pub struct XmlDoc {
    root: XmlNode,
}

impl XmlDoc {
    /// Parses a document. DTDs are refused (roxmltree's default), so no entity expansion.
    pub fn parse(text: &str) -> Result<XmlDoc, ClientError> {
        let doc = roxmltree::Document::parse(text).map_err(|e| ClientError::Decode(format!("invalid XML: {e}")))?;
        Ok(XmlDoc { root: XmlNode::from_roxml(doc.root_element(), 0)? })
    }

    pub fn root(&self) -> &XmlNode {
        &self.root
    }

    /// The `<XResult>` element of `<XResponse>`: the operation's output. Operations without output
    /// answer with no result element; this gives an empty node for them.
    pub fn result(&self) -> &XmlNode {
        static EMPTY: XmlNode = XmlNode { name: String::new(), text: String::new(), children: Vec::new() };
        let wanted = self.root.name.strip_suffix("Response").map(|op| format!("{op}Result"));
        self.root
            .children
            .iter()
            .find(|c| Some(&c.name) == wanted.as_ref())
            .or_else(|| self.root.children.iter().find(|c| c.name.ends_with("Result")))
            .unwrap_or(&EMPTY)
    }

    /// `<ResponseMetadata><RequestId>`.
    pub fn request_id(&self) -> Option<&str> {
        self.root.path(&["ResponseMetadata", "RequestId"]).map(XmlNode::text)
    }

    /// If this is an error document (`<ErrorResponse>`, or EC2's `<Response><Errors>`), its
    /// `(code, message, request id)`.
    pub fn error(&self) -> Option<(String, String, Option<String>)> {
        let error = match self.root.name.as_str() {
            "ErrorResponse" => self.root.child("Error")?,
            "Response" => self.root.path(&["Errors", "Error"])?,
            _ => return None,
        };
        let code = error.get("Code").unwrap_or_default().to_string();
        let message = error.get("Message").unwrap_or_default().to_string();
        let request_id = self.root.string("RequestId").or_else(|| self.root.string("RequestID"));
        Some((code, message, request_id))
    }
}

/// Turns a query-protocol answer into its document, or its `<ErrorResponse>` into
/// [`ClientError::Api`]. `header_request_id` is the `x-amzn-requestid` header, if any.
pub fn parse_response(status: u16, body: &[u8], header_request_id: Option<String>) -> Result<XmlDoc, ClientError> {
    let parsed = std::str::from_utf8(body)
        .map_err(|_| ClientError::Decode("the answer is not UTF-8".into()))
        .and_then(XmlDoc::parse);
    if status >= 300 {
        let doc = parsed.ok();
        if let Some((code, message, request_id)) = doc.as_ref().and_then(XmlDoc::error) {
            return Err(ClientError::Api {
                status,
                code: if code.is_empty() { format!("HTTP{status}") } else { code },
                message,
                request_id: request_id.or(header_request_id),
            });
        }
        return Err(ClientError::Api {
            status,
            code: format!("HTTP{status}"),
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
            request_id: header_request_id,
        });
    }
    let doc = parsed?;
    if let Some((code, message, request_id)) = doc.error() {
        // An error document with a success status is still an error.
        return Err(ClientError::Api { status, code, message, request_id: request_id.or(header_request_id) });
    }
    Ok(doc)
}

/// Decodes a URL-encoded policy document (RFC 3986: `+` stays `+`), as the AWS CLI does for every
/// policy document IAM returns. Invalid UTF-8 after decoding is replaced, never fatal.
pub fn decode_document(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Parses an ISO 8601 / RFC 3339 timestamp (`2026-11-23T10:00:00Z`, with or without fractional
/// seconds or an offset); also accepts epoch seconds, which some services send.
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    // RFC 3339 requires the offset; ISO 8601 allows it to be missing (taken as UTC).
    if !text.ends_with('Z') && !text.contains('+') && text.contains('T') {
        if let Ok(t) = OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339) {
            return Some(t);
        }
    }
    let secs: f64 = text.parse().ok().filter(|s: &f64| s.is_finite())?;
    OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok()
}

/// Formats a timestamp as RFC 3339 (`2026-11-23T10:00:00Z`).
pub fn format_timestamp(t: &OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `serialize_with` for optional timestamps: RFC 3339 text.
pub fn serialize_timestamp<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_timestamp(t)),
        None => s.serialize_none(),
    }
}

/// Text that is a credential (a secret access key, a session token, an MFA seed): zeroized on drop,
/// redacted in `Debug`, serialized as its text (so `--json` output can carry it on purpose).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    pub fn new(text: String) -> Self {
        SecretText(Zeroizing::new(text))
    }

    /// The secret. Every read goes through here.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretText::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &Params) -> Vec<(&str, &str)> {
        p.as_slice().iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn form_encoding_escapes_everything_but_unreserved() {
        let body = encode_form(&[
            ("Action".into(), "CreatePolicy".into()),
            ("PolicyDocument".into(), r#"{"A": "b+c/d"}"#.into()),
            ("Path".into(), "/team a/".into()),
            ("Tilde".into(), "a-b_c.d~e".into()),
            ("Utf8".into(), "é".into()),
        ]);
        assert_eq!(
            body,
            "Action=CreatePolicy&PolicyDocument=%7B%22A%22%3A%20%22b%2Bc%2Fd%22%7D&Path=%2Fteam%20a%2F&Tilde=a-b_c.d~e&Utf8=%C3%A9"
        );
        // What a server's form decoder reads back is what was sent.
        let back: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(back[1].1, r#"{"A": "b+c/d"}"#);
        assert_eq!(back[2].1, "/team a/");
        assert_eq!(back[4].1, "é");
        assert_eq!(encode_form(&[]), "");
    }

    #[test]
    fn params_flatten_lists_structures_and_tags() {
        let p = Params::new()
            .add("UserName", "alice")
            .opt("Path", None::<String>)
            .opt("Marker", Some("m1"))
            .list("ActionNames", &["s3:GetObject", "kms:Decrypt"])
            .list::<String>("ResourceArns", &[])
            .tags("Tags", &[("team".into(), "backend".into()), ("env".into(), "prod".into())])
            .structs(
                "ContextEntries",
                &[vec![
                    ("ContextKeyName".into(), "aws:SourceIp".into()),
                    ("ContextKeyValues.member.1".into(), "10.0.0.1".into()),
                    ("ContextKeyType".into(), "ip".into()),
                ]],
            );
        assert_eq!(
            pairs(&p),
            vec![
                ("UserName", "alice"),
                ("Marker", "m1"),
                ("ActionNames.member.1", "s3:GetObject"),
                ("ActionNames.member.2", "kms:Decrypt"),
                ("Tags.member.1.Key", "team"),
                ("Tags.member.1.Value", "backend"),
                ("Tags.member.2.Key", "env"),
                ("Tags.member.2.Value", "prod"),
                ("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
                ("ContextEntries.member.1.ContextKeyValues.member.1", "10.0.0.1"),
                ("ContextEntries.member.1.ContextKeyType", "ip"),
            ]
        );
        // Debug never shows values.
        let shown = format!("{p:?}");
        assert!(shown.contains("UserName") && !shown.contains("alice"));
    }

    #[test]
    fn nodes_give_members_maps_and_scalars() {
        let doc = XmlDoc::parse(
            r#"<ListThingsResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ListThingsResult>
    <IsTruncated>true</IsTruncated>
    <Marker>page2</Marker>
    <Names><member>a</member><member> b </member></Names>
    <Empty/>
    <Count>3</Count>
    <Details><entry><key>IAM Policy</key><value>allowed</value></entry><entry><key>k2</key><value/></entry></Details>
    <When>2026-11-23T10:00:00Z</When>
    <Bad>yesterday</Bad>
    <Text>a &amp; b &lt;c&gt;</Text>
  </ListThingsResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
</ListThingsResponse>"#,
        )
        .unwrap();
        assert_eq!(doc.request_id(), Some("7a62c49f-347e-4fc4-9331-6e8eEXAMPLE"));
        let r = doc.result();
        assert_eq!(r.name(), "ListThingsResult");
        assert_eq!(r.member_texts("Names"), ["a", "b"]);
        assert!(r.members("Empty").is_empty());
        assert!(r.members("Absent").is_empty());
        assert_eq!(r.i64("Count"), Some(3));
        assert_eq!(r.bool("IsTruncated"), Some(true));
        assert_eq!(r.next_marker().as_deref(), Some("page2"));
        let details = r.map("Details");
        assert_eq!(details.get("IAM Policy").map(String::as_str), Some("allowed"));
        assert_eq!(details.get("k2").map(String::as_str), Some(""));
        assert_eq!(r.timestamp("When").unwrap().unwrap().unix_timestamp(), 1_795_428_000);
        assert!(r.timestamp("Bad").is_err());
        assert_eq!(r.timestamp("Absent").unwrap(), None);
        assert_eq!(r.get("Text"), Some("a & b <c>"));
        assert!(r.required("Nope").is_err());
        assert_eq!(r.path(&["Names", "member"]).map(XmlNode::text), Some("a"));
        assert!(doc.error().is_none());
    }

    #[test]
    fn output_less_operations_have_an_empty_result() {
        let doc = XmlDoc::parse(
            "<DeleteUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DeleteUserResponse>",
        )
        .unwrap();
        assert!(doc.result().children().is_empty());
        assert_eq!(doc.request_id(), Some("r1"));
    }

    #[test]
    fn truncated_lists_without_a_marker_end() {
        let doc = XmlDoc::parse(
            "<XResponse><XResult><IsTruncated>false</IsTruncated><Marker>m</Marker></XResult></XResponse>",
        )
        .unwrap();
        assert_eq!(doc.result().next_marker(), None);
    }

    #[test]
    fn error_documents_become_api_errors() {
        let body = br#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error>
    <Type>Sender</Type>
    <Code>NoSuchEntity</Code>
    <Message>The user with name bob cannot be found.</Message>
  </Error>
  <RequestId>req-1</RequestId>
</ErrorResponse>"#;
        match parse_response(404, body, Some("header-id".into())) {
            Err(ClientError::Api { status, code, message, request_id }) => {
                assert_eq!(status, 404);
                assert_eq!(code, "NoSuchEntity");
                assert_eq!(message, "The user with name bob cannot be found.");
                assert_eq!(request_id.as_deref(), Some("req-1"));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        // The EC2 shape, and an error document under a 200.
        let ec2 = b"<Response><Errors><Error><Code>Throttling</Code><Message>slow down</Message></Error></Errors><RequestID>r2</RequestID></Response>";
        match parse_response(200, ec2, None) {
            Err(ClientError::Api { code, request_id, .. }) => {
                assert_eq!(code, "Throttling");
                assert_eq!(request_id.as_deref(), Some("r2"));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        // Not XML at all: the status and the start of the body.
        match parse_response(502, b"Bad Gateway", Some("h".into())) {
            Err(ClientError::Api { code, message, request_id, .. }) => {
                assert_eq!(code, "HTTP502");
                assert_eq!(message, "Bad Gateway");
                assert_eq!(request_id.as_deref(), Some("h"));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
        // A success that is not XML is a decode error.
        assert!(matches!(parse_response(200, b"{}", None), Err(ClientError::Decode(_))));
    }

    #[test]
    fn absurdly_deep_documents_are_refused() {
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert!(matches!(XmlDoc::parse(&deep), Err(ClientError::Decode(_))));
        let fine = format!("{}{}", "<a>".repeat(20), "</a>".repeat(20));
        assert!(XmlDoc::parse(&fine).is_ok());
    }

    #[test]
    fn doctypes_are_refused() {
        let evil = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
        assert!(XmlDoc::parse(evil).is_err());
    }

    #[test]
    fn policy_documents_are_url_decoded() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A%2A%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Aa%2Bb%22%7D%5D%7D";
        let decoded = decode_document(encoded);
        assert_eq!(
            decoded,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::a+b"}]}"#
        );
        // A plain `+` is not a space in a URL-encoded document, and plain JSON passes through.
        assert_eq!(decode_document("a+b"), "a+b");
        assert_eq!(decode_document(r#"{"a": 1}"#), r#"{"a": 1}"#);
    }

    #[test]
    fn timestamps_parse_in_the_shapes_services_send() {
        let t = parse_timestamp("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(format_timestamp(&t), "2026-11-23T10:00:00Z");
        assert_eq!(parse_timestamp("2026-11-23T10:00:00.250Z").unwrap().millisecond(), 250);
        assert_eq!(parse_timestamp("2026-11-23T11:00:00+01:00").unwrap(), t);
        assert_eq!(parse_timestamp("2026-11-23T10:00:00").unwrap(), t);
        assert_eq!(parse_timestamp("1795428000").unwrap(), t);
        assert!(parse_timestamp("tomorrow").is_none());
        assert!(parse_timestamp("NaN").is_none());
        assert!(parse_timestamp("inf").is_none());
    }

    #[test]
    fn secret_text_is_redacted_in_debug_but_serialized() {
        let s = SecretText::new("wJalrXUtnFEMI".into());
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"wJalrXUtnFEMI\"");
        let node = XmlDoc::parse("<a><SecretAccessKey>wJalrXUtnFEMI</SecretAccessKey></a>").unwrap();
        assert!(!format!("{node:?}").contains("wJalr"));
    }
}
