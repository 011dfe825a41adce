//! The Systems Manager Parameter Store front-end: `X-Amz-Target: AmazonSSM.<Op>` → typed wire request →
//! service call → wire response.

use coffer_service::parameters::ops::{ByPathInput, ParameterFilter, ParameterValue, PutParameterInput};
use coffer_service::secrets::{GetSecretValueInput, SecretValue};
use coffer_service::ErrorKind;
use coffer_service::{RequestContext, Service, ServiceError};
use coffer_wire::ssm::*;
use coffer_wire::{epoch_seconds, Sensitive};

use crate::error::{ssm_error, ApiError};
use crate::json::{parse, to_json};

/// The Parameter Store operations Coffer serves so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    PutParameter,
    GetParameter,
    GetParameters,
    GetParametersByPath,
    GetParameterHistory,
    DeleteParameter,
    DeleteParameters,
    LabelParameterVersion,
    UnlabelParameterVersion,
    DescribeParameters,
    AddTagsToResource,
    RemoveTagsFromResource,
    ListTagsForResource,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        use Operation::*;
        Some(match name {
            "PutParameter" => PutParameter,
            "GetParameter" => GetParameter,
            "GetParameters" => GetParameters,
            "GetParametersByPath" => GetParametersByPath,
            "GetParameterHistory" => GetParameterHistory,
            "DeleteParameter" => DeleteParameter,
            "DeleteParameters" => DeleteParameters,
            "LabelParameterVersion" => LabelParameterVersion,
            "UnlabelParameterVersion" => UnlabelParameterVersion,
            "DescribeParameters" => DescribeParameters,
            "AddTagsToResource" => AddTagsToResource,
            "RemoveTagsFromResource" => RemoveTagsFromResource,
            "ListTagsForResource" => ListTagsForResource,
            _ => return None,
        })
    }
}

fn ssm<T>(r: Result<T, ServiceError>) -> Result<T, ApiError> {
    r.map_err(ssm_error)
}

fn parameter_out(v: ParameterValue) -> Parameter {
    Parameter {
        name: v.name,
        parameter_type: v.parameter_type,
        value: Sensitive(v.value),
        version: v.version,
        selector: v.selector,
        source_result: None,
        last_modified_date: epoch_seconds(v.last_modified),
        arn: v.arn,
        data_type: v.data_type,
    }
}

