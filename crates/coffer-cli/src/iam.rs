//! `coffer iam ...`: users, access keys, groups, roles, managed and inline policies, virtual MFA devices
//! and the policy simulator, over IAM's own wire protocol (the AWS query protocol, `Version=2010-05-08`,
//! signed for `iam`). JSON output uses the names `aws iam` prints, with policy documents decoded.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context};
use coffer_client::iam::{self, AttachedPolicy, EvaluationResult};
use coffer_client::{sts, Client, Params, XmlDoc, XmlNode};
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::output::{self, Format};
use crate::secret::{client_for, explain, OutputArgs};
use crate::Connection;

/// `coffer iam [connection flags] COMMAND`.
#[derive(clap::Args, Debug)]
pub struct IamArgs {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    command: IamCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum IamCommand {
    /// Create, show, list, tag and delete users
    #[command(subcommand)]
    User(UserCommand),
    /// A user's access keys: create (the secret is shown once), list, activate/deactivate, delete
    #[command(subcommand)]
    AccessKey(AccessKeyCommand),
    /// Groups and their members
    #[command(subcommand)]
    Group(GroupCommand),
    /// Roles (assumed with `coffer sts assume-role`)
    #[command(subcommand)]
    Role(RoleCommand),
    /// Managed policies and their versions
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Attach a managed policy to a user, group or role
    Attach(AttachArgs),
    /// Detach a managed policy from a user, group or role
    Detach(AttachArgs),
    /// List the managed policies attached to a user, group or role
    Attached {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Inline policies of a user, group or role
    #[command(subcommand)]
    Inline(InlineCommand),
    /// Virtual MFA devices (TOTP)
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Which actions a principal (or a policy document) allows on which resources, and which statements decide
    Simulate(SimulateArgs),
}

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user
    Create {
        name: String,
        /// Path such as /team/backend/ [default: /]
        #[arg(long)]
        path: Option<String>,
        /// Tag as KEY=VALUE (repeatable)
        #[arg(long = "tag", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show a user (the caller when no name is given)
    Get {
        name: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List users
    List {
        /// Only users whose path starts with this
        #[arg(long)]
        path_prefix: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a user (its access keys, policies, groups and MFA devices must be removed first)
    Delete { name: String },
    /// Tag a user (KEY=VALUE ...)
    Tag {
        name: String,
        #[arg(required = true, value_parser = parse_pair)]
        tags: Vec<(String, String)>,
    },
    /// Remove tags from a user by key
    Untag {
        name: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum AccessKeyCommand {
    /// Create an access key; its secret is printed this once
    Create {
        /// The user [default: the caller]
        #[arg(long)]
        user: Option<String>,
        /// Print JSON (AccessKey with SecretAccessKey) for scripts
        #[arg(long)]
        json: bool,
    },
    /// List access keys (never their secrets)
    List {
        /// The user [default: the caller]
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Activate or deactivate an access key
    Update {
        access_key_id: String,
        /// Active or Inactive
        #[arg(long, value_parser = ["Active", "Inactive"])]
        status: String,
        #[arg(long)]
        user: Option<String>,
    },
    /// Delete an access key
    Delete {
        access_key_id: String,
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group
    Create {
        name: String,
        #[arg(long)]
        path: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show a group and its members
    Get {
        name: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List groups (or, with --user, the groups a user is in)
    List {
        #[arg(long)]
        path_prefix: Option<String>,
        /// Only the groups this user belongs to
        #[arg(long, conflicts_with = "path_prefix")]
        user: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a group (it must have no members or policies)
    Delete { name: String },
    /// Add a user to a group
    AddUser { group: String, user: String },
    /// Remove a user from a group
    RemoveUser { group: String, user: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum RoleCommand {
    /// Create a role with its trust policy (who may assume it)
    Create {
        name: String,
        /// The trust policy: a file, @FILE, or the JSON itself
        #[arg(long, value_name = "FILE|@FILE|JSON")]
        trust_policy: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Longest session an assume-role may ask for, in seconds (3600..43200)
        #[arg(long)]
        max_session_duration: Option<u32>,
        /// Tag as KEY=VALUE (repeatable)
        #[arg(long = "tag", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show a role, its trust policy decoded
    Get {
        name: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List roles
    List {
        #[arg(long)]
        path_prefix: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a role (its policies must be detached first)
    Delete { name: String },
    /// Tag a role (KEY=VALUE ...)
    Tag {
        name: String,
        #[arg(required = true, value_parser = parse_pair)]
        tags: Vec<(String, String)>,
    },
    /// Remove tags from a role by key
    Untag {
        name: String,
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Create a managed policy (its first version, v1, is the default)
    Create {
        name: String,
        /// The policy document: a file, @FILE, or the JSON itself
        #[arg(long, value_name = "FILE|@FILE|JSON")]
        document: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Tag as KEY=VALUE (repeatable)
        #[arg(long = "tag", value_parser = parse_pair)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show a policy (ARN, or the name of one of this account's policies)
    Get {
        policy: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List policies
    List {
        /// All, AWS (the predefined ones) or Local (this account's)
        #[arg(long, default_value = "All", value_parser = ["All", "AWS", "Local"])]
        scope: String,
        /// Only policies attached to something
        #[arg(long)]
        only_attached: bool,
        #[arg(long)]
        path_prefix: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete a policy (detach it everywhere first)
    Delete { policy: String },
    /// List a policy's versions
    Versions {
        policy: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Store a new version of a policy (at most 5 are kept)
    CreateVersion {
        policy: String,
        /// The policy document: a file, @FILE, or the JSON itself
        #[arg(long, value_name = "FILE|@FILE|JSON")]
        document: String,
        /// Make it the version in force
        #[arg(long)]
        set_default: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Show one version of a policy with its document [default: the version in force]
    GetVersion {
        policy: String,
        version_id: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Make a version the one in force
    SetDefault { policy: String, version_id: String },
    /// Delete a version that is not the default
    DeleteVersion { policy: String, version_id: String },
}

/// Exactly one of --user, --group, --role.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct TargetArgs {
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    group: Option<String>,
    #[arg(long)]
    role: Option<String>,
}

impl TargetArgs {
    /// (`User`|`Group`|`Role`, name): the word IAM's action and parameter names use.
    fn get(&self) -> anyhow::Result<(&'static str, &str)> {
        match (&self.user, &self.group, &self.role) {
            (Some(u), None, None) => Ok(("User", u)),
            (None, Some(g), None) => Ok(("Group", g)),
            (None, None, Some(r)) => Ok(("Role", r)),
            _ => bail!("give exactly one of --user, --group, --role"),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The policy's ARN (or the name of one of this account's policies)
    policy: String,
}

#[derive(clap::Subcommand, Debug)]
pub enum InlineCommand {
    /// Create or replace an inline policy
    Put {
        #[command(flatten)]
        target: TargetArgs,
        policy_name: String,
        /// The policy document: a file, @FILE, or the JSON itself
        #[arg(long, value_name = "FILE|@FILE|JSON")]
        document: String,
    },
    /// Show an inline policy's document
    Get {
        #[command(flatten)]
        target: TargetArgs,
        policy_name: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// List inline policy names
    List {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Delete an inline policy
    Delete {
        #[command(flatten)]
        target: TargetArgs,
        policy_name: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum MfaCommand {
    /// Create a virtual MFA device; its seed and otpauth:// URI are printed this once
    Create {
        name: String,
        #[arg(long)]
        path: Option<String>,
        /// Print JSON (SerialNumber, Base32StringSeed, OtpauthUri) for scripts
        #[arg(long)]
        json: bool,
    },
    /// Assign a device to a user, proving it with two consecutive codes
    Enable {
        #[arg(long)]
        user: String,
        /// The device's serial number (its ARN)
        serial: String,
        code1: String,
        code2: String,
    },
    /// List virtual MFA devices (with --user: the devices assigned to that user)
    List {
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["principal", "policies"])))]
pub struct SimulateArgs {
    /// The user, group or role ARN whose policies are evaluated (SimulatePrincipalPolicy)
    #[arg(long)]
    principal: Option<String>,
    /// Evaluate this policy document instead of a principal's (FILE, @FILE or JSON; repeatable;
    /// SimulateCustomPolicy)
    #[arg(long = "policy", value_name = "FILE|@FILE|JSON")]
    policies: Vec<String>,
    /// An action such as secretsmanager:GetSecretValue (repeatable)
    #[arg(long = "action", required = true)]
    actions: Vec<String>,
    /// Resource ARNs to evaluate against [default: *]
    #[arg(long = "resource", num_args = 1..)]
    resources: Vec<String>,
    /// Request context as KEY=VALUE, e.g. aws:SourceIp=10.0.0.1 (repeat a key for a list)
    #[arg(long = "context", num_args = 1.., value_parser = parse_pair)]
    context: Vec<(String, String)>,
    /// A resource policy to evaluate too (FILE, @FILE or JSON)
    #[arg(long, value_name = "FILE|@FILE|JSON")]
    resource_policy: Option<String>,
    /// The caller's ARN, when it differs from --principal (e.g. a user evaluated against a resource policy)
    #[arg(long)]
    caller: Option<String>,
    /// Print the evaluation results as JSON
    #[arg(long)]
    json: bool,
}

pub(crate) fn parse_pair(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    Ok((k.to_string(), v.to_string()))
}

/// Reads a policy document argument: `@FILE`, `file://FILE`, `-` (standard input), the JSON itself
/// (anything starting with `{`), or else the name of a file.
pub(crate) fn read_document(arg: &str) -> anyhow::Result<String> {
    let trimmed = arg.trim_start();
    let path = if let Some(p) = arg.strip_prefix('@').or_else(|| arg.strip_prefix("file://")) {
        p
    } else if arg == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the policy document from standard input")?;
        return Ok(text);
    } else if trimmed.starts_with('{') {
        return Ok(arg.to_string());
    } else {
        arg
    };
    std::fs::read_to_string(path)
        .with_context(|| format!("reading the policy document {path:?} (give a file, @FILE or the JSON itself)"))
}

/// An IAM client bound to its endpoint.
struct Iam {
    client: Client,
    conn: Connection,
}

impl Iam {
    fn new(conn: &Connection) -> anyhow::Result<Self> {
        Ok(Iam { client: client_for(conn, "IAM")?, conn: conn.clone() })
    }

    async fn call(&self, action: &str, params: Params) -> anyhow::Result<XmlDoc> {
        self.client.query(iam::SERVICE, iam::VERSION, action, params.as_slice()).await.map_err(explain)
    }

    async fn all<T>(
        &self,
        action: &str,
        params: Params,
        page: impl FnMut(&XmlNode) -> Result<(Vec<T>, Option<String>), coffer_client::ClientError>,
    ) -> anyhow::Result<Vec<T>> {
        self.client.query_all_pages(iam::SERVICE, iam::VERSION, action, params.as_slice(), page).await.map_err(explain)
    }

    /// A policy ARN from an ARN or the name of one of the caller's account's policies.
    async fn policy_arn(&self, policy: &str) -> anyhow::Result<String> {
        if policy.starts_with("arn:") {
            return Ok(policy.to_string());
        }
        let (partition, account) = caller_account(&self.conn).await?;
        Ok(format!("arn:{partition}:iam::{account}:policy/{}", policy.trim_start_matches('/')))
    }
}

/// The caller's partition and account, from STS GetCallerIdentity.
pub(crate) async fn caller_account(conn: &Connection) -> anyhow::Result<(String, String)> {
    let client = client_for(conn, "STS")?;
    let doc = client.query(sts::SERVICE, sts::VERSION, "GetCallerIdentity", &[]).await.map_err(explain)?;
    let id = sts::CallerIdentity::from_result(doc.result())?;
    let partition = id.arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws").to_string();
    Ok((partition, id.account))
}

/// A response as JSON, policy documents parsed into objects (as `aws iam` shows them).
pub(crate) fn to_json<T: Serialize>(value: &T) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(value)?;
    decode_documents(&mut v);
    Ok(v)
}

fn decode_documents(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if matches!(k.as_str(), "AssumeRolePolicyDocument" | "PolicyDocument" | "Document") {
                    if let Value::String(text) = child {
                        if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                            *child = parsed;
                        }
                    }
                } else {
                    decode_documents(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(decode_documents),
        _ => {}
    }
}

/// One object under `key` (`{"User": {...}}`); a table shows the object's fields.
fn show_one<T: Serialize>(key: &str, item: &T, out: &OutputArgs) -> anyhow::Result<()> {
    let value = to_json(item)?;
    if out.output == Format::Table && out.query.is_none() {
        output::print(&value, Format::Table);
    } else {
        let wrapped = serde_json::json!({ key: value });
        output::print(&output::select(&wrapped, out.query.as_deref()), out.output);
    }
    Ok(())
}

/// A list under `key` (`{"Users": [...]}`); a table shows `columns`, in order.
fn show_list<T: Serialize>(key: &str, items: &[T], columns: &[&str], out: &OutputArgs) -> anyhow::Result<()> {
    let values: Vec<Value> = items.iter().map(to_json).collect::<anyhow::Result<_>>()?;
    if out.output == Format::Table && out.query.is_none() {
        let rows: Vec<Vec<String>> = values
            .iter()
            .map(|v| columns.iter().map(|c| v.get(*c).map(output::cell).unwrap_or_default()).collect())
            .collect();
        output::print_columns(columns, &rows);
    } else {
        let wrapped = serde_json::json!({ key: values });
        output::print(&output::select(&wrapped, out.query.as_deref()), out.output);
    }
    Ok(())
}

const USER_COLUMNS: &[&str] = &["UserName", "UserId", "Arn", "CreateDate"];

pub async fn run(args: IamArgs) -> anyhow::Result<ExitCode> {
    let IamArgs { conn, command } = args;
    let iam = Iam::new(&conn)?;
    match command {
        IamCommand::User(cmd) => user(&iam, cmd).await?,
        IamCommand::AccessKey(cmd) => access_key(&iam, cmd).await?,
        IamCommand::Group(cmd) => group(&iam, cmd).await?,
        IamCommand::Role(cmd) => role(&iam, cmd).await?,
        IamCommand::Policy(cmd) => policy(&iam, cmd).await?,
        IamCommand::Attach(AttachArgs { target, policy }) => {
            let (word, name) = target.get()?;
            let arn = iam.policy_arn(&policy).await?;
            iam.call(
                &format!("Attach{word}Policy"),
                Params::new().add(format!("{word}Name"), name).add("PolicyArn", arn),
            )
            .await?;
        }
        IamCommand::Detach(AttachArgs { target, policy }) => {
            let (word, name) = target.get()?;
            let arn = iam.policy_arn(&policy).await?;
            iam.call(
                &format!("Detach{word}Policy"),
                Params::new().add(format!("{word}Name"), name).add("PolicyArn", arn),
            )
            .await?;
        }
        IamCommand::Attached { target, out } => {
            let (word, name) = target.get()?;
            let policies: Vec<AttachedPolicy> = iam
                .all(
                    &format!("ListAttached{word}Policies"),
                    Params::new().add(format!("{word}Name"), name),
                    iam::attached_policies_page,
                )
                .await?;
            show_list("AttachedPolicies", &policies, &["PolicyName", "PolicyArn"], &out)?;
        }
        IamCommand::Inline(cmd) => inline(&iam, cmd).await?,
        IamCommand::Mfa(cmd) => mfa(&iam, cmd).await?,
        IamCommand::Simulate(args) => simulate(&iam, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn user(iam: &Iam, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create { name, path, tags, out } => {
            let doc = iam
                .call("CreateUser", Params::new().add("UserName", name).opt("Path", path).tags("Tags", &tags))
                .await?;
            show_one("User", &iam::user_result(doc.result())?, &out)?;
        }
        UserCommand::Get { name, out } => {
            let doc = iam.call("GetUser", Params::new().opt("UserName", name)).await?;
            show_one("User", &iam::user_result(doc.result())?, &out)?;
        }
        UserCommand::List { path_prefix, out } => {
            let users = iam.all("ListUsers", Params::new().opt("PathPrefix", path_prefix), iam::users_page).await?;
            show_list("Users", &users, USER_COLUMNS, &out)?;
        }
        UserCommand::Delete { name } => {
            iam.call("DeleteUser", Params::new().add("UserName", name)).await?;
        }
        UserCommand::Tag { name, tags } => {
            iam.call("TagUser", Params::new().add("UserName", name).tags("Tags", &tags)).await?;
        }
        UserCommand::Untag { name, keys } => {
            iam.call("UntagUser", Params::new().add("UserName", name).list("TagKeys", &keys)).await?;
        }
    }
    Ok(())
}

async fn access_key(iam: &Iam, cmd: AccessKeyCommand) -> anyhow::Result<()> {
    match cmd {
        AccessKeyCommand::Create { user, json } => {
            let doc = iam.call("CreateAccessKey", Params::new().opt("UserName", user)).await?;
            let key = iam::new_access_key_result(doc.result())?;
            if json {
                // Serialized straight to text (no intermediate JSON value holding another copy).
                let text = Zeroizing::new(serde_json::to_string_pretty(&BTreeMap::from([("AccessKey", &key)]))?);
                println!("{}", text.as_str());
            } else {
                println!("AccessKeyId      {}", key.access_key_id);
                println!("SecretAccessKey  {}", key.secret_access_key.expose());
                if !key.user_name.is_empty() {
                    println!("UserName         {}", key.user_name);
                }
                eprintln!(
                    "warning: this is the only time the secret access key is shown. Store it now (a password \
                     manager, or a profile in ~/.aws/credentials); it cannot be retrieved later."
                );
            }
        }
        AccessKeyCommand::List { user, out } => {
            let keys = iam.all("ListAccessKeys", Params::new().opt("UserName", user), iam::access_keys_page).await?;
            show_list("AccessKeyMetadata", &keys, &["AccessKeyId", "Status", "UserName", "CreateDate"], &out)?;
        }
        AccessKeyCommand::Update { access_key_id, status, user } => {
            let params = Params::new().add("AccessKeyId", access_key_id).add("Status", status).opt("UserName", user);
            iam.call("UpdateAccessKey", params).await?;
        }
        AccessKeyCommand::Delete { access_key_id, user } => {
            iam.call("DeleteAccessKey", Params::new().add("AccessKeyId", access_key_id).opt("UserName", user)).await?;
        }
    }
    Ok(())
}

async fn group(iam: &Iam, cmd: GroupCommand) -> anyhow::Result<()> {
    const COLUMNS: &[&str] = &["GroupName", "GroupId", "Arn", "CreateDate"];
    match cmd {
        GroupCommand::Create { name, path, out } => {
            let doc = iam.call("CreateGroup", Params::new().add("GroupName", name).opt("Path", path)).await?;
            show_one("Group", &iam::group_result(doc.result())?, &out)?;
        }
        GroupCommand::Get { name, out } => {
            // The group comes with every page; the members are gathered over all of them.
            let mut group = None;
            let users = iam
                .all("GetGroup", Params::new().add("GroupName", name), |result| {
                    let (g, users, next) = iam::group_with_users_page(result)?;
                    group.get_or_insert(g);
                    Ok((users, next))
                })
                .await?;
            let group = group.context("GetGroup answered no group")?;
            if out.output == Format::Table && out.query.is_none() {
                output::print(&to_json(&group)?, Format::Table);
                println!();
                show_list("Users", &users, USER_COLUMNS, &out)?;
            } else {
                let value = serde_json::json!({ "Group": to_json(&group)?, "Users": to_json(&users)? });
                output::print(&output::select(&value, out.query.as_deref()), out.output);
            }
        }
        GroupCommand::List { path_prefix, user, out } => {
            let groups = match user {
                Some(user) => {
                    iam.all("ListGroupsForUser", Params::new().add("UserName", user), iam::groups_page).await?
                }
                None => iam.all("ListGroups", Params::new().opt("PathPrefix", path_prefix), iam::groups_page).await?,
            };
            show_list("Groups", &groups, COLUMNS, &out)?;
        }
        GroupCommand::Delete { name } => {
            iam.call("DeleteGroup", Params::new().add("GroupName", name)).await?;
        }
        GroupCommand::AddUser { group, user } => {
            iam.call("AddUserToGroup", Params::new().add("GroupName", group).add("UserName", user)).await?;
        }
        GroupCommand::RemoveUser { group, user } => {
            iam.call("RemoveUserFromGroup", Params::new().add("GroupName", group).add("UserName", user)).await?;
        }
    }
    Ok(())
}

async fn role(iam: &Iam, cmd: RoleCommand) -> anyhow::Result<()> {
    match cmd {
        RoleCommand::Create { name, trust_policy, path, description, max_session_duration, tags, out } => {
            let params = Params::new()
                .add("RoleName", name)
                .add("AssumeRolePolicyDocument", read_document(&trust_policy)?)
                .opt("Path", path)
                .opt("Description", description)
                .opt("MaxSessionDuration", max_session_duration.map(|d| d.to_string()))
                .tags("Tags", &tags);
            let doc = iam.call("CreateRole", params).await?;
            show_one("Role", &iam::role_result(doc.result())?, &out)?;
        }
        RoleCommand::Get { name, out } => {
            let doc = iam.call("GetRole", Params::new().add("RoleName", name)).await?;
            show_one("Role", &iam::role_result(doc.result())?, &out)?;
        }
        RoleCommand::List { path_prefix, out } => {
            let roles = iam.all("ListRoles", Params::new().opt("PathPrefix", path_prefix), iam::roles_page).await?;
            show_list("Roles", &roles, &["RoleName", "RoleId", "Arn", "CreateDate"], &out)?;
        }
        RoleCommand::Delete { name } => {
            iam.call("DeleteRole", Params::new().add("RoleName", name)).await?;
        }
        RoleCommand::Tag { name, tags } => {
            iam.call("TagRole", Params::new().add("RoleName", name).tags("Tags", &tags)).await?;
        }
        RoleCommand::Untag { name, keys } => {
            iam.call("UntagRole", Params::new().add("RoleName", name).list("TagKeys", &keys)).await?;
        }
    }
    Ok(())
}

async fn policy(iam: &Iam, cmd: PolicyCommand) -> anyhow::Result<()> {
    const VERSION_COLUMNS: &[&str] = &["VersionId", "IsDefaultVersion", "CreateDate"];
    match cmd {
        PolicyCommand::Create { name, document, path, description, tags, out } => {
            let params = Params::new()
                .add("PolicyName", name)
                .add("PolicyDocument", read_document(&document)?)
                .opt("Path", path)
                .opt("Description", description)
                .tags("Tags", &tags);
            let doc = iam.call("CreatePolicy", params).await?;
            show_one("Policy", &iam::policy_result(doc.result())?, &out)?;
        }
        PolicyCommand::Get { policy, out } => {
            let arn = iam.policy_arn(&policy).await?;
            let doc = iam.call("GetPolicy", Params::new().add("PolicyArn", arn)).await?;
            show_one("Policy", &iam::policy_result(doc.result())?, &out)?;
        }
        PolicyCommand::List { scope, only_attached, path_prefix, out } => {
            let params = Params::new()
                .add("Scope", scope)
                .opt("OnlyAttached", only_attached.then_some("true"))
                .opt("PathPrefix", path_prefix);
            let policies = iam.all("ListPolicies", params, iam::policies_page).await?;
            show_list("Policies", &policies, &["PolicyName", "Arn", "DefaultVersionId", "AttachmentCount"], &out)?;
        }
        PolicyCommand::Delete { policy } => {
            let arn = iam.policy_arn(&policy).await?;
            iam.call("DeletePolicy", Params::new().add("PolicyArn", arn)).await?;
        }
        PolicyCommand::Versions { policy, out } => {
            let arn = iam.policy_arn(&policy).await?;
            let versions =
                iam.all("ListPolicyVersions", Params::new().add("PolicyArn", arn), iam::policy_versions_page).await?;
            show_list("Versions", &versions, VERSION_COLUMNS, &out)?;
        }
        PolicyCommand::CreateVersion { policy, document, set_default, out } => {
            let params = Params::new()
                .add("PolicyArn", iam.policy_arn(&policy).await?)
                .add("PolicyDocument", read_document(&document)?)
                .opt("SetAsDefault", set_default.then_some("true"));
            let doc = iam.call("CreatePolicyVersion", params).await?;
            show_one("PolicyVersion", &iam::policy_version_result(doc.result())?, &out)?;
        }
        PolicyCommand::GetVersion { policy, version_id, out } => {
            let arn = iam.policy_arn(&policy).await?;
            let version_id = match version_id {
                Some(v) => v,
                None => {
                    let doc = iam.call("GetPolicy", Params::new().add("PolicyArn", arn.clone())).await?;
                    iam::policy_result(doc.result())?.default_version_id
                }
            };
            let doc =
                iam.call("GetPolicyVersion", Params::new().add("PolicyArn", arn).add("VersionId", version_id)).await?;
            show_one("PolicyVersion", &iam::policy_version_result(doc.result())?, &out)?;
        }
        PolicyCommand::SetDefault { policy, version_id } => {
            let params = Params::new().add("PolicyArn", iam.policy_arn(&policy).await?).add("VersionId", version_id);
            iam.call("SetDefaultPolicyVersion", params).await?;
        }
        PolicyCommand::DeleteVersion { policy, version_id } => {
            let params = Params::new().add("PolicyArn", iam.policy_arn(&policy).await?).add("VersionId", version_id);
            iam.call("DeletePolicyVersion", params).await?;
        }
    }
    Ok(())
}

async fn inline(iam: &Iam, cmd: InlineCommand) -> anyhow::Result<()> {
    match cmd {
        InlineCommand::Put { target, policy_name, document } => {
            let (word, name) = target.get()?;
            let params = Params::new()
                .add(format!("{word}Name"), name)
                .add("PolicyName", policy_name)
                .add("PolicyDocument", read_document(&document)?);
            iam.call(&format!("Put{word}Policy"), params).await?;
        }
        InlineCommand::Get { target, policy_name, out } => {
            let (word, name) = target.get()?;
            let params = Params::new().add(format!("{word}Name"), name).add("PolicyName", policy_name);
            let doc = iam.call(&format!("Get{word}Policy"), params).await?;
            let policy = iam::inline_policy_result(doc.result())?;
            let mut value = to_json(&policy)?;
            if let Value::Object(map) = &mut value {
                map.insert(format!("{word}Name"), Value::String(name.to_string()));
            }
            output::print(&output::select(&value, out.query.as_deref()), out.output);
        }
        InlineCommand::List { target, out } => {
            let (word, name) = target.get()?;
            let names: Vec<String> = iam
                .all(
                    &format!("List{word}Policies"),
                    Params::new().add(format!("{word}Name"), name),
                    iam::policy_names_page,
                )
                .await?;
            if out.output == Format::Table && out.query.is_none() {
                output::print_columns(&["PolicyName"], &names.into_iter().map(|n| vec![n]).collect::<Vec<_>>());
            } else {
                let value = serde_json::json!({ "PolicyNames": names });
                output::print(&output::select(&value, out.query.as_deref()), out.output);
            }
        }
        InlineCommand::Delete { target, policy_name } => {
            let (word, name) = target.get()?;
            let params = Params::new().add(format!("{word}Name"), name).add("PolicyName", policy_name);
            iam.call(&format!("Delete{word}Policy"), params).await?;
        }
    }
    Ok(())
}

/// `coffer iam mfa create --json`: the device and, this once, its seed.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NewMfaDevice<'a> {
    serial_number: &'a str,
    base32_string_seed: &'a str,
    otpauth_uri: &'a str,
}

/// `otpauth://totp/Coffer:NAME@ACCOUNT?secret=SEED&issuer=Coffer`, for an authenticator app (or a QR code).
fn otpauth_uri(serial: &str, seed: &str) -> Zeroizing<String> {
    // arn:aws:iam::ACCOUNT:mfa/PATH/NAME
    let account = serial.split(':').nth(4).unwrap_or_default();
    let name = serial.rsplit('/').next().unwrap_or(serial);
    let label = if account.is_empty() { name.to_string() } else { format!("{name}@{account}") };
    Zeroizing::new(format!(
        "otpauth://totp/Coffer:{}?secret={seed}&issuer=Coffer&algorithm=SHA1&digits=6&period=30",
        uri_escape(&label)
    ))
}

fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn mfa(iam: &Iam, cmd: MfaCommand) -> anyhow::Result<()> {
    match cmd {
        MfaCommand::Create { name, path, json } => {
            let doc = iam
                .call("CreateVirtualMFADevice", Params::new().add("VirtualMFADeviceName", name).opt("Path", path))
                .await?;
            let device = iam::virtual_mfa_device_result(doc.result())?;
            let seed = device.base32_string_seed.as_ref().context("the server answered no Base32StringSeed")?;
            let uri = otpauth_uri(&device.serial_number, seed.expose());
            if json {
                let created = NewMfaDevice {
                    serial_number: &device.serial_number,
                    base32_string_seed: seed.expose(),
                    otpauth_uri: uri.as_str(),
                };
                let text =
                    Zeroizing::new(serde_json::to_string_pretty(&BTreeMap::from([("VirtualMFADevice", created)]))?);
                println!("{}", text.as_str());
            } else {
                println!("SerialNumber      {}", device.serial_number);
                println!("Base32StringSeed  {}", seed.expose());
                println!("OtpauthUri        {}", uri.as_str());
                eprintln!(
                    "warning: this is the only time the seed is shown. Add it to an authenticator app now (type the \
                     seed, or make a QR code of the otpauth URI), then run `coffer iam mfa enable --user USER {} \
                     CODE1 CODE2` with two consecutive codes.",
                    device.serial_number
                );
            }
        }
        MfaCommand::Enable { user, serial, code1, code2 } => {
            let params = Params::new()
                .add("UserName", user)
                .add("SerialNumber", serial)
                .add("AuthenticationCode1", code1)
                .add("AuthenticationCode2", code2);
            iam.call("EnableMFADevice", params).await?;
        }
        MfaCommand::List { user: Some(user), out } => {
            let devices = iam.all("ListMFADevices", Params::new().add("UserName", user), iam::mfa_devices_page).await?;
            show_list("MFADevices", &devices, &["SerialNumber", "UserName", "EnableDate"], &out)?;
        }
        MfaCommand::List { user: None, out } => {
            let devices = iam.all("ListVirtualMFADevices", Params::new(), iam::virtual_mfa_devices_page).await?;
            if out.output == Format::Table && out.query.is_none() {
                let rows: Vec<Vec<String>> = devices
                    .iter()
                    .map(|d| {
                        vec![
                            d.serial_number.clone(),
                            d.user.as_ref().map(|u| u.user_name.clone()).unwrap_or_else(|| "-".into()),
                            d.enable_date
                                .map(|t| coffer_client::query::format_timestamp(&t))
                                .unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                output::print_columns(&["SerialNumber", "UserName", "EnableDate"], &rows);
            } else {
                show_list("VirtualMFADevices", &devices, &[], &out)?;
            }
        }
    }
    Ok(())
}

/// The type IAM's simulator wants for a context key: a list when the key was repeated, else what the
/// global condition keys are, else a string.
fn context_type(key: &str, values: usize) -> &'static str {
    let single = match key.to_ascii_lowercase().as_str() {
        "aws:sourceip" => "ip",
        "aws:securetransport" | "aws:multifactorauthpresent" | "aws:viaawsservice" => "boolean",
        "aws:currenttime" | "aws:tokenissuetime" => "date",
        "aws:epochtime" | "aws:multifactorauthage" => "numeric",
        _ => "string",
    };
    match (values, single) {
        (1, t) => t,
        (_, "ip") => "ipList",
        (_, "boolean") => "booleanList",
        (_, "date") => "dateList",
        (_, "numeric") => "numericList",
        _ => "stringList",
    }
}

fn context_entries(pairs: &[(String, String)]) -> Vec<Vec<(String, String)>> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in pairs {
        by_key.entry(k).or_default().push(v);
    }
    by_key
        .into_iter()
        .map(|(key, values)| {
            let mut fields = vec![("ContextKeyName".to_string(), key.to_string())];
            for (i, v) in values.iter().enumerate() {
                fields.push((format!("ContextKeyValues.member.{}", i + 1), v.to_string()));
            }
            fields.push(("ContextKeyType".to_string(), context_type(key, values.len()).to_string()));
            fields
        })
        .collect()
}

fn statements_cell(statements: &[iam::Statement]) -> String {
    if statements.is_empty() {
        return "-".into();
    }
    statements
        .iter()
        .map(|s| {
            let id = s.source_policy_id.clone().unwrap_or_else(|| "?".into());
            match s.start_position {
                Some(p) => format!("{id}@{}:{}", p.line, p.column),
                None => id,
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// ACTION  RESOURCE  DECISION  MATCHED-STATEMENTS: one row per action and resource.
fn simulation_rows(results: &[EvaluationResult]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for r in results {
        if r.resource_specific_results.is_empty() {
            rows.push(vec![
                r.eval_action_name.clone(),
                r.eval_resource_name.clone().unwrap_or_else(|| "*".into()),
                r.eval_decision.clone(),
                statements_cell(&r.matched_statements),
            ]);
        } else {
            for s in &r.resource_specific_results {
                rows.push(vec![
                    r.eval_action_name.clone(),
                    s.eval_resource_name.clone(),
                    s.eval_resource_decision.clone(),
                    statements_cell(&s.matched_statements),
                ]);
            }
        }
    }
    rows
}

async fn simulate(iam: &Iam, args: SimulateArgs) -> anyhow::Result<()> {
    let SimulateArgs { principal, policies, actions, resources, context, resource_policy, caller, json } = args;
    let mut params = Params::new();
    let action = match principal {
        Some(arn) => {
            if !arn.starts_with("arn:") {
                bail!("--principal takes the ARN of a user, group or role (see coffer iam user get NAME)");
            }
            params = params.add("PolicySourceArn", arn);
            "SimulatePrincipalPolicy"
        }
        None => {
            let docs: Vec<String> = policies.iter().map(|p| read_document(p)).collect::<anyhow::Result<_>>()?;
            params = params.list("PolicyInputList", &docs);
            "SimulateCustomPolicy"
        }
    };
    params = params
        .list("ActionNames", &actions)
        .list("ResourceArns", &resources)
        .structs("ContextEntries", &context_entries(&context))
        .opt("ResourcePolicy", resource_policy.as_deref().map(read_document).transpose()?)
        .opt("CallerArn", caller);
    let results = iam.all(action, params, iam::evaluation_results_page).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "EvaluationResults": to_json(&results)? }))?);
        return Ok(());
    }
    output::print_columns(&["ACTION", "RESOURCE", "DECISION", "MATCHED-STATEMENTS"], &simulation_rows(&results));
    let mut missing: Vec<&str> = results
        .iter()
        .flat_map(|r| {
            r.missing_context_values
                .iter()
                .chain(r.resource_specific_results.iter().flat_map(|s| s.missing_context_values.iter()))
        })
        .map(String::as_str)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        eprintln!(
            "note: the decisions depend on context keys that were not given: {} (add --context KEY=VALUE)",
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_read_from_files_at_files_or_inline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, r#"{"Version":"2012-10-17"}"#).unwrap();
        let p = path.display().to_string();
        assert_eq!(read_document(&p).unwrap(), r#"{"Version":"2012-10-17"}"#);
        assert_eq!(read_document(&format!("@{p}")).unwrap(), r#"{"Version":"2012-10-17"}"#);
        assert_eq!(read_document(&format!("file://{p}")).unwrap(), r#"{"Version":"2012-10-17"}"#);
        assert_eq!(read_document(r#" {"a":1}"#).unwrap(), r#" {"a":1}"#);
        let err = read_document("/nonexistent/policy.json").unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/policy.json"));
    }

    #[test]
    fn context_entries_group_keys_and_guess_types() {
        let pairs = vec![
            ("aws:SourceIp".to_string(), "10.0.0.1".to_string()),
            ("team".to_string(), "a".to_string()),
            ("team".to_string(), "b".to_string()),
            ("aws:MultiFactorAuthPresent".to_string(), "true".to_string()),
        ];
        let entries = context_entries(&pairs);
        let as_strs: Vec<Vec<(&str, &str)>> =
            entries.iter().map(|e| e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()).collect();
        assert_eq!(
            as_strs,
            vec![
                vec![
                    ("ContextKeyName", "aws:MultiFactorAuthPresent"),
                    ("ContextKeyValues.member.1", "true"),
                    ("ContextKeyType", "boolean")
                ],
                vec![
                    ("ContextKeyName", "aws:SourceIp"),
                    ("ContextKeyValues.member.1", "10.0.0.1"),
                    ("ContextKeyType", "ip")
                ],
                vec![
                    ("ContextKeyName", "team"),
                    ("ContextKeyValues.member.1", "a"),
                    ("ContextKeyValues.member.2", "b"),
                    ("ContextKeyType", "stringList")
                ],
            ]
        );
    }

    #[test]
    fn documents_in_json_output_are_objects() {
        let v = serde_json::json!({"Role": {"AssumeRolePolicyDocument": "{\"Version\":\"2012-10-17\"}", "RoleName": "{x"},
            "Versions": [{"Document": "not json"}]});
        let mut v = v;
        decode_documents(&mut v);
        assert_eq!(v["Role"]["AssumeRolePolicyDocument"]["Version"], "2012-10-17");
        assert_eq!(v["Role"]["RoleName"], "{x");
        assert_eq!(v["Versions"][0]["Document"], "not json");
    }

    #[test]
    fn otpauth_uris_name_the_device_and_account() {
        let uri = otpauth_uri("arn:aws:iam::000000000000:mfa/team/alice phone", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Coffer:alice%20phone@000000000000?secret=JBSWY3DPEHPK3PXP&issuer=Coffer&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn simulation_rows_expand_resource_specific_results() {
        let doc = XmlDoc::parse(
            r#"<SimulatePrincipalPolicyResponse><SimulatePrincipalPolicyResult><EvaluationResults>
<member><EvalActionName>secretsmanager:GetSecretValue</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>allowed</EvalDecision>
  <MatchedStatements><member><SourcePolicyId>read</SourcePolicyId><StartPosition><Line>1</Line><Column>2</Column></StartPosition></member><member><SourcePolicyId>more</SourcePolicyId></member></MatchedStatements></member>
<member><EvalActionName>kms:Decrypt</EvalActionName><EvalDecision>implicitDeny</EvalDecision>
  <ResourceSpecificResults>
    <member><EvalResourceName>arn:a</EvalResourceName><EvalResourceDecision>explicitDeny</EvalResourceDecision><MatchedStatements><member><SourcePolicyId>deny</SourcePolicyId></member></MatchedStatements></member>
    <member><EvalResourceName>arn:b</EvalResourceName><EvalResourceDecision>implicitDeny</EvalResourceDecision></member>
  </ResourceSpecificResults></member>
</EvaluationResults><IsTruncated>false</IsTruncated></SimulatePrincipalPolicyResult></SimulatePrincipalPolicyResponse>"#,
        )
        .unwrap();
        let (results, _) = iam::evaluation_results_page(doc.result()).unwrap();
        assert_eq!(
            simulation_rows(&results),
            vec![
                vec!["secretsmanager:GetSecretValue", "*", "allowed", "read@1:2,more"],
                vec!["kms:Decrypt", "arn:a", "explicitDeny", "deny"],
                vec!["kms:Decrypt", "arn:b", "implicitDeny", "-"],
            ]
        );
    }
}
