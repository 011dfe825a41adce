//! External rotators: a command or an HTTPS webhook configured for a RotationLambdaARN, receiving
//! exactly the event a rotation Lambda receives (`{"Step","SecretId","ClientRequestToken",
//! "RotationToken"}`) once per step, so a team's rotation Lambda logic ports unchanged: it calls
//! Coffer back over the AWS API (PutSecretValue with AWSPENDING, UpdateSecretVersionStage at
//! finishSecret) with the endpoint and credentials it is given.
//!
//! Success is exit status 0 (command) or a 2xx answer (webhook). On failure, a Lambda-style
//! `{"errorMessage": "..."}` on standard output or in the answer becomes the recorded reason; nothing
//! else the rotator prints is kept, since it might hold a value.

use std::process::Stdio;
use std::time::Duration;

use coffer_service::secrets::rotation::{RotationJob, RotationStep, Rotator, RotatorError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest error message kept from a rotator.
const MAX_REASON_CHARS: usize = 300;
/// Most output read from a command.
const MAX_OUTPUT_BYTES: u64 = 64 * 1024;

/// How an external rotator is reached.
#[derive(Debug, Clone)]
pub enum ExternalTarget {
    /// A program and its arguments; the event arrives on standard input.
    Command(Vec<String>),
    /// An HTTP(S) URL the event is POSTed to.
    Webhook(String),
}

/// A rotator outside the server.
#[derive(Debug, Clone)]
pub struct ExternalRotator {
    pub target: ExternalTarget,
    /// The server's own endpoint, given to commands as AWS_ENDPOINT_URL.
    pub endpoint_url: String,
    /// A role whose temporary credentials a command receives (as a Lambda's execution role).
    pub role_arn: Option<String>,
    pub timeout: Duration,
}

/// The `errorMessage` of a Lambda-style error document, shortened.
fn error_message(output: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(output).ok()?;
    let message = doc.get("errorMessage")?.as_str()?;
    Some(message.chars().take(MAX_REASON_CHARS).collect())
}

impl ExternalRotator {
    async fn run_command(
        &self,
        argv: &[String],
        step: RotationStep,
        job: &RotationJob<'_>,
    ) -> Result<(), RotatorError> {
        let (program, args) = argv.split_first().ok_or_else(|| RotatorError::new("the rotator command is empty"))?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint_url)
            .env("AWS_REGION", &job.region)
            .env("AWS_DEFAULT_REGION", &job.region)
            .env("COFFER_ROTATION_STEP", step.as_str())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(role) = &self.role_arn {
            let credentials = job.role_credentials(role).await.map_err(|e| {
                RotatorError::new(format!("opening a session of the rotator's role failed: {}", e.message))
            })?;
            let secret = credentials
                .secret_access_key
                .expose_str()
                .map_err(|_| RotatorError::new("the session secret is not text"))?;
            command
                .env("AWS_ACCESS_KEY_ID", &credentials.access_key_id)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env("AWS_SESSION_TOKEN", &credentials.session_token);
        }
        let mut child =
            command.spawn().map_err(|e| RotatorError::new(format!("starting the rotator {program} failed: {e}")))?;
        let event = job.event(step).to_string();
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A rotator that does not read its input is fine: ignore a closed pipe.
                let _ = stdin.write_all(event.as_bytes()).await;
            }
            let mut output = Vec::new();
            if let Some(stdout) = child.stdout.take() {
                let _ = stdout.take(MAX_OUTPUT_BYTES).read_to_end(&mut output).await;
            }
            let status = child.wait().await;
            (status, output)
        };
        let (status, output) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            RotatorError::new(format!("the rotator did not finish {} within {:?}", step.as_str(), self.timeout))
        })?;
        let status = status.map_err(|e| RotatorError::new(format!("waiting for the rotator failed: {e}")))?;
        if status.success() {
            return Ok(());
        }
        let code = status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
        Err(RotatorError::new(match error_message(&output) {
            Some(reason) => format!("the rotator failed {} (exit {code}): {reason}", step.as_str()),
            None => format!("the rotator failed {} (exit {code})", step.as_str()),
        }))
    }

    async fn call_webhook(&self, url: &str, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| RotatorError::new(format!("building the webhook client failed: {e}")))?;
        let answer = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Coffer-Rotation-Step", step.as_str())
            .body(job.event(step).to_string())
            .send()
            .await
            .map_err(|e| RotatorError::new(format!("calling the rotation webhook failed: {}", e.without_url())))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.bytes().await.unwrap_or_default();
        Err(RotatorError::new(match error_message(&body) {
            Some(reason) => format!("the rotation webhook failed {} ({status}): {reason}", step.as_str()),
            None => format!("the rotation webhook failed {} ({status})", step.as_str()),
        }))
    }
}

#[async_trait::async_trait]
impl Rotator for ExternalRotator {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        match &self.target {
            ExternalTarget::Command(argv) => self.run_command(argv, step, job).await,
            ExternalTarget::Webhook(url) => self.call_webhook(url, step, job).await,
        }
    }

    /// Like a rotation Lambda, the rotator moves AWSCURRENT itself at finishSecret.
    fn service_finishes(&self) -> bool {
        false
    }
}
