//! The IAM API: users, access keys, groups, roles, managed and inline policies, virtual MFA devices.
//! Every change is a compare-and-swap of the entities it touches (one atomic batch), decided on the
//! node's compiled copy and retried on a lost race; reads answer from the copy.

use std::collections::BTreeMap;

use coffer_crypto::SecretBytes;
use coffer_policy::{Policy, PolicyKind, SizeLimit};
use coffer_store::{AccessKeyRecord, IamEntityRecord, IamKind, IamWrite, StoreError, Tag};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::authz::Access;
use super::model::*;
use super::snapshot::IamSnapshot;
use crate::context::{PrincipalKind, RequestContext};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::Service;

/// How often a change is re-decided after losing a race before giving up.
const MAX_ATTEMPTS: usize = 8;

/// A user as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub arn: String,
    pub user_id: String,
    pub path: String,
    pub created: i64,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub arn: String,
    pub group_id: String,
    pub path: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub arn: String,
    pub role_id: String,
    pub path: String,
    pub created: i64,
    pub trust_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub name: String,
    pub arn: String,
    pub policy_id: String,
    pub path: String,
    pub default_version: String,
    pub attachment_count: usize,
    pub created: i64,
    pub updated: i64,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionInfo {
    pub version_id: String,
    pub document: String,
    pub is_default: bool,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub access_key_id: String,
    pub user_name: String,
    pub status: String,
    pub created: i64,
}

/// A new access key: its secret is shown this once.
#[derive(Debug)]
pub struct CreatedAccessKey {
    pub info: AccessKeyInfo,
    pub secret_access_key: SecretBytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDeviceInfo {
    pub serial: String,
    pub user: Option<String>,
    pub enabled: Option<i64>,
}

/// A new virtual MFA device: its seed (base32) is shown this once, for the authenticator app.
#[derive(Debug)]
pub struct CreatedMfaDevice {
    pub serial: String,
    pub base32_seed: SecretBytes,
    /// `otpauth://totp/…` for a QR code.
    pub otpauth_uri: SecretBytes,
}

/// What policies attach to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    User(String),
    Group(String),
    Role(String),
}

impl PolicyTarget {
    fn kind(&self) -> IamKind {
        match self {
            PolicyTarget::User(_) => IamKind::User,
            PolicyTarget::Group(_) => IamKind::Group,
            PolicyTarget::Role(_) => IamKind::Role,
        }
    }

    fn name(&self) -> &str {
        match self {
            PolicyTarget::User(n) | PolicyTarget::Group(n) | PolicyTarget::Role(n) => n,
        }
    }

    /// The word IAM's action names use: `iam:AttachUserPolicy`, `iam:PutRolePolicy`, …
    fn word(&self) -> &'static str {
        match self {
            PolicyTarget::User(_) => "User",
            PolicyTarget::Group(_) => "Group",
            PolicyTarget::Role(_) => "Role",
        }
    }

    /// Inline policy size limits (non-white-space characters), as IAM's quotas.
    fn inline_limit(&self) -> usize {
        match self {
            PolicyTarget::User(_) => 2_048,
            PolicyTarget::Group(_) => 5_120,
            PolicyTarget::Role(_) => 10_240,
        }
    }
}

/// The stored documents that carry policies.
trait Entity: Serialize + DeserializeOwned + Clone {
    const KIND: IamKind;
    /// The entity's document and revision in a snapshot.
    fn find<'s>(snap: &'s IamSnapshot, name: &str) -> Option<(&'s Self, u64)>;
    fn not_found(name: &str) -> ServiceError;
}

impl Entity for UserDoc {
    const KIND: IamKind = IamKind::User;
    fn find<'s>(snap: &'s IamSnapshot, name: &str) -> Option<(&'s Self, u64)> {
        snap.users.get(name).map(|e| (&e.doc, e.revision))
    }
    fn not_found(name: &str) -> ServiceError {
        ServiceError::not_found(format!("The user with name {name} cannot be found."))
    }
}

impl Entity for GroupDoc {
    const KIND: IamKind = IamKind::Group;
    fn find<'s>(snap: &'s IamSnapshot, name: &str) -> Option<(&'s Self, u64)> {
        snap.groups.get(name).map(|e| (&e.doc, e.revision))
    }
    fn not_found(name: &str) -> ServiceError {
        ServiceError::not_found(format!("The group with name {name} cannot be found."))
    }
}

impl Entity for RoleDoc {
    const KIND: IamKind = IamKind::Role;
    fn find<'s>(snap: &'s IamSnapshot, name: &str) -> Option<(&'s Self, u64)> {
        snap.roles.get(name).map(|e| (&e.doc, e.revision))
    }
    fn not_found(name: &str) -> ServiceError {
        ServiceError::not_found(format!("The role with name {name} cannot be found."))
    }
}

impl Entity for PolicyDoc {
    const KIND: IamKind = IamKind::Policy;
    fn find<'s>(snap: &'s IamSnapshot, name: &str) -> Option<(&'s Self, u64)> {
        snap.policies.values().find(|p| !p.aws_managed && p.name == name).map(|e| (&e.doc, e.revision))
    }
    fn not_found(name: &str) -> ServiceError {
        ServiceError::not_found(format!("Policy {name} was not found."))
    }
}

impl Entity for MfaDoc {
    const KIND: IamKind = IamKind::MfaDevice;
    fn find<'s>(snap: &'s IamSnapshot, name: &str) -> Option<(&'s Self, u64)> {
        snap.mfa_devices.values().find(|d| d.name == name).map(|e| (&e.doc, e.revision))
    }
    fn not_found(name: &str) -> ServiceError {
        ServiceError::not_found(format!("MFA device with name {name} cannot be found."))
    }
}

/// The inline and attached policies of users, groups and roles, edited alike.
trait HasPolicies {
    fn inline(&mut self) -> &mut BTreeMap<String, String>;
    fn attached(&mut self) -> &mut Vec<String>;
}

macro_rules! has_policies {
    ($($t:ty),*) => {$(
        impl HasPolicies for $t {
            fn inline(&mut self) -> &mut BTreeMap<String, String> {
                &mut self.inline
            }
            fn attached(&mut self) -> &mut Vec<String> {
                &mut self.attached
            }
        }
    )*};
}
has_policies!(UserDoc, GroupDoc, RoleDoc);

