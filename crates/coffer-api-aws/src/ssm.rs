//! The Systems Manager Parameter Store front-end: `X-Amz-Target: AmazonSSM.<Op>` → typed wire request →
//! service call → wire response.

use coffer_service::parameters::ops::{ParameterValue, PutParameterInput};
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
            let v = ssm(service.get_parameter(ctx, &r.name, r.with_decryption.unwrap_or(false)).await)?;
            to_json(&GetParameterResponse { parameter: parameter_out(v) })
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
            if r.parameter_filters.as_ref().is_some_and(|f| !f.is_empty()) {
                return Err(ApiError::bad_request(
                    "InvalidFilterKey",
                    "ParameterFilters are not supported by this Coffer release for GetParametersByPath.",
                ));
            }
            let page = ssm(service
                .get_parameters_by_path(
                    ctx,
                    &r.path,
                    r.recursive.unwrap_or(false),
                    r.with_decryption.unwrap_or(false),
                    r.max_results,
                    r.next_token.as_deref(),
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
                        policies: vec![],
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
    }
}
