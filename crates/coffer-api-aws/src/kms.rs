//! The KMS front-end: `X-Amz-Target: TrentService.<Op>` (and Coffer's `CofferKms.<Op>` extensions) →
//! typed wire request → service call → wire response.

use coffer_service::kms::{alias_arn, CreateKeyInput, STATE_ENABLED};
use coffer_service::{ErrorKind, RequestContext, Service, ServiceError};
use coffer_store::{KmsKeyRecord, Tag};
use coffer_wire::kms::*;
use coffer_wire::{epoch_seconds, SensitiveBlob};

use crate::error::{kms_error, ApiError};
use crate::json::{parse, to_json};

/// The KMS operations Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateKey,
    DescribeKey,
    ListKeys,
    CreateAlias,
    DeleteAlias,
    UpdateAlias,
    ListAliases,
    EnableKey,
    DisableKey,
    EnableKeyRotation,
    DisableKeyRotation,
    GetKeyRotationStatus,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    CancelKeyDeletion,
    Encrypt,
    Decrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    ReEncrypt,
    TagResource,
    UntagResource,
    ListResourceTags,
    /// `CofferKms.Rewrap`.
    Rewrap,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        use Operation::*;
        Some(match name {
            "CreateKey" => CreateKey,
            "DescribeKey" => DescribeKey,
            "ListKeys" => ListKeys,
            "CreateAlias" => CreateAlias,
            "DeleteAlias" => DeleteAlias,
            "UpdateAlias" => UpdateAlias,
            "ListAliases" => ListAliases,
            "EnableKey" => EnableKey,
            "DisableKey" => DisableKey,
            "EnableKeyRotation" => EnableKeyRotation,
            "DisableKeyRotation" => DisableKeyRotation,
            "GetKeyRotationStatus" => GetKeyRotationStatus,
            "RotateKeyOnDemand" => RotateKeyOnDemand,
            "ScheduleKeyDeletion" => ScheduleKeyDeletion,
            "CancelKeyDeletion" => CancelKeyDeletion,
            "Encrypt" => Encrypt,
            "Decrypt" => Decrypt,
            "GenerateDataKey" => GenerateDataKey,
            "GenerateDataKeyWithoutPlaintext" => GenerateDataKeyWithoutPlaintext,
            "ReEncrypt" => ReEncrypt,
            "TagResource" => TagResource,
            "UntagResource" => UntagResource,
            "ListResourceTags" => ListResourceTags,
            _ => return None,
        })
    }

    /// Coffer's own KMS operations (`CofferKms.<Op>`).
    pub fn parse_coffer(name: &str) -> Option<Self> {
        match name {
            "Rewrap" => Some(Operation::Rewrap),
            _ => None,
        }
    }
}

fn kms<T>(r: Result<T, ServiceError>) -> Result<T, ApiError> {
    r.map_err(kms_error)
}

fn metadata(k: KmsKeyRecord) -> KeyMetadata {
    KeyMetadata {
        aws_account_id: k.arn.split(':').nth(4).unwrap_or_default().to_string(),
        enabled: k.key_state == STATE_ENABLED,
        creation_date: epoch_seconds(k.created),
        deletion_date: k.deletion_date.map(epoch_seconds),
        // AWS reports it only for multi-Region replicas (PendingReplicaDeletion), which Coffer has none of.
        pending_deletion_window_in_days: None,
        description: k.description,
        key_usage: k.key_usage,
        key_state: k.key_state,
        origin: k.origin,
        key_manager: k.key_manager,
        customer_master_key_spec: k.key_spec.clone(),
        key_spec: k.key_spec,
        encryption_algorithms: vec!["SYMMETRIC_DEFAULT".into()],
        multi_region: false,
        key_id: k.key_id,
        arn: k.arn,
    }
}

/// Limit and Marker paging over an ordered list, as KMS listings do.
fn page<T>(items: Vec<T>, limit: Option<i64>, marker: Option<&str>) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = match limit {
        None => 100,
        Some(l @ 1..=1000) => l as usize,
        Some(l) => {
            return Err(ApiError::bad_request(
                "ValidationException",
                format!("1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000"),
            ))
        }
    };
    let start = match marker {
        None => 0,
        Some(m) => m.parse::<usize>().ok().filter(|n| *n <= items.len()).ok_or_else(|| {
            ApiError::bad_request("InvalidMarkerException", "The request was rejected because the marker that specifies where pagination should next begin is not valid.")
        })?,
    };
    let end = (start + limit).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items.into_iter().skip(start).take(end - start).collect(), next))
}

fn to_tags(tags: Vec<KmsTag>) -> Vec<Tag> {
    tags.into_iter().map(|t| Tag { key: t.tag_key, value: t.tag_value }).collect()
}

