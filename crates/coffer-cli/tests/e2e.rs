//! End to end: the real `coffer` binary, driven over HTTP by aws-sdk-rust, by raw signed requests and
//! by the `coffer` CLI itself.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use common::TestServer;

fn sdk(server: &TestServer) -> aws_sdk_secretsmanager::Client {
    let (id, secret) = server.root_keys();
    let creds = aws_credential_types::Credentials::new(id, secret, None, None, "coffer-test");
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .credentials_provider(creds)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

fn code<E: aws_sdk_secretsmanager::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_sdk_rust_drives_the_secret_lifecycle() {
    let server = TestServer::start();
    let client = sdk(&server);

    let created = client
        .create_secret()
        .name("/prod/backend/database_password")
        .secret_string(r#"{"username":"app","password":"s3cr3t"}"#)
        .description("PostgreSQL password")
        .tags(Tag::builder().key("team").value("backend").build())
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:/prod/backend/database_password-"));
    let first_version = created.version_id().unwrap().to_string();

    let got = client.get_secret_value().secret_id("/prod/backend/database_password").send().await.unwrap();
    let parsed: serde_json::Value = serde_json::from_str(got.secret_string().unwrap()).unwrap();
    assert_eq!(parsed["password"], "s3cr3t");
    assert_eq!(got.version_stages(), ["AWSCURRENT"]);
    assert!(got.created_date().is_some());

    // Full and partial ARNs resolve too.
    for id in [arn.clone(), arn[..arn.len() - 7].to_string()] {
        let v = client.get_secret_value().secret_id(id).send().await.unwrap();
        assert_eq!(v.arn(), Some(arn.as_str()));
    }

    let err = client
        .get_secret_value()
        .secret_id("/prod/backend/database_password")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");

    let put = client
        .put_secret_value()
        .secret_id("/prod/backend/database_password")
        .secret_string(r#"{"password":"n3w"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_stages(), ["AWSCURRENT"]);
    let prev = client
        .get_secret_value()
        .secret_id("/prod/backend/database_password")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.version_id(), Some(first_version.as_str()));

    let versions = client
        .list_secret_version_ids()
        .secret_id("/prod/backend/database_password")
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);

    let described = client.describe_secret().secret_id(&arn).send().await.unwrap();
    assert_eq!(described.description(), Some("PostgreSQL password"));
    assert_eq!(described.tags().len(), 1);
    assert_eq!(described.version_ids_to_stages().map(|m| m.len()), Some(2));
    assert!(described.kms_key_id().is_none(), "the default key is not reported");

    client
        .tag_resource()
        .secret_id(&arn)
        .tags(Tag::builder().key("Environment").value("prod").build())
        .send()
        .await
        .unwrap();
    client.untag_resource().secret_id(&arn).tag_keys("team").send().await.unwrap();
    let described = client.describe_secret().secret_id(&arn).send().await.unwrap();
    assert_eq!(described.tags().iter().map(|t| t.key().unwrap()).collect::<Vec<_>>(), ["Environment"]);

    // Binary values round-trip.
    client
        .create_secret()
        .name("/prod/backend/tls_key")
        .secret_binary(Blob::new(vec![0u8, 1, 2, 255, 254]))
        .send()
        .await
        .unwrap();
    let bin = client.get_secret_value().secret_id("/prod/backend/tls_key").send().await.unwrap();
    assert_eq!(bin.secret_binary().unwrap().as_ref(), &[0u8, 1, 2, 255, 254]);
    assert!(bin.secret_string().is_none());

    let listed = client
        .list_secrets()
        .filters(Filter::builder().key(FilterNameStringType::Name).values("/prod/").build())
        .send()
        .await
        .unwrap();
    assert_eq!(listed.secret_list().len(), 2);

    let batch = client
        .batch_get_secret_value()
        .secret_id_list("/prod/backend/database_password")
        .secret_id_list("/prod/backend/missing")
        .send()
        .await
        .unwrap();
    assert_eq!(batch.secret_values().len(), 1);
    assert_eq!(batch.errors().len(), 1);
    assert_eq!(batch.errors()[0].error_code(), Some("ResourceNotFoundException"));

    let password = client
        .get_random_password()
        .password_length(24)
        .exclude_punctuation(true)
        .require_each_included_type(true)
        .send()
        .await
        .unwrap();
    let pw = password.random_password().unwrap();
    assert_eq!(pw.len(), 24);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));

    let dup = client.create_secret().name("/prod/backend/tls_key").secret_string("x").send().await.unwrap_err();
    assert_eq!(code(&dup), "ResourceExistsException");

    let deleted = client.delete_secret().secret_id(&arn).recovery_window_in_days(7).send().await.unwrap();
    assert!(deleted.deletion_date().is_some());
    let gone = client.get_secret_value().secret_id(&arn).send().await.unwrap_err();
    assert_eq!(code(&gone), "InvalidRequestException");
    client.restore_secret().secret_id(&arn).send().await.unwrap();
    client.get_secret_value().secret_id(&arn).send().await.unwrap();

    client.delete_secret().secret_id(&arn).force_delete_without_recovery(true).send().await.unwrap();
    let missing = client.describe_secret().secret_id(&arn).send().await.unwrap_err();
    assert_eq!(code(&missing), "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread")]
