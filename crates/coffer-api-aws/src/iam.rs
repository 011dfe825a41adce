//! IAM over the query protocol: users, access keys, groups, roles, managed and inline policies,
//! virtual MFA devices and the policy simulator, answered in the shapes of the IAM service model.
//!
//! Policy documents in answers are URL-encoded, as IAM sends them (the SDKs and the aws CLI decode
//! them). The secret access key of CreateAccessKey and the seed of CreateVirtualMFADevice are written
//! straight into the answer's wiped buffer and never logged.

use bytes::Bytes;
use coffer_service::iam::model::parse_iam_arn;
use coffer_service::iam::ops::{
    AccessKeyInfo, GroupInfo, MfaDeviceInfo, PolicyInfo, PolicyTarget, PolicyVersionInfo, RoleInfo, UserInfo,
};
use coffer_service::iam::simulate::{ContextEntry, SimulationInput, SimulationResult};
use coffer_service::{PrincipalKind, RequestContext, Service};
use coffer_store::Tag;

use crate::error::{iam_error, ApiError};
use crate::query::{missing, Form, Page, Xml};

/// IAM's XML namespace.
pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

fn not_supported(member: &str, what: &str) -> ApiError {
    ApiError::bad_request("InvalidInput", format!("The parameter {member} is not supported: Coffer has no {what}."))
}

// ---- writing the model's structures ----

/// `<Tags><member><Key>…</Key><Value>…</Value></member>…</Tags>`, always (an empty list too).
fn tag_list(x: &mut Xml, tags: &[Tag]) {
    x.open("Tags");
    for t in tags {
        x.open("member");
        x.text("Key", &t.key);
        x.text("Value", &t.value);
        x.close("member");
    }
    x.close("Tags");
}

/// Tags of an entity: left out when there are none, as IAM does.
fn tags(x: &mut Xml, tags: &[Tag]) {
    if !tags.is_empty() {
        tag_list(x, tags);
    }
}

/// A `User`. Listings leave the tags out, as IAM's do.
fn user(x: &mut Xml, tag: &str, u: &UserInfo, with_tags: bool) {
    x.open(tag);
    x.text("Path", &u.path);
    // The root user describes itself without a name.
    if !u.name.is_empty() {
        x.text("UserName", &u.name);
    }
    x.text("UserId", &u.user_id);
    x.text("Arn", &u.arn);
    x.time("CreateDate", u.created);
    if with_tags {
        tags(x, &u.tags);
    }
    x.close(tag);
}

fn group(x: &mut Xml, tag: &str, g: &GroupInfo) {
    x.open(tag);
    x.text("Path", &g.path);
    x.text("GroupName", &g.name);
    x.text("GroupId", &g.group_id);
    x.text("Arn", &g.arn);
    x.time("CreateDate", g.created);
    x.close(tag);
}

fn role(x: &mut Xml, tag: &str, r: &RoleInfo, with_tags: bool) {
    x.open(tag);
    x.text("Path", &r.path);
    x.text("RoleName", &r.name);
    x.text("RoleId", &r.role_id);
    x.text("Arn", &r.arn);
    x.time("CreateDate", r.created);
    x.policy("AssumeRolePolicyDocument", &r.trust_policy);
    x.opt_text("Description", r.description.as_deref());
    x.int("MaxSessionDuration", r.max_session_duration);
    if with_tags {
        tags(x, &r.tags);
    }
    x.close(tag);
}

fn policy(x: &mut Xml, tag: &str, p: &PolicyInfo, with_details: bool) {
    x.open(tag);
    x.text("PolicyName", &p.name);
    x.text("PolicyId", &p.policy_id);
    x.text("Arn", &p.arn);
    x.text("Path", &p.path);
    x.text("DefaultVersionId", &p.default_version);
    x.int("AttachmentCount", i64::try_from(p.attachment_count).unwrap_or(i64::MAX));
    x.int("PermissionsBoundaryUsageCount", 0);
    x.bool("IsAttachable", true);
    if with_details {
        x.opt_text("Description", p.description.as_deref());
    }
    x.time("CreateDate", p.created);
    x.time("UpdateDate", p.updated);
    if with_details {
        tags(x, &p.tags);
    }
    x.close(tag);
}

