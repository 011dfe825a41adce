//! STS over the query protocol: GetCallerIdentity, AssumeRole, GetSessionToken.
//!
//! The answers of AssumeRole and GetSessionToken carry a secret access key; it is written straight
//! into the answer's wiped buffer (see [`crate::query::Xml`]) and never logged.

use bytes::Bytes;
use coffer_service::iam::sts::{AssumeRoleInput, TemporaryCredentials};
use coffer_service::{RequestContext, Service};

use crate::error::{sts_error, ApiError};
use crate::query::{Form, Xml};

/// STS's XML namespace.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Members of AssumeRole that Coffer does not implement. Ignoring a session policy or session tags
/// would hand out broader credentials than the caller asked for, so they are refused.
const UNSUPPORTED_ASSUME_ROLE_MEMBERS: &[(&str, &str)] = &[
    ("Policy", "policy"),
    ("PolicyArns", "policyArns"),
    ("Tags", "tags"),
    ("TransitiveTagKeys", "transitiveTagKeys"),
    ("SourceIdentity", "sourceIdentity"),
    ("ProvidedContexts", "providedContexts"),
];

/// Serves one STS action; `Ok(None)` when STS has no such action.
pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    action: &str,
    form: &Form,
) -> Result<Option<Bytes>, ApiError> {
    let rid = ctx.request_id.as_str();
    let body = match action {
        "GetCallerIdentity" => {
            let id = service.caller_identity(ctx);
            let mut x = Xml::result(action, NAMESPACE);
            x.text("Arn", &id.arn);
            x.text("UserId", &id.user_id);
            x.text("Account", &id.account);
            x.finish(rid)
        }
        "AssumeRole" => {
            for (member, field) in UNSUPPORTED_ASSUME_ROLE_MEMBERS {
                if form.has(member) {
                    return Err(ApiError::bad_request(
                        "ValidationError",
                        format!("The parameter '{field}' is not supported by Coffer's AssumeRole."),
                    ));
                }
            }
            let input = AssumeRoleInput {
                role_arn: form.required("RoleArn")?.to_string(),
                role_session_name: form.required("RoleSessionName")?.to_string(),
                duration_seconds: form.int("DurationSeconds")?,
                serial_number: form.string("SerialNumber"),
                token_code: form.string("TokenCode"),
                external_id: form.string("ExternalId"),
            };
            let creds = service.assume_role(ctx, input).await.map_err(sts_error)?;
            credentials_answer(action, &creds, rid)?
        }
        "GetSessionToken" => {
            let creds = service
                .get_session_token(
                    ctx,
                    form.int("DurationSeconds")?,
                    form.string("SerialNumber"),
                    form.string("TokenCode"),
                )
                .await
                .map_err(sts_error)?;
            credentials_answer(action, &creds, rid)?
        }
        _ => return Ok(None),
    };
    Ok(Some(body))
}

/// `<Credentials>` (and, for a role, `<AssumedRoleUser>`).
fn credentials_answer(action: &str, creds: &TemporaryCredentials, request_id: &str) -> Result<Bytes, ApiError> {
    let mut x = Xml::result(action, NAMESPACE);
    x.open("Credentials");
    x.text("AccessKeyId", &creds.access_key_id);
    x.secret("SecretAccessKey", &creds.secret_access_key)?;
    x.text("SessionToken", &creds.session_token);
    x.time("Expiration", creds.expiration);
    x.close("Credentials");
    if let Some(user) = &creds.assumed_role {
        x.open("AssumedRoleUser");
        x.text("AssumedRoleId", &user.assumed_role_id);
        x.text("Arn", &user.arn);
        x.close("AssumedRoleUser");
    }
    Ok(x.finish(request_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_crypto::SecretBytes;
    use coffer_service::iam::sts::AssumedRoleUser;

    #[test]
    fn assume_role_answers_follow_the_sts_model() {
        let creds = TemporaryCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: SecretBytes::from("s3cr3t/+&"),
            session_token: "CFS1token".into(),
            expiration: 1_795_427_200_000,
            assumed_role: Some(AssumedRoleUser {
                assumed_role_id: "AROAEXAMPLE:app".into(),
                arn: "arn:aws:sts::000000000000:assumed-role/deploy/app".into(),
            }),
        };
        let body = credentials_answer("AssumeRole", &creds, "rid").expect("answer");
        assert_eq!(
            std::str::from_utf8(&body).expect("utf-8"),
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials>\
             <AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>s3cr3t/+&amp;</SecretAccessKey>\
             <SessionToken>CFS1token</SessionToken><Expiration>2026-11-23T09:46:40Z</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:app</AssumedRoleId>\
             <Arn>arn:aws:sts::000000000000:assumed-role/deploy/app</Arn></AssumedRoleUser></AssumeRoleResult>\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></AssumeRoleResponse>"
        );
    }
}
