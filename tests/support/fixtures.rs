//! Builders for realistic Kubernetes JSON. Objects carry the noise a real API server returns (uids,
//! managedFields, status, the service-account token volume, several containers) so the client's parsing
//! is exercised, and what the EKS webhooks inject, worded exactly as they inject it.

mod pod;

use serde_json::{Value, json};

pub use pod::{PodBuilder, pod};

const CREATED: &str = "2025-03-01T10:00:00Z";
const NODE: &str = "ip-10-0-1-23.us-west-2.compute.internal";
const IMAGE: &str = "public.ecr.aws/docker/library/nginx:1.27";

/// A stable UUID-shaped uid, so an ownerReference's uid matches its owner's.
pub fn uid(kind: &str, ns: &str, name: &str) -> String {
    let hex = format!("{:016x}{:016x}", hash(&[kind, ns, name], 1), hash(&[kind, ns, name], 2));
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// FNV-1a over the parts; `seed` gives independent hashes of the same input.
fn hash(parts: &[&str], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for byte in parts.join("\0").bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn api_version(kind: &str) -> &'static str {
    match kind {
        "ReplicaSet" | "Deployment" | "DaemonSet" | "StatefulSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        _ => "v1",
    }
}

fn metadata(kind: &str, ns: Option<&str>, name: &str) -> Value {
    let mut meta = json!({
        "name": name, "uid": uid(kind, ns.unwrap_or(""), name), "resourceVersion": "1",
        "creationTimestamp": CREATED, "labels": {},
        "managedFields": [{
            "manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": api_version(kind),
            "time": CREATED, "fieldsType": "FieldsV1", "fieldsV1": { "f:metadata": { "f:labels": { ".": {} } } },
        }],
    });
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn object(kind: &str, ns: Option<&str>, name: &str) -> Value {
    json!({ "apiVersion": api_version(kind), "kind": kind, "metadata": metadata(kind, ns, name) })
}

fn set_labels(obj: &mut Value, labels: &[(&str, &str)]) {
    for (k, v) in labels {
        obj["metadata"]["labels"][*k] = json!(v);
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    obj["metadata"]["annotations"][key] = json!(value);
}

/// A controller ownerReference, as a ReplicaSet/Job controller writes it.
fn set_owner(obj: &mut Value, kind: &str, name: &str) {
    let ns = if kind == "Node" { "" } else { obj["metadata"]["namespace"].as_str().unwrap_or("") };
    obj["metadata"]["ownerReferences"] = json!([{
        "apiVersion": api_version(kind), "kind": kind, "name": name, "uid": uid(kind, ns, name),
        "controller": true, "blockOwnerDeletion": true,
    }]);
}

fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{ "containerPort": 8080, "protocol": "TCP" }],
        "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } },
        "volumeMounts": [{
            "name": "kube-api-access-7xk2p", "readOnly": true,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
        }],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    })
}

/// Builds a ServiceAccount.
pub struct ServiceAccountBuilder(Value);

pub fn service_account(ns: &str, name: &str) -> ServiceAccountBuilder {
    ServiceAccountBuilder(object("ServiceAccount", Some(ns), name))
}

impl ServiceAccountBuilder {
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        set_annotation(&mut self.0, key, value);
        self
    }

    /// The IRSA annotation `eks.amazonaws.com/role-arn`.
    pub fn irsa(self, role_arn: &str) -> Self {
        self.annotation("eks.amazonaws.com/role-arn", role_arn)
    }

    pub fn labels(mut self, labels: &[(&str, &str)]) -> Self {
        set_labels(&mut self.0, labels);
        self
    }

    pub fn build(self) -> Value {
        self.0
    }
}

pub fn namespace(name: &str) -> Value {
    let mut obj = object("Namespace", None, name);
    set_labels(&mut obj, &[("kubernetes.io/metadata.name", name)]);
    obj["spec"] = json!({ "finalizers": ["kubernetes"] });
    obj["status"] = json!({ "phase": "Active" });
    obj
}

/// Builds a workload controller (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob).
pub struct WorkloadBuilder(Value);

pub fn deployment(ns: &str, name: &str) -> WorkloadBuilder {
    workload("Deployment", ns, name, json!({ "replicas": 2, "availableReplicas": 2, "readyReplicas": 2 }))
}

pub fn replica_set(ns: &str, name: &str) -> WorkloadBuilder {
    workload("ReplicaSet", ns, name, json!({ "replicas": 2, "readyReplicas": 2, "observedGeneration": 1 }))
}

pub fn stateful_set(ns: &str, name: &str) -> WorkloadBuilder {
    workload("StatefulSet", ns, name, json!({ "replicas": 1, "readyReplicas": 1, "currentReplicas": 1 }))
}

pub fn daemon_set(ns: &str, name: &str, ready: i32, desired: i32) -> WorkloadBuilder {
    let status = json!({
        "currentNumberScheduled": desired, "desiredNumberScheduled": desired, "numberMisscheduled": 0,
        "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": desired,
    });
    workload("DaemonSet", ns, name, status)
}

pub fn job(ns: &str, name: &str) -> WorkloadBuilder {
    workload("Job", ns, name, json!({ "succeeded": 1, "startTime": CREATED, "completionTime": CREATED }))
}

pub fn cron_job(ns: &str, name: &str) -> WorkloadBuilder {
    workload("CronJob", ns, name, json!({ "lastScheduleTime": CREATED }))
}

fn workload(kind: &str, ns: &str, name: &str, status: Value) -> WorkloadBuilder {
    let mut obj = object(kind, Some(ns), name);
    set_labels(&mut obj, &[("app", name)]);
    let restart_policy = if matches!(kind, "Job" | "CronJob") { "OnFailure" } else { "Always" };
    let template = json!({
        "metadata": { "labels": { "app": name } },
        "spec": { "containers": [container("app", IMAGE)], "restartPolicy": restart_policy,
                  "serviceAccountName": "default", "dnsPolicy": "ClusterFirst" },
    });
    obj["spec"] = match kind {
        "CronJob" => {
            json!({ "schedule": "*/15 * * * *", "concurrencyPolicy": "Forbid", "suspend": false,
                             "jobTemplate": { "spec": { "template": template } } })
        }
        "Job" => {
            json!({ "template": template, "backoffLimit": 6, "completions": 1, "parallelism": 1 })
        }
        "StatefulSet" => {
            json!({ "selector": { "matchLabels": { "app": name } }, "template": template,
                                 "serviceName": name, "replicas": 1 })
        }
        _ => json!({ "selector": { "matchLabels": { "app": name } }, "template": template }),
    };
    obj["status"] = status;
    WorkloadBuilder(obj)
}

impl WorkloadBuilder {
    pub fn owner(mut self, kind: &str, name: &str) -> Self {
        set_owner(&mut self.0, kind, name);
        self
    }

    pub fn labels(mut self, labels: &[(&str, &str)]) -> Self {
        set_labels(&mut self.0, labels);
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        set_annotation(&mut self.0, key, value);
        self
    }

    /// Sets the service account of the pod template.
    pub fn service_account(mut self, sa: &str) -> Self {
        let spec = &mut self.0["spec"];
        let template = if spec.get("jobTemplate").is_some() {
            &mut spec["jobTemplate"]["spec"]["template"]
        } else {
            &mut spec["template"]
        };
        template["spec"]["serviceAccountName"] = json!(sa);
        self
    }

    pub fn build(self) -> Value {
        self.0
    }
}
