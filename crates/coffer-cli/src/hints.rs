//! What to do next: every client command turns a failed call into its error plus a `hint:` line that
//! says how to get past it (start the server, trust its certificate, give credentials, ask for a
//! permission, check a name). Errors carry names, codes and endpoints, never values.

use coffer_client::ClientError;

/// The parts of AWS's AccessDenied message: `User: <principal> is not authorized to perform: <action> on
/// resource: <resource> because ...` (or `with an explicit deny ...`).
#[derive(Debug, PartialEq, Eq)]
struct Denial<'a> {
    principal: &'a str,
    action: &'a str,
    resource: &'a str,
}

fn parse_denial(message: &str) -> Option<Denial<'_>> {
    let rest = message.strip_prefix("User: ")?;
    let (principal, rest) = rest.split_once(" is not authorized to perform: ")?;
    let (action, rest) = rest.split_once(" on resource: ")?;
    let resource =
        [" because ", " with "].iter().filter_map(|sep| rest.find(sep)).min().map_or(rest, |end| &rest[..end]);
    Some(Denial { principal, action, resource: resource.trim_end_matches('.') })
}

/// The hint for an AccessDenied answer: who may not do what on which resource, and how to change or
/// inspect that.
fn access_denied_hint(message: &str) -> String {
    match parse_denial(message) {
        Some(d) => format!(
            "{} may not {} on {}: an administrator can allow it with a policy (coffer iam policy create, then coffer iam attach); \
             `coffer iam simulate --principal {} --action {} --resource {}` shows what decides",
            d.principal, d.action, d.resource, d.principal, d.action, d.resource
        ),
        None => "the caller lacks a permission this needs: `coffer sts whoami` shows who the caller is, and \
                 `coffer iam simulate` which policy decides"
            .to_string(),
    }
}

/// The hint for a server that could not be reached, by what went wrong.
fn transport_hint(endpoint: &str, detail: &str) -> String {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        format!(
            "the TLS connection to {endpoint} failed: trust the server's CA with AWS_CA_BUNDLE=ca.pem or a profile's ca_bundle, \
             or check that the endpoint's scheme (http/https) is the server's"
        )
    } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        format!(
            "the host of {endpoint} cannot be found: check the endpoint (coffer profile show says where it comes from)"
        )
    } else {
        format!(
            "is the server running at {endpoint}? start it with `coffer server`, or point --endpoint-url, AWS_ENDPOINT_URL \
             or a profile's endpoint at it (coffer profile show says which one is used)"
        )
    }
}

/// Turns an API error into a message that says what to do next.
pub(crate) fn explain(e: ClientError) -> anyhow::Error {
    let hint = match &e {
        ClientError::Api { code, message, .. } => match code.as_str() {
            "AccessDeniedException" | "AccessDenied" => Some(access_denied_hint(message)),
            "ResourceNotFoundException" => Some("check the name (coffer secret list) and the region".to_string()),
            "ParameterNotFound" => Some("check the name (coffer param list --path /) and the region".to_string()),
            "ParameterAlreadyExists" => Some("add --overwrite to store a new version".to_string()),
            "UnrecognizedClientException" | "InvalidSignatureException" | "InvalidClientTokenId" | "SignatureDoesNotMatch" => {
                Some(
                    "check the access key: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_SHARED_CREDENTIALS_FILE, or the profile's \
                     (coffer profile show says which is used)"
                        .to_string(),
                )
            }
            "ExpiredToken" | "ExpiredTokenException" => Some(
                "the session token has expired: get new credentials (coffer sts assume-role / session-token) or unset AWS_SESSION_TOKEN"
                    .to_string(),
            ),
            "NoSuchEntity" => {
                Some("check the name or ARN (coffer iam user list, coffer iam policy list --scope Local)".to_string())
            }
            "DeleteConflict" => Some(
                "remove what still depends on it first (access keys, attached and inline policies, group members, MFA devices)"
                    .to_string(),
            ),
            "InvalidAction" | "UnknownOperationException" => {
                Some("this server does not serve that action; is it older than this coffer CLI?".to_string())
            }
            "ThrottlingException" => Some("the server is busy: try again in a moment".to_string()),
            _ => None,
        },
        ClientError::Transport { endpoint, detail } => Some(transport_hint(endpoint, detail)),
        _ => None,
    };
    match hint {
        Some(h) => anyhow::anyhow!("{e}\nhint: {h}"),
        None => anyhow::anyhow!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENIED: &str = "User: arn:aws:iam::000000000000:user/app is not authorized to perform: \
        secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf \
        because no identity-based policy allows the secretsmanager:GetSecretValue action";

    #[test]
    fn denials_name_who_what_and_where() {
        let d = parse_denial(DENIED).unwrap();
        assert_eq!(d.principal, "arn:aws:iam::000000000000:user/app");
        assert_eq!(d.action, "secretsmanager:GetSecretValue");
        assert_eq!(d.resource, "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf");
        let explicit = "User: u is not authorized to perform: kms:Decrypt on resource: k with an explicit deny in a resource-based policy";
        assert_eq!(parse_denial(explicit).unwrap().resource, "k");
        assert_eq!(parse_denial("Access denied."), None);

        let text = explain(ClientError::Api {
            status: 400,
            code: "AccessDeniedException".into(),
            message: DENIED.into(),
            request_id: None,
        })
        .to_string();
        assert!(
            text.contains("hint: arn:aws:iam::000000000000:user/app may not secretsmanager:GetSecretValue on arn:"),
            "{text}"
        );
        assert!(text.contains("coffer iam simulate --principal arn:aws:iam::000000000000:user/app"), "{text}");
    }

    #[test]
    fn unreachable_servers_are_named() {
        let refused = ClientError::Transport {
            endpoint: "http://127.0.0.1:1".into(),
            detail: "Connection refused (os error 111)".into(),
        };
        let text = explain(refused).to_string();
        assert!(
            text.contains("hint: is the server running at http://127.0.0.1:1? start it with `coffer server`"),
            "{text}"
        );
        let tls = ClientError::Transport {
            endpoint: "https://c".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert!(explain(tls).to_string().contains("AWS_CA_BUNDLE"));
    }
}
