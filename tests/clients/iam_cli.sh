#!/usr/bin/env bash
# IAM with the aws CLI over the query protocol (form-encoded requests, XML answers, URL-encoded policy documents that
# the CLI decodes): users with tags and access keys (a new key signs its own requests, an inactive one is refused),
# groups, customer-managed policies and their versions, inline policies, roles with trust policies, virtual MFA
# devices, the policy simulator, the error answers, and the cleanup order IAM enforces.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
account=000000000000

# as_alice ARGS...: the aws CLI with alice's access key (a second profile in a credentials file of its own).
as_alice() { AWS_SHARED_CREDENTIALS_FILE="$work/credentials" aws --profile alice "$@"; }

step "create-user with a path and tags, get-user, tag-user, list-user-tags"
out=$(aws iam create-user --user-name alice --path /team/ --tags Key=team,Value=payments \
  --query 'User.[UserName,Path,Arn]' --output text)
expect_eq "$out" $'alice\t/team/\tarn:aws:iam::000000000000:user/team/alice' "create-user"
user_id=$(aws iam get-user --user-name alice --query User.UserId --output text)
expect_match "$user_id" '^AIDA[A-Z2-7]{17}$' "user id"
aws iam tag-user --user-name alice --tags Key=env,Value=prod 'Key=note,Value=a & b <c>'
expect_eq "$(lines "$(aws iam list-user-tags --user-name alice --query 'Tags[].[Key,Value]' --output text)")" \
  "$(lines $'env\tprod\nnote\ta & b <c>\nteam\tpayments')" "list-user-tags"
aws iam untag-user --user-name alice --tag-keys note
expect_eq "$(aws iam get-user --user-name alice --query 'length(User.Tags)' --output text)" "2" "tags after untag-user"
expect_error EntityAlreadyExists aws iam create-user --user-name alice
aws iam create-user --user-name bob >/dev/null
# One item per page: the CLI follows IsTruncated/Marker and still shows every user.
# (Text output prints each page on a line of its own.)
expect_eq "$(aws iam list-users --page-size 1 --query 'Users[].UserName' --output text)" $'alice\nbob' "list-users, paged"
expect_eq "$(aws iam list-users --path-prefix /team/ --query 'Users[].UserName' --output text)" "alice" "path prefix"

# The pinned aws CLI v1 exits 255 on any error answer (v2 would exit 254 for a service error).
step "get-user of a missing user: NoSuchEntity, exit code 255"
set +e
err=$(aws iam get-user --user-name nobody 2>&1)
rc=$?
set -e
expect_eq "$rc" "255" "exit code of a service error"
expect_contains "$err" "An error occurred (NoSuchEntity) when calling the GetUser operation" "missing user"

step "create-access-key: the new key signs alice's own requests"
read -r key_id key_secret key_status < <(aws iam create-access-key --user-name alice \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey,Status]' --output text)
expect_match "$key_id" '^AKIA[A-Z2-7]{16}$' "access key id"
expect_eq "${#key_secret}" "40" "secret access key length"
expect_eq "$key_status" "Active" "new key status"
printf '[alice]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$key_id" "$key_secret" >"$work/credentials"
expect_eq "$(as_alice sts get-caller-identity --query Arn --output text)" \
  "arn:aws:iam::000000000000:user/team/alice" "caller identity with alice's key"
expect_eq "$(aws iam list-access-keys --user-name alice --query 'AccessKeyMetadata[].[UserName,AccessKeyId,Status]' --output text)" \
  $'alice\t'"$key_id"$'\tActive' "list-access-keys"
# Without any policy alice may do nothing in IAM.
expect_error AccessDenied as_alice iam list-users

