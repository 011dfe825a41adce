#!/usr/bin/env bash
# Seed 001 (SOP: Secrets Management with AWS Secrets Manager, shared/seeds/001_e30e619173bade2c.txt): every Secrets
# Manager command of the SOP that exists in the aws CLI, run unchanged against Coffer, each result checked.
# Connection from the environment (AWS_ENDPOINT_URL, AWS_SHARED_CREDENTIALS_FILE, AWS_REGION); the SOP's own
# secret names are used verbatim, so this expects a fresh server (the Rust test starts one per script).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DB=/non-prod/backend/database_password

step "Method 1: create-secret with a generated password (plain --secret-string)"
PASSWORD=$(rand_b64)
created=$(aws secretsmanager create-secret \
  --name /non-prod/backend/database_password \
  --secret-string "$PASSWORD" \
  --query '[ARN,Name,VersionId]' --output text)
read -r ARN NAME VID <<<"$created"
expect_match "$ARN" "$(arn_re "$DB")" "create-secret ARN"
expect_eq "$NAME" "$DB" "create-secret Name"
expect_match "$VID" "$UUID_RE" "create-secret VersionId (the CLI's ClientRequestToken)"

step "Method 1: update-secret --description"
out=$(aws secretsmanager update-secret \
  --secret-id /non-prod/backend/database_password \
  --description 'PostgreSQL password for non-prod backend' --query '[ARN,Name]' --output text)
expect_eq "$out" "$ARN"$'\t'"$DB" "update-secret (description only) answers ARN and Name"

step "Method 1: tag-resource with the SOP's tags"
out=$(aws secretsmanager tag-resource \
  --secret-id /non-prod/backend/database_password \
  --tags Key=Environment,Value=non-prod Key=ManagedBy,Value=Manual)
expect_eq "$out" "" "tag-resource prints nothing"

step "Method 1: describe-secret shows the description, the tags and one AWSCURRENT version"
describe() { aws secretsmanager describe-secret --secret-id /non-prod/backend/database_password "$@"; }
expect_eq "$(describe --query Description --output text)" "PostgreSQL password for non-prod backend" "Description"
expect_eq "$(describe --query 'Tags[].[Key,Value]' --output text | LC_ALL=C sort)" \
  $'Environment\tnon-prod\nManagedBy\tManual' "Tags"
expect_eq "$(describe --query "VersionIdsToStages.\"$VID\"" --output text)" "AWSCURRENT" "VersionIdsToStages[$VID]"
expect_eq "$(describe --query 'length(keys(VersionIdsToStages))' --output text)" "1" "number of labelled versions"
expect_eq "$(describe --query '[ARN,Name]' --output text)" "$ARN"$'\t'"$DB" "describe-secret ARN and Name"

step "Local development, option 1: get-secret-value --query SecretString --output text returns the value exactly"
got=$(aws secretsmanager get-secret-value \
  --secret-id /non-prod/backend/database_password \
  --query SecretString \
  --output text)
expect_eq "$got" "$PASSWORD" "value of $DB"

step "Values with \$, quotes, backticks, backslashes, unicode, tabs and newlines round-trip byte for byte"
TRICKY=$'p@ss $HOME ${PATH} "double" \'single\' `uname` back\\slash ünïcødé 日本 🔑\ttab\nsecond line\n  indented third'
aws secretsmanager create-secret --name /non-prod/backend/tricky --secret-string "$TRICKY" >/dev/null
got=$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/tricky --query SecretString --output text)
expect_eq "$got" "$TRICKY" "tricky value"

step "Troubleshooting 'Invalid secret value format': a plain string and a JSON object"
aws secretsmanager create-secret \
  --name /non-prod/backend/api_key \
  --secret-string 'sk_test_abc123' >/dev/null
aws secretsmanager create-secret \
  --name /non-prod/backend/database \
  --secret-string '{"username":"admin","password":"secret123"}' >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/api_key --query SecretString --output text)" \
  "sk_test_abc123" "plain string secret"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/database --query SecretString --output text)" \
  '{"username":"admin","password":"secret123"}' "JSON secret (verbatim)"