/// The entities that carry tags.
trait Tagged {
    fn tags_mut(&mut self) -> &mut Vec<Tag>;
}

impl Tagged for UserDoc {
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

impl Tagged for RoleDoc {
    fn tags_mut(&mut self) -> &mut Vec<Tag> {
        &mut self.tags
    }
}

fn encode<T: Serialize>(doc: &T) -> ServiceResult<Vec<u8>> {
    serde_json::to_vec(doc).map_err(|_| ServiceError::internal("an IAM record could not be encoded"))
}

fn record<T: Entity>(name: &str, doc: &T, revision: u64) -> ServiceResult<IamEntityRecord> {
    Ok(IamEntityRecord { kind: T::KIND, name: name.to_string(), document: encode(doc)?, revision })
}

fn update<T: Entity>(name: &str, doc: &T, expected_revision: u64) -> ServiceResult<IamWrite> {
    Ok(IamWrite::Update { expected_revision, record: record(name, doc, expected_revision + 1)? })
}

fn delete_conflict(m: &str) -> ServiceError {
    ServiceError::new(ErrorKind::DeleteConflict, m)
}

/// An entity with inline or attached policies cannot be deleted (IAM's DeleteConflict).
fn check_no_policies(inline: &BTreeMap<String, String>, attached: &[String]) -> ServiceResult<()> {
    if !inline.is_empty() {
        return Err(delete_conflict("Cannot delete entity, must delete policies first."));
    }
    if !attached.is_empty() {
        return Err(delete_conflict("Cannot delete entity, must detach all policies first."));
    }
    Ok(())
}

fn malformed(e: coffer_policy::PolicyError) -> ServiceError {
    ServiceError::new(ErrorKind::MalformedPolicy, e.to_string())
}

/// Checks an identity-based policy document (size first, then grammar).
fn check_identity_policy(document: &str, max_chars: usize) -> ServiceResult<()> {
    coffer_policy::check_size(document, SizeLimit { max_chars, count_whitespace: false }).map_err(malformed)?;
    Policy::parse("new", document, PolicyKind::Identity).map(drop).map_err(malformed)
}

/// Checks a role's trust policy: a resource-based policy (it names principals), at most 2,048
/// characters.
fn check_trust_policy(document: &str) -> ServiceResult<()> {
    coffer_policy::check_size(document, SizeLimit { max_chars: 2_048, count_whitespace: false }).map_err(malformed)?;
    Policy::parse("trust", document, PolicyKind::Resource).map(drop).map_err(malformed)
}

fn user_info(account: &str, name: &str, doc: &UserDoc) -> UserInfo {
    UserInfo {
        name: name.to_string(),
        arn: user_arn(account, &doc.path, name),
        user_id: doc.user_id.clone(),
        path: doc.path.clone(),
        created: doc.created,
        tags: doc.tags.clone(),
    }
}

fn role_info(account: &str, name: &str, doc: &RoleDoc) -> RoleInfo {
    RoleInfo {
        name: name.to_string(),
        arn: role_arn(account, &doc.path, name),
        role_id: doc.role_id.clone(),
        path: doc.path.clone(),
        created: doc.created,
        trust_policy: doc.trust_policy.clone(),
        description: doc.description.clone(),
        max_session_duration: doc.max_session_duration,
        tags: doc.tags.clone(),
    }
}

fn group_info(account: &str, name: &str, doc: &GroupDoc) -> GroupInfo {
    GroupInfo {
        name: name.to_string(),
        arn: group_arn(account, &doc.path, name),
        group_id: doc.group_id.clone(),
        path: doc.path.clone(),
        created: doc.created,
    }
}

fn policy_info(entry: &super::snapshot::PolicyEntry) -> PolicyInfo {
    PolicyInfo {
        name: entry.name.clone(),
        arn: entry.arn.clone(),
        policy_id: entry.doc.policy_id.clone(),
        path: entry.doc.path.clone(),
        default_version: entry.doc.default_version.clone(),
        attachment_count: entry.attachments,
        created: entry.doc.created,
        updated: entry.doc.updated,
        description: entry.doc.description.clone(),
        tags: entry.doc.tags.clone(),
    }
}

fn access_key_info(k: &AccessKeyRecord) -> AccessKeyInfo {
    AccessKeyInfo {
        access_key_id: k.access_key_id.clone(),
        user_name: k.user_name.clone(),
        status: k.status.clone(),
        created: k.created,
    }
}

fn path_or_root(path: Option<String>) -> ServiceResult<String> {
    let path = path.unwrap_or_else(|| "/".to_string());
    check_path(&path)?;
    Ok(path)
}

impl Service {
    /// The node's copy of IAM.
    pub(crate) async fn iam_snapshot(&self) -> ServiceResult<std::sync::Arc<IamSnapshot>> {
        self.iam.get(self.store.as_ref(), &self.config.account_id).await
    }

    fn account(&self) -> &str {
        &self.config.account_id
    }

    /// Authorizes an IAM action on an IAM resource.
    async fn authorize_iam(&self, ctx: &RequestContext, action: &str, resource: &str) -> ServiceResult<()> {
        self.authorize(ctx, &Access::new(action, resource)).await
    }

    /// Decides and commits a batch of IAM writes against the current copy; re-decides on a lost race.
    pub(crate) async fn commit_iam<F>(&self, ctx: &RequestContext, decide: F) -> ServiceResult<()>
    where
        F: FnMut(&IamSnapshot) -> ServiceResult<Vec<IamWrite>>,
    {
        self.commit_iam_with(Some(ctx), decide).await
    }

