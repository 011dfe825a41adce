//! IAM (`2010-05-08`, signing name `iam`) over the query protocol: the answer shapes the `coffer iam`
//! commands read, parsed from [`XmlNode`]s and serialized with the AWS names (as `aws iam` prints them).
//! Policy documents arrive URL-encoded and are decoded here.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use time::OffsetDateTime;

use crate::query::{serialize_timestamp, SecretText, XmlNode};
use crate::ClientError;

/// The signing name (SigV4 scope service).
pub const SERVICE: &str = "iam";
/// The API version every request names.
pub const VERSION: &str = "2010-05-08";

type R<T> = Result<T, ClientError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

fn tags(node: &XmlNode, name: &str) -> Vec<Tag> {
    node.members(name)
        .into_iter()
        .map(|m| Tag { key: m.get("Key").unwrap_or_default().into(), value: m.get("Value").unwrap_or_default().into() })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct User {
    pub path: String,
    pub user_name: String,
    pub user_id: String,
    pub arn: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub create_date: Option<OffsetDateTime>,
    #[serde(serialize_with = "serialize_timestamp", skip_serializing_if = "Option::is_none")]
    pub password_last_used: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl User {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        Ok(User {
            path: n.get("Path").unwrap_or("/").into(),
            user_name: n.required("UserName")?.into(),
            user_id: n.get("UserId").unwrap_or_default().into(),
            arn: n.required("Arn")?.into(),
            create_date: n.timestamp("CreateDate")?,
            password_last_used: n.timestamp("PasswordLastUsed")?,
            tags: tags(n, "Tags"),
        })
    }
}

/// `CreateUser`, `GetUser`: `<User>`.
pub fn user_result(result: &XmlNode) -> R<User> {
    User::from_xml(result.required_child("User")?)
}

/// `ListUsers` (one page): `<Users><member>`.
pub fn users_page(result: &XmlNode) -> R<(Vec<User>, Option<String>)> {
    let users = result.members("Users").into_iter().map(User::from_xml).collect::<R<_>>()?;
    Ok((users, result.next_marker()))
}

/// `ListUserTags`, `ListRoleTags` (one page).
pub fn tags_page(result: &XmlNode) -> R<(Vec<Tag>, Option<String>)> {
    Ok((tags(result, "Tags"), result.next_marker()))
}

/// An access key's metadata (`ListAccessKeys`); the secret is never listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyMetadata {
    pub user_name: String,
    pub access_key_id: String,
    pub status: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub create_date: Option<OffsetDateTime>,
}

impl AccessKeyMetadata {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        Ok(AccessKeyMetadata {
            user_name: n.get("UserName").unwrap_or_default().into(),
            access_key_id: n.required("AccessKeyId")?.into(),
            status: n.get("Status").unwrap_or_default().into(),
            create_date: n.timestamp("CreateDate")?,
        })
    }
}

/// `ListAccessKeys` (one page): `<AccessKeyMetadata><member>`.
pub fn access_keys_page(result: &XmlNode) -> R<(Vec<AccessKeyMetadata>, Option<String>)> {
    let keys = result.members("AccessKeyMetadata").into_iter().map(AccessKeyMetadata::from_xml).collect::<R<_>>()?;
    Ok((keys, result.next_marker()))
}

/// A new access key (`CreateAccessKey`): the only time the secret is seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NewAccessKey {
    pub user_name: String,
    pub access_key_id: String,
    pub status: String,
    pub secret_access_key: SecretText,
    #[serde(serialize_with = "serialize_timestamp")]
    pub create_date: Option<OffsetDateTime>,
}

/// `CreateAccessKey`: `<AccessKey>`.
pub fn new_access_key_result(result: &XmlNode) -> R<NewAccessKey> {
    let n = result.required_child("AccessKey")?;
    Ok(NewAccessKey {
        user_name: n.get("UserName").unwrap_or_default().into(),
        access_key_id: n.required("AccessKeyId")?.into(),
        status: n.get("Status").unwrap_or_default().into(),
        secret_access_key: SecretText::new(n.required("SecretAccessKey")?.to_string()),
        create_date: n.timestamp("CreateDate")?,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Group {
    pub path: String,
    pub group_name: String,
    pub group_id: String,
    pub arn: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub create_date: Option<OffsetDateTime>,
}

impl Group {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        Ok(Group {
            path: n.get("Path").unwrap_or("/").into(),
            group_name: n.required("GroupName")?.into(),
            group_id: n.get("GroupId").unwrap_or_default().into(),
            arn: n.required("Arn")?.into(),
            create_date: n.timestamp("CreateDate")?,
        })
    }
}

/// `CreateGroup`: `<Group>`.
pub fn group_result(result: &XmlNode) -> R<Group> {
    Group::from_xml(result.required_child("Group")?)
}

/// `GetGroup` (one page): the group and a page of its users.
pub fn group_with_users_page(result: &XmlNode) -> R<(Group, Vec<User>, Option<String>)> {
    let group = group_result(result)?;
    let users = result.members("Users").into_iter().map(User::from_xml).collect::<R<_>>()?;
    Ok((group, users, result.next_marker()))
}

/// `ListGroups`, `ListGroupsForUser` (one page).
pub fn groups_page(result: &XmlNode) -> R<(Vec<Group>, Option<String>)> {
    let groups = result.members("Groups").into_iter().map(Group::from_xml).collect::<R<_>>()?;
    Ok((groups, result.next_marker()))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Role {
    pub path: String,
    pub role_name: String,
    pub role_id: String,
    pub arn: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub create_date: Option<OffsetDateTime>,
    /// Decoded from its URL encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assume_role_policy_document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl Role {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        Ok(Role {
            path: n.get("Path").unwrap_or("/").into(),
            role_name: n.required("RoleName")?.into(),
            role_id: n.get("RoleId").unwrap_or_default().into(),
            arn: n.required("Arn")?.into(),
            create_date: n.timestamp("CreateDate")?,
            assume_role_policy_document: n.document("AssumeRolePolicyDocument"),
            description: n.string("Description"),
            max_session_duration: n.i64("MaxSessionDuration"),
            tags: tags(n, "Tags"),
        })
    }
}