step "Option 2: the load-dev-secrets.sh pattern exports each secret into the environment"
aws secretsmanager create-secret --name /non-prod/backend/jwt_secret --secret-string 'jwt-dev-value' >/dev/null
aws secretsmanager create-secret --name /non-prod/redis/auth_token --secret-string 'redis-dev-token' >/dev/null
unset DATABASE_PASSWORD JWT_SECRET REDIS_AUTH_TOKEN
export DATABASE_PASSWORD=$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/database_password --query SecretString --output text)
export JWT_SECRET=$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/jwt_secret --query SecretString --output text)
export REDIS_AUTH_TOKEN=$(aws secretsmanager get-secret-value --secret-id /non-prod/redis/auth_token --query SecretString --output text)
expect_eq "$(bash -c 'printf "%s|%s|%s" "$DATABASE_PASSWORD" "$JWT_SECRET" "$REDIS_AUTH_TOKEN"')" \
  "$PASSWORD|jwt-dev-value|redis-dev-token" "exported secrets"

step "Manual rotation: update-secret --secret-string makes a new AWSCURRENT and moves the old one to AWSPREVIOUS"
OLD_JWT='old-jwt-value'
old_vid=$(aws secretsmanager create-secret --name /prod/backend/jwt_secret --secret-string "$OLD_JWT" --query VersionId --output text)
# Before any rotation there is no AWSPREVIOUS version (AWS's message names the label).
expect_error_message ResourceNotFoundException \
  "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS" \
  aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --version-stage AWSPREVIOUS
NEW_SECRET=$(rand_b64)
echo "(new secret generated, ${#NEW_SECRET} characters)"
new_vid=$(aws secretsmanager update-secret \
  --secret-id /prod/backend/jwt_secret \
  --secret-string "$NEW_SECRET" --query VersionId --output text)
expect_match "$new_vid" "$UUID_RE" "update-secret with a value answers the new VersionId"
expect_ne "$new_vid" "$old_vid" "the new version's id"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --query '[SecretString,VersionId]' --output text)" \
  "$NEW_SECRET"$'\t'"$new_vid" "AWSCURRENT after rotation"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --version-stage AWSPREVIOUS --query '[SecretString,VersionId]' --output text)" \
  "$OLD_JWT"$'\t'"$old_vid" "AWSPREVIOUS after rotation"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --version-id "$old_vid" --query SecretString --output text)" \
  "$OLD_JWT" "the old version by --version-id"
expect_error_message InvalidRequestException "You provided a VersionStage that is not associated to the provided VersionId." \
  aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --version-id "$old_vid" --version-stage AWSCURRENT

step "Step 6: list-secret-version-ids lists both versions with their labels"
versions=$(aws secretsmanager list-secret-version-ids \
  --secret-id /prod/backend/jwt_secret \
  --query 'Versions[].[VersionId, join(`,`, VersionStages)]' --output text | LC_ALL=C sort)
expect_eq "$versions" "$(printf '%s\t%s\n' "$new_vid" AWSCURRENT "$old_vid" AWSPREVIOUS | LC_ALL=C sort)" "list-secret-version-ids"
expect_eq "$(aws secretsmanager list-secret-version-ids --secret-id /prod/backend/jwt_secret --query '[Name,ARN]' --output text | cut -f1)" \
  "/prod/backend/jwt_secret" "list-secret-version-ids Name"
# The SOP's next command, `aws secretsmanager delete-secret-version`, does not exist: neither the aws CLI nor the
# Secrets Manager API has it (versions are not deleted directly; a version loses its labels and is pruned).
# So it is not called here.

step "Emergency rotation (compromise): update-secret with a fresh value, the old one kept as AWSPREVIOUS"
aws secretsmanager create-secret --name /prod/backend/database_password --secret-string 'leaked-password' >/dev/null
NEW_SECRET=$(rand_b64)
aws secretsmanager update-secret \
  --secret-id /prod/backend/database_password \
  --secret-string "$NEW_SECRET" >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --query SecretString --output text)" \
  "$NEW_SECRET" "emergency-rotated value"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --version-stage AWSPREVIOUS --query SecretString --output text)" \
  "leaked-password" "compromised value kept as AWSPREVIOUS"

