//! The pure middle: from a [`Snapshot`] to bindings and problems.

pub mod bindings;
pub mod creds;
pub mod owners;
pub mod problems;

use std::collections::{HashMap, HashSet};

use crate::arn::RoleQuery;
use crate::model::{API_VERSION, Binding, BindingList, PodInfo, Snapshot, Source};
use bindings::{AUDIENCE_ANNOTATION, Resolved, TOKEN_EXPIRATION_ANNOTATION};

/// Resolves every binding in the snapshot and the problems found on the way.
pub fn resolve(snap: &Snapshot) -> BindingList {
    let mut r = Resolved::build(snap);
    let mut loose = Vec::new();
    for (key, problem) in problems::all(&r) {
        match key.and_then(|k| r.bindings.get_mut(&k)) {
            Some(acc) => acc.problems.push(problem),
            None => loose.push(problem),
        }
    }
    // With a pod selector, only the service accounts of the selected pods are in scope. Cluster-wide
    // problems need no narrowing: they come from the (already selected) pods.
    let selected: Option<HashSet<(&str, &str)>> = snap
        .scope
        .selector
        .as_ref()
        .map(|_| snap.pods.iter().map(|p| (p.namespace.as_str(), p.service_account.as_str())).collect());

    // The mechanisms each service account's running pods use: `effective` is about the mechanism, so where
    // pods carry one, every item of that source is effective; where none do, the one new pods would get.
    let mut carrying: HashMap<(&str, &str), Vec<Source>> = HashMap::new();
    for (k, acc) in &r.bindings {
        if !acc.current.is_empty() {
            carrying.entry((k.0, k.1)).or_default().push(k.3);
        }
    }

    let mut items = Vec::with_capacity(r.bindings.len());
    for (key, acc) in std::mem::take(&mut r.bindings) {
        let (ns, sa, role, source) = key;
        if selected.as_ref().is_some_and(|s| !s.contains(&(ns, sa))) {
            continue;
        }
        let effective = match carrying.get(&(ns, sa)) {
            Some(sources) => sources.contains(&source),
            None => r.expected(ns, sa).key(ns, sa) == Some(key),
        };
        let sa_info = r.service_accounts.get(&(ns, sa));
        let annotation = |k: &str| sa_info.and_then(|s| s.annotations.get(k)).cloned();
        let (audience, token_expiration) = match source {
            Source::Irsa => (
                Some(annotation(AUDIENCE_ANNOTATION).unwrap_or_else(|| "sts.amazonaws.com".into())),
                Some(annotation(TOKEN_EXPIRATION_ANNOTATION).unwrap_or_else(|| "86400".into())),
            ),
            Source::PodIdentity => (None, None),
        };
        let names = |pods: &[&PodInfo]| {
            let mut names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
            names.sort_unstable();
            names.dedup();
            names
        };
        let configured = acc.configured();
        let mut problems = acc.problems;
        problems.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        items.push(Binding {
            cluster: None,
            namespace: ns.to_string(),
            service_account: sa.to_string(),
            role_arn: role.to_string(),
            source,
            target_role_arn: acc.association.and_then(|a| a.target_role_arn.clone()),
            configured,
            effective,
            workloads: acc.workloads.into_iter().collect(),
            pods: names(&acc.pods),
            current_pods: names(&acc.current),
            problems,
            completed_pods: names(&acc.completed),
            audience,
            token_expiration,
        });
    }
    loose.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    BindingList {
        clusters: None,
        api_version: API_VERSION.to_string(),
        kind: "BindingList".to_string(),
        cluster: snap.cluster.name.clone(),
        items,
        problems: loose,
    }
}

/// Narrows a binding list to every item of one role (or whose Pod Identity target is that role), configured
/// or only carried by running pods: everything that breaks if the role changes, now or at the next restart.
/// Items whose role could not be read stay too: they may be users, and hiding them would say they are not.
pub fn who_uses(mut list: BindingList, query: &RoleQuery) -> BindingList {
    list.items.retain(|b| {
        !b.role_known() || query.matches(&b.role_arn) || b.target_role_arn.as_deref().is_some_and(|t| query.matches(t))
    });
    list.problems.clear();
    list
}

#[cfg(test)]
mod tests;
