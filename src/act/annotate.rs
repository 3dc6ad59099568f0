//! `annotate`: put each role's unused services on the workloads and service accounts that use it, and
//! take them off where they no longer hold. The plan is pure; applying it is merge patches of our own
//! annotation keys only, guarded by resourceVersion, and an Event per changed object.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};

use jiff::Timestamp;
use serde::Serialize;

use super::paint::{Paint, escape};
use crate::audit::{AuditReport, Status};
use crate::model::ObjectMeta;

/// The annotation keys, under a prefix (`iam-roles.io/` by default).
#[derive(Debug, Clone)]
pub struct Keys {
    pub unused_services: String,
    /// With observed usage: the actions the object's service account called with the role.
    pub observed_actions: String,
    pub role_arn: String,
    pub audited_at: String,
}

/// At most this many observed actions are written; the rest are counted (`,+3 more`).
pub const MAX_OBSERVED_ACTIONS: usize = 10;

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Keys {
            unused_services: format!("{prefix}unused-services"),
            observed_actions: format!("{prefix}observed-actions"),
            role_arn: format!("{prefix}role-arn"),
            audited_at: format!("{prefix}audited-at"),
        }
    }

    fn all(&self) -> [&str; 4] {
        [&self.unused_services, &self.observed_actions, &self.role_arn, &self.audited_at]
    }
}

/// The value of the observed-actions key: sorted actions, the first few, then how many more.
fn observed_value(actions: &BTreeSet<String>) -> String {
    let mut value = actions.iter().take(MAX_OBSERVED_ACTIONS).cloned().collect::<Vec<_>>().join(",");
    if actions.len() > MAX_OBSERVED_ACTIONS {
        value.push_str(&format!(",+{} more", actions.len() - MAX_OBSERVED_ACTIONS));
    }
    value
}

/// One object's annotation change: values to set, keys to remove, and what was there before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub object: ObjectMeta,
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

impl Change {
    /// The merge patch: only our keys (null removes), with the resourceVersion read, so a concurrent
    /// change makes the server answer 409 instead of us overwriting it.
    pub fn patch(&self) -> serde_json::Value {
        let mut annotations = serde_json::Map::new();
        for (k, v) in &self.set {
            annotations.insert(k.clone(), v.clone().into());
        }
        for k in &self.remove {
            annotations.insert(k.clone(), serde_json::Value::Null);
        }
        serde_json::json!({"metadata": {"resourceVersion": self.object.resource_version, "annotations": annotations}})
    }

    pub fn is_removal(&self) -> bool {
        self.set.is_empty()
    }
}

/// What an object should carry: the unused services, the actions its service account was seen calling,
/// and the roles they belong to.
#[derive(Debug, Default)]
struct Finding {
    services: BTreeSet<String>,
    actions: BTreeSet<String>,
    roles: BTreeSet<String>,
}

/// Objects `annotate` must leave as they are, with why: the evidence for them is incomplete (SPEC 4).
#[derive(Debug, Default, Clone)]
pub struct Held {
    /// Every object, for this reason (the Pod Identity associations could not be listed, an owner kind
    /// could not be listed): no change may rest on what is missing.
    pub all: Option<String>,
    /// Single objects by (kind, namespace, name).
    pub objects: BTreeMap<(String, String, String), String>,
}

