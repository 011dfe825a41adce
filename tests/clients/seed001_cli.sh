#!/usr/bin/env bash
# Seed 001 (SOP: Secrets Management with AWS Secrets Manager): every Secrets Manager command of the SOP
# that the aws CLI has, run unchanged against Coffer. The connection comes from the environment
# (AWS_ENDPOINT_URL, AWS_SHARED_CREDENTIALS_FILE, AWS_DEFAULT_REGION).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# Method 1: create, describe, tag, verify.
NEW=$(openssl rand -base64 32)
aws secretsmanager create-secret \
  --name /non-prod/backend/database_password \
  --secret-string "$NEW" >/dev/null
aws secretsmanager update-secret \
  --secret-id /non-prod/backend/database_password \
  --description 'PostgreSQL password for non-prod backend' >/dev/null
aws secretsmanager tag-resource \
  --secret-id /non-prod/backend/database_password \
  --tags Key=Environment,Value=non-prod Key=ManagedBy,Value=Manual
desc=$(aws secretsmanager describe-secret --secret-id /non-prod/backend/database_password)
expect_eq "$(jq -r .Description <<<"$desc")" "PostgreSQL password for non-prod backend" "description"
expect_eq "$(jq -r '[.Tags[] | "\(.Key)=\(.Value)"] | join(",")' <<<"$desc")" "Environment=non-prod,ManagedBy=Manual" "tags"
expect_eq "$(jq -r '[.VersionIdsToStages[][]] | join(",")' <<<"$desc")" "AWSCURRENT" "stages"

# Local development, option 1: the value comes back exactly.
got=$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/database_password --query SecretString --output text)
expect_eq "$got" "$NEW" "get-secret-value round trip"

# Tricky characters survive the round trip.
TRICKY=$'p@ss $HOME "quoted" \'single\' ünïcødé 🔑\\back'
aws secretsmanager create-secret --name /non-prod/backend/tricky --secret-string "$TRICKY" >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/tricky --query SecretString --output text)" "$TRICKY" "tricky value"

# Option 2: the load-dev-secrets.sh pattern.
aws secretsmanager create-secret --name /non-prod/backend/jwt_secret --secret-string 'jwt-dev-value' >/dev/null
aws secretsmanager create-secret --name /non-prod/redis/auth_token --secret-string 'redis-dev-token' >/dev/null
export DATABASE_PASSWORD=$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/database_password --query SecretString --output text)
export JWT_SECRET=$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/jwt_secret --query SecretString --output text)
export REDIS_AUTH_TOKEN=$(aws secretsmanager get-secret-value --secret-id /non-prod/redis/auth_token --query SecretString --output text)
expect_eq "$JWT_SECRET:$REDIS_AUTH_TOKEN" "jwt-dev-value:redis-dev-token" "load-dev-secrets"

# Plain string and JSON secrets (Troubleshooting: "Invalid secret value format").
aws secretsmanager create-secret --name /non-prod/backend/api_key --secret-string 'sk_test_abc123' >/dev/null
aws secretsmanager create-secret --name /non-prod/backend/database \
  --secret-string '{"username":"admin","password":"secret123"}' >/dev/null
json=$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/database --query SecretString --output text)
expect_eq "$(jq -r .password <<<"$json")" "secret123" "JSON secret"

# Manual / emergency rotation: update-secret with a new value moves AWSCURRENT and AWSPREVIOUS.
aws secretsmanager create-secret --name /prod/backend/jwt_secret --secret-string 'old-jwt' >/dev/null
NEW_SECRET=$(openssl rand -base64 32)
aws secretsmanager update-secret --secret-id /prod/backend/jwt_secret --secret-string "$NEW_SECRET" >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --query SecretString --output text)" "$NEW_SECRET" "rotated value"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --version-stage AWSPREVIOUS --query SecretString --output text)" "old-jwt" "previous value"
versions=$(aws secretsmanager list-secret-version-ids --secret-id /prod/backend/jwt_secret)
expect_eq "$(jq -r '[.Versions[].VersionStages[]] | sort | join(",")' <<<"$versions")" "AWSCURRENT,AWSPREVIOUS" "version stages"
# (The SOP's `aws secretsmanager delete-secret-version` is not an aws CLI command; AWS has no such API:
#  old versions go away when their labels are removed.)

