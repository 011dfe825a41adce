//! STS (`2011-06-15`, signing name `sts`) over the query protocol: the caller's identity and temporary
//! credentials.

use serde::Serialize;
use time::OffsetDateTime;

use crate::query::{serialize_timestamp, SecretText, XmlNode};
use crate::ClientError;

/// The signing name (SigV4 scope service).
pub const SERVICE: &str = "sts";
/// The API version every request names.
pub const VERSION: &str = "2011-06-15";

/// `GetCallerIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallerIdentity {
    pub user_id: String,
    pub account: String,
    pub arn: String,
}

impl CallerIdentity {
    pub fn from_result(result: &XmlNode) -> Result<Self, ClientError> {
        Ok(CallerIdentity {
            user_id: result.get("UserId").unwrap_or_default().into(),
            account: result.get("Account").unwrap_or_default().into(),
            arn: result.required("Arn")?.into(),
        })
    }
}

/// Temporary credentials. The secret and the token are zeroized on drop and redacted in `Debug`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretText,
    pub session_token: SecretText,
    #[serde(serialize_with = "serialize_timestamp")]
    pub expiration: Option<OffsetDateTime>,
}

impl Credentials {
    pub fn from_xml(n: &XmlNode) -> Result<Self, ClientError> {
        Ok(Credentials {
            access_key_id: n.required("AccessKeyId")?.into(),
            secret_access_key: SecretText::new(n.required("SecretAccessKey")?.to_string()),
            session_token: SecretText::new(n.required("SessionToken")?.to_string()),
            expiration: n.timestamp("Expiration")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumedRoleUser {
    pub assumed_role_id: String,
    pub arn: String,
}

/// `AssumeRole` and `GetSessionToken` (which has no assumed-role user).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemporaryCredentials {
    pub credentials: Credentials,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumed_role_user: Option<AssumedRoleUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packed_policy_size: Option<i64>,
}

impl TemporaryCredentials {
    pub fn from_result(result: &XmlNode) -> Result<Self, ClientError> {
        let assumed_role_user = match result.child("AssumedRoleUser") {
            Some(u) => Some(AssumedRoleUser {
                assumed_role_id: u.get("AssumedRoleId").unwrap_or_default().into(),
                arn: u.required("Arn")?.into(),
            }),
            None => None,
        };
        Ok(TemporaryCredentials {
            credentials: Credentials::from_xml(result.required_child("Credentials")?)?,
            assumed_role_user,
            packed_policy_size: result.i64("PackedPolicySize"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{format_timestamp, XmlDoc};

    #[test]
    fn caller_identity() {
        let doc = XmlDoc::parse(
            r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:iam::123456789012:user/Alice</Arn>
    <UserId>AIDACKCEVSQ6C2EXAMPLE</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#,
        )
        .unwrap();
        let id = CallerIdentity::from_result(doc.result()).unwrap();
        assert_eq!(
            id,
            CallerIdentity {
                user_id: "AIDACKCEVSQ6C2EXAMPLE".into(),
                account: "123456789012".into(),
                arn: "arn:aws:iam::123456789012:user/Alice".into()
            }
        );
    }

    #[test]
    fn assume_role_credentials() {
        let doc = XmlDoc::parse(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <SourceIdentity>DevUser123</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/John</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:John</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW</SessionToken>
      <Expiration>2026-11-23T11:00:00Z</Expiration>
    </Credentials>
    <PackedPolicySize>8</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#,
        )
        .unwrap();
        let t = TemporaryCredentials::from_result(doc.result()).unwrap();
        assert_eq!(t.credentials.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(t.credentials.secret_access_key.expose(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
        assert!(t.credentials.session_token.expose().starts_with("AQoDYXdzEPT//"));
        assert_eq!(t.credentials.expiration.map(|e| format_timestamp(&e)).as_deref(), Some("2026-11-23T11:00:00Z"));
        assert_eq!(
            t.assumed_role_user.as_ref().map(|u| u.arn.as_str()),
            Some("arn:aws:sts::123456789012:assumed-role/demo/John")
        );
        assert_eq!(t.packed_policy_size, Some(8));
        let shown = format!("{t:?}");
        assert!(!shown.contains("wJalr") && !shown.contains("AQoDYXdz"));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["Credentials"]["SessionToken"], t.credentials.session_token.expose());
        assert_eq!(json["AssumedRoleUser"]["AssumedRoleId"], "ARO123EXAMPLE123:John");
    }

    #[test]
    fn session_token_has_no_role_user() {
        let doc = XmlDoc::parse(
            r#"<GetSessionTokenResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetSessionTokenResult>
    <Credentials>
      <SessionToken>AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2011-07-11T19:55:29.611Z</Expiration>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
  </GetSessionTokenResult>
</GetSessionTokenResponse>"#,
        )
        .unwrap();
        let t = TemporaryCredentials::from_result(doc.result()).unwrap();
        assert!(t.assumed_role_user.is_none());
        assert_eq!(t.credentials.expiration.unwrap().millisecond(), 611);
        // Missing credentials are a decode error.
        let doc = XmlDoc::parse("<GetSessionTokenResponse><GetSessionTokenResult/></GetSessionTokenResponse>").unwrap();
        assert!(matches!(TemporaryCredentials::from_result(doc.result()), Err(ClientError::Decode(_))));
    }
}
