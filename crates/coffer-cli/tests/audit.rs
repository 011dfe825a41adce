//! End to end: the audit log read back over CloudTrail's protocol (`LookupEvents`) and Coffer's own
//! targets (`CofferAudit.SearchEvents`, `.ReadEvents`, `.SeqAt`), and `coffer audit search/tail/export`,
//! against the real server — and no secret, in any form a request carried it, in anything the audit log
//! wrote or answers, in the database files, or in the server's log.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use coffer_client::{Client, ClientConfig, ClientError};
use coffer_wire::cloudtrail::{
    Event, LookupAttribute, LookupEventsRequest, LookupEventsResponse, ReadEventsRequest, ReadEventsResponse,
};
use common::{coffer, coffer_as, text, TestServer};
use serde_json::{json, Value};

/// The server as the tests run it: reads' events durable within 100 ms (group commit).
fn start() -> TestServer {
    TestServer::start_with(&["--audit-flush-interval-ms", "100"], &[])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn client_as(server: &TestServer, id: &str, secret: &str, token: Option<&str>) -> Client {
    Client::new(ClientConfig {
        endpoint: server.endpoint.clone(),
        region: "us-east-1".into(),
        credentials: coffer_sigv4::Credentials {
            access_key_id: id.into(),
            secret_access_key: secret.into(),
            session_token: token.map(str::to_string),
        },
        ca_bundle: None,
    })
    .unwrap()
}

fn root_client(server: &TestServer) -> Client {
    let (id, secret) = server.root_keys();
    client_as(server, &id, &secret, None)
}

fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = coffer(server, args);
    assert!(out.status.success(), "coffer {args:?} failed:\n{}\n--- server log\n{}", text(&out), server.log_text());
    String::from_utf8(out.stdout).unwrap()
}

fn json_out(server: &TestServer, args: &[&str]) -> Value {
    let stdout = ok(server, args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("coffer {args:?} printed no JSON ({e}):\n{stdout}"))
}

fn attr(key: &str, value: &str) -> LookupAttribute {
    LookupAttribute { attribute_key: key.into(), attribute_value: value.into() }
}

fn request(
    attribute: Option<(&str, &str)>,
    max_results: Option<i64>,
    next_token: Option<String>,
) -> LookupEventsRequest {
    LookupEventsRequest {
        lookup_attributes: attribute.map(|(k, v)| vec![attr(k, v)]),
        max_results,
        next_token,
        ..LookupEventsRequest::default()
    }
}

fn lookup(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    r: &LookupEventsRequest,
) -> Result<LookupEventsResponse, ClientError> {
    rt.block_on(client.lookup_events(r))
}

/// The AWS error code of a failed call.
fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    match r {
        Err(ClientError::Api { code, .. }) => code,
        other => panic!("expected an AWS error, got {other:?}"),
    }
}

/// Every event of a lookup, newest first, following NextToken to the end.
fn all_pages(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    attribute: Option<(&str, &str)>,
    max: Option<i64>,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut token = None;
    for _ in 0..100_000 {
        let page = lookup(rt, client, &request(attribute, max, token.take())).unwrap();
        if let Some(max) = max {
            assert!(page.events.len() as i64 <= max, "a page holds at most MaxResults events");
        }
        events.extend(page.events);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return events,
        }
    }
    panic!("LookupEvents paging did not end");
}

