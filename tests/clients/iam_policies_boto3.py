"""The seeds' IAM policies, attached verbatim to users and roles through real boto3, then every allowed call
shown to succeed and the others denied — and `simulate_principal_policy` giving the same verdicts:

- seed 001: development credentials never read `/prod/` secrets or parameters; the `aws:PrincipalTag/Environment`
  condition follows the user's tag as it changes; `get_user_policy` shows the inline policy;
- seed 002: the application read-only policy (on a role assumed through STS), the CI/CD policy (cannot delete
  production), the rotation policy (touches only its named secrets; explicit deny on data stores);
- seed 000: the Lambda execution role reads `/amplify/TWILIO_*` and nothing else;
- MFA: a virtual device enabled with two TOTP codes; a policy requiring `aws:MultiFactorAuthPresent` allows
  only a GetSessionToken session opened with a valid code;
- a user without policies is denied everything; a deleted role's sessions stop working.

The policy documents come from crates/coffer-policy/tests/fixtures (the seeds' JSON, unchanged).
The connection comes from the environment (AWS_ENDPOINT_URL, AWS_SHARED_CREDENTIALS_FILE: root credentials).
"""

import hashlib
import hmac
import json
import os
import struct
import sys
import time

import boto3
from botocore.exceptions import ClientError

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "crates", "coffer-policy", "tests", "fixtures")
ENDPOINT = os.environ["AWS_ENDPOINT_URL"]


def step(text):
    print(f"--- {text}", flush=True)


def check(condition, what, detail=""):
    if not condition:
        print(f"FAIL: {what}{': ' + repr(detail) if detail != '' else ''}", file=sys.stderr)
        sys.exit(1)


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return f.read()


def as_policy(statement_doc):
    """Seed 001 shows bare statements; wrap one in a policy document without changing it."""
    doc = json.loads(statement_doc)
    return statement_doc if "Statement" in doc else json.dumps({"Version": "2012-10-17", "Statement": [doc]})


def outcome(call, **kwargs):
    """'allowed' or the error code."""
    try:
        call(**kwargs)
        return "allowed"
    except ClientError as e:
        return e.response["Error"]["Code"]


def expect_denied(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        err = e.response["Error"]
        check(err["Code"] in ("AccessDeniedException", "AccessDenied"), f"{call.__name__} denied", err)
        check("is not authorized to perform" in err["Message"], "AWS's denial message", err["Message"])
        return err["Message"]
    check(False, f"{call.__name__} should have been denied", kwargs)


def clients(creds, region="us-east-1"):
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        region_name=region,
    )
    return {
        name: session.client(name, endpoint_url=ENDPOINT)
        for name in ("secretsmanager", "ssm", "sts", "iam", "kms")
    }


def wait_for_key(make_call):
    """A new access key is usable at once on this server; retry briefly anyway, as the AWS docs advise."""
    for _ in range(20):
        try:
            return make_call()
        except ClientError as e:
            if e.response["Error"]["Code"] != "InvalidClientTokenId":
                raise
            time.sleep(0.1)
    return make_call()


def totp(seed_b32, at=None):
    import base64

    key = base64.b32decode(seed_b32 + "=" * (-len(seed_b32) % 8))
    counter = int((at if at is not None else time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


iam = boto3.client("iam", region_name="us-east-1")
sts = boto3.client("sts", region_name="us-east-1")
sm = boto3.client("secretsmanager", region_name="us-east-1")
ssm_west = boto3.client("ssm", region_name="us-west-1")
account = sts.get_caller_identity()["Account"]


def new_user(name, tags=()):
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags])
    key = iam.create_access_key(UserName=name)["AccessKey"]
    check(key["UserName"] == name and key["Status"] == "Active", "new access key", key)
    return key


step("root sets up the secrets and parameters the seeds name")
secrets = {}
for name, tags in [
    ("/prod/backend/database_password", []),
    ("/prod/backend/jwt_secret", []),
    ("/prod/backend/stripe_key", []),
    ("/non-prod/backend/database_password", []),
    ("whatsapp-saas/mvp/admin-token", []),
    ("whatsapp-saas/mvp/meta-access-token", []),
    ("whatsapp-saas/mvp/database-url", [{"Key": "Environment", "Value": "production"}]),
    ("whatsapp-saas/mvp/redis-url", [{"Key": "Environment", "Value": "production"}]),
    ("whatsapp-saas/mvp/scratch", []),
]:
    kwargs = {"Name": name, "SecretString": f"synthetic-value-for-{name}"}
    if tags:
        kwargs["Tags"] = tags
    secrets[name] = sm.create_secret(**kwargs)["ARN"]