/// `CreateRole`, `GetRole`: `<Role>`.
pub fn role_result(result: &XmlNode) -> R<Role> {
    Role::from_xml(result.required_child("Role")?)
}

/// `ListRoles` (one page).
pub fn roles_page(result: &XmlNode) -> R<(Vec<Role>, Option<String>)> {
    let roles = result.members("Roles").into_iter().map(Role::from_xml).collect::<R<_>>()?;
    Ok((roles, result.next_marker()))
}

/// A managed policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub policy_name: String,
    pub policy_id: String,
    pub arn: String,
    pub path: String,
    pub default_version_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_attachable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    pub create_date: Option<OffsetDateTime>,
    #[serde(serialize_with = "serialize_timestamp")]
    pub update_date: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl Policy {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        Ok(Policy {
            policy_name: n.get("PolicyName").unwrap_or_default().into(),
            policy_id: n.get("PolicyId").unwrap_or_default().into(),
            arn: n.required("Arn")?.into(),
            path: n.get("Path").unwrap_or("/").into(),
            default_version_id: n.get("DefaultVersionId").unwrap_or_default().into(),
            attachment_count: n.i64("AttachmentCount"),
            is_attachable: n.bool("IsAttachable"),
            description: n.string("Description"),
            create_date: n.timestamp("CreateDate")?,
            update_date: n.timestamp("UpdateDate")?,
            tags: tags(n, "Tags"),
        })
    }
}

/// `CreatePolicy`, `GetPolicy`: `<Policy>`.
pub fn policy_result(result: &XmlNode) -> R<Policy> {
    Policy::from_xml(result.required_child("Policy")?)
}

/// `ListPolicies` (one page).
pub fn policies_page(result: &XmlNode) -> R<(Vec<Policy>, Option<String>)> {
    let policies = result.members("Policies").into_iter().map(Policy::from_xml).collect::<R<_>>()?;
    Ok((policies, result.next_marker()))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersion {
    /// Decoded; absent from `ListPolicyVersions` answers that leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    pub version_id: String,
    pub is_default_version: bool,
    #[serde(serialize_with = "serialize_timestamp")]
    pub create_date: Option<OffsetDateTime>,
}

impl PolicyVersion {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        Ok(PolicyVersion {
            document: n.document("Document"),
            version_id: n.required("VersionId")?.into(),
            is_default_version: n.bool("IsDefaultVersion").unwrap_or(false),
            create_date: n.timestamp("CreateDate")?,
        })
    }
}

/// `CreatePolicyVersion`, `GetPolicyVersion`: `<PolicyVersion>`.
pub fn policy_version_result(result: &XmlNode) -> R<PolicyVersion> {
    PolicyVersion::from_xml(result.required_child("PolicyVersion")?)
}