step "update-access-key Inactive: the key is refused; Active again: accepted"
aws iam update-access-key --user-name alice --access-key-id "$key_id" --status Inactive
expect_eq "$(aws iam list-access-keys --user-name alice --query 'AccessKeyMetadata[0].Status' --output text)" "Inactive" "status"
expect_error InvalidClientTokenId as_alice sts get-caller-identity
aws iam update-access-key --user-name alice --access-key-id "$key_id" --status Active
expect_eq "$(as_alice sts get-caller-identity --query Arn --output text)" \
  "arn:aws:iam::000000000000:user/team/alice" "caller identity after reactivation"
expect_error ValidationError aws iam update-access-key --user-name alice --access-key-id "$key_id" --status Paused

step "create-group, add-user-to-group, get-group, list-groups-for-user"
out=$(aws iam create-group --group-name payments-devs --query 'Group.[GroupName,Arn]' --output text)
expect_eq "$out" $'payments-devs\tarn:aws:iam::000000000000:group/payments-devs' "create-group"
aws iam add-user-to-group --group-name payments-devs --user-name alice
aws iam add-user-to-group --group-name payments-devs --user-name bob
expect_eq "$(aws iam get-group --group-name payments-devs --query 'Users[].UserName' --output text)" $'alice\tbob' "get-group"
expect_eq "$(aws iam list-groups-for-user --user-name alice --query 'Groups[].GroupName' --output text)" "payments-devs" \
  "list-groups-for-user"
aws iam remove-user-from-group --group-name payments-devs --user-name bob
expect_eq "$(aws iam get-group --group-name payments-devs --query 'Users[].UserName' --output text)" "alice" "after remove"
expect_error NoSuchEntity aws iam add-user-to-group --group-name no-such-group --user-name alice

step "create-policy from a file, get-policy"
cat >"$work/policy-v1.json" <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadSelf", "Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::000000000000:user/team/alice"}
  ]
}
EOF
policy_arn=$(aws iam create-policy --policy-name alice-self --path /team/ --description "alice reads herself" \
  --policy-document "file://$work/policy-v1.json" --query Policy.Arn --output text)
expect_eq "$policy_arn" "arn:aws:iam::000000000000:policy/team/alice-self" "policy ARN"
out=$(aws iam get-policy --policy-arn "$policy_arn" \
  --query 'Policy.[PolicyName,DefaultVersionId,AttachmentCount,IsAttachable,Description]' --output text)
expect_eq "$out" $'alice-self\tv1\t0\tTrue\talice reads herself' "get-policy"
expect_contains "$(aws iam list-policies --scope Local --query 'Policies[].Arn' --output text)" "$policy_arn" "list-policies"
expect_error EntityAlreadyExists aws iam create-policy --policy-name alice-self --policy-document "file://$work/policy-v1.json"

step "create-policy-version --set-as-default, get-policy-version: the CLI decodes the document"
# Characters the URL-encoding of the answer must carry: spaces, &, <, >, quotes, non-ASCII.
cat >"$work/policy-v2.json" <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "ReadSelf", "Effect": "Allow", "Action": ["iam:GetUser", "iam:ListAccessKeys"],
     "Resource": "arn:aws:iam::000000000000:user/team/alice"},
    {"Sid": "Tagged", "Effect": "Allow", "Action": "iam:ListUserTags", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/team": "payments & ops <\"ü\">"}}}
  ]
}
EOF
out=$(aws iam create-policy-version --policy-arn "$policy_arn" --policy-document "file://$work/policy-v2.json" \
  --set-as-default --query 'PolicyVersion.[VersionId,IsDefaultVersion]' --output text)
expect_eq "$out" $'v2\tTrue' "create-policy-version"
aws iam get-policy-version --policy-arn "$policy_arn" --version-id v2 --output json >"$work/got-v2.json"
python3 - "$work/policy-v2.json" "$work/got-v2.json" <<'EOF'
import json, sys
sent = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))["PolicyVersion"]
assert isinstance(got["Document"], dict), f"the CLI did not decode the document: {got['Document']!r}"
assert got["Document"] == sent, f"document differs:\n{got['Document']}\n{sent}"
assert got["VersionId"] == "v2" and got["IsDefaultVersion"] is True, got
EOF
expect_eq "$(aws iam get-policy --policy-arn "$policy_arn" --query Policy.DefaultVersionId --output text)" "v2" "default version"
expect_eq "$(aws iam list-policy-versions --policy-arn "$policy_arn" --query 'Versions[].[VersionId,IsDefaultVersion]' --output text)" \
  $'v2\tTrue\nv1\tFalse' "list-policy-versions"
