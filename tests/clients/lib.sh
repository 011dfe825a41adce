# Helpers for the seed replay scripts (sourced). Every check stops the script at the first failure with a
# message saying what was expected and what came back; `step` lines on stdout show how far a run got.
# The aws CLI comes from PATH (the test prepends the virtualenv's bin), the connection from the environment.

step() { echo "--- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_eq ACTUAL EXPECTED WHAT
expect_eq() { [[ "$1" == "$2" ]] || fail "$3: expected [$2], got [$1]"; }
# expect_ne ACTUAL UNEXPECTED WHAT
expect_ne() { [[ "$1" != "$2" ]] || fail "$3: did not expect [$2]"; }
# expect_match ACTUAL EXTENDED-REGEX WHAT
expect_match() { [[ "$1" =~ $2 ]] || fail "$3: [$1] does not match /$2/"; }
# expect_contains HAYSTACK NEEDLE WHAT
expect_contains() { [[ "$1" == *"$2"* ]] || fail "$3: [$2] not found in:"$'\n'"$1"; }
# expect_lacks HAYSTACK NEEDLE WHAT
expect_lacks() { [[ "$1" != *"$2"* ]] || fail "$3: [$2] should not appear in:"$'\n'"$1"; }

# expect_error CODE COMMAND...: the command must exit non-zero and the aws CLI must report that AWS error code
# ("An error occurred (CODE) when calling the Op operation: message"). The message is left in $ERROR_MESSAGE.
ERROR_MESSAGE=""
expect_error() {
  local code="$1"; shift
  local out
  if out=$("$@" 2>&1); then fail "expected $code, but it succeeded: $*"$'\n'"$out"; fi
  [[ "$out" == *"An error occurred ($code)"* ]] || fail "expected $code from: $*"$'\n'"got: $out"
  ERROR_MESSAGE="${out#*operation: }"
  ERROR_MESSAGE="${ERROR_MESSAGE%$'\n'}"
}
# expect_error_message CODE MESSAGE COMMAND...: as expect_error, and the message must be exactly MESSAGE.
expect_error_message() {
  local code="$1" message="$2"; shift 2
  expect_error "$code" "$@"
  expect_eq "$ERROR_MESSAGE" "$message" "$code message of: $*"
}

# lines TEXT: the tab/newline-separated words of `--output text`, one per line, sorted (for order-free compares).
lines() { tr '\t' '\n' <<<"$1" | sed '/^$/d' | LC_ALL=C sort; }

# rand_b64: `openssl rand -base64 32` as the seeds generate secrets, with a fallback where openssl is missing.
rand_b64() {
  if command -v openssl >/dev/null 2>&1; then openssl rand -base64 32
  else python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'; fi
}

# epoch TIMESTAMP -> whole seconds since the epoch. The aws CLI v1 prints timestamps as received (epoch seconds,
# maybe fractional); ISO 8601 (cli_timestamp_format=iso8601) is accepted too.
epoch() {
  python3 -c '
import sys, datetime
t = sys.argv[1]
try:
    print(int(float(t)))
except ValueError:
    print(int(datetime.datetime.fromisoformat(t).timestamp()))' "$1"
}

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
# ARN of a secret NAME in us-east-1: account of 12 digits, the name, a dash and 6 random characters.
arn_re() { printf '^arn:aws:secretsmanager:us-east-1:[0-9]{12}:secret:%s-[A-Za-z0-9]{6}$' "$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1")"; }
