//! The raw list shapes, parsed straight into the slim model. They borrow from the page text where they
//! can: most of a pod is read and dropped, and borrowing saves an allocation for every env var and
//! volume name that is not kept.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::{ContainerInfo, ObjectMeta, OwnerInfo, OwnerRef, PodInfo, ServiceAccountInfo};

#[derive(Deserialize)]
pub(super) struct List<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    owner_references: Vec<RawOwnerRef>,
}

/// Service-account metadata: annotations instead of labels and owners.
#[derive(Deserialize)]
struct SaMeta {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Meta {
    /// The controller reference, else the first owner.
    fn owner(&mut self) -> Option<OwnerRef> {
        let i = self.owner_references.iter().position(|o| o.controller == Some(true)).unwrap_or(0);
        (i < self.owner_references.len()).then(|| {
            let o = self.owner_references.swap_remove(i);
            OwnerRef { kind: o.kind, name: o.name }
        })
    }
}

#[derive(Deserialize)]
struct RawOwnerRef {
    kind: String,
    name: String,
    controller: Option<bool>,
}

#[derive(Deserialize)]
struct RawPod<'a> {
    metadata: Meta,
    #[serde(default, borrow)]
    spec: RawPodSpec<'a>,
    status: Option<RawPodStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawPodSpec<'a> {
    service_account_name: Option<String>,
    #[serde(default)]
    host_network: bool,
    #[serde(borrow)]
    scheduler_name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    init_containers: Vec<RawContainer<'a>>,
    #[serde(default, borrow)]
    containers: Vec<RawContainer<'a>>,
    #[serde(default, borrow)]
    volumes: Vec<RawName<'a>>,
}

#[derive(Deserialize)]
struct RawPodStatus {
    phase: Option<String>,
}

#[derive(Deserialize)]
struct RawContainer<'a> {
    name: String,
    #[serde(default, borrow)]
    env: Vec<RawEnv<'a>>,
}

#[derive(Deserialize)]
struct RawEnv<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawName<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct RawObject<M> {
    metadata: M,
}

const FARGATE_PROFILE_LABEL: &str = "eks.amazonaws.com/fargate-profile";
const IRSA_TOKEN_VOLUME: &str = "aws-iam-token";

/// The `AWS_*` variables whose values are kept: they name roles, regions, endpoints and token files, none
/// of them a secret. Every other `AWS_*` variable is recorded by name only.
fn keeps_value(name: &str) -> bool {
    matches!(
        name,
        "AWS_ROLE_ARN"
            | "AWS_REGION"
            | "AWS_DEFAULT_REGION"
            | "AWS_STS_REGIONAL_ENDPOINTS"
            | "AWS_WEB_IDENTITY_TOKEN_FILE"
            | "AWS_CONTAINER_CREDENTIALS_FULL_URI"
            | "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
            | "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
    )
}

fn slim_pod(raw: RawPod<'_>) -> PodInfo {
    let RawPod { mut metadata, spec, status } = raw;
    let owner = metadata.owner();
    let containers = spec
        .init_containers
        .into_iter()
        .chain(spec.containers)
        .map(|c| ContainerInfo {
            name: c.name,
            // Only AWS_* variables decide the identity; values from references are never resolved, and only
            // the non-secret ones keep their value (the rest, AWS_SECRET_ACCESS_KEY first, are kept as present).
            env: c
                .env
                .into_iter()
                .filter(|e| e.name.starts_with("AWS_"))
                .map(|e| {
                    let value = e.value.filter(|_| keeps_value(&e.name)).map(Cow::into_owned);
                    (e.name.into_owned(), value)
                })
                .collect(),
        })
        .collect();
    PodInfo {
        fargate: metadata.labels.contains_key(FARGATE_PROFILE_LABEL)
            || spec.scheduler_name.as_deref() == Some("fargate-scheduler"),
        namespace: metadata.namespace,
        name: metadata.name,
        service_account: spec.service_account_name.unwrap_or_else(|| "default".to_string()),
        owner,
        labels: metadata.labels,
        containers,
        irsa_token_volume: spec.volumes.iter().any(|v| v.name == IRSA_TOKEN_VOLUME),
        host_network: spec.host_network,
        phase: status.and_then(|s| s.phase),
    }
}

