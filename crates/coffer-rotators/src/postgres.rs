//! PostgreSQL user rotation, as AWS's rotation templates do it. The secret is the JSON
//! `{"engine":"postgres","host","port","username","password","dbname"}`.
//!
//! - single user (`coffer-postgres-single-user`): the user changes its own password. setSecret logs
//!   in with the current password (or the previous one, after an interrupted rotation) and runs
//!   `ALTER USER ... WITH PASSWORD`; between setSecret and finishSecret only the new password works,
//!   as with AWS's template.
//! - alternating users (`coffer-postgres-alternating-users`): two users (`name` and `name_clone`) take
//!   turns; the secret's `masterarn` names a secret with a user allowed to create roles, which creates
//!   the other user (a member of the first, so it has its privileges) or sets its password. The
//!   current user keeps working throughout, so applications never see a failed login.

use std::time::Duration;

use coffer_crypto::SecretBytes;
use coffer_service::secrets::rotation::{RotationJob, RotationStep, Rotator, RotatorError};
use coffer_service::secrets::SecretValue;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

/// Characters never put in a generated database password: they break connection strings and SQL
/// literals (AWS's templates exclude the same ones).
const EXCLUDED_CHARACTERS: &str = ":/@\"'\\";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CLONE_SUFFIX: &str = "_clone";

/// The connection fields of a database secret. The password is zeroized on drop.
#[derive(Deserialize)]
struct DatabaseSecret {
    #[serde(default)]
    engine: Option<String>,
    host: String,
    #[serde(default)]
    port: Option<serde_json::Value>,
    username: String,
    password: String,
    #[serde(default)]
    dbname: Option<String>,
    #[serde(default)]
    masterarn: Option<String>,
}

impl Drop for DatabaseSecret {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

impl DatabaseSecret {
    fn parse(value: &SecretValue, which: &str) -> Result<DatabaseSecret, RotatorError> {
        let SecretValue::String(text) = value else {
            return Err(RotatorError::new(format!("the {which} secret is binary, not a JSON database secret")));
        };
        let text = text.expose_str().map_err(|_| RotatorError::new(format!("the {which} secret is not UTF-8")))?;
        let parsed: DatabaseSecret = serde_json::from_str(text).map_err(|_| {
            RotatorError::new(format!(
                "the {which} secret is not a JSON database secret with host, username and password"
            ))
        })?;
        if let Some(engine) = &parsed.engine {
            if engine != "postgres" && engine != "postgresql" {
                return Err(RotatorError::new(format!("the {which} secret's engine is {engine}, not postgres")));
            }
        }
        Ok(parsed)
    }

    fn port(&self) -> Result<u16, RotatorError> {
        match &self.port {
            None => Some(5432),
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            Some(_) => None,
        }
        .ok_or_else(|| RotatorError::new("the secret's port is not a port number"))
    }

    /// Logs in and returns a client whose connection task runs in the background.
    async fn connect(&self) -> Result<tokio_postgres::Client, RotatorError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port()?)
            .user(&self.username)
            .password(self.password.as_bytes())
            .dbname(self.dbname.as_deref().unwrap_or("postgres"))
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("coffer-rotation");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
            // The driver's error names the server and the reason (authentication failed, refused), never
            // the password.
            RotatorError::new(format!(
                "logging in to {}:{} as {} failed: {}",
                self.host,
                self.port().unwrap_or(0),
                self.username,
                reason(&e)
            ))
        })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// The same secret with another user and password, as JSON (zeroized buffer).
    fn with_credentials(
        current: &SecretValue,
        username: &str,
        password: &SecretBytes,
    ) -> Result<SecretValue, RotatorError> {
        let SecretValue::String(text) = current else {
            return Err(RotatorError::new("the current secret is binary"));
        };
        let text = text.expose_str().map_err(|_| RotatorError::new("the current secret is not UTF-8"))?;
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|_| RotatorError::new("the current secret is not a JSON object"))?;
        let new_password =
            password.expose_str().map_err(|_| RotatorError::new("the generated password is not text"))?;
        object.insert("username".into(), username.into());
        object.insert("password".into(), new_password.into());
        let encoded = Zeroizing::new(
            serde_json::to_string(&object).map_err(|_| RotatorError::new("the secret could not be re-encoded"))?,
        );
        for value in object.values_mut() {
            if let serde_json::Value::String(s) = value {
                s.zeroize();
            }
        }
        Ok(SecretValue::String(SecretBytes::from_str(&encoded)))
    }
}

fn reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// `"name"` with embedded quotes doubled.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal for the password (role statements take no parameters). Generated passwords never
/// hold a quote or backslash; doubling quotes keeps any other value a literal.
fn quote_literal(value: &str) -> Zeroizing<String> {
    Zeroizing::new(format!("'{}'", value.replace('\'', "''")))
}

