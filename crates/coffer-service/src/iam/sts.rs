//! STS: temporary credentials (AssumeRole, GetSessionToken) and TOTP MFA devices.
//!
//! Session tokens are stateless: the token is the session's claims and secret access key, sealed
//! under the master key (AES-256-GCM envelope, fixed AAD). Any node over the same data opens it; an
//! altered token fails to open; expiry is checked on every request. A role deleted (or deleted and
//! re-created) stops its sessions: authorization compares the role's unique id with the session's.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use coffer_crypto::SecretBytes;
use coffer_store::IamWrite;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::model::*;
use super::ops::{CreatedMfaDevice, MfaDeviceInfo};
use crate::context::{Principal, PrincipalKind, RequestContext, SessionInfo};
use crate::credentials::Credential;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::iam::Access;
use crate::Service;

const TOKEN_PREFIX: &str = "CFS1";
const TOKEN_AAD: &[u8] = b"coffer sts session v1";
const SECRET_LEN: usize = 40;
/// TOTP: RFC 6238 with SHA-1, 30-second steps, 6 digits — what authenticator apps use.
const TOTP_STEP_SECONDS: i64 = 30;
/// Beyond this many cached sessions the cache starts over.
const MAX_CACHED_SESSIONS: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub struct AssumeRoleInput {
    pub role_arn: String,
    pub role_session_name: String,
    pub duration_seconds: Option<i64>,
    pub serial_number: Option<String>,
    pub token_code: Option<String>,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRoleUser {
    /// `AROA…:session-name`.
    pub assumed_role_id: String,
    pub arn: String,
}

/// Temporary credentials: shown once to the caller.
#[derive(Debug)]
pub struct TemporaryCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretBytes,
    pub session_token: String,
    /// Milliseconds since the epoch.
    pub expiration: i64,
    pub assumed_role: Option<AssumedRoleUser>,
}

/// What a session token carries besides its secret.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The access key id the token goes with.
    k: String,
    /// "role" or "user".
    t: String,
    /// The role or user name.
    n: String,
    /// The role session name.
    #[serde(default)]
    s: String,
    /// The unique id of the role or user when the session was opened.
    e: String,
    /// The principal's ARN (the session ARN for roles).
    p: String,
    i: i64,
    x: i64,
    m: bool,
}

/// Who a new session is for.
struct SessionSubject {
    /// "role", "user" or "root".
    kind: &'static str,
    name: String,
    session_name: String,
    entity_id: String,
    arn: String,
    mfa: bool,
}

#[derive(Default)]
pub(crate) struct SessionCache(RwLock<HashMap<String, Arc<Credential>>>);

/// `ASIA` + 16 characters: AWS's shape for temporary access key ids.
fn new_session_key_id(rng: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..16).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    format!("ASIA{tail}")
}

fn new_session_secret(rng: &mut impl rand::Rng) -> SecretBytes {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    SecretBytes::new((0..SECRET_LEN).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())]).collect())
}

/// RFC 4648 base32 without padding, for TOTP seeds.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(ALPHABET[((buffer >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The 6-digit TOTP code of a seed for a time step (RFC 6238 / RFC 4226 dynamic truncation).
pub fn totp_code(seed: &[u8], step: u64) -> String {
    let Ok(mut mac) = <Hmac<sha1::Sha1> as Mac>::new_from_slice(seed) else { return String::new() };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    format!("{:06}", value % 1_000_000)
}

fn code_matches(seed: &[u8], step: u64, code: &str) -> bool {
    let expected = totp_code(seed, step);
    expected.len() == code.len() && bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
}

fn mfa_aad(serial: &str) -> Vec<u8> {
    format!("coffer mfa v1\n{serial}").into_bytes()
}

fn invalid_code() -> ServiceError {
    ServiceError::new(ErrorKind::AccessDenied, "MultiFactorAuthentication failed with invalid MFA one time pass code. ")
}

fn check_code_shape(code: &str) -> ServiceResult<()> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ServiceError::validation(
            "1 validation error detected: Value at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]* and have length 6",
        ))
    }
}

impl Service {
    fn current_step(&self) -> u64 {
        (self.clock.now_millis().div_euclid(1000) / TOTP_STEP_SECONDS).max(0) as u64
    }

