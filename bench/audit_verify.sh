#!/usr/bin/env bash
# How fast `coffer audit verify` checks a real audit log, run by hand (never as a test): starts Coffer on a
# fresh data dir, fills its log with GetSecretValue events from the load generator for DURATION seconds,
# stops it (a digest is signed at shutdown), then verifies the data dir offline, RUNS times.
#   CARGO_TARGET_DIR=/work/target bench/audit_verify.sh        (DURATION=30 SECRETS=2000 RUNS=3)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/release"
DURATION="${DURATION:-30}"; SECRETS="${SECRETS:-2000}"; RUNS="${RUNS:-3}"
[ -n "${SKIP_BUILD:-}" ] || (cd "$root" && cargo build --release --quiet -p coffer-cli -p coffer-bench)
work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-verify-bench.XXXXXX")
pid=
cleanup() { [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
env -u COFFER_MASTER_KEY COFFER_LOG=warn "$bin/coffer" server --listen 127.0.0.1:0 --data-dir "$work/data" \
  >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q '^coffer listening on ' "$work/out" 2>/dev/null && break; sleep 0.1; done
endpoint=$(sed -n 's/^coffer listening on //p' "$work/out" | head -n1)
creds="--credentials-file $work/data/root-credentials"
# shellcheck disable=SC2086
"$bin/loadgen" --endpoint "$endpoint" $creds --secrets "$SECRETS" --setup-only --setup-concurrency 16 >/dev/null
# shellcheck disable=SC2086
"$bin/loadgen" --endpoint "$endpoint" $creds --secrets "$SECRETS" --workload get-secret-value --concurrency 8 \
  --duration "$DURATION" --warmup 0 >/dev/null
kill -TERM "$pid"; wait "$pid" || true; pid=
ls -la "$work/data" >&2
for _ in $(seq 1 "$RUNS"); do
  "$bin/coffer" audit verify --data-dir "$work/data" --public-key "$work/data/audit-public-key.pem" | grep -E '^(checked|OK|TAMPERED)'
done
