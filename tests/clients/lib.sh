# Helpers for the seed replay scripts: assertions that stop at the first failure with a clear message.
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [ "$1" == "$2" ] || fail "$3: expected [$2], got [$1]"; }
# expect_error CODE COMMAND...: the command must fail with that AWS error code.
expect_error() {
  local code="$1"; shift
  local out
  if out=$("$@" 2>&1); then fail "expected $code from: $*"; fi
  [[ "$out" == *"($code)"* ]] || fail "expected $code from: $* -- got: $out"
}