/// `ListPolicyVersions` (one page).
pub fn policy_versions_page(result: &XmlNode) -> R<(Vec<PolicyVersion>, Option<String>)> {
    let versions = result.members("Versions").into_iter().map(PolicyVersion::from_xml).collect::<R<_>>()?;
    Ok((versions, result.next_marker()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedPolicy {
    pub policy_name: String,
    pub policy_arn: String,
}

/// `ListAttached{User,Group,Role}Policies` (one page).
pub fn attached_policies_page(result: &XmlNode) -> R<(Vec<AttachedPolicy>, Option<String>)> {
    let policies = result
        .members("AttachedPolicies")
        .into_iter()
        .map(|m| {
            Ok(AttachedPolicy {
                policy_name: m.get("PolicyName").unwrap_or_default().into(),
                policy_arn: m.required("PolicyArn")?.into(),
            })
        })
        .collect::<R<_>>()?;
    Ok((policies, result.next_marker()))
}

/// `List{User,Group,Role}Policies` (one page): inline policy names.
pub fn policy_names_page(result: &XmlNode) -> R<(Vec<String>, Option<String>)> {
    Ok((result.member_texts("PolicyNames"), result.next_marker()))
}

/// An inline policy (`Get{User,Group,Role}Policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InlinePolicy {
    /// `UserName`, `GroupName` or `RoleName`, as answered.
    #[serde(skip)]
    pub owner_field: &'static str,
    #[serde(skip)]
    pub owner: String,
    pub policy_name: String,
    /// Decoded.
    pub policy_document: String,
}

/// `Get{User,Group,Role}Policy`.
pub fn inline_policy_result(result: &XmlNode) -> R<InlinePolicy> {
    let (owner_field, owner) = ["UserName", "GroupName", "RoleName"]
        .into_iter()
        .find_map(|f| result.get(f).map(|v| (f, v.to_string())))
        .unwrap_or(("", String::new()));
    Ok(InlinePolicy {
        owner_field,
        owner,
        policy_name: result.required("PolicyName")?.into(),
        policy_document: result.document("PolicyDocument").unwrap_or_default(),
    })
}

/// A device assigned to a user (`ListMFADevices`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MfaDevice {
    pub user_name: String,
    pub serial_number: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub enable_date: Option<OffsetDateTime>,
}

/// `ListMFADevices` (one page): `<MFADevices><member>`.
pub fn mfa_devices_page(result: &XmlNode) -> R<(Vec<MfaDevice>, Option<String>)> {
    let devices = result
        .members("MFADevices")
        .into_iter()
        .map(|m| {
            Ok(MfaDevice {
                user_name: m.get("UserName").unwrap_or_default().into(),
                serial_number: m.required("SerialNumber")?.into(),
                enable_date: m.timestamp("EnableDate")?,
            })
        })
        .collect::<R<_>>()?;
    Ok((devices, result.next_marker()))
}

/// A virtual MFA device (`CreateVirtualMFADevice`, `ListVirtualMFADevices`). The seed is present only
/// in the answer to its creation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VirtualMfaDevice {
    pub serial_number: String,
    /// The base32 TOTP seed (the wire carries it base64-encoded, as a blob).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base32_string_seed: Option<SecretText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(serialize_with = "serialize_timestamp", skip_serializing_if = "Option::is_none")]
    pub enable_date: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

impl VirtualMfaDevice {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        Ok(VirtualMfaDevice {
            serial_number: n.required("SerialNumber")?.into(),
            base32_string_seed: n.get("Base32StringSeed").filter(|s| !s.is_empty()).map(decode_seed).transpose()?,
            user: n.child("User").map(User::from_xml).transpose()?,
            enable_date: n.timestamp("EnableDate")?,
            tags: tags(n, "Tags"),
        })
    }
}

/// `CreateVirtualMFADevice`: `<VirtualMFADevice>`.
pub fn virtual_mfa_device_result(result: &XmlNode) -> R<VirtualMfaDevice> {
    VirtualMfaDevice::from_xml(result.required_child("VirtualMFADevice")?)
}

/// `ListVirtualMFADevices` (one page).
pub fn virtual_mfa_devices_page(result: &XmlNode) -> R<(Vec<VirtualMfaDevice>, Option<String>)> {
    let devices = result.members("VirtualMFADevices").into_iter().map(VirtualMfaDevice::from_xml).collect::<R<_>>()?;
    Ok((devices, result.next_marker()))
}

fn is_base32(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b) || b == b'=')
}

/// `Base32StringSeed` is a blob: base64 of the base32 text. A server that sends the base32 text as is
/// is understood too.
fn decode_seed(wire: &str) -> R<SecretText> {
    if let Ok(raw) = STANDARD.decode(wire) {
        let raw = zeroize::Zeroizing::new(raw);
        if let Ok(text) = std::str::from_utf8(&raw) {
            if is_base32(text) {
                return Ok(SecretText::new(text.to_string()));
            }
        }
    }
    if is_base32(wire) {
        return Ok(SecretText::new(wire.to_string()));
    }
    Err(ClientError::Decode("<Base32StringSeed> is neither base64 of a base32 seed nor a base32 seed".into()))
}

/// Where in a policy a matched statement is (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Position {
    pub line: i64,
    pub column: i64,
}

/// A statement that decided a simulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_policy_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_policy_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_position: Option<Position>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_position: Option<Position>,
}

impl Statement {
    fn from_xml(n: &XmlNode) -> Self {
        let position = |name: &str| {
            n.child(name).map(|p| Position { line: p.i64("Line").unwrap_or(0), column: p.i64("Column").unwrap_or(0) })
        };
        Statement {
            source_policy_id: n.string("SourcePolicyId"),
            source_policy_type: n.string("SourcePolicyType"),
            start_position: position("StartPosition"),
            end_position: position("EndPosition"),
        }
    }
}

fn statements(n: &XmlNode) -> Vec<Statement> {
    n.members("MatchedStatements").into_iter().map(Statement::from_xml).collect()
}