/// Runs one Parameter Store operation and returns the JSON response body.
pub async fn dispatch(
    service: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    use Operation::*;
    match op {
        PutParameter => {
            let r: PutParameterRequest = parse(body)?;
            let out = ssm(service
                .put_parameter(
                    ctx,
                    PutParameterInput {
                        name: r.name,
                        value: r.value.map(|v| v.0),
                        parameter_type: r.parameter_type,
                        description: r.description,
                        key_id: r.key_id,
                        overwrite: r.overwrite.unwrap_or(false),
                        allowed_pattern: r.allowed_pattern,
                        tags: r
                            .tags
                            .unwrap_or_default()
                            .into_iter()
                            .map(|t| coffer_store::Tag { key: t.key, value: t.value })
                            .collect(),
                        tier: r.tier,
                        policies: r.policies,
                        data_type: r.data_type,
                    },
                )
                .await)?;
            to_json(&PutParameterResponse { version: out.version, tier: out.tier })
        }
        GetParameter => {
            let r: GetParameterRequest = parse(body)?;
            let decrypt = r.with_decryption.unwrap_or(false);
            let parameter = match r.name.strip_prefix(SECRETS_REFERENCE) {
                Some(secret) => secret_reference(service, ctx, &r.name, secret, decrypt).await?,
                None => parameter_out(ssm(service.get_parameter(ctx, &r.name, decrypt).await)?),
            };
            to_json(&GetParameterResponse { parameter })
        }
        GetParameters => {
            let r: GetParametersRequest = parse(body)?;
            let (found, invalid) =
                ssm(service.get_parameters(ctx, &r.names, r.with_decryption.unwrap_or(false)).await)?;
            to_json(&GetParametersResponse {
                parameters: found.into_iter().map(parameter_out).collect(),
                invalid_parameters: invalid,
            })
        }
        GetParametersByPath => {
            let r: GetParametersByPathRequest = parse(body)?;
            let filters = filters_in(r.parameter_filters);
            let page = ssm(service
                .get_parameters_by_path(
                    ctx,
                    ByPathInput {
                        path: &r.path,
                        recursive: r.recursive.unwrap_or(false),
                        filters: &filters,
                        decrypt: r.with_decryption.unwrap_or(false),
                        max_results: r.max_results,
                        next_token: r.next_token.as_deref(),
                    },
                )
                .await)?;
            to_json(&GetParametersByPathResponse {
                parameters: page.items.into_iter().map(parameter_out).collect(),
                next_token: page.next_token,
            })
        }
        GetParameterHistory => {
            let r: GetParameterHistoryRequest = parse(body)?;
            let page = ssm(service
                .get_parameter_history(
                    ctx,
                    &r.name,
                    r.with_decryption.unwrap_or(false),
                    r.max_results,
                    r.next_token.as_deref(),
                )
                .await)?;
            to_json(&GetParameterHistoryResponse {
                parameters: page
                    .items
                    .into_iter()
                    .map(|h| ParameterHistory {
                        name: h.name,
                        parameter_type: h.record.parameter_type,
                        key_id: h.record.key_id,
                        last_modified_date: epoch_seconds(h.record.last_modified),
                        last_modified_user: h.record.last_modified_user,
                        description: h.record.description,
                        value: Sensitive(h.value),
                        allowed_pattern: h.record.allowed_pattern,
                        version: h.record.version,
                        labels: h.record.labels,
                        tier: h.record.tier,
                        policies: policies_out(h.record.policies.as_deref()),
                        data_type: h.record.data_type,
                    })
                    .collect(),
                next_token: page.next_token,
            })
        }
        DeleteParameter => {
            let r: NameRequest = parse(body)?;
            ssm(service.delete_parameter(ctx, &r.name).await)?;
            Ok(b"{}".to_vec())
        }
        DeleteParameters => {
            let r: DeleteParametersRequest = parse(body)?;
            let (deleted, invalid) = ssm(service.delete_parameters(ctx, &r.names).await)?;
            to_json(&DeleteParametersResponse { deleted_parameters: deleted, invalid_parameters: invalid })
        }
        LabelParameterVersion => {
            let r: LabelParameterVersionRequest = parse(body)?;
            let out = ssm(service.label_parameter_version(ctx, &r.name, r.parameter_version, &r.labels).await)?;
            to_json(&LabelParameterVersionResponse {
                invalid_labels: out.invalid_labels,
                parameter_version: out.version,
            })
        }
        UnlabelParameterVersion => {
            let r: UnlabelParameterVersionRequest = parse(body)?;
            let (removed, invalid) =
                ssm(service.unlabel_parameter_version(ctx, &r.name, r.parameter_version, &r.labels).await)?;
            to_json(&UnlabelParameterVersionResponse { removed_labels: removed, invalid_labels: invalid })
        }
        DescribeParameters => {
            let r: DescribeParametersRequest = parse(body)?;
            let mut filters = filters_in(r.parameter_filters);
            if let Some(old) = r.filters {
                if !filters.is_empty() {
                    return Err(ApiError::bad_request(
                        "ValidationException",
                        "You can use either Filters or ParameterFilters in a single request.",
                    ));
                }
                // The deprecated Filters (Name, Type, KeyId) are Equals filters.
                filters =
                    old.into_iter().map(|f| ParameterFilter { key: f.key, option: None, values: f.values }).collect();
            }
            let page = ssm(service.describe_parameters(ctx, &filters, r.max_results, r.next_token.as_deref()).await)?;
            to_json(&DescribeParametersResponse {
                parameters: page
                    .items
                    .into_iter()
                    .map(|m| ParameterMetadata {
                        name: m.name,
                        arn: m.arn,
                        parameter_type: m.latest.parameter_type,
                        key_id: m.latest.key_id,
                        last_modified_date: epoch_seconds(m.latest.last_modified),
                        last_modified_user: m.latest.last_modified_user,
                        description: m.latest.description,
                        allowed_pattern: m.latest.allowed_pattern,
                        version: m.latest.version,
                        tier: m.latest.tier,
                        policies: policies_out(m.latest.policies.as_deref()),
                        data_type: m.latest.data_type,
                    })
                    .collect(),
                next_token: page.next_token,
            })
        }
        AddTagsToResource => {
            let r: AddTagsToResourceRequest = parse(body)?;
            check_resource_type(&r.resource_type)?;
            let tags: Vec<coffer_store::Tag> =
                r.tags.into_iter().map(|t| coffer_store::Tag { key: t.key, value: t.value }).collect();
            tag_error(service.change_parameter_tags(ctx, &r.resource_id, &tags, &[]).await)?;
            Ok(b"{}".to_vec())
        }
        RemoveTagsFromResource => {
            let r: RemoveTagsFromResourceRequest = parse(body)?;
            check_resource_type(&r.resource_type)?;
            tag_error(service.change_parameter_tags(ctx, &r.resource_id, &[], &r.tag_keys).await)?;
            Ok(b"{}".to_vec())
        }
        ListTagsForResource => {
            let r: ListTagsForResourceRequest = parse(body)?;
            check_resource_type(&r.resource_type)?;
            let tags = tag_error(service.change_parameter_tags(ctx, &r.resource_id, &[], &[]).await)?;
            to_json(&ListTagsForResourceResponse {
                tag_list: tags.into_iter().map(|t| coffer_wire::Tag { key: t.key, value: t.value }).collect(),
            })
        }
    }
}

