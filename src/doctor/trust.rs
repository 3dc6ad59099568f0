//! Trust-policy evaluation, pure: does a role's trust policy let this binding assume it?
//!
//! IRSA needs an Allow of `sts:AssumeRoleWithWebIdentity` to the cluster's OIDC provider (principal
//! `Federated`) with conditions on `<issuer>:sub` (this service account) and `<issuer>:aud`
//! (`sts.amazonaws.com`). Pod Identity needs an Allow of both `sts:AssumeRole` and `sts:TagSession` to
//! `Service: pods.eks.amazonaws.com`. Only Allow statements grant; a matching Deny refuses.

use crate::arn::Arn;
use crate::model::RoleDetails;
use crate::policy::{self, Case, PolicyDocument, Statement, wildcard_match};

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

/// `StringLike`: `*` any run, `?` one character, case-sensitive (unlike action names).
pub fn string_like(pattern: &str, text: &str) -> bool {
    wildcard_match(pattern, text, Case::Sensitive)
}

/// A statement of `principal` type naming `wanted`, or naming anyone.
fn principal_matches(statement: &Statement, kind: &str, wanted: &str) -> bool {
    statement.names_anyone() || statement.principals(kind).contains(&wanted)
}

/// An Allow statement that lets anyone (`"*"`, `{"AWS": "*"}`, any principal type `*`) assume the role
/// with no condition to narrow it: the role is open to every AWS account, whatever else the policy says.
fn open_to_anyone(doc: &PolicyDocument) -> Option<String> {
    const ASSUME: [&str; 3] = ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML"];
    doc.statements.iter().enumerate().find_map(|(i, s)| {
        let assumes = ASSUME.iter().any(|a| s.actions.matches(a));
        (s.allows() && s.names_anyone() && assumes && !s.is_conditional())
            .then(|| format!("statement {} lets any principal (\"*\") assume the role with no condition", s.label(i)))
    })
}

/// Whether `doc` lets principals matching `trusted` take `action`: an Allow and no Deny.
fn allowed(doc: &PolicyDocument, action: &str, trusted: impl Fn(&Statement) -> bool) -> bool {
    let matching = |s: &Statement| trusted(s) && s.actions.matches(action);
    let denied = doc.statements.iter().any(|s| !s.allows() && matching(s));
    !denied && doc.statements.iter().any(|s| s.allows() && matching(s))
}

/// IRSA: may `system:serviceaccount:NS:SA` of the cluster with this OIDC issuer assume the role?
pub fn irsa(doc: &PolicyDocument, issuer: &str, account: &str, namespace: &str, service_account: &str) -> Trust {
    let host_path = issuer.trim_start_matches("https://").trim_end_matches('/');
    let provider = format!("oidc-provider/{host_path}");
    let subject = format!("system:serviceaccount:{namespace}:{service_account}");
    let (sub_key, aud_key) = (format!("{host_path}:sub"), format!("{host_path}:aud"));
    let action = "sts:AssumeRoleWithWebIdentity";

    let federated = |s: &Statement| {
        s.principals("Federated")
            .iter()
            .filter_map(|p| p.parse::<Arn>().ok())
            .any(|p| p.service == "iam" && p.account == account && p.resource == provider)
    };
    if let Some(why) = open_to_anyone(doc) {
        return Trust::TooWide(why);
    }
    let mut reasons = Vec::new();
    let mut too_wide = None;
    for s in &doc.statements {
        if !s.allows() && s.actions.matches(action) && federated(s) {
            return Trust::Mismatch("a Deny statement refuses web identity from this cluster".into());
        }
    }
    for s in doc.statements.iter().filter(|s| s.allows()) {
        if !s.actions.matches(action) {
            continue;
        }
        if !federated(s) {
            let others = s.principals("Federated").join(", ");
            if !others.is_empty() {
                reasons.push(format!(
                    "it trusts the OIDC provider {others}, not this cluster's oidc-provider/{host_path}"
                ));
            }
            continue;
        }
        let equals = s.condition_values("StringEquals", &sub_key);
        let like = s.condition_values("StringLike", &sub_key);
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
        let aud = s.condition_values("StringEquals", &aud_key).or_else(|| s.condition_values("StringLike", &aud_key));
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
pub fn document(details: &RoleDetails) -> Option<PolicyDocument> {
    details.trust_policy.as_deref().and_then(|t| policy::parse(t).ok())
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
pub fn pod_identity(doc: &PolicyDocument) -> Trust {
    const SERVICE: &str = "pods.eks.amazonaws.com";
    if let Some(why) = open_to_anyone(doc) {
        return Trust::TooWide(why);
    }
    let by_service = |s: &Statement| principal_matches(s, "Service", SERVICE);
    match (allowed(doc, "sts:AssumeRole", by_service), allowed(doc, "sts:TagSession", by_service)) {
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
pub fn chained(doc: &PolicyDocument, source: &str) -> Trust {
    if let Some(why) = open_to_anyone(doc) {
        return Trust::TooWide(why);
    }
    let source_arn = source.parse::<crate::arn::RoleArn>().ok();
    let account_root = |principal: &str| {
        let (Ok(p), Some(role)) = (principal.parse::<Arn>(), &source_arn) else { return false };
        p.partition == role.partition && p.service == "iam" && p.account == role.account && p.resource == "root"
    };
    let trusts_source = |s: &Statement| {
        s.names_anyone()
            || s.principals("AWS")
                .iter()
                .any(|a| *a == source || source_arn.as_ref().is_some_and(|r| *a == r.account) || account_root(a))
    };
    match (allowed(doc, "sts:AssumeRole", trusts_source), allowed(doc, "sts:TagSession", trusts_source)) {
        (true, true) => Trust::Ok,
        (true, false) => {
            Trust::Mismatch(format!("it lets {source} assume it but not sts:TagSession, which role chaining needs"))
        }
        (false, _) => Trust::Mismatch(format!("no statement allows sts:AssumeRole and sts:TagSession to {source}")),
    }
}

#[cfg(test)]
mod tests;
