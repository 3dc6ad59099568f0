//! Snapshot files: read them back (JSON or YAML) and narrow them to the scope asked for.

use std::path::Path;

use super::Options;
use crate::model::{API_VERSION, FleetSnapshot, Snapshot};
use crate::selector::LabelSelector;
use crate::{Error, Result};

/// Reads a snapshot file written by `kubectl iam-roles snapshot` (JSON, or YAML with `-o yaml`): one
/// cluster's `Snapshot`, or a `FleetSnapshot` of several.
pub fn read_all(path: &Path) -> Result<Vec<Snapshot>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::snapshot(format!("cannot read snapshot {shown}: {e}")).because(e))?;
    let parse = |text: &str| -> std::result::Result<serde_json::Value, crate::Source> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(crate::Source::from)
        } else {
            serde_saphyr::from_str(text).map_err(crate::Source::from)
        }
    };
    let invalid = |e: crate::Source| {
        Error::snapshot(format!(
            "{shown} is not a valid snapshot ({e}); write a new one with `kubectl iam-roles snapshot -A > FILE`"
        ))
        .because(e)
    };
    let value = parse(&text).map_err(invalid)?;
    let snaps: Vec<Snapshot> = if value.get("kind").and_then(|k| k.as_str()) == Some("FleetSnapshot") {
        let fleet: FleetSnapshot = serde_json::from_value(value).map_err(|e| invalid(e.into()))?;
        fleet.snapshots
    } else {
        vec![serde_json::from_value(value).map_err(|e| invalid(e.into()))?]
    };
    for snap in &snaps {
        if snap.api_version != API_VERSION || snap.kind != "Snapshot" {
            return Err(Error::snapshot(format!(
                "{shown} is a {} {} document, not a {API_VERSION} Snapshot; write one with `kubectl iam-roles snapshot`",
                snap.api_version, snap.kind
            )));
        }
    }
    Ok(snaps)
}

/// Narrows a snapshot to `-n` and `-l`. Without `-n`/`-A` an offline run covers the whole snapshot,
/// since there is no kubeconfig context to take a default namespace from.
pub fn narrow(mut snap: Snapshot, args: &Options) -> Result<Snapshot> {
    if let Some(ns) = args.namespace.as_deref().filter(|_| !args.all_namespaces) {
        if let Some(taken) = snap.scope.namespace.as_deref().filter(|t| *t != ns) {
            return Err(Error::Usage(format!(
                "the snapshot holds only namespace {taken}, not {ns}; take a snapshot with -A to query any namespace"
            )));
        }
        snap.service_accounts.retain(|s| s.namespace == ns);
        snap.pods.retain(|p| p.namespace == ns);
        snap.owners.retain(|o| o.namespace == ns);
        snap.pod_identity.associations.retain(|a| a.namespace == ns);
        snap.scope.namespace = Some(ns.to_string());
    }
    if let Some(sel) = &args.selector {
        let selector = LabelSelector::parse(sel).map_err(Error::Usage)?;
        snap.pods.retain(|p| selector.matches(&p.labels));
        snap.scope.selector = Some(match snap.scope.selector.take() {
            Some(earlier) => format!("{earlier},{sel}"),
            None => sel.clone(),
        });
    }
    Ok(snap)
}