    /// [`commit_iam`](Self::commit_iam), carrying the request's event when `ctx` is given (a
    /// bookkeeping write, such as burning an MFA time step, carries none).
    pub(crate) async fn commit_iam_with<F>(&self, ctx: Option<&RequestContext>, mut decide: F) -> ServiceResult<()>
    where
        F: FnMut(&IamSnapshot) -> ServiceResult<Vec<IamWrite>>,
    {
        let mut snap = self.iam_snapshot().await?;
        for _ in 0..MAX_ATTEMPTS {
            let writes = decide(&snap)?;
            if writes.is_empty() {
                return Ok(());
            }
            let written = match ctx {
                Some(ctx) => {
                    self.with_change_event(ctx, serde_json::Value::Null, |event| self.store.write_iam(writes, event))
                        .await
                }
                None => self.store.write_iam(writes, None).await,
            };
            match written {
                Ok(_) => {
                    self.iam.reload(self.store.as_ref(), self.account()).await?;
                    return Ok(());
                }
                Err(StoreError::Conflict) => {
                    snap = self.iam.reload(self.store.as_ref(), self.account()).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(ErrorKind::Unavailable, "IAM is changing too fast; retry"))
    }

    /// Changes one entity's document.
    async fn mutate<T, F>(&self, ctx: &RequestContext, name: &str, mut change: F) -> ServiceResult<()>
    where
        T: Entity,
        F: FnMut(&mut T, &IamSnapshot) -> ServiceResult<()>,
    {
        self.commit_iam(ctx, |snap| {
            let (doc, revision) = T::find(snap, name).ok_or_else(|| T::not_found(name))?;
            let mut doc = doc.clone();
            change(&mut doc, snap)?;
            Ok(vec![update(name, &doc, revision)?])
        })
        .await
    }

    /// The user a request names, or the caller (an IAM user) when it names none.
    fn user_name_or_caller(&self, ctx: &RequestContext, user_name: Option<String>) -> ServiceResult<Option<String>> {
        match (user_name, &ctx.principal.kind) {
            (Some(n), _) => Ok(Some(n)),
            (None, PrincipalKind::User { name }) => Ok(Some(name.clone())),
            (None, PrincipalKind::Root) => Ok(None),
            (None, PrincipalKind::AssumedRole { .. }) => {
                Err(ServiceError::validation("Must specify userName when calling with non-User credentials"))
            }
        }
    }

    // ---- users ----

    pub async fn create_user(
        &self,
        ctx: &RequestContext,
        name: &str,
        path: Option<String>,
        tags: Vec<Tag>,
    ) -> ServiceResult<UserInfo> {
        check_entity_name("userName", name, 64)?;
        let path = path_or_root(path)?;
        check_tags(&tags)?;
        let arn = user_arn(self.account(), &path, name);
        self.authorize(ctx, &Access::new("iam:CreateUser", &arn).request_tags(&tags)).await?;
        let doc = UserDoc {
            user_id: new_unique_id("AIDA", &mut rand::rngs::OsRng),
            path,
            created: self.clock.now_millis(),
            tags,
            ..Default::default()
        };
        self.commit_iam(ctx, |snap| {
            if snap.users.contains_key(name) {
                return Err(ServiceError::already_exists(format!("User with name {name} already exists.")));
            }
            Ok(vec![IamWrite::Create(record(name, &doc, 1)?)])
        })
        .await?;
        Ok(user_info(self.account(), name, &doc))
    }

    /// GetUser: the named user, or the caller when none is named.
    pub async fn get_user(&self, ctx: &RequestContext, name: Option<String>) -> ServiceResult<UserInfo> {
        let Some(name) = self.user_name_or_caller(ctx, name)? else {
            // The root user describes itself.
            let account = self.account();
            return Ok(UserInfo {
                name: String::new(),
                arn: format!("arn:aws:iam::{account}:root"),
                user_id: account.to_string(),
                path: "/".into(),
                created: 0,
                tags: Vec::new(),
            });
        };
        let snap = self.iam_snapshot().await?;
        let arn = snap.users.get(&name).map(|u| u.arn.clone()).unwrap_or_else(|| user_arn(self.account(), "/", &name));
        self.authorize_iam(ctx, "iam:GetUser", &arn).await?;
        let u = snap.users.get(&name).ok_or_else(|| UserDoc::not_found(&name))?;
        Ok(user_info(self.account(), &name, &u.doc))
    }

    /// Every user whose path starts with `path_prefix`, ordered by name.
    pub async fn list_users(&self, ctx: &RequestContext, path_prefix: Option<&str>) -> ServiceResult<Vec<UserInfo>> {
        self.authorize_iam(ctx, "iam:ListUsers", "*").await?;
        let snap = self.iam_snapshot().await?;
        let mut out: Vec<_> = snap
            .users
            .values()
            .filter(|u| u.doc.path.starts_with(path_prefix.unwrap_or("/")))
            .map(|u| user_info(self.account(), &u.name, &u.doc))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn delete_user(&self, ctx: &RequestContext, name: &str) -> ServiceResult<()> {
        let snap = self.iam_snapshot().await?;
        let arn = snap.users.get(name).map(|u| u.arn.clone()).unwrap_or_else(|| user_arn(self.account(), "/", name));
        self.authorize_iam(ctx, "iam:DeleteUser", &arn).await?;
        if !self.store.list_access_keys(name).await?.is_empty() {
            return Err(delete_conflict("Cannot delete entity, must delete access keys first."));
        }
        self.commit_iam(ctx, |snap| {
            let (doc, revision) = UserDoc::find(snap, name).ok_or_else(|| UserDoc::not_found(name))?;
            check_no_policies(&doc.inline, &doc.attached)?;
            if !doc.groups.is_empty() {
                return Err(delete_conflict("Cannot delete entity, must remove user from all groups first."));
            }
            if snap.mfa_devices.values().any(|d| d.doc.user.as_deref() == Some(name)) {
                return Err(delete_conflict("Cannot delete entity, must delete MFA device first."));
            }
            Ok(vec![IamWrite::Delete { kind: IamKind::User, name: name.to_string(), expected_revision: revision }])
        })
        .await
    }

    pub async fn tag_user(&self, ctx: &RequestContext, name: &str, tags: Vec<Tag>) -> ServiceResult<()> {
        self.tag_entity::<UserDoc>(ctx, PolicyTarget::User(name.to_string()), tags).await
    }

    pub async fn untag_user(&self, ctx: &RequestContext, name: &str, keys: Vec<String>) -> ServiceResult<()> {
        self.untag_entity::<UserDoc>(ctx, PolicyTarget::User(name.to_string()), keys).await
    }

    /// Tag{User,Role}: adds or replaces tags, keys compared case-insensitively.
    async fn tag_entity<T: Entity + Tagged>(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
        tags: Vec<Tag>,
    ) -> ServiceResult<()> {
        check_tags(&tags)?;
        let arn = self.entity_arn(target.clone()).await?;
        let action = format!("iam:Tag{}", target.word());
        self.authorize(ctx, &Access::new(&action, &arn).request_tags(&tags)).await?;
        self.mutate::<T, _>(ctx, target.name(), |doc, _| {
            merge_tags(doc.tags_mut(), &tags);
            check_tags(doc.tags_mut())
        })
        .await
    }

    /// Untag{User,Role}.
    async fn untag_entity<T: Entity + Tagged>(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
        keys: Vec<String>,
    ) -> ServiceResult<()> {
        let arn = self.entity_arn(target.clone()).await?;
        let action = format!("iam:Untag{}", target.word());
        self.authorize(ctx, &Access::new(&action, &arn).keys("aws:TagKeys", keys.clone())).await?;
        self.mutate::<T, _>(ctx, target.name(), |doc, _| {
            doc.tags_mut().retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            Ok(())
        })
        .await
    }

    /// The ARN of a user, group or role (by name), or a plausible one when it does not exist, so that
    /// authorization comes before the not-found answer.
    async fn entity_arn(&self, target: PolicyTarget) -> ServiceResult<String> {
        let snap = self.iam_snapshot().await?;
        let account = self.account();
        Ok(match &target {
            PolicyTarget::User(n) => {
                snap.users.get(n).map(|e| e.arn.clone()).unwrap_or_else(|| user_arn(account, "/", n))
            }
            PolicyTarget::Group(n) => {
                snap.groups.get(n).map(|e| e.arn.clone()).unwrap_or_else(|| group_arn(account, "/", n))
            }
            PolicyTarget::Role(n) => {
                snap.roles.get(n).map(|e| e.arn.clone()).unwrap_or_else(|| role_arn(account, "/", n))
            }
        })
    }

    // ---- access keys ----

    /// CreateAccessKey: at most two per user. Without a user name, for the calling user.
    pub async fn create_user_access_key(
        &self,
        ctx: &RequestContext,
        user_name: Option<String>,
    ) -> ServiceResult<CreatedAccessKey> {
        let Some(user) = self.user_name_or_caller(ctx, user_name)? else {
            return Err(ServiceError::invalid_parameter(
                "Coffer's root access key is created at initialization; create IAM users for everything else.",
            ));
        };
        let arn = self.entity_arn(PolicyTarget::User(user.clone())).await?;
        self.authorize_iam(ctx, "iam:CreateAccessKey", &arn).await?;
        let snap = self.iam_snapshot().await?;
        let (doc, _) = UserDoc::find(&snap, &user).ok_or_else(|| UserDoc::not_found(&user))?;
        if self.store.list_access_keys(&user).await?.len() >= MAX_ACCESS_KEYS_PER_USER {
            return Err(ServiceError::new(
                ErrorKind::LimitExceeded,
                format!("Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"),
            ));
        }
        let user_arn = user_arn(self.account(), &doc.path, &user);
        let (record, secret) = self.new_access_key_record(&user_arn, &user)?;
        let info = access_key_info(&record);
        let response = serde_json::json!({ "accessKey": { "accessKeyId": info.access_key_id, "userName": user } });
        let write = vec![IamWrite::InsertAccessKey(record)];
        self.with_change_event(ctx, response, |event| self.store.write_iam(write, event)).await.map_err(
            |e| match e {
                StoreError::AlreadyExists => ServiceError::internal("access key id collision; retry"),
                e => e.into(),
            },
        )?;
        self.iam.reload(self.store.as_ref(), self.account()).await?;
        Ok(CreatedAccessKey { info, secret_access_key: secret })
    }

    pub async fn list_user_access_keys(
        &self,
        ctx: &RequestContext,
        user_name: Option<String>,
    ) -> ServiceResult<Vec<AccessKeyInfo>> {
        let user = self.user_name_or_caller(ctx, user_name)?.unwrap_or_else(|| "root".to_string());
        let arn = self.entity_arn(PolicyTarget::User(user.clone())).await?;
        self.authorize_iam(ctx, "iam:ListAccessKeys", &arn).await?;
        if user != "root" && !self.iam_snapshot().await?.users.contains_key(&user) {
            return Err(UserDoc::not_found(&user));
        }
        Ok(self.store.list_access_keys(&user).await?.iter().map(access_key_info).collect())
    }

    /// The key, checked to belong to the user.
    async fn user_key(&self, user: &str, access_key_id: &str) -> ServiceResult<AccessKeyRecord> {
        match self.store.get_access_key(access_key_id).await? {
            Some(k) if k.user_name == user => Ok(k),
            _ => Err(ServiceError::not_found(format!("The Access Key with id {access_key_id} cannot be found."))),
        }
    }

    pub async fn update_user_access_key(
        &self,
        ctx: &RequestContext,
        user_name: Option<String>,
        access_key_id: &str,
        status: &str,
    ) -> ServiceResult<()> {
        if status != "Active" && status != "Inactive" {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            )));
        }
        let user = self.user_name_or_caller(ctx, user_name)?.unwrap_or_else(|| "root".to_string());
        let arn = self.entity_arn(PolicyTarget::User(user.clone())).await?;
        self.authorize_iam(ctx, "iam:UpdateAccessKey", &arn).await?;
        self.user_key(&user, access_key_id).await?;
        let write =
            vec![IamWrite::AccessKeyStatus { access_key_id: access_key_id.to_string(), status: status.to_string() }];
        self.with_change_event(ctx, serde_json::Value::Null, |event| self.store.write_iam(write, event)).await?;
        self.iam.reload(self.store.as_ref(), self.account()).await?;
        self.forget_credential(access_key_id);
        Ok(())
    }