fn policy_version(x: &mut Xml, tag: &str, v: &PolicyVersionInfo, with_document: bool) {
    x.open(tag);
    if with_document {
        x.policy("Document", &v.document);
    }
    x.text("VersionId", &v.version_id);
    x.bool("IsDefaultVersion", v.is_default);
    x.time("CreateDate", v.created);
    x.close(tag);
}

fn access_key_metadata(x: &mut Xml, k: &AccessKeyInfo) {
    x.open("member");
    x.text("UserName", &k.user_name);
    x.text("AccessKeyId", &k.access_key_id);
    x.text("Status", &k.status);
    x.time("CreateDate", k.created);
    x.close("member");
}

/// `<tag><member>…</member>…</tag>`, then `IsTruncated` (and `Marker`): a listing's page.
fn listing<T>(x: &mut Xml, tag: &str, page: &Page<T>, mut member: impl FnMut(&mut Xml, &T)) {
    x.open(tag);
    for item in &page.items {
        member(x, item);
    }
    x.close(tag);
    page.write_truncation(x);
}

/// A listing of plain strings.
fn string_listing(action: &str, tag: &str, form: &Form, items: Vec<String>, rid: &str) -> Result<Bytes, ApiError> {
    let page = Page::of(form, items)?;
    let mut x = Xml::result(action, NAMESPACE);
    listing(&mut x, tag, &page, |x, s| x.text("member", s));
    Ok(x.finish(rid))
}

// ---- the actions on users', groups' and roles' policies ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyVerb {
    Attach,
    Detach,
    ListAttached,
    Put,
    Get,
    Delete,
    List,
}

/// `AttachUserPolicy` → (Attach, "User"), `ListAttachedRolePolicies` → (ListAttached, "Role"), …
fn policy_action(action: &str) -> Option<(PolicyVerb, &'static str)> {
    use PolicyVerb::*;
    const FORMS: [(PolicyVerb, &str, &str); 7] = [
        (Attach, "Attach", "Policy"),
        (Detach, "Detach", "Policy"),
        (ListAttached, "ListAttached", "Policies"),
        (Put, "Put", "Policy"),
        (Get, "Get", "Policy"),
        (Delete, "Delete", "Policy"),
        (List, "List", "Policies"),
    ];
    for word in ["User", "Group", "Role"] {
        for (verb, prefix, suffix) in FORMS {
            if action.strip_prefix(prefix).and_then(|r| r.strip_prefix(word)) == Some(suffix) {
                return Some((verb, word));
            }
        }
    }
    None
}

async fn policy_target_action(
    service: &Service,
    ctx: &RequestContext,
    action: &str,
    verb: PolicyVerb,
    word: &str,
    form: &Form,
) -> Result<Bytes, ApiError> {
    let rid = ctx.request_id.as_str();
    let name_key = format!("{word}Name");
    let name = form.required(&name_key)?.to_string();
    let target = match word {
        "User" => PolicyTarget::User(name.clone()),
        "Group" => PolicyTarget::Group(name.clone()),
        _ => PolicyTarget::Role(name.clone()),
    };
    Ok(match verb {
        PolicyVerb::Attach => {
            let arn = form.required("PolicyArn")?;
            service.attach_policy(ctx, target, arn).await.map_err(iam_error)?;
            Xml::empty(action, NAMESPACE, rid)
        }
        PolicyVerb::Detach => {
            let arn = form.required("PolicyArn")?;
            service.detach_policy(ctx, target, arn).await.map_err(iam_error)?;
            Xml::empty(action, NAMESPACE, rid)
        }
        PolicyVerb::ListAttached => {
            let prefix = form.get("PathPrefix").unwrap_or("/");
            let attached: Vec<(String, String)> = service
                .list_attached_policies(ctx, target)
                .await
                .map_err(iam_error)?
                .into_iter()
                .filter(|(_, arn)| parse_iam_arn(arn).is_none_or(|(_, _, path, _)| path.starts_with(prefix)))
                .collect();
            let page = Page::of(form, attached)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "AttachedPolicies", &page, |x, (name, arn)| {
                x.open("member");
                x.text("PolicyName", name);
                x.text("PolicyArn", arn);
                x.close("member");
            });
            x.finish(rid)
        }
        PolicyVerb::Put => {
            let policy_name = form.required("PolicyName")?;
            let document = form.required("PolicyDocument")?;
            service.put_inline_policy(ctx, target, policy_name, document).await.map_err(iam_error)?;
            Xml::empty(action, NAMESPACE, rid)
        }
        PolicyVerb::Get => {
            let policy_name = form.required("PolicyName")?;
            let document = service.get_inline_policy(ctx, target, policy_name).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            x.text(&name_key, &name);
            x.text("PolicyName", policy_name);
            x.policy("PolicyDocument", &document);
            x.finish(rid)
        }
        PolicyVerb::Delete => {
            let policy_name = form.required("PolicyName")?;
            service.delete_inline_policy(ctx, target, policy_name).await.map_err(iam_error)?;
            Xml::empty(action, NAMESPACE, rid)
        }
        PolicyVerb::List => {
            let names = service.list_inline_policies(ctx, target).await.map_err(iam_error)?;
            string_listing(action, "PolicyNames", form, names, rid)?
        }
    })
}

