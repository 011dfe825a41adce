#!/usr/bin/env bash
# Installs the real AWS clients the end-to-end tests drive, pinned: the aws CLI (v1) and boto3 from PyPI into a
# virtualenv (requirements.txt), and @aws-sdk/client-secrets-manager, -ssm and -kms from npm (package.json + package-lock.json).
# Needs only python3 (with venv), pip, node and npm; installs nothing globally.
#   <dir>/venv   the virtualenv (aws, python with boto3)
#   <dir>/node   node_modules with the JS SDK v3
# where <dir> = ${COFFER_CLIENTS_DIR:-${CARGO_TARGET_DIR:-<repo>/target}/coffer-clients}.
# Idempotent and quiet: a stamp keyed on the pins makes a second run a no-op; output goes to <dir>/setup.log,
# whose tail is printed only on failure (exit status non-zero).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
root="${COFFER_CLIENTS_DIR:-${CARGO_TARGET_DIR:-$repo/target}/coffer-clients}"
mkdir -p "$root"
root="$(cd "$root" && pwd)"

# The stamp names a hash of everything that decides what gets installed.
pins="$(cat "$here/setup.sh" "$here/requirements.txt" "$here/package.json" "$here/package-lock.json" | cksum | tr -d ' ')"
stamp="$root/.installed-$pins"
ready() { [ -f "$stamp" ] && [ -x "$root/venv/bin/aws" ] && [ -d "$root/node/node_modules/@aws-sdk/client-secrets-manager" ] && [ -d "$root/node/node_modules/@aws-sdk/client-ssm" ] && [ -d "$root/node/node_modules/@aws-sdk/client-kms" ]; }
ready && exit 0

# Concurrent callers (parallel test binaries) wait for each other instead of racing on the same directory.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$root/.setup.lock"
  flock 9
  ready && exit 0
fi

log="$root/setup.log"
install() {
  set -x
  rm -f "$root"/.installed-*
  for tool in python3 node npm; do command -v "$tool" || { echo "setup.sh needs $tool on PATH"; return 1; }; done
  [ -x "$root/venv/bin/python" ] || python3 -m venv "$root/venv"
  "$root/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  "$root/venv/bin/aws" --version
  "$root/venv/bin/python" -c 'import boto3, botocore; print("boto3", boto3.__version__, "botocore", botocore.__version__)'
  mkdir -p "$root/node"
  cp "$here/package.json" "$here/package-lock.json" "$root/node/"
  (cd "$root/node" && npm ci --no-audit --no-fund --loglevel=error)
  node -e 'console.log("js sdk", require(process.argv[1] + "/node_modules/@aws-sdk/client-secrets-manager/package.json").version)' "$root/node"
}
# Not `if ! install`: errexit is off inside a condition, so run it as a plain statement and test the status.
set +e
(set -euo pipefail; install) >"$log" 2>&1
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "tests/clients/setup.sh: installing the AWS test clients into $root failed (full log: $log):" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
touch "$stamp"
