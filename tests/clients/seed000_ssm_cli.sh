#!/usr/bin/env bash
# Seed 000 (Amplify secrets on SSM Parameter Store): its Parameter Store commands, and its
# validate_secrets and restore_parameter_from_history functions copied unchanged, run against Coffer.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "creating the seed's parameters"
for p in TWILIO_ACCOUNT_SID TWILIO_AUTH_TOKEN SENDGRID_API_KEY; do
  aws ssm put-parameter --region us-west-1 --name "/amplify/$p" --value "initial-$p" --type SecureString >/dev/null
done
for p in FROM_EMAIL DEBUG_EMAIL TWILIO_FROM_PHONE; do
  aws ssm put-parameter --region us-west-1 --name "/amplify/$p" --value "value-$p" --type String >/dev/null
done

step "put-parameter with description and tags; a String config value"
out=$(aws ssm put-parameter --region us-west-1 \
  --name "/amplify/NEW_SECRET_KEY" \
  --value "secret-value-here" \
  --type "SecureString" \
  --description "Description of the secret purpose" \
  --tags "Key=Environment,Value=Production" "Key=Service,Value=RealTechee" --query Version --output text)
expect_eq "$out" "1" "first version"
aws ssm put-parameter --region us-west-1 \
  --name "/amplify/NEW_CONFIG_VALUE" \
  --value "configuration-value" \
  --type "String" \
  --description "Configuration parameter description" >/dev/null

step "get-parameter with and without decryption"
expect_eq "$(aws ssm get-parameter --region us-west-1 --name "/amplify/TWILIO_AUTH_TOKEN" --with-decryption \
  --query 'Parameter.Value' --output text)" "initial-TWILIO_AUTH_TOKEN" "decrypted SecureString"
hidden=$(aws ssm get-parameter --region us-west-1 --name "/amplify/TWILIO_AUTH_TOKEN" --query 'Parameter.Value' --output text)
expect_ne "$hidden" "initial-TWILIO_AUTH_TOKEN" "SecureString without decryption"
expect_eq "$(aws ssm get-parameter --region us-west-1 --name "/amplify/FROM_EMAIL" \
  --query 'Parameter.Value' --output text)" "value-FROM_EMAIL" "String parameter"

step "bulk retrieval by path (13 parameters: the CLI pages through them, 10 at a time)"
names=$(aws ssm get-parameters-by-path --region us-west-1 --path "/amplify/" --recursive --with-decryption \
  --query 'length(Parameters)' --output text)
expect_eq "$names" "8" "parameters under /amplify/"
for i in $(seq 1 5); do aws ssm put-parameter --region us-west-1 --name "/amplify/app1/dev/P$i" --value "v$i" --type String >/dev/null; done
# (--query applies to each page, so count the names rather than ask for length().)
count=$(aws ssm get-parameters-by-path --region us-west-1 --path /amplify/ --recursive --query 'Parameters[].Name' --output text | wc -w)
expect_eq "$count" "13" "recursive, paged"
count=$(aws ssm get-parameters-by-path --region us-west-1 --path /amplify/ --query 'Parameters[].Name' --output text | wc -w)
expect_eq "$count" "8" "one level only"

step "rotation with --overwrite, history as a table"
aws ssm put-parameter --region us-west-1 \
  --name "/amplify/TWILIO_AUTH_TOKEN" \
  --value "new-token-value" \
  --type "SecureString" \
  --overwrite \
  --description "Updated Twilio authentication token" >/dev/null
table=$(aws ssm get-parameter-history --region us-west-1 \
  --name "/amplify/TWILIO_AUTH_TOKEN" \
  --query 'Parameters[0:3].[Version,LastModifiedDate,Value]' \
  --output table)
