//! Observed usage from CloudTrail, pure: which workload called which action with a role's credentials.
//!
//! A log file is read record by record ([`record`]) into a [`Tally`]: which temporary access key STS issued
//! to whom (an IRSA web identity, or a pod through EKS Pod Identity), and, per role, access key and action,
//! how many calls succeeded or were denied and when the last one was. Tallies of several files, days and
//! regions merge. [`attribute`] then joins keys to their holders for one cluster: a key issued through this
//! cluster's OIDC provider to `system:serviceaccount:NS:SA`, or by Pod Identity with this cluster's session
//! tags, belongs to that service account; any other key of the role (a session older than the window, another
//! cluster, another caller) is still the role's use, counted as unattributed.

pub mod action;
pub mod athena;
pub mod record;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::arn::{Arn, RoleArn};
use record::Record;

/// Who STS issued a temporary key to, as the STS event says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "via")]
pub enum Issued {
    /// `AssumeRoleWithWebIdentity`: the OIDC provider (an ARN or issuer host path) and the token's subject.
    WebIdentity { provider: String, subject: String },
    /// `AssumeRole` by `pods.eks.amazonaws.com`, with the session tags EKS sets.
    PodIdentity { cluster: String, namespace: String, service_account: String, pod: Option<String> },
}

/// Calls of one action with one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    pub allowed: u64,
    pub denied: u64,
    pub last_allowed: Option<Timestamp>,
    pub last_denied: Option<Timestamp>,
}

impl Count {
    /// `calls` calls, allowed or denied, the last at `last`.
    pub(crate) fn of(denied: bool, calls: u64, last: Option<Timestamp>) -> Self {
        if denied {
            Count { denied: calls, last_denied: last, ..Count::default() }
        } else {
            Count { allowed: calls, last_allowed: last, ..Count::default() }
        }
    }

    /// Adds the calls of `other` (another file, day, region or result row).
    pub(crate) fn add(&mut self, other: &Count) {
        self.allowed += other.allowed;
        self.denied += other.denied;
        self.last_allowed = self.last_allowed.max(other.last_allowed);
        self.last_denied = self.last_denied.max(other.last_denied);
    }
}

/// What a set of log files says about the roles in scope. Memory grows with the distinct (role, key,
/// action) triples, not with the number of records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// Temporary access key id -> whom STS issued it to (keys of roles in scope only).
    pub issued: BTreeMap<String, Issued>,
    /// Role (`ACCOUNT:NAME`) -> access key id -> action -> calls.
    pub calls: BTreeMap<String, BTreeMap<String, BTreeMap<String, Count>>>,
    /// Records read.
    pub records: u64,
}

/// A role's key for matching: CloudTrail names a role by its ARN, with or without the path; a role's name is
/// unique in its account.
pub fn role_key(arn: &RoleArn) -> String {
    format!("{}:{}", arn.account, arn.name)
}

fn role_key_of(arn: &str) -> Option<String> {
    arn.parse::<RoleArn>().ok().map(|r| role_key(&r))
}

impl Tally {
    /// Counts one record, for the roles in `roles` (role keys).
    pub fn add(&mut self, record: &Record, roles: &BTreeSet<String>) {
        self.records += 1;
        let (Some(source), Some(name)) = (record.event_source.as_deref(), record.event_name.as_deref()) else {
            return;
        };
        let identity = record.user_identity.as_ref();
        if source == "sts.amazonaws.com" && record.error_code.is_none() {
            let in_scope = record.request_role_arn().and_then(role_key_of).is_some_and(|k| roles.contains(&k));
            if let (true, Some(key)) = (in_scope, record.issued_key())
                && let Some(issued) = issued(record, name)
            {
                self.issued.insert(key.to_string(), issued);
            }
        }
        // A call made with a role's temporary credentials.
        let Some(identity) = identity.filter(|i| i.kind.as_deref() == Some("AssumedRole")) else { return };
        let issuer = identity.session_context.as_ref().and_then(|c| c.session_issuer.as_ref());
        let Some(role) = issuer.and_then(|i| i.arn.as_deref()).and_then(role_key_of).filter(|k| roles.contains(k))
        else {
            return;
        };
        let Some(action) = action::action(source, name) else { return };
        let time = record.event_time.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        let key = identity.access_key_id.clone().unwrap_or_default();
        let count = self.calls.entry(role).or_default().entry(key).or_default().entry(action).or_default();
        count.add(&Count::of(record.error_code.as_deref().is_some_and(action::is_denied), 1, time));
    }

