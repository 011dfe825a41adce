//! The Secrets Manager front-end: `X-Amz-Target: secretsmanager.<Op>` → typed wire request → service
//! call → wire response. No domain rules live here.

use std::collections::BTreeMap;

use coffer_service::password::PasswordRules;
use coffer_service::secrets::rotation::{RotateSecretInput, RotationRulesInput};
use coffer_service::secrets::{
    self as domain, BatchGetInput, CreateSecretInput, DeleteSecretInput, GetSecretValueInput, ListSecretsInput,
    ListVersionIdsInput, PutSecretValueInput, SecretValue, UpdateSecretInput, UpdateVersionStageInput,
};
use coffer_service::{RequestContext, Service, ServiceError};
use coffer_wire::secretsmanager::*;
use coffer_wire::{epoch_seconds, Sensitive, SensitiveBlob};

use crate::error::{secretsmanager_error, ApiError};
use crate::json::{parse, to_json as json};

/// Every Secrets Manager operation Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateSecret,
    GetSecretValue,
    BatchGetSecretValue,
    PutSecretValue,
    UpdateSecret,
    DescribeSecret,
    ListSecrets,
    ListSecretVersionIds,
    UpdateSecretVersionStage,
    DeleteSecret,
    RestoreSecret,
    TagResource,
    UntagResource,
    GetRandomPassword,
    PutResourcePolicy,
    GetResourcePolicy,
    DeleteResourcePolicy,
    ValidateResourcePolicy,
    RotateSecret,
    CancelRotateSecret,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        use Operation::*;
        Some(match name {
            "CreateSecret" => CreateSecret,
            "GetSecretValue" => GetSecretValue,
            "BatchGetSecretValue" => BatchGetSecretValue,
            "PutSecretValue" => PutSecretValue,
            "UpdateSecret" => UpdateSecret,
            "DescribeSecret" => DescribeSecret,
            "ListSecrets" => ListSecrets,
            "ListSecretVersionIds" => ListSecretVersionIds,
            "UpdateSecretVersionStage" => UpdateSecretVersionStage,
            "DeleteSecret" => DeleteSecret,
            "RestoreSecret" => RestoreSecret,
            "TagResource" => TagResource,
            "UntagResource" => UntagResource,
            "GetRandomPassword" => GetRandomPassword,
            "PutResourcePolicy" => PutResourcePolicy,
            "GetResourcePolicy" => GetResourcePolicy,
            "DeleteResourcePolicy" => DeleteResourcePolicy,
            "ValidateResourcePolicy" => ValidateResourcePolicy,
            "RotateSecret" => RotateSecret,
            "CancelRotateSecret" => CancelRotateSecret,
            _ => return None,
        })
    }
}

fn sm<T>(r: Result<T, ServiceError>) -> Result<T, ApiError> {
    r.map_err(secretsmanager_error)
}

fn value_of(string: Option<Sensitive>, binary: Option<SensitiveBlob>) -> Result<Option<SecretValue>, ApiError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "InvalidParameterException",
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(s), None) => Ok(Some(SecretValue::String(s.0))),
        (None, Some(b)) => Ok(Some(SecretValue::Binary(b.0))),
        (None, None) => Ok(None),
    }
}

fn tags_in(tags: Option<Vec<coffer_wire::Tag>>) -> Vec<coffer_store::Tag> {
    tags.unwrap_or_default().into_iter().map(|t| coffer_store::Tag { key: t.key, value: t.value }).collect()
}

fn filters_in(filters: Vec<Filter>) -> Vec<domain::list::SecretFilter> {
    filters.into_iter().map(|f| domain::list::SecretFilter { key: f.key, values: f.values }).collect()
}

fn identity_out(id: domain::SecretIdentity) -> SecretIdentityResponse {
    SecretIdentityResponse { arn: Some(id.arn), name: Some(id.name), version_id: id.version_id }
}

