//! The AWS query protocol front-end (STS; IAM builds on it): a form-encoded POST body whose `Action`
//! names the operation, SigV4-signed for the service's signing name, answered in XML. Errors use the
//! query protocol's `<ErrorResponse>` document.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;

use crate::error::ApiError;
use crate::{auth, read_body, request_context, request_view, ApiState};

/// A query-protocol service Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryService {
    Sts,
}

impl QueryService {
    fn from_signing_name(name: &str) -> Option<Self> {
        match name {
            "sts" => Some(QueryService::Sts),
            _ => None,
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            QueryService::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
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

/// Escapes text for an XML element.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_response(status: u16, body: String, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
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
            xml_response(e.status, error_document(&e, namespace, request_id), request_id)
        }
    }
}

/// The query-protocol services name the authentication failures differently from the JSON ones.
fn query_protocol_names(mut e: ApiError) -> ApiError {
    e.code = match e.code {
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        other => other,
    };
    e
}

async fn serve<B>(
    state: &ApiState,
    remote: SocketAddr,
    req: Request<B>,
    request_id: &str,
    namespace: &mut &'static str,
) -> Result<String, ApiError>
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
    let (principal, region) = auth::authenticate(&state.service, &state.signing_keys, &view, &parsed.service).await?;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let action = form.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.as_str()).unwrap_or_default();
    let ctx = request_context(principal, region, request_id, remote, &parts);
    match (service, action) {
        (QueryService::Sts, "GetCallerIdentity") => {
            let id = state.service.caller_identity(&ctx);
            Ok(format!(
                "<GetCallerIdentityResponse xmlns=\"{ns}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
                xml_escape(&id.arn),
                xml_escape(&id.user_id),
                xml_escape(&id.account),
                xml_escape(request_id),
                ns = service.namespace(),
            ))
        }
        (_, "") => Err(ApiError::bad_request("MissingAction", "The request must contain the parameter Action.")),
        (_, other) => Err(ApiError::bad_request(
            "InvalidAction",
            format!("Could not find operation {} for version {}", other, form_value(&form, "Version")),
        )),
    }
}

fn form_value<'a>(form: &'a [(String, String)], key: &str) -> &'a str {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("NO_VERSION_SPECIFIED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml_special_characters() {
        assert_eq!(xml_escape(r#"a<b>&"c"'"#), "a&lt;b&gt;&amp;&quot;c&quot;&apos;");
        assert_eq!(xml_escape("arn:aws:iam::000000000000:root"), "arn:aws:iam::000000000000:root");
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
}
