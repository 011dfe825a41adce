//! External rotators: a webhook receiving exactly a rotation Lambda's four events (served here by a small
//! HTTP handler that does what a Lambda does, through the service), a webhook's failure, and a command
//! that outlives its timeout.

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_crypto::SecretBytes;
use coffer_rotators::external::{ExternalRotator, ExternalTarget};
use coffer_service::secrets::rotation::RotateSecretInput;
use coffer_service::secrets::{
    CreateSecretInput, GetSecretValueInput, PutSecretValueInput, SecretValue, UpdateVersionStageInput,
};
use coffer_service::Service;
use common::{ctx, service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOOK: &str = "arn:aws:lambda:us-east-1:123456789012:function:team-webhook";

async fn current(service: &Service, id: &str) -> (String, String) {
    let out = service
        .get_secret_value(&ctx(), GetSecretValueInput { secret_id: id.into(), ..Default::default() })
        .await
        .unwrap();
    (out.version_id, out.value.bytes().expose_str().unwrap().to_string())
}

/// Reads one HTTP/1.1 request (headers and a Content-Length body).
async fn read_request(stream: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            return (head, buf[end + 4..end + 4 + length].to_vec());
        }
    }
}

/// A webhook that acts as a rotation Lambda, failing `fail_step` with a Lambda error document.
async fn webhook(
    service: Arc<Service>,
    fail_step: Option<&'static str>,
) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rotate", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let events = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let (head, body) = read_request(&mut stream).await;
            assert!(head.starts_with("POST /rotate "), "{head}");
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
            events.lock().unwrap().push(event.clone());
            let step = event["Step"].as_str().unwrap().to_string();
            let arn = event["SecretId"].as_str().unwrap().to_string();
            let token = event["ClientRequestToken"].as_str().unwrap().to_string();
            let (status, answer) = if Some(step.as_str()) == fail_step {
                (
                    "500 Internal Server Error",
                    r#"{"errorMessage":"the vendor API refused the new key","errorType":"ValueError"}"#,
                )
            } else {
                match step.as_str() {
                    "createSecret" => {
                        let input = PutSecretValueInput {
                            secret_id: arn,
                            client_request_token: Some(token.clone()),
                            value: Some(SecretValue::String(SecretBytes::from(format!("from-webhook-{token}")))),
                            version_stages: Some(vec!["AWSPENDING".into()]),
                        };
                        service.put_secret_value(&ctx(), input).await.unwrap();
                    }
                    "finishSecret" => {
                        let (old, _) = current(&service, &arn).await;
                        let input = UpdateVersionStageInput {
                            secret_id: arn,
                            version_stage: "AWSCURRENT".into(),
                            remove_from_version_id: Some(old),
                            move_to_version_id: Some(token),
                        };
                        service.update_secret_version_stage(&ctx(), input).await.unwrap();
                    }
                    _ => {}
                }
                ("200 OK", "{}")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    (url, seen)
}

async fn create(service: &Service, name: &str) -> String {
    service
        .create_secret(
            &ctx(),
            CreateSecretInput {
                name: name.into(),
                client_request_token: Some(uuid::Uuid::new_v4().to_string()),
                value: Some(SecretValue::String(SecretBytes::from("synthetic-original".to_string()))),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .arn
}

fn register(service: &Service, target: ExternalTarget, timeout: Duration) {
    let rotator = ExternalRotator { target, endpoint_url: "http://127.0.0.1:1".into(), role_arn: None, timeout };
    service.rotators().register_arn(HOOK, Arc::new(rotator));
}

async fn rotate(service: &Service, arn: &str) -> String {
    service
        .rotate_secret(
            &ctx(),
            RotateSecretInput { secret_id: arn.into(), rotation_lambda_arn: Some(HOOK.into()), ..Default::default() },
        )
        .await
        .unwrap()
        .version_id
        .unwrap()
}

#[tokio::test]
async fn a_webhook_receives_the_four_lambda_events_and_finishes_the_rotation() {
    let service = service();
    let (url, seen) = webhook(service.clone(), None).await;
    register(&service, ExternalTarget::Webhook(url), Duration::from_secs(10));
    let arn = create(&service, "vendor/api-key").await;
    let token = rotate(&service, &arn).await;

    let events = seen.lock().unwrap().clone();
    let steps: Vec<&str> = events.iter().map(|e| e["Step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["createSecret", "setSecret", "testSecret", "finishSecret"]);
    for event in &events {
        let keys: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["ClientRequestToken", "RotationToken", "SecretId", "Step"], "exactly a Lambda's event");
        assert_eq!(event["SecretId"], arn.as_str());
        assert_eq!(event["ClientRequestToken"], token.as_str());
    }
    assert_eq!(current(&service, &arn).await, (token.clone(), format!("from-webhook-{token}")));
    let rotation = service.describe_secret(&ctx(), &arn).await.unwrap().record.rotation;
    assert!(rotation.last_result.unwrap().succeeded);
    assert!(rotation.in_progress.is_none());
}

#[tokio::test]
async fn a_webhook_failure_is_recorded_with_its_reason_and_current_is_kept() {
    let service = service();
    let (url, _) = webhook(service.clone(), Some("testSecret")).await;
    register(&service, ExternalTarget::Webhook(url), Duration::from_secs(10));
    let arn = create(&service, "vendor/flaky").await;
    let (before, _) = current(&service, &arn).await;
    rotate(&service, &arn).await;
    assert_eq!(current(&service, &arn).await, (before, "synthetic-original".to_string()));
    let result = service.describe_secret(&ctx(), &arn).await.unwrap().record.rotation.last_result.unwrap();
    assert!(!result.succeeded);
    assert_eq!(result.failed_step.as_deref(), Some("testSecret"));
    let message = result.message.unwrap();
    assert!(message.contains("500") && message.contains("the vendor API refused the new key"), "{message}");
}

#[tokio::test]
async fn a_command_that_outlives_its_timeout_fails_the_step() {
    let service = service();
    register(&service, ExternalTarget::Command(vec!["sleep".into(), "30".into()]), Duration::from_millis(300));
    let arn = create(&service, "slow").await;
    let started = std::time::Instant::now();
    rotate(&service, &arn).await;
    assert!(started.elapsed() < Duration::from_secs(10), "the rotator was stopped at its timeout");
    let result = service.describe_secret(&ctx(), &arn).await.unwrap().record.rotation.last_result.unwrap();
    assert_eq!(result.failed_step.as_deref(), Some("createSecret"));
    assert!(result.message.unwrap().contains("did not finish createSecret"));
    assert_eq!(current(&service, &arn).await.1, "synthetic-original");
}
