#!/usr/bin/env bash
# `coffer agent` benchmark, run by hand (never as a test):
#   1. cache-hit throughput and latency of GET /secretsmanager/get at each concurrency in $CONCURRENCY,
#      with `agent-load` (plain GETs with the X-Aws-Parameters-Secrets-Token header, one keep-alive
#      connection per worker);
#   2. how long after a PutSecretValue the agent serves the new value: with refreshNow=true (one round
#      trip to the server); with plain GETs and change events (the default: $PUTS puts, median, p90 and
#      max from the put's answer to the new value served); and with plain GETs under the TTL alone
#      (`--no-watch`, $PROPAGATION_TTL, default the agent's default of 300 s: a value in use is
#      refreshed in the background at 80 % of its TTL, so expect up to the TTL; this part takes that
#      long; PROPAGATION_TTL=0 skips it).
#
#   bench/agent.sh
#   CONCURRENCY="1 8" DURATION=3 PROPAGATION_TTL=10 PUTS=20 bench/agent.sh
#   SKIP_BUILD=1 bench/agent.sh            # reuse $CARGO_TARGET_DIR/release/{coffer,agent-load}
#   AWS_AGENT_BIN=/path/to/aws_secretsmanager_agent ROUNDS=3 bench/agent.sh
#
# Peer: AWS's own agent (aws-secretsmanager-agent), when AWS_AGENT_BIN names its binary, pointed at the same
# Coffer server (AWS_ENDPOINT_URL; it checks its credentials with STS GetCallerIdentity at start, which Coffer
# answers). It is built from its public source for the measurement only, outside this repository:
#   git clone https://github.com/aws/aws-secretsmanager-agent && cd aws-secretsmanager-agent &&
#   cargo build --release -p aws_secretsmanager_agent      # -> target/release/aws_secretsmanager_agent
# Both agents run the whole time; the cache-hit runs take turns (coffer, aws, coffer, aws, ...) $ROUNDS
# times at each concurrency, so a noisy moment hits both; compare the medians.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
coffer="$target_dir/release/coffer"
load="$target_dir/release/agent-load"
CONCURRENCY="${CONCURRENCY:-1 8 64}"
ROUNDS="${ROUNDS:-1}"
AWS_AGENT_BIN="${AWS_AGENT_BIN:-}"
DURATION="${DURATION:-5}"
PROPAGATION_TTL="${PROPAGATION_TTL:-300}"
PUTS="${PUTS:-50}"
SECRET=bench/agent-secret
say() { echo "bench: $*" >&2; }

if [ -z "${SKIP_BUILD:-}" ]; then
  say "building the release binaries (target dir $target_dir)"
  CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet -p coffer-cli --bin coffer -p coffer-bench --bin agent-load
fi

work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/coffer-agent.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# wait_for FILE PREFIX: prints what follows PREFIX on the first line of FILE that starts with it.
wait_for() {
  local line=""
  for _ in $(seq 1 600); do
    line=$(sed -n "s|^$2||p" "$1" | head -n1)
    [ -z "$line" ] || { echo "$line"; return 0; }
    sleep 0.1
  done
  return 1
}

COFFER_LOG=warn "$coffer" server --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/server.out" 2>"$work/server.log" &
pids+=($!)
endpoint=$(wait_for "$work/server.out" "coffer listening on ") || { cat "$work/server.log" >&2; exit 1; }
export AWS_ENDPOINT_URL="$endpoint" AWS_SHARED_CREDENTIALS_FILE="$work/data/root-credentials" AWS_CONFIG_FILE=/dev/null
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_CONTAINER_AUTHORIZATION_TOKEN

"$coffer" secret create "$SECRET" --value "synthetic-value-0" >/dev/null

