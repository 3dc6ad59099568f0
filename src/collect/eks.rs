//! EKS reads: the cluster's identity and its Pod Identity associations.

use aws_sdk_eks::Client;
use aws_sdk_eks::error::ProvideErrorMetadata;
use futures::{StreamExt, stream};

use crate::arn::Arn;
use crate::model::{Association, ClusterInfo, ServiceAccountRef};
use crate::{Error, Result};

/// Describe calls in flight at once: enough to hide latency, few enough to stay clear of EKS throttling.
const DESCRIBE_CONCURRENCY: usize = 8;

/// A per-call failure worded for the user.
fn explain<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &aws_sdk_eks::error::SdkError<E>,
    action: &str,
) -> String {
    match e.code() {
        Some("AccessDeniedException") => {
            format!(
                "not allowed to call eks:{action} ({}); grant it to the AWS identity in use",
                e.message().unwrap_or("access denied")
            )
        }
        _ => format!("eks:{action} failed: {}", super::aws::error_sentence(e)),
    }
}

fn unknown_cluster(name: &str, region: &str) -> Error {
    Error::aws(format!(
        "EKS cluster {name:?} does not exist in region {region} for these AWS credentials; check --cluster and --region \
         (or the kubeconfig context they were inferred from)"
    ))
}

/// Reads the cluster's ARN (account) and OIDC issuer. Unknown cluster is an error; anything else is a
/// warning, since the bindings can still be listed without it.
pub async fn describe_cluster(client: &Client, info: &mut ClusterInfo, warnings: &mut Vec<String>) -> Result<()> {
    let (Some(name), Some(region)) = (info.name.clone(), info.region.clone()) else {
        return Ok(());
    };
    match client.describe_cluster().name(&name).send().await {
        Ok(out) => {
            if let Some(cluster) = out.cluster() {
                if let Some(arn) = cluster.arn().and_then(|arn| arn.parse::<Arn>().ok()) {
                    info.account = Some(arn.account);
                }
                info.oidc_issuer =
                    cluster.identity().and_then(|i| i.oidc()).and_then(|o| o.issuer()).map(str::to_string);
            }
            Ok(())
        }
        Err(e) if e.code() == Some("ResourceNotFoundException") => Err(unknown_cluster(&name, &region)),
        Err(e) => {
            warnings
                .push(format!("cannot read the cluster's account and OIDC issuer: {}", explain(&e, "DescribeCluster")));
            Ok(())
        }
    }
}

/// Lists every association in scope (all pages), then describes each, a few at a time, for the role.
/// A listing failure is returned as the reason Pod Identity was skipped; a describe failure drops that
/// one association with a warning.
pub async fn associations(
    client: &Client,
    cluster: &str,
    region: &str,
    namespace: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Result<(Vec<Association>, Vec<ServiceAccountRef>), String>> {
    let summaries = client
        .list_pod_identity_associations()
        .cluster_name(cluster)
        .set_namespace(namespace.map(str::to_string))
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let summaries = match summaries {
        Ok(s) => s,
        Err(e) if e.code() == Some("ResourceNotFoundException") => return Err(unknown_cluster(cluster, region)),
        Err(e) => return Ok(Err(explain(&e, "ListPodIdentityAssociations"))),
    };
    let described: Vec<_> = stream::iter(summaries)
        .map(|s| async move {
            let id = s.association_id().unwrap_or_default().to_string();
            let who = ServiceAccountRef {
                namespace: s.namespace().unwrap_or_default().to_string(),
                service_account: s.service_account().unwrap_or_default().to_string(),
            };
            let out = client.describe_pod_identity_association().cluster_name(cluster).association_id(&id).send().await;
            (id, who, out)
        })
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::with_capacity(described.len());
    let mut undescribed = Vec::new();
    for (id, who, result) in described {
        let assoc = match result {
            Ok(o) => o.association().cloned(),
            Err(e) => {
                warnings.push(format!(
                    "Pod Identity association {id} ({}/{}) is left out: {}",
                    who.namespace,
                    who.service_account,
                    explain(&e, "DescribePodIdentityAssociation")
                ));
                undescribed.push(who);
                continue;
            }
        };
        let Some(a) = assoc else { continue };
        out.push(Association {
            association_id: id,
            namespace: a.namespace().unwrap_or_default().to_string(),
            service_account: a.service_account().unwrap_or_default().to_string(),
            role_arn: a.role_arn().unwrap_or_default().to_string(),
            target_role_arn: a.target_role_arn().filter(|t| !t.is_empty()).map(str::to_string),
            owner_arn: a.owner_arn().map(str::to_string),
            disable_session_tags: a.disable_session_tags().unwrap_or(false),
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.service_account).cmp(&(&b.namespace, &b.service_account)));
    undescribed.sort();
    Ok(Ok((out, undescribed)))
}
