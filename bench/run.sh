#!/usr/bin/env bash
# Coffer's benchmark, run by hand (never as a test). Starts three peers on loopback in the same run —
#   coffer  the real server (release build, fresh data dir),
#   fixed   bench's fixed-server: SigV4 verification + a fixed body, the ceiling for this machine,
#   moto    moto's server from PyPI (installed into a venv under the target dir),
# drives each with the same SigV4-signing load generator for every workload × concurrency, and prints a
# markdown table that it also appends to bench/results/<date>.md (raw JSON lines to <date>.jsonl).
#
#   bench/run.sh                          full run: 10 s per cell, 10,000 secrets
#   QUICK=1 bench/run.sh                  smoke run, about a minute
#   PEERS="coffer fixed" DURATION=5 bench/run.sh
#
# Settings (environment):
#   DURATION=10  WARMUP=2            measured / warm-up seconds per cell
#   SECRETS=10000  MOTO_SECRETS=     key space per peer (moto's defaults to SECRETS)
#   CONCURRENCY="1 8 64"  WORKLOADS="get-secret-value put-secret-value create-secret"
#   PEERS="coffer fixed moto"    (add coffer-iam after coffer: the same server, requests signed by an IAM user;
#                                 coffer-noaudit: a second server with the audit log off)
#   SETUP_CONCURRENCY=16  MOTO_SETUP_CONCURRENCY=4
#   LOADGEN_THREADS=   (default: all cores)     REQUEST_TIMEOUT=10
#   COFFER_SERVER_ARGS=  (extra flags for the coffer peer's server, e.g. --no-audit)
#   MOTO_SPEC='moto[server]'  BENCH_TMPDIR=  (where Coffer's data dir goes)  SKIP_BUILD=1  RESULTS_DIR=bench/results
#
# Everything listens on and talks to 127.0.0.1 only; every load phase is bounded in time; all servers it
# started are stopped on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="$target_dir/release"

quick="${QUICK:-}"
if [ -n "$quick" ]; then q_duration=1; q_warmup=0.5; q_secrets=1000; else q_duration=10; q_warmup=2; q_secrets=10000; fi
DURATION="${DURATION:-$q_duration}"
WARMUP="${WARMUP:-$q_warmup}"
SECRETS="${SECRETS:-$q_secrets}"
MOTO_SECRETS="${MOTO_SECRETS:-$SECRETS}"
CONCURRENCY="${CONCURRENCY:-1 8 64}"
WORKLOADS="${WORKLOADS:-get-secret-value put-secret-value create-secret}"
PEERS="${PEERS:-coffer fixed moto}"
SETUP_CONCURRENCY="${SETUP_CONCURRENCY:-16}"
MOTO_SETUP_CONCURRENCY="${MOTO_SETUP_CONCURRENCY:-4}"
REQUEST_TIMEOUT="${REQUEST_TIMEOUT:-10}"
MOTO_SPEC="${MOTO_SPEC:-moto[server]}"
RESULTS_DIR="${RESULTS_DIR:-bench/results}"
threads_flag=()
[ -z "${LOADGEN_THREADS:-}" ] || threads_flag=(--threads "$LOADGEN_THREADS")

say() { echo "bench: $*" >&2; }

if [ -z "${SKIP_BUILD:-}" ]; then
  say "building release binaries (target dir $target_dir)"
  packages=(-p coffer-bench)
  [[ " $PEERS " != *" coffer "* ]] || packages+=(-p coffer-cli)
  CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet "${packages[@]}"
fi

work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/coffer-bench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# How long the run may take at most, so the servers started here bound their own life as well.
ncells=$(( $(wc -w <<<"$WORKLOADS") * $(wc -w <<<"$CONCURRENCY") * $(wc -w <<<"$PEERS") ))
budget=$(python3 -c "print(int(1800 + $ncells * ($DURATION + $WARMUP + $REQUEST_TIMEOUT + 5)))")