// ---- the policy simulator ----

fn simulation_input(form: &Form, principal: bool) -> Result<SimulationInput, ApiError> {
    if !form.list("PermissionsBoundaryPolicyInputList").is_empty() {
        return Err(not_supported("PermissionsBoundaryPolicyInputList", "permissions boundaries"));
    }
    let policy_source_arn = if principal { Some(form.required("PolicySourceArn")?.to_string()) } else { None };
    let policy_input_list =
        if principal { form.list("PolicyInputList") } else { form.required_list("PolicyInputList")? };
    let mut context_entries = Vec::new();
    for (n, e) in form.structs("ContextEntries").iter().enumerate() {
        let key = e
            .get("ContextKeyName")
            .ok_or_else(|| missing(&format!("contextEntries.{}.member.contextKeyName", n + 1)))?;
        context_entries.push(ContextEntry {
            key: key.to_string(),
            values: e.list("ContextKeyValues"),
            value_type: e.get("ContextKeyType").unwrap_or("string").to_string(),
        });
    }
    Ok(SimulationInput {
        policy_source_arn,
        policy_input_list,
        action_names: form.required_list("ActionNames")?,
        resource_arns: form.list("ResourceArns"),
        resource_policy: form.string("ResourcePolicy"),
        caller_arn: form.string("CallerArn"),
        context_entries,
    })
}

fn evaluation_result(x: &mut Xml, r: &SimulationResult) {
    x.open("member");
    x.text("EvalActionName", &r.action);
    x.text("EvalResourceName", &r.resource);
    x.text("EvalDecision", r.decision);
    x.open("MatchedStatements");
    for m in &r.matched {
        x.open("member");
        x.text("SourcePolicyId", &m.source_policy_id);
        x.text("SourcePolicyType", &m.source_policy_type);
        x.close("member");
    }
    x.close("MatchedStatements");
    x.open("MissingContextValues");
    for k in &r.missing_context_values {
        x.text("member", k);
    }
    x.close("MissingContextValues");
    x.close("member");
}

// ---- dispatch ----

