#!/usr/bin/env bash
# Seed 002 (WhatsApp SaaS secrets guide): its Secrets Manager commands without IAM and rotation Lambdas —
# create with description and tags, manual rotation with put-secret-value, rollback from a backup file.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

aws secretsmanager create-secret \
  --name whatsapp-saas/mvp/admin-token \
  --description "Admin API authentication token" \
  --secret-string "$(openssl rand -hex 32)" \
  --region us-east-1 \
  --tags Key=Project,Value=whatsapp-saas \
         Key=Environment,Value=mvp \
         Key=Owner,Value=devops-team \
         Key=CostCenter,Value=engineering >/dev/null
aws secretsmanager create-secret --name whatsapp-saas/mvp/meta-app-secret --secret-string "meta-1" --region us-east-1 >/dev/null
aws secretsmanager create-secret --name whatsapp-saas/mvp/openai-api-key --secret-string "sk-old" --region us-east-1 >/dev/null

# Test secret access (Step 2 of the AWS setup).
aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --region us-east-1 >/dev/null

# rotate-admin-token.sh: back up the old token, put a new one.
aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --query SecretString --output text > "$work/backup.txt"
aws secretsmanager put-secret-value --secret-id whatsapp-saas/mvp/admin-token --secret-string "$(openssl rand -hex 32)" --region us-east-1 >/dev/null
# Manual rotation of the other secrets.
aws secretsmanager put-secret-value --secret-id whatsapp-saas/mvp/meta-app-secret --secret-string "new-app-secret-value" --region us-east-1 >/dev/null
aws secretsmanager put-secret-value --secret-id whatsapp-saas/mvp/openai-api-key --secret-string "sk-new-api-key" --region us-east-1 >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/openai-api-key --query SecretString --output text)" "sk-new-api-key" "manual rotation"

# Rollback: put the backed-up value back.
aws secretsmanager put-secret-value \
  --secret-id whatsapp-saas/mvp/admin-token \
  --secret-string "$(cat "$work/backup.txt")" \
  --region us-east-1 >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id whatsapp-saas/mvp/admin-token --query SecretString --output text)" "$(cat "$work/backup.txt")" "rollback"

# Troubleshooting queries.
names=$(aws secretsmanager list-secrets --query "SecretList[?contains(Name, 'whatsapp-saas/mvp')].Name" --region us-east-1 --output text)
expect_eq "$(tr '\t' '\n' <<<"$names" | sort | tr '\n' ' ')" "whatsapp-saas/mvp/admin-token whatsapp-saas/mvp/meta-app-secret whatsapp-saas/mvp/openai-api-key " "list with contains()"
desc=$(aws secretsmanager describe-secret --secret-id whatsapp-saas/mvp/admin-token --region us-east-1)
expect_eq "$(jq -r '.Tags | length' <<<"$desc")" "4" "four tags"
expect_eq "$(jq -r '.Description' <<<"$desc")" "Admin API authentication token" "description"
expect_eq "$(jq -r '[.VersionIdsToStages[][]] | sort | join(",")' <<<"$desc")" "AWSCURRENT,AWSPREVIOUS" "stages after rollback"

echo "seed 002: all checks passed"