fn value_out(v: domain::SecretValueOutput) -> GetSecretValueResponse {
    let (secret_string, secret_binary) = match v.value {
        SecretValue::String(s) => (Some(Sensitive(s)), None),
        SecretValue::Binary(b) => (None, Some(SensitiveBlob(b))),
    };
    GetSecretValueResponse {
        arn: v.arn,
        name: v.name,
        version_id: v.version_id,
        secret_binary,
        secret_string,
        version_stages: v.version_stages,
        created_date: epoch_seconds(v.created),
    }
}

/// DescribeSecret and ListSecrets entries differ only in the name of the version map.
fn description_out(d: domain::SecretDescription, for_list: bool) -> SecretDescription {
    let r = d.record;
    let rotation = &r.rotation;
    let stages: BTreeMap<String, Vec<String>> = d.versions_to_stages.into_iter().collect();
    let tags: Vec<coffer_wire::Tag> =
        r.tags.into_iter().map(|t| coffer_wire::Tag { key: t.key, value: t.value }).collect();
    SecretDescription {
        arn: r.arn,
        name: r.name,
        description: r.description,
        kms_key_id: r.kms_key_id,
        // AWS reports RotationEnabled and Tags even when rotation was never set up and there are no tags.
        rotation_enabled: Some(rotation.enabled),
        rotation_lambda_arn: rotation.lambda_arn.clone(),
        rotation_rules: (rotation.automatically_after_days.is_some() || rotation.schedule_expression.is_some()).then(
            || RotationRules {
                automatically_after_days: rotation.automatically_after_days,
                duration: rotation.duration.clone(),
                schedule_expression: rotation.schedule_expression.clone(),
            },
        ),
        external_secret_rotation_metadata: (!rotation.metadata.is_empty()).then(|| {
            rotation
                .metadata
                .iter()
                .map(|(key, value)| RotationMetadataItem { key: key.clone(), value: value.clone() })
                .collect()
        }),
        last_rotated_date: rotation.last_rotated.map(epoch_seconds),
        last_changed_date: Some(epoch_seconds(r.last_changed)),
        last_accessed_date: r.last_accessed.map(epoch_seconds),
        deleted_date: r.deletion_date.map(epoch_seconds),
        next_rotation_date: rotation.next_rotation.map(epoch_seconds),
        tags: Some(tags),
        version_ids_to_stages: (!for_list).then(|| stages.clone()),
        secret_versions_to_stages: for_list.then_some(stages),
        created_date: Some(epoch_seconds(r.created)),
        primary_region: None,
    }
}

/// A secret's DescribeSecret document as JSON text (Parameter Store's `SourceResult`).
pub fn describe_json(d: domain::SecretDescription) -> Result<String, ApiError> {
    let bytes = json(&description_out(d, false))?;
    String::from_utf8(bytes).map_err(|_| ApiError::new(500, "InternalServiceError", "An internal error occurred."))
}