/// Serves one IAM action; `Ok(None)` when IAM (as Coffer serves it) has no such action.
pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    action: &str,
    form: &Form,
) -> Result<Option<Bytes>, ApiError> {
    if let Some((verb, word)) = policy_action(action) {
        return policy_target_action(service, ctx, action, verb, word, form).await.map(Some);
    }
    let rid = ctx.request_id.as_str();
    let empty = || Xml::empty(action, NAMESPACE, rid);
    let body = match action {
        // ---- users ----
        "CreateUser" => {
            let name = form.required("UserName")?;
            if form.has("PermissionsBoundary") {
                return Err(not_supported("PermissionsBoundary", "permissions boundaries"));
            }
            let u = service.create_user(ctx, name, form.string("Path"), form.tags("Tags")?).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            user(&mut x, "User", &u, true);
            x.finish(rid)
        }
        "GetUser" => {
            let u = service.get_user(ctx, form.string("UserName")).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            user(&mut x, "User", &u, true);
            x.finish(rid)
        }
        "ListUsers" => {
            let users = service.list_users(ctx, form.get("PathPrefix")).await.map_err(iam_error)?;
            let page = Page::of(form, users)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "Users", &page, |x, u| user(x, "member", u, false));
            x.finish(rid)
        }
        "DeleteUser" => {
            service.delete_user(ctx, form.required("UserName")?).await.map_err(iam_error)?;
            empty()
        }
        "TagUser" => {
            let name = form.required("UserName")?;
            if !form.has("Tags") {
                return Err(missing("tags"));
            }
            service.tag_user(ctx, name, form.tags("Tags")?).await.map_err(iam_error)?;
            empty()
        }
        "UntagUser" => {
            let name = form.required("UserName")?;
            service.untag_user(ctx, name, form.required_list("TagKeys")?).await.map_err(iam_error)?;
            empty()
        }
        "ListUserTags" => {
            let name = form.required("UserName")?;
            let u = service.get_user(ctx, Some(name.to_string())).await.map_err(iam_error)?;
            let page = Page::of(form, u.tags)?;
            let mut x = Xml::result(action, NAMESPACE);
            tag_list(&mut x, &page.items);
            page.write_truncation(&mut x);
            x.finish(rid)
        }

        // ---- access keys ----
        "CreateAccessKey" => {
            let created = service.create_user_access_key(ctx, form.string("UserName")).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            x.open("AccessKey");
            x.text("UserName", &created.info.user_name);
            x.text("AccessKeyId", &created.info.access_key_id);
            x.text("Status", &created.info.status);
            x.secret("SecretAccessKey", &created.secret_access_key)?;
            x.time("CreateDate", created.info.created);
            x.close("AccessKey");
            x.finish(rid)
        }
        "ListAccessKeys" => {
            let keys = service.list_user_access_keys(ctx, form.string("UserName")).await.map_err(iam_error)?;
            let page = Page::of(form, keys)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "AccessKeyMetadata", &page, access_key_metadata);
            x.finish(rid)
        }
        "UpdateAccessKey" => {
            let key_id = form.required("AccessKeyId")?;
            let status = form.required("Status")?;
            service.update_user_access_key(ctx, form.string("UserName"), key_id, status).await.map_err(iam_error)?;
            empty()
        }
        "DeleteAccessKey" => {
            let key_id = form.required("AccessKeyId")?;
            service.delete_user_access_key(ctx, form.string("UserName"), key_id).await.map_err(iam_error)?;
            empty()
        }

        // ---- groups ----
        "CreateGroup" => {
            let g =
                service.create_group(ctx, form.required("GroupName")?, form.string("Path")).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            group(&mut x, "Group", &g);
            x.finish(rid)
        }
        "GetGroup" => {
            let (g, members) = service.get_group(ctx, form.required("GroupName")?).await.map_err(iam_error)?;
            let page = Page::of(form, members)?;
            let mut x = Xml::result(action, NAMESPACE);
            group(&mut x, "Group", &g);
            listing(&mut x, "Users", &page, |x, u| user(x, "member", u, false));
            x.finish(rid)
        }
        "ListGroups" => {
            let groups = service.list_groups(ctx, form.get("PathPrefix")).await.map_err(iam_error)?;
            let page = Page::of(form, groups)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "Groups", &page, |x, g| group(x, "member", g));
            x.finish(rid)
        }
        "ListGroupsForUser" => {
            let groups = service.list_groups_for_user(ctx, form.required("UserName")?).await.map_err(iam_error)?;
            let page = Page::of(form, groups)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "Groups", &page, |x, g| group(x, "member", g));
            x.finish(rid)
        }
        "DeleteGroup" => {
            service.delete_group(ctx, form.required("GroupName")?).await.map_err(iam_error)?;
            empty()
        }
        "AddUserToGroup" => {
            let g = form.required("GroupName")?;
            service.add_user_to_group(ctx, g, form.required("UserName")?).await.map_err(iam_error)?;
            empty()
        }
        "RemoveUserFromGroup" => {
            let g = form.required("GroupName")?;
            service.remove_user_from_group(ctx, g, form.required("UserName")?).await.map_err(iam_error)?;
            empty()
        }

        // ---- roles ----
        "CreateRole" => {
            let name = form.required("RoleName")?;
            let trust = form.required("AssumeRolePolicyDocument")?;
            if form.has("PermissionsBoundary") {
                return Err(not_supported("PermissionsBoundary", "permissions boundaries"));
            }
            let r = service
                .create_role(
                    ctx,
                    name,
                    form.string("Path"),
                    trust,
                    form.string("Description"),
                    form.int("MaxSessionDuration")?,
                    form.tags("Tags")?,
                )
                .await
                .map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            role(&mut x, "Role", &r, true);
            x.finish(rid)
        }
        "GetRole" => {
            let r = service.get_role(ctx, form.required("RoleName")?).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            role(&mut x, "Role", &r, true);
            x.finish(rid)
        }
        "ListRoles" => {
            let roles = service.list_roles(ctx, form.get("PathPrefix")).await.map_err(iam_error)?;
            let page = Page::of(form, roles)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "Roles", &page, |x, r| role(x, "member", r, false));
            x.finish(rid)
        }
        "DeleteRole" => {
            service.delete_role(ctx, form.required("RoleName")?).await.map_err(iam_error)?;
            empty()
        }
        "TagRole" => {
            let name = form.required("RoleName")?;
            if !form.has("Tags") {
                return Err(missing("tags"));
            }
            service.tag_role(ctx, name, form.tags("Tags")?).await.map_err(iam_error)?;
            empty()
        }
        "UntagRole" => {
            let name = form.required("RoleName")?;
            service.untag_role(ctx, name, form.required_list("TagKeys")?).await.map_err(iam_error)?;
            empty()
        }
        "ListRoleTags" => {
            let r = service.get_role(ctx, form.required("RoleName")?).await.map_err(iam_error)?;
            let page = Page::of(form, r.tags)?;
            let mut x = Xml::result(action, NAMESPACE);
            tag_list(&mut x, &page.items);
            page.write_truncation(&mut x);
            x.finish(rid)
        }
        "UpdateAssumeRolePolicy" => {
            let name = form.required("RoleName")?;
            service.update_assume_role_policy(ctx, name, form.required("PolicyDocument")?).await.map_err(iam_error)?;
            empty()
        }

        // ---- managed policies ----
        "CreatePolicy" => {
            let name = form.required("PolicyName")?;
            let document = form.required("PolicyDocument")?;
            let p = service
                .create_policy(ctx, name, form.string("Path"), document, form.string("Description"), form.tags("Tags")?)
                .await
                .map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            policy(&mut x, "Policy", &p, true);
            x.finish(rid)
        }
        "GetPolicy" => {
            let p = service.get_policy(ctx, form.required("PolicyArn")?).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            policy(&mut x, "Policy", &p, true);
            x.finish(rid)
        }
        "ListPolicies" => {
            let scope = form.one_of("Scope", &["All", "AWS", "Local"])?.unwrap_or("All");
            let usage = form.one_of("PolicyUsageFilter", &["PermissionsPolicy", "PermissionsBoundary"])?;
            let only_attached = form.bool("OnlyAttached")?.unwrap_or(false);
            let mut policies =
                service.list_policies(ctx, scope, only_attached, form.get("PathPrefix")).await.map_err(iam_error)?;
            if usage == Some("PermissionsBoundary") {
                // No policy is used as a permissions boundary in Coffer.
                policies.clear();
            }
            let page = Page::of(form, policies)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "Policies", &page, |x, p| policy(x, "member", p, false));
            x.finish(rid)
        }
        "DeletePolicy" => {
            service.delete_policy(ctx, form.required("PolicyArn")?).await.map_err(iam_error)?;
            empty()
        }
        "CreatePolicyVersion" => {
            let arn = form.required("PolicyArn")?;
            let document = form.required("PolicyDocument")?;
            let set_as_default = form.bool("SetAsDefault")?.unwrap_or(false);
            let v = service.create_policy_version(ctx, arn, document, set_as_default).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            policy_version(&mut x, "PolicyVersion", &v, false);
            x.finish(rid)
        }
        "GetPolicyVersion" => {
            let arn = form.required("PolicyArn")?;
            let v = service.get_policy_version(ctx, arn, form.required("VersionId")?).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            policy_version(&mut x, "PolicyVersion", &v, true);
            x.finish(rid)
        }
        "ListPolicyVersions" => {
            let versions = service.list_policy_versions(ctx, form.required("PolicyArn")?).await.map_err(iam_error)?;
            let page = Page::of(form, versions)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "Versions", &page, |x, v| policy_version(x, "member", v, false));
            x.finish(rid)
        }
        "DeletePolicyVersion" => {
            let arn = form.required("PolicyArn")?;
            service.delete_policy_version(ctx, arn, form.required("VersionId")?).await.map_err(iam_error)?;
            empty()
        }
        "SetDefaultPolicyVersion" => {
            let arn = form.required("PolicyArn")?;
            service.set_default_policy_version(ctx, arn, form.required("VersionId")?).await.map_err(iam_error)?;
            empty()
        }

        // ---- virtual MFA devices ----
        "CreateVirtualMFADevice" => {
            let name = form.required("VirtualMFADeviceName")?;
            if !form.tags("Tags")?.is_empty() {
                return Err(not_supported("Tags", "tags on MFA devices"));
            }
            let created = service.create_virtual_mfa_device(ctx, name, form.string("Path")).await.map_err(iam_error)?;
            let mut x = Xml::result(action, NAMESPACE);
            x.open("VirtualMFADevice");
            x.text("SerialNumber", &created.serial);
            // A blob member: the base32 seed's characters, base64-encoded on the wire.
            x.secret_blob("Base32StringSeed", &created.base32_seed);
            x.close("VirtualMFADevice");
            x.finish(rid)
        }
        "EnableMFADevice" => {
            let name = form.required("UserName")?;
            let serial = form.required("SerialNumber")?;
            let code1 = form.required("AuthenticationCode1")?;
            let code2 = form.required("AuthenticationCode2")?;
            service.enable_mfa_device(ctx, name, serial, code1, code2).await.map_err(iam_error)?;
            empty()
        }
        "DeactivateMFADevice" => {
            let serial = form.required("SerialNumber")?;
            let name = match (form.get("UserName"), &ctx.principal.kind) {
                (Some(n), _) => n.to_string(),
                (None, PrincipalKind::User { name }) => name.clone(),
                (None, _) => return Err(missing("userName")),
            };
            service.deactivate_mfa_device(ctx, &name, serial).await.map_err(iam_error)?;
            empty()
        }
        "DeleteVirtualMFADevice" => {
            service.delete_virtual_mfa_device(ctx, form.required("SerialNumber")?).await.map_err(iam_error)?;
            empty()
        }
        "ListMFADevices" => {
            let devices = service.list_mfa_devices(ctx, form.string("UserName")).await.map_err(iam_error)?;
            let page = Page::of(form, devices)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "MFADevices", &page, |x, d: &MfaDeviceInfo| {
                x.open("member");
                x.opt_text("UserName", d.user.as_deref());
                x.text("SerialNumber", &d.serial);
                if let Some(t) = d.enabled {
                    x.time("EnableDate", t);
                }
                x.close("member");
            });
            x.finish(rid)
        }
        "ListVirtualMFADevices" => {
            let status = form.one_of("AssignmentStatus", &["Assigned", "Unassigned", "Any"])?.unwrap_or("Any");
            let devices: Vec<MfaDeviceInfo> = service
                .list_virtual_mfa_devices(ctx)
                .await
                .map_err(iam_error)?
                .into_iter()
                .filter(|d| match status {
                    "Assigned" => d.user.is_some(),
                    "Unassigned" => d.user.is_none(),
                    _ => true,
                })
                .collect();
            let page = Page::of(form, devices)?;
            // The assigned users, described as GetUser would (a caller who may not read one gets its
            // name only).
            let mut users = Vec::with_capacity(page.items.len());
            for d in &page.items {
                users.push(match &d.user {
                    Some(name) => Some(service.get_user(ctx, Some(name.clone())).await.map_err(|_| name.clone())),
                    None => None,
                });
            }
            let mut x = Xml::result(action, NAMESPACE);
            x.open("VirtualMFADevices");
            for (d, u) in page.items.iter().zip(&users) {
                x.open("member");
                x.text("SerialNumber", &d.serial);
                match u {
                    Some(Ok(u)) => user(&mut x, "User", u, false),
                    Some(Err(name)) => {
                        x.open("User");
                        x.text("UserName", name);
                        x.close("User");
                    }
                    None => {}
                }
                if let Some(t) = d.enabled {
                    x.time("EnableDate", t);
                }
                x.close("member");
            }
            x.close("VirtualMFADevices");
            page.write_truncation(&mut x);
            x.finish(rid)
        }

        // ---- the policy simulator ----
        "SimulatePrincipalPolicy" | "SimulateCustomPolicy" => {
            let principal = action == "SimulatePrincipalPolicy";
            let input = simulation_input(form, principal)?;
            let results = if principal {
                service.simulate_principal_policy(ctx, input).await
            } else {
                service.simulate_custom_policy(ctx, input).await
            }
            .map_err(iam_error)?;
            let page = Page::of(form, results)?;
            let mut x = Xml::result(action, NAMESPACE);
            listing(&mut x, "EvaluationResults", &page, evaluation_result);
            x.finish(rid)
        }
        _ => return Ok(None),
    };
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_actions_name_their_verb_and_entity() {
        assert_eq!(policy_action("AttachUserPolicy"), Some((PolicyVerb::Attach, "User")));
        assert_eq!(policy_action("DetachGroupPolicy"), Some((PolicyVerb::Detach, "Group")));
        assert_eq!(policy_action("ListAttachedRolePolicies"), Some((PolicyVerb::ListAttached, "Role")));
        assert_eq!(policy_action("PutRolePolicy"), Some((PolicyVerb::Put, "Role")));
        assert_eq!(policy_action("GetUserPolicy"), Some((PolicyVerb::Get, "User")));
        assert_eq!(policy_action("DeleteGroupPolicy"), Some((PolicyVerb::Delete, "Group")));
        assert_eq!(policy_action("ListUserPolicies"), Some((PolicyVerb::List, "User")));
        for other in
            ["GetPolicy", "ListPolicies", "DeletePolicy", "CreatePolicy", "GetUser", "ListAttachedPolicies", ""]
        {
            assert_eq!(policy_action(other), None, "{other}");
        }
    }

    fn text(x: Xml) -> String {
        String::from_utf8(x.finish("rid").to_vec()).expect("utf-8")
    }

    #[test]
    fn roles_carry_their_trust_policy_url_encoded() {
        let r = RoleInfo {
            name: "deploy".into(),
            arn: "arn:aws:iam::000000000000:role/ci/deploy".into(),
            role_id: "AROAEXAMPLE".into(),
            path: "/ci/".into(),
            created: 1_795_427_200_000,
            trust_policy: r#"{"Statement":[]}"#.into(),
            description: Some("CI <deploys>".into()),
            max_session_duration: 3600,
            tags: vec![Tag { key: "team".into(), value: "ci".into() }],
        };
        let mut x = Xml::result("GetRole", NAMESPACE);
        role(&mut x, "Role", &r, true);
        let body = text(x);
        assert!(body.contains(
            "<Role><Path>/ci/</Path><RoleName>deploy</RoleName><RoleId>AROAEXAMPLE</RoleId>\
             <Arn>arn:aws:iam::000000000000:role/ci/deploy</Arn><CreateDate>2026-11-23T09:46:40Z</CreateDate>\
             <AssumeRolePolicyDocument>%7B%22Statement%22%3A%5B%5D%7D</AssumeRolePolicyDocument>\
             <Description>CI &lt;deploys&gt;</Description><MaxSessionDuration>3600</MaxSessionDuration>\
             <Tags><member><Key>team</Key><Value>ci</Value></member></Tags></Role>"
        ));
    }

    #[test]
    fn simulation_inputs_read_lists_and_context_entries() {
        let form = Form::parse(
            b"PolicySourceArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Auser%2Fa&ActionNames.member.1=s3%3AGetObject&\
              ActionNames.member.2=s3%3APutObject&ResourceArns.member.1=arn%3Aaws%3As3%3A%3A%3Ab%2F*&\
              ContextEntries.member.1.ContextKeyName=aws%3AMultiFactorAuthPresent&\
              ContextEntries.member.1.ContextKeyType=boolean&ContextEntries.member.1.ContextKeyValues.member.1=true",
        );
        let input = simulation_input(&form, true).expect("input");
        assert_eq!(input.policy_source_arn.as_deref(), Some("arn:aws:iam::000000000000:user/a"));
        assert_eq!(input.action_names, vec!["s3:GetObject", "s3:PutObject"]);
        assert_eq!(input.resource_arns, vec!["arn:aws:s3:::b/*"]);
        assert_eq!(input.context_entries.len(), 1);
        assert_eq!(input.context_entries[0].key, "aws:MultiFactorAuthPresent");
        assert_eq!(input.context_entries[0].values, vec!["true"]);
        assert_eq!(input.context_entries[0].value_type, "boolean");

        let e = simulation_input(&Form::parse(b"ActionNames.member.1=x"), false).expect_err("no policies");
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.contains("'policyInputList'"), "{}", e.message);
        let e = simulation_input(&Form::parse(b"PolicyInputList.member.1=%7B%7D"), false).expect_err("no actions");
        assert!(e.message.contains("'actionNames'"), "{}", e.message);
    }
}
