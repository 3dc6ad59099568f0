//! Trust-policy evaluation, pure: does a role's trust policy let this binding assume it?
//!
//! IRSA needs an Allow of `sts:AssumeRoleWithWebIdentity` to the cluster's OIDC provider (principal
//! `Federated`) with conditions on `<issuer>:sub` (this service account) and `<issuer>:aud`
//! (`sts.amazonaws.com`). Pod Identity needs an Allow of both `sts:AssumeRole` and `sts:TagSession` to
//! `Service: pods.eks.amazonaws.com`. Only Allow statements grant; a matching Deny refuses.

use serde_json::Value;

use crate::model::RoleDetails;
use crate::policy::{Case, glob_match, percent_decode, wildcard_match};

/// What the trust policy says about one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The binding can assume the role, and only what should can.
    Ok,
    /// The binding can assume the role, but so can more than it (a wildcard `sub`, a missing condition).
    TooWide(String),
    /// The binding cannot assume the role, and why.
    Mismatch(String),
}

/// The documents IAM returns (`GetRole`'s `AssumeRolePolicyDocument`) are URL-encoded JSON.
pub fn parse_document(text: &str) -> Result<Value, String> {
    let decoded = if text.trim_start().starts_with('{') { text.to_string() } else { percent_decode(text) };

    serde_json::from_str(&decoded).map_err(|e| format!("the trust policy is not valid JSON: {e}"))
}

/// A string or a list of strings, as IAM allows almost everywhere.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    }
}

/// `StringLike`: `*` any run, `?` one character, case-sensitive (unlike action names).
pub fn string_like(pattern: &str, text: &str) -> bool {
    wildcard_match(pattern, text, Case::Sensitive)
}

fn action_matches(statement: &Value, action: &str) -> bool {
    if let Some(not) = statement.get("NotAction") {
        return !strings(Some(not)).iter().any(|p| glob_match(p, action));
    }
    strings(statement.get("Action")).iter().any(|p| glob_match(p, action))
}

fn principal_matches(statement: &Value, key: &str, wanted: &str) -> bool {
    match statement.get("Principal") {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(p)) => strings(p.get(key)).contains(&wanted) || strings(p.get("AWS")).contains(&"*"),
        _ => false,
    }
}

/// An Allow statement that lets anyone (`"*"`, `{"AWS": "*"}`, any principal type `*`) assume the role
/// with no condition to narrow it: the role is open to every AWS account, whatever else the policy says.
fn open_to_anyone(doc: &Value) -> Option<String> {
    const ASSUME: [&str; 3] = ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML"];
    statements(doc).into_iter().enumerate().find_map(|(i, s)| {
        let anyone = match s.get("Principal") {
            Some(Value::String(p)) => p == "*",
            Some(Value::Object(p)) => p.values().any(|v| strings(Some(v)).contains(&"*")),
            _ => false,
        };
        let narrowed = s.get("Condition").and_then(Value::as_object).is_some_and(|c| !c.is_empty());
        let assumes = ASSUME.iter().any(|a| action_matches(s, a));
        (effect(s) == "Allow" && anyone && assumes && !narrowed).then(|| {
            let sid = s.get("Sid").and_then(Value::as_str).map_or(format!("#{}", i + 1), |sid| format!("{sid:?}"));
            format!("statement {sid} lets any principal (\"*\") assume the role with no condition")
        })
    })
}

fn effect(statement: &Value) -> &str {
    statement.get("Effect").and_then(Value::as_str).unwrap_or("")
}

/// The values a condition operator (`StringEquals`, `StringLike`, with or without `ForAnyValue:`)
/// requires for `key`; condition keys compare case-insensitively.
fn condition_values<'a>(statement: &'a Value, operator: &str, key: &str) -> Option<Vec<&'a str>> {
    let conditions = statement.get("Condition")?.as_object()?;
    conditions.iter().find_map(|(op, block)| {
        let op = op.strip_prefix("ForAnyValue:").unwrap_or(op);
        if !op.eq_ignore_ascii_case(operator) {
            return None;
        }
        block.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| strings(Some(v)))
    })
}

