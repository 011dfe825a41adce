#!/usr/bin/env bash
# Seed 002 (WhatsApp SaaS "Secrets Management Guide", shared/seeds/002_74de52a81f45d242.txt): its Secrets Manager
# commands, without the IAM, Lambda and rotation-function parts: create with description, region and tags, the
# rotate-admin-token.sh flow (backup, put-secret-value), manual rotation of the other secrets, the rollback from the
# backup file, and the emergency-access / troubleshooting reads. Connection from the environment; the guide's
# secret names are used verbatim, so this expects a fresh server (the Rust test starts one per script).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "Adding new secrets, option A: create-secret with --description, --region and --tags"
ADMIN_TOKEN=$(rand_b64)
created=$(aws secretsmanager create-secret \
  --name whatsapp-saas/mvp/admin-token \
  --description "Admin API authentication token" \
  --secret-string "$ADMIN_TOKEN" \
  --region us-east-1 \
  --tags Key=Project,Value=whatsapp-saas \
         Key=Environment,Value=mvp \
         Key=Owner,Value=devops-team \
         Key=CostCenter,Value=engineering \
  --query '[ARN,VersionId]' --output text)
read -r ADMIN_ARN V1 <<<"$created"
expect_match "$ADMIN_ARN" "$(arn_re whatsapp-saas/mvp/admin-token)" "create-secret ARN"
expect_match "$V1" "$UUID_RE" "create-secret VersionId"
aws secretsmanager create-secret \
  --name whatsapp-saas/mvp/meta-app-secret \
  --description "Meta app secret for HMAC validation" \
  --secret-string "meta-app-secret-v1" \
  --region us-east-1 \
  --tags Key=Project,Value=whatsapp-saas \
         Key=Environment,Value=mvp >/dev/null
aws secretsmanager create-secret \
  --name whatsapp-saas/mvp/openai-api-key \
  --description "OpenAI API key" \
  --secret-string "sk-old-api-key" \
  --region us-east-1 \
  --tags Key=Project,Value=whatsapp-saas \
         Key=Environment,Value=mvp >/dev/null

step "describe-secret shows the description and all four tags"
expect_eq "$(aws secretsmanager describe-secret --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 --query Description --output text)" \
  "Admin API authentication token" "Description"
expect_eq "$(aws secretsmanager describe-secret --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 --query 'Tags[].[Key,Value]' --output text | LC_ALL=C sort)" \
  "$(printf 'CostCenter\tengineering\nEnvironment\tmvp\nOwner\tdevops-team\nProject\twhatsapp-saas')" "Tags"

step "AWS setup, step 2: test secret access"
expect_eq "$(aws secretsmanager get-secret-value \
  --secret-id whatsapp-saas/mvp/admin-token \
  --region us-east-1 --query '[Name,VersionId,SecretString]' --output text)" \
  "whatsapp-saas/mvp/admin-token"$'\t'"$V1"$'\t'"$ADMIN_TOKEN" "get-secret-value"

step "rotate-admin-token.sh: back up the current token to a file, put a new one"
aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 \
  --query SecretString --output text > "$work/.admin-token-backup-20251017-143522.txt"
NEW_TOKEN=$(rand_b64)
V2=$(aws secretsmanager put-secret-value \
  --secret-id whatsapp-saas/mvp/admin-token \
  --secret-string "$NEW_TOKEN" \
  --region us-east-1 --query VersionId --output text)
expect_match "$V2" "$UUID_RE" "put-secret-value VersionId"
expect_ne "$V2" "$V1" "the rotated version's id"
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 --query SecretString --output text)" \
  "$NEW_TOKEN" "token after rotation"
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --version-stage AWSPREVIOUS --query SecretString --output text)" \
  "$ADMIN_TOKEN" "AWSPREVIOUS after rotation"

step "Manual rotation (other secrets): put-secret-value for the Meta app secret and the OpenAI key"
put=$(aws secretsmanager put-secret-value \
  --secret-id whatsapp-saas/mvp/meta-app-secret \
  --secret-string "new-app-secret-value" \
  --region us-east-1 --query '[Name, join(`,`, VersionStages)]' --output text)
