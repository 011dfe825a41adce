//! The PostgreSQL rotators against a real PostgreSQL server: a private instance of this machine's
//! PostgreSQL with password (SCRAM) authentication, so a password that stopped working is refused for
//! real (the shared server trusts every local connection). Started as the `postgres` user from the
//! installed binaries; the tests fail, never skip, when it cannot start.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use coffer_testpg::{Auth, PrivatePostgres};

use coffer_crypto::SecretBytes;
use coffer_service::secrets::rotation::RotateSecretInput;
use coffer_service::secrets::{CreateSecretInput, GetSecretValueInput, SecretValue};
use coffer_service::Service;
use common::{ctx, service};

const SUPERUSER_PASSWORD: &str = "synthetic-superuser-password";
const SINGLE: &str = "arn:aws:lambda:us-east-1:123456789012:function:coffer-postgres-single-user";
const ALTERNATING: &str = "arn:aws:lambda:us-east-1:123456789012:function:coffer-postgres-alternating-users";

/// A private PostgreSQL instance with password authentication, stopped and removed on drop.
struct Instance {
    /// Kept for its lifetime: dropping it stops the server.
    _server: PrivatePostgres,
    port: u16,
}

impl Instance {
    fn start() -> Instance {
        let server = PrivatePostgres::start(Auth::Password(SUPERUSER_PASSWORD));
        let port = server.port();
        Instance { _server: server, port }
    }

