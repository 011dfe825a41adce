//! Every Secrets Manager, Parameter Store and KMS operation authorizes its caller with its AWS action
//! name and resource ARN: identity-based policies of IAM users (written straight into the store here),
//! secrets' resource policies, condition keys, existence hiding, and the KMS permissions reading and
//! writing values under customer keys need.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use coffer_crypto::SecretBytes;
use coffer_service::iam::model::UserDoc;
use coffer_service::parameters::ops::{ByPathInput, PutParameterInput};
use coffer_service::password::PasswordRules;
use coffer_service::secrets::*;
use coffer_service::{ErrorKind, RequestContext, Service, ServiceError, ServiceResult};
use coffer_store::{IamEntityRecord, IamKind, IamWrite, MemoryStore, Store, Tag};
use common::{root_ctx, ACCOUNT};

const REGION: &str = "us-east-1";

fn root() -> RequestContext {
    root_ctx(REGION)
}

fn tag(k: &str, v: &str) -> Tag {
    Tag { key: k.into(), value: v.into() }
}

/// A policy document from its statements (one object or an array).
fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":{statements}}}"#)
}

fn allow(action: &str, resource: &str) -> String {
    doc(&format!(r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#))
}

fn user_doc(name: &str, policies: &[String], tags: Vec<Tag>) -> Vec<u8> {
    let inline: BTreeMap<String, String> =
        policies.iter().enumerate().map(|(i, p)| (format!("p{i}"), p.clone())).collect();
    serde_json::to_vec(&UserDoc {
        user_id: format!("AIDA{}", name.to_ascii_uppercase()),
        path: "/".into(),
        created: common::T0,
        tags,
        inline,
        ..Default::default()
    })
    .unwrap()
}

struct World {
    s: Service,
    store: Arc<MemoryStore>,
}

impl World {
    fn new() -> World {
        let (s, store, _) = common::service();
        World { s, store }
    }

    /// Creates an IAM user with these inline policies and tags, and returns its request context.
    async fn user(&self, name: &str, policies: &[String], tags: Vec<Tag>) -> RequestContext {
        let record = IamEntityRecord {
            kind: IamKind::User,
            name: name.into(),
            document: user_doc(name, policies, tags),
            revision: 1,
        };
        self.store.write_iam(vec![IamWrite::Create(record)], None).await.unwrap();
        self.s.refresh_iam().await.unwrap();
        user_ctx(name)
    }

    /// Replaces a user's policies and tags.
    async fn update_user(&self, name: &str, policies: &[String], tags: Vec<Tag>) {
        let (_, records) = self.store.load_iam().await.unwrap();
        let current = records.iter().find(|r| r.kind == IamKind::User && r.name == name).unwrap();
        let record = IamEntityRecord {
            kind: IamKind::User,
            name: name.into(),
            document: user_doc(name, policies, tags),
            revision: current.revision + 1,
        };
        self.store
            .write_iam(vec![IamWrite::Update { expected_revision: current.revision, record }], None)
            .await
            .unwrap();
        self.s.refresh_iam().await.unwrap();
    }

    async fn secret(&self, name: &str, value: &str) -> String {
        self.secret_with(name, value, None, vec![]).await
    }

    async fn secret_with(&self, name: &str, value: &str, kms_key_id: Option<String>, tags: Vec<Tag>) -> String {
        self.s
            .create_secret(
                &root(),
                CreateSecretInput {
                    name: name.into(),
                    client_request_token: Some(token(0)),
                    value: Some(text(value)),
                    kms_key_id,
                    tags,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .arn
    }

    async fn parameter(&self, name: &str, parameter_type: &str, key_id: Option<String>) {
        self.s
            .put_parameter(
                &root(),
                PutParameterInput {
                    name: name.into(),
                    value: Some(SecretBytes::from(format!("value of {name}"))),
                    parameter_type: Some(parameter_type.into()),
                    key_id,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    async fn key(&self) -> String {
        self.s.create_key(&root(), Default::default()).await.unwrap().arn
    }

    async fn read(&self, ctx: &RequestContext, secret_id: &str) -> ServiceResult<SecretValueOutput> {
        self.s.get_secret_value(ctx, GetSecretValueInput { secret_id: secret_id.into(), ..Default::default() }).await
    }
}

fn user_ctx(name: &str) -> RequestContext {
    common::user_ctx(REGION, name)
}

fn token(n: u32) -> String {
    format!("{n:08}-0000-4000-8000-000000000000")
}

fn text(s: &str) -> SecretValue {
    SecretValue::String(SecretBytes::from(s.to_string()))
}

fn secret_arn_pattern(path: &str) -> String {
    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{path}")
}

fn parameter_arn(name: &str) -> String {
    format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{}", name.trim_start_matches('/'))
}

#[track_caller]
fn denied<T: std::fmt::Debug>(r: ServiceResult<T>) -> ServiceError {
    let e = r.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied, "{e:?}");
    e
}

fn no_allow(user: &str, action: &str, resource: &str) -> String {
    format!(
        "User: arn:aws:iam::{ACCOUNT}:user/{user} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
    )
}

// ----- Secrets Manager ----------------------------------------------------------------------------

#[tokio::test]
async fn a_dev_user_reads_dev_secrets_and_not_prod_ones() {
    let w = World::new();
    let dev_arn = w.secret("/dev/db", "dev-password").await;
    let prod_arn = w.secret("/prod/db", "prod-password").await;
    let dev = w.user("dev", &[allow("secretsmanager:GetSecretValue", &secret_arn_pattern("/dev/*"))], vec![]).await;

    for id in ["/dev/db", dev_arn.as_str()] {
        let got = w.read(&dev, id).await.unwrap();
        assert_eq!(got.value, text("dev-password"));
    }
    for id in ["/prod/db", prod_arn.as_str()] {
        let e = denied(w.read(&dev, id).await);
        // AWS's message, naming the secret's full ARN.
        assert_eq!(e.message, no_allow("dev", "secretsmanager:GetSecretValue", &prod_arn));
    }
    // Other actions on the allowed secret are not granted by GetSecretValue.
    denied(w.s.describe_secret(&dev, "/dev/db").await);
    denied(w.s.list_secrets(&dev, Default::default()).await);
}

#[tokio::test]
async fn a_caller_without_permission_does_not_learn_whether_a_secret_exists() {
    let w = World::new();
    w.secret("/prod/db", "p").await;
    let dev = w.user("dev", &[allow("secretsmanager:*", &secret_arn_pattern("/dev/*"))], vec![]).await;
    // Missing and not allowed: AccessDenied on what the caller named, exactly as for one that exists.
    let e = denied(w.read(&dev, "/prod/missing").await);
    assert_eq!(
        e.message,
        no_allow("dev", "secretsmanager:GetSecretValue", &secret_arn_pattern("/prod/missing-??????"))
    );
    denied(w.read(&dev, "/prod/db").await);
    denied(w.s.describe_secret(&dev, "/prod/missing").await);
    let named = format!("{}-AbCdEf", secret_arn_pattern("/prod/missing"));
    let e = denied(w.read(&dev, &named).await);
    assert!(e.message.contains(&format!("on resource: {named} ")), "{}", e.message);
    let force = DeleteSecretInput {
        secret_id: "/prod/missing".into(),
        force_delete_without_recovery: Some(true),
        ..Default::default()
    };
    denied(w.s.delete_secret(&dev, force).await);

    // Missing and allowed: the caller may know it is not there.
    assert_eq!(w.read(&dev, "/dev/missing").await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(w.s.describe_secret(&dev, "/dev/missing").await.unwrap_err().kind, ErrorKind::NotFound);
    let force = DeleteSecretInput {
        secret_id: "/dev/missing".into(),
        force_delete_without_recovery: Some(true),
        ..Default::default()
    };
    w.s.delete_secret(&dev, force).await.unwrap();
}

#[tokio::test]
async fn an_explicit_deny_beats_any_allow() {
    let w = World::new();
    w.secret("/dev/db", "d").await;
    let prod_arn = w.secret("/prod/db", "p").await;
    let policy = doc(&format!(
        r#"[{{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}},
            {{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"{}"}}]"#,
        secret_arn_pattern("/prod/*")
    ));
    let u = w.user("ops", &[policy], vec![]).await;
    w.read(&u, "/dev/db").await.unwrap();
    w.s.describe_secret(&u, "/prod/db").await.unwrap();
    let e = denied(w.read(&u, "/prod/db").await);
    assert_eq!(
        e.message,
        format!("User: arn:aws:iam::{ACCOUNT}:user/ops is not authorized to perform: secretsmanager:GetSecretValue on resource: {prod_arn} with an explicit deny in an identity-based policy")
    );
}

#[tokio::test]
async fn not_action_allows_everything_but_what_it_names() {
    let w = World::new();
    w.secret("/app/db", "v").await;
    let u = w
        .user(
            "almost",
            &[doc(r#"{"Effect":"Allow","NotAction":"secretsmanager:DeleteSecret","Resource":"*"}"#)],
            vec![],
        )
        .await;
    w.read(&u, "/app/db").await.unwrap();
    w.s.tag_resource(&u, "/app/db", vec![tag("team", "web")]).await.unwrap();
    let input = DeleteSecretInput { secret_id: "/app/db".into(), ..Default::default() };
    denied(w.s.delete_secret(&u, input).await);
    w.read(&root(), "/app/db").await.unwrap();
}

#[tokio::test]
async fn principal_tags_follow_the_user() {
    let w = World::new();
    w.secret("/dev/db", "d").await;
    w.secret("/prod/db", "p").await;
    // A policy variable in the resource, and the same tag as a condition.
    let by_tag = |env: &str| {
        vec![
            allow("secretsmanager:GetSecretValue", &secret_arn_pattern("/${aws:PrincipalTag/Environment}/*")),
            doc(&format!(
                r#"{{"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*",
                    "Condition":{{"StringEquals":{{"aws:PrincipalTag/Environment":"{env}"}}}}}}"#
            )),
        ]
    };
    let u = w.user("tagged", &by_tag("dev"), vec![tag("Environment", "dev")]).await;
    w.read(&u, "/dev/db").await.unwrap();
    denied(w.read(&u, "/prod/db").await);
    w.s.describe_secret(&u, "/prod/db").await.unwrap();

    // Re-tagged: the same policies now give prod, not dev.
    w.update_user("tagged", &by_tag("dev"), vec![tag("Environment", "prod")]).await;
    w.read(&u, "/prod/db").await.unwrap();
    denied(w.read(&u, "/dev/db").await);
    denied(w.s.describe_secret(&u, "/prod/db").await);
}

#[tokio::test]
async fn resource_tag_conditions_read_the_secrets_tags() {
    let w = World::new();
    w.secret_with("/backend/db", "b", None, vec![tag("Team", "backend")]).await;
    w.secret_with("/web/db", "w", None, vec![tag("Team", "web")]).await;
    let policy = doc(r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"StringEquals":{"secretsmanager:ResourceTag/Team":"backend"}}}"#);
    let u = w.user("backend", &[policy], vec![]).await;
    w.read(&u, "/backend/db").await.unwrap();
    denied(w.read(&u, "/web/db").await);
    // Re-tagging the secret (by root) moves the access with it.
    w.s.tag_resource(&root(), "/web/db", vec![tag("Team", "backend")]).await.unwrap();
    w.read(&u, "/web/db").await.unwrap();
}

#[tokio::test]
async fn request_tags_and_tag_keys_are_condition_keys() {
    let w = World::new();
    let policy = doc(r#"[{"Effect":"Allow","Action":"secretsmanager:CreateSecret","Resource":"*",
             "Condition":{"StringEquals":{"aws:RequestTag/Team":"backend"}}},
            {"Effect":"Allow","Action":["secretsmanager:TagResource","secretsmanager:UntagResource"],"Resource":"*",
             "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["Team"]}}}]"#);
    let u = w.user("tagger", &[policy], vec![]).await;
    let create = |tags: Vec<Tag>| CreateSecretInput { name: "/t/s".into(), tags, ..Default::default() };
    denied(w.s.create_secret(&u, create(vec![tag("Team", "web")])).await);
    denied(w.s.create_secret(&u, create(vec![])).await);
    w.s.create_secret(&u, create(vec![tag("Team", "backend")])).await.unwrap();
    w.s.tag_resource(&u, "/t/s", vec![tag("Team", "web")]).await.unwrap();
    denied(w.s.tag_resource(&u, "/t/s", vec![tag("Owner", "me")]).await);
    w.s.untag_resource(&u, "/t/s", vec!["Team".into()]).await.unwrap();
    denied(w.s.untag_resource(&u, "/t/s", vec!["Owner".into()]).await);
}

#[tokio::test]
async fn a_resource_policy_grants_a_user_with_no_identity_policy() {
    let w = World::new();
    let arn = w.secret("/shared/db", "s").await;
    let app = w.user("app", &[], vec![]).await;
    denied(w.read(&app, "/shared/db").await);
    let grant = doc(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/app"}},
            "Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#
    ));
    w.s.put_resource_policy(&root(), "/shared/db", &grant, true).await.unwrap();
    w.read(&app, "/shared/db").await.unwrap();
    w.read(&app, &arn).await.unwrap();
    // Only what it grants, only to whom it names.
    denied(w.s.describe_secret(&app, "/shared/db").await);
    let other = w.user("other", &[], vec![]).await;
    denied(w.read(&other, "/shared/db").await);
    // Removed: the grant is gone at once.
    w.s.delete_resource_policy(&root(), "/shared/db").await.unwrap();
    denied(w.read(&app, "/shared/db").await);
}

#[tokio::test]
async fn a_resource_policy_deny_blocks_even_root() {
    let w = World::new();
    let arn = w.secret("/locked/db", "l").await;
    let deny = doc(r#"{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#);
    w.s.put_resource_policy(&root(), "/locked/db", &deny, true).await.unwrap();
    let e = denied(w.read(&root(), "/locked/db").await);
    assert_eq!(
        e.message,
        format!("User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: secretsmanager:GetSecretValue on resource: {arn} with an explicit deny in a resource-based policy")
    );
    // Everything else still works for root, including lifting the deny.
    w.s.describe_secret(&root(), "/locked/db").await.unwrap();
    w.s.delete_resource_policy(&root(), "/locked/db").await.unwrap();
    w.read(&root(), "/locked/db").await.unwrap();
}

#[tokio::test]
async fn a_ci_cd_policy_may_do_everything_but_delete_prod() {
    let w = World::new();
    let policy = doc(r#"[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},
            {"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"arn:aws:secretsmanager:*:*:secret:*prod*"}]"#);
    let ci = w.user("ci", &[policy], vec![]).await;
    for name in ["/staging/api", "/prod/api"] {
        let input = CreateSecretInput {
            name: name.into(),
            client_request_token: Some(token(1)),
            value: Some(text("v1")),
            ..Default::default()
        };
        w.s.create_secret(&ci, input).await.unwrap();
        let put = PutSecretValueInput {
            secret_id: name.into(),
            client_request_token: Some(token(2)),
            value: Some(text("v2")),
            ..Default::default()
        };
        w.s.put_secret_value(&ci, put).await.unwrap();
        assert_eq!(w.read(&ci, name).await.unwrap().value, text("v2"));
    }
    let delete = |id: &str| DeleteSecretInput { secret_id: id.into(), ..Default::default() };
    w.s.delete_secret(&ci, delete("/staging/api")).await.unwrap();
    denied(w.s.delete_secret(&ci, delete("/prod/api")).await);
    w.s.restore_secret(&ci, "/staging/api").await.unwrap();
    w.s.get_random_password(&ci, &PasswordRules::default()).await.unwrap();
}

#[tokio::test]
async fn batch_get_lists_denied_secrets_among_its_errors() {
    let w = World::new();
    w.secret("/dev/a", "a").await;
    w.secret("/prod/b", "b").await;
    let policy = doc(&format!(
        r#"[{{"Effect":"Allow","Action":"secretsmanager:BatchGetSecretValue","Resource":"*"}},
            {{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"{}"}}]"#,
        secret_arn_pattern("/dev/*")
    ));
    let u = w.user("batch", &[policy], vec![]).await;
    let input = || BatchGetInput { secret_ids: Some(vec!["/dev/a".into(), "/prod/b".into()]), ..Default::default() };
    let out = w.s.batch_get_secret_value(&u, input()).await.unwrap();
    assert_eq!(out.values.len(), 1);
    assert_eq!(out.values[0].name, "/dev/a");
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].secret_id, "/prod/b");
    assert_eq!(out.errors[0].error.kind, ErrorKind::AccessDenied);
    // Without BatchGetSecretValue itself, nothing.
    let reader = w.user("reader", &[allow("secretsmanager:GetSecretValue", "*")], vec![]).await;
    denied(w.s.batch_get_secret_value(&reader, input()).await);
}

#[tokio::test]
async fn a_secret_under_a_customer_key_needs_kms_permissions_through_secrets_manager() {
    let w = World::new();
    let key = w.key().await;
    w.secret_with("/cmk/db", "sealed", Some(key.clone()), vec![]).await;
    w.secret("/default/db", "plain").await;
    let sm = doc(
        r#"{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:PutSecretValue"],"Resource":"*"}"#,
    );
    let u = w.user("app", std::slice::from_ref(&sm), vec![]).await;
    // The default key needs nothing more; the customer key needs kms:Decrypt on it.
    w.read(&u, "/default/db").await.unwrap();
    let e = denied(w.read(&u, "/cmk/db").await);
    assert_eq!(e.message, no_allow("app", "kms:Decrypt", &key));
    let put = || PutSecretValueInput {
        secret_id: "/cmk/db".into(),
        client_request_token: Some(token(5)),
        value: Some(text("new")),
        ..Default::default()
    };
    let e = denied(w.s.put_secret_value(&u, put()).await);
    assert!(e.message.contains("kms:GenerateDataKey"), "{}", e.message);

    // Allowed through Secrets Manager only.
    let kms = doc(&format!(
        r#"{{"Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"{key}",
            "Condition":{{"StringEquals":{{"kms:ViaService":"secretsmanager.{REGION}.amazonaws.com"}}}}}}"#
    ));
    w.update_user("app", &[sm, kms], vec![]).await;
    assert_eq!(w.read(&u, "/cmk/db").await.unwrap().value, text("sealed"));
    w.s.put_secret_value(&u, put()).await.unwrap();
    assert_eq!(w.read(&u, "/cmk/db").await.unwrap().value, text("new"));
    // ... and not directly.
    let (_, blob) =
        w.s.kms_encrypt(&root(), &key, &SecretBytes::from("x".to_string()), &BTreeMap::new()).await.unwrap();
    denied(w.s.kms_decrypt(&u, &blob, &BTreeMap::new(), None).await);
}

// ----- Parameter Store ----------------------------------------------------------------------------

#[tokio::test]
async fn ssm_get_parameter_wildcards_select_parameters() {
    let w = World::new();
    for name in ["/amplify/TWILIO_SID", "/amplify/TWILIO_TOKEN", "/amplify/OTHER"] {
        w.parameter(name, "String", None).await;
    }
    let twilio = allow("ssm:GetParameter*", &parameter_arn("/amplify/TWILIO_*"));
    let u = w.user("amplify", std::slice::from_ref(&twilio), vec![]).await;
    let got = w.s.get_parameter(&u, "/amplify/TWILIO_SID", false).await.unwrap();
    assert_eq!(got.value.expose_str().unwrap(), "value of /amplify/TWILIO_SID");
    let e = denied(w.s.get_parameter(&u, "/amplify/OTHER", false).await);
    assert_eq!(e.message, no_allow("amplify", "ssm:GetParameter", &parameter_arn("/amplify/OTHER")));
    // Missing: not found only where allowed.
    let missing = w.s.get_parameter(&u, "/amplify/TWILIO_MISSING", false).await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    denied(w.s.get_parameter(&u, "/amplify/MISSING", false).await);

    // GetParameters: every name must be allowed, or the whole call fails.
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let e = denied(w.s.get_parameters(&u, &names(&["/amplify/TWILIO_SID", "/amplify/OTHER"]), false).await);
    assert_eq!(e.message, no_allow("amplify", "ssm:GetParameters", &parameter_arn("/amplify/OTHER")));
    let (found, invalid) =
        w.s.get_parameters(&u, &names(&["/amplify/TWILIO_SID", "/amplify/TWILIO_TOKEN", "/amplify/TWILIO_X"]), false)
            .await
            .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(invalid, vec!["/amplify/TWILIO_X".to_string()]);

    // GetParametersByPath needs the path itself.
    let by_path = ByPathInput {
        path: "/amplify",
        recursive: true,
        filters: &[],
        decrypt: false,
        max_results: None,
        next_token: None,
    };
    let e = denied(w.s.get_parameters_by_path(&u, by_path).await);
    assert_eq!(e.message, no_allow("amplify", "ssm:GetParametersByPath", &parameter_arn("/amplify")));
    w.update_user("amplify", &[twilio, allow("ssm:GetParametersByPath", &parameter_arn("/amplify"))], vec![]).await;
    assert_eq!(w.s.get_parameters_by_path(&u, by_path).await.unwrap().items.len(), 3);
    // A plain name (no hierarchy) is parameter/<name>.
    w.parameter("plain", "String", None).await;
    let e = denied(w.s.get_parameter(&u, "plain", false).await);
    assert_eq!(e.message, no_allow("amplify", "ssm:GetParameter", &parameter_arn("plain")));
}

#[tokio::test]
async fn ssm_tags_and_writes_are_authorized_on_the_parameter() {
    let w = World::new();
    w.parameter("/team/a", "String", None).await;
    let policy = doc(&format!(
        r#"[{{"Effect":"Allow","Action":["ssm:PutParameter","ssm:AddTagsToResource","ssm:ListTagsForResource"],"Resource":"{}"}},
            {{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*",
              "Condition":{{"StringEquals":{{"ssm:ResourceTag/Owner":"team"}}}}}}]"#,
        parameter_arn("/team/*")
    ));
    let u = w.user("team", &[policy], vec![]).await;
    denied(w.s.get_parameter(&u, "/team/a", false).await);
    w.s.change_parameter_tags(&u, "/team/a", &[tag("Owner", "team")], &[]).await.unwrap();
    w.s.get_parameter(&u, "/team/a", false).await.unwrap();
    assert_eq!(w.s.change_parameter_tags(&u, "/team/a", &[], &[]).await.unwrap().len(), 1);
    denied(w.s.change_parameter_tags(&u, "/team/a", &[], &["Owner".to_string()]).await);
    let put = |name: &str| PutParameterInput {
        name: name.into(),
        value: Some(SecretBytes::from("v".to_string())),
        parameter_type: Some("String".into()),
        overwrite: true,
        ..Default::default()
    };
    w.s.put_parameter(&u, put("/team/b")).await.unwrap();
    denied(w.s.put_parameter(&u, put("/other/b")).await);
    denied(w.s.delete_parameter(&u, "/team/b").await);
    // DeleteParameters: one name denied, nothing deleted.
    let all = w.user("deleter", &[allow("ssm:DeleteParameters", &parameter_arn("/team/*"))], vec![]).await;
    denied(w.s.delete_parameters(&all, &["/team/b".to_string(), "/other/x".to_string()]).await);
    w.s.get_parameter(&root(), "/team/b", false).await.unwrap();
    let (deleted, invalid) =
        w.s.delete_parameters(&all, &["/team/b".to_string(), "/team/x".to_string()]).await.unwrap();
    assert_eq!((deleted.len(), invalid.len()), (1, 1));
}

#[tokio::test]
async fn secure_strings_under_a_customer_key_need_kms_decrypt_on_it() {
    let w = World::new();
    let key = w.key().await;
    w.parameter("/app/cmk", "SecureString", Some(key.clone())).await;
    w.parameter("/app/default", "SecureString", None).await;
    let ssm = allow("ssm:GetParameter*", &parameter_arn("/app/*"));
    let u = w.user("reader", std::slice::from_ref(&ssm), vec![]).await;

    // The default alias/aws/ssm key needs nothing more.
    let v = w.s.get_parameter(&u, "/app/default", true).await.unwrap();
    assert_eq!(v.value.expose_str().unwrap(), "value of /app/default");
    // The customer key does, but only to decrypt.
    let e = denied(w.s.get_parameter(&u, "/app/cmk", true).await);
    assert_eq!(e.message, no_allow("reader", "kms:Decrypt", &key));
    w.s.get_parameter(&u, "/app/cmk", false).await.unwrap();
    denied(w.s.get_parameters(&u, &["/app/cmk".to_string()], true).await);
    denied(w.s.get_parameter_history(&u, "/app/cmk", true, None, None).await);
    let by_path =
        ByPathInput { path: "/app", recursive: true, filters: &[], decrypt: true, max_results: None, next_token: None };
    let through_path = allow("ssm:GetParametersByPath", &parameter_arn("/app"));
    w.update_user("reader", &[ssm.clone(), through_path.clone()], vec![]).await;
    denied(w.s.get_parameters_by_path(&u, by_path).await);

    // kms:Decrypt through SSM on that key.
    let kms = doc(&format!(
        r#"{{"Effect":"Allow","Action":"kms:Decrypt","Resource":"{key}",
            "Condition":{{"StringEquals":{{"kms:ViaService":"ssm.{REGION}.amazonaws.com"}}}}}}"#
    ));
    w.update_user("reader", &[ssm, through_path, kms], vec![]).await;
    let v = w.s.get_parameter(&u, "/app/cmk", true).await.unwrap();
    assert_eq!(v.value.expose_str().unwrap(), "value of /app/cmk");
    assert_eq!(w.s.get_parameters_by_path(&u, by_path).await.unwrap().items.len(), 2);
    w.s.get_parameter_history(&u, "/app/cmk", true, None, None).await.unwrap();

    // Writing under the customer key needs kms:Encrypt on it.
    let writer = w.user("writer", &[allow("ssm:PutParameter", "*")], vec![]).await;
    let put = PutParameterInput {
        name: "/app/cmk2".into(),
        value: Some(SecretBytes::from("v".to_string())),
        parameter_type: Some("SecureString".into()),
        key_id: Some(key.clone()),
        ..Default::default()
    };
    let e = denied(w.s.put_parameter(&writer, put).await);
    assert_eq!(e.message, no_allow("writer", "kms:Encrypt", &key));
}