    pub async fn delete_user_access_key(
        &self,
        ctx: &RequestContext,
        user_name: Option<String>,
        access_key_id: &str,
    ) -> ServiceResult<()> {
        let user = self.user_name_or_caller(ctx, user_name)?.unwrap_or_else(|| "root".to_string());
        let arn = self.entity_arn(PolicyTarget::User(user.clone())).await?;
        self.authorize_iam(ctx, "iam:DeleteAccessKey", &arn).await?;
        let key = self.user_key(&user, access_key_id).await?;
        if key.principal_arn.ends_with(":root") {
            return Err(ServiceError::invalid_parameter("The root access key cannot be deleted."));
        }
        let write = vec![IamWrite::DeleteAccessKey { access_key_id: access_key_id.to_string() }];
        self.with_change_event(ctx, serde_json::Value::Null, |event| self.store.write_iam(write, event)).await?;
        self.iam.reload(self.store.as_ref(), self.account()).await?;
        self.forget_credential(access_key_id);
        Ok(())
    }

    // ---- groups ----

    pub async fn create_group(
        &self,
        ctx: &RequestContext,
        name: &str,
        path: Option<String>,
    ) -> ServiceResult<GroupInfo> {
        check_entity_name("groupName", name, 128)?;
        let path = path_or_root(path)?;
        let arn = group_arn(self.account(), &path, name);
        self.authorize_iam(ctx, "iam:CreateGroup", &arn).await?;
        let doc = GroupDoc {
            group_id: new_unique_id("AGPA", &mut rand::rngs::OsRng),
            path,
            created: self.clock.now_millis(),
            ..Default::default()
        };
        self.commit_iam(ctx, |snap| {
            if snap.groups.contains_key(name) {
                return Err(ServiceError::already_exists(format!("Group with name {name} already exists.")));
            }
            Ok(vec![IamWrite::Create(record(name, &doc, 1)?)])
        })
        .await?;
        Ok(group_info(self.account(), name, &doc))
    }

