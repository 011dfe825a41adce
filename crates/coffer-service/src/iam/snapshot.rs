//! The node's compiled copy of IAM: every entity parsed once, and each user's and role's effective
//! identity policies resolved (inline, attached, and through groups) when the copy is built, so that
//! authorizing a request is a map lookup and an evaluation — no parsing, no storage read.
//!
//! The copy is rebuilt whenever the store's IAM generation moves: at once after a write on this node,
//! and within [`FRESHNESS`] of a write on another node over the same database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use coffer_policy::{Policy, PolicyKind};
use coffer_store::{IamEntityRecord, IamKind, Store};

use super::model::{group_arn, mfa_arn, policy_arn, role_arn, user_arn, GroupDoc, MfaDoc, PolicyDoc, RoleDoc, UserDoc};
use crate::error::{ServiceError, ServiceResult};

/// How long a node trusts its copy before asking the store whether IAM changed.
pub const FRESHNESS: Duration = Duration::from_secs(1);

/// The AWS-managed policies Coffer knows, by name: the ones teams attach for Secrets Manager, SSM
/// and KMS work, and the broad ones.
pub const AWS_MANAGED_POLICIES: &[(&str, &str)] = &[
    ("AdministratorAccess", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
    (
        "SecretsManagerReadWrite",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","kms:DescribeKey","kms:ListAliases","kms:ListKeys","tag:GetResources"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonSSMReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:Describe*","ssm:Get*","ssm:List*"],"Resource":"*"}]}"#,
    ),
    (
        "IAMReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:GenerateCredentialReport","iam:GenerateServiceLastAccessedDetails","iam:Get*","iam:List*","iam:SimulateCustomPolicy","iam:SimulatePrincipalPolicy"],"Resource":"*"}]}"#,
    ),
    (
        "ReadOnlyAccess",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:Describe*","secretsmanager:List*","secretsmanager:GetResourcePolicy","ssm:Describe*","ssm:List*","kms:Describe*","kms:List*","kms:Get*","iam:Get*","iam:List*","sts:GetCallerIdentity"],"Resource":"*"}]}"#,
    ),
];

/// The ARN of an AWS-managed policy.
pub fn aws_managed_arn(name: &str) -> String {
    format!("arn:aws:iam::aws:policy/{name}")
}

pub struct UserEntry {
    pub name: String,
    pub arn: String,
    pub revision: u64,
    pub doc: UserDoc,
    /// Every identity-based policy that applies to the user.
    pub policies: Arc<[Arc<Policy>]>,
    /// Whether any of them reads a condition key (else authorization skips gathering them).
    pub uses_keys: bool,
}

pub struct RoleEntry {
    pub name: String,
    pub arn: String,
    pub revision: u64,
    pub doc: RoleDoc,
    pub policies: Arc<[Arc<Policy>]>,
    pub uses_keys: bool,
    pub trust: Option<Arc<Policy>>,
}

pub struct GroupEntry {
    pub name: String,
    pub arn: String,
    pub revision: u64,
    pub doc: GroupDoc,
}

pub struct PolicyEntry {
    pub name: String,
    pub arn: String,
    pub revision: u64,
    pub doc: PolicyDoc,
    /// The default version, parsed (`None` only if a stored document no longer parses).
    pub compiled: Option<Arc<Policy>>,
    /// How many users, groups and roles it is attached to.
    pub attachments: usize,
    pub aws_managed: bool,
}

pub struct MfaEntry {
    pub name: String,
    pub serial: String,
    pub revision: u64,
    pub doc: MfaDoc,
}

/// One consistent, compiled copy of IAM.
#[derive(Default)]
pub struct IamSnapshot {
    pub generation: u64,
    pub users: HashMap<String, UserEntry>,
    pub groups: HashMap<String, GroupEntry>,
    pub roles: HashMap<String, RoleEntry>,
    /// Customer-managed and AWS-managed policies, by ARN.
    pub policies: HashMap<String, PolicyEntry>,
    /// Virtual MFA devices, by serial number (their ARN).
    pub mfa_devices: HashMap<String, MfaEntry>,
}

