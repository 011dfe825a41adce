#!/usr/bin/env bash
# Coffer on PostgreSQL with 1, 2 and 3 nodes, next to Coffer on its embedded SQLite file, in one run (run by
# hand, never as a test). GetSecretValue and PutSecretValue are driven by the SigV4-signing load generator;
# with several nodes its workers take the nodes' endpoints in turn, as a load balancer would.
#
# Peers:
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
# Settings: DURATION WARMUP SECRETS CONCURRENCY="8 64" NODES="1 2 3" PGURL SKIP_BUILD=1 RESULTS_DIR=bench/results
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

# start_node NAME ARGS...: starts a node, prints its endpoint.
start_node() {
  local name=$1; shift
  COFFER_MASTER_KEY="$master_key" COFFER_LOG=warn "$bin/coffer" server --listen 127.0.0.1:0 \
    --data-dir "$work/$name" --master-key-source env "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 600); do
    local line; line=$(sed -n 's/^coffer listening on //p' "$work/$name.out" | head -n1)
    [ -z "$line" ] || { echo "$line"; return 0; }
    sleep 0.1
  done
  cat "$work/$name.err" >&2; return 1
}

declare -A endpoints
endpoints[sqlite]=$(start_node sqlite)
# The first PostgreSQL node initializes the installation; the others join it.
strong=() cached=()
for i in 1 2 3; do strong+=("$(start_node "strong$i" --storage "$storage" --read-consistency strong)"); done
for i in 1 2 3; do cached+=("$(start_node "cached$i" --storage "$storage" --read-consistency cached)"); done
creds_sqlite="$work/sqlite/root-credentials"
creds_pg="$work/strong1/root-credentials"
join() { local IFS=,; echo "$*"; }
peers=(sqlite)
for n in $NODES; do
  endpoints[pg-strong-$n]=$(join "${strong[@]:0:$n}")
  endpoints[pg-cached-$n]=$(join "${cached[@]:0:$n}")
  peers+=("pg-strong-$n" "pg-cached-$n")
done

machine="$(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, PostgreSQL $(psql -qtA "$PGURL" -c 'SHOW server_version' | cut -d' ' -f1)"
say "machine: $machine; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/loadgen" --endpoint "${endpoints[sqlite]}" --credentials-file "$creds_sqlite" --secrets "$SECRETS" --setup-only --label sqlite
"$bin/loadgen" --endpoint "${strong[0]}" --credentials-file "$creds_pg" --secrets "$SECRETS" --setup-only --label postgres

cat >"$work/show.py" <<'PY'
import json, sys
if sys.argv[1] == "line":
    r = json.loads(sys.argv[2])
    print("bench: {peer:<12} {workload:<17} c={concurrency:<3} {rps:>8.0f} req/s  p50 {p50_us} us  p99 {p99_us} us  "
          "errors {errors}".format(**r))
else:
    rows = [json.loads(l) for l in sys.stdin if l.strip()]
    base = {(r["workload"], r["concurrency"]): r["rps"] for r in rows if r["peer"] == "sqlite"}
    print("| workload | c | peer | req/s | x sqlite | p50 us | p99 us | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        b = base.get((r["workload"], r["concurrency"])) or 0
        ratio = "%.2f" % (r["rps"] / b) if b else "-"
        print("| {workload} | {concurrency} | {peer} | {rps:.0f} | {ratio} | {p50_us} | {p99_us} | {errors} |".format(ratio=ratio, **r))
PY

mkdir -p "$RESULTS_DIR"
stamp=$(date -u +%Y-%m-%d)
jsonl="$RESULTS_DIR/$stamp-postgres.jsonl"
rows=()
for workload in get-secret-value put-secret-value; do
  for c in $CONCURRENCY; do
    for peer in "${peers[@]}"; do
      creds=$creds_pg; [ "$peer" != sqlite ] || creds=$creds_sqlite
      line=$("$bin/loadgen" --endpoint "${endpoints[$peer]}" --credentials-file "$creds" --secrets "$SECRETS" \
        --workload "$workload" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" --label "$peer" --json)
      echo "$line" >>"$jsonl"
      rows+=("$line")
      python3 "$work/show.py" line "$line" >&2
    done
  done
done

# The table: each cell with its ratio to SQLite's figure of the same workload and concurrency.
printf '%s\n' "${rows[@]}" | python3 "$work/show.py" table | tee -a "$RESULTS_DIR/$stamp-postgres.md"
echo "machine: $machine; $DURATION s per cell after $WARMUP s warm-up; $SECRETS secrets" | tee -a "$RESULTS_DIR/$stamp-postgres.md"