expect_eq "$(aws iam get-policy-version --policy-arn "$policy_arn" --version-id v1 --query 'PolicyVersion.Document.Statement[0].Sid' --output text)" \
  "ReadSelf" "v1 document"

step "a broken policy document: MalformedPolicyDocument"
printf '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetUser"' >"$work/broken.json"
expect_error MalformedPolicyDocument aws iam create-policy --policy-name broken --policy-document "file://$work/broken.json"
expect_error MalformedPolicyDocument aws iam create-policy --policy-name broken \
  --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}'

step "attach-user-policy, list-attached-user-policies: the policy now lets alice read herself"
aws iam attach-user-policy --user-name alice --policy-arn "$policy_arn"
expect_eq "$(aws iam list-attached-user-policies --user-name alice --query 'AttachedPolicies[].[PolicyName,PolicyArn]' --output text)" \
  $'alice-self\t'"$policy_arn" "list-attached-user-policies"
expect_eq "$(aws iam get-policy --policy-arn "$policy_arn" --query Policy.AttachmentCount --output text)" "1" "attachment count"
expect_eq "$(as_alice iam get-user --query User.Arn --output text)" "arn:aws:iam::000000000000:user/team/alice" \
  "alice's get-user of herself"
expect_eq "$(as_alice iam list-access-keys --query 'AccessKeyMetadata[0].AccessKeyId' --output text)" "$key_id" \
  "alice lists her own keys"
expect_error AccessDenied as_alice iam get-user --user-name bob
expect_error AccessDenied as_alice iam list-users

step "put-user-policy, get-user-policy (decoded), list-user-policies"
aws iam put-user-policy --user-name alice --policy-name list-groups \
  --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListGroups","Resource":"*"}]}'
json=$(aws iam get-user-policy --user-name alice --policy-name list-groups --output json)
expect_contains "$json" '"PolicyDocument": {' "get-user-policy prints the document as JSON"
expect_eq "$(aws iam get-user-policy --user-name alice --policy-name list-groups \
  --query '[UserName,PolicyName,PolicyDocument.Statement[0].Action]' --output text)" \
  $'alice\tlist-groups\tiam:ListGroups' "get-user-policy"
expect_eq "$(aws iam list-user-policies --user-name alice --query 'PolicyNames' --output text)" "list-groups" "list-user-policies"
expect_eq "$(as_alice iam list-groups --query 'Groups[].GroupName' --output text)" "payments-devs" "the inline policy applies"
expect_error NoSuchEntity aws iam get-user-policy --user-name alice --policy-name nope

step "simulate-principal-policy and simulate-custom-policy"
out=$(aws iam simulate-principal-policy --policy-source-arn arn:aws:iam::000000000000:user/team/alice \
  --action-names iam:GetUser iam:DeleteUser iam:ListGroups \
  --resource-arns arn:aws:iam::000000000000:user/team/alice \
  --query 'EvaluationResults[].[EvalActionName,EvalDecision]' --output text)
expect_eq "$out" $'iam:GetUser\tallowed\niam:DeleteUser\timplicitDeny\niam:ListGroups\tallowed' "simulate-principal-policy"
out=$(aws iam simulate-custom-policy --action-names s3:GetObject s3:PutObject --resource-arns 'arn:aws:s3:::bucket/key' \
  --policy-input-list '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"*"},{"Effect":"Deny","Action":"s3:PutObject","Resource":"*"}]}' \
  --query 'EvaluationResults[].[EvalActionName,EvalResourceName,EvalDecision]' --output text)