expect_contains "$table" "GetParameterHistory" "history table"
expect_eq "$(aws ssm get-parameter-history --region us-west-1 --name /amplify/TWILIO_AUTH_TOKEN --with-decryption \
  --query 'Parameters[].Value' --output text)" $'initial-TWILIO_AUTH_TOKEN\tnew-token-value' "history values"
expect_eq "$(aws ssm get-parameter --region us-west-1 --name /amplify/TWILIO_AUTH_TOKEN --query 'Parameter.Version' --output text)" "2" "version 2"
expect_error ParameterAlreadyExists aws ssm put-parameter --region us-west-1 --name /amplify/FROM_EMAIL --value x --type String

step "the seed's validate_secrets function"
validate_secrets() {
  echo "🔑 Validating production secrets"

  REQUIRED_SECRETS=(
    "/amplify/TWILIO_ACCOUNT_SID"
    "/amplify/TWILIO_AUTH_TOKEN"
    "/amplify/SENDGRID_API_KEY"
    "/amplify/FROM_EMAIL"
    "/amplify/DEBUG_EMAIL"
    "/amplify/TWILIO_FROM_PHONE"
  )

  local validation_failed=false

  for secret in "${REQUIRED_SECRETS[@]}"; do
    echo "Checking secret: $secret"

    if aws ssm get-parameter --region us-west-1 --name "$secret" >/dev/null 2>&1; then
      echo "✅ $secret accessible"
    else
      echo "❌ $secret missing or inaccessible"
      validation_failed=true
    fi
  done

  if [ "$validation_failed" = true ]; then
    echo "❌ Secret validation failed - deployment blocked"
    exit 1
  fi

  echo "✅ All production secrets validated"
}
(validate_secrets) | grep -q "All production secrets validated" || fail "validate_secrets did not pass"
aws ssm delete-parameter --region us-west-1 --name /amplify/DEBUG_EMAIL
if (validate_secrets) >/dev/null 2>&1; then fail "validate_secrets passed with a missing secret"; fi
aws ssm put-parameter --region us-west-1 --name /amplify/DEBUG_EMAIL --value back --type String >/dev/null

step "the seed's restore_parameter_from_history function"
restore_parameter_from_history() {
  local PARAMETER_NAME="$1"
  local RESTORE_VERSION="$2"

  echo "Restoring $PARAMETER_NAME to version $RESTORE_VERSION"

  # Get historical value
  HISTORICAL_VALUE=$(aws ssm get-parameter-history --region us-west-1 \
    --name "$PARAMETER_NAME" \
    --query "Parameters[?Version==\`$RESTORE_VERSION\`].Value" \
    --output text)

  if [ -n "$HISTORICAL_VALUE" ]; then
    # Restore parameter
    aws ssm put-parameter --region us-west-1 \
      --name "$PARAMETER_NAME" \
      --value "$HISTORICAL_VALUE" \
      --type "SecureString" \
      --overwrite \
      --description "Restored from version $RESTORE_VERSION"

    echo "✅ Parameter restored successfully"
  else
    echo "❌ Historical version not found"
    exit 1
  fi
}
# The seed reads history without --with-decryption, so — as on AWS — what it restores is the stored form of
# a SecureString version, not its plaintext. A String parameter restores its value exactly.
aws ssm put-parameter --region us-west-1 --name /amplify/NEW_CONFIG_VALUE --value "broken" --type String --overwrite >/dev/null
(restore_parameter_from_history /amplify/NEW_CONFIG_VALUE 1) | grep -q "restored successfully" || fail "restore"
expect_eq "$(aws ssm get-parameter --region us-west-1 --name /amplify/NEW_CONFIG_VALUE --with-decryption --query Parameter.Value --output text)" \
  "configuration-value" "restored value"
expect_eq "$(aws ssm get-parameter --region us-west-1 --name /amplify/NEW_CONFIG_VALUE --query Parameter.Version --output text)" "3" "restore is a new version"
if (restore_parameter_from_history /amplify/NEW_CONFIG_VALUE 99) >/dev/null 2>&1; then fail "restored a missing version"; fi