for name in ["/amplify/TWILIO_AUTH_TOKEN", "/amplify/SENDGRID_API_KEY", "/amplify/ADMIN_PASSWORD"]:
    ssm_west.put_parameter(Name=name, Value=f"synthetic-{name}", Type="SecureString")
ssm_west.put_parameter(Name="/amplify/FROM_EMAIL", Value="noreply@example.test", Type="String")

step("a user without policies is denied everything")
nobody = clients(new_user("nobody"))
wait_for_key(lambda: nobody["sts"].get_caller_identity())
message = expect_denied(nobody["secretsmanager"].get_secret_value, SecretId="/non-prod/backend/database_password")
check(
    message.startswith(f"User: arn:aws:iam::{account}:user/nobody is not authorized to perform: secretsmanager:GetSecretValue")
    and message.endswith("because no identity-based policy allows the secretsmanager:GetSecretValue action"),
    "denial message",
    message,
)
expect_denied(nobody["secretsmanager"].list_secrets)
expect_denied(nobody["secretsmanager"].get_secret_value, SecretId="no/such/secret")
expect_denied(nobody["kms"].list_keys)
expect_denied(nobody["iam"].list_users)
check(nobody["sts"].get_caller_identity()["Arn"] == f"arn:aws:iam::{account}:user/nobody", "whoami needs no permission")

step("seed 001: development and production credentials, separated by path and by the Environment tag")
prod_read = as_policy(fixture("seed001_0.json"))  # GetSecretValue on /prod/backend/* if PrincipalTag/Environment = prod
dev_read = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "arn:aws:secretsmanager:us-east-1:*:secret:/non-prod/*",
            }
        ],
    }
)
for user, env in [("dev-user", "dev"), ("prod-user", "prod")]:
    new_user(user, [("Environment", env)])
    iam.put_user_policy(UserName=user, PolicyName="SecretAccess", PolicyDocument=dev_read)
    iam.put_user_policy(UserName=user, PolicyName="ProdAccess", PolicyDocument=prod_read)
shown = iam.get_user_policy(UserName="dev-user", PolicyName="SecretAccess")["PolicyDocument"]
check(shown == json.loads(dev_read), "get_user_policy shows the document", shown)
listed = iam.list_access_keys(UserName="dev-user")["AccessKeyMetadata"]
check(len(listed) == 1 and listed[0]["AccessKeyId"].startswith("AKIA"), "listed key", listed)
# Second keys for the two users (two is the quota): the test holds these secrets.
dev_creds = iam.create_access_key(UserName="dev-user")["AccessKey"]
prod_creds = iam.create_access_key(UserName="prod-user")["AccessKey"]
try:
    iam.create_access_key(UserName="dev-user")
    check(False, "a third access key is refused")
except ClientError as e:
    check(e.response["Error"]["Code"] == "LimitExceeded", "access key quota", e.response["Error"])
dev = clients(dev_creds)
prod = clients(prod_creds)
value = dev["secretsmanager"].get_secret_value(SecretId="/non-prod/backend/database_password")["SecretString"]
check(value == "synthetic-value-for-/non-prod/backend/database_password", "dev reads non-prod")
for name in ["/prod/backend/database_password", "/prod/backend/jwt_secret"]:
    expect_denied(dev["secretsmanager"].get_secret_value, SecretId=name)
    value = prod["secretsmanager"].get_secret_value(SecretId=name)["SecretString"]
    check(value == f"synthetic-value-for-{name}", "prod reads prod", name)

step("the PrincipalTag condition follows the tag")
iam.tag_user(UserName="prod-user", Tags=[{"Key": "Environment", "Value": "dev"}])
expect_denied(prod["secretsmanager"].get_secret_value, SecretId="/prod/backend/database_password")
iam.tag_user(UserName="dev-user", Tags=[{"Key": "Environment", "Value": "prod"}])
dev["secretsmanager"].get_secret_value(SecretId="/prod/backend/database_password")
iam.untag_user(UserName="dev-user", TagKeys=["Environment"])
expect_denied(dev["secretsmanager"].get_secret_value, SecretId="/prod/backend/database_password")
iam.tag_user(UserName="prod-user", Tags=[{"Key": "Environment", "Value": "prod"}])

