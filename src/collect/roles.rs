//! IAM reads for `doctor`: each role's trust policy (`GetRole`) and the account's OIDC providers.

use aws_sdk_iam::Client;
use futures::{StreamExt, stream};

use super::iam::{IamClients, call_error};
use crate::arn::RoleArn;
use crate::model::{ProblemCode, ReportError, RoleDetails};
use crate::policy;

/// `GetRole` calls in flight at once.
const CONCURRENCY: usize = 8;

/// The trust policy of every role, read with the client of the role's account; a role in an account
/// without a client is reported, not read.
pub async fn details(iam: &IamClients, roles: &[RoleArn]) -> Vec<RoleDetails> {
    let mut out: Vec<RoleDetails> = stream::iter(roles)
        .map(|role| async move {
            let arn = role.to_string();
            let failed = |code, message| RoleDetails {
                role_arn: arn.clone(),
                trust_policy: None,
                error: Some(ReportError { code, message }),
            };
            let client = match iam.client_for(role) {
                Ok(client) => client,
                Err(e) => return failed(e.code, e.message),
            };
            match client.get_role().role_name(&role.name).send().await {
                Ok(out) => {
                    let document = out.role().and_then(|r| r.assume_role_policy_document()).unwrap_or_default();
                    match policy::parse(document).and_then(|doc| serde_json::to_string(&doc)) {
                        Ok(json) => RoleDetails { role_arn: arn.clone(), trust_policy: Some(json), error: None },
                        Err(e) => failed(
                            ProblemCode::TrustPolicyMismatch,
                            format!("role {arn}: the trust policy is not a valid policy document: {e}"),
                        ),
                    }
                }
                Err(e) => {
                    let (code, message) = call_error(&arn, "GetRole", &e);
                    failed(code, message)
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    out.sort_by(|a, b| a.role_arn.cmp(&b.role_arn));
    out
}

/// The ARNs of the OIDC providers registered in the caller's account.
pub async fn oidc_providers(client: &Client) -> Result<Vec<String>, String> {
    match client.list_open_id_connect_providers().send().await {
        Ok(out) => Ok(out.open_id_connect_provider_list().iter().filter_map(|p| p.arn().map(str::to_string)).collect()),
        Err(e) => Err(call_error("the account", "ListOpenIDConnectProviders", &e).1),
    }
}