/// Plans the changes. An object whose findings are the same as its annotations is left alone, even
/// though the audit time moved: a second run with the same data sends nothing. Returns the changes, the
/// wanted objects that were not found, and the objects left alone on incomplete evidence (with why).
pub fn plan(
    report: &AuditReport,
    objects: &[ObjectMeta],
    keys: &Keys,
    held: &Held,
) -> (Vec<Change>, Vec<String>, Vec<String>) {
    let mut wanted: HashMap<(String, String, String), Finding> = HashMap::new();
    // Objects of roles that could not be audited keep whatever they carry: no data is not "all used".
    let mut undecided: BTreeSet<(String, String, String)> = BTreeSet::new();
    let unknown_roles: BTreeSet<&str> =
        report.roles.iter().filter(|r| r.error.is_some()).map(|r| r.role_arn.as_str()).collect();
    for role in &report.roles {
        // A finding is a non-empty list of unused services: a role that holds nothing unused (even an
        // idle role whose policies allow no service) has none, and never writes an empty value.
        let unused = role.error.is_none()
            && matches!(role.status, Status::UnusedServices | Status::UnusedRole)
            && !role.unused_services.is_empty();
        for b in &role.bindings {
            let called = b.actions.as_deref().unwrap_or_default();
            if role.error.is_none() && !unused && called.is_empty() {
                continue;
            }
            let targets = std::iter::once(("ServiceAccount".to_string(), b.service_account.clone()))
                .chain(b.workloads.iter().map(|w| (w.kind.clone(), w.name.clone())));
            for (kind, name) in targets {
                let key = (kind, b.namespace.clone(), name);
                if role.error.is_some() {
                    undecided.insert(key);
                    continue;
                }
                let f = wanted.entry(key).or_default();
                if unused {
                    f.services.extend(role.unused_services.iter().cloned());
                }
                f.actions.extend(called.iter().cloned());
                f.roles.insert(role.role_arn.clone());
            }
        }
    }
    let audited_at = report.generated_at.to_string();
    let mut changes = Vec::new();
    let mut seen = BTreeSet::new();
    let mut left_alone = Vec::new();
    for object in objects {
        let key = (object.kind.clone(), object.namespace.clone(), object.name.clone());
        let left = |why: &str| format!("{} {}/{}: {why}", object.kind, object.namespace, object.name);
        if let Some(why) = held.all.as_ref().or_else(|| held.objects.get(&key)) {
            seen.insert(key);
            left_alone.push(left(why));
            continue;
        }
        let has = |k: &str| object.annotations.get(k).map(String::as_str);
        match wanted.get(&key) {
            Some(f) => {
                seen.insert(key);
                // Never an empty value: a key with nothing to say is absent.
                let services =
                    (!f.services.is_empty()).then(|| f.services.iter().cloned().collect::<Vec<_>>().join(","));
                let actions = (!f.actions.is_empty()).then(|| observed_value(&f.actions));
                let roles = f.roles.iter().cloned().collect::<Vec<_>>().join(",");
                if has(&keys.unused_services) == services.as_deref()
                    && has(&keys.observed_actions) == actions.as_deref()
                    && has(&keys.role_arn) == Some(roles.as_str())
                {
                    continue;
                }
                let mut set =
                    BTreeMap::from([(keys.role_arn.clone(), roles), (keys.audited_at.clone(), audited_at.clone())]);
                let mut remove = Vec::new();
                for (key, value) in [(&keys.unused_services, services), (&keys.observed_actions, actions)] {
                    match value {
                        Some(v) => {
                            set.insert(key.clone(), v);
                        }
                        None if has(key).is_some() => remove.push(key.clone()),
                        None => {}
                    }
                }
                changes.push(Change { object: object.clone(), set, remove });
            }
            None if undecided.contains(&key) => left_alone.push(left("a role bound to it could not be audited")),
            None if has(&keys.role_arn).is_some_and(|roles| roles.split(',').any(|r| unknown_roles.contains(r))) => {
                left_alone.push(left("the role its findings name could not be audited"))
            }
            None => {
                let mut remove: Vec<String> =
                    keys.all().iter().filter(|k| has(k).is_some()).map(|k| k.to_string()).collect();
                remove.sort();
                if !remove.is_empty() {
                    changes.push(Change { object: object.clone(), set: BTreeMap::new(), remove });
                }
            }
        }
    }
    let mut missing: Vec<String> = wanted
        .keys()
        .filter(|k| !seen.contains(*k))
        .map(|(kind, ns, name)| {
            format!("{kind} {ns}/{name} was not found (deleted, or a kind annotate does not write); skipped")
        })
        .collect();
    missing.sort();
    changes.sort_by(|a, b| {
        (&a.object.namespace, &a.object.kind, &a.object.name).cmp(&(
            &b.object.namespace,
            &b.object.kind,
            &b.object.name,
        ))
    });
    (changes, missing, left_alone)
}

/// The planned change as a readable diff, for `--dry-run`.
pub fn write_diff(out: &mut dyn Write, change: &Change, paint: Paint) -> io::Result<()> {
    let o = &change.object;
    // Old values were written by whoever may annotate the object: never let them drive the terminal.
    writeln!(out, "{} {}/{}", paint.bold(&o.kind), escape(&o.namespace), escape(&o.name))?;
    for (k, v) in &change.set {
        match o.annotations.get(k) {
            Some(old) => writeln!(out, "{}", paint.warn(&format!("  ~ {k}: {} -> {}", escape(old), escape(v))))?,
            None => writeln!(out, "{}", paint.good(&format!("  + {k}: {}", escape(v))))?,
        }
    }
    for k in &change.remove {
        let old = o.annotations.get(k).map(String::as_str).unwrap_or_default();
        writeln!(out, "{}", paint.bad(&format!("  - {k}: {}", escape(old))))?;
    }
    Ok(())
}