fn algorithm(given: Option<&str>) -> Result<(), ApiError> {
    match given {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(_) => Err(kms_error(ServiceError::new(
            ErrorKind::UnsupportedOperation,
            "Only the SYMMETRIC_DEFAULT encryption algorithm is supported for symmetric keys.",
        ))),
    }
}

fn dry_run(flag: Option<bool>) -> Result<(), ApiError> {
    if flag == Some(true) {
        return Err(ApiError::bad_request(
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun option is set.",
        ));
    }
    Ok(())
}

/// Runs one KMS operation and returns the JSON response body.
pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    use Operation::*;
    match op {
        CreateKey => {
            let r: CreateKeyRequest = parse(body)?;
            let input = CreateKeyInput {
                description: r.description,
                key_usage: r.key_usage,
                key_spec: r.key_spec.or(r.customer_master_key_spec),
                origin: r.origin,
                policy: r.policy,
                tags: to_tags(r.tags.unwrap_or_default()),
            };
            let key = kms(service.create_key(ctx, input).await)?;
            to_json(&KeyMetadataResponse { key_metadata: metadata(key) })
        }
        DescribeKey => {
            let r: KeyIdRequest = parse(body)?;
            let key = kms(service.describe_key(ctx, &r.key_id).await)?;
            to_json(&KeyMetadataResponse { key_metadata: metadata(key) })
        }
        ListKeys => {
            let r: PageRequest = parse(body)?;
            let keys = kms(service.list_keys(ctx).await)?;
            let (keys, next_marker) = page(keys, r.limit, r.marker.as_deref())?;
            to_json(&ListKeysResponse {
                truncated: next_marker.is_some(),
                next_marker,
                keys: keys.into_iter().map(|k| KeyListEntry { key_id: k.key_id, key_arn: k.arn }).collect(),
            })
        }
        CreateAlias | UpdateAlias => {
            let r: AliasRequest = parse(body)?;
            let target = r.target_key_id.ok_or_else(|| {
                ApiError::bad_request("ValidationException", "1 validation error detected: Value null at 'targetKeyId' failed to satisfy constraint: Member must not be null")
            })?;
            if op == CreateAlias {
                kms(service.create_alias(ctx, &r.alias_name, &target).await)?;
            } else {
                kms(service.update_alias(ctx, &r.alias_name, &target).await)?;
            }
            Ok(b"{}".to_vec())
        }
        DeleteAlias => {
            let r: AliasRequest = parse(body)?;
            kms(service.delete_alias(ctx, &r.alias_name).await)?;
            Ok(b"{}".to_vec())
        }
        ListAliases => {
            let r: PageRequest = parse(body)?;
            let aliases = kms(service.list_aliases(ctx, r.key_id.as_deref()).await)?;
            let (aliases, next_marker) = page(aliases, r.limit, r.marker.as_deref())?;
            let account = service.config().account_id.clone();
            to_json(&ListAliasesResponse {
                truncated: next_marker.is_some(),
                next_marker,
                aliases: aliases
                    .into_iter()
                    .map(|a| AliasListEntry {
                        alias_arn: alias_arn(&a.region, &account, &a.alias_name),
                        alias_name: a.alias_name,
                        target_key_id: Some(a.target_key_id),
                        creation_date: Some(epoch_seconds(a.created)),
                        last_updated_date: Some(epoch_seconds(a.last_updated)),
                    })
                    .collect(),
            })
        }
        EnableKey | DisableKey | DisableKeyRotation => {
            let r: KeyIdRequest = parse(body)?;
            kms(match op {
                EnableKey => service.enable_key(ctx, &r.key_id).await,
                DisableKey => service.disable_key(ctx, &r.key_id).await,
                _ => service.disable_key_rotation(ctx, &r.key_id).await,
            })?;
            Ok(b"{}".to_vec())
        }
        EnableKeyRotation => {
            let r: EnableKeyRotationRequest = parse(body)?;
            kms(service.enable_key_rotation(ctx, &r.key_id, r.rotation_period_in_days).await)?;
            Ok(b"{}".to_vec())
        }
        GetKeyRotationStatus => {
            let r: KeyIdRequest = parse(body)?;
            let s = kms(service.get_key_rotation_status(ctx, &r.key_id).await)?;
            to_json(&GetKeyRotationStatusResponse {
                key_rotation_enabled: s.enabled,
                key_id: s.key_arn,
                rotation_period_in_days: s.period_days,
                next_rotation_date: s.next_rotation.map(epoch_seconds),
            })
        }
        RotateKeyOnDemand => {
            let r: KeyIdRequest = parse(body)?;
            let k = kms(service.rotate_key_now(ctx, &r.key_id).await)?;
            to_json(&KeyIdResponse { key_id: k.key_id })
        }
        ScheduleKeyDeletion => {
            let r: ScheduleKeyDeletionRequest = parse(body)?;
            let d = kms(service
                .schedule_key_deletion(ctx, &r.key_id, r.pending_window_in_days, r.force.unwrap_or(false))
                .await)?;
            to_json(&ScheduleKeyDeletionResponse {
                key_id: d.key_arn,
                deletion_date: epoch_seconds(d.deletion_date),
                key_state: d.key_state,
                pending_window_in_days: d.pending_window_days,
            })
        }
        CancelKeyDeletion => {
            let r: KeyIdRequest = parse(body)?;
            let k = kms(service.cancel_key_deletion(ctx, &r.key_id).await)?;
            to_json(&KeyIdResponse { key_id: k.arn })
        }
        TagResource => {
            let r: TagResourceRequest = parse(body)?;
            kms(service.tag_key(ctx, &r.key_id, to_tags(r.tags)).await)?;
            Ok(b"{}".to_vec())
        }
        UntagResource => {
            let r: UntagResourceRequest = parse(body)?;
            kms(service.untag_key(ctx, &r.key_id, r.tag_keys).await)?;
            Ok(b"{}".to_vec())
        }
        ListResourceTags => {
            let r: PageRequest = parse(body)?;
            let key_id = r.key_id.unwrap_or_default();
            let tags: Vec<KmsTag> = kms(service.list_key_tags(ctx, &key_id).await)?
                .into_iter()
                .map(|t| KmsTag { tag_key: t.key, tag_value: t.value })
                .collect();
            let (tags, next_marker) = page(tags, r.limit, r.marker.as_deref())?;
            to_json(&ListResourceTagsResponse { truncated: next_marker.is_some(), next_marker, tags })
        }
        Encrypt => {
            let r: EncryptRequest = parse(body)?;
            algorithm(r.encryption_algorithm.as_deref())?;
            let context = r.encryption_context.unwrap_or_default();
            let (key_arn, blob) = kms(service.kms_encrypt(ctx, &r.key_id, &r.plaintext.0, &context).await)?;
            dry_run(r.dry_run)?;
            to_json(&EncryptResponse {
                ciphertext_blob: Blob(blob),
                key_id: key_arn,
                encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
            })
        }
        Decrypt => {
            let r: DecryptRequest = parse(body)?;
            algorithm(r.encryption_algorithm.as_deref())?;
            let context = r.encryption_context.unwrap_or_default();
            let d = kms(service.kms_decrypt(ctx, &r.ciphertext_blob.0, &context, r.key_id.as_deref()).await)?;
            dry_run(r.dry_run)?;
            to_json(&DecryptResponse {
                key_id: d.key_arn,
                plaintext: SensitiveBlob(d.plaintext),
                encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
            })
        }
        GenerateDataKey | GenerateDataKeyWithoutPlaintext => {
            let r: GenerateDataKeyRequest = parse(body)?;
            let bytes = match (r.number_of_bytes, r.key_spec.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad_request(
                        "ValidationException",
                        "Please specify either number of bytes or key spec.",
                    ))
                }
                (Some(n), None) => usize::try_from(n).unwrap_or(0),
                (None, Some("AES_256")) => 32,
                (None, Some("AES_128")) => 16,
                (None, Some(other)) => {
                    return Err(ApiError::bad_request(
                        "ValidationException",
                        format!("1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"),
                    ))
                }
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "ValidationException",
                        "Please specify either number of bytes or key spec.",
                    ))
                }
            };
            let context = r.encryption_context.unwrap_or_default();
            let with_plaintext = op == GenerateDataKey;
            let d = kms(service.generate_data_key(ctx, &r.key_id, bytes, &context, with_plaintext).await)?;
            dry_run(r.dry_run)?;
            to_json(&GenerateDataKeyResponse {
                ciphertext_blob: Blob(d.ciphertext),
                plaintext: d.plaintext.map(SensitiveBlob),
                key_id: d.key_arn,
            })
        }
        ReEncrypt => {
            let r: ReEncryptRequest = parse(body)?;
            algorithm(r.source_encryption_algorithm.as_deref())?;
            algorithm(r.destination_encryption_algorithm.as_deref())?;
            let (source, dest, blob) = kms(service
                .re_encrypt(
                    ctx,
                    &r.ciphertext_blob.0,
                    &r.source_encryption_context.unwrap_or_default(),
                    r.source_key_id.as_deref(),
                    &r.destination_key_id,
                    &r.destination_encryption_context.unwrap_or_default(),
                )
                .await)?;
            dry_run(r.dry_run)?;
            to_json(&ReEncryptResponse {
                ciphertext_blob: Blob(blob),
                source_key_id: source,
                key_id: dest,
                source_encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
                destination_encryption_algorithm: "SYMMETRIC_DEFAULT".into(),
            })
        }
        Rewrap => {
            let report = kms(service.rewrap_keys(ctx).await)?;
            to_json(&RewrapResponse {
                rewrapped: report.rewrapped as u64,
                current: report.current as u64,
                skipped: report.skipped as u64,
            })
        }
    }
}