pub(super) fn parse_pods(text: &str) -> serde_json::Result<Vec<PodInfo>> {
    Ok(serde_json::from_str::<List<RawPod<'_>>>(text)?.items.into_iter().map(slim_pod).collect())
}

pub(super) fn parse_service_accounts(text: &str) -> serde_json::Result<Vec<ServiceAccountInfo>> {
    let list = serde_json::from_str::<List<RawObject<SaMeta>>>(text)?;
    Ok(list
        .items
        .into_iter()
        .map(|o| {
            let m = o.metadata;
            let annotations = m.annotations.into_iter().filter(|(k, _)| k.starts_with("eks.amazonaws.com/")).collect();
            ServiceAccountInfo { namespace: m.namespace, name: m.name, annotations }
        })
        .collect())
}

/// ReplicaSets and Jobs with an owner: the only ones that change a pod's top level.
pub(super) fn parse_owned<const JOB: bool>(text: &str) -> serde_json::Result<Vec<OwnerInfo>> {
    let kind = if JOB { "Job" } else { "ReplicaSet" };
    let list = serde_json::from_str::<List<RawObject<Meta>>>(text)?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|mut o| {
            let owner = o.metadata.owner()?;
            Some(OwnerInfo {
                kind: kind.to_string(),
                namespace: o.metadata.namespace,
                name: o.metadata.name,
                owner: Some(owner),
            })
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FullMeta {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

pub(super) fn parse_meta<K: kube::Resource<DynamicType = ()>>(text: &str) -> serde_json::Result<Vec<ObjectMeta>> {
    let list = serde_json::from_str::<List<RawObject<FullMeta>>>(text)?;
    let kind = K::kind(&()).into_owned();
    Ok(list
        .items
        .into_iter()
        .map(|o| ObjectMeta {
            kind: kind.clone(),
            namespace: o.metadata.namespace,
            name: o.metadata.name,
            uid: o.metadata.uid,
            resource_version: o.metadata.resource_version,
            annotations: o.metadata.annotations,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_keep_only_what_decides_identity() {
        let page = r#"{"metadata":{},"items":[{"metadata":{"name":"p","namespace":"ns","labels":{"app":"a"},
            "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"x\":1}"},
            "ownerReferences":[{"kind":"Node","name":"n","controller":false},{"kind":"ReplicaSet","name":"rs","controller":true}]},
            "spec":{"serviceAccountName":"sa","schedulerName":"fargate-scheduler","volumes":[{"name":"aws-iam-token"}],
            "initContainers":[{"name":"init","env":[{"name":"AWS_ROLE_ARN","value":"arn:a"}]}],
            "containers":[{"name":"app","env":[{"name":"PATH","value":"/bin"},{"name":"AWS_ACCESS_KEY_ID","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}},
            {"name":"AWS_REGION","value":"eu-\u0077est-1"}]}]},"status":{"phase":"Running"}}]}"#;
        let pods = parse_pods(page).unwrap();
        let p = &pods[0];
        assert_eq!(p.owner, Some(OwnerRef { kind: "ReplicaSet".into(), name: "rs".into() }));
        assert!(p.fargate && p.irsa_token_volume && !p.host_network);
        assert_eq!(p.containers.len(), 2);
        assert_eq!(p.containers[0].env.get("AWS_ROLE_ARN"), Some(&Some("arn:a".to_string())));
        let app = &p.containers[1].env;
        assert_eq!(app.keys().collect::<Vec<_>>(), ["AWS_ACCESS_KEY_ID", "AWS_REGION"]);
        assert_eq!(app["AWS_ACCESS_KEY_ID"], None, "a value from a Secret is never read");
        assert_eq!(app["AWS_REGION"].as_deref(), Some("eu-west-1"), "escaped strings are decoded");
        let secret = r#"{"items":[{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","env":[
            {"name":"AWS_SECRET_ACCESS_KEY","value":"wJalrXUtnFEMI"},{"name":"AWS_SESSION_TOKEN","value":"FwoG"},
            {"name":"AWS_ACCESS_KEY_ID","value":"AKIAEXAMPLE"}]}]}}]}"#;
        let env = &parse_pods(secret).unwrap()[0].containers[0].env;
        assert_eq!(env.len(), 3, "present, by name");
        assert!(env.values().all(Option::is_none), "no secret value is kept: {env:?}");
    }
}