expect_eq "$out" $'s3:GetObject\tarn:aws:s3:::bucket/key\tallowed\ns3:PutObject\tarn:aws:s3:::bucket/key\texplicitDeny' \
  "simulate-custom-policy"

step "create-role with a trust policy, get-role (decoded), attach-role-policy, put-role-policy, list-roles"
cat >"$work/trust.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::000000000000:user/team/alice"}, "Action": "sts:AssumeRole"}]}
EOF
out=$(aws iam create-role --role-name deployer --path /ci/ --description "CI deploys" --max-session-duration 7200 \
  --assume-role-policy-document "file://$work/trust.json" --tags Key=team,Value=ci --query 'Role.[RoleName,Arn]' --output text)
expect_eq "$out" $'deployer\tarn:aws:iam::000000000000:role/ci/deployer' "create-role"
aws iam get-role --role-name deployer --output json >"$work/role.json"
python3 - "$work/trust.json" "$work/role.json" <<'EOF'
import json, sys
sent = json.load(open(sys.argv[1]))
role = json.load(open(sys.argv[2]))["Role"]
assert role["AssumeRolePolicyDocument"] == sent, role["AssumeRolePolicyDocument"]
assert role["RoleId"].startswith("AROA"), role
assert (role["Description"], role["MaxSessionDuration"], role["Path"]) == ("CI deploys", 7200, "/ci/"), role
assert role["Tags"] == [{"Key": "team", "Value": "ci"}], role
EOF
aws iam attach-role-policy --role-name deployer --policy-arn "$policy_arn"
aws iam put-role-policy --role-name deployer --policy-name read-secrets \
  --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}'
expect_eq "$(aws iam list-attached-role-policies --role-name deployer --query 'AttachedPolicies[].PolicyName' --output text)" \
  "alice-self" "list-attached-role-policies"
expect_eq "$(aws iam get-role-policy --role-name deployer --policy-name read-secrets --query 'PolicyDocument.Statement[0].Action' --output text)" \
  "secretsmanager:GetSecretValue" "get-role-policy"
expect_eq "$(aws iam list-role-policies --role-name deployer --query PolicyNames --output text)" "read-secrets" "list-role-policies"
expect_eq "$(aws iam list-roles --query 'Roles[].[RoleName,AssumeRolePolicyDocument.Statement[0].Action]' --output text)" \
  $'deployer\tsts:AssumeRole' "list-roles"
aws iam tag-role --role-name deployer --tags Key=env,Value=prod
expect_eq "$(lines "$(aws iam list-role-tags --role-name deployer --query 'Tags[].Key' --output text)")" "$(lines $'env\tteam')" \
  "list-role-tags"
aws iam update-assume-role-policy --role-name deployer \
  --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}'
expect_eq "$(aws iam get-role --role-name deployer --query 'Role.AssumeRolePolicyDocument.Statement[0].Principal.AWS' --output text)" \
  "arn:aws:iam::000000000000:root" "update-assume-role-policy"
expect_error MalformedPolicyDocument aws iam create-role --role-name bad-trust --assume-role-policy-document '{"Statement":'
expect_error DeleteConflict aws iam delete-role --role-name deployer

step "a virtual MFA device: create (seed to a file), enable with two consecutive codes, list, deactivate, delete"
mfa_serial=$(aws iam create-virtual-mfa-device --virtual-mfa-device-name alice-phone \
  --outfile "$work/seed.txt" --bootstrap-method Base32StringSeed --query VirtualMFADevice.SerialNumber --output text)
expect_eq "$mfa_serial" "arn:aws:iam::000000000000:mfa/alice-phone" "MFA serial number"
expect_match "$(cat "$work/seed.txt")" '^[A-Z2-7]+=*$' "base32 seed in the outfile"
# totp OFFSET: the RFC 6238 code of the 30-second step OFFSET steps from now.
totp() {
  python3 - "$work/seed.txt" "$1" <<'EOF'
import base64, hashlib, hmac, struct, sys, time
s = open(sys.argv[1]).read().strip()
seed = base64.b32decode(s + "=" * (-len(s) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
h = hmac.new(seed, struct.pack(">Q", step), hashlib.sha1).digest()
o = h[-1] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000))
EOF
}
expect_error InvalidAuthenticationCode aws iam enable-mfa-device --user-name alice --serial-number "$mfa_serial" \
  --authentication-code1 000000 --authentication-code2 000000