ALL_NAMES=$(printf '%s\n' /non-prod/backend/database_password /non-prod/backend/tricky /non-prod/backend/api_key \
  /non-prod/backend/database /non-prod/backend/jwt_secret /non-prod/redis/auth_token /prod/backend/jwt_secret \
  /prod/backend/database_password | LC_ALL=C sort)

step "Troubleshooting 'Secret not found': list-secrets --region us-east-1 lists every secret"
expect_eq "$(lines "$(aws secretsmanager list-secrets --region us-east-1 --query 'SecretList[].Name' --output text)")" \
  "$ALL_NAMES" "list-secrets --region us-east-1"
listed=$(aws secretsmanager list-secrets --region us-east-1)
expect_contains "$listed" "\"ARN\": \"$ARN\"" "list-secrets entry of $DB"
expect_contains "$listed" '"Description": "PostgreSQL password for non-prod backend"' "list-secrets entry of $DB"
expect_lacks "$listed" '"SecretString"' "list-secrets never returns values"

step "Troubleshooting: secrets are region-specific (nothing created in us-east-1 is visible from eu-west-1)"
expect_eq "$(aws secretsmanager list-secrets --region eu-west-1 --query 'length(SecretList)' --output text)" "0" \
  "list-secrets --region eu-west-1"
expect_error ResourceNotFoundException aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --region eu-west-1

step "Troubleshooting: list-secrets --query 'SecretList[].Name' --output table"
table=$(aws secretsmanager list-secrets \
  --query 'SecretList[].Name' \
  --output table)
expect_contains "$table" "ListSecrets" "table title"
while read -r name; do
  expect_match "$table" "[|][[:space:]]+${name}[[:space:]]+[|]" "table row for $name"
done <<<"$ALL_NAMES"

step "Seed 002's form: list-secrets --query \"SecretList[?contains(Name, '...')].Name\""
names=$(aws secretsmanager list-secrets \
  --query "SecretList[?contains(Name, '/non-prod/backend')].Name" \
  --region us-east-1 --output text)
expect_eq "$(lines "$names")" "$(grep '^/non-prod/backend' <<<"$ALL_NAMES")" "contains() filter"

step "Troubleshooting 'AccessDenied': get-resource-policy on a secret without a policy answers ARN and Name only"
policy_keys=$(aws secretsmanager get-resource-policy --secret-id /prod/backend/database_password --query 'sort(keys(@))' --output text)
expect_eq "$policy_keys" $'ARN\tName' "get-resource-policy members"
expect_match "$(aws secretsmanager get-resource-policy --secret-id /prod/backend/database_password --query ARN --output text)" \
  "$(arn_re /prod/backend/database_password)" "get-resource-policy ARN"

step "Method 3 / automated rotation: the seed's Lambda is not configured on this server (AccessDenied, as AWS answers for a function it cannot invoke); Coffer's built-in rotator ARN works with the same command"
expect_error AccessDeniedException aws secretsmanager rotate-secret \
  --secret-id /prod/backend/database_password \
  --rotation-lambda-arn arn:aws:lambda:us-east-1:123456789012:function:rotation-lambda \
  --rotation-rules AutomaticallyAfterDays=30
echo "(rotate-secret with an unknown Lambda: $ERROR_MESSAGE)"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --query SecretString --output text)" \
  "$NEW_SECRET" "value after the refused rotate-secret"
rotated_vid=$(aws secretsmanager rotate-secret \
  --secret-id /prod/backend/database_password \
  --rotation-lambda-arn arn:aws:lambda:us-east-1:123456789012:function:coffer-generated \
  --rotation-rules AutomaticallyAfterDays=30 --query VersionId --output text)
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --query VersionId --output text)" \
  "$rotated_vid" "rotate-secret made a new AWSCURRENT"
