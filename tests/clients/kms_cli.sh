#!/usr/bin/env bash
# KMS with the aws CLI: the default keys the seeds rely on (alias/aws/ssm, alias/aws/secretsmanager),
# customer keys and aliases, encrypt/decrypt round trips with an encryption context, data keys for
# client-side envelope encryption (what seed 003 does), rotation, tags, and a disabled key stopping
# the secrets and SecureStrings it protects until it is enabled again.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "describe-key alias/aws/ssm: the default key exists from the start"
out=$(aws kms describe-key --key-id alias/aws/ssm --query 'KeyMetadata.[KeyManager,KeyState,Enabled,KeySpec,KeyUsage]' --output text)
expect_eq "$out" $'AWS\tEnabled\tTrue\tSYMMETRIC_DEFAULT\tENCRYPT_DECRYPT' "alias/aws/ssm metadata"
ssm_key=$(aws kms describe-key --key-id alias/aws/ssm --query KeyMetadata.KeyId --output text)
expect_match "$ssm_key" "$UUID_RE" "key id"
sm_arn=$(aws kms describe-key --key-id alias/aws/secretsmanager --query KeyMetadata.Arn --output text)
expect_match "$sm_arn" '^arn:aws:kms:us-east-1:[0-9]{12}:key/' "default Secrets Manager key ARN"
aliases=$(aws kms list-aliases --query 'Aliases[].AliasName' --output text)
expect_contains "$aliases" "alias/aws/ssm" "list-aliases"
expect_contains "$aliases" "alias/aws/secretsmanager" "list-aliases"
expect_error NotFoundException aws kms describe-key --key-id alias/no-such-alias

step "create-key with tags, create-alias, list-keys"
key=$(aws kms create-key --description "payments envelope key" --tags TagKey=team,TagValue=payments \
  --query KeyMetadata.KeyId --output text)
expect_match "$key" "$UUID_RE" "new key id"
aws kms create-alias --alias-name alias/payments --target-key-id "$key"
expect_error AlreadyExistsException aws kms create-alias --alias-name alias/payments --target-key-id "$key"
expect_error InvalidAliasNameException aws kms create-alias --alias-name payments --target-key-id "$key"
expect_eq "$(aws kms describe-key --key-id alias/payments --query KeyMetadata.KeyId --output text)" "$key" "alias resolves"
expect_contains "$(aws kms list-keys --query 'Keys[].KeyId' --output text)" "$key" "list-keys"
expect_eq "$(aws kms list-resource-tags --key-id "$key" --query 'Tags[0].[TagKey,TagValue]' --output text)" \
  $'team\tpayments' "tags"
aws kms tag-resource --key-id "$key" --tags TagKey=env,TagValue=prod
expect_eq "$(aws kms list-resource-tags --key-id "$key" --query 'length(Tags)' --output text)" "2" "tag count"

step "encrypt / decrypt with an encryption context"
printf 'synthetic payload for the round trip' >"$work/plain"
aws kms encrypt --key-id alias/payments --plaintext "fileb://$work/plain" --encryption-context purpose=test,tenant=a \
  --query CiphertextBlob --output text | base64 -d >"$work/cipher"
aws kms decrypt --ciphertext-blob "fileb://$work/cipher" --encryption-context purpose=test,tenant=a \
  --query Plaintext --output text | base64 -d >"$work/back"
cmp -s "$work/plain" "$work/back" || fail "decrypt did not return the plaintext"
out=$(aws kms decrypt --ciphertext-blob "fileb://$work/cipher" --encryption-context purpose=test,tenant=a \
  --query KeyId --output text)
expect_match "$out" "key/$key\$" "decrypt reports the key ARN"
expect_error InvalidCiphertextException aws kms decrypt --ciphertext-blob "fileb://$work/cipher" --encryption-context purpose=test
expect_error IncorrectKeyException aws kms decrypt --ciphertext-blob "fileb://$work/cipher" \
  --encryption-context purpose=test,tenant=a --key-id alias/aws/ssm

step "re-encrypt under another key and context"
aws kms re-encrypt --ciphertext-blob "fileb://$work/cipher" --source-encryption-context purpose=test,tenant=a \
  --destination-key-id alias/aws/ssm --destination-encryption-context tenant=b \
  --query CiphertextBlob --output text | base64 -d >"$work/cipher2"
aws kms decrypt --ciphertext-blob "fileb://$work/cipher2" --encryption-context tenant=b \
  --query Plaintext --output text | base64 -d >"$work/back2"