    fn open_seed(&self, serial: &str, sealed: &str) -> ServiceResult<SecretBytes> {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| ServiceError::internal("an MFA device record is damaged"))?;
        self.keyring
            .open(&blob, &mfa_aad(serial))
            .map_err(|_| ServiceError::internal("an MFA device could not be opened"))
    }

    // ---- MFA devices ----

    pub async fn create_virtual_mfa_device(
        &self,
        ctx: &RequestContext,
        name: &str,
        path: Option<String>,
    ) -> ServiceResult<CreatedMfaDevice> {
        check_entity_name("virtualMFADeviceName", name, 226)?;
        let path = path.unwrap_or_else(|| "/".into());
        check_path(&path)?;
        let serial = mfa_arn(&self.config.account_id, &path, name);
        self.authorize(ctx, &Access::new("iam:CreateVirtualMFADevice", &serial)).await?;
        let mut seed = [0u8; 20];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        let seed = SecretBytes::new(seed.to_vec());
        let sealed = self
            .keyring
            .seal(&mut rand::rngs::OsRng, seed.expose(), &mfa_aad(&serial))
            .map_err(|_| ServiceError::new(ErrorKind::EncryptionFailure, "sealing an MFA seed failed"))?;
        let doc = MfaDoc {
            path,
            created: self.clock.now_millis(),
            sealed_seed: base64::engine::general_purpose::STANDARD.encode(sealed),
            ..Default::default()
        };
        let document = serde_json::to_vec(&doc).map_err(|_| ServiceError::internal("encoding an MFA device failed"))?;
        self.commit_iam(ctx, |snap| {
            if snap.mfa_devices.values().any(|d| d.name == name) {
                return Err(ServiceError::already_exists("MFADevice entity at the same path and name already exists."));
            }
            Ok(vec![IamWrite::Create(coffer_store::IamEntityRecord {
                kind: coffer_store::IamKind::MfaDevice,
                name: name.to_string(),
                document: document.clone(),
                revision: 1,
            })])
        })
        .await?;
        let b32 = base32(seed.expose());
        let uri = format!("otpauth://totp/Coffer:{name}@{}?secret={b32}&issuer=Coffer", self.config.account_id);
        Ok(CreatedMfaDevice { serial, base32_seed: SecretBytes::from(b32), otpauth_uri: SecretBytes::from(uri) })
    }

    /// EnableMFADevice: two consecutive codes prove the user's app holds the seed.
    pub async fn enable_mfa_device(
        &self,
        ctx: &RequestContext,
        user: &str,
        serial: &str,
        code1: &str,
        code2: &str,
    ) -> ServiceResult<()> {
        check_code_shape(code1)?;
        check_code_shape(code2)?;
        let snap = self.iam_snapshot().await?;
        let user_arn =
            snap.users.get(user).map(|u| u.arn.clone()).unwrap_or_else(|| user_arn(&self.config.account_id, "/", user));
        self.authorize(ctx, &Access::new("iam:EnableMFADevice", &user_arn)).await?;
        if !snap.users.contains_key(user) {
            return Err(ServiceError::not_found(format!("The user with name {user} cannot be found.")));
        }
        let device = snap.mfa_devices.get(serial).ok_or_else(|| {
            ServiceError::not_found(format!("VirtualMFADevice with serial number {serial} doesn't exist."))
        })?;
        if device.doc.enabled.is_some() {
            return Err(ServiceError::new(ErrorKind::AlreadyExists, "MFA Device is already in use."));
        }
        let seed = self.open_seed(serial, &device.doc.sealed_seed)?;
        let now = self.current_step();
        // Both codes, consecutive, within the last five minutes (the app's clock may lag).
        let step = (now.saturating_sub(10)..=now + 1)
            .rev()
            .find(|&s| code_matches(seed.expose(), s, code1) && code_matches(seed.expose(), s + 1, code2))
            .ok_or_else(|| {
                ServiceError::new(ErrorKind::InvalidAuthenticationCode, "Authentication code for device is not valid.")
            })?;
        let name = device.name.clone();
        let enabled_at = self.clock.now_millis();
        self.commit_iam(ctx, |snap| {
            let d =
                snap.mfa_devices.get(serial).ok_or_else(|| ServiceError::not_found("The MFA device was deleted."))?;
            if d.doc.enabled.is_some() {
                return Err(ServiceError::new(ErrorKind::AlreadyExists, "MFA Device is already in use."));
            }
            let mut doc = d.doc.clone();
            doc.user = Some(user.to_string());
            doc.enabled = Some(enabled_at);
            doc.last_step = step + 1;
            Ok(vec![mfa_update(&name, &doc, d.revision)?])
        })
        .await
    }

    pub async fn deactivate_mfa_device(&self, ctx: &RequestContext, user: &str, serial: &str) -> ServiceResult<()> {
        let arn = user_arn(&self.config.account_id, "/", user);
        let arn = self.iam_snapshot().await?.users.get(user).map(|u| u.arn.clone()).unwrap_or(arn);
        self.authorize(ctx, &Access::new("iam:DeactivateMFADevice", &arn)).await?;
        self.commit_iam(ctx, |snap| {
            let d = snap.mfa_devices.get(serial).filter(|d| d.doc.user.as_deref() == Some(user)).ok_or_else(|| {
                ServiceError::not_found(format!("MFA Device with serial number {serial} does not exist."))
            })?;
            let mut doc = d.doc.clone();
            doc.user = None;
            doc.enabled = None;
            Ok(vec![mfa_update(&d.name, &doc, d.revision)?])
        })
        .await
    }

    pub async fn delete_virtual_mfa_device(&self, ctx: &RequestContext, serial: &str) -> ServiceResult<()> {
        self.authorize(ctx, &Access::new("iam:DeleteVirtualMFADevice", serial)).await?;
        self.commit_iam(ctx, |snap| {
            let d = snap.mfa_devices.get(serial).ok_or_else(|| {
                ServiceError::not_found(format!("VirtualMFADevice with serial number {serial} doesn't exist."))
            })?;
            if d.doc.enabled.is_some() {
                return Err(ServiceError::new(
                    ErrorKind::DeleteConflict,
                    "MFA device is still in use; deactivate it first.",
                ));
            }
            Ok(vec![IamWrite::Delete {
                kind: coffer_store::IamKind::MfaDevice,
                name: d.name.clone(),
                expected_revision: d.revision,
            }])
        })
        .await
    }

    /// ListMFADevices: the devices enabled for a user (the caller when none is named).
    pub async fn list_mfa_devices(
        &self,
        ctx: &RequestContext,
        user: Option<String>,
    ) -> ServiceResult<Vec<MfaDeviceInfo>> {
        let user = match (user, &ctx.principal.kind) {
            (Some(u), _) => u,
            (None, PrincipalKind::User { name }) => name.clone(),
            (None, _) => String::new(),
        };
        let snap = self.iam_snapshot().await?;
        let arn = snap
            .users
            .get(&user)
            .map(|u| u.arn.clone())
            .unwrap_or_else(|| user_arn(&self.config.account_id, "/", &user));
        self.authorize(ctx, &Access::new("iam:ListMFADevices", &arn)).await?;
        let mut out: Vec<_> = snap
            .mfa_devices
            .values()
            .filter(|d| d.doc.user.as_deref() == Some(user.as_str()))
            .map(|d| MfaDeviceInfo { serial: d.serial.clone(), user: d.doc.user.clone(), enabled: d.doc.enabled })
            .collect();
        out.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(out)
    }

    pub async fn list_virtual_mfa_devices(&self, ctx: &RequestContext) -> ServiceResult<Vec<MfaDeviceInfo>> {
        self.authorize(ctx, &Access::new("iam:ListVirtualMFADevices", "*")).await?;
        let snap = self.iam_snapshot().await?;
        let mut out: Vec<_> = snap
            .mfa_devices
            .values()
            .map(|d| MfaDeviceInfo { serial: d.serial.clone(), user: d.doc.user.clone(), enabled: d.doc.enabled })
            .collect();
        out.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(out)
    }

    /// Checks a code against a user's enabled device and burns its time step, so a code works once.
    async fn verify_mfa(&self, user: &str, serial: &str, code: &str) -> ServiceResult<()> {
        check_code_shape(code)?;
        let snap = self.iam_snapshot().await?;
        let device = snap.user_mfa(user, serial).ok_or_else(invalid_code)?;
        let seed = self.open_seed(serial, &device.doc.sealed_seed)?;
        let now = self.current_step();
        let step = (now.saturating_sub(1)..=now + 1)
            .find(|&s| s > device.doc.last_step && code_matches(seed.expose(), s, code))
            .ok_or_else(invalid_code)?;
        self.commit_iam_with(None, |snap| {
            let d = snap.user_mfa(user, serial).ok_or_else(invalid_code)?;
            if d.doc.last_step >= step {
                return Err(invalid_code());
            }
            let mut doc = d.doc.clone();
            doc.last_step = step;
            Ok(vec![mfa_update(&d.name, &doc, d.revision)?])
        })
        .await
    }

    // ---- sessions ----

    /// Opens a session: a fresh key id and secret, and the token that carries them with the claims.
    fn new_session(
        &self,
        subject: SessionSubject,
        duration_seconds: i64,
        assumed_role: Option<AssumedRoleUser>,
    ) -> ServiceResult<TemporaryCredentials> {
        let now = self.clock.now_millis();
        let mut rng = rand::rngs::OsRng;
        let access_key_id = new_session_key_id(&mut rng);
        let secret = new_session_secret(&mut rng);
        let claims = Claims {
            k: access_key_id.clone(),
            t: subject.kind.into(),
            n: subject.name,
            s: subject.session_name,
            e: subject.entity_id,
            p: subject.arn,
            i: now,
            x: now + duration_seconds * 1000,
            m: subject.mfa,
        };
        let json = serde_json::to_vec(&claims).map_err(|_| ServiceError::internal("encoding a session failed"))?;
        let mut plain = Vec::with_capacity(SECRET_LEN + json.len());
        plain.extend_from_slice(secret.expose());
        plain.extend_from_slice(&json);
        let plain = SecretBytes::new(plain);
        let sealed = self
            .keyring
            .seal(&mut rng, plain.expose(), TOKEN_AAD)
            .map_err(|_| ServiceError::new(ErrorKind::EncryptionFailure, "sealing a session failed"))?;
        let session_token =
            format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed));
        Ok(TemporaryCredentials {
            access_key_id,
            secret_access_key: secret,
            session_token,
            expiration: claims.x,
            assumed_role,
        })
    }

    /// AssumeRole: temporary credentials for a role whose trust policy lets the caller in and whose
    /// ARN the caller's identity policies allow `sts:AssumeRole` on (unless the trust policy names
    /// the caller itself).
    pub async fn assume_role(
        &self,
        ctx: &RequestContext,
        input: AssumeRoleInput,
    ) -> ServiceResult<TemporaryCredentials> {
        let session_name = &input.role_session_name;
        let ok_name = (2..=64).contains(&session_name.len())
            && session_name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !ok_name {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
            )));
        }
        if ctx.principal.is_root() {
            return Err(ServiceError::new(ErrorKind::AccessDenied, "Roles may not be assumed by root accounts."));
        }
        let snap = self.iam_snapshot().await?;
        let role = parse_iam_arn(&input.role_arn)
            .filter(|(account, kind, _, _)| *account == self.config.account_id && *kind == "role")
            .and_then(|(_, _, _, name)| snap.role(name));
        let mut mfa = false;
        if let (Some(serial), Some(code)) = (&input.serial_number, &input.token_code) {
            let user = match &ctx.principal.kind {
                PrincipalKind::User { name } => name.clone(),
                _ => return Err(invalid_code()),
            };
            self.verify_mfa(&user, serial, code).await?;
            mfa = true;
        } else if input.serial_number.is_some() != input.token_code.is_some() {
            return Err(ServiceError::validation("SerialNumber and TokenCode go together."));
        }
        let chained = matches!(ctx.principal.kind, PrincipalKind::AssumedRole { .. });
        let denied = || {
            ServiceError::new(
                ErrorKind::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                    ctx.principal.arn, input.role_arn
                ),
            )
        };
        let Some(role) = role else { return Err(denied()) };
        let caller = self.caller_context(&snap, ctx, "sts:AssumeRole", &role.arn);
        let mut policy_ctx = caller.base.with_value("sts:RoleSessionName", session_name.as_str());
        // A session opened with MFA passes it on to the sessions it opens.
        let mfa = mfa || ctx.principal.session.as_ref().is_some_and(|s| s.mfa_authenticated);
        if mfa {
            policy_ctx = policy_ctx.with_mfa(true);
        }
        if let Some(ext) = &input.external_id {
            policy_ctx = policy_ctx.with_value("sts:ExternalId", ext.as_str());
        }
        let Some(trust) = role.trust.as_deref() else { return Err(denied()) };
        // The trust policy must let the caller in: by naming it (enough by itself), or by naming its
        // account (then an identity policy must allow the call too).
        let allowed = match coffer_policy::resource_grant(trust, &policy_ctx) {
            coffer_policy::ResourceGrant::Direct => true,
            coffer_policy::ResourceGrant::Account => {
                coffer_policy::decide(caller.policies.iter().map(|p| p.as_ref()), Some(trust), &policy_ctx)
                    == coffer_policy::Decision::Allow
            }
            coffer_policy::ResourceGrant::Denied | coffer_policy::ResourceGrant::Nothing => false,
        };
        if !allowed {
            return Err(denied());
        }
        let max = if chained { 3600 } else { role.doc.max_session_duration };
        let duration = input.duration_seconds.unwrap_or(3600.min(max));
        if duration < 900 {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            )));
        }
        if duration > max {
            return Err(ServiceError::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        self.role_session(role, session_name, mfa, duration)
    }

    /// Opens a session of `role` named `session_name` (what AssumeRole answers).
    fn role_session(
        &self,
        role: &super::snapshot::RoleEntry,
        session_name: &str,
        mfa: bool,
        duration_seconds: i64,
    ) -> ServiceResult<TemporaryCredentials> {
        let session_arn = format!("arn:aws:sts::{}:assumed-role/{}/{session_name}", self.config.account_id, role.name);
        let assumed_role = AssumedRoleUser {
            assumed_role_id: format!("{}:{session_name}", role.doc.role_id),
            arn: session_arn.clone(),
        };
        let subject = SessionSubject {
            kind: "role",
            name: role.name.clone(),
            session_name: session_name.to_string(),
            entity_id: role.doc.role_id.clone(),
            arn: session_arn,
            mfa,
        };
        self.new_session(subject, duration_seconds, Some(assumed_role))
    }

    /// Temporary credentials of a role for an external rotator the operator configured (as a rotation
    /// Lambda runs under its execution role): 15 minutes, session `coffer-rotation`. The role's trust
    /// policy is not consulted: the server's configuration, not a caller, chose the role.
    pub async fn rotator_role_credentials(&self, role_arn: &str) -> ServiceResult<TemporaryCredentials> {
        let snap = self.iam_snapshot().await?;
        let role = parse_iam_arn(role_arn)
            .filter(|(account, kind, _, _)| *account == self.config.account_id && *kind == "role")
            .and_then(|(_, _, _, name)| snap.role(name))
            .ok_or_else(|| ServiceError::not_found(format!("The rotator's role {role_arn} does not exist.")))?;
        self.role_session(role, "coffer-rotation", false, 900)
    }

    /// GetSessionToken: temporary credentials for the calling user (or root), with MFA when a code
    /// is given. Needs no permission, as in AWS; sessions cannot open further sessions.
    pub async fn get_session_token(
        &self,
        ctx: &RequestContext,
        duration_seconds: Option<i64>,
        serial_number: Option<String>,
        token_code: Option<String>,
    ) -> ServiceResult<TemporaryCredentials> {
        if ctx.principal.session.is_some() {
            return Err(ServiceError::new(
                ErrorKind::AccessDenied,
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        let root = ctx.principal.is_root();
        let max = if root { 3600 } else { 129_600 };
        let duration = duration_seconds.unwrap_or(if root { 3600 } else { 43_200 });
        if !(900..=max).contains(&duration) {
            return Err(ServiceError::validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and {max}"
            )));
        }
        let (kind, name, entity) = match &ctx.principal.kind {
            PrincipalKind::User { name } => {
                let snap = self.iam_snapshot().await?;
                let user = snap
                    .user(name)
                    .ok_or_else(|| ServiceError::new(ErrorKind::AccessDenied, "The user no longer exists."))?;
                ("user", name.clone(), user.doc.user_id.clone())
            }
            PrincipalKind::Root => ("root", "root".to_string(), self.config.account_id.clone()),
            PrincipalKind::AssumedRole { .. } => {
                return Err(ServiceError::new(
                    ErrorKind::AccessDenied,
                    "Cannot call GetSessionToken with session credentials",
                ))
            }
        };
        let mfa = match (&serial_number, &token_code) {
            (Some(serial), Some(code)) if kind == "user" => {
                self.verify_mfa(&name, serial, code).await?;
                true
            }
            (Some(_), Some(_)) => return Err(invalid_code()),
            (None, None) => false,
            _ => return Err(ServiceError::validation("SerialNumber and TokenCode go together.")),
        };
        let subject = SessionSubject {
            kind,
            name,
            session_name: String::new(),
            entity_id: entity,
            arn: ctx.principal.arn.clone(),
            mfa,
        };
        self.new_session(subject, duration, None)
    }

    /// The credential of a request signed with temporary credentials: the session token opened and
    /// checked against the access key id and the clock.
    pub async fn session_credential(&self, access_key_id: &str, token: &str) -> ServiceResult<Arc<Credential>> {
        let cached = self.sessions.0.read().ok().and_then(|m| m.get(token).cloned());
        let credential = match cached {
            Some(c) => c,
            None => {
                let c = Arc::new(self.open_session(token)?);
                if let Ok(mut map) = self.sessions.0.write() {
                    if map.len() >= MAX_CACHED_SESSIONS {
                        map.clear();
                    }
                    map.insert(token.to_string(), c.clone());
                }
                c
            }
        };
        if credential.principal.access_key_id != access_key_id {
            return Err(invalid_token());
        }
        let expires = credential.principal.session.as_ref().map(|s| s.expires).unwrap_or(0);
        if self.clock.now_millis() >= expires {
            return Err(ServiceError::new(
                ErrorKind::ExpiredToken,
                "The security token included in the request is expired",
            ));
        }
        Ok(credential)
    }

    fn open_session(&self, token: &str) -> ServiceResult<Credential> {
        let body = token.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid_token)?;
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid_token())?;
        let plain = self.keyring.open(&sealed, TOKEN_AAD).map_err(|_| invalid_token())?;
        let bytes = plain.expose();
        if bytes.len() <= SECRET_LEN {
            return Err(invalid_token());
        }
        let claims: Claims = serde_json::from_slice(&bytes[SECRET_LEN..]).map_err(|_| invalid_token())?;
        let secret = SecretBytes::new(bytes[..SECRET_LEN].to_vec());
        let account = self.config.account_id.clone();
        let kind = match claims.t.as_str() {
            "role" => PrincipalKind::AssumedRole { role_name: claims.n.clone(), session_name: claims.s.clone() },
            "user" => PrincipalKind::User { name: claims.n.clone() },
            "root" => PrincipalKind::Root,
            _ => return Err(invalid_token()),
        };
        let user_name = if claims.t == "role" { claims.s.clone() } else { claims.n.clone() };
        Ok(Credential {
            principal: Principal {
                arn: claims.p,
                account_id: account,
                user_name,
                access_key_id: claims.k,
                kind,
                session: Some(SessionInfo {
                    issued: claims.i,
                    expires: claims.x,
                    mfa_authenticated: claims.m,
                    entity_id: claims.e,
                }),
            },
            secret_access_key: secret,
            active: true,
        })
    }
}