async fn values_and_versions_survive_a_restart() {
    let mut server = TestServer::start();
    let client = sdk(&server);
    client.create_secret().name("persist/me").secret_string("before-restart").send().await.unwrap();
    client.put_secret_value().secret_id("persist/me").secret_string("after-put").send().await.unwrap();
    server.restart();
    let client = sdk(&server);
    let v = client.get_secret_value().secret_id("persist/me").send().await.unwrap();
    assert_eq!(v.secret_string(), Some("after-put"));
    let prev = client.get_secret_value().secret_id("persist/me").version_stage("AWSPREVIOUS").send().await.unwrap();
    assert_eq!(prev.secret_string(), Some("before-restart"));
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_refused_with_aws_codes() {
    let server = TestServer::start();
    let creds = aws_credential_types::Credentials::new("AKIAUNKNOWNKEY000000", "x".repeat(40), None, None, "t");
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .credentials_provider(creds)
        .build();
    let err = aws_sdk_secretsmanager::Client::from_conf(conf).list_secrets().send().await.unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");

    let (id, _) = server.root_keys();
    let creds = aws_credential_types::Credentials::new(id, "y".repeat(40), None, None, "t");
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .credentials_provider(creds)
        .build();
    let err = aws_sdk_secretsmanager::Client::from_conf(conf).list_secrets().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
}

/// Raw requests: what the SDKs never send, the server must still answer with AWS's codes.
mod raw {
    use super::*;
    use time::OffsetDateTime;

    struct Raw {
        endpoint: String,
        host: String,
        creds: coffer_sigv4::Credentials,
        http: reqwest::Client,
    }

    impl Raw {
        fn new(server: &TestServer) -> Raw {
            let (id, secret) = server.root_keys();
            Raw {
                host: server.endpoint.trim_start_matches("http://").to_string(),
                endpoint: server.endpoint.clone(),
                creds: coffer_sigv4::Credentials { access_key_id: id, secret_access_key: secret, session_token: None },
                http: reqwest::Client::new(),
            }
        }

        /// Sends `body` to `target`, signed at `when` (or unsigned), returning (status, __type, message).
        async fn send(&self, target: Option<&str>, body: &[u8], when: Option<OffsetDateTime>) -> (u16, String, String) {
            let mut headers = vec![
                ("host".to_string(), self.host.clone()),
                ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
            ];
            if let Some(t) = target {
                headers.push(("x-amz-target".to_string(), t.to_string()));
            }
            let mut all = headers.clone();
            if let Some(when) = when {
                let req = coffer_sigv4::SignableRequest {
                    method: "POST",
                    path: "/",
                    query: "",
                    headers: &headers,
                    payload: body,
                };
                all.extend(coffer_sigv4::sign(&req, &self.creds, "us-east-1", "secretsmanager", when));
            }
            let mut rb = self.http.post(format!("{}/", self.endpoint));
            for (k, v) in &all {
                if k != "host" {
                    rb = rb.header(k.as_str(), v.as_str());
                }
            }
            let resp = rb.body(body.to_vec()).send().await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            (
                status,
                json["__type"].as_str().unwrap_or_default().to_string(),
                json["message"].as_str().unwrap_or_default().to_string(),
            )
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn protocol_and_input_errors() {
        let server = TestServer::start();
        let raw = Raw::new(&server);
        let now = Some(OffsetDateTime::now_utc());

        let (s, t, m) = raw.send(Some("secretsmanager.ListSecrets"), b"{}", None).await;
        assert_eq!(
            (s, t.as_str(), m.as_str()),
            (400, "MissingAuthenticationTokenException", "Missing Authentication Token")
        );

        let old = OffsetDateTime::now_utc() - time::Duration::minutes(6);
        let (s, t, m) = raw.send(Some("secretsmanager.ListSecrets"), b"{}", Some(old)).await;
        assert_eq!((s, t.as_str()), (400, "InvalidSignatureException"));
        assert!(m.starts_with("Signature expired:"), "{m}");

        let (s, t, _) = raw.send(Some("secretsmanager.NoSuchOperation"), b"{}", now).await;
        assert_eq!((s, t.as_str()), (400, "UnknownOperationException"));
        let (s, t, _) = raw.send(Some("nosuchservice.ListSecrets"), b"{}", now).await;
        assert_eq!((s, t.as_str()), (400, "UnknownOperationException"));
        let (s, t, _) = raw.send(None, b"{}", now).await;
        assert_eq!((s, t.as_str()), (400, "UnknownOperationException"));

        let (s, t, _) = raw.send(Some("secretsmanager.CreateSecret"), b"{not json", now).await;
        assert_eq!((s, t.as_str()), (400, "SerializationException"));
        let (s, t, _) = raw.send(Some("secretsmanager.CreateSecret"), br#"{"Name": 42}"#, now).await;
        assert_eq!((s, t.as_str()), (400, "SerializationException"));
        let (s, t, _) = raw.send(Some("secretsmanager.GetSecretValue"), br#"{"SecretId": ["a"]}"#, now).await;
        assert_eq!((s, t.as_str()), (400, "SerializationException"));

        let (s, t, m) =
            raw.send(Some("secretsmanager.CreateSecret"), br#"{"Name":"ok-name","SecretString":"v"}"#, now).await;
        assert_eq!((s, t.as_str()), (400, "InvalidRequestException"));
        assert_eq!(m, "You must provide a ClientRequestToken value. We recommend a UUID-type value.");

        let (s, t, m) = raw.send(Some("secretsmanager.CreateSecret"), br#"{"Name":"bad name!"}"#, now).await;
        assert_eq!((s, t.as_str()), (400, "ValidationException"));
        assert!(m.starts_with("Invalid name."));

        let huge = format!(
            r#"{{"Name":"big","ClientRequestToken":"{}","SecretString":"{}"}}"#,
            "0".repeat(36),
            "x".repeat(2 * 1024 * 1024)
        );
        let (s, t, _) = raw.send(Some("secretsmanager.CreateSecret"), huge.as_bytes(), now).await;
        assert_eq!((s, t.as_str()), (413, "RequestEntityTooLargeException"));

        // Nothing above created anything.
        let (s, _, _) = raw.send(Some("secretsmanager.DescribeSecret"), br#"{"SecretId":"ok-name"}"#, now).await;
        assert_eq!(s, 400);

        // Health endpoints need no signature.
        let health = reqwest::get(format!("{}/healthz", server.endpoint)).await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = reqwest::get(format!("{}/readyz", server.endpoint)).await.unwrap();
        assert_eq!(ready.status(), 200);
    }
}

#[test]
fn first_start_writes_private_credentials_and_key_files() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start();
    for file in ["root-credentials", "master.key"] {
        let mode = std::fs::metadata(server.data_dir.join(file)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let text = std::fs::read_to_string(server.credentials_file()).unwrap();
    assert!(text.starts_with("[default]\naws_access_key_id = AKIA"));
    // The database never holds the secret access key in clear.
    let (_, secret) = server.root_keys();
    let db = std::fs::read(server.data_dir.join("coffer.db")).unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
}

#[test]
fn wrong_or_missing_master_key_refuses_to_start_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let key_a = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32
    let key_b = "HxwdGxoZGBcWFRQTEhEQDw4NDAsKCQgHBgUEAwIBAAA=";
    {
        let mut s = TestServer::spawn(&data, &["--master-key-source", "env"], &[("COFFER_MASTER_KEY", key_a)]).unwrap();
        s.stop();
    }
    let db = data.join("coffer.db");
    let before = std::fs::read(&db).unwrap();
    let err = TestServer::spawn(&data, &["--master-key-source", "env"], &[("COFFER_MASTER_KEY", key_b)])
        .err()
        .expect("must refuse the wrong key");
    assert!(err.contains("master key does not match"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before, "a refused start changes nothing");
    // With the file source and no key file, it refuses rather than making a new key.
    let err = TestServer::spawn(&data, &[], &[]).err().expect("must refuse: no key file for existing data");
    assert!(err.contains("master.key is missing"), "{err}");
    assert!(!data.join("master.key").exists());
    // The right key still works.
    let mut ok = TestServer::spawn(&data, &["--master-key-source", "env"], &[("COFFER_MASTER_KEY", key_a)]).unwrap();
    ok.stop();
}

#[test]
fn passphrase_source_derives_the_same_key_each_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let args = ["--master-key-source", "passphrase"];
    let mut s = TestServer::spawn(&data, &args, &[("COFFER_PASSPHRASE", "correct horse battery staple")]).unwrap();
    let out = s.cli().args(["secret", "create", "pp", "--value", "v1"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.stop();
    assert!(data.join("passphrase.json").exists());
    let err =
        TestServer::spawn(&data, &args, &[("COFFER_PASSPHRASE", "wrong")]).err().expect("wrong passphrase refused");
    assert!(err.contains("master key does not match"), "{err}");
    let s = TestServer::spawn(&data, &args, &[("COFFER_PASSPHRASE", "correct horse battery staple")]).unwrap();
    let out = s.cli().args(["secret", "get", "pp"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v1");
}

#[test]
fn cli_secret_commands() {
    let server = TestServer::start();
    let run = |args: &[&str]| {
        let out = server.cli().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "secret",
        "create",
        "/non-prod/backend/database_password",
        "--value",
        "pa$$ word",
        "--description",
        "dev db",
        "--tag",
        "Environment=non-prod",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("/non-prod/backend/database_password-"));
    let (_, out, _) = run(&["secret", "get", "/non-prod/backend/database_password"]);
    assert_eq!(out, "pa$$ word\n");
    run(&["secret", "create", "/non-prod/backend/db", "--value", r#"{"username":"admin","password":"secret123"}"#]);
    let (_, out, _) = run(&["secret", "get", "/non-prod/backend/db", "--json-key", "password"]);
    assert_eq!(out, "secret123\n");
    let (code, _, _) = run(&["secret", "put", "/non-prod/backend/database_password", "--value", "rotated"]);
    assert_eq!(code, Some(0));
    let (_, out, _) = run(&["secret", "get", "/non-prod/backend/database_password", "--version-stage", "AWSPREVIOUS"]);
    assert_eq!(out, "pa$$ word\n");
    let (_, out, _) = run(&["secret", "history", "/non-prod/backend/database_password", "-o", "table"]);
    assert!(out.contains("AWSCURRENT") && out.contains("AWSPREVIOUS"), "{out}");
    let (_, out, _) = run(&["secret", "list", "--prefix", "/non-prod/", "-o", "table"]);
    assert!(out.contains("/non-prod/backend/db") && out.contains("dev db"), "{out}");
    let (_, out, _) =
        run(&["secret", "describe", "/non-prod/backend/database_password", "--query", "Description", "-o", "raw"]);
    assert_eq!(out, "dev db\n");
    let (code, _, _) = run(&["secret", "delete", "/non-prod/backend/db", "--recovery-window-days", "7"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = run(&["secret", "get", "/non-prod/backend/db"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("InvalidRequestException"), "{err}");
    let (code, _, _) = run(&["secret", "restore", "/non-prod/backend/db"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = run(&["secret", "get", "/no/such/secret"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("ResourceNotFoundException") && err.contains("hint:"), "{err}");
    // Usage errors exit with 2.
    let (code, _, _) = run(&["secret", "get"]);
    assert_eq!(code, Some(2));
    // A server that is not there gives a hint naming where it was looked for.
    let out = server.cli().args(["secret", "list", "--endpoint-url", "http://127.0.0.1:9"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the server running at http://127.0.0.1:9?"));
}

#[test]
fn secret_values_never_reach_the_logs() {
    let server = TestServer::start_with(&[], &[("COFFER_LOG", "trace")]);
    let canary = "canary-7f3a9c2e-value-never-logged";
    let run = |args: &[&str]| server.cli().args(args).output().unwrap();
    run(&["secret", "create", "canary/one", "--value", canary]);
    run(&["secret", "get", "canary/one"]);
    run(&["secret", "put", "canary/one", "--value", &format!("{canary}-2")]);
    run(&["secret", "create", "canary/one", "--value", canary]);
    run(&["param", "put", "/canary/param", "--value", canary, "--type", "SecureString"]);
    run(&["param", "get", "/canary/param"]);
    run(&["param", "put", "/canary/param", "--value", canary, "--type", "SecureString"]);
    // KMS plaintexts, a disabled key's failures and a re-wrap pass must not leak either.
    let cipher = run(&["kms", "encrypt", "alias/aws/ssm", "--plaintext", canary, "--context", "k=v"]);
    let cipher = String::from_utf8_lossy(&cipher.stdout).trim().to_string();
    assert_eq!(String::from_utf8_lossy(&run(&["kms", "decrypt", &cipher, "--context", "k=v"]).stdout).trim(), canary);
    run(&["kms", "decrypt", &cipher]);
    let key: serde_json::Value = serde_json::from_slice(&run(&["kms", "create"]).stdout).unwrap();
    let key = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    run(&["secret", "create", "canary/kms", "--value", canary, "--kms-key-id", &key]);
    run(&["kms", "disable", &key]);
    run(&["secret", "get", "canary/kms"]);
    run(&["kms", "enable", &key]);
    run(&["kms", "rotate", &key]);
    run(&["kms", "rewrap"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = server.log_text();
    assert!(!logs.is_empty(), "trace logging produced output");
    assert!(!logs.contains(canary), "a secret value reached the logs");
    let (_, secret) = server.root_keys();
    assert!(!logs.contains(&secret), "the secret access key reached the logs");
}

#[test]
fn serves_https_when_given_a_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert_path = certs.path().join("cert.pem");
    let key_path = certs.path().join("key.pem");
    std::fs::write(&cert_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.key_pair.serialize_pem()).unwrap();
    let server = TestServer::start_with(
        &["--tls-cert", cert_path.to_str().unwrap(), "--tls-key", key_path.to_str().unwrap()],
        &[],
    );
    assert!(server.endpoint.starts_with("https://127.0.0.1:"), "{}", server.endpoint);
    let run = |args: &[&str], ca: Option<&std::path::Path>| {
        let mut cmd = server.cli();
        match ca {
            Some(ca) => cmd.env("AWS_CA_BUNDLE", ca),
            None => cmd.env_remove("AWS_CA_BUNDLE"),
        };
        cmd.args(args).output().unwrap()
    };
    let out = run(&["secret", "create", "tls/secret", "--value", "over-tls"], Some(&cert_path));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["secret", "get", "tls/secret"], Some(&cert_path));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over-tls\n");
    // Without trusting the certificate the client refuses to talk.
    let out = run(&["secret", "get", "tls/secret"], None);
    assert!(!out.status.success());
}

#[test]
fn cli_param_commands() {
    let server = TestServer::start();
    let run = |args: &[&str]| {
        let out = server.cli().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "param",
        "put",
        "/dev/app/db_password",
        "--value",
        "s3cr3t",
        "--type",
        "SecureString",
        "--tag",
        "Env=dev",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"Version\": 1"), "{out}");
    run(&["param", "put", "/dev/app/url", "--value", "https://x.test", "--type", "String"]);
    let (code, _, err) = run(&["param", "put", "/dev/app/url", "--value", "https://y.test"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("ParameterAlreadyExists") && err.contains("--overwrite"), "{err}");
    run(&["param", "put", "/dev/app/url", "--value", "https://y.test", "--overwrite"]);
    let (_, out, _) = run(&["param", "get", "/dev/app/db_password"]);
    assert_eq!(out, "s3cr3t\n");
    let (_, out, _) = run(&["param", "get", "/dev/app/url:1"]);
    assert_eq!(out, "https://x.test\n");
    let (_, out, _) = run(&["param", "list", "--path", "/dev", "-r", "-o", "table"]);
    assert!(out.contains("/dev/app/db_password") && out.contains("SecureString"), "{out}");
    assert!(!out.contains("s3cr3t"), "values are shown only with --values");
    let (_, out, _) = run(&["param", "list", "--path", "/dev/app", "--values", "-o", "table"]);
    assert!(out.contains("s3cr3t"), "{out}");
    let (_, out, _) = run(&["param", "label", "/dev/app/url", "--parameter-version", "1", "stable"]);
    assert!(out.contains("\"ParameterVersion\": 1"), "{out}");
    let (_, out, _) = run(&["param", "history", "/dev/app/url", "-o", "table"]);
    assert!(out.contains("stable") && !out.contains("https://"), "{out}");
    let (code, _, _) = run(&["param", "delete", "/dev/app/url"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = run(&["param", "get", "/dev/app/url"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("ParameterNotFound"), "{err}");
}

#[test]
fn coffer_kms_cli_manages_keys_rotates_and_rewraps() {
    let server = TestServer::start();
    let run = |args: &[&str]| {
        let out = server.cli().args(args).output().unwrap();
        assert!(out.status.success(), "coffer {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let created: serde_json::Value =
        serde_json::from_str(&run(&["kms", "create", "--description", "app key"])).unwrap();
    let key = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    run(&["kms", "create-alias", "alias/app", &key]);
    let listed = run(&["kms", "list", "-o", "json"]);
    assert!(listed.contains("alias/app") && listed.contains(&key), "{listed}");
    assert!(listed.contains("alias/aws/ssm"), "the default keys exist from the start: {listed}");

    // Encrypt and decrypt through the CLI, with a context.
    let cipher = run(&["kms", "encrypt", "alias/app", "--plaintext", "synthetic-note", "--context", "app=x"]);
    assert_eq!(run(&["kms", "decrypt", &cipher, "--context", "app=x"]), "synthetic-note");
    let out = server.cli().args(["kms", "decrypt", &cipher]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidCiphertextException"));

    // A secret under the key survives a rotation and a re-wrap, unchanged.
    run(&["secret", "create", "app/db", "--value", "synthetic-db", "--kms-key-id", "alias/app"]);
    run(&["kms", "rotate", &key]);
    let report: serde_json::Value = serde_json::from_str(&run(&["kms", "rewrap"])).unwrap();
    assert!(report["Rewrapped"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(run(&["secret", "get", "app/db"]), "synthetic-db");
    let again: serde_json::Value = serde_json::from_str(&run(&["kms", "rewrap"])).unwrap();
    assert_eq!(again["Rewrapped"], 0, "nothing left to move: {again}");

    // Disabled: the secret is unreadable with a clear reason; enabled: readable again.
    run(&["kms", "disable", "alias/app"]);
    let out = server.cli().args(["secret", "get", "app/db"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DecryptionFailure") && err.contains("is disabled"), "{err}");
    run(&["kms", "enable", "alias/app"]);
    assert_eq!(run(&["secret", "get", "app/db"]), "synthetic-db");

    // Deletion is refused while the secret depends on the key, allowed with --force, and cancellable.
    let out = server.cli().args(["kms", "schedule-deletion", &key, "--days", "7"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("KMSInvalidStateException"));
    let scheduled = run(&["kms", "schedule-deletion", &key, "--days", "7", "--force"]);
    assert!(scheduled.contains("PendingDeletion"), "{scheduled}");
    run(&["kms", "cancel-deletion", &key]);
    let described = run(&["kms", "describe", &key, "--query", "KeyMetadata.KeyState"]);
    assert!(described.contains("Disabled"), "{described}");
}