#[tokio::test]
async fn secrets_manager_references_need_both_permissions() {
    let w = World::new();
    let arn = w.secret("app/ref", "r").await;
    let name = "/aws/reference/secretsmanager/app/ref";
    let input = || GetSecretValueInput { secret_id: "app/ref".into(), ..Default::default() };
    let only_ssm = w.user("ssm", &[allow("ssm:GetParameter", "*")], vec![]).await;
    let e = denied(w.s.get_secret_reference(&only_ssm, name, input()).await);
    assert_eq!(e.message, no_allow("ssm", "secretsmanager:GetSecretValue", &arn));
    let only_sm = w.user("sm", &[allow("secretsmanager:GetSecretValue", "*")], vec![]).await;
    let e = denied(w.s.get_secret_reference(&only_sm, name, input()).await);
    assert!(e.message.contains("ssm:GetParameter on resource: arn:aws:ssm:us-east-1:123456789012:parameter/aws/reference/secretsmanager/app/ref "), "{}", e.message);
    let both =
        w.user("both", &[allow("ssm:GetParameter", "*"), allow("secretsmanager:GetSecretValue", "*")], vec![]).await;
    let (value, description) = w.s.get_secret_reference(&both, name, input()).await.unwrap();
    assert_eq!(value.value, text("r"));
    assert_eq!(description.record.arn, arn);
}

