//! The policy simulator: SimulatePrincipalPolicy evaluates a user's, group's or role's policies (plus
//! any given ones) for actions and resources without performing them; SimulateCustomPolicy evaluates
//! only the given policies. Both use the same evaluation as real requests, so a simulated verdict is
//! the verdict the call would get.

use std::sync::Arc;

use coffer_policy::{Decision, Policy, PolicyKind};

use super::model::parse_iam_arn;
use crate::context::RequestContext;
use crate::error::{ServiceError, ServiceResult};
use crate::iam::Access;
use crate::Service;

#[derive(Debug, Clone, Default)]
pub struct ContextEntry {
    pub key: String,
    pub values: Vec<String>,
    /// `string`, `stringList`, `numeric`, `boolean`, `date`, `ip`, `binary` and their lists.
    pub value_type: String,
}

#[derive(Debug, Clone, Default)]
pub struct SimulationInput {
    /// The user, group or role whose policies to simulate (SimulatePrincipalPolicy).
    pub policy_source_arn: Option<String>,
    /// More identity-based policy documents to include.
    pub policy_input_list: Vec<String>,
    pub action_names: Vec<String>,
    /// Defaults to `*`.
    pub resource_arns: Vec<String>,
    pub resource_policy: Option<String>,
    /// The principal that resource policies see; defaults to the policy source.
    pub caller_arn: Option<String>,
    pub context_entries: Vec<ContextEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedStatementInfo {
    pub source_policy_id: String,
    /// `IAM Policy` or `Resource Policy`.
    pub source_policy_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationResult {
    pub action: String,
    pub resource: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: &'static str,
    pub matched: Vec<MatchedStatementInfo>,
    pub missing_context_values: Vec<String>,
}

fn malformed(e: coffer_policy::PolicyError) -> ServiceError {
    ServiceError::new(crate::ErrorKind::MalformedPolicy, e.to_string())
}

fn check_input(input: &SimulationInput) -> ServiceResult<()> {
    if input.action_names.is_empty() {
        return Err(ServiceError::validation(
            "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null",
        ));
    }
    Ok(())
}

impl Service {
    pub async fn simulate_principal_policy(
        &self,
        ctx: &RequestContext,
        input: SimulationInput,
    ) -> ServiceResult<Vec<SimulationResult>> {
        check_input(&input)?;
        let source = input.policy_source_arn.clone().ok_or_else(|| {
            ServiceError::validation(
                "1 validation error detected: Value null at 'policySourceArn' failed to satisfy constraint: Member must not be null",
            )
        })?;
        self.authorize(ctx, &Access::new("iam:SimulatePrincipalPolicy", &source)).await?;
        let snap = self.iam_snapshot().await?;
        let invalid = || {
            ServiceError::invalid_parameter(format!(
                "Invalid Entity Arn: {source} does not clearly define entity type and name."
            ))
        };
        let (account, kind, _, name) = parse_iam_arn(&source).ok_or_else(invalid)?;
        if account != self.config.account_id {
            return Err(invalid());
        }
        let not_found = |what: &str| ServiceError::not_found(format!("The {what} with name {name} cannot be found."));
        let mut base_keys: Vec<(String, String)> = Vec::new();
        let policies: Vec<Arc<Policy>> = match kind {
            "user" => {
                let u = snap.user(name).ok_or_else(|| not_found("user"))?;
                base_keys.push(("aws:username".into(), name.to_string()));
                base_keys.push(("aws:userid".into(), u.doc.user_id.clone()));
                for t in &u.doc.tags {
                    base_keys.push((format!("aws:PrincipalTag/{}", t.key), t.value.clone()));
                }
                u.policies.to_vec()
            }
            "role" => {
                let r = snap.role(name).ok_or_else(|| not_found("role"))?;
                for t in &r.doc.tags {
                    base_keys.push((format!("aws:PrincipalTag/{}", t.key), t.value.clone()));
                }
                r.policies.to_vec()
            }
            "group" => {
                let g = snap.groups.get(name).ok_or_else(|| not_found("group"))?;
                snap.inline_and_attached(&g.doc.inline, &g.doc.attached)
            }
            _ => return Err(invalid()),
        };
        let caller = input.caller_arn.clone().unwrap_or_else(|| source.clone());
        self.simulate(&caller, policies, &base_keys, &input)
    }

    pub async fn simulate_custom_policy(
        &self,
        ctx: &RequestContext,
        input: SimulationInput,
    ) -> ServiceResult<Vec<SimulationResult>> {
        check_input(&input)?;
        if input.policy_input_list.is_empty() {
            return Err(ServiceError::validation(
                "1 validation error detected: Value null at 'policyInputList' failed to satisfy constraint: Member must not be null",
            ));
        }
        self.authorize(ctx, &Access::new("iam:SimulateCustomPolicy", "*")).await?;
        let caller = input
            .caller_arn
            .clone()
            .unwrap_or_else(|| format!("arn:aws:iam::{}:user/simulated", self.config.account_id));
        self.simulate(&caller, Vec::new(), &[], &input)
    }

    fn simulate(
        &self,
        caller: &str,
        mut policies: Vec<Arc<Policy>>,
        base_keys: &[(String, String)],
        input: &SimulationInput,
    ) -> ServiceResult<Vec<SimulationResult>> {
        for (i, doc) in input.policy_input_list.iter().enumerate() {
            policies.push(Arc::new(
                Policy::parse(format!("PolicyInputList.{}", i + 1), doc, PolicyKind::Identity).map_err(malformed)?,
            ));
        }
        let resource_policy = match &input.resource_policy {
            Some(doc) => Some(Policy::parse("ResourcePolicy", doc, PolicyKind::Resource).map_err(malformed)?),
            None => None,
        };
        let resources =
            if input.resource_arns.is_empty() { vec!["*".to_string()] } else { input.resource_arns.clone() };
        let now = self.clock.now_millis();
        let mut out = Vec::with_capacity(input.action_names.len() * resources.len());
        for action in &input.action_names {
            for resource in &resources {
                let mut pctx = coffer_policy::RequestContext::new(caller, action.as_str(), resource.as_str())
                    .with_current_time_millis(now)
                    .with_secure_transport(true);
                for (k, v) in base_keys {
                    pctx = pctx.with_value(k, v.as_str());
                }
                for entry in &input.context_entries {
                    pctx = pctx.with_values(&entry.key, entry.values.iter().cloned());
                }
                let eval =
                    coffer_policy::evaluate(policies.iter().map(|p| p.as_ref()), resource_policy.as_ref(), &pctx);
                let decision = match eval.decision {
                    Decision::Allow => "allowed",
                    Decision::ExplicitDeny => "explicitDeny",
                    Decision::ImplicitDeny => "implicitDeny",
                };
                let matched = if eval.decision == Decision::ImplicitDeny {
                    Vec::new()
                } else {
                    eval.matched
                        .iter()
                        .map(|m| MatchedStatementInfo {
                            source_policy_id: m.policy_id.to_string(),
                            source_policy_type: match m.kind {
                                PolicyKind::Identity => "IAM Policy".into(),
                                PolicyKind::Resource => "Resource Policy".into(),
                            },
                        })
                        .collect()
                };
                out.push(SimulationResult {
                    action: action.clone(),
                    resource: resource.clone(),
                    decision,
                    matched,
                    missing_context_values: Vec::new(),
                });
            }
        }
        Ok(out)
    }
}