aws iam enable-mfa-device --user-name alice --serial-number "$mfa_serial" \
  --authentication-code1 "$(totp -1)" --authentication-code2 "$(totp 0)"
expect_eq "$(aws iam list-mfa-devices --user-name alice --query 'MFADevices[].[UserName,SerialNumber]' --output text)" \
  $'alice\t'"$mfa_serial" "list-mfa-devices"
expect_eq "$(aws iam list-virtual-mfa-devices --assignment-status Assigned --query 'VirtualMFADevices[].[SerialNumber,User.UserName]' --output text)" \
  "$mfa_serial"$'\talice' "list-virtual-mfa-devices"
expect_error DeleteConflict aws iam delete-virtual-mfa-device --serial-number "$mfa_serial"
aws iam deactivate-mfa-device --user-name alice --serial-number "$mfa_serial"
expect_eq "$(aws iam list-virtual-mfa-devices --assignment-status Unassigned --query 'VirtualMFADevices[].SerialNumber' --output text)" \
  "$mfa_serial" "unassigned after deactivation"
aws iam delete-virtual-mfa-device --serial-number "$mfa_serial"
expect_eq "$(aws iam list-virtual-mfa-devices --query 'length(VirtualMFADevices)' --output text)" "0" "MFA device deleted"

step "delete-user with keys, policies and groups: DeleteConflict; then the cleanup in IAM's order"
expect_error DeleteConflict aws iam delete-user --user-name alice
expect_error DeleteConflict aws iam delete-policy --policy-arn "$policy_arn"
expect_error DeleteConflict aws iam delete-policy-version --policy-arn "$policy_arn" --version-id v2
aws iam detach-user-policy --user-name alice --policy-arn "$policy_arn"
aws iam detach-role-policy --role-name deployer --policy-arn "$policy_arn"
expect_eq "$(aws iam list-attached-user-policies --user-name alice --query 'length(AttachedPolicies)' --output text)" "0" \
  "detached"
expect_error NoSuchEntity aws iam detach-user-policy --user-name alice --policy-arn "$policy_arn"
aws iam delete-user-policy --user-name alice --policy-name list-groups
aws iam delete-role-policy --role-name deployer --policy-name read-secrets
aws iam remove-user-from-group --group-name payments-devs --user-name alice
expect_error DeleteConflict aws iam delete-user --user-name alice
aws iam delete-access-key --user-name alice --access-key-id "$key_id"
expect_eq "$(aws iam list-access-keys --user-name alice --query 'length(AccessKeyMetadata)' --output text)" "0" "keys deleted"
expect_error InvalidClientTokenId as_alice sts get-caller-identity
aws iam delete-user --user-name alice
aws iam delete-user --user-name bob
aws iam delete-group --group-name payments-devs
aws iam delete-role --role-name deployer
aws iam delete-policy-version --policy-arn "$policy_arn" --version-id v1
aws iam delete-policy --policy-arn "$policy_arn"
expect_error NoSuchEntity aws iam get-user --user-name alice
expect_error NoSuchEntity aws iam get-role --role-name deployer
expect_error NoSuchEntity aws iam get-policy --policy-arn "$policy_arn"
expect_eq "$(aws iam list-users --query 'length(Users)' --output text)" "0" "no users left"
expect_eq "$(aws iam list-groups --query 'length(Groups)' --output text)" "0" "no groups left"
expect_eq "$(aws iam list-roles --query 'length(Roles)' --output text)" "0" "no roles left"
expect_eq "$(aws iam list-policies --scope Local --query 'length(Policies)' --output text)" "0" "no policies left"
echo "iam (aws CLI): all checks passed"