step("seed 002: the three policies as managed policies")
policies = {}
for short, fixture_name in [
    ("read-only", "seed002_reconstructed_read_only.json"),
    ("cicd", "seed002_reconstructed_cicd.json"),
    ("rotation", "seed002_reconstructed_rotation.json"),
]:
    created = iam.create_policy(
        PolicyName=f"whatsapp-saas-mvp-secrets-{short}", PolicyDocument=fixture(fixture_name)
    )["Policy"]
    check(created["Arn"] == f"arn:aws:iam::{account}:policy/whatsapp-saas-mvp-secrets-{short}", "policy ARN", created)
    check(created["DefaultVersionId"] == "v1", "first version", created)
    policies[short] = created["Arn"]

trust_account = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}],
    }
)
for role in ["ecs-task-role", "rotation-lambda-role", "amplify-lambda-role"]:
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust_account)
iam.attach_role_policy(RoleName="ecs-task-role", PolicyArn=policies["read-only"])
iam.attach_role_policy(RoleName="rotation-lambda-role", PolicyArn=policies["rotation"])
iam.put_role_policy(RoleName="amplify-lambda-role", PolicyName="lambda-execution", PolicyDocument=fixture("seed000_0.json"))
attached = iam.list_attached_role_policies(RoleName="ecs-task-role")["AttachedPolicies"]
check([p["PolicyArn"] for p in attached] == [policies["read-only"]], "attached policies", attached)
check(iam.get_policy(PolicyArn=policies["read-only"])["Policy"]["AttachmentCount"] == 1, "attachment count")