/// The one line a CronJob's log ends with.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub kind: &'static str,
    /// The cluster, when `annotate` ran over several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub dry_run: bool,
    pub roles_audited: usize,
    pub roles_with_unused_services: usize,
    pub objects_annotated: usize,
    pub objects_cleared: usize,
    pub skipped: usize,
    /// Objects left as they were because the evidence for them was incomplete.
    pub left_alone: usize,
    pub errors: usize,
}

/// The Event recorded on an object `annotate` changed.
pub fn event(change: &Change, api_version: &str, now: Timestamp) -> k8s_openapi::api::core::v1::Event {
    use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta as Meta, Time};
    let o = &change.object;
    let unused = change.set.keys().any(|k| k.ends_with("unused-services"));
    let (reason, message, kind) = if change.is_removal() {
        ("IAMFindingsCleared", "its IAM roles no longer hold unused service permissions".to_string(), "Normal")
    } else if !unused {
        let actions = change.set.iter().find(|(k, _)| k.ends_with("observed-actions")).map(|(_, v)| v.as_str());
        ("IAMUsageObserved", format!("its service account was seen calling: {}", actions.unwrap_or_default()), "Normal")
    } else {
        let services = change.set.iter().find(|(k, _)| k.ends_with("unused-services")).map(|(_, v)| v.as_str());
        let services = services.unwrap_or_default();
        (
            "UnusedIAMPermissions",
            format!("its IAM role holds service permissions it does not use: {services}"),
            "Warning",
        )
    };
    Event {
        metadata: Meta {
            generate_name: Some(format!("{}.", o.name)),
            namespace: Some(o.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(api_version.to_string()),
            kind: Some(o.kind.clone()),
            name: Some(o.name.clone()),
            namespace: Some(o.namespace.clone()),
            uid: Some(o.uid.clone()),
            ..Default::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message),
        type_: Some(kind.to_string()),
        source: Some(EventSource { component: Some("kubectl-iam-roles".to_string()), host: None }),
        reporting_component: Some("kubectl-iam-roles".to_string()),
        reporting_instance: Some("kubectl-iam-roles".to_string()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        action: Some("Annotate".to_string()),
        count: Some(1),
        ..Default::default()
    }
}

/// How one object's patch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Deleted or changed between read and write: the next run sees it anew.
    Skipped(String),
    Failed(String),
}

/// Sends one change as a merge patch with our field manager, then records an Event on the object.
pub async fn apply(client: &kube::Client, change: &Change, now: Timestamp) -> (Outcome, Option<String>) {
    use crate::collect::kube::{api_version, url_path};
    let o = &change.object;
    let Some(path) = url_path(&o.kind, &o.namespace) else {
        return (
            Outcome::Skipped(format!("{} {}/{}: annotate does not write this kind", o.kind, o.namespace, o.name)),
            None,
        );
    };
    let params = kube::api::PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..Default::default() };
    let request = kube::core::Request::new(path).patch(&o.name, &params, &kube::api::Patch::Merge(change.patch()));
    let sent = match request {
        Ok(req) => client.request::<serde_json::Value>(req).await,
        Err(e) => Err(kube::Error::BuildRequest(e)),
    };
    let what = format!("{} {}/{}", o.kind, o.namespace, o.name);
    let outcome = match sent {
        Ok(_) => Outcome::Done,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return (Outcome::Skipped(format!("{what} was deleted before it could be annotated; skipped")), None);
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            return (
                Outcome::Skipped(format!("{what} changed between read and write; skipped (the next run retries)")),
                None,
            );
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return (
                Outcome::Failed(format!(
                    "not allowed to patch {what} ({}); grant patch on it (manifests/clusterrole.yaml)",
                    s.message
                )),
                None,
            );
        }
        Err(e) => return (Outcome::Failed(format!("cannot patch {what}: {e}")), None),
    };
    let event = event(change, api_version(&o.kind), now);
    let posted = serde_json::to_vec(&event).map_err(kube::Error::SerdeError).and_then(|body| {
        kube::core::Request::new(format!("/api/v1/namespaces/{}/events", o.namespace))
            .create(
                &kube::api::PostParams { field_manager: Some(FIELD_MANAGER.to_string()), ..Default::default() },
                body,
            )
            .map_err(kube::Error::BuildRequest)
    });
    let warning = match posted {
        Ok(req) => client
            .request::<serde_json::Value>(req)
            .await
            .err()
            .map(|e| format!("cannot record an event on {what}: {e}")),
        Err(e) => Some(format!("cannot record an event on {what}: {e}")),
    };
    (outcome, warning)
}

/// The field manager our patches are recorded under.
pub const FIELD_MANAGER: &str = "kubectl-iam-roles";

#[cfg(test)]
mod tests;
