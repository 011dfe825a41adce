#!/usr/bin/env bash
# The audit log with the aws CLI: a secret is created and read, then `aws cloudtrail lookup-events` finds the
# read by event name and by resource name (the seed's two commands, exactly; `--max-results` makes the CLI call
# once), with the caller and the secret's name in the lookup fields, and the CLI's automatic pagination over every
# event comes to an end.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

name=/prod/backend/database_password

step "create-secret and get-secret-value"
aws secretsmanager create-secret --name "$name" --secret-string "$(rand_b64)" --output json >/dev/null
expect_eq "$(aws secretsmanager get-secret-value --secret-id "$name" --query Name --output text)" "$name" "get-secret-value"

# check_events FILE WHAT: the lookup-events answer in FILE holds the GetSecretValue of $name by root (python).
check_events() {
  python3 - "$1" "$name" <<'EOF'
import json, sys
answer = json.load(open(sys.argv[1]))
name = sys.argv[2]
events = answer.get("Events", [])
reads = [e for e in events if e.get("EventName") == "GetSecretValue"
         and (e.get("Resources") or [{}])[0].get("ResourceName") == name]
if not reads:
    sys.exit("no GetSecretValue event on %s among %d events: %s" % (name, len(events), json.dumps(events)[:2000]))
e = reads[0]
problems = []
if e.get("Username") != "root":
    problems.append("Username is %r, expected 'root'" % e.get("Username"))
if e.get("EventSource") != "secretsmanager.amazonaws.com":
    problems.append("EventSource is %r" % e.get("EventSource"))
if e.get("ReadOnly") != "true":
    problems.append("ReadOnly is %r, expected the string 'true'" % e.get("ReadOnly"))
if not isinstance(e.get("EventTime"), (int, float, str)) or not e.get("EventId"):
    problems.append("EventTime/EventId missing")
if e["Resources"][0].get("ResourceType") != "AWS::SecretsManager::Secret":
    problems.append("ResourceType is %r" % e["Resources"][0].get("ResourceType"))
detail = json.loads(e["CloudTrailEvent"])
if detail.get("eventName") != "GetSecretValue" or detail.get("eventID") != e["EventId"]:
    problems.append("CloudTrailEvent does not describe the event: %s" % e["CloudTrailEvent"][:500])
if "errorCode" in detail:
    problems.append("the read failed: %s" % detail["errorCode"])
if problems:
    sys.exit("; ".join(problems))
EOF
}

step "lookup-events by EventName (the seed's command), once the audit log has flushed"
ok=""
for _ in $(seq 1 30); do
  aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=GetSecretValue --max-results 50 --output json >"$work/by-name.json"
  if check_events "$work/by-name.json" 2>"$work/why"; then ok=1; break; fi
  sleep 0.1
done
[[ -n "$ok" ]] || fail "lookup-events by EventName: $(cat "$work/why")"
python3 - "$work/by-name.json" <<'EOF' || fail "lookup-events by EventName returned other events"
import json, sys
events = json.load(open(sys.argv[1]))["Events"]
sys.exit(0 if all(e["EventName"] == "GetSecretValue" for e in events) else 1)
EOF

step "lookup-events by ResourceName (the seed's command)"
aws cloudtrail lookup-events --lookup-attributes AttributeKey=ResourceName,AttributeValue=/prod/backend/database_password --max-results 50 >"$work/by-resource.json"
check_events "$work/by-resource.json" || fail "lookup-events by ResourceName"
python3 - "$work/by-resource.json" "$name" <<'EOF' || fail "lookup-events by ResourceName"
import json, sys
events = json.load(open(sys.argv[1]))["Events"]
name = sys.argv[2]
names = {e["EventName"] for e in events}
if "CreateSecret" not in names:
    sys.exit("no CreateSecret among %s" % sorted(names))
others = [e for e in events if name not in [r.get("ResourceName") for r in e.get("Resources", [])]]
if others:
    sys.exit("events on other resources: %s" % json.dumps(others)[:1000])
EOF

step "lookup-events errors"
expect_error InvalidLookupAttributesException aws cloudtrail lookup-events \
  --lookup-attributes AttributeKey=EventName,AttributeValue=GetSecretValue AttributeKey=Username,AttributeValue=root
expect_eq "$ERROR_MESSAGE" "You cannot specify more than one lookup attribute." "two lookup attributes"
expect_error InvalidTimeRangeException aws cloudtrail lookup-events --start-time 2026-01-02T00:00:00Z --end-time 2026-01-01T00:00:00Z
expect_error InvalidNextTokenException aws cloudtrail lookup-events --next-token not-a-token-of-this-server
out=$(aws cloudtrail lookup-events --event-category insight --output json)
expect_eq "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Events"]))' <<<"$out")" "0" "insight events"

step "automatic pagination over every event ends (3 a page)"
timeout 120 aws cloudtrail lookup-events --page-size 3 --output json >"$work/all.json" || fail "paginating lookup-events did not finish"
python3 - "$work/all.json" <<'EOF' || fail "paginated lookup-events"
import json, sys
events = json.load(open(sys.argv[1]))["Events"]
ids = [e["EventId"] for e in events]
if len(ids) != len(set(ids)):
    sys.exit("an event came twice")
names = {e["EventName"] for e in events}
for want in ("CreateSecret", "GetSecretValue", "LookupEvents"):
    if want not in names:
        sys.exit("no %s among %s" % (want, sorted(names)))
times = [e["EventTime"] for e in events]
if times != sorted(times, reverse=True):
    sys.exit("not newest first")
if len(events) < 6:
    sys.exit("only %d events" % len(events))
EOF
out=$(aws cloudtrail lookup-events --max-items 2 --output json)
expect_eq "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["Events"]), "NextToken" in d)' <<<"$out")" "2 True" "--max-items 2"

echo "audit (aws CLI): all checks passed"
