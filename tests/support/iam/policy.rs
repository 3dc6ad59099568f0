//! The service list of an Access Advisor report, computed the way IAM computes it: the services that the
//! entity's permission policies (inline and attached managed) allow. Each `Allow` statement's `Action`
//! (a string or a list; `s3:GetObject`, `s3:Get*`, `s3:*`, `*`) is expanded against the service catalog;
//! `NotAction` allows every service it does not wholly exclude. `Deny` statements, conditions and resources
//! do not narrow the list: the report applies permission policy logic, not a full evaluation.

use std::collections::BTreeMap;

use serde_json::Value;

use super::catalog::{SERVICES, tracked_actions};

/// One allowed service and, for services tracked at action level, the allowed tracked actions.
#[derive(Debug, Clone)]
pub struct Allowed {
    pub namespace: &'static str,
    pub tracked: Option<Vec<&'static str>>,
}

enum Grant {
    /// Actions matching this glob (the part after `service:`).
    Only(String),
    /// Every action but those matching these globs (from `NotAction`).
    Except(Vec<String>),
}

impl Grant {
    fn admits(&self, action: &str) -> bool {
        match self {
            Grant::Only(glob) => matches(glob, action),
            Grant::Except(globs) => !globs.iter().any(|g| matches(g, action)),
        }
    }
}

/// Panics on a document that is not a JSON object: a test handing the fake a broken policy is a bug.
pub fn parse(document: &str) -> Value {
    match serde_json::from_str::<Value>(document) {
        Ok(v) if v.is_object() => v,
        _ => panic!("policy document is not a JSON object: {document}"),
    }
}

/// Sorted by namespace, as the report is.
pub fn allowed(documents: &[Value]) -> Vec<Allowed> {
    let mut grants: BTreeMap<&'static str, Vec<Grant>> = BTreeMap::new();
    for statement in documents.iter().flat_map(|d| one_or_many(&d["Statement"])) {
        if statement["Effect"] != "Allow" {
            continue;
        }
        if let Some(actions) = statement.get("Action") {
            for (service, action) in one_or_many(actions).iter().filter_map(|a| split(a.as_str()?)) {
                for (namespace, _) in SERVICES.iter().filter(|(ns, _)| matches(&service, ns)) {
                    grants.entry(namespace).or_default().push(Grant::Only(action.clone()));
                }
            }
        } else if let Some(not_actions) = statement.get("NotAction") {
            let excluded: Vec<(String, String)> =
                one_or_many(not_actions).iter().filter_map(|a| split(a.as_str()?)).collect();
            for (namespace, _) in SERVICES {
                let here: Vec<String> =
                    excluded.iter().filter(|(s, _)| matches(s, namespace)).map(|(_, a)| a.clone()).collect();
                if !here.iter().any(|a| a == "*") {
                    grants.entry(namespace).or_default().push(Grant::Except(here));
                }
            }
        }
    }
    grants
        .into_iter()
        .map(|(namespace, grants)| Allowed {
            namespace,
            tracked: tracked_actions(namespace)
                .map(|all| all.iter().copied().filter(|action| grants.iter().any(|g| g.admits(action))).collect()),
        })
        .collect()
}

fn one_or_many(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// `s3:Get*` -> (`s3`, `Get*`); a lone `*` means every action of every service.
fn split(action: &str) -> Option<(String, String)> {
    if action == "*" {
        return Some(("*".into(), "*".into()));
    }
    let (service, name) = action.split_once(':')?;
    Some((service.to_string(), name.to_string()))
}

/// IAM action globs: `*` any run, `?` one character, case-insensitive.
pub fn matches(glob: &str, text: &str) -> bool {
    let (glob, text): (Vec<char>, Vec<char>) =
        (glob.to_lowercase().chars().collect(), text.to_lowercase().chars().collect());
    let (mut g, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some('*') => {
                backtrack = Some((g, t));
                g += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, at)) => {
                    g = star + 1;
                    t = at + 1;
                    backtrack = Some((star, at + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}
