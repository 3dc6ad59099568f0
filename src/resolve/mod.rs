//! The pure middle: from a [`Snapshot`] to bindings and problems.

pub mod bindings;
pub mod creds;
pub mod owners;
pub mod problems;

use std::collections::HashSet;

use crate::arn::RoleQuery;
use crate::model::{API_VERSION, Binding, BindingList, Snapshot, Source};
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

    let mut items = Vec::with_capacity(r.bindings.len());
    for ((ns, sa, role, source), acc) in std::mem::take(&mut r.bindings) {
        if selected.as_ref().is_some_and(|s| !s.contains(&(ns, sa))) {
            continue;
        }
        let effective = !acc.pods.is_empty()
            || match source {
                Source::PodIdentity => true,
                // Without pods, an annotation is effective unless an association takes new pods over.
                Source::Irsa => acc.annotated && !r.associations.contains_key(&(ns, sa)),
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
        let mut pods: Vec<String> = acc.pods.iter().map(|p| p.name.clone()).collect();
        pods.sort_unstable();
        pods.dedup();
        let mut problems = acc.problems;
        problems.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        items.push(Binding {
            namespace: ns.to_string(),
            service_account: sa.to_string(),
            role_arn: role.to_string(),
            source,
            target_role_arn: acc.association.and_then(|a| a.target_role_arn.clone()),
            effective,
            workloads: acc.workloads.into_iter().collect(),
            pods,
            problems,
            audience,
            token_expiration,
        });
    }
    loose.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    BindingList {
        api_version: API_VERSION.to_string(),
        kind: "BindingList".to_string(),
        cluster: snap.cluster.name.clone(),
        items,
        problems: loose,
    }
}

/// Narrows a binding list to the bindings of one role (or whose Pod Identity target is that role).
pub fn who_uses(mut list: BindingList, query: &RoleQuery) -> BindingList {
    list.items.retain(|b| query.matches(&b.role_arn) || b.target_role_arn.as_deref().is_some_and(|t| query.matches(t)));
    list.problems.clear();
    list
}

#[cfg(test)]
mod tests;