/// Runs one Secrets Manager operation and returns the JSON response body.
pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    use Operation::*;
    match op {
        CreateSecret => {
            let r: CreateSecretRequest = parse(body)?;
            let value = value_of(r.secret_string, r.secret_binary)?;
            let out = sm(service
                .create_secret(
                    ctx,
                    CreateSecretInput {
                        name: r.name,
                        client_request_token: r.client_request_token,
                        description: r.description,
                        kms_key_id: r.kms_key_id,
                        value,
                        tags: tags_in(r.tags),
                    },
                )
                .await)?;
            json(&identity_out(out))
        }
        GetSecretValue => {
            let r: GetSecretValueRequest = parse(body)?;
            let out = sm(service
                .get_secret_value(
                    ctx,
                    GetSecretValueInput {
                        secret_id: r.secret_id,
                        version_id: r.version_id,
                        version_stage: r.version_stage,
                    },
                )
                .await)?;
            json(&value_out(out))
        }
        BatchGetSecretValue => {
            let r: BatchGetSecretValueRequest = parse(body)?;
            let out = sm(service
                .batch_get_secret_value(
                    ctx,
                    BatchGetInput {
                        secret_ids: r.secret_id_list,
                        filters: r.filters.map(filters_in),
                        max_results: r.max_results,
                        next_token: r.next_token,
                    },
                )
                .await)?;
            json(&BatchGetSecretValueResponse {
                secret_values: out.values.into_iter().map(value_out).collect(),
                next_token: out.next_token,
                errors: out
                    .errors
                    .into_iter()
                    .map(|e| {
                        let wire = secretsmanager_error(e.error);
                        ApiErrorType {
                            secret_id: e.secret_id,
                            error_code: wire.code.to_string(),
                            message: wire.message,
                        }
                    })
                    .collect(),
            })
        }
        PutSecretValue => {
            let r: PutSecretValueRequest = parse(body)?;
            let value = value_of(r.secret_string, r.secret_binary)?;
            let out = sm(service
                .put_secret_value(
                    ctx,
                    PutSecretValueInput {
                        secret_id: r.secret_id,
                        client_request_token: r.client_request_token,
                        value,
                        version_stages: r.version_stages,
                    },
                )
                .await)?;
            json(&PutSecretValueResponse {
                arn: out.arn,
                name: out.name,
                version_id: out.version_id,
                version_stages: out.version_stages,
            })
        }
        UpdateSecret => {
            let r: UpdateSecretRequest = parse(body)?;
            let value = value_of(r.secret_string, r.secret_binary)?;
            let out = sm(service
                .update_secret(
                    ctx,
                    UpdateSecretInput {
                        secret_id: r.secret_id,
                        client_request_token: r.client_request_token,
                        description: r.description,
                        kms_key_id: r.kms_key_id,
                        value,
                    },
                )
                .await)?;
            json(&identity_out(out))
        }
        DescribeSecret => {
            let r: SecretIdRequest = parse(body)?;
            let out = sm(service.describe_secret(ctx, &r.secret_id).await)?;
            json(&description_out(out, false))
        }
        ListSecrets => {
            let r: ListSecretsRequest = parse(body)?;
            let out = sm(service
                .list_secrets(
                    ctx,
                    ListSecretsInput {
                        include_planned_deletion: r.include_planned_deletion.unwrap_or(false),
                        max_results: r.max_results,
                        next_token: r.next_token,
                        filters: filters_in(r.filters.unwrap_or_default()),
                        sort_order: r.sort_order,
                        sort_by: r.sort_by,
                    },
                )
                .await)?;
            json(&ListSecretsResponse {
                secret_list: out.secrets.into_iter().map(|d| description_out(d, true)).collect(),
                next_token: out.next_token,
            })
        }
        ListSecretVersionIds => {
            let r: ListSecretVersionIdsRequest = parse(body)?;
            let out = sm(service
                .list_secret_version_ids(
                    ctx,
                    ListVersionIdsInput {
                        secret_id: r.secret_id,
                        max_results: r.max_results,
                        next_token: r.next_token,
                        include_deprecated: r.include_deprecated.unwrap_or(false),
                    },
                )
                .await)?;
            json(&ListSecretVersionIdsResponse {
                versions: out
                    .versions
                    .into_iter()
                    .map(|v| SecretVersionsListEntry {
                        version_id: v.version_id,
                        version_stages: (!v.stages.is_empty()).then_some(v.stages),
                        last_accessed_date: None,
                        created_date: epoch_seconds(v.created),
                        kms_key_ids: vec![v.kms_key_id.unwrap_or_else(|| "DefaultEncryptionKey".to_string())],
                    })
                    .collect(),
                next_token: out.next_token,
                arn: out.arn,
                name: out.name,
            })
        }
        UpdateSecretVersionStage => {
            let r: UpdateSecretVersionStageRequest = parse(body)?;
            let out = sm(service
                .update_secret_version_stage(
                    ctx,
                    UpdateVersionStageInput {
                        secret_id: r.secret_id,
                        version_stage: r.version_stage,
                        remove_from_version_id: r.remove_from_version_id,
                        move_to_version_id: r.move_to_version_id,
                    },
                )
                .await)?;
            json(&identity_out(out))
        }
        DeleteSecret => {
            let r: DeleteSecretRequest = parse(body)?;
            let out = sm(service
                .delete_secret(
                    ctx,
                    DeleteSecretInput {
                        secret_id: r.secret_id,
                        recovery_window_in_days: r.recovery_window_in_days,
                        force_delete_without_recovery: r.force_delete_without_recovery,
                    },
                )
                .await)?;
            json(&DeleteSecretResponse {
                arn: out.arn,
                name: out.name,
                deletion_date: epoch_seconds(out.deletion_date),
            })
        }
        RestoreSecret => {
            let r: SecretIdRequest = parse(body)?;
            let out = sm(service.restore_secret(ctx, &r.secret_id).await)?;
            json(&identity_out(out))
        }
        TagResource => {
            let r: TagResourceRequest = parse(body)?;
            sm(service.tag_resource(ctx, &r.secret_id, tags_in(Some(r.tags))).await)?;
            Ok(b"{}".to_vec())
        }
        UntagResource => {
            let r: UntagResourceRequest = parse(body)?;
            sm(service.untag_resource(ctx, &r.secret_id, r.tag_keys).await)?;
            Ok(b"{}".to_vec())
        }
        GetRandomPassword => {
            let r: GetRandomPasswordRequest = parse(body)?;
            let defaults = PasswordRules::default();
            let rules = PasswordRules {
                length: r.password_length.unwrap_or(defaults.length),
                exclude_characters: r.exclude_characters.unwrap_or_default(),
                exclude_numbers: r.exclude_numbers.unwrap_or(false),
                exclude_punctuation: r.exclude_punctuation.unwrap_or(false),
                exclude_uppercase: r.exclude_uppercase.unwrap_or(false),
                exclude_lowercase: r.exclude_lowercase.unwrap_or(false),
                include_space: r.include_space.unwrap_or(false),
                require_each_included_type: r.require_each_included_type.unwrap_or(true),
            };
            let password = sm(service.get_random_password(ctx, &rules).await)?;
            json(&GetRandomPasswordResponse { random_password: Sensitive(password) })
        }
        PutResourcePolicy => {
            let r: PutResourcePolicyRequest = parse(body)?;
            let block_public = r.block_public_policy.unwrap_or(false);
            let out = sm(service.put_resource_policy(ctx, &r.secret_id, &r.resource_policy, block_public).await)?;
            json(&identity_out(out))
        }
        GetResourcePolicy => {
            let r: SecretIdRequest = parse(body)?;
            let out = sm(service.get_resource_policy(ctx, &r.secret_id).await)?;
            json(&GetResourcePolicyResponse { arn: out.arn, name: out.name, resource_policy: out.policy })
        }
        DeleteResourcePolicy => {
            let r: SecretIdRequest = parse(body)?;
            let out = sm(service.delete_resource_policy(ctx, &r.secret_id).await)?;
            json(&identity_out(out))
        }
        ValidateResourcePolicy => {
            let r: ValidateResourcePolicyRequest = parse(body)?;
            let out = sm(service.validate_resource_policy(ctx, r.secret_id.as_deref(), &r.resource_policy).await)?;
            json(&ValidateResourcePolicyResponse {
                policy_validation_passed: out.passed,
                validation_errors: out
                    .errors
                    .into_iter()
                    .map(|(check_name, error_message)| ValidationErrorsEntry { check_name, error_message })
                    .collect(),
            })
        }
        RotateSecret => {
            let r: RotateSecretRequest = parse(body)?;
            let input = RotateSecretInput {
                secret_id: r.secret_id,
                client_request_token: r.client_request_token,
                rotation_lambda_arn: r.rotation_lambda_arn,
                rotation_rules: r.rotation_rules.map(|rules| RotationRulesInput {
                    automatically_after_days: rules.automatically_after_days,
                    schedule_expression: rules.schedule_expression,
                    duration: rules.duration,
                }),
                rotate_immediately: r.rotate_immediately,
                metadata: r
                    .external_secret_rotation_metadata
                    .map(|items| items.into_iter().map(|i| (i.key, i.value)).collect()),
            };
            let out = sm(service.rotate_secret(ctx, input).await)?;
            json(&identity_out(out))
        }
        CancelRotateSecret => {
            let r: SecretIdRequest = parse(body)?;
            let out = sm(service.cancel_rotate_secret(ctx, &r.secret_id).await)?;
            json(&identity_out(out))
        }
    }
}