cmp -s "$work/plain" "$work/back2" || fail "re-encrypted ciphertext did not decrypt"

step "generate-data-key for client-side envelope encryption"
dk=$(aws kms generate-data-key --key-id "$key" --key-spec AES_256 --output json)
plain_b64=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Plaintext"])' <<<"$dk")
python3 -c 'import json,sys,base64; sys.stdout.buffer.write(base64.b64decode(json.load(sys.stdin)["CiphertextBlob"]))' \
  <<<"$dk" >"$work/dk"
expect_eq "$(base64 -d <<<"$plain_b64" | wc -c | tr -d ' ')" "32" "data key length"
again=$(aws kms decrypt --ciphertext-blob "fileb://$work/dk" --query Plaintext --output text)
expect_eq "$again" "$plain_b64" "the encrypted data key decrypts to the same key"
out=$(aws kms generate-data-key-without-plaintext --key-id "$key" --number-of-bytes 64 --output json)
expect_lacks "$out" '"Plaintext"' "generate-data-key-without-plaintext"

step "rotation settings"
aws kms enable-key-rotation --key-id "$key" --rotation-period-in-days 180
expect_eq "$(aws kms get-key-rotation-status --key-id "$key" --query '[KeyRotationEnabled,RotationPeriodInDays]' --output text)" \
  $'True\t180' "rotation status"
aws kms disable-key-rotation --key-id "$key"
expect_eq "$(aws kms get-key-rotation-status --key-id "$key" --query KeyRotationEnabled --output text)" "False" "rotation off"

step "a disabled key stops the secret and the SecureString it protects"
aws secretsmanager create-secret --name prod/payments/db --kms-key-id alias/payments \
  --secret-string '{"password":"synthetic-db-pw"}' >/dev/null
aws ssm put-parameter --name /prod/payments/api-key --type SecureString --key-id alias/payments \
  --value synthetic-api-key >/dev/null
expect_eq "$(aws ssm get-parameter --name /prod/payments/api-key --with-decryption --query Parameter.Value --output text)" \
  "synthetic-api-key" "SecureString under the customer key"
aws kms disable-key --key-id "$key"
expect_eq "$(aws kms describe-key --key-id "$key" --query KeyMetadata.KeyState --output text)" "Disabled" "key state"
expect_error DecryptionFailure aws secretsmanager get-secret-value --secret-id prod/payments/db
expect_contains "$ERROR_MESSAGE" "is disabled" "Secrets Manager names the reason"
expect_lacks "$ERROR_MESSAGE" "synthetic" "no value in the error"
expect_error DisabledException aws ssm get-parameter --name /prod/payments/api-key --with-decryption
expect_error DisabledException aws kms encrypt --key-id "$key" --plaintext "fileb://$work/plain"
expect_error EncryptionFailure aws secretsmanager put-secret-value --secret-id prod/payments/db --secret-string x
aws kms enable-key --key-id "$key"
out=$(aws secretsmanager get-secret-value --secret-id prod/payments/db --query SecretString --output text)
expect_eq "$out" '{"password":"synthetic-db-pw"}' "readable again once enabled"

step "deletion: refused while a secret depends on the key; cancel brings it back disabled"
expect_error KMSInvalidStateException aws kms schedule-key-deletion --key-id "$key" --pending-window-in-days 7
expect_contains "$ERROR_MESSAGE" "1 secret(s) and 1 parameter(s)" "dependents named"
expect_error ValidationException aws kms schedule-key-deletion --key-id "$key" --pending-window-in-days 3
other=$(aws kms create-key --query KeyMetadata.KeyId --output text)
out=$(aws kms schedule-key-deletion --key-id "$other" --pending-window-in-days 7 --query '[KeyState,PendingWindowInDays]' --output text)
expect_eq "$out" $'PendingDeletion\t7' "scheduled"
expect_error KMSInvalidStateException aws kms encrypt --key-id "$other" --plaintext "fileb://$work/plain"
aws kms cancel-key-deletion --key-id "$other" >/dev/null
expect_eq "$(aws kms describe-key --key-id "$other" --query KeyMetadata.KeyState --output text)" "Disabled" "after cancel"

step "aliases: update, delete"
aws kms update-alias --alias-name alias/payments --target-key-id "$other"
expect_eq "$(aws kms describe-key --key-id alias/payments --query KeyMetadata.KeyId --output text)" "$other" "retargeted"
aws kms delete-alias --alias-name alias/payments
expect_error NotFoundException aws kms delete-alias --alias-name alias/payments
echo "kms (aws CLI): all checks passed"
