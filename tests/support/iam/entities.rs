//! Read calls on roles, their policies and OIDC providers. Each caller sees only its own account's entities
//! (plus AWS managed policies); documents come back percent-encoded, as IAM returns them.

use super::query::{Failure, Query, Xml, page, url_encode};
use super::{CREATED, Caller, ManagedPolicy, Role, State, parse_arn};

fn no_role(name: &str) -> Failure {
    Failure::new(404, "NoSuchEntity", &format!("The role with name {name} cannot be found."))
}

fn role<'a>(st: &'a State, q: &Query, caller: &Caller) -> Result<&'a Role, Failure> {
    let name = q.required("RoleName")?;
    st.roles.get(&(caller.account.clone(), name.to_string())).ok_or_else(|| no_role(name))
}

pub(super) fn role_xml(role: &Role) -> Xml {
    let spec = &role.spec;
    let last_used = match &spec.last_used {
        Some((date, region)) => Xml::new().text("LastUsedDate", date).text("Region", region),
        None => Xml::new(),
    };
    Xml::new()
        .text("Path", &spec.path)
        .text("RoleName", &spec.name)
        .text("RoleId", &role.id)
        .text("Arn", &role.arn)
        .text("CreateDate", &spec.create_date)
        .text("AssumeRolePolicyDocument", url_encode(&spec.trust_policy))
        .opt("Description", spec.description.as_deref())
        .text("MaxSessionDuration", spec.max_session_duration)
        .node("RoleLastUsed", last_used)
}

pub(super) fn get_role(st: &State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    Ok(Xml::new().node("Role", role_xml(role(st, q, caller)?)))
}

pub(super) fn list_attached_role_policies(st: &State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let role = role(st, q, caller)?;
    let page = page(&role.spec.attached, q, 100, 1000)?;
    let members = page.items.iter().map(|arn| {
        let name = arn.rsplit('/').next().unwrap_or_default();
        Xml::new().text("PolicyName", name).text("PolicyArn", arn)
    });
    Ok(page.tail(Xml::new().list("AttachedPolicies", members)))
}

pub(super) fn list_role_policies(st: &State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let names: Vec<String> = role(st, q, caller)?.spec.inline.keys().cloned().collect();
    let page = page(&names, q, 100, 1000)?;
    Ok(page.tail(Xml::new().strings("PolicyNames", &page.items)))
}

pub(super) fn get_role_policy(st: &State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let role = role(st, q, caller)?;
    let name = q.required("PolicyName")?;
    let document = role.spec.inline.get(name).ok_or_else(|| {
        Failure::new(404, "NoSuchEntity", &format!("The role policy with name {name} cannot be found."))
    })?;
    Ok(Xml::new()
        .text("RoleName", &role.spec.name)
        .text("PolicyName", name)
        .text("PolicyDocument", url_encode(document)))
}

/// A managed policy the caller may read: its own account's or an AWS managed one.
fn policy<'a>(st: &'a State, q: &Query, caller: &Caller) -> Result<&'a ManagedPolicy, Failure> {
    let arn = q.required("PolicyArn")?;
    let Some((account, _)) = parse_arn(arn) else {
        return Err(Failure::new(400, "InvalidInput", &format!("ARN {arn} is not valid.")));
    };
    st.policies
        .get(arn)
        .filter(|_| account == caller.account || account == "aws")
        .ok_or_else(|| Failure::new(404, "NoSuchEntity", &format!("Policy {arn} does not exist or is not attachable.")))
}

pub(super) fn get_policy(st: &State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let p = policy(st, q, caller)?;
    let attachments = st.roles.values().filter(|r| r.spec.attached.contains(&p.arn)).count();
    let default = p.versions.last().map(|(v, _)| v.as_str()).unwrap_or("v1");
    let xml = Xml::new()
        .text("PolicyName", &p.name)
        .text("PolicyId", &p.id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", default)
        .text("AttachmentCount", attachments)
        .text("PermissionsBoundaryUsageCount", 0)
        .text("IsAttachable", true)
        .opt("Description", p.description.as_deref())
        .text("CreateDate", CREATED)
        .text("UpdateDate", CREATED);
    Ok(Xml::new().node("Policy", xml))
}

pub(super) fn get_policy_version(st: &State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let p = policy(st, q, caller)?;
    let version = q.required("VersionId")?;
    let Some(index) = p.versions.iter().position(|(v, _)| v == version) else {
        let message = format!("Policy {} version {version} does not exist or is not attachable.", p.arn);
        return Err(Failure::new(404, "NoSuchEntity", &message));
    };
    let xml = Xml::new()
        .text("Document", url_encode(&p.versions[index].1))
        .text("VersionId", version)
        .text("IsDefaultVersion", index + 1 == p.versions.len())
        .text("CreateDate", CREATED);
    Ok(Xml::new().node("PolicyVersion", xml))
}

pub(super) fn list_oidc_providers(st: &State, caller: &Caller) -> Result<Xml, Failure> {
    let mine = st.oidc.iter().filter(|(_, p)| p.account == caller.account);
    Ok(Xml::new().list("OpenIDConnectProviderList", mine.map(|(arn, _)| Xml::new().text("Arn", arn))))
}

pub(super) fn get_oidc_provider(st: &State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let arn = q.required("OpenIDConnectProviderArn")?;
    if parse_arn(arn).is_none() {
        return Err(Failure::new(400, "InvalidInput", &format!("ARN {arn} is not valid.")));
    }
    let provider =
        st.oidc.get(arn).filter(|p| p.account == caller.account).ok_or_else(|| {
            Failure::new(404, "NoSuchEntity", &format!("OpenIDConnect Provider not found for arn {arn}"))
        })?;
    Ok(Xml::new()
        .text("Url", &provider.url)
        .strings("ClientIDList", &provider.client_ids)
        .strings("ThumbprintList", &provider.thumbprints)
        .text("CreateDate", CREATED))
}

/// The resource an action is authorised on, for `AccessDenied` messages.
pub(super) fn resource(q: &Query, caller: &Caller) -> String {
    let account = &caller.account;
    let param = |k: &str| q.param(k).unwrap_or("*").to_string();
    match q.action.as_str() {
        "GetRole" | "ListAttachedRolePolicies" | "ListRolePolicies" | "GetRolePolicy" => {
            format!("arn:aws:iam::{account}:role/{}", param("RoleName"))
        }
        "GenerateServiceLastAccessedDetails" => param("Arn"),
        "GetPolicy" | "GetPolicyVersion" => param("PolicyArn"),
        "GetOpenIDConnectProvider" => param("OpenIDConnectProviderArn"),
        "ListOpenIDConnectProviders" => format!("arn:aws:iam::{account}:oidc-provider/*"),
        _ => "*".into(),
    }
}