# Emergency rotation of the database password.
aws secretsmanager create-secret --name /prod/backend/database_password --secret-string 'leaked' >/dev/null
NEW_SECRET=$(openssl rand -base64 32)
aws secretsmanager update-secret --secret-id /prod/backend/database_password --secret-string "$NEW_SECRET" >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --query SecretString --output text)" "$NEW_SECRET" "emergency rotation"

# Troubleshooting: resource policy (none yet), listing, region, table output.
policy=$(aws secretsmanager get-resource-policy --secret-id /prod/backend/database_password)
expect_eq "$(jq -r '.ResourcePolicy // "none"' <<<"$policy")" "none" "no resource policy"
[[ "$(jq -r .ARN <<<"$policy")" == arn:aws:secretsmanager:us-east-1:*:secret:/prod/backend/database_password-?????? ]] || fail "policy ARN"
count=$(aws secretsmanager list-secrets --region us-east-1 --query 'length(SecretList)')
expect_eq "$count" "8" "list-secrets count"
table=$(aws secretsmanager list-secrets --query 'SecretList[].Name' --output table)
[[ "$table" == *"/prod/backend/jwt_secret"* ]] || fail "table output: $table"
names=$(aws secretsmanager list-secrets --query "SecretList[?contains(Name, '/non-prod/backend')].Name" --output text)
expect_eq "$(tr '\t' '\n' <<<"$names" | sort | tr '\n' ' ')" "/non-prod/backend/api_key /non-prod/backend/database /non-prod/backend/database_password /non-prod/backend/jwt_secret /non-prod/backend/tricky " "contains() query"

# Rotation is not available yet: a clear error, not a silent success.
expect_error InvalidRequestException aws secretsmanager rotate-secret --secret-id /prod/backend/database_password \
  --rotation-lambda-arn arn:aws:lambda:us-east-1:123456789012:function:rotation-lambda --rotation-rules AutomaticallyAfterDays=30

# Lookups by full ARN and by partial ARN (without the random suffix); a missing secret.
arn=$(aws secretsmanager describe-secret --secret-id /prod/backend/jwt_secret --query ARN --output text)
expect_eq "$(aws secretsmanager get-secret-value --secret-id "$arn" --query Name --output text)" "/prod/backend/jwt_secret" "full ARN"
expect_eq "$(aws secretsmanager get-secret-value --secret-id "${arn%-??????}" --query Name --output text)" "/prod/backend/jwt_secret" "partial ARN"
expect_error ResourceNotFoundException aws secretsmanager get-secret-value --secret-id /prod/backend/nope

# Deletion window, restore, forced deletion and re-creation under a new ARN.
aws secretsmanager delete-secret --secret-id /non-prod/backend/api_key --recovery-window-in-days 7 >/dev/null
expect_error InvalidRequestException aws secretsmanager get-secret-value --secret-id /non-prod/backend/api_key
expect_eq "$(aws secretsmanager list-secrets --include-planned-deletion --query "length(SecretList[?DeletedDate])")" "1" "planned deletion listed"
aws secretsmanager restore-secret --secret-id /non-prod/backend/api_key >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/api_key --query SecretString --output text)" "sk_test_abc123" "restored"
old_arn=$(aws secretsmanager describe-secret --secret-id /non-prod/backend/api_key --query ARN --output text)
aws secretsmanager delete-secret --secret-id /non-prod/backend/api_key --force-delete-without-recovery >/dev/null
new_arn=$(aws secretsmanager create-secret --name /non-prod/backend/api_key --secret-string 'sk_test_new' --query ARN --output text)
[ "$old_arn" != "$new_arn" ] || fail "re-created secret reused the ARN"

# GetRandomPassword.
pw=$(aws secretsmanager get-random-password --password-length 20 --exclude-punctuation --require-each-included-type --query RandomPassword --output text)
[[ "$pw" =~ ^[A-Za-z0-9]{20}$ ]] || fail "random password: $pw"

echo "seed 001: all checks passed"