/// The decision for one resource of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceSpecificResult {
    pub eval_resource_name: String,
    pub eval_resource_decision: String,
    pub matched_statements: Vec<Statement>,
    pub missing_context_values: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub eval_decision_details: BTreeMap<String, String>,
}

/// One action's (and resource's) simulated decision: `allowed`, `explicitDeny` or `implicitDeny`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EvaluationResult {
    pub eval_action_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_resource_name: Option<String>,
    pub eval_decision: String,
    pub matched_statements: Vec<Statement>,
    pub missing_context_values: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub eval_decision_details: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by_permissions_boundary: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_specific_results: Vec<ResourceSpecificResult>,
}

impl EvaluationResult {
    pub fn from_xml(n: &XmlNode) -> R<Self> {
        let resource_specific_results = n
            .members("ResourceSpecificResults")
            .into_iter()
            .map(|r| {
                Ok(ResourceSpecificResult {
                    eval_resource_name: r.required("EvalResourceName")?.into(),
                    eval_resource_decision: r.required("EvalResourceDecision")?.into(),
                    matched_statements: statements(r),
                    missing_context_values: r.member_texts("MissingContextValues"),
                    eval_decision_details: r.map("EvalDecisionDetails"),
                })
            })
            .collect::<R<_>>()?;
        Ok(EvaluationResult {
            eval_action_name: n.required("EvalActionName")?.into(),
            eval_resource_name: n.string("EvalResourceName"),
            eval_decision: n.required("EvalDecision")?.into(),
            matched_statements: statements(n),
            missing_context_values: n.member_texts("MissingContextValues"),
            eval_decision_details: n.map("EvalDecisionDetails"),
            allowed_by_permissions_boundary: n
                .child("PermissionsBoundaryDecisionDetail")
                .and_then(|d| d.bool("AllowedByPermissionsBoundary")),
            resource_specific_results,
        })
    }
}