step "labels and selectors, get-parameters, delete-parameters"
out=$(aws ssm label-parameter-version --region us-west-1 --name /amplify/TWILIO_AUTH_TOKEN --parameter-version 1 --labels prod 1bad)
expect_eq "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["InvalidLabels"])' <<<"$out")" "['1bad']" "invalid labels reported"
expect_eq "$(aws ssm get-parameter --region us-west-1 --name /amplify/TWILIO_AUTH_TOKEN:prod --with-decryption --query 'Parameter.[Value,Selector]' --output text)" \
  $'initial-TWILIO_AUTH_TOKEN\t:prod' "label selector"
expect_error ParameterVersionNotFound aws ssm get-parameter --region us-west-1 --name /amplify/TWILIO_AUTH_TOKEN:9
expect_error ParameterNotFound aws ssm get-parameter --region us-west-1 --name /amplify/SECRET_NAME
out=$(aws ssm get-parameters --region us-west-1 --names /amplify/FROM_EMAIL /amplify/NOPE --query 'InvalidParameters' --output text)
expect_eq "$out" "/amplify/NOPE" "invalid names listed"
out=$(aws ssm delete-parameters --region us-west-1 --names /amplify/app1/dev/P1 /amplify/NOPE --query 'DeletedParameters' --output text)
expect_eq "$out" "/amplify/app1/dev/P1" "deleted"
expect_error HierarchyLevelLimitExceededException aws ssm put-parameter --region us-west-1 --name "/$(printf 'l/%.0s' {1..15})x" --value v --type String
expect_error ValidationException aws ssm put-parameter --region us-west-1 --name /aws/reserved --value v --type String

step "troubleshooting: describe-parameters with BeginsWith (the seed's command), and more filters"
names=$(aws ssm describe-parameters --region us-west-1 \
  --parameter-filters "Key=Name,Option=BeginsWith,Values=/amplify/" --query 'Parameters[].Name' --output text | wc -w)
expect_eq "$names" "12" "BeginsWith /amplify/"
expect_eq "$(aws ssm describe-parameters --region us-west-1 --parameter-filters "Key=Type,Values=SecureString" \
  --query 'Parameters[].Name' --output text | wc -w)" "5" "Type filter (the restore above made NEW_CONFIG_VALUE a SecureString)"
expect_eq "$(aws ssm describe-parameters --region us-west-1 --parameter-filters "Key=tag:Service,Values=RealTechee" \
  --query 'Parameters[].[Name,Description,KeyId]' --output text)" $'/amplify/NEW_SECRET_KEY\tDescription of the secret purpose\talias/aws/ssm' "tag filter"
expect_eq "$(aws ssm describe-parameters --region us-west-1 --parameter-filters "Key=Path,Option=OneLevel,Values=/amplify/app1/dev" \
  --query 'Parameters[].Name' --output text | wc -w)" "4" "Path filter"
expect_error InvalidFilterOption aws ssm describe-parameters --region us-west-1 --parameter-filters "Key=Type,Option=Contains,Values=String"
expect_error InvalidFilterKey aws ssm get-parameters-by-path --region us-west-1 --path /amplify --parameter-filters "Key=Name,Values=x"
expect_eq "$(aws ssm get-parameters-by-path --region us-west-1 --path /amplify --parameter-filters "Key=Type,Values=String" \
  --query 'Parameters[].Name' --output text | wc -w)" "3" "by-path Type filter"

step "tags and unlabel"
aws ssm add-tags-to-resource --region us-west-1 --resource-type Parameter --resource-id /amplify/FROM_EMAIL --tags Key=Owner,Value=ops
expect_eq "$(aws ssm list-tags-for-resource --region us-west-1 --resource-type Parameter --resource-id /amplify/FROM_EMAIL \
  --query 'TagList[].[Key,Value]' --output text)" $'Owner\tops' "tags"