fn decode<T: serde::de::DeserializeOwned>(record: &IamEntityRecord) -> ServiceResult<T> {
    serde_json::from_slice(&record.document).map_err(|e| {
        tracing::error!(kind = record.kind.as_str(), name = %record.name, error = %e, "an IAM record does not parse");
        ServiceError::internal("an internal error occurred")
    })
}

/// Parses a stored document; one that no longer parses (it was valid when written) is logged and
/// skipped rather than failing every request — it grants nothing.
fn compile(id: &str, document: &str, kind: PolicyKind) -> Option<Arc<Policy>> {
    match Policy::parse(id, document, kind) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(policy = %id, error = %e, "a stored policy does not parse; it grants nothing");
            None
        }
    }
}

impl IamSnapshot {
    /// Builds the compiled copy from every stored IAM entity.
    pub fn build(account: &str, generation: u64, records: &[IamEntityRecord]) -> ServiceResult<IamSnapshot> {
        let mut snap = IamSnapshot { generation, ..Default::default() };
        for (index, (name, document)) in AWS_MANAGED_POLICIES.iter().enumerate() {
            let arn = aws_managed_arn(name);
            let doc = PolicyDoc {
                policy_id: format!("ANPAAWSMANAGED{index:07}"),
                path: "/".into(),
                default_version: "v1".into(),
                next_version: 2,
                versions: vec![super::model::PolicyVersionDoc {
                    version_id: "v1".into(),
                    document: (*document).into(),
                    created: 0,
                }],
                ..Default::default()
            };
            let compiled = compile(name, document, PolicyKind::Identity);
            snap.policies.insert(
                arn.clone(),
                PolicyEntry {
                    name: (*name).into(),
                    arn,
                    revision: 0,
                    doc,
                    compiled,
                    attachments: 0,
                    aws_managed: true,
                },
            );
        }
        let mut users = Vec::new();
        let mut roles = Vec::new();
        for record in records {
            match record.kind {
                IamKind::Policy => {
                    let doc: PolicyDoc = decode(record)?;
                    let arn = policy_arn(account, &doc.path, &record.name);
                    let compiled = doc.default_document().and_then(|d| compile(&record.name, d, PolicyKind::Identity));
                    snap.policies.insert(
                        arn.clone(),
                        PolicyEntry {
                            name: record.name.clone(),
                            arn,
                            revision: record.revision,
                            doc,
                            compiled,
                            attachments: 0,
                            aws_managed: false,
                        },
                    );
                }
                IamKind::Group => {
                    let doc: GroupDoc = decode(record)?;
                    snap.groups.insert(
                        record.name.clone(),
                        GroupEntry {
                            name: record.name.clone(),
                            arn: group_arn(account, &doc.path, &record.name),
                            revision: record.revision,
                            doc,
                        },
                    );
                }
                IamKind::User => users.push((record, decode::<UserDoc>(record)?)),
                IamKind::Role => roles.push((record, decode::<RoleDoc>(record)?)),
                IamKind::MfaDevice => {
                    let doc: MfaDoc = decode(record)?;
                    let serial = mfa_arn(account, &doc.path, &record.name);
                    snap.mfa_devices.insert(
                        serial.clone(),
                        MfaEntry { name: record.name.clone(), serial, revision: record.revision, doc },
                    );
                }
            }
        }
        // Attachment counts, for GetPolicy and DeletePolicy's conflict check.
        let attached = users
            .iter()
            .flat_map(|(_, d)| d.attached.iter())
            .chain(roles.iter().flat_map(|(_, d)| d.attached.iter()))
            .chain(snap.groups.values().flat_map(|g| g.doc.attached.iter()))
            .cloned()
            .collect::<Vec<_>>();
        for arn in attached {
            if let Some(p) = snap.policies.get_mut(&arn) {
                p.attachments += 1;
            }
        }
        for (record, doc) in users {
            let mut policies = snap.inline_and_attached(&doc.inline, &doc.attached);
            for group in &doc.groups {
                if let Some(g) = snap.groups.get(group) {
                    policies.extend(snap.inline_and_attached(&g.doc.inline, &g.doc.attached));
                }
            }
            snap.users.insert(
                record.name.clone(),
                UserEntry {
                    name: record.name.clone(),
                    arn: user_arn(account, &doc.path, &record.name),
                    revision: record.revision,
                    doc,
                    uses_keys: policies.iter().any(|p| p.uses_condition_keys()),
                    policies: policies.into(),
                },
            );
        }
        for (record, doc) in roles {
            let policies = snap.inline_and_attached(&doc.inline, &doc.attached);
            let trust = compile(&format!("{}-trust", record.name), &doc.trust_policy, PolicyKind::Resource);
            snap.roles.insert(
                record.name.clone(),
                RoleEntry {
                    name: record.name.clone(),
                    arn: role_arn(account, &doc.path, &record.name),
                    revision: record.revision,
                    doc,
                    uses_keys: policies.iter().any(|p| p.uses_condition_keys()),
                    policies: policies.into(),
                    trust,
                },
            );
        }
        Ok(snap)
    }