rotated_value=$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --query SecretString --output text)
[ "$rotated_value" != "$NEW_SECRET" ] || fail "rotate-secret left the value unchanged"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --version-stage AWSPREVIOUS --query SecretString --output text)" \
  "$NEW_SECRET" "the rotated-away value is AWSPREVIOUS"
expect_eq "$(aws secretsmanager describe-secret --secret-id /prod/backend/database_password --query '[RotationEnabled,RotationRules.AutomaticallyAfterDays]' --output text)" \
  $'True\t30' "rotation enabled every 30 days"
# "Test rotation": rotate-secret alone rotates again with the configured rotator.
again_vid=$(aws secretsmanager rotate-secret --secret-id /prod/backend/database_password --query VersionId --output text)
expect_eq "$(aws secretsmanager get-secret-value --secret-id /prod/backend/database_password --query VersionId --output text)" \
  "$again_vid" "rotate-secret alone rotated again"

step "Secret not found: a missing name is ResourceNotFoundException with AWS's message"
expect_error_message ResourceNotFoundException "Secrets Manager can't find the specified secret." \
  aws secretsmanager get-secret-value --secret-id /prod/backend/does_not_exist
expect_error ResourceNotFoundException aws secretsmanager describe-secret --secret-id /prod/backend/does_not_exist

step "Terraform's form: the secret by full ARN and by partial ARN (no 6-character suffix)"
jwt_arn=$(aws secretsmanager describe-secret --secret-id /prod/backend/jwt_secret --query ARN --output text)
expect_match "$jwt_arn" "$(arn_re /prod/backend/jwt_secret)" "ARN"
expect_eq "$(aws secretsmanager get-secret-value --secret-id "$jwt_arn" --query '[Name,SecretString]' --output text)" \
  "/prod/backend/jwt_secret"$'\t'"$(aws secretsmanager get-secret-value --secret-id /prod/backend/jwt_secret --query SecretString --output text)" \
  "get-secret-value by full ARN"
expect_eq "$(aws secretsmanager get-secret-value --secret-id "${jwt_arn%-??????}" --query '[Name,ARN]' --output text)" \
  "/prod/backend/jwt_secret"$'\t'"$jwt_arn" "get-secret-value by partial ARN"
expect_eq "$(aws secretsmanager describe-secret --secret-id "${jwt_arn%-??????}" --query ARN --output text)" \
  "$jwt_arn" "describe-secret by partial ARN"
expect_error ResourceNotFoundException aws secretsmanager get-secret-value --secret-id "${jwt_arn%-??????}-zzzzzz"

step "a recovery window outside 7..30 days is InvalidParameterException"
expect_error InvalidParameterException aws secretsmanager delete-secret --secret-id /non-prod/backend/api_key --recovery-window-in-days 3
expect_contains "$ERROR_MESSAGE" "RecoveryWindowInDays value must be between 7 and 30 days (inclusive)" "InvalidParameterException message"

step "delete-secret --recovery-window-in-days 7 schedules deletion 7 days out"
before=$(date +%s)
deleted=$(aws secretsmanager delete-secret --secret-id /non-prod/backend/api_key --recovery-window-in-days 7 \
  --query '[Name,DeletionDate]' --output text)
read -r del_name del_date <<<"$deleted"
expect_eq "$del_name" "/non-prod/backend/api_key" "delete-secret Name"
del_epoch=$(epoch "$del_date")
(( del_epoch >= before + 7*86400 - 120 && del_epoch <= $(date +%s) + 7*86400 + 120 )) \
  || fail "DeletionDate $del_date is not 7 days from now"

step "While scheduled: get-secret-value is InvalidRequestException, describe shows DeletedDate, the name stays taken"
expect_error_message InvalidRequestException \
  "You can't perform this operation on the secret because it was marked for deletion." \
  aws secretsmanager get-secret-value --secret-id /non-prod/backend/api_key