/// Lookups until `done` holds (events become visible within the flush interval), at most ~3 s.
fn wait_for(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    attribute: (&str, &str),
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let events = all_pages(rt, client, Some(attribute), None);
        if done(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "the events looked up by {attribute:?} did not appear within 3 s; got {}: {events:#?}",
            events.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The event's CloudTrail JSON.
fn detail(e: &Event) -> Value {
    serde_json::from_str(&e.cloud_trail_event)
        .unwrap_or_else(|err| panic!("CloudTrailEvent is not JSON ({err}): {e:?}"))
}

fn resource_names(e: &Event) -> Vec<&str> {
    e.resources.iter().filter_map(|r| r.resource_name.as_deref()).collect()
}

/// The whole chain: event id → seq, and the seqs in order.
fn chain(rt: &tokio::runtime::Runtime, client: &Client) -> (HashMap<String, u64>, Vec<u64>) {
    let mut ids = HashMap::new();
    let mut seqs = Vec::new();
    let mut from = 1;
    loop {
        let page = rt.block_on(client.read_events(from, Some(1000))).unwrap();
        for e in &page.events {
            let id =
                serde_json::from_str::<Value>(&e.cloud_trail_event).unwrap()["eventID"].as_str().unwrap().to_string();
            assert!(ids.insert(id, e.seq).is_none(), "an event id twice in the chain");
            seqs.push(e.seq);
        }
        if page.events.is_empty() || page.next_seq > page.head_seq {
            return (ids, seqs);
        }
        from = page.next_seq;
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn lookup_events_finds_requests_by_attribute_and_pages_newest_first() {
    let server = start();
    let rt = runtime();
    let root = root_client(&server);
    let (root_id, _) = server.root_keys();
    let started = now_secs();

    let name = "prod/audit-lookup/db";
    ok(&server, &["secret", "create", name, "--value", "first value"]);
    ok(&server, &["secret", "get", name]);
    // A user with no permissions is refused; a missing secret is not found.
    ok(&server, &["iam", "user", "create", "nobody"]);
    let key = json_out(&server, &["iam", "access-key", "create", "--user", "nobody", "--json"]);
    let nobody_id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    let nobody_secret = key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string();
    let out = coffer_as(&server, Some((&nobody_id, &nobody_secret, None)), &["secret", "get", name]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("AccessDenied"), "{}", text(&out));
    let out = coffer(&server, &["secret", "get", "missing/secret"]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("ResourceNotFound"),
        "{}",
        text(&out)
    );

    // By EventName: the read, the refused read and the failed read.
    let reads = wait_for(&rt, &root, ("EventName", "GetSecretValue"), |events| events.len() >= 3);
    assert_eq!(reads.len(), 3, "{reads:#?}");
    assert!(reads.iter().all(|e| e.event_name == "GetSecretValue"), "{reads:#?}");
    let error_of = |e: &Event| detail(e)["errorCode"].as_str().map(str::to_string);
    let read = reads.iter().find(|e| error_of(e).is_none()).expect("the successful read");
    assert_eq!(read.username.as_deref(), Some("root"));
    assert_eq!(read.access_key_id.as_deref(), Some(root_id.as_str()));
    assert_eq!(read.event_source, "secretsmanager.amazonaws.com");
    assert_eq!(read.read_only, "true");
    assert_eq!(read.resources[0].resource_name.as_deref(), Some(name), "{read:#?}");
    assert_eq!(read.resources[0].resource_type.as_deref(), Some("AWS::SecretsManager::Secret"));
    assert!(read.event_time >= started - 1.0 && read.event_time <= now_secs() + 1.0, "{}", read.event_time);
    let d = detail(read);
    assert_eq!(d["eventID"], read.event_id.as_str());
    assert_eq!(d["eventName"], "GetSecretValue");
    assert_eq!(d["userIdentity"]["type"], "Root");
    let denied = reads.iter().find(|e| e.username.as_deref() == Some("nobody")).expect("the refused read");
    assert_eq!(error_of(denied).as_deref(), Some("AccessDeniedException"), "{denied:#?}");
    assert_eq!(denied.access_key_id.as_deref(), Some(nobody_id.as_str()));
    assert!(reads.iter().any(|e| error_of(e).as_deref() == Some("ResourceNotFoundException")), "{reads:#?}");

    // By ResourceName: the creation and the reads of that secret, and nothing else.
    let on_secret = all_pages(&rt, &root, Some(("ResourceName", name)), None);
    let names: HashSet<&str> = on_secret.iter().map(|e| e.event_name.as_str()).collect();
    assert!(names.contains("CreateSecret") && names.contains("GetSecretValue"), "{names:?}");
    assert!(on_secret.iter().all(|e| resource_names(e).contains(&name)), "{on_secret:#?}");
    // By the ARN too, as CloudTrail allows.
    let arn = detail(read)["resources"][0]["ARN"].as_str().unwrap().to_string();
    assert_eq!(all_pages(&rt, &root, Some(("ResourceName", &arn)), None).len(), on_secret.len());

    // By Username and by AccessKeyId.
    let by_nobody = all_pages(&rt, &root, Some(("Username", "nobody")), None);
    assert!(
        !by_nobody.is_empty() && by_nobody.iter().all(|e| e.username.as_deref() == Some("nobody")),
        "{by_nobody:#?}"
    );
    assert!(by_nobody.iter().any(|e| e.event_name == "GetSecretValue"));
    let by_key = all_pages(&rt, &root, Some(("AccessKeyId", &nobody_id)), None);
    assert_eq!(by_key.len(), by_nobody.len());
    // By EventId, EventSource, ReadOnly, ResourceType.
    let one = all_pages(&rt, &root, Some(("EventId", &read.event_id)), None);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].event_id, read.event_id);
    let sm = all_pages(&rt, &root, Some(("EventSource", "secretsmanager.amazonaws.com")), None);
    assert!(sm.len() >= 4 && sm.iter().all(|e| e.event_source == "secretsmanager.amazonaws.com"));
    let writes = all_pages(&rt, &root, Some(("ReadOnly", "false")), None);
    assert!(writes.iter().any(|e| e.event_name == "CreateSecret") && writes.iter().all(|e| e.read_only == "false"));
    let secrets = all_pages(&rt, &root, Some(("ResourceType", "AWS::SecretsManager::Secret")), None);
    assert!(secrets.len() >= on_secret.len());

    // Time bounds (epoch seconds, inclusive).
    let mut r = request(Some(("EventName", "GetSecretValue")), None, None);
    r.start_time = Some(now_secs() + 3600.0);
    assert!(lookup(&rt, &root, &r).unwrap().events.is_empty());
    r.start_time = None;
    r.end_time = Some(started - 3600.0);
    assert!(lookup(&rt, &root, &r).unwrap().events.is_empty());
    r.start_time = Some(started - 1.5);
    r.end_time = Some(now_secs() + 1.5);
    assert_eq!(lookup(&rt, &root, &r).unwrap().events.len(), 3);
    r.start_time = Some(read.event_time);
    r.end_time = Some(read.event_time);
    assert!(lookup(&rt, &root, &r).unwrap().events.iter().any(|e| e.event_id == read.event_id), "inclusive bounds");

    // One event a page, through everything: newest first, each once, nothing skipped.
    let paged = all_pages(&rt, &root, None, Some(1));
    let (seq_of, chain_seqs) = chain(&rt, &root);
    let seqs: Vec<u64> = paged
        .iter()
        .map(|e| *seq_of.get(&e.event_id).unwrap_or_else(|| panic!("a looked-up event is not in the chain: {e:?}")))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "not strictly newest first: {seqs:?}");
    let first = seqs[0];
    let expected: Vec<u64> = chain_seqs.iter().rev().copied().filter(|s| *s <= first).collect();
    assert_eq!(seqs, expected, "paging skipped or repeated events");
    assert!(
        paged.len() >= 6,
        "{:#?}",
        paged.iter().map(|e| (&e.event_name, &e.username, &e.event_time)).collect::<Vec<_>>()
    );
    // A bigger page size gives the same events.
    let by_50: Vec<String> = all_pages(&rt, &root, None, Some(50)).into_iter().map(|e| e.event_id).collect();
    let paged_ids: Vec<String> = paged.iter().map(|e| e.event_id.clone()).collect();
    assert!(by_50.ends_with(&paged_ids[paged_ids.len() - 5..]), "the oldest events end both listings");

    // Invalid input, with CloudTrail's codes.
    let two = LookupEventsRequest {
        lookup_attributes: Some(vec![attr("EventName", "GetSecretValue"), attr("Username", "root")]),
        ..LookupEventsRequest::default()
    };
    match lookup(&rt, &root, &two) {
        Err(ClientError::Api { status, code, message, .. }) => {
            assert_eq!(
                (status, code.as_str(), message.as_str()),
                (400, "InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code(lookup(&rt, &root, &request(Some(("Bogus", "x")), None, None))),
        "InvalidLookupAttributesException"
    );
    assert_eq!(
        code(lookup(&rt, &root, &request(Some(("eventname", "x")), None, None))),
        "InvalidLookupAttributesException"
    );
    assert_eq!(
        code(lookup(&rt, &root, &request(Some(("EventName", "")), None, None))),
        "InvalidLookupAttributesException"
    );
    let backwards = LookupEventsRequest {
        start_time: Some(started),
        end_time: Some(started - 10.0),
        ..LookupEventsRequest::default()
    };
    assert_eq!(code(lookup(&rt, &root, &backwards)), "InvalidTimeRangeException");
    for bad in [0, 51, -1] {
        assert_eq!(code(lookup(&rt, &root, &request(None, Some(bad), None))), "InvalidMaxResultsException", "{bad}");
    }
    for token in ["garbage", "", "Y29mZmVyLXYxOmF1ZGl0Om5vdC1hLW51bWJlcg==", "bm90IGEgdG9rZW4="] {
        let r = request(None, None, Some(token.to_string()));
        assert_eq!(code(lookup(&rt, &root, &r)), "InvalidNextTokenException", "{token:?}");
    }
    let category = |c: &str| LookupEventsRequest { event_category: Some(c.into()), ..LookupEventsRequest::default() };
    assert_eq!(code(lookup(&rt, &root, &category("management"))), "InvalidEventCategoryException");
    let insight = lookup(&rt, &root, &category("insight")).unwrap();
    assert!(insight.events.is_empty() && insight.next_token.is_none(), "Coffer has no insight events");
    let read_limit = |limit: i64| -> Result<ReadEventsResponse, ClientError> {
        rt.block_on(root.call(
            "cloudtrail",
            "CofferAudit.ReadEvents",
            &ReadEventsRequest { from_seq: None, limit: Some(limit) },
        ))
    };
    assert_eq!(code(read_limit(0)), "InvalidMaxResultsException");
    assert_eq!(code(read_limit(1001)), "InvalidMaxResultsException");
    assert_eq!(read_limit(1).unwrap().events.len(), 1);
    // Signed for another service, a CloudTrail target is refused.
    let wrong: Result<Value, ClientError> = rt.block_on(root.call(
        "secretsmanager",
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
        &json!({}),
    ));
    assert!(wrong.is_err());
    let unknown: Result<Value, ClientError> = rt.block_on(root.call("cloudtrail", "CofferAudit.Nope", &json!({})));
    assert_eq!(code(unknown), "UnknownOperationException");

    // Reading the log needs cloudtrail:LookupEvents.
    let nobody = client_as(&server, &nobody_id, &nobody_secret, None);
    assert_eq!(code(lookup(&rt, &nobody, &LookupEventsRequest::default())), "AccessDeniedException");
    assert_eq!(code(rt.block_on(nobody.read_events(1, None))), "AccessDeniedException");

    // Wildcards are Coffer's search only; LookupEvents matches exactly.
    let pattern = request(Some(("ResourceName", "prod/audit-*/d?")), None, None);
    assert!(lookup(&rt, &root, &pattern).unwrap().events.is_empty());
    let found = rt.block_on(root.search_events(&pattern)).unwrap();
    let found_ids: HashSet<&str> = found.events.iter().map(|e| e.event_id.as_str()).collect();
    let exact_ids: HashSet<&str> = on_secret.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(found_ids, exact_ids, "the wildcard finds the events on the secret");
    let none =
        rt.block_on(root.search_events(&request(Some(("ResourceName", "prod/audit-?/db")), None, None))).unwrap();
    assert!(none.events.is_empty(), "? is one character: {none:#?}");

    // SeqAt: the first record at or after a time; one past the head after the newest.
    let (_, seqs_now) = chain(&rt, &root);
    assert_eq!(rt.block_on(root.audit_seq_at(0)).unwrap(), seqs_now[0]);
    let past_head = rt.block_on(root.audit_seq_at(253_402_300_799_000)).unwrap();
    assert!(past_head > *seqs_now.last().unwrap());
}

#[test]
fn reading_the_log_is_itself_recorded_as_a_read() {
    let server = start();
    let rt = runtime();
    let root = root_client(&server);
    lookup(&rt, &root, &LookupEventsRequest::default()).unwrap();
    rt.block_on(root.search_events(&LookupEventsRequest::default())).unwrap();
    rt.block_on(root.read_events(1, Some(10))).unwrap();
    rt.block_on(root.audit_seq_at(0)).unwrap();
    let events = wait_for(&rt, &root, ("EventSource", "cloudtrail.amazonaws.com"), |events| events.len() >= 4);
    let mut names: Vec<&str> = events.iter().map(|e| e.event_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names, ["LookupEvents", "ReadEvents", "SearchEvents", "SeqAt"], "{events:#?}");
    assert!(events.iter().all(|e| e.read_only == "true" && e.username.as_deref() == Some("root")), "{events:#?}");
    let reads = all_pages(&rt, &root, Some(("EventName", "LookupEvents")), None);
    assert!(!reads.is_empty() && reads.iter().all(|e| e.event_source == "cloudtrail.amazonaws.com"));
}

/// `coffer audit ARGS` output lines.
fn audit_lines(server: &TestServer, args: &[&str]) -> Vec<String> {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    ok(server, &all).lines().map(str::to_string).collect()
}

#[test]
fn coffer_audit_search_tail_and_export() {
    let server = start();
    let rt = runtime();
    let root = root_client(&server);
    for name in ["prod/app-one/db", "prod/app-two/api", "staging/app/db"] {
        ok(&server, &["secret", "create", name, "--value", "v"]);
        ok(&server, &["secret", "get", name]);
    }
    wait_for(&rt, &root, ("EventName", "GetSecretValue"), |events| events.len() == 3);

    // A table by default, with wildcards in the value.
    let table = audit_lines(&server, &["search", "--resource-name", "prod/*"]);
    assert!(
        table[0].starts_with("TIME") && table[0].contains("RESOURCE") && table[0].contains("SOURCE-IP"),
        "{table:#?}"
    );
    let rows = &table[1..];
    assert_eq!(rows.len(), 4, "two creations and two reads under prod/: {table:#?}");
    assert!(rows.iter().any(|r| r.contains("prod/app-one/db") && r.contains("GetSecretValue") && r.contains("root")));
    assert!(rows.iter().any(|r| r.contains("prod/app-two/api") && r.contains("CreateSecret")));
    assert!(rows.iter().all(|r| r.contains("127.0.0.1")), "the source IP: {table:#?}");
    assert!(!rows.iter().any(|r| r.contains("staging/")), "{table:#?}");

    // JSON lines: each the event's CloudTrail JSON.
    let lines = audit_lines(&server, &["search", "--resource-name", "prod/*", "--output", "json"]);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["resources"][0]["ARN"].as_str().unwrap().contains(":secret:prod/"), "{v}");
        assert!(v["eventID"].is_string() && v["eventTime"].is_string());
    }
    let two = audit_lines(&server, &["search", "--event-name", "GetSecretValue", "--max", "2", "-o", "json"]);
    assert_eq!(two.len(), 2);
    let created = audit_lines(&server, &["search", "--event-name", "CreateSecret", "--since", "1h", "-o", "json"]);
    assert_eq!(created.len(), 3);
    let none = audit_lines(
        &server,
        &["search", "--event-name", "CreateSecret", "--until", "2000-01-01T00:00:00Z", "-o", "json"],
    );
    assert!(none.is_empty(), "{none:#?}");
    let changes = audit_lines(&server, &["search", "--event-name", "CreateSecret"]);
    assert_eq!(changes.len(), 4, "a header and the three creations: {changes:#?}");
    let both = coffer(&server, &["audit", "search", "--event-name", "A", "--username", "B"]);
    assert!(!both.status.success(), "one attribute at most: {}", text(&both));
    let bad_time = coffer(&server, &["audit", "search", "--since", "yesterday"]);
    assert!(
        !bad_time.status.success() && String::from_utf8_lossy(&bad_time.stderr).contains("RFC 3339"),
        "{}",
        text(&bad_time)
    );
    let backwards = coffer(&server, &["audit", "search", "--since", "1h", "--until", "2h"]);
    assert!(!backwards.status.success(), "{}", text(&backwards));

    // Tail: the newest events, oldest of them first.
    let tail = audit_lines(&server, &["tail", "-n", "3", "-o", "json"]);
    assert_eq!(tail.len(), 3, "{tail:#?}");
    let tail_table = audit_lines(&server, &["tail", "-n", "2"]);
    assert_eq!(tail_table.len(), 3, "a header and two rows: {tail_table:#?}");

    // Export: every event once, in chain order, as JSON lines and as CSV.
    let (_, before) = chain(&rt, &root);
    let head_before = *before.last().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let out = coffer(&server, &["audit", "export", "--format", "jsonl", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stdout.is_empty(), "with --out nothing goes to stdout");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("exported"),
        "no progress line when stderr is not a terminal"
    );
    let jsonl = std::fs::read_to_string(&file).unwrap();
    let (seq_of, chain_seqs) = chain(&rt, &root);
    let exported: Vec<u64> = jsonl
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            seq_of[v["eventID"].as_str().unwrap()]
        })
        .collect();
    assert!(exported.len() as u64 >= head_before, "{} lines, head was {head_before}", exported.len());
    assert_eq!(exported, chain_seqs[..exported.len()].to_vec(), "one line per event, in chain order");

    let csv = ok(&server, &["audit", "export", "--format", "csv"]);
    let mut csv_lines = csv.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(csv_lines.next().unwrap(), coffer_audit::CSV_HEADER.trim_end());
    let (seq_of, chain_seqs) = chain(&rt, &root);
    let rows: Vec<u64> = csv_lines.map(|l| seq_of[l.split(',').next().unwrap()]).collect();
    assert!(rows.len() as u64 >= head_before);
    assert_eq!(rows, chain_seqs[..rows.len()].to_vec(), "one CSV row per event, in chain order");
    assert_eq!(csv.matches("\r\n").count(), rows.len() + 1);

    let since = ok(&server, &["audit", "export", "--since", "1h", "--until", "2099-01-01T00:00:00Z"]);
    assert!(
        since.lines().count() as u64 >= head_before,
        "{} lines, head was {head_before}:\n{since}",
        since.lines().count()
    );
    let early = ok(&server, &["audit", "export", "--until", "2000-01-01T00:00:00Z", "--format", "csv"]);
    assert_eq!(early.lines().count(), 1, "the header only: {early}");
    let later = ok(&server, &["audit", "export", "--since", "2099-01-01T00:00:00Z", "--until", "2099-01-02T00:00:00Z"]);
    assert!(later.is_empty(), "{later}");

    // tail -f: new events as they are recorded, without its own polling.
    let mut child = server
        .cli()
        .args(["audit", "tail", "-f", "--interval-ms", "100", "-n", "0", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    ok(&server, &["secret", "create", "prod/tailed", "--value", "v"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                let created = v["eventName"] == "CreateSecret"
                    && v["resources"][0]["ARN"].as_str().is_some_and(|a| a.contains(":secret:prod/tailed"));
                seen.push(v);
                if created {
                    break true;
                }
            }
            Err(_) if Instant::now() > deadline => break false,
            Err(_) => {}
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "tail -f did not show the new secret's creation; it printed {seen:#?}");
    assert!(!seen.iter().any(|v| v["eventName"] == "ReadEvents"), "tail -f showed its own polling: {seen:#?}");
}

/// Every form a canary could take on the wire or at rest: as is, and base64 (blobs travel base64).
fn forms(canary: &str) -> Vec<String> {
    vec![canary.to_string(), STANDARD.encode(canary.as_bytes())]
}

fn assert_clean(what: &str, haystack: &[u8], canaries: &[(String, String)]) {
    for (label, canary) in canaries {
        for form in forms(canary) {
            let found = haystack.windows(form.len()).any(|w| w == form.as_bytes());
            assert!(!found, "the {label} canary ({form}) appears in {what}");
        }
    }
}

#[test]
fn no_secret_reaches_the_audit_log_the_database_or_the_server_log() {
    let sink_dir = tempfile::tempdir().unwrap();
    let sink = sink_dir.path().join("audit.jsonl");
    let server = TestServer::start_with(
        &["--audit-flush-interval-ms", "100", "--audit-sink", sink.to_str().unwrap()],
        &[("COFFER_LOG", "trace")],
    );
    let rt = runtime();
    let root = root_client(&server);
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let string_canary = format!("canary-{unique}-secretstring");
    let binary_canary = format!("canary-{unique}-secretbinary");
    let parameter_canary = format!("canary-{unique}-securestring");
    let plaintext_canary = format!("canary-{unique}-kmsplaintext");

    // A SecretString and a SecretBinary, created and read.
    ok(&server, &["secret", "create", "canary/string", "--value", &string_canary]);
    assert_eq!(ok(&server, &["secret", "get", "canary/string"]).trim(), string_canary);
    let created: Value = rt
        .block_on(root.call(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            &json!({"Name": "canary/binary", "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
                    "SecretBinary": STANDARD.encode(binary_canary.as_bytes())}),
        ))
        .unwrap();
    assert!(created["ARN"].is_string());
    let got: Value = rt
        .block_on(root.call("secretsmanager", "secretsmanager.GetSecretValue", &json!({"SecretId": "canary/binary"})))
        .unwrap();
    assert_eq!(STANDARD.decode(got["SecretBinary"].as_str().unwrap()).unwrap(), binary_canary.as_bytes());
    // A SecureString parameter, put and read decrypted.
    let _: Value = rt
        .block_on(root.call(
            "ssm",
            "AmazonSSM.PutParameter",
            &json!({"Name": "/canary/param", "Value": parameter_canary, "Type": "SecureString"}),
        ))
        .unwrap();
    let got: Value = rt
        .block_on(root.call("ssm", "AmazonSSM.GetParameter", &json!({"Name": "/canary/param", "WithDecryption": true})))
        .unwrap();
    assert_eq!(got["Parameter"]["Value"], parameter_canary.as_str());
    // A KMS plaintext, encrypted and decrypted.
    let encrypted: Value = rt
        .block_on(root.call(
            "kms",
            "TrentService.Encrypt",
            &json!({"KeyId": "alias/aws/ssm", "Plaintext": STANDARD.encode(plaintext_canary.as_bytes()),
                    "EncryptionContext": {"purpose": "canary"}}),
        ))
        .unwrap();
    let decrypted: Value = rt
        .block_on(root.call(
            "kms",
            "TrentService.Decrypt",
            &json!({"CiphertextBlob": encrypted["CiphertextBlob"], "EncryptionContext": {"purpose": "canary"}}),
        ))
        .unwrap();
    assert_eq!(STANDARD.decode(decrypted["Plaintext"].as_str().unwrap()).unwrap(), plaintext_canary.as_bytes());
    // An IAM user's access key secret, used; a session token of that user, used.
    ok(&server, &["iam", "user", "create", "canary-user"]);
    let key = json_out(&server, &["iam", "access-key", "create", "--user", "canary-user", "--json"]);
    let user_id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    let user_secret = key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_string();
    let user = Some((user_id.as_str(), user_secret.as_str(), None));
    let out = coffer_as(&server, user, &["sts", "whoami"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = coffer_as(&server, user, &["secret", "get", "canary/string"]);
    assert!(!out.status.success(), "the user may not read secrets: {}", text(&out));
    let out = coffer_as(&server, user, &["sts", "session-token", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let session: Value = serde_json::from_slice(&out.stdout).unwrap();
    let session_id = session["Credentials"]["AccessKeyId"].as_str().unwrap().to_string();
    let session_secret = session["Credentials"]["SecretAccessKey"].as_str().unwrap().to_string();
    let session_token = session["Credentials"]["SessionToken"].as_str().unwrap().to_string();
    let with_session = Some((session_id.as_str(), session_secret.as_str(), Some(session_token.as_str())));
    let out = coffer_as(&server, with_session, &["secret", "get", "canary/string"]);
    assert!(!out.status.success(), "{}", text(&out));
    let out = coffer_as(&server, with_session, &["sts", "whoami"]);
    assert!(out.status.success(), "{}", text(&out));
    let (_, root_secret) = server.root_keys();

    let canaries: Vec<(String, String)> = [
        ("SecretString", string_canary.clone()),
        ("SecretBinary", binary_canary.clone()),
        ("SecureString parameter", parameter_canary.clone()),
        ("KMS plaintext", plaintext_canary.clone()),
        ("IAM access key secret", user_secret.clone()),
        ("session secret key", session_secret.clone()),
        ("session token", session_token.clone()),
        ("root secret key", root_secret),
    ]
    .into_iter()
    .map(|(l, c)| (l.to_string(), c))
    .collect();

    // The last request's event is visible: everything before it was recorded.
    wait_for(&rt, &root, ("AccessKeyId", &session_id), |events| {
        events.iter().any(|e| e.event_name == "GetCallerIdentity")
    });
    let reads = all_pages(&rt, &root, Some(("EventName", "GetSecretValue")), None);
    assert!(reads.len() >= 4, "the reads were recorded: {reads:#?}");

    // Every LookupEvents answer, all pages, as the wire carried them.
    let mut answers = Vec::new();
    let mut token = None;
    loop {
        let page = lookup(&rt, &root, &request(None, Some(50), token.take())).unwrap();
        answers.extend_from_slice(serde_json::to_string(&page).unwrap().as_bytes());
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert!(answers.len() > 1000, "the lookups answered events");
    assert_clean("LookupEvents answers", &answers, &canaries);
    // Exports in both formats.
    let jsonl = ok(&server, &["audit", "export", "--format", "jsonl"]);
    assert!(jsonl.lines().count() >= 15, "{jsonl}");
    assert_clean("the JSON lines export", jsonl.as_bytes(), &canaries);
    let csv = ok(&server, &["audit", "export", "--format", "csv"]);
    assert!(csv.lines().count() >= 16, "{csv}");
    assert_clean("the CSV export", csv.as_bytes(), &canaries);
    let search = ok(&server, &["audit", "search", "--max", "1000", "-o", "json"]);
    assert_clean("coffer audit search", search.as_bytes(), &canaries);

    // The database files, read raw (the WAL holds the newest pages until a checkpoint).
    let mut checked = 0;
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        let file_name = path.file_name().unwrap().to_string_lossy().to_string();
        if file_name.starts_with("coffer.db") {
            let bytes = std::fs::read(&path).unwrap();
            assert_clean(&format!("the database file {file_name}"), &bytes, &canaries[..7]);
            checked += 1;
        }
    }
    assert!(checked >= 1, "found the database in {}", server.data_dir.display());
    // The audit sink, once it has caught up.
    std::thread::sleep(Duration::from_millis(1500));
    for entry in std::fs::read_dir(sink_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        assert_clean(&format!("the audit sink {}", path.display()), &std::fs::read(&path).unwrap(), &canaries);
    }
    // The server's log (trace level).
    let log = server.log_text();
    assert!(!log.is_empty(), "the harness captured the server's log");
    assert_clean("the server log", log.as_bytes(), &canaries);
}