// ----- KMS ----------------------------------------------------------------------------------------

#[tokio::test]
async fn kms_operations_are_authorized_on_the_key() {
    let w = World::new();
    let a = w.key().await;
    let b = w.key().await;
    w.s.create_alias(&root(), "alias/a", &a).await.unwrap();
    let u = w.user("crypto", &[allow("kms:Encrypt", &a)], vec![]).await;
    let plain = SecretBytes::from("hello".to_string());
    let none = BTreeMap::new();
    let (arn, blob) = w.s.kms_encrypt(&u, &a, &plain, &none).await.unwrap();
    assert_eq!(arn, a);
    // Through an alias, the key's ARN decides.
    w.s.kms_encrypt(&u, "alias/a", &plain, &none).await.unwrap();
    let key_b_id = b.rsplit('/').next().unwrap();
    let e = denied(w.s.kms_encrypt(&u, key_b_id, &plain, &none).await);
    assert_eq!(e.message, no_allow("crypto", "kms:Encrypt", &b));
    // Encrypt does not give Decrypt, nor a data key.
    let e = denied(w.s.kms_decrypt(&u, &blob, &none, None).await);
    assert_eq!(e.message, no_allow("crypto", "kms:Decrypt", &a));
    denied(w.s.generate_data_key(&u, &a, 32, &none, true).await);
    // A key that does not exist: AccessDenied unless allowed on what was named.
    let missing = "11111111-2222-4333-8444-555555555555";
    let missing_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{missing}");
    let e = denied(w.s.kms_encrypt(&u, missing, &plain, &none).await);
    assert_eq!(e.message, no_allow("crypto", "kms:Encrypt", &missing_arn));
    denied(w.s.describe_key(&u, "alias/nothing").await);
    let everything = w.user("admin", &[allow("kms:*", "*")], vec![]).await;
    assert_eq!(w.s.kms_encrypt(&everything, missing, &plain, &none).await.unwrap_err().kind, ErrorKind::KmsNotFound);
    assert_eq!(w.s.describe_key(&everything, "alias/nothing").await.unwrap_err().kind, ErrorKind::KmsNotFound);
}