expect_eq "$put" "whatsapp-saas/mvp/meta-app-secret"$'\tAWSCURRENT' "put-secret-value answers the new version's stages"
aws secretsmanager put-secret-value \
  --secret-id whatsapp-saas/mvp/openai-api-key \
  --secret-string "sk-new-api-key" \
  --region us-east-1 >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/meta-app-secret --region us-east-1 --query SecretString --output text)" \
  "new-app-secret-value" "Meta app secret after rotation"
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/openai-api-key --region us-east-1 --query SecretString --output text)" \
  "sk-new-api-key" "OpenAI key after rotation"
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/openai-api-key --version-stage AWSPREVIOUS --query SecretString --output text)" \
  "sk-old-api-key" "OpenAI key AWSPREVIOUS"

step "Rollback rotation, manually: put-secret-value --secret-string \"\$(cat backup)\" restores the old token"
V3=$(aws secretsmanager put-secret-value \
  --secret-id whatsapp-saas/mvp/admin-token \
  --secret-string "$(cat "$work"/.admin-token-backup-20251017-143522.txt)" \
  --region us-east-1 --query VersionId --output text)
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 --query '[SecretString,VersionId]' --output text)" \
  "$ADMIN_TOKEN"$'\t'"$V3" "token after rollback (a new version holding the old value)"
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --version-stage AWSPREVIOUS --query '[SecretString,VersionId]' --output text)" \
  "$NEW_TOKEN"$'\t'"$V2" "AWSPREVIOUS after rollback (the rolled-back token)"

step "After rollback: two labelled versions; the first one is deprecated (listed only with --include-deprecated)"
expect_eq "$(aws secretsmanager list-secret-version-ids --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 \
  --query 'Versions[].[VersionId, join(`,`, VersionStages)]' --output text | LC_ALL=C sort)" \
  "$(printf '%s\t%s\n' "$V3" AWSCURRENT "$V2" AWSPREVIOUS | LC_ALL=C sort)" "list-secret-version-ids"
expect_eq "$(lines "$(aws secretsmanager list-secret-version-ids --secret-id whatsapp-saas/mvp/admin-token --include-deprecated \
  --query 'Versions[].VersionId' --output text)")" "$(printf '%s\n' "$V1" "$V2" "$V3" | LC_ALL=C sort)" \
  "list-secret-version-ids --include-deprecated"
expect_eq "$(aws secretsmanager describe-secret --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 \
  --query 'length(keys(VersionIdsToStages))' --output text)" "2" "describe-secret VersionIdsToStages (labelled versions only)"
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --version-id "$V1" --query SecretString --output text)" \
  "$ADMIN_TOKEN" "the deprecated first version is still readable by id"

step "Emergency access, scenario 2: get-secret-value --query 'SecretString' --output text"
expect_eq "$(aws secretsmanager get-secret-value \
  --secret-id whatsapp-saas/mvp/admin-token \
  --region us-east-1 \
  --query 'SecretString' \
  --output text)" "$(cat "$work"/.admin-token-backup-20251017-143522.txt)" "emergency read"

step "Troubleshooting issue 1: list-secrets --query \"SecretList[?contains(Name, 'whatsapp-saas/mvp')].Name\""
aws secretsmanager create-secret --name other-app/prod/token --secret-string x --region us-east-1 >/dev/null
names=$(aws secretsmanager list-secrets \
  --query "SecretList[?contains(Name, 'whatsapp-saas/mvp')].Name" \
  --region us-east-1)
# Default (JSON) output, as in the guide: a JSON list of exactly the three names.
expect_eq "$(python3 -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin))))' <<<"$names")" \
  "whatsapp-saas/mvp/admin-token whatsapp-saas/mvp/meta-app-secret whatsapp-saas/mvp/openai-api-key" "contains() query"

step "Troubleshooting issues 4 and 5: list-secrets --region us-east-1, describe-secret --region us-east-1"
expect_eq "$(lines "$(aws secretsmanager list-secrets --region us-east-1 --query 'SecretList[].Name' --output text)")" \
  "$(printf '%s\n' other-app/prod/token whatsapp-saas/mvp/admin-token whatsapp-saas/mvp/meta-app-secret whatsapp-saas/mvp/openai-api-key)" \
  "list-secrets"
desc=$(aws secretsmanager describe-secret \
  --secret-id whatsapp-saas/mvp/admin-token \
  --region us-east-1 --query '[ARN,Name,Description,length(Tags)]' --output text)
expect_eq "$desc" "$ADMIN_ARN"$'\twhatsapp-saas/mvp/admin-token\tAdmin API authentication token\t4' "describe-secret"
expect_error_message ResourceNotFoundException "Secrets Manager can't find the specified secret." \
  aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-tokn --region us-east-1

echo "seed 002: all checks passed"
