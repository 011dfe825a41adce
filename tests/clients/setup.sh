#!/usr/bin/env bash
# Installs the real AWS clients the end-to-end tests drive: the aws CLI and boto3 from PyPI into a
# virtualenv, and the JS SDK v3 Secrets Manager client from npm. Idempotent: a stamp file records what
# was installed, so a second run does nothing.
set -euo pipefail

root="${COFFER_CLIENTS_DIR:-${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/target}/coffer-clients}"
here="$(cd "$(dirname "$0")" && pwd)"

AWSCLI_VERSION="1.46.3"
JS_SDK_VERSION="3.1163.0"
stamp="$root/.installed-awscli-$AWSCLI_VERSION-js-$JS_SDK_VERSION"

if [ -f "$stamp" ]; then
  exit 0
fi

mkdir -p "$root"
log="$root/setup.log"
{
  python3 -m venv "$root/venv"
  "$root/venv/bin/pip" install --quiet --upgrade pip
  # boto3 is left to pip so it matches the botocore that this awscli pins.
  "$root/venv/bin/pip" install --quiet "awscli==$AWSCLI_VERSION" boto3
  mkdir -p "$root/node"
  cp "$here/package.json" "$root/node/package.json"
  (cd "$root/node" && npm install --silent --no-audit --no-fund "@aws-sdk/client-secrets-manager@$JS_SDK_VERSION")
} >"$log" 2>&1 || {
  echo "installing the AWS test clients failed; see $log" >&2
  tail -n 30 "$log" >&2
  exit 1
}
touch "$stamp"