    async fn connect(&self, user: &str, password: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    async fn superuser(&self) -> tokio_postgres::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.connect("postgres", SUPERUSER_PASSWORD).await {
                Ok(client) => return client,
                Err(e) if Instant::now() > deadline => panic!("the private PostgreSQL did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn logs_in(&self, user: &str, password: &str) -> bool {
        match self.connect(user, password).await {
            Ok(client) => client.query_one("SELECT 1", &[]).await.is_ok(),
            Err(_) => false,
        }
    }
}

async fn create(service: &Service, name: &str, value: serde_json::Value) -> String {
    service
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: name.into(),
                client_request_token: Some(uuid::Uuid::new_v4().to_string()),
                value: Some(SecretValue::String(SecretBytes::from(value.to_string()))),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .arn
}

async fn value(service: &Service, id: &str, stage: &str) -> serde_json::Value {
    let out = service
        .get_secret_value(
            &ctx(),
            GetSecretValueInput { secret_id: id.into(), version_stage: Some(stage.into()), ..Default::default() },
        )
        .await
        .unwrap();
    serde_json::from_str(out.value.bytes().expose_str().unwrap()).unwrap()
}

async fn rotate(service: &Service, id: &str, lambda: &str) {
    service
        .rotate_secret(
            &ctx(),
            RotateSecretInput { secret_id: id.into(), rotation_lambda_arn: Some(lambda.into()), ..Default::default() },
        )
        .await
        .unwrap();
}

fn credentials(v: &serde_json::Value) -> (String, String) {
    (v["username"].as_str().unwrap().to_string(), v["password"].as_str().unwrap().to_string())
}

fn database_secret(instance: &Instance, user: &str, password: &str) -> serde_json::Value {
    serde_json::json!({
        "engine": "postgres",
        "host": "127.0.0.1",
        "port": instance.port,
        "username": user,
        "password": password,
        "dbname": "postgres",
    })
}

#[tokio::test]
async fn single_user_rotation_changes_the_password_and_the_old_one_stops_working() {
    let pg = Instance::start();
    let admin = pg.superuser().await;
    admin.batch_execute("CREATE ROLE app_user LOGIN PASSWORD 'synthetic-app-password-0'").await.unwrap();
    let service = service();
    let arn = create(&service, "db/app", database_secret(&pg, "app_user", "synthetic-app-password-0")).await;
    assert!(pg.logs_in("app_user", "synthetic-app-password-0").await);

    rotate(&service, &arn, SINGLE).await;
    let current = value(&service, &arn, "AWSCURRENT").await;
    let (user, password) = credentials(&current);
    assert_eq!(user, "app_user");
    assert_ne!(password, "synthetic-app-password-0");
    assert_eq!(password.len(), 32);
    assert!(!password.contains(['\'', '"', '\\', '@', '/', ':']), "no characters that break connection strings");
    assert!(pg.logs_in("app_user", &password).await, "the new password works");
    assert!(!pg.logs_in("app_user", "synthetic-app-password-0").await, "the old password stopped working");
    assert_eq!(credentials(&value(&service, &arn, "AWSPREVIOUS").await).1, "synthetic-app-password-0");
    let rotation = service.describe_secret(&ctx(), &arn).await.unwrap().record.rotation;
    assert!(rotation.last_result.unwrap().succeeded);

    // A second rotation logs in with the password the first one set.
    rotate(&service, &arn, SINGLE).await;
    let (_, newer) = credentials(&value(&service, &arn, "AWSCURRENT").await);
    assert_ne!(newer, password);
    assert!(pg.logs_in("app_user", &newer).await);
    assert!(!pg.logs_in("app_user", &password).await);
}

#[tokio::test]
async fn a_rotation_that_cannot_log_in_leaves_the_secret_as_it_was() {
    let pg = Instance::start();
    let admin = pg.superuser().await;
    admin.batch_execute("CREATE ROLE drifted LOGIN PASSWORD 'synthetic-changed-out-of-band'").await.unwrap();
    let service = service();
    // The stored password no longer matches the database: setSecret cannot log in.
    let arn = create(&service, "db/drifted", database_secret(&pg, "drifted", "synthetic-stale-password")).await;
    rotate(&service, &arn, SINGLE).await;
    let current = value(&service, &arn, "AWSCURRENT").await;
    assert_eq!(credentials(&current).1, "synthetic-stale-password", "AWSCURRENT untouched");
    let rotation = service.describe_secret(&ctx(), &arn).await.unwrap().record.rotation;
    let result = rotation.last_result.unwrap();
    assert!(!result.succeeded);
    assert_eq!(result.failed_step.as_deref(), Some("setSecret"));
    let message = result.message.unwrap();
    assert!(message.contains("drifted") && message.contains("failed"), "{message}");
    assert!(!message.contains("synthetic-stale-password"), "no password in the recorded reason");
    assert!(pg.logs_in("drifted", "synthetic-changed-out-of-band").await, "the database was not changed");
}

#[tokio::test]
async fn alternating_users_keep_the_current_user_working_throughout() {
    let pg = Instance::start();
    let admin = pg.superuser().await;
    admin.batch_execute("CREATE ROLE svc LOGIN PASSWORD 'synthetic-svc-password-0'").await.unwrap();
    admin.batch_execute("CREATE TABLE orders (id int); GRANT SELECT ON orders TO svc").await.unwrap();
    let service = service();
    let master = create(&service, "db/master", database_secret(&pg, "postgres", SUPERUSER_PASSWORD)).await;
    let mut svc = database_secret(&pg, "svc", "synthetic-svc-password-0");
    svc["masterarn"] = serde_json::Value::String(master);
    let arn = create(&service, "db/svc", svc).await;

    rotate(&service, &arn, ALTERNATING).await;
    let (user, password) = credentials(&value(&service, &arn, "AWSCURRENT").await);
    assert_eq!(user, "svc_clone");
    assert!(pg.logs_in("svc_clone", &password).await, "the new user logs in");
    assert!(pg.logs_in("svc", "synthetic-svc-password-0").await, "the previous user still works");
    let clone = pg.connect("svc_clone", &password).await.unwrap();
    clone.query("SELECT * FROM orders", &[]).await.expect("the clone has the original user's privileges");

    // The next rotation goes back to the original user with a new password; the clone keeps working.
    rotate(&service, &arn, ALTERNATING).await;
    let (user2, password2) = credentials(&value(&service, &arn, "AWSCURRENT").await);
    assert_eq!(user2, "svc");
    assert_ne!(password2, "synthetic-svc-password-0");
    assert!(pg.logs_in("svc", &password2).await);
    assert!(!pg.logs_in("svc", "synthetic-svc-password-0").await);
    assert!(pg.logs_in("svc_clone", &password).await, "the previous (clone) user still works");
    assert_eq!(credentials(&value(&service, &arn, "AWSPREVIOUS").await), ("svc_clone".to_string(), password));
}