    /// Adds another tally (another file, day or region).
    pub fn merge(&mut self, other: Tally) {
        self.records += other.records;
        self.issued.extend(other.issued);
        for (role, keys) in other.calls {
            let mine = self.calls.entry(role).or_default();
            for (key, actions) in keys {
                let mine = mine.entry(key).or_default();
                for (action, count) in actions {
                    mine.entry(action).or_default().add(&count);
                }
            }
        }
    }

    /// Keeps only what concerns `roles` (role keys).
    pub fn retain_roles(&mut self, roles: &BTreeSet<String>) {
        self.calls.retain(|role, _| roles.contains(role));
    }
}

/// The holder of a key, from the STS event that issued it.
fn issued(record: &Record, event_name: &str) -> Option<Issued> {
    let identity = record.user_identity.as_ref();
    match event_name {
        "AssumeRoleWithWebIdentity" => {
            let elements = record.response_elements.as_ref();
            let provider = elements
                .and_then(|e| e.provider.as_ref()?.as_str().map(str::to_string))
                .or_else(|| identity?.identity_provider.clone())?;
            let subject = elements
                .and_then(|e| e.subject_from_web_identity_token.as_ref()?.as_str().map(str::to_string))
                .or_else(|| identity?.user_name.clone())?;
            Some(Issued::WebIdentity { provider, subject })
        }
        "AssumeRole" if identity.and_then(|i| i.invoked_by.as_deref()) == Some(POD_IDENTITY_SERVICE) => {
            let cluster = record.tag("eks-cluster-arn").or_else(|| record.tag("eks-cluster-name"))?;
            Some(Issued::PodIdentity {
                cluster: cluster.to_string(),
                namespace: record.tag("kubernetes-namespace")?.to_string(),
                service_account: record.tag("kubernetes-service-account")?.to_string(),
                pod: record.tag("kubernetes-pod-name").map(str::to_string),
            })
        }
        _ => None,
    }
}

/// The service that assumes roles for EKS Pod Identity.
pub const POD_IDENTITY_SERVICE: &str = "pods.eks.amazonaws.com";

/// A service account of this cluster that used a role.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub namespace: String,
    pub service_account: String,
    /// The cluster, in runs over several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

impl User {
    pub fn new(namespace: &str, service_account: &str, cluster: Option<&str>) -> Self {
        User {
            namespace: namespace.into(),
            service_account: service_account.into(),
            cluster: cluster.map(str::to_string),
        }
    }
}

/// A cluster attribution is for: its name, ARN and OIDC issuer, and (in runs over several) the name its
/// users are labelled with.
#[derive(Debug, Clone, Default)]
pub struct ClusterId {
    pub name: Option<String>,
    pub arn: Option<String>,
    pub issuer: Option<String>,
    pub label: Option<String>,
}

impl ClusterId {
    fn issued_here(&self, issued: &Issued) -> Option<User> {
        match issued {
            Issued::WebIdentity { provider, subject } => {
                let issuer = self.issuer.as_deref()?.trim_start_matches("https://").trim_end_matches('/');
                // An ARN (`arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH`) or the issuer itself.
                let host_path = match provider.parse::<Arn>() {
                    Ok(arn) => arn.resource_of("oidc-provider")?.to_string(),
                    Err(_) => provider.trim_start_matches("https://").trim_end_matches('/').to_string(),
                };
                if host_path != issuer {
                    return None;
                }
                let rest = subject.strip_prefix("system:serviceaccount:")?;
                let (namespace, service_account) = rest.split_once(':')?;
                Some(User::new(namespace, service_account, self.label.as_deref()))
            }
            Issued::PodIdentity { cluster, namespace, service_account, .. } => {
                let here =
                    Some(cluster.as_str()) == self.arn.as_deref() || Some(cluster.as_str()) == self.name.as_deref();
                here.then(|| User::new(namespace, service_account, self.label.as_deref()))
            }
        }
    }
}