    /// GetGroup: the group and its members.
    pub async fn get_group(&self, ctx: &RequestContext, name: &str) -> ServiceResult<(GroupInfo, Vec<UserInfo>)> {
        let arn = self.entity_arn(PolicyTarget::Group(name.to_string())).await?;
        self.authorize_iam(ctx, "iam:GetGroup", &arn).await?;
        let snap = self.iam_snapshot().await?;
        let g = snap.groups.get(name).ok_or_else(|| GroupDoc::not_found(name))?;
        let mut members: Vec<_> = snap
            .users
            .values()
            .filter(|u| u.doc.groups.iter().any(|x| x == name))
            .map(|u| user_info(self.account(), &u.name, &u.doc))
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((group_info(self.account(), name, &g.doc), members))
    }

    pub async fn list_groups(&self, ctx: &RequestContext, path_prefix: Option<&str>) -> ServiceResult<Vec<GroupInfo>> {
        self.authorize_iam(ctx, "iam:ListGroups", "*").await?;
        let snap = self.iam_snapshot().await?;
        let mut out: Vec<_> = snap
            .groups
            .values()
            .filter(|g| g.doc.path.starts_with(path_prefix.unwrap_or("/")))
            .map(|g| group_info(self.account(), &g.name, &g.doc))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn list_groups_for_user(&self, ctx: &RequestContext, user: &str) -> ServiceResult<Vec<GroupInfo>> {
        let arn = self.entity_arn(PolicyTarget::User(user.to_string())).await?;
        self.authorize_iam(ctx, "iam:ListGroupsForUser", &arn).await?;
        let snap = self.iam_snapshot().await?;
        let u = snap.users.get(user).ok_or_else(|| UserDoc::not_found(user))?;
        Ok(u.doc
            .groups
            .iter()
            .filter_map(|g| snap.groups.get(g))
            .map(|g| group_info(self.account(), &g.name, &g.doc))
            .collect())
    }

    pub async fn delete_group(&self, ctx: &RequestContext, name: &str) -> ServiceResult<()> {
        let arn = self.entity_arn(PolicyTarget::Group(name.to_string())).await?;
        self.authorize_iam(ctx, "iam:DeleteGroup", &arn).await?;
        self.commit_iam(ctx, |snap| {
            let (doc, revision) = GroupDoc::find(snap, name).ok_or_else(|| GroupDoc::not_found(name))?;
            if snap.users.values().any(|u| u.doc.groups.iter().any(|g| g == name)) {
                return Err(delete_conflict("Cannot delete entity, must remove users from group first."));
            }
            check_no_policies(&doc.inline, &doc.attached)?;
            Ok(vec![IamWrite::Delete { kind: IamKind::Group, name: name.to_string(), expected_revision: revision }])
        })
        .await
    }

    pub async fn add_user_to_group(&self, ctx: &RequestContext, group: &str, user: &str) -> ServiceResult<()> {
        let arn = self.entity_arn(PolicyTarget::Group(group.to_string())).await?;
        self.authorize_iam(ctx, "iam:AddUserToGroup", &arn).await?;
        self.mutate::<UserDoc, _>(ctx, user, |doc, snap| {
            if !snap.groups.contains_key(group) {
                return Err(GroupDoc::not_found(group));
            }
            if !doc.groups.iter().any(|g| g == group) {
                doc.groups.push(group.to_string());
            }
            Ok(())
        })
        .await
    }

    pub async fn remove_user_from_group(&self, ctx: &RequestContext, group: &str, user: &str) -> ServiceResult<()> {
        let arn = self.entity_arn(PolicyTarget::Group(group.to_string())).await?;
        self.authorize_iam(ctx, "iam:RemoveUserFromGroup", &arn).await?;
        self.mutate::<UserDoc, _>(ctx, user, |doc, snap| {
            if !snap.groups.contains_key(group) {
                return Err(GroupDoc::not_found(group));
            }
            let before = doc.groups.len();
            doc.groups.retain(|g| g != group);
            if doc.groups.len() == before {
                return Err(ServiceError::not_found(format!("User {user} is not in group {group}.")));
            }
            Ok(())
        })
        .await
    }

    // ---- roles ----

    #[allow(clippy::too_many_arguments)]
    pub async fn create_role(
        &self,
        ctx: &RequestContext,
        name: &str,
        path: Option<String>,
        trust_policy: &str,
        description: Option<String>,
        max_session_duration: Option<i64>,
        tags: Vec<Tag>,
    ) -> ServiceResult<RoleInfo> {
        check_entity_name("roleName", name, 64)?;
        let path = path_or_root(path)?;
        check_tags(&tags)?;
        let max_session_duration = max_session_duration.unwrap_or(3600);
        if !(3600..=43_200).contains(&max_session_duration) {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{max_session_duration}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
            )));
        }
        if description.as_ref().is_some_and(|d| d.chars().count() > 1000) {
            return Err(ServiceError::validation("The description must be at most 1000 characters."));
        }
        check_trust_policy(trust_policy)?;
        let arn = role_arn(self.account(), &path, name);
        self.authorize(ctx, &Access::new("iam:CreateRole", &arn).request_tags(&tags)).await?;
        let doc = RoleDoc {
            role_id: new_unique_id("AROA", &mut rand::rngs::OsRng),
            path,
            created: self.clock.now_millis(),
            trust_policy: trust_policy.to_string(),
            description,
            max_session_duration,
            tags,
            ..Default::default()
        };
        self.commit_iam(ctx, |snap| {
            if snap.roles.contains_key(name) {
                return Err(ServiceError::already_exists(format!("Role with name {name} already exists.")));
            }
            Ok(vec![IamWrite::Create(record(name, &doc, 1)?)])
        })
        .await?;
        Ok(role_info(self.account(), name, &doc))
    }

    pub async fn get_role(&self, ctx: &RequestContext, name: &str) -> ServiceResult<RoleInfo> {
        let arn = self.entity_arn(PolicyTarget::Role(name.to_string())).await?;
        self.authorize_iam(ctx, "iam:GetRole", &arn).await?;
        let snap = self.iam_snapshot().await?;
        let r = snap.roles.get(name).ok_or_else(|| RoleDoc::not_found(name))?;
        Ok(role_info(self.account(), name, &r.doc))
    }

    pub async fn list_roles(&self, ctx: &RequestContext, path_prefix: Option<&str>) -> ServiceResult<Vec<RoleInfo>> {
        self.authorize_iam(ctx, "iam:ListRoles", "*").await?;
        let snap = self.iam_snapshot().await?;
        let mut out: Vec<_> = snap
            .roles
            .values()
            .filter(|r| r.doc.path.starts_with(path_prefix.unwrap_or("/")))
            .map(|r| role_info(self.account(), &r.name, &r.doc))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn delete_role(&self, ctx: &RequestContext, name: &str) -> ServiceResult<()> {
        let arn = self.entity_arn(PolicyTarget::Role(name.to_string())).await?;
        self.authorize_iam(ctx, "iam:DeleteRole", &arn).await?;
        self.commit_iam(ctx, |snap| {
            let (doc, revision) = RoleDoc::find(snap, name).ok_or_else(|| RoleDoc::not_found(name))?;
            check_no_policies(&doc.inline, &doc.attached)?;
            Ok(vec![IamWrite::Delete { kind: IamKind::Role, name: name.to_string(), expected_revision: revision }])
        })
        .await
    }

    pub async fn tag_role(&self, ctx: &RequestContext, name: &str, tags: Vec<Tag>) -> ServiceResult<()> {
        self.tag_entity::<RoleDoc>(ctx, PolicyTarget::Role(name.to_string()), tags).await
    }

    pub async fn untag_role(&self, ctx: &RequestContext, name: &str, keys: Vec<String>) -> ServiceResult<()> {
        self.untag_entity::<RoleDoc>(ctx, PolicyTarget::Role(name.to_string()), keys).await
    }

    pub async fn update_assume_role_policy(
        &self,
        ctx: &RequestContext,
        name: &str,
        document: &str,
    ) -> ServiceResult<()> {
        let arn = self.entity_arn(PolicyTarget::Role(name.to_string())).await?;
        self.authorize_iam(ctx, "iam:UpdateAssumeRolePolicy", &arn).await?;
        check_trust_policy(document)?;
        self.mutate::<RoleDoc, _>(ctx, name, |doc, _| {
            doc.trust_policy = document.to_string();
            Ok(())
        })
        .await
    }

    // ---- managed policies ----

    pub async fn create_policy(
        &self,
        ctx: &RequestContext,
        name: &str,
        path: Option<String>,
        document: &str,
        description: Option<String>,
        tags: Vec<Tag>,
    ) -> ServiceResult<PolicyInfo> {
        check_entity_name("policyName", name, 128)?;
        let path = path_or_root(path)?;
        check_tags(&tags)?;
        let arn = policy_arn(self.account(), &path, name);
        self.authorize(ctx, &Access::new("iam:CreatePolicy", &arn).request_tags(&tags)).await?;
        check_identity_policy(document, SizeLimit::IDENTITY.max_chars)?;
        let now = self.clock.now_millis();
        let doc = PolicyDoc {
            policy_id: new_unique_id("ANPA", &mut rand::rngs::OsRng),
            path,
            created: now,
            updated: now,
            description,
            default_version: "v1".into(),
            next_version: 2,
            versions: vec![PolicyVersionDoc { version_id: "v1".into(), document: document.to_string(), created: now }],
            tags,
        };
        self.commit_iam(ctx, |snap| {
            if PolicyDoc::find(snap, name).is_some() {
                return Err(ServiceError::already_exists(format!(
                    "A policy called {name} already exists. Duplicate names are not allowed."
                )));
            }
            Ok(vec![IamWrite::Create(record(name, &doc, 1)?)])
        })
        .await?;
        let snap = self.iam_snapshot().await?;
        let entry = snap.policies.get(&arn).ok_or_else(|| PolicyDoc::not_found(&arn))?;
        Ok(policy_info(entry))
    }

    /// The customer-managed policy an ARN names: its name, or NoSuchEntity.
    fn local_policy_name(snap: &IamSnapshot, arn: &str) -> ServiceResult<String> {
        match snap.policies.get(arn) {
            Some(p) if !p.aws_managed => Ok(p.name.clone()),
            Some(_) => Err(ServiceError::invalid_parameter(format!(
                "Policy {arn} is an AWS managed policy and cannot be changed."
            ))),
            None => Err(ServiceError::not_found(format!("Policy {arn} does not exist or is not attachable."))),
        }
    }

    pub async fn get_policy(&self, ctx: &RequestContext, arn: &str) -> ServiceResult<PolicyInfo> {
        self.authorize_iam(ctx, "iam:GetPolicy", arn).await?;
        let snap = self.iam_snapshot().await?;
        let entry =
            snap.policies.get(arn).ok_or_else(|| ServiceError::not_found(format!("Policy {arn} was not found.")))?;
        Ok(policy_info(entry))
    }

    /// ListPolicies: `scope` is All, AWS or Local; `only_attached` keeps those attached somewhere.
    pub async fn list_policies(
        &self,
        ctx: &RequestContext,
        scope: &str,
        only_attached: bool,
        path_prefix: Option<&str>,
    ) -> ServiceResult<Vec<PolicyInfo>> {
        self.authorize_iam(ctx, "iam:ListPolicies", "*").await?;
        let snap = self.iam_snapshot().await?;
        let mut out: Vec<_> = snap
            .policies
            .values()
            .filter(|p| match scope {
                "AWS" => p.aws_managed,
                "Local" => !p.aws_managed,
                _ => true,
            })
            .filter(|p| !only_attached || p.attachments > 0)
            .filter(|p| p.doc.path.starts_with(path_prefix.unwrap_or("/")))
            .map(policy_info)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub async fn delete_policy(&self, ctx: &RequestContext, arn: &str) -> ServiceResult<()> {
        self.authorize_iam(ctx, "iam:DeletePolicy", arn).await?;
        self.commit_iam(ctx, |snap| {
            let name = Self::local_policy_name(snap, arn)?;
            let entry = snap.policies.get(arn).ok_or_else(|| PolicyDoc::not_found(arn))?;
            if entry.attachments > 0 {
                return Err(delete_conflict("Cannot delete a policy attached to entities."));
            }
            Ok(vec![IamWrite::Delete { kind: IamKind::Policy, name, expected_revision: entry.revision }])
        })
        .await
    }

    pub async fn create_policy_version(
        &self,
        ctx: &RequestContext,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> ServiceResult<PolicyVersionInfo> {
        self.authorize_iam(ctx, "iam:CreatePolicyVersion", arn).await?;
        check_identity_policy(document, SizeLimit::IDENTITY.max_chars)?;
        let now = self.clock.now_millis();
        let mut created = None;
        let name = Self::local_policy_name(&*self.iam_snapshot().await?, arn)?;
        self.mutate::<PolicyDoc, _>(ctx, &name, |doc, _| {
            if doc.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(ServiceError::new(
                    ErrorKind::LimitExceeded,
                    format!("A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version."),
                ));
            }
            let version_id = format!("v{}", doc.next_version);
            doc.next_version += 1;
            doc.versions.push(PolicyVersionDoc { version_id: version_id.clone(), document: document.to_string(), created: now });
            if set_as_default {
                doc.default_version = version_id.clone();
            }
            doc.updated = now;
            created = Some(PolicyVersionInfo { version_id, document: document.to_string(), is_default: set_as_default, created: now });
            Ok(())
        })
        .await?;
        created.ok_or_else(|| ServiceError::internal("a policy version was not created"))
    }

    pub async fn get_policy_version(
        &self,
        ctx: &RequestContext,
        arn: &str,
        version_id: &str,
    ) -> ServiceResult<PolicyVersionInfo> {
        self.authorize_iam(ctx, "iam:GetPolicyVersion", arn).await?;
        let snap = self.iam_snapshot().await?;
        let entry =
            snap.policies.get(arn).ok_or_else(|| ServiceError::not_found(format!("Policy {arn} was not found.")))?;
        let v = entry.doc.versions.iter().find(|v| v.version_id == version_id).ok_or_else(|| {
            ServiceError::not_found(format!("Policy {arn} version {version_id} does not exist or is not attachable."))
        })?;
        Ok(PolicyVersionInfo {
            version_id: v.version_id.clone(),
            document: v.document.clone(),
            is_default: v.version_id == entry.doc.default_version,
            created: v.created,
        })
    }

    pub async fn list_policy_versions(&self, ctx: &RequestContext, arn: &str) -> ServiceResult<Vec<PolicyVersionInfo>> {
        self.authorize_iam(ctx, "iam:ListPolicyVersions", arn).await?;
        let snap = self.iam_snapshot().await?;
        let entry =
            snap.policies.get(arn).ok_or_else(|| ServiceError::not_found(format!("Policy {arn} was not found.")))?;
        let mut out: Vec<_> = entry
            .doc
            .versions
            .iter()
            .map(|v| PolicyVersionInfo {
                version_id: v.version_id.clone(),
                document: v.document.clone(),
                is_default: v.version_id == entry.doc.default_version,
                created: v.created,
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    pub async fn delete_policy_version(&self, ctx: &RequestContext, arn: &str, version_id: &str) -> ServiceResult<()> {
        self.authorize_iam(ctx, "iam:DeletePolicyVersion", arn).await?;
        let name = Self::local_policy_name(&*self.iam_snapshot().await?, arn)?;
        self.mutate::<PolicyDoc, _>(ctx, &name, |doc, _| {
            if doc.default_version == version_id {
                return Err(delete_conflict("Cannot delete the default version of a policy."));
            }
            let before = doc.versions.len();
            doc.versions.retain(|v| v.version_id != version_id);
            if doc.versions.len() == before {
                return Err(ServiceError::not_found(format!("Policy {arn} version {version_id} does not exist.")));
            }
            Ok(())
        })
        .await
    }

    pub async fn set_default_policy_version(
        &self,
        ctx: &RequestContext,
        arn: &str,
        version_id: &str,
    ) -> ServiceResult<()> {
        self.authorize_iam(ctx, "iam:SetDefaultPolicyVersion", arn).await?;
        let name = Self::local_policy_name(&*self.iam_snapshot().await?, arn)?;
        let now = self.clock.now_millis();
        self.mutate::<PolicyDoc, _>(ctx, &name, |doc, _| {
            if !doc.versions.iter().any(|v| v.version_id == version_id) {
                return Err(ServiceError::not_found(format!("Policy {arn} version {version_id} does not exist.")));
            }
            doc.default_version = version_id.to_string();
            doc.updated = now;
            Ok(())
        })
        .await
    }

    // ---- attaching and inline policies ----

    async fn edit_policies<F>(&self, ctx: &RequestContext, target: &PolicyTarget, change: F) -> ServiceResult<()>
    where
        F: Fn(&mut dyn HasPolicies, &IamSnapshot) -> ServiceResult<()>,
    {
        match target {
            PolicyTarget::User(n) => self.mutate::<UserDoc, _>(ctx, n, |d, s| change(d, s)).await,
            PolicyTarget::Group(n) => self.mutate::<GroupDoc, _>(ctx, n, |d, s| change(d, s)).await,
            PolicyTarget::Role(n) => self.mutate::<RoleDoc, _>(ctx, n, |d, s| change(d, s)).await,
        }
    }

    /// Attach{User,Group,Role}Policy.
    pub async fn attach_policy(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
        policy_arn: &str,
    ) -> ServiceResult<()> {
        let arn = self.entity_arn(target.clone()).await?;
        let action = format!("iam:Attach{}Policy", target.word());
        self.authorize(ctx, &Access::new(&action, &arn).key("iam:PolicyARN", policy_arn)).await?;
        let kind = target.kind();
        self.edit_policies(ctx, &target, |doc, snap| {
            if !snap.policies.contains_key(policy_arn) {
                return Err(ServiceError::not_found(format!(
                    "Policy {policy_arn} does not exist or is not attachable."
                )));
            }
            let attached = doc.attached();
            if !attached.iter().any(|a| a == policy_arn) {
                if attached.len() >= MAX_ATTACHED_POLICIES {
                    let word = match kind {
                        IamKind::Group => "PoliciesPerGroup",
                        IamKind::Role => "PoliciesPerRole",
                        _ => "PoliciesPerUser",
                    };
                    return Err(ServiceError::new(
                        ErrorKind::LimitExceeded,
                        format!("Cannot exceed quota for {word}: {MAX_ATTACHED_POLICIES}"),
                    ));
                }
                attached.push(policy_arn.to_string());
            }
            Ok(())
        })
        .await
    }

    /// Detach{User,Group,Role}Policy.
    pub async fn detach_policy(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
        policy_arn: &str,
    ) -> ServiceResult<()> {
        let arn = self.entity_arn(target.clone()).await?;
        let action = format!("iam:Detach{}Policy", target.word());
        self.authorize(ctx, &Access::new(&action, &arn).key("iam:PolicyARN", policy_arn)).await?;
        self.edit_policies(ctx, &target, |doc, _| {
            let attached = doc.attached();
            let before = attached.len();
            attached.retain(|a| a != policy_arn);
            if attached.len() == before {
                return Err(ServiceError::not_found(format!("Policy {policy_arn} was not found.")));
            }
            Ok(())
        })
        .await
    }

    /// ListAttached{User,Group,Role}Policies: (name, ARN) pairs.
    pub async fn list_attached_policies(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
    ) -> ServiceResult<Vec<(String, String)>> {
        let arn = self.entity_arn(target.clone()).await?;
        self.authorize_iam(ctx, &format!("iam:ListAttached{}Policies", target.word()), &arn).await?;
        let snap = self.iam_snapshot().await?;
        let attached = match &target {
            PolicyTarget::User(n) => snap.users.get(n).map(|e| e.doc.attached.clone()),
            PolicyTarget::Group(n) => snap.groups.get(n).map(|e| e.doc.attached.clone()),
            PolicyTarget::Role(n) => snap.roles.get(n).map(|e| e.doc.attached.clone()),
        };
        let attached = attached.ok_or_else(|| not_found_target(&target))?;
        Ok(attached
            .into_iter()
            .map(|a| {
                let name = snap.policies.get(&a).map(|p| p.name.clone()).unwrap_or_default();
                (name, a)
            })
            .collect())
    }

    /// Put{User,Group,Role}Policy: adds or replaces an inline policy.
    pub async fn put_inline_policy(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
        policy_name: &str,
        document: &str,
    ) -> ServiceResult<()> {
        check_entity_name("policyName", policy_name, 128)?;
        let arn = self.entity_arn(target.clone()).await?;
        self.authorize_iam(ctx, &format!("iam:Put{}Policy", target.word()), &arn).await?;
        check_identity_policy(document, target.inline_limit())?;
        self.edit_policies(ctx, &target, |doc, _| {
            doc.inline().insert(policy_name.to_string(), document.to_string());
            Ok(())
        })
        .await
    }

    /// Get{User,Group,Role}Policy: the inline policy's document.
    pub async fn get_inline_policy(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
        policy_name: &str,
    ) -> ServiceResult<String> {
        let arn = self.entity_arn(target.clone()).await?;
        self.authorize_iam(ctx, &format!("iam:Get{}Policy", target.word()), &arn).await?;
        let inline = self.inline_policies(&target).await?;
        inline.get(policy_name).cloned().ok_or_else(|| {
            ServiceError::not_found(format!(
                "The {} policy with name {policy_name} cannot be found.",
                target.word().to_lowercase()
            ))
        })
    }

    /// List{User,Group,Role}Policies: the inline policies' names.
    pub async fn list_inline_policies(&self, ctx: &RequestContext, target: PolicyTarget) -> ServiceResult<Vec<String>> {
        let arn = self.entity_arn(target.clone()).await?;
        self.authorize_iam(ctx, &format!("iam:List{}Policies", target.word()), &arn).await?;
        Ok(self.inline_policies(&target).await?.into_keys().collect())
    }

    async fn inline_policies(&self, target: &PolicyTarget) -> ServiceResult<BTreeMap<String, String>> {
        let snap = self.iam_snapshot().await?;
        let inline = match target {
            PolicyTarget::User(n) => snap.users.get(n).map(|e| e.doc.inline.clone()),
            PolicyTarget::Group(n) => snap.groups.get(n).map(|e| e.doc.inline.clone()),
            PolicyTarget::Role(n) => snap.roles.get(n).map(|e| e.doc.inline.clone()),
        };
        inline.ok_or_else(|| not_found_target(target))
    }

    /// Delete{User,Group,Role}Policy.
    pub async fn delete_inline_policy(
        &self,
        ctx: &RequestContext,
        target: PolicyTarget,
        policy_name: &str,
    ) -> ServiceResult<()> {
        let arn = self.entity_arn(target.clone()).await?;
        self.authorize_iam(ctx, &format!("iam:Delete{}Policy", target.word()), &arn).await?;
        let word = target.word().to_lowercase();
        self.edit_policies(ctx, &target, |doc, _| {
            doc.inline().remove(policy_name).map(drop).ok_or_else(|| {
                ServiceError::not_found(format!("The {word} policy with name {policy_name} cannot be found."))
            })
        })
        .await
    }
}

fn not_found_target(target: &PolicyTarget) -> ServiceError {
    match target {
        PolicyTarget::User(n) => UserDoc::not_found(n),
        PolicyTarget::Group(n) => GroupDoc::not_found(n),
        PolicyTarget::Role(n) => RoleDoc::not_found(n),
    }
}