#[tokio::test]
async fn encryption_context_conditions() {
    let w = World::new();
    let key = w.key().await;
    let billing: BTreeMap<String, String> = [("app".to_string(), "billing".to_string())].into();
    let other: BTreeMap<String, String> = [("app".to_string(), "other".to_string())].into();
    let (_, blob) = w.s.kms_encrypt(&root(), &key, &SecretBytes::from("x".to_string()), &billing).await.unwrap();
    let policy = doc(&format!(
        r#"{{"Effect":"Allow","Action":"kms:Decrypt","Resource":"{key}",
            "Condition":{{"StringEquals":{{"kms:EncryptionContext:app":"billing"}}}}}}"#
    ));
    let u = w.user("billing", &[policy], vec![]).await;
    w.s.kms_decrypt(&u, &blob, &billing, None).await.unwrap();
    denied(w.s.kms_decrypt(&u, &blob, &other, None).await);
    denied(w.s.kms_decrypt(&u, &blob, &BTreeMap::new(), None).await);
}

#[tokio::test]
async fn alias_operations_need_the_alias_and_the_key() {
    let w = World::new();
    let key = w.key().await;
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/app");
    let on_alias = w.user("alias-only", &[allow("kms:CreateAlias", &alias_arn)], vec![]).await;
    let e = denied(w.s.create_alias(&on_alias, "alias/app", &key).await);
    assert_eq!(e.message, no_allow("alias-only", "kms:CreateAlias", &key));
    let on_key = w.user("key-only", &[allow("kms:CreateAlias", &key)], vec![]).await;
    let e = denied(w.s.create_alias(&on_key, "alias/app", &key).await);
    assert_eq!(e.message, no_allow("key-only", "kms:CreateAlias", &alias_arn));
    let both = w
        .user(
            "both",
            &[doc(&format!(
                r#"{{"Effect":"Allow","Action":["kms:CreateAlias","kms:DeleteAlias"],"Resource":["{alias_arn}","{key}"]}}"#
            ))],
            vec![],
        )
        .await;
    w.s.create_alias(&both, "alias/app", &key).await.unwrap();
    denied(w.s.delete_alias(&on_alias, "alias/app").await);
    w.s.delete_alias(&both, "alias/app").await.unwrap();
}