new_user("github-actions-user")
iam.attach_user_policy(UserName="github-actions-user", PolicyArn=policies["cicd"])
cicd = clients(iam.create_access_key(UserName="github-actions-user")["AccessKey"])
deployer_creds = new_user("deployer")
iam.put_user_policy(
    UserName="deployer",
    PolicyName="assume-service-roles",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{account}:role/*"}],
        }
    ),
)
deployer = clients(deployer_creds)


def assume(role, session="test-session", duration=None):
    kwargs = {"RoleArn": f"arn:aws:iam::{account}:role/{role}", "RoleSessionName": session}
    if duration:
        kwargs["DurationSeconds"] = duration
    out = deployer["sts"].assume_role(**kwargs)
    check(out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "session ARN", out)
    check(out["Credentials"]["AccessKeyId"].startswith("ASIA"), "temporary key id", out["Credentials"]["AccessKeyId"])
    return out["Credentials"]


step("application read-only role (assumed through STS)")
app = clients(assume("ecs-task-role", "app"))
check(
    app["sts"].get_caller_identity()["Arn"] == f"arn:aws:sts::{account}:assumed-role/ecs-task-role/app",
    "assumed identity",
)
app["secretsmanager"].get_secret_value(SecretId="whatsapp-saas/mvp/admin-token")
app["secretsmanager"].describe_secret(SecretId="whatsapp-saas/mvp/database-url")
expect_denied(app["secretsmanager"].put_secret_value, SecretId="whatsapp-saas/mvp/admin-token", SecretString="x")
expect_denied(app["secretsmanager"].get_secret_value, SecretId="/prod/backend/database_password")
expect_denied(app["secretsmanager"].delete_secret, SecretId="whatsapp-saas/mvp/admin-token")

step("CI/CD: full access to MVP secrets, but no production deletes")
cicd["secretsmanager"].create_secret(Name="whatsapp-saas/mvp/new-from-ci", SecretString="synthetic-ci")
cicd["secretsmanager"].put_secret_value(SecretId="whatsapp-saas/mvp/admin-token", SecretString="synthetic-rotated")
names = [s["Name"] for s in cicd["secretsmanager"].list_secrets()["SecretList"]]
check("whatsapp-saas/mvp/admin-token" in names, "CI lists secrets", names)
message = expect_denied(cicd["secretsmanager"].delete_secret, SecretId="whatsapp-saas/mvp/database-url")
check(message.endswith("with an explicit deny in an identity-based policy"), "explicit deny message", message)
cicd["secretsmanager"].delete_secret(SecretId="whatsapp-saas/mvp/scratch", RecoveryWindowInDays=7)
expect_denied(cicd["secretsmanager"].create_secret, Name="/prod/backend/sneaky", SecretString="x")
expect_denied(cicd["secretsmanager"].get_secret_value, SecretId="/prod/backend/jwt_secret")

step("rotation role: only its named secrets; never the data stores")
rot = clients(assume("rotation-lambda-role", "rotator"))
rot["secretsmanager"].put_secret_value(SecretId="whatsapp-saas/mvp/admin-token", SecretString="synthetic-next")
rot["secretsmanager"].put_secret_value(SecretId="whatsapp-saas/mvp/meta-access-token", SecretString="synthetic-meta")
expect_denied(rot["secretsmanager"].put_secret_value, SecretId="whatsapp-saas/mvp/database-url", SecretString="x")
# RotateSecret itself arrives with rotation; its explicit deny on data stores is checked by the simulator below.
rot["secretsmanager"].get_secret_value(SecretId="whatsapp-saas/mvp/admin-token")
expect_denied(rot["secretsmanager"].update_secret_version_stage, SecretId="whatsapp-saas/mvp/redis-url",
              VersionStage="AWSCURRENT", MoveToVersionId="00000000-0000-0000-0000-000000000000")
expect_denied(rot["secretsmanager"].get_secret_value, SecretId="/prod/backend/database_password")

step("seed 000: the Lambda execution role reads /amplify/TWILIO_* (and the listed names) only")
lam = clients(assume("amplify-lambda-role", "lambda"), "us-west-1")
value = lam["ssm"].get_parameter(Name="/amplify/TWILIO_AUTH_TOKEN", WithDecryption=True)["Parameter"]["Value"]
check(value == "synthetic-/amplify/TWILIO_AUTH_TOKEN", "lambda reads its parameter")
lam["ssm"].get_parameter(Name="/amplify/FROM_EMAIL")
expect_denied(lam["ssm"].get_parameter, Name="/amplify/ADMIN_PASSWORD", WithDecryption=True)
expect_denied(lam["ssm"].get_parameters, Names=["/amplify/TWILIO_AUTH_TOKEN", "/amplify/ADMIN_PASSWORD"])
expect_denied(lam["ssm"].put_parameter, Name="/amplify/TWILIO_AUTH_TOKEN", Value="x", Type="SecureString", Overwrite=True)
expect_denied(lam["secretsmanager"].get_secret_value, SecretId="/prod/backend/database_password")

step("simulate_principal_policy gives the verdicts the real calls got")
region_arn = f"arn:aws:secretsmanager:us-east-1:{account}:secret:"
cases = [
    # (principal, action, resource ARN, real call or None, expected decision)
    ("role/ecs-task-role", "secretsmanager:GetSecretValue", secrets["whatsapp-saas/mvp/admin-token"], "allowed"),
    ("role/ecs-task-role", "secretsmanager:PutSecretValue", secrets["whatsapp-saas/mvp/admin-token"], "implicitDeny"),
    ("user/github-actions-user", "secretsmanager:PutSecretValue", secrets["whatsapp-saas/mvp/admin-token"], "allowed"),
    ("user/github-actions-user", "secretsmanager:GetSecretValue", secrets["/prod/backend/jwt_secret"], "implicitDeny"),
    ("role/rotation-lambda-role", "secretsmanager:RotateSecret", secrets["whatsapp-saas/mvp/redis-url"], "explicitDeny"),
    ("role/rotation-lambda-role", "secretsmanager:PutSecretValue", secrets["whatsapp-saas/mvp/admin-token"], "allowed"),
    ("role/amplify-lambda-role", "ssm:GetParameter", f"arn:aws:ssm:us-west-1:{account}:parameter/amplify/TWILIO_AUTH_TOKEN", "allowed"),
    ("role/amplify-lambda-role", "ssm:GetParameter", f"arn:aws:ssm:us-west-1:{account}:parameter/amplify/ADMIN_PASSWORD", "implicitDeny"),
    ("user/nobody", "secretsmanager:GetSecretValue", secrets["/non-prod/backend/database_password"], "implicitDeny"),
]
for principal, action, resource, expected in cases:
    result = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{account}:{principal}", ActionNames=[action], ResourceArns=[resource]
    )["EvaluationResults"][0]
    check(result["EvalDecision"] == expected, f"simulate {principal} {action}", result)
    check(result["EvalActionName"] == action and result["EvalResourceName"] == resource, "echoed names", result)
    if expected != "implicitDeny":
        check(result["MatchedStatements"], "matched statements named", result)
# The seed's own commands, with their suffix-less ARNs.
result = iam.simulate_principal_policy(
    PolicySourceArn=f"arn:aws:iam::{account}:role/ecs-task-role",
    ActionNames=["secretsmanager:GetSecretValue"],
    ResourceArns=[f"arn:aws:secretsmanager:us-east-1:{account}:secret:whatsapp-saas/mvp/admin-token"],
)["EvaluationResults"][0]
check(result["EvalDecision"] == "allowed", "seed 002's simulate command", result)
tagged = iam.simulate_principal_policy(
    PolicySourceArn=f"arn:aws:iam::{account}:user/prod-user",
    ActionNames=["secretsmanager:GetSecretValue"],
    ResourceArns=[secrets["/prod/backend/database_password"]],
)["EvaluationResults"][0]
check(tagged["EvalDecision"] == "allowed", "simulate sees the principal's tags", tagged)

step("MFA: a production policy that requires it")
mfa_user_creds = new_user("oncall")
iam.put_user_policy(
    UserName="oncall",
    PolicyName="prod-with-mfa",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": f"{region_arn}/prod/*",
                    "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                }
            ],
        }
    ),
)
device = iam.create_virtual_mfa_device(VirtualMFADeviceName="oncall-phone")["VirtualMFADevice"]
serial = device["SerialNumber"]
seed = device["Base32StringSeed"]
seed = seed.decode() if isinstance(seed, bytes) else seed
check(serial == f"arn:aws:iam::{account}:mfa/oncall-phone", "serial number", serial)
now = time.time()
iam.enable_mfa_device(
    UserName="oncall", SerialNumber=serial, AuthenticationCode1=totp(seed, now - 30), AuthenticationCode2=totp(seed, now)
)
check([d["SerialNumber"] for d in iam.list_mfa_devices(UserName="oncall")["MFADevices"]] == [serial], "device listed")
oncall = clients(mfa_user_creds)
expect_denied(oncall["secretsmanager"].get_secret_value, SecretId="/prod/backend/stripe_key")
plain_session = clients(oncall["sts"].get_session_token()["Credentials"])
expect_denied(plain_session["secretsmanager"].get_secret_value, SecretId="/prod/backend/stripe_key")
try:
    oncall["sts"].get_session_token(SerialNumber=serial, TokenCode="000000" if totp(seed) != "000000" else "111111")
    check(False, "a wrong MFA code is refused")
except ClientError as e:
    check(e.response["Error"]["Code"] == "AccessDenied", "wrong code error", e.response["Error"])
# Next time step: the code used to enable the device cannot be replayed.
while int(time.time() // 30) == int(now // 30):
    time.sleep(0.5)
mfa_session = clients(oncall["sts"].get_session_token(SerialNumber=serial, TokenCode=totp(seed))["Credentials"])
value = mfa_session["secretsmanager"].get_secret_value(SecretId="/prod/backend/stripe_key")["SecretString"]
check(value == "synthetic-value-for-/prod/backend/stripe_key", "MFA session reads production")

step("access keys: deactivated keys and deleted roles stop working")
dev_key_id = dev_creds["AccessKeyId"]
iam.update_access_key(UserName="dev-user", AccessKeyId=dev_key_id, Status="Inactive")
check(outcome(dev["sts"].get_caller_identity) == "InvalidClientTokenId", "inactive key refused")
iam.update_access_key(UserName="dev-user", AccessKeyId=dev_key_id, Status="Active")
dev["sts"].get_caller_identity()
iam.detach_role_policy(RoleName="ecs-task-role", PolicyArn=policies["read-only"])
expect_denied(app["secretsmanager"].get_secret_value, SecretId="whatsapp-saas/mvp/admin-token")
iam.attach_role_policy(RoleName="ecs-task-role", PolicyArn=policies["read-only"])
app["secretsmanager"].get_secret_value(SecretId="whatsapp-saas/mvp/admin-token")
iam.detach_role_policy(RoleName="ecs-task-role", PolicyArn=policies["read-only"])
iam.delete_role(RoleName="ecs-task-role")
iam.create_role(RoleName="ecs-task-role", AssumeRolePolicyDocument=trust_account)
iam.attach_role_policy(RoleName="ecs-task-role", PolicyArn=policies["read-only"])
expect_denied(app["secretsmanager"].get_secret_value, SecretId="whatsapp-saas/mvp/admin-token")
forged = dict(assume("ecs-task-role", "app2"))
forged["SessionToken"] = forged["SessionToken"][:-4] + ("AAAA" if not forged["SessionToken"].endswith("AAAA") else "BBBB")
check(outcome(clients(forged)["sts"].get_caller_identity) == "InvalidClientTokenId", "altered token refused")

print("iam policies (boto3): all checks passed")