/// IRSA: may `system:serviceaccount:NS:SA` of the cluster with this OIDC issuer assume the role?
pub fn irsa(doc: &Value, issuer: &str, account: &str, namespace: &str, service_account: &str) -> Trust {
    let host_path = issuer.trim_start_matches("https://").trim_end_matches('/');
    let provider_suffix = format!(":iam::{account}:oidc-provider/{host_path}");
    let subject = format!("system:serviceaccount:{namespace}:{service_account}");
    let (sub_key, aud_key) = (format!("{host_path}:sub"), format!("{host_path}:aud"));
    let action = "sts:AssumeRoleWithWebIdentity";

    let federated = |s: &Value| match s.get("Principal").and_then(|p| p.get("Federated")) {
        Some(f) => strings(Some(f)).iter().any(|p| p.starts_with("arn:") && p.ends_with(&provider_suffix)),
        None => false,
    };
    if let Some(why) = open_to_anyone(doc) {
        return Trust::TooWide(why);
    }
    let mut reasons = Vec::new();
    let mut too_wide = None;
    for s in statements(doc) {
        if effect(s) == "Deny" && action_matches(s, action) && federated(s) {
            return Trust::Mismatch("a Deny statement refuses web identity from this cluster".into());
        }
    }
    for s in statements(doc).into_iter().filter(|s| effect(s) == "Allow") {
        if !action_matches(s, action) {
            continue;
        }
        if !federated(s) {
            let others = strings(s.get("Principal").and_then(|p| p.get("Federated"))).join(", ");
            if !others.is_empty() {
                reasons.push(format!(
                    "it trusts the OIDC provider {others}, not this cluster's oidc-provider/{host_path}"
                ));
            }
            continue;
        }
        let equals = condition_values(s, "StringEquals", &sub_key);
        let like = condition_values(s, "StringLike", &sub_key);
        let sub_ok = match (&equals, &like) {
            (Some(values), _) if values.contains(&subject.as_str()) => Some(false),
            (_, Some(patterns)) if patterns.iter().any(|p| string_like(p, &subject)) => {
                Some(patterns.iter().any(|p| p.contains(['*', '?'])))
            }
            (None, None) => Some(true),
            _ => None,
        };
        let Some(sub_wide) = sub_ok else {
            let named: Vec<&str> = equals.iter().chain(like.iter()).flatten().copied().collect();
            reasons.push(format!("its sub condition allows {}, not {subject}", named.join(", ")));
            continue;
        };
        let aud = condition_values(s, "StringEquals", &aud_key).or_else(|| condition_values(s, "StringLike", &aud_key));
        let aud_wide = match aud {
            Some(values) if values.contains(&"sts.amazonaws.com") => false,
            Some(values) => {
                reasons.push(format!("its aud condition requires {}, not sts.amazonaws.com", values.join(", ")));
                continue;
            }
            None => true,
        };
        if !sub_wide && !aud_wide {
            return Trust::Ok;
        }
        too_wide.get_or_insert_with(|| {
            match (sub_wide, aud_wide) {
                (true, _) if equals.is_none() && like.is_none() => {
                    "it has no condition on sub, so every service account in the cluster can assume the role"
                }
                (true, _) => "its sub condition is a wildcard, so other service accounts can assume the role too",
                _ => "it has no condition on aud (sts.amazonaws.com)",
            }
            .to_string()
        });
    }
    match too_wide {
        Some(why) => Trust::TooWide(why),
        None if reasons.is_empty() => Trust::Mismatch(format!(
            "no statement allows sts:AssumeRoleWithWebIdentity from this cluster's OIDC provider oidc-provider/{host_path}"
        )),
        None => Trust::Mismatch(reasons.join("; ")),
    }
}

/// The trust policy `GetRole` returned for a role, parsed; `None` when it could not be read.
pub fn document(details: &RoleDetails) -> Option<Value> {
    details.trust_policy.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

/// [`irsa`] for a binding of a role as `GetRole` described it: the cluster's issuer, through the OIDC
/// provider registered in the role's own account (a cross-account role trusts the issuer through its
/// account's provider). `None` when the trust policy, the role's ARN or the issuer is unknown.
pub fn irsa_binding(
    details: &RoleDetails,
    issuer: Option<&str>,
    namespace: &str,
    service_account: &str,
) -> Option<Trust> {
    let role = details.role_arn.parse::<crate::arn::RoleArn>().ok()?;
    Some(irsa(&document(details)?, issuer?, &role.account, namespace, service_account))
}

/// Pod Identity: does the role trust `pods.eks.amazonaws.com` with both `sts:AssumeRole` and `sts:TagSession`?
pub fn pod_identity(doc: &Value) -> Trust {
    const SERVICE: &str = "pods.eks.amazonaws.com";
    if let Some(why) = open_to_anyone(doc) {
        return Trust::TooWide(why);
    }
    let allowed = |action: &str| {
        let by_service = |s: &&Value| principal_matches(s, "Service", SERVICE) && action_matches(s, action);
        let statements = statements(doc);
        let denied = statements.iter().filter(|s| effect(s) == "Deny").any(by_service);
        !denied && statements.iter().filter(|s| effect(s) == "Allow").any(by_service)
    };
    match (allowed("sts:AssumeRole"), allowed("sts:TagSession")) {
        (true, true) => Trust::Ok,
        (true, false) => Trust::Mismatch(format!(
            "it allows sts:AssumeRole to {SERVICE} but not sts:TagSession, which Pod Identity needs to pass session tags"
        )),
        (false, _) => {
            Trust::Mismatch(format!("no statement allows sts:AssumeRole and sts:TagSession to Service {SERVICE}"))
        }
    }
}

/// Pod Identity role chaining: may the association's role (`source`) assume the target role, with the
/// session tags EKS passes along? The principal may name the role, its account (`ACCOUNT` or
/// `arn:...:root`), or anyone.
pub fn chained(doc: &Value, source: &str) -> Trust {
    if let Some(why) = open_to_anyone(doc) {
        return Trust::TooWide(why);
    }
    let (partition, account) =
        source.parse::<crate::arn::RoleArn>().map(|a| (a.partition, a.account)).unwrap_or_default();
    let account = account.as_str();
    let trusts_source = |s: &Value| match s.get("Principal") {
        Some(Value::String(p)) => p == "*",
        Some(Value::Object(p)) => strings(p.get("AWS")).iter().any(|a| {
            *a == "*" || *a == source || *a == account || *a == format!("arn:{partition}:iam::{account}:root")
        }),
        _ => false,
    };
    let allowed = |action: &str| {
        let matching = |s: &&Value| trusts_source(s) && action_matches(s, action);
        let statements = statements(doc);
        !statements.iter().filter(|s| effect(s) == "Deny").any(matching)
            && statements.iter().filter(|s| effect(s) == "Allow").any(matching)
    };
    match (allowed("sts:AssumeRole"), allowed("sts:TagSession")) {
        (true, true) => Trust::Ok,
        (true, false) => {
            Trust::Mismatch(format!("it lets {source} assume it but not sts:TagSession, which role chaining needs"))
        }
        (false, _) => Trust::Mismatch(format!("no statement allows sts:AssumeRole and sts:TagSession to {source}")),
    }
}

#[cfg(test)]
mod tests;