/// `SimulatePrincipalPolicy`, `SimulateCustomPolicy` (one page).
pub fn evaluation_results_page(result: &XmlNode) -> R<(Vec<EvaluationResult>, Option<String>)> {
    let results = result.members("EvaluationResults").into_iter().map(EvaluationResult::from_xml).collect::<R<_>>()?;
    Ok((results, result.next_marker()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{format_timestamp, XmlDoc};

    fn result(xml: &str) -> XmlDoc {
        XmlDoc::parse(xml).unwrap()
    }

    const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

    #[test]
    fn create_user_with_tags() {
        let doc = result(&format!(
            r#"<CreateUserResponse xmlns="{NS}">
  <CreateUserResult>
    <User>
      <Path>/division_abc/subdivision_xyz/</Path>
      <UserName>Bob</UserName>
      <UserId>AIDACKCEVSQ6C2EXAMPLE</UserId>
      <Arn>arn:aws:iam::123456789012:user/division_abc/subdivision_xyz/Bob</Arn>
      <CreateDate>2026-11-23T10:00:00Z</CreateDate>
      <Tags>
        <member><Key>team</Key><Value>backend</Value></member>
        <member><Key>env</Key><Value></Value></member>
      </Tags>
    </User>
  </CreateUserResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
</CreateUserResponse>"#
        ));
        let user = user_result(doc.result()).unwrap();
        assert_eq!(user.user_name, "Bob");
        assert_eq!(user.path, "/division_abc/subdivision_xyz/");
        assert_eq!(user.user_id, "AIDACKCEVSQ6C2EXAMPLE");
        assert_eq!(user.arn, "arn:aws:iam::123456789012:user/division_abc/subdivision_xyz/Bob");
        assert_eq!(user.create_date.map(|t| format_timestamp(&t)).as_deref(), Some("2026-11-23T10:00:00Z"));
        assert_eq!(
            user.tags,
            [Tag { key: "team".into(), value: "backend".into() }, Tag { key: "env".into(), value: "".into() }]
        );
        let json = serde_json::to_value(&user).unwrap();
        assert_eq!(json["UserName"], "Bob");
        assert_eq!(json["CreateDate"], "2026-11-23T10:00:00Z");
        assert_eq!(json["Tags"][0]["Key"], "team");
        assert!(json.get("PasswordLastUsed").is_none());
    }

    #[test]
    fn list_users_pages() {
        let doc = result(&format!(
            r#"<ListUsersResponse xmlns="{NS}"><ListUsersResult>
  <Users>
    <member><UserId>AID2MAB8DPLSRHEXAMPLE</UserId><Path>/</Path><UserName>Andrew</UserName>
      <Arn>arn:aws:iam::123456789012:user/Andrew</Arn><CreateDate>2012-09-05T19:38:48Z</CreateDate>
      <PasswordLastUsed>2014-09-08T21:47:36Z</PasswordLastUsed></member>
    <member><UserId>AIDIODR4TAW7CSEXAMPLE</UserId><Path>/</Path><UserName>Jackie</UserName>
      <Arn>arn:aws:iam::123456789012:user/Jackie</Arn><CreateDate>2014-04-09T15:43:45Z</CreateDate></member>
  </Users>
  <IsTruncated>true</IsTruncated>
  <Marker>AAEAAYm9i</Marker>
</ListUsersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListUsersResponse>"#
        ));
        let (users, marker) = users_page(doc.result()).unwrap();
        assert_eq!(users.iter().map(|u| u.user_name.as_str()).collect::<Vec<_>>(), ["Andrew", "Jackie"]);
        assert!(users[0].password_last_used.is_some());
        assert_eq!(marker.as_deref(), Some("AAEAAYm9i"));

        let empty = result("<ListUsersResponse><ListUsersResult><Users/><IsTruncated>false</IsTruncated></ListUsersResult></ListUsersResponse>");
        let (users, marker) = users_page(empty.result()).unwrap();
        assert!(users.is_empty());
        assert_eq!(marker, None);
    }

    #[test]
    fn a_user_without_a_name_is_a_decode_error() {
        let doc = result("<GetUserResponse><GetUserResult><User><Arn>a</Arn></User></GetUserResult></GetUserResponse>");
        assert!(matches!(user_result(doc.result()), Err(ClientError::Decode(_))));
        let doc = result("<GetUserResponse><GetUserResult/></GetUserResponse>");
        assert!(matches!(user_result(doc.result()), Err(ClientError::Decode(_))));
    }

    #[test]
    fn new_access_key_keeps_its_secret_out_of_debug() {
        let doc = result(&format!(
            r#"<CreateAccessKeyResponse xmlns="{NS}"><CreateAccessKeyResult><AccessKey>
  <UserName>Bob</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status>
  <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
  <CreateDate>2026-11-23T10:00:00Z</CreateDate>
</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"#
        ));
        let key = new_access_key_result(doc.result()).unwrap();
        assert_eq!(key.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(key.secret_access_key.expose(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
        assert_eq!(key.status, "Active");
        assert!(!format!("{key:?}").contains("wJalr"));
        let json = serde_json::to_value(&key).unwrap();
        assert_eq!(json["SecretAccessKey"], "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    }

    #[test]
    fn list_access_keys() {
        let doc = result(&format!(
            r#"<ListAccessKeysResponse xmlns="{NS}"><ListAccessKeysResult>
  <UserName>Bob</UserName>
  <AccessKeyMetadata>
    <member><UserName>Bob</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>
    <member><UserName>Bob</UserName><AccessKeyId>AKIAI44QH8DHBEXAMPLE</AccessKeyId><Status>Inactive</Status></member>
  </AccessKeyMetadata>
  <IsTruncated>false</IsTruncated>
</ListAccessKeysResult></ListAccessKeysResponse>"#
        ));
        let (keys, marker) = access_keys_page(doc.result()).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].status, "Inactive");
        assert_eq!(keys[1].create_date, None);
        assert_eq!(marker, None);
    }

    #[test]
    fn get_group_with_users_and_list_groups() {
        let doc = result(&format!(
            r#"<GetGroupResponse xmlns="{NS}"><GetGroupResult>
  <Group><Path>/</Path><GroupName>Admins</GroupName><GroupId>AGPACKCEVSQ6C2EXAMPLE</GroupId>
    <Arn>arn:aws:iam::123456789012:group/Admins</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></Group>
  <Users>
    <member><Path>/</Path><UserName>Bob</UserName><UserId>AIDA1</UserId><Arn>arn:aws:iam::123456789012:user/Bob</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>
    <member><Path>/</Path><UserName>Susan</UserName><UserId>AIDA2</UserId><Arn>arn:aws:iam::123456789012:user/Susan</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></member>
  </Users>
  <IsTruncated>false</IsTruncated>
</GetGroupResult></GetGroupResponse>"#
        ));
        let (group, users, marker) = group_with_users_page(doc.result()).unwrap();
        assert_eq!(group.group_name, "Admins");
        assert_eq!(group.group_id, "AGPACKCEVSQ6C2EXAMPLE");
        assert_eq!(users.iter().map(|u| u.user_name.as_str()).collect::<Vec<_>>(), ["Bob", "Susan"]);
        assert_eq!(marker, None);

        let doc = result(
            "<ListGroupsResponse><ListGroupsResult><Groups><member><Path>/ops/</Path><GroupName>Ops</GroupName><GroupId>G1</GroupId><Arn>arn:aws:iam::1:group/ops/Ops</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate></member></Groups><IsTruncated>false</IsTruncated></ListGroupsResult></ListGroupsResponse>",
        );
        let (groups, _) = groups_page(doc.result()).unwrap();
        assert_eq!(groups[0].path, "/ops/");
    }

    #[test]
    fn role_trust_policy_is_decoded() {
        let doc = result(&format!(
            r#"<GetRoleResponse xmlns="{NS}"><GetRoleResult><Role>
  <Path>/application_abc/component_xyz/</Path>
  <Arn>arn:aws:iam::123456789012:role/application_abc/component_xyz/S3Access</Arn>
  <RoleName>S3Access</RoleName>
  <AssumeRolePolicyDocument>%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%5B%22ec2.amazonaws.com%22%5D%7D%2C%22Action%22%3A%5B%22sts%3AAssumeRole%22%5D%7D%5D%7D</AssumeRolePolicyDocument>
  <CreateDate>2012-05-08T23:34:01Z</CreateDate>
  <RoleId>AROADBQP57FF2AEXAMPLE</RoleId>
  <Description>reads the bucket</Description>
  <MaxSessionDuration>3600</MaxSessionDuration>
  <Tags><member><Key>k</Key><Value>v</Value></member></Tags>
  <RoleLastUsed><LastUsedDate>2019-11-18T05:32:00Z</LastUsedDate><Region>us-east-1</Region></RoleLastUsed>
</Role></GetRoleResult></GetRoleResponse>"#
        ));
        let role = role_result(doc.result()).unwrap();
        assert_eq!(role.role_name, "S3Access");
        assert_eq!(role.max_session_duration, Some(3600));
        assert_eq!(role.description.as_deref(), Some("reads the bucket"));
        let trust: serde_json::Value =
            serde_json::from_str(role.assume_role_policy_document.as_deref().unwrap()).unwrap();
        assert_eq!(trust["Statement"][0]["Principal"]["Service"][0], "ec2.amazonaws.com");
        assert_eq!(role.tags.len(), 1);

        let doc = result(
            "<ListRolesResponse><ListRolesResult><Roles><member><Path>/</Path><RoleName>r</RoleName><RoleId>AROA1</RoleId><Arn>arn:aws:iam::1:role/r</Arn><CreateDate>2026-01-01T00:00:00Z</CreateDate><AssumeRolePolicyDocument>%7B%7D</AssumeRolePolicyDocument></member></Roles><IsTruncated>false</IsTruncated></ListRolesResult></ListRolesResponse>",
        );
        let (roles, _) = roles_page(doc.result()).unwrap();
        assert_eq!(roles[0].assume_role_policy_document.as_deref(), Some("{}"));
    }

    #[test]
    fn policies_and_versions() {
        let doc = result(&format!(
            r#"<CreatePolicyResponse xmlns="{NS}"><CreatePolicyResult><Policy>
  <PolicyName>S3-read-only-example-bucket</PolicyName>
  <DefaultVersionId>v1</DefaultVersionId>
  <PolicyId>AGPACKCEVSQ6C2EXAMPLE</PolicyId>
  <Path>/</Path>
  <Arn>arn:aws:iam::123456789012:policy/S3-read-only-example-bucket</Arn>
  <AttachmentCount>0</AttachmentCount>
  <IsAttachable>true</IsAttachable>
  <CreateDate>2014-09-15T17:36:14.673Z</CreateDate>
  <UpdateDate>2014-09-15T17:36:14.673Z</UpdateDate>
</Policy></CreatePolicyResult></CreatePolicyResponse>"#
        ));
        let policy = policy_result(doc.result()).unwrap();
        assert_eq!(policy.default_version_id, "v1");
        assert_eq!(policy.attachment_count, Some(0));
        assert_eq!(policy.is_attachable, Some(true));
        assert_eq!(policy.create_date.unwrap().millisecond(), 673);

        let doc = result(&format!(
            r#"<ListPolicyVersionsResponse xmlns="{NS}"><ListPolicyVersionsResult>
  <Versions>
    <member><IsDefaultVersion>false</IsDefaultVersion><VersionId>v3</VersionId><CreateDate>2014-09-17T22:32:43Z</CreateDate></member>
    <member><Document>%7B%22Version%22%3A%222012-10-17%22%7D</Document><IsDefaultVersion>true</IsDefaultVersion><VersionId>v2</VersionId><CreateDate>2014-09-15T20:31:47Z</CreateDate></member>
  </Versions>
  <IsTruncated>false</IsTruncated>
</ListPolicyVersionsResult></ListPolicyVersionsResponse>"#
        ));
        let (versions, _) = policy_versions_page(doc.result()).unwrap();
        assert_eq!(versions[0].version_id, "v3");
        assert!(!versions[0].is_default_version);
        assert_eq!(versions[0].document, None);
        assert_eq!(versions[1].document.as_deref(), Some(r#"{"Version":"2012-10-17"}"#));

        let doc = result(&format!(
            r#"<GetPolicyVersionResponse xmlns="{NS}"><GetPolicyVersionResult><PolicyVersion>
  <Document>%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22secretsmanager%3AGetSecretValue%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D</Document>
  <IsDefaultVersion>true</IsDefaultVersion><VersionId>v1</VersionId><CreateDate>2026-01-01T00:00:00Z</CreateDate>
</PolicyVersion></GetPolicyVersionResult></GetPolicyVersionResponse>"#
        ));
        let v = policy_version_result(doc.result()).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(v.document.as_deref().unwrap()).unwrap();
        assert_eq!(parsed["Statement"][0]["Action"], "secretsmanager:GetSecretValue");

        let doc = result(
            "<ListPoliciesResponse><ListPoliciesResult><Policies><member><PolicyName>p</PolicyName><Arn>arn:aws:iam::1:policy/p</Arn><DefaultVersionId>v2</DefaultVersionId></member></Policies><IsTruncated>true</IsTruncated><Marker>next</Marker></ListPoliciesResult></ListPoliciesResponse>",
        );
        let (policies, marker) = policies_page(doc.result()).unwrap();
        assert_eq!(policies[0].policy_name, "p");
        assert_eq!(marker.as_deref(), Some("next"));
    }

    #[test]
    fn attached_and_inline_policies() {
        let doc = result(&format!(
            r#"<ListAttachedUserPoliciesResponse xmlns="{NS}"><ListAttachedUserPoliciesResult>
  <AttachedPolicies>
    <member><PolicyName>AdministratorAccess</PolicyName><PolicyArn>arn:aws:iam::aws:policy/AdministratorAccess</PolicyArn></member>
  </AttachedPolicies>
  <IsTruncated>false</IsTruncated>
</ListAttachedUserPoliciesResult></ListAttachedUserPoliciesResponse>"#
        ));
        let (attached, _) = attached_policies_page(doc.result()).unwrap();
        assert_eq!(attached[0].policy_arn, "arn:aws:iam::aws:policy/AdministratorAccess");

        let doc = result(&format!(
            r#"<ListRolePoliciesResponse xmlns="{NS}"><ListRolePoliciesResult>
  <PolicyNames><member>CloudwatchPutMetricPolicy</member><member>S3AccessPolicy</member></PolicyNames>
  <IsTruncated>false</IsTruncated>
</ListRolePoliciesResult></ListRolePoliciesResponse>"#
        ));
        let (names, _) = policy_names_page(doc.result()).unwrap();
        assert_eq!(names, ["CloudwatchPutMetricPolicy", "S3AccessPolicy"]);

        let doc = result(&format!(
            r#"<GetGroupPolicyResponse xmlns="{NS}"><GetGroupPolicyResult>
  <GroupName>Admins</GroupName>
  <PolicyName>AdminRoot</PolicyName>
  <PolicyDocument>%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D</PolicyDocument>
</GetGroupPolicyResult></GetGroupPolicyResponse>"#
        ));
        let inline = inline_policy_result(doc.result()).unwrap();
        assert_eq!((inline.owner_field, inline.owner.as_str()), ("GroupName", "Admins"));
        assert_eq!(inline.policy_name, "AdminRoot");
        assert!(inline.policy_document.starts_with(r#"{"Version":"2012-10-17""#));
    }

    #[test]
    fn virtual_mfa_devices() {
        // The seed travels base64-encoded (a blob): base64("JBSWY3DPEHPK3PXP").
        let doc = result(&format!(
            r#"<CreateVirtualMFADeviceResponse xmlns="{NS}"><CreateVirtualMFADeviceResult><VirtualMFADevice>
  <SerialNumber>arn:aws:iam::123456789012:mfa/ExampleName</SerialNumber>
  <Base32StringSeed>SkJTV1kzRFBFSFBLM1BYUA==</Base32StringSeed>
  <QRCodePNG>iVBORw0KGgo=</QRCodePNG>
</VirtualMFADevice></CreateVirtualMFADeviceResult></CreateVirtualMFADeviceResponse>"#
        ));
        let device = virtual_mfa_device_result(doc.result()).unwrap();
        assert_eq!(device.serial_number, "arn:aws:iam::123456789012:mfa/ExampleName");
        assert_eq!(device.base32_string_seed.as_ref().map(SecretText::expose), Some("JBSWY3DPEHPK3PXP"));
        assert!(!format!("{device:?}").contains("JBSWY3DPEHPK3PXP"));
        // A seed sent as base32 text is understood too.
        let raw = result("<R><X><VirtualMFADevice><SerialNumber>s</SerialNumber><Base32StringSeed>JBSWY3DPEHPK3PXP</Base32StringSeed></VirtualMFADevice></X></R>");
        let device = virtual_mfa_device_result(raw.root().child("X").unwrap()).unwrap();
        assert_eq!(device.base32_string_seed.as_ref().map(SecretText::expose), Some("JBSWY3DPEHPK3PXP"));
        let bad = result("<R><X><VirtualMFADevice><SerialNumber>s</SerialNumber><Base32StringSeed>not a seed!</Base32StringSeed></VirtualMFADevice></X></R>");
        assert!(virtual_mfa_device_result(bad.root().child("X").unwrap()).is_err());

        let doc = result(&format!(
            r#"<ListVirtualMFADevicesResponse xmlns="{NS}"><ListVirtualMFADevicesResult>
  <IsTruncated>false</IsTruncated>
  <VirtualMFADevices>
    <member><SerialNumber>arn:aws:iam::123456789012:mfa/MFAdeviceName</SerialNumber></member>
    <member><SerialNumber>arn:aws:iam::123456789012:mfa/ExampleUserMFA</SerialNumber><EnableDate>2011-10-31T20:45:02Z</EnableDate>
      <User><Path>/</Path><UserName>ExampleUser</UserName><UserId>AIDEXAMPLE</UserId><Arn>arn:aws:iam::123456789012:user/ExampleUser</Arn><CreateDate>2011-07-01T17:23:07Z</CreateDate></User></member>
  </VirtualMFADevices>
</ListVirtualMFADevicesResult></ListVirtualMFADevicesResponse>"#
        ));
        let (devices, _) = virtual_mfa_devices_page(doc.result()).unwrap();
        assert!(devices[0].user.is_none() && devices[0].enable_date.is_none());
        assert_eq!(devices[1].user.as_ref().map(|u| u.user_name.as_str()), Some("ExampleUser"));

        let doc = result(&format!(
            r#"<ListMFADevicesResponse xmlns="{NS}"><ListMFADevicesResult>
  <IsTruncated>false</IsTruncated>
  <MFADevices><member><UserName>Bob</UserName><SerialNumber>arn:aws:iam::123456789012:mfa/Bob</SerialNumber><EnableDate>2026-01-01T00:00:00Z</EnableDate></member></MFADevices>
</ListMFADevicesResult></ListMFADevicesResponse>"#
        ));
        let (devices, _) = mfa_devices_page(doc.result()).unwrap();
        assert_eq!(devices[0].user_name, "Bob");
        assert!(devices[0].enable_date.is_some());
    }

    #[test]
    fn simulation_results_with_nested_lists_and_maps() {
        let doc = result(&format!(
            r#"<SimulatePrincipalPolicyResponse xmlns="{NS}"><SimulatePrincipalPolicyResult>
  <IsTruncated>false</IsTruncated>
  <EvaluationResults>
    <member>
      <EvalActionName>secretsmanager:GetSecretValue</EvalActionName>
      <EvalResourceName>arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf</EvalResourceName>
      <EvalDecision>allowed</EvalDecision>
      <MatchedStatements>
        <member>
          <SourcePolicyId>read-secrets</SourcePolicyId>
          <SourcePolicyType>IAM Policy</SourcePolicyType>
          <StartPosition><Line>1</Line><Column>39</Column></StartPosition>
          <EndPosition><Line>1</Line><Column>155</Column></EndPosition>
        </member>
      </MatchedStatements>
      <MissingContextValues/>
      <EvalDecisionDetails><entry><key>IAM Policy</key><value>allowed</value></entry></EvalDecisionDetails>
      <PermissionsBoundaryDecisionDetail><AllowedByPermissionsBoundary>true</AllowedByPermissionsBoundary></PermissionsBoundaryDecisionDetail>
      <ResourceSpecificResults>
        <member>
          <EvalResourceName>arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf</EvalResourceName>
          <EvalResourceDecision>allowed</EvalResourceDecision>
          <MatchedStatements><member><SourcePolicyId>read-secrets</SourcePolicyId></member></MatchedStatements>
          <MissingContextValues><member>aws:SourceIp</member></MissingContextValues>
        </member>
      </ResourceSpecificResults>
    </member>
    <member>
      <EvalActionName>secretsmanager:DeleteSecret</EvalActionName>
      <EvalResourceName>*</EvalResourceName>
      <EvalDecision>implicitDeny</EvalDecision>
      <MatchedStatements/>
      <MissingContextValues><member>aws:MultiFactorAuthPresent</member><member>aws:CurrentTime</member></MissingContextValues>
    </member>
  </EvaluationResults>
</SimulatePrincipalPolicyResult></SimulatePrincipalPolicyResponse>"#
        ));
        let (results, marker) = evaluation_results_page(doc.result()).unwrap();
        assert_eq!(marker, None);
        assert_eq!(results.len(), 2);
        let allowed = &results[0];
        assert_eq!(allowed.eval_decision, "allowed");
        assert_eq!(allowed.matched_statements[0].source_policy_id.as_deref(), Some("read-secrets"));
        assert_eq!(allowed.matched_statements[0].start_position, Some(Position { line: 1, column: 39 }));
        assert_eq!(allowed.eval_decision_details.get("IAM Policy").map(String::as_str), Some("allowed"));
        assert_eq!(allowed.allowed_by_permissions_boundary, Some(true));
        assert_eq!(allowed.resource_specific_results[0].missing_context_values, ["aws:SourceIp"]);
        assert_eq!(allowed.resource_specific_results[0].matched_statements.len(), 1);
        let denied = &results[1];
        assert_eq!(denied.eval_decision, "implicitDeny");
        assert!(denied.matched_statements.is_empty());
        assert_eq!(denied.missing_context_values, ["aws:MultiFactorAuthPresent", "aws:CurrentTime"]);
        let json = serde_json::to_value(&results).unwrap();
        assert_eq!(json[0]["MatchedStatements"][0]["StartPosition"]["Column"], 39);
    }
}