AGENT_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
export AGENT_TOKEN
# start_agent NAME ARGS...: starts `coffer agent`, sets $agent to its URL.
start_agent() {
  local name=$1
  shift
  AWS_TOKEN="$AGENT_TOKEN" COFFER_LOG=warn "$coffer" agent --port 0 --endpoint-url "$endpoint" "$@" \
    >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  agent="http://$(wait_for "$work/$name.out" "coffer agent listening on http://")" || { cat "$work/$name.log" >&2; exit 1; }
}

start_agent agent
say "server $endpoint, agent $agent; machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

aws_agent=""
if [ -n "$AWS_AGENT_BIN" ]; then
  # A free port for it (its configuration takes a port, not 0).
  aws_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$work/aws-agent.toml" <<TOML
http_port = "$aws_port"
log_level = "error"
log_to_file = false
region = "us-east-1"
ttl_seconds = "300"
cache_size = "1000"
TOML
  (cd "$work" && AWS_TOKEN="$AGENT_TOKEN" exec "$AWS_AGENT_BIN" --config "$work/aws-agent.toml" \
    >"$work/aws-agent.out" 2>"$work/aws-agent.log") &
  pids+=($!)
  aws_agent="http://127.0.0.1:$aws_port"
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$aws_agent/ping" && break
    sleep 0.1
  done
  curl -sf -o /dev/null -H "X-Aws-Parameters-Secrets-Token: $AGENT_TOKEN" \
    "$aws_agent/secretsmanager/get?secretId=$SECRET" || { cat "$work/aws-agent.log" >&2; say "AWS's agent does not answer"; exit 1; }
  say "AWS's agent $aws_agent ($AWS_AGENT_BIN)"
fi

echo "== cache hits: GET /secretsmanager/get?secretId=$SECRET, ${DURATION} s each, $ROUNDS round(s) =="
for c in $CONCURRENCY; do
  for round in $(seq 1 "$ROUNDS"); do
    "$load" --endpoint "$agent" --path "/secretsmanager/get?secretId=$SECRET" --concurrency "$c" --duration "$DURATION" \
      --label "coffer-agent c=$c round $round"
    if [ -n "$aws_agent" ]; then
      "$load" --endpoint "$aws_agent" --path "/secretsmanager/get?secretId=$SECRET" --concurrency "$c" \
        --duration "$DURATION" --label "aws-agent c=$c round $round"
    fi
  done
done
curl_health() { curl -s -H "X-Aws-Parameters-Secrets-Token: $AGENT_TOKEN" "$agent/health"; echo; }
if command -v curl >/dev/null; then echo "health: $(curl_health)"; fi

echo "== PutSecretValue -> agent serves the new value =="
"$coffer" secret put "$SECRET" --value "synthetic-value-1" >/dev/null
"$load" --endpoint "$agent" --propagation "$SECRET" --expect "synthetic-value-1" --refresh-now --label "refreshNow=true"
"$load" --endpoint "$agent" --put-propagation "$SECRET" --puts "$PUTS" --poll-ms 2 --label "change events"
if command -v curl >/dev/null; then echo "health: $(curl_health)"; fi

[ "$PROPAGATION_TTL" -gt 0 ] || exit 0
"$coffer" secret put "$SECRET" --value "synthetic-value-1" >/dev/null
start_agent agent-ttl --no-watch --ttl-seconds "$PROPAGATION_TTL"
# Fetch once so the entry is fresh, then change the value: the worst case for a hot entry.
"$load" --endpoint "$agent" --propagation "$SECRET" --expect "synthetic-value-1" --poll-ms 1 --label "warm" >/dev/null
"$coffer" secret put "$SECRET" --value "synthetic-value-2" >/dev/null
say "waiting for the TTL path (ttl ${PROPAGATION_TTL} s; polling every 200 ms)"
"$load" --endpoint "$agent" --propagation "$SECRET" --expect "synthetic-value-2" --poll-ms 200 \
  --poll-limit "$((PROPAGATION_TTL + 60))" --label "plain GETs, ttl ${PROPAGATION_TTL} s"
