#!/usr/bin/env bash
# Coffer on PostgreSQL with 1, 2 and 3 nodes, next to Coffer on its embedded SQLite file, in one run (run by
# hand, never as a test). GetSecretValue and PutSecretValue are driven by the SigV4-signing load generator;
# with several nodes its workers take the nodes' endpoints in turn, as a load balancer would.
#
# Peers (SQLite measured next to each mode's cells; three nodes of one mode run at a time):
#   sqlite            one node on a fresh data directory (the default backend)
#   pg-strong-N       N nodes over one PostgreSQL schema, read_consistency = strong (every cached read is checked
#                     against the stored revision: one single-row query)
#   pg-cached-N       N nodes over the same schema, read_consistency = cached (served from the node's cache
#                     until a change notice names the secret)
# The PostgreSQL server is this machine's (127.0.0.1:5432, database `test` unless PGURL says otherwise); the run
# uses a schema of its own and drops it at the end. Everything runs on this machine: the nodes, PostgreSQL and
# the load generator share its cores, so more nodes add no CPU — the figures show the cost of the database
# round trips and of coordination, not a cluster's capacity.
#
#   bench/postgres.sh                    10 s per cell, 10,000 secrets, c = 8 and 64
#   QUICK=1 bench/postgres.sh            smoke run
# Settings: DURATION WARMUP SECRETS CONCURRENCY="8 64" NODES="1 2 3" WORKLOADS PGURL SKIP_BUILD=1 RESULTS_DIR=bench/results
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release"
if [ -n "${QUICK:-}" ]; then q_duration=2; q_warmup=1; q_secrets=500; else q_duration=10; q_warmup=2; q_secrets=10000; fi
DURATION="${DURATION:-$q_duration}"
WARMUP="${WARMUP:-$q_warmup}"
SECRETS="${SECRETS:-$q_secrets}"
CONCURRENCY="${CONCURRENCY:-8 64}"
NODES="${NODES:-1 2 3}"
WORKLOADS="${WORKLOADS:-get-secret-value put-secret-value}"
PGURL="${PGURL:-postgres://postgres@127.0.0.1:5432/test}"
RESULTS_DIR="${RESULTS_DIR:-bench/results}"
say() { echo "bench: $*" >&2; }

if [ -z "${SKIP_BUILD:-}" ]; then
  say "building release binaries (target dir $target_dir)"
  CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet -p coffer-cli --bin coffer -p coffer-bench --bin loadgen
fi
command -v psql >/dev/null || { say "psql is needed to create the run's schema"; exit 1; }

work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/coffer-pgbench.XXXXXX")
schema="coffer_bench_$(date +%s)_$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$PGURL" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -q "$PGURL" -c "CREATE SCHEMA $schema" >/dev/null
sep='?'; [[ "$PGURL" != *\?* ]] || sep='&'
storage="${PGURL}${sep}options=-csearch_path%3D${schema}"
master_key=$(head -c 32 /dev/urandom | base64)

# start_node NAME ARGS...: starts a node (in this shell, so its pid is remembered for the cleanup).
start_node() {
  local name=$1; shift
  COFFER_MASTER_KEY="$master_key" COFFER_LOG=warn "$bin/coffer" server --listen 127.0.0.1:0 \
    --data-dir "$work/$name" --master-key-source env "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  last_pid=$!
}
# endpoint_of NAME: waits for the node to listen and prints its endpoint.
endpoint_of() {
  for _ in $(seq 1 600); do
    local line; line=$(sed -n 's/^coffer listening on //p' "$work/$1.out" | head -n1)
    [ -z "$line" ] || { echo "$line"; return 0; }
    sleep 0.1
  done
  cat "$work/$1.err" >&2; return 1
}

declare -A endpoints
start_node sqlite
endpoints[sqlite]=$(endpoint_of sqlite)
creds_sqlite="$work/sqlite/root-credentials"
join() { local IFS=,; echo "$*"; }
# Three nodes of one read consistency at a time (each node keeps up to 17 connections; the machine's server
# allows 100 for everyone). The first node ever started initializes the installation.
nodes_pids=()
start_mode() { # strong|cached
  local mode=$1 i
  nodes_pids=()
  for i in 1 2 3; do
    start_node "$mode$i" --storage "$storage" --read-consistency "$mode"
    nodes_pids+=("$last_pid")
    endpoints[$mode$i]=$(endpoint_of "$mode$i")
  done
  for n in $NODES; do
    local list=()
    for i in $(seq 1 "$n"); do list+=("${endpoints[$mode$i]}"); done
    endpoints[pg-$mode-$n]=$(join "${list[@]}")
  done
}
stop_mode() {
  for p in "${nodes_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${nodes_pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
}

machine="$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, PostgreSQL $(psql -qtA "$PGURL" -c 'SHOW server_version' | cut -d' ' -f1)"
say "machine: $machine; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/loadgen" --endpoint "${endpoints[sqlite]}" --credentials-file "$creds_sqlite" --secrets "$SECRETS" --setup-only --label sqlite
start_mode strong
creds_pg="$work/strong1/root-credentials"
"$bin/loadgen" --endpoint "${endpoints[strong1]}" --credentials-file "$creds_pg" --secrets "$SECRETS" --setup-only --label postgres

cat >"$work/show.py" <<'PY'
import json, sys
if sys.argv[1] == "line":
    r = json.loads(sys.argv[2])
    print("bench: {peer:<12} {workload:<17} c={concurrency:<3} {rps:>8.0f} req/s  p50 {p50_us} us  p99 {p99_us} us  "
          "errors {errors}".format(**r))
else:
    rows = [json.loads(l) for l in sys.stdin if l.strip()]
    base = {}
    print("| workload | c | peer | req/s | x sqlite | p50 us | p99 us | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["peer"] == "sqlite":
            base[(r["workload"], r["concurrency"])] = r["rps"]  # the SQLite cell measured just before
        b = base.get((r["workload"], r["concurrency"])) or 0
        ratio = "%.2f" % (r["rps"] / b) if b else "-"
        print("| {workload} | {concurrency} | {peer} | {rps:.0f} | {ratio} | {p50_us} | {p99_us} | {errors} |".format(ratio=ratio, **r))
PY

mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%d)
jsonl="$RESULTS_DIR/$stamp-postgres.jsonl"
rows=()
for mode in strong cached; do
  [ "$mode" = strong ] || { stop_mode; start_mode "$mode"; }
  for workload in $WORKLOADS; do
    for c in $CONCURRENCY; do
      # SQLite measured again next to each mode's cells, so every ratio compares figures taken minutes apart at most.
      for peer in sqlite $(for n in $NODES; do echo "pg-$mode-$n"; done); do
        creds=$creds_pg; [ "$peer" != sqlite ] || creds=$creds_sqlite
        line=$("$bin/loadgen" --endpoint "${endpoints[$peer]}" --credentials-file "$creds" --secrets "$SECRETS" \
          --workload "$workload" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" --label "$peer" --json)
        echo "$line" >>"$jsonl"
        rows+=("$line")
        python3 "$work/show.py" line "$line" >&2
      done
    done
  done
done
stop_mode

# The table: each cell with its ratio to SQLite's figure of the same workload and concurrency.
printf '%s\n' "${rows[@]}" | python3 "$work/show.py" table | tee -a "$RESULTS_DIR/$stamp-postgres.md"
echo "machine: $machine; $DURATION s per cell after $WARMUP s warm-up; $SECRETS secrets" | tee -a "$RESULTS_DIR/$stamp-postgres.md"
