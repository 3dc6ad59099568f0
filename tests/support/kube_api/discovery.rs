//! Just enough discovery (`/version`, `/api`, `/apis`, group-version resource lists) for real
//! `kubectl` to find the resources the fake serves.

use serde_json::{Value, json};

use super::{RESOURCES, Resource};

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.1-eks-fake", "gitCommit": "0000000",
        "gitTreeState": "clean", "buildDate": "2025-05-01T00:00:00Z", "goVersion": "go1.24.2",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:443" }],
    })
}

pub fn api_groups() -> Value {
    let mut names: Vec<&str> = RESOURCES.iter().map(|r| r.group).filter(|g| !g.is_empty()).collect();
    names.dedup();
    let groups: Vec<Value> = names
        .iter()
        .map(|group| {
            let gv = json!({ "groupVersion": format!("{group}/v1"), "version": "v1" });
            json!({ "name": group, "versions": [gv.clone()], "preferredVersion": gv })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// The `APIResourceList` of one group version, or `None` if the fake serves nothing there.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> =
        RESOURCES.iter().filter(|r| r.group == group && r.version == version).map(describe).collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
        "resources": resources,
    }))
}

fn describe(r: &Resource) -> Value {
    json!({
        "name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced,
        "kind": r.kind, "verbs": ["create", "get", "list", "patch"], "shortNames": r.short_names,
    })
}