fn invalid_token() -> ServiceError {
    ServiceError::new(ErrorKind::InvalidToken, "The security token included in the request is invalid.")
}

fn mfa_update(name: &str, doc: &MfaDoc, revision: u64) -> ServiceResult<IamWrite> {
    Ok(IamWrite::Update {
        expected_revision: revision,
        record: coffer_store::IamEntityRecord {
            kind: coffer_store::IamKind::MfaDevice,
            name: name.to_string(),
            document: serde_json::to_vec(doc).map_err(|_| ServiceError::internal("encoding an MFA device failed"))?,
            revision: revision + 1,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 seed "12345678901234567890"; the RFC prints 8 digits, the
        // 6-digit codes are their last six.
        let seed = b"12345678901234567890";
        for (time, eight) in
            [(59u64, "94287082"), (1_111_111_109, "07081804"), (1_234_567_890, "89005924"), (2_000_000_000, "69279037")]
        {
            assert_eq!(totp_code(seed, time / 30), &eight[2..], "t = {time}");
        }
    }

    #[test]
    fn base32_follows_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fooba"), "MZXW6YTB");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn codes_compare_whole() {
        let seed = b"12345678901234567890";
        let code = totp_code(seed, 1);
        assert!(code_matches(seed, 1, &code));
        assert!(!code_matches(seed, 1, &code[..5]));
        assert!(!code_matches(seed, 2, &code) || totp_code(seed, 2) == code);
    }
}
