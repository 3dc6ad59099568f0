//! IAM reads for `audit --suggest-policy`: a role's permission policies, managed (their default
//! version) and inline, every page.

use aws_sdk_iam::Client;

use super::iam::call_error;
use crate::arn::RoleArn;
use crate::model::ProblemCode;
use crate::policy::{self, PolicyDocument};

/// Every permission policy of the role, named (managed policy ARN, or `inline:NAME`).
pub async fn role_policies(
    client: &Client,
    role: &RoleArn,
) -> Result<Vec<(String, PolicyDocument)>, (ProblemCode, String)> {
    let arn = role.to_string();
    let mut out = Vec::new();
    let attached = client
        .list_attached_role_policies()
        .role_name(&role.name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error(&arn, "ListAttachedRolePolicies", &e))?;
    for p in attached {
        let Some(policy_arn) = p.policy_arn() else { continue };
        let policy =
            client.get_policy().policy_arn(policy_arn).send().await.map_err(|e| call_error(&arn, "GetPolicy", &e))?;
        let version = policy.policy().and_then(|p| p.default_version_id()).unwrap_or("v1");
        let got = client
            .get_policy_version()
            .policy_arn(policy_arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| call_error(&arn, "GetPolicyVersion", &e))?;
        let text = got.policy_version().and_then(|v| v.document()).unwrap_or_default();
        out.push((policy_arn.to_string(), parse(policy_arn, text)?));
    }
    let inline = client
        .list_role_policies()
        .role_name(&role.name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| call_error(&arn, "ListRolePolicies", &e))?;
    for name in inline {
        let got = client
            .get_role_policy()
            .role_name(&role.name)
            .policy_name(&name)
            .send()
            .await
            .map_err(|e| call_error(&arn, "GetRolePolicy", &e))?;
        let source = format!("inline:{name}");
        out.push((source.clone(), parse(&source, got.policy_document())?));
    }
    Ok(out)
}

fn parse(source: &str, text: &str) -> Result<PolicyDocument, (ProblemCode, String)> {
    policy::parse(text).map_err(|e| {
        (ProblemCode::LastAccessedFailed, format!("policy {source} is not a policy document IAM would accept: {e}"))
    })
}