/// `[{PolicyText, PolicyType, PolicyStatus}]` as DescribeParameters and GetParameterHistory show them.
fn policies_out(policies: Option<&str>) -> Vec<serde_json::Value> {
    coffer_service::parameters::policies::report(policies)
        .into_iter()
        .map(|p| serde_json::json!({"PolicyText": p.text, "PolicyType": p.policy_type, "PolicyStatus": p.status}))
        .collect()
}

fn filters_in(filters: Option<Vec<ParameterStringFilter>>) -> Vec<ParameterFilter> {
    filters
        .unwrap_or_default()
        .into_iter()
        .map(|f| ParameterFilter { key: f.key, option: f.option, values: f.values.unwrap_or_default() })
        .collect()
}

fn check_resource_type(resource_type: &str) -> Result<(), ApiError> {
    if resource_type != "Parameter" {
        return Err(ApiError::bad_request(
            "InvalidResourceType",
            format!("The resource type {resource_type} is not supported by Coffer; use Parameter."),
        ));
    }
    Ok(())
}

/// The tag operations name a missing parameter InvalidResourceId and a full tag set TooManyTagsError.
fn tag_error<T>(r: Result<T, ServiceError>) -> Result<T, ApiError> {
    r.map_err(|e| match e.kind {
        ErrorKind::NotFound => {
            ApiError::bad_request("InvalidResourceId", "The resource ID is not valid. Verify the ID and try again.")
        }
        ErrorKind::LimitExceeded => ApiError::bad_request("TooManyTagsError", e.message),
        _ => ssm_error(e),
    })
}

/// Names under this prefix are Secrets Manager secrets read through Parameter Store, as AWS allows.
const SECRETS_REFERENCE: &str = "/aws/reference/secretsmanager/";

/// GetParameter(s) on `/aws/reference/secretsmanager/<secret-id>[:label-or-version-id]`: the secret's
/// value as a SecureString, with the secret's DescribeSecret document as `SourceResult`. Decryption is
/// required, as on AWS.
async fn secret_reference(
    service: &Service,
    ctx: &RequestContext,
    full_name: &str,
    reference: &str,
    decrypt: bool,
) -> Result<Parameter, ApiError> {
    if !decrypt {
        return Err(ApiError::bad_request(
            "ValidationException",
            "WithDecryption flag must be True for retrieving a Secret Manager secret.",
        ));
    }
    // A trailing `:x` on a name selects a staging label, or a version id (32 characters or more). ARNs
    // contain colons of their own: only a seventh one is a selector.
    let selector_at = if reference.starts_with("arn:") {
        reference.match_indices(':').nth(6).map(|(i, _)| i)
    } else {
        reference.rfind(':')
    };
    let (secret_id, version_id, version_stage) = match selector_at {
        Some(i) if i > 0 && i + 1 < reference.len() => {
            let (id, sel) = (&reference[..i], &reference[i + 1..]);
            if sel.len() >= 32 {
                (id.to_string(), Some(sel.to_string()), None)
            } else {
                (id.to_string(), None, Some(sel.to_string()))
            }
        }
        _ => (reference.to_string(), None, None),
    };
    let not_found = || {
        ApiError::bad_request(
            "ParameterNotFound",
            format!(
                "An error occurred (ParameterNotFound) when referencing Secrets Manager: Secret {full_name} not found."
            ),
        )
    };
    let (value, description) = service
        .get_secret_reference(ctx, full_name, GetSecretValueInput { secret_id, version_id, version_stage })
        .await
        .map_err(|e| if e.kind == ErrorKind::NotFound { not_found() } else { ssm_error(e) })?;
    let source = crate::secretsmanager::describe_json(description)?;
    let text = match value.value {
        SecretValue::String(s) => s,
        // A binary secret travels base64-encoded, as in SecretBinary.
        SecretValue::Binary(b) => coffer_crypto::SecretBytes::from(base64_encode(b.expose())),
    };
    Ok(Parameter {
        name: full_name.to_string(),
        parameter_type: "SecureString".into(),
        value: Sensitive(text),
        version: 0,
        selector: None,
        source_result: Some(source),
        last_modified_date: epoch_seconds(value.created),
        arn: value.arn,
        data_type: "text".into(),
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