/// One role's calls, by the service account that made them (`None`: unattributed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleUsage {
    pub role_arn: String,
    pub by_user: Vec<UserUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserUsage {
    pub user: Option<User>,
    pub actions: BTreeMap<String, Count>,
}

/// What CloudTrail could see, from the trail's event selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Management events (read and write) are recorded.
    pub management: bool,
    /// Services whose data events the trail records (`s3`, `lambda`, `dynamodb`...).
    pub data_services: BTreeSet<String>,
}

/// Observed usage of the roles in scope over a window, attributed for one cluster: what a snapshot keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub source: String,
    pub trail: String,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub coverage: Coverage,
    pub roles: Vec<RoleUsage>,
}

/// Joins a tally's keys to their holders in `clusters` (the first that issued it), per role in `roles`.
pub fn attribute(tally: &Tally, roles: &[RoleArn], clusters: &[ClusterId]) -> Vec<RoleUsage> {
    roles
        .iter()
        .map(|role| {
            let mut by_user: BTreeMap<Option<User>, BTreeMap<String, Count>> = BTreeMap::new();
            for (key, actions) in tally.calls.get(&role_key(role)).into_iter().flatten() {
                let user = tally.issued.get(key).and_then(|i| clusters.iter().find_map(|c| c.issued_here(i)));
                let mine = by_user.entry(user).or_default();
                for (action, count) in actions {
                    mine.entry(action.clone()).or_default().add(count);
                }
            }
            let by_user = by_user.into_iter().map(|(user, actions)| UserUsage { user, actions }).collect();
            RoleUsage { role_arn: role.to_string(), by_user }
        })
        .collect()
}

/// The `observed` member of a role in the audit report (SPEC section 3).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    pub source: String,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Calls with the role's credentials in the window, allowed or denied.
    pub events: u64,
    /// Of those, calls whose session could not be joined to a service account of this cluster.
    pub unattributed: u64,
    pub actions: Vec<ObservedAction>,
    /// Actions refused at least once: attempts, not grants in use.
    pub denied: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedAction {
    pub action: String,
    pub count: u64,
    pub last_used: Option<Timestamp>,
    pub users: Vec<User>,
}

impl Observed {
    /// One role's usage, as the report shows it.
    pub fn of(usage: &Usage, role: &RoleUsage) -> Self {
        let mut actions: BTreeMap<&str, (u64, Option<Timestamp>, BTreeSet<User>)> = BTreeMap::new();
        let mut denied = BTreeSet::new();
        let (mut events, mut unattributed) = (0, 0);
        for u in &role.by_user {
            for (action, count) in &u.actions {
                let calls = count.allowed + count.denied;
                events += calls;
                if u.user.is_none() {
                    unattributed += calls;
                }
                if count.denied > 0 {
                    denied.insert(action.clone());
                }
                if count.allowed > 0 {
                    let entry = actions.entry(action).or_default();
                    entry.0 += count.allowed;
                    entry.1 = entry.1.max(count.last_allowed);
                    entry.2.extend(u.user.clone());
                }
            }
        }
        Observed {
            source: usage.source.clone(),
            from: usage.from,
            to: usage.to,
            events,
            unattributed,
            actions: actions
                .into_iter()
                .map(|(action, (count, last_used, users))| ObservedAction {
                    action: action.to_string(),
                    count,
                    last_used,
                    users: users.into_iter().collect(),
                })
                .collect(),
            denied: denied.into_iter().collect(),
        }
    }

    /// The latest allowed call, evidence the role is used.
    pub fn last_used(&self) -> Option<Timestamp> {
        self.actions.iter().filter_map(|a| a.last_used).max()
    }

    /// The actions `user` called successfully, sorted.
    pub fn actions_of(&self, user: &User) -> Vec<String> {
        self.actions.iter().filter(|a| a.users.contains(user)).map(|a| a.action.clone()).collect()
    }
}

#[cfg(test)]
mod tests;
