//! The rotators that need nothing outside the service: a generated value (a password, a token, or
//! one field of a JSON secret) and a signing key with an overlap period.
//!
//! Settings come from RotateSecret's ExternalSecretRotationMetadata, so the stock aws CLI configures
//! them: `field` (the JSON field to regenerate), `length`, `exclude_characters`,
//! `exclude_punctuation`; for signing keys `bytes` (default 32), `alg` (default HS256) and
//! `grace_period_hours` (how long AWSPREVIOUS stays readable; default 24).

use base64::Engine;
use coffer_crypto::SecretBytes;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{RotationJob, RotationStep, Rotator, RotatorError};
use crate::secrets::SecretValue;

/// `coffer-generated`: a new random value under GetRandomPassword's rules.
pub struct GeneratedValue;

/// `coffer-signing-key`: a new random HMAC/JWT signing key; the previous one stays readable as
/// AWSPREVIOUS for the grace period so verifiers accept both while tokens signed with it expire.
pub struct SigningKey;

/// Nothing to do outside the service: createSecret writes the value unless this token's version
/// exists already (a resumed rotation), testSecret checks it is readable.
async fn create_once(
    job: &RotationJob<'_>,
    make: impl FnOnce(Option<&SecretValue>) -> Result<SecretValue, RotatorError>,
) -> Result<(), RotatorError> {
    if job.read_pending().await?.is_some() {
        return Ok(());
    }
    let current = job.read_stage(super::AWSCURRENT).await?;
    let value = make(current.as_ref().map(|c| &c.value))?;
    job.put_pending(value).await?;
    Ok(())
}

async fn test_readable(job: &RotationJob<'_>) -> Result<(), RotatorError> {
    match job.read_pending().await? {
        Some(_) => Ok(()),
        None => Err(RotatorError::new("the pending version is missing")),
    }
}

#[async_trait::async_trait]
impl Rotator for GeneratedValue {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        match step {
            RotationStep::CreateSecret => {
                create_once(job, |current| {
                    let password = job.generate_password("")?;
                    let field = job.setting("field");
                    match current {
                        Some(SecretValue::String(text)) => replace_field(text, field, &password),
                        Some(SecretValue::Binary(_)) => Ok(SecretValue::Binary(random_bytes(job)?)),
                        None if field.is_some() => {
                            Err(RotatorError::new("the secret has no current value to regenerate a field of"))
                        }
                        None => Ok(SecretValue::String(password)),
                    }
                })
                .await
            }
            RotationStep::SetSecret => Ok(()),
            RotationStep::TestSecret => test_readable(job).await,
            RotationStep::FinishSecret => Ok(()),
        }
    }
}

/// The current value with one field regenerated: `field` names it; without it a JSON object's
/// `password` field is regenerated, and any other value is replaced whole.
fn replace_field(
    current: &SecretBytes,
    field: Option<&str>,
    password: &SecretBytes,
) -> Result<SecretValue, RotatorError> {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> =
        current.expose_str().ok().and_then(|t| serde_json::from_str(t).ok());
    let new_password = password.expose_str().map_err(|_| RotatorError::new("the generated value is not text"))?;
    match (parsed, field) {
        (Some(mut object), field) if field.is_some() || object.contains_key("password") => {
            let field = field.unwrap_or("password");
            object.insert(field.to_string(), serde_json::Value::String(new_password.to_string()));
            let text = Zeroizing::new(
                serde_json::to_string(&object).map_err(|_| RotatorError::new("the secret could not be re-encoded"))?,
            );
            zeroize_map(object);
            Ok(SecretValue::String(SecretBytes::from_str(&text)))
        }
        (None, Some(field)) => Err(RotatorError::new(format!(
            "the rotator setting field={field} needs a secret whose value is a JSON object"
        ))),
        _ => Ok(SecretValue::String(password.clone())),
    }
}

/// Clears the string values of a parsed secret before the map is dropped.
fn zeroize_map(mut object: serde_json::Map<String, serde_json::Value>) {
    for value in object.values_mut() {
        if let serde_json::Value::String(s) = value {
            zeroize::Zeroize::zeroize(s);
        }
    }
}

fn random_bytes(job: &RotationJob<'_>) -> Result<SecretBytes, RotatorError> {
    let n: usize = match job.setting("bytes").or(job.setting("length")) {
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| (16..=4096).contains(n))
            .ok_or_else(|| RotatorError::new("the rotator setting bytes must be a number from 16 to 4096"))?,
        None => 32,
    };
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Ok(SecretBytes::new(bytes.to_vec()))
}

#[async_trait::async_trait]
impl Rotator for SigningKey {
    async fn run_step(&self, step: RotationStep, job: &RotationJob<'_>) -> Result<(), RotatorError> {
        match step {
            RotationStep::CreateSecret => {
                create_once(job, |current| {
                    let key = random_bytes(job)?;
                    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.expose()));
                    let json_form = match current {
                        None => true,
                        Some(SecretValue::String(text)) => text.expose().first() == Some(&b'{'),
                        Some(SecretValue::Binary(_)) => return Ok(SecretValue::Binary(key)),
                    };
                    if !json_form {
                        return Ok(SecretValue::String(SecretBytes::from_str(&encoded)));
                    }
                    let created = time::OffsetDateTime::from_unix_timestamp(job.now() / 1000)
                        .ok()
                        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
                    // Written by hand so the key exists only in zeroized buffers (base64 needs no escaping).
                    let quoted = |v: &str| serde_json::Value::String(v.to_string()).to_string();
                    let document = Zeroizing::new(format!(
                        r#"{{"kid":{},"alg":{},"key":"{}","created":{}}}"#,
                        quoted(&job.token),
                        quoted(job.setting("alg").unwrap_or("HS256")),
                        encoded.as_str(),
                        created.map(|c| quoted(&c)).unwrap_or_else(|| "null".into()),
                    ));
                    Ok(SecretValue::String(SecretBytes::from_str(&document)))
                })
                .await
            }
            RotationStep::SetSecret => Ok(()),
            RotationStep::TestSecret => test_readable(job).await,
            RotationStep::FinishSecret => Ok(()),
        }
    }

    fn default_grace_hours(&self) -> Option<i64> {
        Some(24)
    }
}
