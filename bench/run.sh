#!/usr/bin/env bash
# Runs Coffer, the SigV4-only calibration server and moto's server side by side on loopback and drives
# each with the same signing load generator: GetSecretValue (random pick among SECRETS), PutSecretValue
# and CreateSecret at concurrency 1, 8 and 64. Prints a markdown table and writes it to bench/results/.
#
#   bench/run.sh                 full run (DURATION=10 s per cell)
#   QUICK=1 bench/run.sh         smoke run (2 s per cell, fewer secrets)
#   PEERS="coffer fixed" ...     choose peers (coffer fixed moto)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target}"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
SECRETS="${SECRETS:-10000}"
MOTO_SECRETS="${MOTO_SECRETS:-$SECRETS}"
CONCURRENCY="${CONCURRENCY:-1 8 64}"
WORKLOADS="${WORKLOADS:-get-secret-value put-secret-value create-secret}"
PEERS="${PEERS:-coffer fixed moto}"
if [ -n "${QUICK:-}" ]; then DURATION=2; WARMUP=1; SECRETS=1000; MOTO_SECRETS=1000; fi

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet -p coffer-cli -p coffer-bench
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_line() { # file pattern
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1" >&2; cat "$1" >&2; exit 1
}

declare -A endpoint creds secrets_for setup_c
if [[ " $PEERS " == *" coffer "* ]]; then
  "$bin/coffer" server --listen 127.0.0.1:0 --data-dir "$work/coffer" >"$work/coffer.out" 2>"$work/coffer.err" &
  pids+=($!)
  wait_line "$work/coffer.out" "listening on"
  endpoint[coffer]=$(sed -n 's/^coffer listening on //p' "$work/coffer.out")
  creds[coffer]="--credentials-file $work/coffer/root-credentials"
  secrets_for[coffer]=$SECRETS
  setup_c[coffer]=16
fi
if [[ " $PEERS " == *" fixed "* ]]; then
  "$bin/fixed-server" --listen 127.0.0.1:0 >"$work/fixed.out" 2>&1 &
  pids+=($!)
  wait_line "$work/fixed.out" "listening on"
  endpoint[fixed]=$(sed -n 's/^fixed-server listening on //p' "$work/fixed.out")
  creds[fixed]=""
  secrets_for[fixed]=$SECRETS
  setup_c[fixed]=16
fi
if [[ " $PEERS " == *" moto "* ]]; then
  venv="$CARGO_TARGET_DIR/bench-venv"
  if [ ! -x "$venv/bin/moto_server" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet 'moto[server]'
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.2; done
  endpoint[moto]="http://127.0.0.1:$port"
  creds[moto]=""
  secrets_for[moto]=$MOTO_SECRETS
  setup_c[moto]=1
fi

results="$work/results.jsonl"
for peer in $PEERS; do
  # shellcheck disable=SC2086
  "$bin/loadgen" --endpoint "${endpoint[$peer]}" ${creds[$peer]} --label "$peer" --workload get-secret-value \
    --secrets "${secrets_for[$peer]}" --setup --setup-concurrency "${setup_c[$peer]}" --concurrency 1 --duration 1 --warmup 0 --json >/dev/null
done
for workload in $WORKLOADS; do
  for c in $CONCURRENCY; do
    for peer in $PEERS; do
      # shellcheck disable=SC2086
      "$bin/loadgen" --endpoint "${endpoint[$peer]}" ${creds[$peer]} --label "$peer" --workload "$workload" \
        --secrets "${secrets_for[$peer]}" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" --json | tee -a "$results" >&2
    done
  done
done

out="bench/results/$(date -u +%Y-%m-%d).md"
python3 - "$results" "$DURATION" "$SECRETS" "$MOTO_SECRETS" > "$work/table.md" <<'PY'
import json, sys, os, platform
rows = [json.loads(l) for l in open(sys.argv[1])]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.platform()}; server and load generator share it.")
print(f"Each cell: {sys.argv[2]} s measured after warm-up; key space {sys.argv[3]} secrets (moto {sys.argv[4]}).\n")
print("| workload | c | peer | req/s | p50 µs | p99 µs | errors | Coffer ÷ peer |")
print("|---|---|---|---|---|---|---|---|")
base = {(r["workload"], r["concurrency"]): r["rps"] for r in rows if r["peer"] == "coffer"}
for r in rows:
    b = base.get((r["workload"], r["concurrency"]))
    ratio = f'{b / r["rps"]:.2f}' if b and r["rps"] else "-"
    print(f'| {r["workload"]} | {r["concurrency"]} | {r["peer"]} | {r["rps"]:.0f} | {r["p50_us"]} | {r["p99_us"]} | {r["errors"]} | {ratio} |')
PY
{ echo "## $(date -u '+%Y-%m-%d %H:%M UTC')"; echo; cat "$work/table.md"; echo; } >> "$out"
cat "$work/table.md"
echo "(appended to $out)"