aws ssm remove-tags-from-resource --region us-west-1 --resource-type Parameter --resource-id /amplify/FROM_EMAIL --tag-keys Owner
expect_eq "$(aws ssm list-tags-for-resource --region us-west-1 --resource-type Parameter --resource-id /amplify/FROM_EMAIL \
  --query 'length(TagList)')" "0" "tag removed"
expect_error InvalidResourceId aws ssm list-tags-for-resource --region us-west-1 --resource-type Parameter --resource-id /amplify/NOPE
out=$(aws ssm unlabel-parameter-version --region us-west-1 --name /amplify/TWILIO_AUTH_TOKEN --parameter-version 1 --labels prod nope \
  --query '[RemovedLabels,InvalidLabels]' --output text)
expect_eq "$out" $'prod\nnope' "unlabel"
expect_error ParameterNotFound aws ssm get-parameter --region us-west-1 --name /amplify/TWILIO_AUTH_TOKEN:prod

step "a Secrets Manager secret through /aws/reference/secretsmanager/"
aws secretsmanager create-secret --region us-west-1 --name prod/db --secret-string '{"password":"ref-pw"}' >/dev/null
expect_eq "$(aws ssm get-parameter --region us-west-1 --name /aws/reference/secretsmanager/prod/db --with-decryption \
  --query 'Parameter.[Value,Type]' --output text)" $'{"password":"ref-pw"}\tSecureString' "reference value"
source_name=$(aws ssm get-parameter --region us-west-1 --name /aws/reference/secretsmanager/prod/db --with-decryption \
  --query 'Parameter.SourceResult' --output text | python3 -c 'import json,sys; print(json.load(sys.stdin)["Name"])')
expect_eq "$source_name" "prod/db" "SourceResult is the DescribeSecret document"
expect_error ValidationException aws ssm get-parameter --region us-west-1 --name /aws/reference/secretsmanager/prod/db
expect_error ParameterNotFound aws ssm get-parameter --region us-west-1 --name /aws/reference/secretsmanager/prod/none --with-decryption

step "the seed's secret_health_check function, unchanged"
secret_health_check() {
  echo "üîç Running secret management health check"
  
  # Check all critical secrets
  CRITICAL_SECRETS=(
    "/amplify/TWILIO_ACCOUNT_SID"
    "/amplify/TWILIO_AUTH_TOKEN"
    "/amplify/SENDGRID_API_KEY"
    "/amplify/FROM_EMAIL"
  )
  
  local health_check_passed=true
  
  for secret in "${CRITICAL_SECRETS[@]}"; do
    echo "Checking $secret..."
    
    # Test parameter existence
    if aws ssm get-parameter --region us-west-1 --name "$secret" >/dev/null 2>&1; then
      echo "  ‚úÖ Parameter exists"
      
      # Test decryption (for SecureString)
      if aws ssm get-parameter --region us-west-1 --name "$secret" --with-decryption >/dev/null 2>&1; then
        echo "  ‚úÖ Decryption successful"
      else
        echo "  ‚ùå Decryption failed"
        health_check_passed=false
      fi
    else
      echo "  ‚ùå Parameter not found"
      health_check_passed=false
    fi
  done
  
  if [ "$health_check_passed" = true ]; then
    echo "‚úÖ Secret management health check passed"
  else
    echo "‚ùå Secret management health check failed"
    exit 1
  fi
}
out=$(secret_health_check)
expect_contains "$out" "Secret management health check passed" "secret_health_check"
expect_lacks "$out" "failed" "secret_health_check"
aws ssm delete-parameter --region us-west-1 --name /amplify/FROM_EMAIL
if out=$(secret_health_check); then fail "secret_health_check passed with a missing parameter"; fi
expect_contains "$out" "Parameter not found" "secret_health_check names the missing parameter"

echo "seed 000 (Parameter Store): all checks passed"