async fn set_password(
    client: &tokio_postgres::Client,
    username: &str,
    password: &str,
    create: bool,
    member_of: Option<&str>,
) -> Result<(), RotatorError> {
    let literal = quote_literal(password);
    let statement = Zeroizing::new(if create {
        format!("CREATE ROLE {} WITH LOGIN PASSWORD {}", quote_identifier(username), literal.as_str())
    } else {
        format!("ALTER USER {} WITH PASSWORD {}", quote_identifier(username), literal.as_str())
    });
    client
        .batch_execute(&statement)
        .await
        .map_err(|e| RotatorError::new(format!("setting the password of {username} failed: {}", reason(&e))))?;
    if let Some(role) = member_of {
        let grant = format!("GRANT {} TO {}", quote_identifier(role), quote_identifier(username));
        client
            .batch_execute(&grant)
            .await
            .map_err(|e| RotatorError::new(format!("granting {role} to {username} failed: {}", reason(&e))))?;
    }
    Ok(())
}

async fn current_and_pending(job: &RotationJob<'_>) -> Result<(DatabaseSecret, DatabaseSecret), RotatorError> {
    let current =
        job.read_stage("AWSCURRENT").await?.ok_or_else(|| RotatorError::new("the secret has no AWSCURRENT version"))?;
    let pending = job.read_pending().await?.ok_or_else(|| RotatorError::new("the pending version is missing"))?;
    Ok((DatabaseSecret::parse(&current.value, "current")?, DatabaseSecret::parse(&pending.value, "pending")?))
}

/// createSecret for both strategies: a new password (and, alternating, the other user), unless this
/// token's version exists already.
async fn create(job: &RotationJob<'_>, alternate: bool) -> Result<(), RotatorError> {
    if job.read_pending().await?.is_some() {
        return Ok(());
    }
    let current =
        job.read_stage("AWSCURRENT").await?.ok_or_else(|| RotatorError::new("the secret has no AWSCURRENT version"))?;
    let parsed = DatabaseSecret::parse(&current.value, "current")?;
    if alternate && parsed.masterarn.is_none() {
        return Err(RotatorError::new("the alternating-users strategy needs masterarn in the secret"));
    }
    let username = if !alternate {
        parsed.username.clone()
    } else if let Some(base) = parsed.username.strip_suffix(CLONE_SUFFIX) {
        base.to_string()
    } else {
        format!("{}{CLONE_SUFFIX}", parsed.username)
    };
    let password = job.generate_password(EXCLUDED_CHARACTERS)?;
    let value = DatabaseSecret::with_credentials(&current.value, &username, &password)?;
    job.put_pending(value).await?;
    Ok(())
}

/// `coffer-postgres-single-user`.
pub struct PostgresSingleUser;

#[async_trait::async_trait]
impl Rotator for PostgresSingleUser {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        match step {
            RotationStep::CreateSecret => create(job, false).await,
            RotationStep::SetSecret => {
                let (current, pending) = current_and_pending(job).await?;
                // Already set (a resumed rotation): nothing to do.
                if pending.connect().await.is_ok() {
                    return Ok(());
                }
                let client = match current.connect().await {
                    Ok(client) => client,
                    Err(first) => {
                        // An earlier rotation may have set a password it never finished with.
                        let previous = job.read_stage("AWSPREVIOUS").await?;
                        let previous =
                            previous.as_ref().map(|p| DatabaseSecret::parse(&p.value, "previous")).transpose()?;
                        match previous {
                            Some(p) => p.connect().await.map_err(|_| first)?,
                            None => return Err(first),
                        }
                    }
                };
                set_password(&client, &pending.username, &pending.password, false, None).await
            }
            RotationStep::TestSecret => test(job).await,
            RotationStep::FinishSecret => Ok(()),
        }
    }
}

/// `coffer-postgres-alternating-users`.
pub struct PostgresAlternatingUsers;

#[async_trait::async_trait]
impl Rotator for PostgresAlternatingUsers {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        match step {
            RotationStep::CreateSecret => create(job, true).await,
            RotationStep::SetSecret => {
                let (current, pending) = current_and_pending(job).await?;
                let master_arn = current
                    .masterarn
                    .clone()
                    .ok_or_else(|| RotatorError::new("the alternating-users strategy needs masterarn in the secret"))?;
                let master = job.read_other(&master_arn).await.map_err(|e| {
                    RotatorError::new(format!("reading the master secret {master_arn} failed: {}", e.message))
                })?;
                let master = DatabaseSecret::parse(&master.value, "master")?;
                let client = master.connect().await?;
                let exists = client
                    .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&pending.username])
                    .await
                    .map_err(|e| RotatorError::new(format!("looking up {} failed: {}", pending.username, reason(&e))))?
                    .is_some();
                // The clone is a member of the original user (so it has its privileges); the original
                // needs no grant when it takes its turn again.
                let base = pending.username.strip_suffix(CLONE_SUFFIX).map(|_| current.username.as_str());
                let member_of = if exists { None } else { base };
                set_password(&client, &pending.username, &pending.password, !exists, member_of).await
            }
            RotationStep::TestSecret => test(job).await,
            RotationStep::FinishSecret => Ok(()),
        }
    }
}

/// testSecret: log in with the pending credentials and run a query.
async fn test(job: &RotationJob<'_>) -> Result<(), RotatorError> {
    let pending = job.read_pending().await?.ok_or_else(|| RotatorError::new("the pending version is missing"))?;
    let pending = DatabaseSecret::parse(&pending.value, "pending")?;
    let client = pending.connect().await?;
    client
        .query_one("SELECT now()", &[])
        .await
        .map_err(|e| RotatorError::new(format!("the test query failed: {}", reason(&e))))?;
    Ok(())
}
