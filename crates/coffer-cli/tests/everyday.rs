//! End to end, the developer's everyday commands against a real server: `coffer exec` with real child
//! processes (environment, collisions, JSON expansion, exit codes and signals), `coffer env` in each
//! format, `coffer import` / `coffer export` round trips, `coffer template`, and the dotenv source
//! with no server at all.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{coffer, coffer_bin, text, TestServer};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

fn create_secret(server: &TestServer, name: &str, value: &str) {
    ok(coffer(server, &["secret", "create", name, "--value", value]));
}

fn put_param(server: &TestServer, name: &str, value: &str, kind: &str) {
    ok(coffer(server, &["param", "put", name, "--value", value, "--type", kind]));
}

/// Reads the `env -0` dump a child wrote.
fn read_env_dump(path: &Path) -> BTreeMap<String, String> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("the child wrote no {}: {e}", path.display()));
    String::from_utf8(raw)
        .unwrap()
        .split('\0')
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `coffer exec ARGS -- sh -c 'env -0 > $DUMP'`, answering the coffer output and the child's env.
fn exec_dump(
    server: &TestServer,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> (Output, Option<BTreeMap<String, String>>) {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env");
    let mut cmd = server.cli();
    cmd.arg("exec").args(args).args(["--", "sh", "-c", "env -0 > \"$DUMP\""]);
    cmd.env("DUMP", &dump);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let env = dump.exists().then(|| read_env_dump(&dump));
    (out, env)
}

const DB_PASSWORD: &str = "pa$$ 'w\"ord'\n# line two\\";

#[test]
fn exec_puts_secrets_and_parameters_into_the_childs_environment() {
    let server = TestServer::start();
    create_secret(&server, "/non-prod/backend/database-password", DB_PASSWORD);
    // The leading `/` of a secret name is optional.
    create_secret(&server, "non-prod/backend/api_key", "key-without-slash");
    create_secret(&server, "/non-prod/backend/deeper/nested-token", "nested");
    create_secret(&server, "/non-prod/backendish/not-me", "sibling");
    put_param(&server, "/non-prod/backend/LOG_LEVEL", "debug", "String");
    put_param(&server, "/non-prod/backend/jwt.secret", "jwt-value", "SecureString");
    put_param(&server, "/non-prod/backend/deeper/depth", "2", "String");

    let (out, env) =
        exec_dump(&server, &["--path", "/non-prod/backend"], &[("KEEP_ME", "kept"), ("LOG_LEVEL", "from-the-parent")]);
    assert!(out.status.success(), "{}", text(&out));
    let env = env.unwrap();
    assert_eq!(env["DATABASE_PASSWORD"], DB_PASSWORD);
    assert_eq!(env["API_KEY"], "key-without-slash");
    assert_eq!(env["LOG_LEVEL"], "debug", "a loaded value overrides the inherited one");
    assert_eq!(env["JWT_SECRET"], "jwt-value", "SecureStrings are decrypted");
    assert_eq!(env["KEEP_ME"], "kept", "the rest of the environment is kept");
    assert!(!env.contains_key("NESTED_TOKEN") && !env.contains_key("DEPTH"), "only direct children: {env:?}");
    assert!(!env.contains_key("NOT_ME"), "a sibling path with the same start is not under the path");
    assert!(!stderr(&out).contains("pa$$") && !stdout(&out).contains("pa$$"), "{}", text(&out));

    let (out, env) = exec_dump(&server, &["--path", "non-prod/backend/", "--recursive"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let env = env.unwrap();
    assert_eq!(env["NESTED_TOKEN"], "nested");
    assert_eq!(env["DEPTH"], "2");
    assert_eq!(env["DATABASE_PASSWORD"], DB_PASSWORD);

    // Without a path the server source does not guess.
    let out = coffer(&server, &["exec", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("--path"), "{}", text(&out));
}

#[test]
fn exec_refuses_collisions_unless_overrides_are_allowed() {
    let server = TestServer::start();
    create_secret(&server, "/c/app/db-url", "from-the-secret");
    put_param(&server, "/c/app/DB_URL", "from-the-parameter", "String");
    create_secret(&server, "/c/base/token", "base-token");
    create_secret(&server, "/c/local/token", "local-token");

    let (out, env) = exec_dump(&server, &["--path", "/c/app"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(env.is_none(), "the command must not run");
    let err = stderr(&out);
    assert!(
        err.contains("DB_URL") && err.contains("secret /c/app/db-url") && err.contains("parameter /c/app/DB_URL"),
        "{err}"
    );
    assert!(err.contains("--allow-override"), "{err}");
    assert!(!err.contains("from-the-"), "no value in the error: {err}");

    let (out, env) = exec_dump(&server, &["--path", "/c/app", "--allow-override"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(env.unwrap()["DB_URL"], "from-the-parameter");
    assert!(stderr(&out).contains("DB_URL"), "the override is reported: {}", text(&out));
    assert!(!stderr(&out).contains("from-the-"), "{}", text(&out));

    let (out, _) = exec_dump(&server, &["--path", "/c/base", "--path", "/c/local"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("secret /c/base/token") && stderr(&out).contains("secret /c/local/token"));
    let (out, env) = exec_dump(&server, &["--path", "/c/base", "--path", "/c/local", "--allow-override"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(env.unwrap()["TOKEN"], "local-token", "the later path wins");
}

#[test]
fn exec_expands_json_secrets_on_request() {
    let server = TestServer::start();
    create_secret(&server, "/j/app/database", r#"{"username":"app","password":"p@ss w'rd","port":5432}"#);
    create_secret(&server, "/j/app/plain", "not json");

    let (out, env) = exec_dump(&server, &["--path", "/j/app", "--expand-json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let env = env.unwrap();
    assert_eq!(env["DATABASE_USERNAME"], "app");
    assert_eq!(env["DATABASE_PASSWORD"], "p@ss w'rd");
    assert_eq!(env["DATABASE_PORT"], "5432");
    assert_eq!(env["PLAIN"], "not json");
    assert!(!env.contains_key("DATABASE"));

    let (_, env) = exec_dump(&server, &["--path", "/j/app"], &[]);
    let env = env.unwrap();
    assert_eq!(env["DATABASE"], r#"{"username":"app","password":"p@ss w'rd","port":5432}"#);
    assert!(!env.contains_key("DATABASE_USERNAME"));
}

#[test]
fn exec_passes_the_exit_code_through() {
    let server = TestServer::start();
    create_secret(&server, "/x/app/a", "1");
    let run = |command: &[&str]| {
        let out = server.cli().args(["exec", "--path", "/x/app", "--"]).args(command).output().unwrap();
        out.status.code()
    };
    assert_eq!(run(&["sh", "-c", "exit 7"]), Some(7));
    assert_eq!(run(&["sh", "-c", "exit 0"]), Some(0));
    assert_eq!(run(&["sh", "-c", "test \"$A\" = 1"]), Some(0));
    assert_eq!(run(&["sh", "-c", "kill -KILL $$"]), Some(128 + 9), "death by a signal is 128 + its number");
    assert_eq!(run(&["/nonexistent/command"]), Some(127));
}

fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn exec_forwards_signals_to_the_child() {
    let server = TestServer::start();
    create_secret(&server, "/sig/app/token", "t0k3n");
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let marker = dir.path().join("marker");
    // The child reports what it receives; a TERM makes it write its goodbye and exit 42.
    let script = r#"
        trap 'echo "usr1 $TOKEN" >> "$MARKER"' USR1
        trap 'echo "hup" >> "$MARKER"' HUP
        trap 'echo "term" >> "$MARKER"; exit 42' TERM
        echo ready > "$READY"
        while :; do sleep 0.05; done
    "#;
    let mut child = server
        .cli()
        .args(["exec", "--path", "/sig/app", "--", "sh", "-c", script])
        .env("READY", &ready)
        .env("MARKER", &marker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the child to start", Duration::from_secs(30), || ready.exists());
    let marker_text = || std::fs::read_to_string(&marker).unwrap_or_default();

    send_signal(child.id(), "USR1");
    wait_for("USR1 to reach the child", Duration::from_secs(10), || marker_text().contains("usr1"));
    send_signal(child.id(), "HUP");
    wait_for("HUP to reach the child", Duration::from_secs(10), || marker_text().contains("hup"));
    send_signal(child.id(), "TERM");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "coffer did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(42), "coffer exits with the child's code");
    assert_eq!(marker_text(), "usr1 t0k3n\nhup\nterm\n");
}

/// Values that break naive quoting in shells and dotenv files.
const TRICKY: &[(&str, &str)] = &[
    ("/fmt/app/quotes", r#"it's "quoted" `thrice`"#),
    ("/fmt/app/dollar", "$HOME ${USER} $(id) \\$"),
    ("/fmt/app/multi-line", "line one\nline two\n\nline four"),
    ("/fmt/app/spaces", "  leading and trailing  "),
    ("/fmt/app/hash", "# not a comment #"),
    ("/fmt/app/unicode", "秘密 🔑 é"),
    ("/fmt/app/backslashes", "C:\\new\\table\\"),
    ("/fmt/app/crlf", "a\r\nb"),
];

fn tricky_env() -> BTreeMap<String, String> {
    TRICKY
        .iter()
        .map(|(name, value)| {
            let var = name.rsplit('/').next().unwrap().replace('-', "_").to_uppercase();
            (var, value.to_string())
        })
        .collect()
}

#[test]
fn env_prints_every_format_faithfully() {
    let server = TestServer::start();
    for (name, value) in TRICKY {
        create_secret(&server, name, value);
    }
    let want = tricky_env();

    let out = ok(coffer(&server, &["env", "--path", "/fmt/app", "--format", "json"]));
    let got: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, want);

    let out = ok(coffer(&server, &["env", "--path", "/fmt/app", "--format", "dotenv"]));
    let parsed = coffer_client::dotenv::parse(&stdout(&out)).unwrap();
    let got: BTreeMap<String, String> = parsed.into_iter().map(|e| (e.key, e.value.to_string())).collect();
    assert_eq!(got, want);
    // The default format is dotenv.
    assert_eq!(ok(coffer(&server, &["env", "--path", "/fmt/app"])).stdout, out.stdout);

    // A real shell sources the `shell` format and gets every byte back.
    let out = ok(coffer(&server, &["env", "--path", "/fmt/app", "--format", "shell"]));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vars.sh");
    std::fs::write(&script, &out.stdout).unwrap();
    let mut check = String::from(". \"$1\"\n");
    for var in want.keys() {
        check.push_str(&format!("printf '%s' \"${var}\" > \"$2/{var}\"\n"));
    }
    let status = Command::new("sh").arg("-c").arg(&check).arg("sh").arg(&script).arg(dir.path()).status().unwrap();
    assert!(status.success());
    for (var, value) in &want {
        assert_eq!(&std::fs::read_to_string(dir.path().join(var)).unwrap(), value, "{var} through sh");
    }
}

/// A dotenv file worth migrating: multi-line and quoted values, each with a unique canary inside.
fn migration_file(canary: &str) -> (String, BTreeMap<String, String>) {
    let file = format!(
        r#"# The backend's settings
DATABASE_URL=postgres://app:{canary}-db@db:5432/app
export API_KEY='{canary}-api $NOT_EXPANDED'
PRIVATE_KEY="-----BEGIN KEY-----\n{canary}-pem\n-----END KEY-----"
QUOTED="say \"{canary}-quoted\" # inside"
MULTI_LINE='{canary}-first
second line'
PLAIN={canary}-plain # trailing comment
"#
    );
    let want = [
        ("DATABASE_URL", format!("postgres://app:{canary}-db@db:5432/app")),
        ("API_KEY", format!("{canary}-api $NOT_EXPANDED")),
        ("PRIVATE_KEY", format!("-----BEGIN KEY-----\n{canary}-pem\n-----END KEY-----")),
        ("QUOTED", format!("say \"{canary}-quoted\" # inside")),
        ("MULTI_LINE", format!("{canary}-first\nsecond line")),
        ("PLAIN", format!("{canary}-plain")),
    ];
    (file, want.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn assert_no_canary(out: &Output, canary: &str) {
    assert!(!stdout(out).contains(canary) && !stderr(out).contains(canary), "a value was printed:\n{}", text(out));
}

#[test]
fn import_then_export_round_trips_secrets_without_printing_values() {
    let server = TestServer::start();
    let canary = format!("canary{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("backend.env");
    let (file, want) = migration_file(&canary);
    std::fs::write(&env_file, file).unwrap();
    let file_arg = env_file.to_str().unwrap();

    // A dry run shows the plan and writes nothing.
    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/backend/", "--dry-run"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("would create /prod/backend/DATABASE_URL"), "{}", text(&out));
    assert!(stdout(&out).contains("would create 6, update 0"), "{}", text(&out));
    let listed = ok(coffer(&server, &["secret", "list", "--prefix", "/prod/"]));
    assert!(!stdout(&listed).contains("/prod/backend"), "the dry run wrote: {}", stdout(&listed));

    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/backend", "--tag", "team=backend"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("create     /prod/backend/PRIVATE_KEY"), "{}", text(&out));
    assert!(stdout(&out).contains("created 6, updated 0, unchanged 0, skipped 0, failed 0"), "{}", text(&out));
    let described = ok(coffer(&server, &["secret", "describe", "/prod/backend/API_KEY"]));
    assert!(stdout(&described).contains("\"team\""), "tags on create: {}", stdout(&described));

    let out = ok(coffer(&server, &["export", "--path", "/prod/backend", "--format", "json"]));
    let got: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    let want_full: BTreeMap<String, String> =
        want.iter().map(|(k, v)| (format!("/prod/backend/{k}"), v.clone())).collect();
    assert_eq!(got, want_full);
    let out = ok(coffer(&server, &["export", "--path", "/prod/backend"]));
    let exported = coffer_client::dotenv::parse(&stdout(&out)).unwrap();
    let got: BTreeMap<String, String> = exported.into_iter().map(|e| (e.key, e.value.to_string())).collect();
    assert_eq!(got, want);

    // Importing the same file again changes nothing.
    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/backend/"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("created 0, updated 0, unchanged 6, skipped 0, failed 0"), "{}", text(&out));

    // One changed value is one update, and a new version of that secret only.
    let (changed, _) = migration_file(&canary);
    let changed = changed.replace(&format!("{canary}-plain"), &format!("{canary}-plain-v2"));
    std::fs::write(&env_file, changed).unwrap();
    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/backend/"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("update     /prod/backend/PLAIN"), "{}", text(&out));
    assert!(stdout(&out).contains("created 0, updated 1, unchanged 5, skipped 0, failed 0"), "{}", text(&out));
    let got = ok(coffer(&server, &["secret", "get", "/prod/backend/PLAIN"]));
    assert_eq!(stdout(&got), format!("{canary}-plain-v2\n"));

    // --lowercase names, and export names the variables as exec does.
    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/lower/app/", "--lowercase"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("/lower/app/database_url"), "{}", text(&out));
    let out = ok(coffer(&server, &["export", "--path", "/lower/app", "--format", "dotenv"]));
    assert!(stdout(&out).contains("DATABASE_URL="), "{}", stdout(&out));

    std::thread::sleep(Duration::from_millis(100));
    assert!(!server.log_text().contains(&canary), "a value reached the server's logs");
}

#[test]
fn import_parameters_reports_conflicts_and_overwrites_on_request() {
    let server = TestServer::start();
    let canary = format!("canary{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("params.env");
    let (file, want) = migration_file(&canary);
    std::fs::write(&env_file, file).unwrap();
    let file_arg = env_file.to_str().unwrap();

    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/params/", "--as", "securestring"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("created 6, updated 0, unchanged 0, skipped 0, failed 0"), "{}", text(&out));
    let got = ok(coffer(&server, &["param", "get", "/prod/params/MULTI_LINE", "--json"]));
    assert!(stdout(&got).contains("SecureString"), "{}", stdout(&got));
    let out = ok(coffer(&server, &["export", "--path", "/prod/params", "--format", "json"]));
    let got: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    let want_full: BTreeMap<String, String> =
        want.iter().map(|(k, v)| (format!("/prod/params/{k}"), v.clone())).collect();
    assert_eq!(got, want_full);

    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/params/", "--as", "securestring"]));
    assert!(stdout(&out).contains("unchanged 6"), "{}", text(&out));

    // A different value over an existing parameter is a conflict without --overwrite.
    std::fs::write(&env_file, format!("PLAIN={canary}-new\nFRESH={canary}-fresh\n")).unwrap();
    let out = coffer(&server, &["import", file_arg, "--prefix", "/prod/params/", "--as", "securestring"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("conflict   /prod/params/PLAIN"), "{}", text(&out));
    assert!(stdout(&out).contains("created 1, updated 0, unchanged 0, skipped 0, failed 1"), "{}", text(&out));
    let got = ok(coffer(&server, &["param", "get", "/prod/params/PLAIN"]));
    assert_eq!(stdout(&got), format!("{canary}-plain\n"), "the conflicting parameter is untouched");

    let out =
        ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/params/", "--as", "securestring", "--overwrite"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("created 0, updated 1, unchanged 1, skipped 0, failed 0"), "{}", text(&out));
    let got = ok(coffer(&server, &["param", "get", "/prod/params/PLAIN"]));
    assert_eq!(stdout(&got), format!("{canary}-new\n"));

    // Plain String parameters; an empty value cannot be stored: it is skipped by name, and the rest
    // imports with success (a .env with `OPTIONAL=` lines is normal).
    std::fs::write(&env_file, format!("URL=https://{canary}.test\nEMPTY=\n")).unwrap();
    let out = ok(coffer(&server, &["import", file_arg, "--prefix", "/prod/plain", "--as", "param"]));
    assert_no_canary(&out, &canary);
    assert!(stdout(&out).contains("skipped    /prod/plain/EMPTY (empty value"), "{}", text(&out));
    assert!(stdout(&out).contains("created 1, updated 0, unchanged 0, skipped 1, failed 0"), "{}", text(&out));
    let got = ok(coffer(&server, &["param", "get", "/prod/plain/URL", "--json"]));
    assert!(stdout(&got).contains("\"Type\": \"String\""), "{}", stdout(&got));

    // A file that does not parse: the line number, never its text, and nothing written.
    std::fs::write(&env_file, format!("GOOD=1\n{canary}-stray-value\n")).unwrap();
    let out = coffer(&server, &["import", file_arg, "--prefix", "/bad/"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_no_canary(&out, &canary);
    assert!(stderr(&out).contains("line 2"), "{}", text(&out));
}

/// `arg` quoted for `sh`.
fn sh_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

#[test]
fn import_shows_progress_only_on_a_terminal() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("many.env");
    let file: String = (0..25).map(|i| format!("KEY_{i}=canary-progress-{i}\n")).collect();
    std::fs::write(&env_file, file).unwrap();
    let out = ok(coffer(&server, &["import", env_file.to_str().unwrap(), "--prefix", "/many/"]));
    assert!(stdout(&out).contains("created 25,"), "{}", text(&out));
    // Piped stderr is no terminal: no counter to clutter logs.
    assert!(!stderr(&out).contains("/25]"), "{}", text(&out));

    // On a terminal (script(1) runs it on a pseudo-terminal), a counter for each phase.
    let command =
        [coffer_bin(), "import", env_file.to_str().unwrap(), "--prefix", "/many-tty/"].map(sh_quote).join(" ");
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .envs(server.aws_env())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let screen = stdout(&out);
    assert!(screen.contains("checking [25/25]") && screen.contains("writing [25/25]"), "{screen}");
    assert!(screen.contains("created 25,"), "{screen}");
    assert!(!screen.contains("canary-progress"), "{screen}");
}

#[test]
fn template_lists_names_and_descriptions_never_values() {
    let server = TestServer::start();
    let canary = format!("canary{}", uuid::Uuid::new_v4().simple());
    ok(coffer(
        &server,
        &["secret", "create", "/t/app/database-password", "--value", &canary, "--description", "PostgreSQL password"],
    ));
    ok(coffer(&server, &["secret", "create", "/t/app/undocumented", "--value", &canary]));
    ok(coffer(
        &server,
        &[
            "param",
            "put",
            "/t/app/api_url",
            "--value",
            &canary,
            "--type",
            "String",
            "--description",
            "Public API base URL",
        ],
    ));
    ok(coffer(&server, &["param", "put", "/t/app/deeper/hidden", "--value", &canary, "--type", "String"]));

    let dir = tempfile::tempdir().unwrap();
    let example = dir.path().join(".env.example");
    let out = ok(coffer(&server, &["template", "--path", "/t/app", "--output", example.to_str().unwrap()]));
    assert_no_canary(&out, &canary);
    let written = std::fs::read_to_string(&example).unwrap();
    assert!(!written.contains(&canary), "{written}");
    assert!(written.contains("# Public API base URL\nAPI_URL=\n"), "{written}");
    assert!(written.contains("# PostgreSQL password\nDATABASE_PASSWORD=\n"), "{written}");
    assert!(written.contains("\nUNDOCUMENTED=\n"), "{written}");
    assert!(!written.contains("HIDDEN"), "only direct children: {written}");
    // Every entry parses, with an empty value.
    let entries = coffer_client::dotenv::parse(&written).unwrap();
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().all(|e| e.value.is_empty()));

    let out = ok(coffer(&server, &["template", "--path", "/t/app", "--recursive"]));
    assert!(stdout(&out).contains("HIDDEN="), "{}", text(&out));
    assert_no_canary(&out, &canary);
}

/// A `coffer` command with no server anywhere: an endpoint nobody listens on and no credentials.
fn offline_coffer() -> Command {
    let mut cmd = Command::new(coffer_bin());
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env_remove("COFFER_SOURCE")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_CONFIG_FILE", "/dev/null");
    cmd
}

#[test]
fn dotenv_source_works_without_any_server() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env.local");
    std::fs::write(
        &env_file,
        "\u{feff}# local development\r\nDATABASE_PASSWORD='local pa$$'\r\nexport API_URL=http://localhost:3000 # dev\r\n\
         MULTI=\"a\\nb\"\r\nDB={\"user\":\"dev\"}\r\n",
    )
    .unwrap();
    let source = format!("dotenv:{}", env_file.display());
    let dump = dir.path().join("env");

    let out = offline_coffer()
        .env("COFFER_SOURCE", &source)
        .env("DUMP", &dump)
        .args(["exec", "--path", "/ignored/in/dotenv/mode", "--", "sh", "-c", "env -0 > \"$DUMP\""])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let env = read_env_dump(&dump);
    assert_eq!(env["DATABASE_PASSWORD"], "local pa$$");
    assert_eq!(env["API_URL"], "http://localhost:3000");
    assert_eq!(env["MULTI"], "a\nb");
    assert_eq!(env["DB"], r#"{"user":"dev"}"#);

    let out =
        offline_coffer().args(["env", "--source", &source, "--format", "json", "--expand-json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let got: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["DB_USER"], "dev");
    assert_eq!(got.len(), 4);

    // The same command with the server source fails: there is no server, and no credentials.
    let out =
        offline_coffer().env("COFFER_SOURCE", "server").args(["env", "--path", "/non-prod/backend"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // A broken file: its line number, never its text; and a bad source spec is a usage error.
    std::fs::write(&env_file, "OK=1\nSECRET=\"never closed hunter2\n").unwrap();
    let out = offline_coffer().args(["env", "--source", &source]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("line 2") && !stderr(&out).contains("hunter2"), "{}", text(&out));
    let out = offline_coffer().args(["env", "--source", "vault:x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