// ----- no policy, no access -----------------------------------------------------------------------

type Call<'a> = Pin<Box<dyn Future<Output = ServiceResult<()>> + 'a>>;

fn call<'a, T>(f: impl Future<Output = ServiceResult<T>> + 'a) -> Call<'a> {
    Box::pin(async move { f.await.map(drop) })
}

#[tokio::test]
async fn a_user_with_no_policies_is_denied_everything() {
    let w = World::new();
    let key = w.key().await;
    w.s.create_alias(&root(), "alias/k", &key).await.unwrap();
    w.secret("/s", "v").await;
    w.parameter("/p", "String", None).await;
    let (_, blob) =
        w.s.kms_encrypt(&root(), &key, &SecretBytes::from("x".to_string()), &BTreeMap::new()).await.unwrap();
    let u = w.user("nobody", &[], vec![]).await;
    let (s, u, none) = (&w.s, &u, &BTreeMap::new());
    let sid = || "/s".to_string();
    let ids = vec!["/p".to_string()];
    let policy = doc(r#"{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}"#);
    let plain = SecretBytes::from("x".to_string());
    let rules = PasswordRules::default();
    let (labels, tags, keys) = (vec!["l".to_string()], vec![tag("a", "b")], vec!["a".to_string()]);
    let path =
        ByPathInput { path: "/", recursive: true, filters: &[], decrypt: false, max_results: None, next_token: None };
    let calls: Vec<(&str, Call<'_>)> = vec![
        ("CreateSecret", call(s.create_secret(u, CreateSecretInput { name: "/new".into(), ..Default::default() }))),
        ("GetSecretValue", call(s.get_secret_value(u, GetSecretValueInput { secret_id: sid(), ..Default::default() }))),
        (
            "BatchGetSecretValue",
            call(s.batch_get_secret_value(u, BatchGetInput { secret_ids: Some(vec![sid()]), ..Default::default() })),
        ),
        (
            "PutSecretValue",
            call(s.put_secret_value(
                u,
                PutSecretValueInput {
                    secret_id: sid(),
                    client_request_token: Some(token(9)),
                    value: Some(text("x")),
                    ..Default::default()
                },
            )),
        ),
        (
            "UpdateSecret",
            call(s.update_secret(
                u,
                UpdateSecretInput { secret_id: sid(), description: Some("d".into()), ..Default::default() },
            )),
        ),
        ("DescribeSecret", call(s.describe_secret(u, "/s"))),
        ("ListSecrets", call(s.list_secrets(u, Default::default()))),
        (
            "ListSecretVersionIds",
            call(s.list_secret_version_ids(u, ListVersionIdsInput { secret_id: sid(), ..Default::default() })),
        ),
        (
            "UpdateSecretVersionStage",
            call(s.update_secret_version_stage(
                u,
                UpdateVersionStageInput {
                    secret_id: sid(),
                    version_stage: "X".into(),
                    move_to_version_id: Some(token(0)),
                    ..Default::default()
                },
            )),
        ),
        ("DeleteSecret", call(s.delete_secret(u, DeleteSecretInput { secret_id: sid(), ..Default::default() }))),
        ("RestoreSecret", call(s.restore_secret(u, "/s"))),
        ("TagResource", call(s.tag_resource(u, "/s", vec![tag("a", "b")]))),
        ("UntagResource", call(s.untag_resource(u, "/s", vec!["a".into()]))),
        ("GetRandomPassword", call(s.get_random_password(u, &rules))),
        ("PutResourcePolicy", call(s.put_resource_policy(u, "/s", &policy, false))),
        ("GetResourcePolicy", call(s.get_resource_policy(u, "/s"))),
        ("DeleteResourcePolicy", call(s.delete_resource_policy(u, "/s"))),
        ("ValidateResourcePolicy", call(s.validate_resource_policy(u, Some("/s"), &policy))),
        ("ValidateResourcePolicy (no secret)", call(s.validate_resource_policy(u, None, &policy))),
        (
            "PutParameter",
            call(s.put_parameter(
                u,
                PutParameterInput {
                    name: "/q".into(),
                    value: Some(SecretBytes::from("v".to_string())),
                    parameter_type: Some("String".into()),
                    ..Default::default()
                },
            )),
        ),
        ("GetParameter", call(s.get_parameter(u, "/p", false))),
        ("GetParameters", call(s.get_parameters(u, &ids, false))),
        ("GetParametersByPath", call(s.get_parameters_by_path(u, path))),
        ("GetParameterHistory", call(s.get_parameter_history(u, "/p", false, None, None))),
        ("DeleteParameter", call(s.delete_parameter(u, "/p"))),
        ("DeleteParameters", call(s.delete_parameters(u, &ids))),
        ("LabelParameterVersion", call(s.label_parameter_version(u, "/p", None, &labels))),
        ("UnlabelParameterVersion", call(s.unlabel_parameter_version(u, "/p", 1, &labels))),
        ("DescribeParameters", call(s.describe_parameters(u, &[], None, None))),
        ("AddTagsToResource", call(s.change_parameter_tags(u, "/p", &tags, &[]))),
        ("RemoveTagsFromResource", call(s.change_parameter_tags(u, "/p", &[], &keys))),
        ("ListTagsForResource", call(s.change_parameter_tags(u, "/p", &[], &[]))),
        ("CreateKey", call(s.create_key(u, Default::default()))),
        ("DescribeKey", call(s.describe_key(u, &key))),
        ("ListKeys", call(s.list_keys(u))),
        ("CreateAlias", call(s.create_alias(u, "alias/new", &key))),
        ("UpdateAlias", call(s.update_alias(u, "alias/k", &key))),
        ("DeleteAlias", call(s.delete_alias(u, "alias/k"))),
        ("ListAliases", call(s.list_aliases(u, None))),
        ("EnableKey", call(s.enable_key(u, &key))),
        ("DisableKey", call(s.disable_key(u, &key))),
        ("EnableKeyRotation", call(s.enable_key_rotation(u, &key, None))),
        ("DisableKeyRotation", call(s.disable_key_rotation(u, &key))),
        ("GetKeyRotationStatus", call(s.get_key_rotation_status(u, &key))),
        ("RotateKeyOnDemand", call(s.rotate_key_now(u, &key))),
        ("ScheduleKeyDeletion", call(s.schedule_key_deletion(u, &key, None, false))),
        ("CancelKeyDeletion", call(s.cancel_key_deletion(u, &key))),
        ("TagResource (KMS)", call(s.tag_key(u, &key, vec![tag("a", "b")]))),
        ("UntagResource (KMS)", call(s.untag_key(u, &key, vec!["a".into()]))),
        ("ListResourceTags", call(s.list_key_tags(u, &key))),
        ("Encrypt", call(s.kms_encrypt(u, &key, &plain, none))),
        ("Decrypt", call(s.kms_decrypt(u, &blob, none, None))),
        ("GenerateDataKey", call(s.generate_data_key(u, &key, 32, none, true))),
        ("GenerateDataKeyWithoutPlaintext", call(s.generate_data_key(u, &key, 32, none, false))),
        ("ReEncrypt", call(s.re_encrypt(u, &blob, none, None, &key, none))),
        ("Rewrap", call(s.rewrap_keys(u))),
    ];
    for (name, f) in calls {
        match f.await {
            Err(e) if e.kind == ErrorKind::AccessDenied => {
                assert!(
                    e.message.starts_with("User: arn:aws:iam::123456789012:user/nobody is not authorized to perform: "),
                    "{name}: {}",
                    e.message
                );
            }
            other => panic!("{name}: expected AccessDenied, got {other:?}"),
        }
    }
    // Nothing changed.
    w.read(&root(), "/s").await.unwrap();
    w.s.get_parameter(&root(), "/p", false).await.unwrap();
    assert_eq!(w.s.describe_key(&root(), "alias/k").await.unwrap().key_state, "Enabled");
}

#[tokio::test]
async fn root_keeps_working_and_the_scheduler_is_not_authorized() {
    let w = World::new();
    w.secret("/s", "v").await;
    let mut scheduler = user_ctx("ghost");
    scheduler.source = coffer_service::ActorSource::Scheduler;
    w.read(&scheduler, "/s").await.unwrap();
    w.read(&root(), "/s").await.unwrap();
    w.s.rewrap_keys(&root()).await.unwrap();
}

/// A key created with a policy is governed by it as KMS does: the key policy must allow the caller or
/// delegate to the account (then identity policies decide); a key policy naming neither leaves the key
/// closed whatever IAM says (root included); a Deny in it wins; a malformed one is refused at creation.
#[tokio::test]
async fn key_policies_govern_their_keys_as_kms_does() {
    let w = World::new();
    let key_with = |policy: &str| {
        let input = coffer_service::kms::CreateKeyInput { policy: Some(policy.to_string()), ..Default::default() };
        let s = &w.s;
        async move { s.create_key(&root(), input).await }
    };
    let decrypt_any = doc(r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#);
    let sm = doc(
        r#"{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:CreateSecret"],"Resource":"*"}"#,
    );

    // Delegation to the account: IAM decides, as with the default policy.
    let delegating = doc(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}}"#
    ));
    let delegated = key_with(&delegating).await.unwrap().arn;
    // Names one user directly, and no one else (not the account).
    let direct = doc(&format!(
        r#"[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/owner"}},"Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*"}},
            {{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
              "Condition":{{"StringEquals":{{"aws:username":"banned"}}}}}}]"#
    ));
    let closed = key_with(&direct).await.unwrap().arn;
    let reader = w.user("reader", &[sm.clone(), decrypt_any.clone()], vec![]).await;
    let owner = w.user("owner", std::slice::from_ref(&sm), vec![]).await;
    w.secret_with("/delegated", "d", Some(delegated.clone()), vec![]).await;
    // Root may not use the closed key (it is not named); its owner may, with no kms identity policy.
    let create = |name: &str, key: &str| CreateSecretInput {
        name: name.into(),
        client_request_token: Some(token(1)),
        value: Some(text("c")),
        kms_key_id: Some(key.into()),
        ..Default::default()
    };
    let e = denied(w.s.create_secret(&root(), create("/closed-by-root", &closed)).await);
    assert!(e.message.contains("no resource-based policy allows the kms:GenerateDataKey action"), "{}", e.message);
    w.s.create_secret(&owner, create("/closed", &closed)).await.unwrap();
    let banned = w.user("banned", &[sm.clone(), decrypt_any.clone()], vec![]).await;

    // Delegated: the identity policy's kms:Decrypt is enough; the owner without one is refused.
    assert_eq!(w.read(&reader, "/delegated").await.unwrap().value, text("d"));
    let e = denied(w.read(&owner, "/delegated").await);
    assert_eq!(e.message, no_allow("owner", "kms:Decrypt", &delegated));
    // Closed to the account: IAM's allow does not count; the named owner needs no identity policy.
    let e = denied(w.read(&reader, "/closed").await);
    assert_eq!(
        e.message,
        format!("User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: kms:Decrypt on resource: {closed} because no resource-based policy allows the kms:Decrypt action")
    );
    assert_eq!(w.read(&owner, "/closed").await.unwrap().value, text("c"));
    let e = denied(w.read(&banned, "/closed").await);
    assert!(
        e.message.contains("no resource-based policy allows") || e.message.contains("explicit deny"),
        "{}",
        e.message
    );
    let e = denied(w.read(&root(), "/closed").await);
    assert!(e.message.contains("no resource-based policy allows the kms:Decrypt action"), "{}", e.message);

    // Refused at creation, nothing created.
    let keys_before = w.s.list_keys(&root()).await.unwrap().len();
    let e = key_with(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*"}}"#).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MalformedPolicy, "{}", e.message);
    assert_eq!(w.s.list_keys(&root()).await.unwrap().len(), keys_before);
}