    /// The policies of an inline map and an attachment list, compiled.
    pub(crate) fn inline_and_attached(
        &self,
        inline: &std::collections::BTreeMap<String, String>,
        attached: &[String],
    ) -> Vec<Arc<Policy>> {
        let mut out: Vec<Arc<Policy>> =
            inline.iter().filter_map(|(name, doc)| compile(name, doc, PolicyKind::Identity)).collect();
        out.extend(attached.iter().filter_map(|arn| self.policies.get(arn).and_then(|p| p.compiled.clone())));
        out
    }

    /// The user a (long-term or session) principal names.
    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }

    pub fn role(&self, name: &str) -> Option<&RoleEntry> {
        self.roles.get(name)
    }

    /// The MFA device enabled for a user, by serial number.
    pub fn user_mfa(&self, user: &str, serial: &str) -> Option<&MfaEntry> {
        self.mfa_devices.get(serial).filter(|d| d.doc.user.as_deref() == Some(user) && d.doc.enabled.is_some())
    }
}

/// The node's current snapshot, and when it was last checked against the store.
pub struct IamCache {
    current: ArcSwap<IamSnapshot>,
    /// Serializes rebuilds; readers never wait on it.
    rebuild: tokio::sync::Mutex<()>,
    /// When the copy was last known current: milliseconds since `epoch`, 0 = never.
    checked: AtomicU64,
    epoch: Instant,
    /// Set while one request checks the generation, so the others keep using the current copy.
    checking: AtomicBool,
}

impl Default for IamCache {
    fn default() -> Self {
        IamCache {
            current: ArcSwap::from_pointee(IamSnapshot::default()),
            rebuild: tokio::sync::Mutex::new(()),
            checked: AtomicU64::new(0),
            epoch: Instant::now(),
            checking: AtomicBool::new(false),
        }
    }
}

impl IamCache {
    /// The current copy, rebuilt first if it was never built or if another node changed IAM since
    /// it was last checked (at most once per [`FRESHNESS`]).
    pub async fn get(&self, store: &dyn Store, account: &str) -> ServiceResult<Arc<IamSnapshot>> {
        let last = self.checked.load(Ordering::Acquire);
        if last == 0 {
            return self.reload(store, account).await;
        }
        if self.now() >= last + FRESHNESS.as_millis() as u64 && !self.checking.swap(true, Ordering::AcqRel) {
            let result = self.check(store, account).await;
            self.checking.store(false, Ordering::Release);
            return result;
        }
        Ok(self.current.load_full())
    }

    async fn check(&self, store: &dyn Store, account: &str) -> ServiceResult<Arc<IamSnapshot>> {
        let generation = store.iam_generation().await?;
        if generation != self.current.load().generation {
            return self.reload(store, account).await;
        }
        self.mark_checked();
        Ok(self.current.load_full())
    }

    /// Milliseconds since the cache was made; at least 1 so that 0 can mean "never".
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn mark_checked(&self) {
        self.checked.store(self.now(), Ordering::Release);
    }

    /// Rebuilds from the store now (after a write on this node).
    pub async fn reload(&self, store: &dyn Store, account: &str) -> ServiceResult<Arc<IamSnapshot>> {
        let _guard = self.rebuild.lock().await;
        let (generation, records) = store.load_iam().await?;
        let current = self.current.load_full();
        if current.generation == generation && self.checked.load(Ordering::Acquire) != 0 {
            self.mark_checked();
            return Ok(current);
        }
        let snap = Arc::new(IamSnapshot::build(account, generation, &records)?);
        self.current.store(snap.clone());
        self.mark_checked();
        Ok(snap)
    }
}