expect_ne "$(aws secretsmanager describe-secret --secret-id /non-prod/backend/api_key --query DeletedDate --output text)" "None" \
  "describe-secret DeletedDate"
MARKED="You can't perform this operation on the secret because it was marked for deletion."
expect_error_message InvalidRequestException "$MARKED" \
  aws secretsmanager put-secret-value --secret-id /non-prod/backend/api_key --secret-string 'new'
expect_error_message InvalidRequestException "$MARKED" \
  aws secretsmanager update-secret --secret-id /non-prod/backend/api_key --description 'new description'
expect_error_message InvalidRequestException "$MARKED" \
  aws secretsmanager tag-resource --secret-id /non-prod/backend/api_key --tags Key=ManagedBy,Value=Manual
expect_error_message InvalidRequestException \
  "You can't create this secret because a secret with this name is already scheduled for deletion." \
  aws secretsmanager create-secret --name /non-prod/backend/api_key --secret-string 'again'

step "list-secrets hides it; list-secrets --include-planned-deletion shows it with DeletedDate"
expect_lacks "$(aws secretsmanager list-secrets --query 'SecretList[].Name' --output text)" "/non-prod/backend/api_key" \
  "list-secrets without --include-planned-deletion"
expect_eq "$(aws secretsmanager list-secrets --include-planned-deletion --query 'SecretList[?DeletedDate].Name' --output text)" \
  "/non-prod/backend/api_key" "list-secrets --include-planned-deletion"

step "restore-secret brings it back with its value"
expect_eq "$(aws secretsmanager restore-secret --secret-id /non-prod/backend/api_key --query 'sort(keys(@))' --output text)" \
  $'ARN\tName' "restore-secret members"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/api_key --query SecretString --output text)" \
  "sk_test_abc123" "restored value"
expect_eq "$(aws secretsmanager describe-secret --secret-id /non-prod/backend/api_key --query DeletedDate --output text)" "None" \
  "DeletedDate after restore"

step "A recovery window and --force-delete-without-recovery together are InvalidParameterException"
expect_error InvalidParameterException aws secretsmanager delete-secret --secret-id /non-prod/backend/api_key \
  --recovery-window-in-days 7 --force-delete-without-recovery

step "delete-secret --force-delete-without-recovery, then the same name re-created under a new ARN suffix"
old_arn=$(aws secretsmanager describe-secret --secret-id /non-prod/backend/api_key --query ARN --output text)
aws secretsmanager delete-secret --secret-id /non-prod/backend/api_key --force-delete-without-recovery >/dev/null
expect_error ResourceNotFoundException aws secretsmanager get-secret-value --secret-id /non-prod/backend/api_key
new_arn=$(aws secretsmanager create-secret --name /non-prod/backend/api_key --secret-string 'sk_test_new' --query ARN --output text)
expect_match "$new_arn" "$(arn_re /non-prod/backend/api_key)" "re-created ARN"
expect_ne "$new_arn" "$old_arn" "re-created secret's ARN"
expect_eq "$(aws secretsmanager get-secret-value --secret-id /non-prod/backend/api_key --query SecretString --output text)" \
  "sk_test_new" "re-created value"
expect_eq "$(aws secretsmanager list-secret-version-ids --secret-id /non-prod/backend/api_key --include-deprecated --query 'length(Versions)' --output text)" \
  "1" "the re-created secret has only its own version"
expect_error ResourceNotFoundException aws secretsmanager get-secret-value --secret-id "$old_arn"

step "get-random-password --password-length 20 --exclude-punctuation --require-each-included-type"
pw=$(aws secretsmanager get-random-password --password-length 20 --exclude-punctuation --require-each-included-type \
  --query RandomPassword --output text)
expect_match "$pw" '^[A-Za-z0-9]{20}$' "random password (20 characters, no punctuation)"
expect_match "$pw" '[A-Z]' "random password has an uppercase letter"
expect_match "$pw" '[a-z]' "random password has a lowercase letter"
expect_match "$pw" '[0-9]' "random password has a digit"

echo "seed 001: all checks passed"