wait_for_line() { # file pattern pid seconds
  local i
  for i in $(seq 1 $(( $4 * 10 ))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
wait_for_port() { # port pid seconds
  local i
  for i in $(seq 1 $(( $3 * 10 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
drop_peer() { PEERS=$(tr ' ' '\n' <<<"$PEERS" | grep -vx "$1" | tr '\n' ' '); notes+=("$1 left out: $2"); say "$1 left out: $2"; }

declare -A endpoint auth secrets setup_c pid_of version
notes=()
[ "$MOTO_SECRETS" = "$SECRETS" ] || notes+=("moto ran with a key space of $MOTO_SECRETS secrets, the others with $SECRETS (MOTO_SECRETS)")

for peer in $PEERS; do
  case $peer in
    coffer)
      # shellcheck disable=SC2086
      env -u COFFER_MASTER_KEY COFFER_LOG=warn "$bin/coffer" server --listen 127.0.0.1:0 --data-dir "$work/coffer-data" \
        ${COFFER_SERVER_ARGS:-} >"$work/coffer.out" 2>"$work/coffer.err" &
      pid_of[coffer]=$!; pids+=($!)
      if ! wait_for_line "$work/coffer.out" '^coffer listening on ' "${pid_of[coffer]}" 60; then
        cat "$work/coffer.err" >&2; drop_peer coffer "the server did not start"; continue
      fi
      endpoint[coffer]=$(sed -n 's/^coffer listening on //p' "$work/coffer.out" | head -n1)
      auth[coffer]="--credentials-file $work/coffer-data/root-credentials"
      secrets[coffer]=$SECRETS; setup_c[coffer]=$SETUP_CONCURRENCY
      version[coffer]="$("$bin/coffer" --version 2>/dev/null | head -n1)${COFFER_SERVER_ARGS:+ $COFFER_SERVER_ARGS}, data dir on $(stat -f -c %T "$work")"
      ;;
    coffer-noaudit)
      # A second server of the same build with the audit log off: coffer ÷ coffer-noaudit is the share of
      # throughput kept with every request audited.
      env -u COFFER_MASTER_KEY COFFER_LOG=warn "$bin/coffer" server --listen 127.0.0.1:0 --data-dir "$work/noaudit-data" \
        --no-audit >"$work/noaudit.out" 2>"$work/noaudit.err" &
      pid_of[coffer-noaudit]=$!; pids+=($!)
      if ! wait_for_line "$work/noaudit.out" '^coffer listening on ' "${pid_of[coffer-noaudit]}" 60; then
        cat "$work/noaudit.err" >&2; drop_peer coffer-noaudit "the server did not start"; continue
      fi
      endpoint[coffer-noaudit]=$(sed -n 's/^coffer listening on //p' "$work/noaudit.out" | head -n1)
      auth[coffer-noaudit]="--credentials-file $work/noaudit-data/root-credentials"
      secrets[coffer-noaudit]=$SECRETS; setup_c[coffer-noaudit]=$SETUP_CONCURRENCY
      version[coffer-noaudit]="$("$bin/coffer" --version 2>/dev/null | head -n1), audit log off"
      ;;
    coffer-iam)
      # The same server, signed with an IAM user's key: every request is authorized against the user's
      # policy (root skips policy evaluation), so coffer-iam / coffer is the cost of authorization.
      if [ -z "${endpoint[coffer]:-}" ]; then drop_peer coffer-iam "needs the coffer peer before it in PEERS"; continue; fi
      iam_policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:PutSecretValue","secretsmanager:CreateSecret","secretsmanager:DescribeSecret"],"Resource":"arn:aws:secretsmanager:*:*:secret:*"},{"Effect":"Allow","Action":["ssm:GetParameter","ssm:GetParametersByPath","ssm:PutParameter"],"Resource":"arn:aws:ssm:*:*:parameter/*"},{"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*"}]}'
      as_root=(env AWS_SHARED_CREDENTIALS_FILE="$work/coffer-data/root-credentials" AWS_CONFIG_FILE=/dev/null
        "$bin/coffer")
      if ! { "${as_root[@]}" iam user create bench-app --endpoint-url "${endpoint[coffer]}" >/dev/null \
          && "${as_root[@]}" iam inline put --user bench-app app-access --document "$iam_policy" \
            --endpoint-url "${endpoint[coffer]}" >/dev/null \
          && "${as_root[@]}" iam access-key create --user bench-app --json --endpoint-url "${endpoint[coffer]}" \
            2>/dev/null | python3 -c 'import json,sys; k=json.load(sys.stdin)["AccessKey"]; print("[default]\naws_access_key_id = %s\naws_secret_access_key = %s" % (k["AccessKeyId"], k["SecretAccessKey"]))' \
            >"$work/iam-credentials"; }; then
        drop_peer coffer-iam "creating the IAM user failed"; continue
      fi
      endpoint[coffer-iam]=${endpoint[coffer]}; pid_of[coffer-iam]=${pid_of[coffer]}
      auth[coffer-iam]="--credentials-file $work/iam-credentials"
      # The coffer peer's setup creates the key space both use.
      secrets[coffer-iam]=$SECRETS; setup_c[coffer-iam]=0
      version[coffer-iam]="${version[coffer]}, IAM user with an inline policy (3 statements)"
      ;;
    fixed)
      "$bin/fixed-server" --listen 127.0.0.1:0 --exit-after "$budget" >"$work/fixed.out" 2>&1 &
      pid_of[fixed]=$!; pids+=($!)
      if ! wait_for_line "$work/fixed.out" '^fixed-server listening on ' "${pid_of[fixed]}" 30; then
        cat "$work/fixed.out" >&2; drop_peer fixed "the server did not start"; continue
      fi
      endpoint[fixed]=$(sed -n 's/^fixed-server listening on //p' "$work/fixed.out" | head -n1)
      auth[fixed]=""  # the example key pair, the default of both binaries
      secrets[fixed]=$SECRETS; setup_c[fixed]=0
      version[fixed]="coffer-bench fixed-server"
      ;;
    moto)
      venv="$target_dir/bench-venv"
      if [ ! -x "$venv/bin/moto_server" ]; then
        say "installing $MOTO_SPEC into $venv"
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check "$MOTO_SPEC"; } >&2; then
          drop_peer moto "pip install '$MOTO_SPEC' failed"; continue
        fi
      fi
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
      "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.out" 2>&1 &
      pid_of[moto]=$!; pids+=($!)
      if ! wait_for_port "$port" "${pid_of[moto]}" 60; then
        cat "$work/moto.out" >&2; drop_peer moto "moto_server did not start"; continue
      fi
      endpoint[moto]="http://127.0.0.1:$port"
      auth[moto]=""  # moto accepts any credentials
      secrets[moto]=$MOTO_SECRETS; setup_c[moto]=$MOTO_SETUP_CONCURRENCY
      version[moto]="moto $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"), "(werkzeug", m.version("werkzeug") + ")")')"
      ;;
    *) say "unknown peer $peer (known: coffer coffer-iam coffer-noaudit fixed moto)"; exit 2 ;;
  esac
done
[ -n "${PEERS// /}" ] || { say "no peer left to measure"; exit 1; }

loadgen() { # peer args...
  local peer=$1; shift
  # shellcheck disable=SC2086
  "$bin/loadgen" --endpoint "${endpoint[$peer]}" ${auth[$peer]} --label "$peer" --secrets "${secrets[$peer]}" \
    --request-timeout "$REQUEST_TIMEOUT" "${threads_flag[@]}" "$@"
}

# Key space: the peers that store secrets get SECRETS of them before any measurement.
for peer in $PEERS; do
  [ "${setup_c[$peer]}" -gt 0 ] || continue
  say "setup: $peer: creating ${secrets[$peer]} secrets over ${setup_c[$peer]} connections"
  if ! loadgen "$peer" --setup-only --setup-concurrency "${setup_c[$peer]}"; then drop_peer "$peer" "setup failed"; continue; fi
  # The Parameter Store workloads read SecureString parameters, created by their own setup.
  if [[ " $WORKLOADS " == *" get-parameter"* ]]; then
    say "setup: $peer: creating ${secrets[$peer]} parameters"
    if ! loadgen "$peer" --workload get-parameter --setup-only --setup-concurrency "${setup_c[$peer]}"; then
      drop_peer "$peer" "parameter setup failed"
    fi
  fi
done

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
results="$work/results.jsonl"
: >"$results"
n=0; total=$(( $(wc -w <<<"$WORKLOADS") * $(wc -w <<<"$CONCURRENCY") * $(wc -w <<<"$PEERS") ))
started=$(date +%s)
for workload in $WORKLOADS; do
  for c in $CONCURRENCY; do
    # The peers take turns within each cell, so background noise falls on all of them alike.
    for peer in $PEERS; do
      n=$((n + 1))
      # The fixed server answers one GetSecretValue body: it bounds only that workload.
      if [ "$peer" = fixed ] && [[ $workload == get-parameter* ]]; then continue; fi
      if ! kill -0 "${pid_of[$peer]}" 2>/dev/null; then
        echo "{\"peer\":\"$peer\",\"workload\":\"$workload\",\"concurrency\":$c,\"failed\":\"server exited\"}" >>"$results"
        say "[$n/$total] $peer $workload c=$c: the server is gone"; continue
      fi
      if line=$(loadgen "$peer" --workload "$workload" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" --json); then
        echo "$line" >>"$results"
        say "[$n/$total] $(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print("%(peer)s %(workload)s c=%(concurrency)s: %(rps).0f req/s, p50 %(p50_us)s µs, p99 %(p99_us)s µs, %(errors)s errors" % r)' "$line")"
      else
        echo "{\"peer\":\"$peer\",\"workload\":\"$workload\",\"concurrency\":$c,\"failed\":\"loadgen failed\"}" >>"$results"
        say "[$n/$total] $peer $workload c=$c: loadgen failed"
      fi
    done
  done
done
elapsed=$(( $(date +%s) - started ))

mkdir -p "$RESULTS_DIR"
day=$(date -u +%Y-%m-%d)
out="$RESULTS_DIR/$day.md"
peers_desc=""
for peer in $PEERS; do peers_desc+="${peers_desc:+; }$peer: ${version[$peer]}"; done
notes_text=""
for note in "${notes[@]+"${notes[@]}"}"; do notes_text+="$note"$'\n'; done
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev + uncommitted changes"

B_QUICK="$quick" B_LOADAVG="$loadavg_start" B_REV="$rev" B_PEERS_DESC="$peers_desc" B_NOTES="$notes_text" \
B_DURATION="$DURATION" B_WARMUP="$WARMUP" B_SECRETS="$SECRETS" B_MOTO_SECRETS="$MOTO_SECRETS" B_ELAPSED="$elapsed" \
B_WORKLOADS="$WORKLOADS" B_PEERS="$PEERS" B_WHEN="$(date -u '+%Y-%m-%d %H:%M UTC')" \
  python3 - "$results" >"$work/table.md" <<'PY'
import json, os, platform, sys
e = os.environ
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
mem = next((round(int(l.split()[1]) / (1024 * 1024)) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
cores = os.cpu_count()
print(f"## Coffer benchmark, {e['B_WHEN']}" + (" (QUICK smoke run)" if e["B_QUICK"] else ""))
print()
print(f"- Machine: **{cores} cores** ({cpu}), {mem} GiB, {platform.system()} {platform.release()}. "
      f"**The server under test and the load generator share these {cores} cores**, and the machine is shared "
      f"with other work (load average when the load phase began: {e['B_LOADAVG']}): absolute figures are low "
      f"and noisy; read the ratios, which come from the same run.")
print(f"- Code: {e['B_REV']}. Peers: {e['B_PEERS_DESC']}.")
print(f"- Each cell: {e['B_WARMUP']} s warm-up, then {e['B_DURATION']} s measured; one keep-alive connection per "
      f"worker (moto closes it after every response), one request in flight each; every request SigV4-signed. "
      f"Key space: {e['B_SECRETS']} secrets (moto {e['B_MOTO_SECRETS']}). The load phase took {e['B_ELAPSED']} s.")
print("- req/s counts 200s completed in the measured window; latency is send-to-last-byte. "
      "Coffer ÷ peer is Coffer's req/s divided by the peer's: below 1 against fixed = the share of the "
      "ceiling Coffer reaches; above 1 against moto = how many times moto's throughput Coffer has.")
for note in e["B_NOTES"].strip().splitlines():
    print(f"- Note: {note}")
print()

def us(v):
    return f"{v} µs" if v < 1000 else f"{v / 1000:.2f} ms"

coffer = {(r["workload"], r["concurrency"]): r.get("rps") for r in rows if r["peer"] == "coffer" and "rps" in r}
w_order = {w: i for i, w in enumerate(e["B_WORKLOADS"].split())}
p_order = {p: i for i, p in enumerate(e["B_PEERS"].split())}
rows.sort(key=lambda r: (w_order.get(r["workload"], 99), r["concurrency"], p_order.get(r["peer"], 99)))
print("| peer | workload | concurrency | req/s | p50 | p99 | p99.9 | errors | Coffer ÷ peer |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
for r in rows:
    if "failed" in r:
        print(f"| {r['peer']} | {r['workload']} | {r['concurrency']} | {r['failed']} | | | | | |")
        continue
    base = coffer.get((r["workload"], r["concurrency"]))
    ratio = f"{base / r['rps']:.2f}" if base and r["rps"] else "–"
    errs = str(r["errors"])
    if r["errors"]:
        errs += " (" + ", ".join(f"{n}× {k}" for k, n in r["error_kinds"].items()) + ")"
    print(f"| {r['peer']} | {r['workload']} | {r['concurrency']} | {r['rps']:,.0f} | {us(r['p50_us'])} | "
          f"{us(r['p99_us'])} | {us(r['p999_us'])} | {errs} | {ratio} |")
PY

{ [ ! -s "$out" ] || echo; cat "$work/table.md"; } >>"$out"
cat "$results" >>"$RESULTS_DIR/$day.jsonl"
cat "$work/table.md"
say "appended to $out (raw figures: $RESULTS_DIR/$day.jsonl)"
