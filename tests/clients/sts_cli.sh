#!/usr/bin/env bash
# `aws sts get-caller-identity`, which the seeds use to see which credentials a shell is using, over the
# AWS query protocol (form-encoded request, XML response).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "get-caller-identity with the root credentials"
out=$(aws sts get-caller-identity --query '[Account,Arn,UserId]' --output text)
expect_eq "$out" $'000000000000\tarn:aws:iam::000000000000:root\t000000000000' "caller identity"
json=$(aws sts get-caller-identity --output json)
expect_contains "$json" '"Arn": "arn:aws:iam::000000000000:root"' "JSON output"

step "a bad signature is refused in the query protocol's error form"
expect_error SignatureDoesNotMatch env AWS_SECRET_ACCESS_KEY=wrong-secret-key-for-the-test \
  AWS_ACCESS_KEY_ID="$(aws configure get aws_access_key_id)" AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  aws sts get-caller-identity
expect_error InvalidClientTokenId env AWS_ACCESS_KEY_ID=AKIANOTAREALKEY00000 AWS_SECRET_ACCESS_KEY=whatever \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null aws sts get-caller-identity
echo "sts (aws CLI): all checks passed"
