//! Answers one Query call: injected faults first, then throttling, authentication and denials, then the
//! action itself; every call is logged with its outcome.

use super::super::http_server::{Request, Response, take_fault};
use super::query::{self, Failure, Query, Xml};
use super::{State, XMLNS, advisor, entities};

pub(super) fn respond(st: &mut State, req: &Request) -> Response {
    let q = Query::parse(req);
    let request_id = st.request_id();
    let (resp, error) = match handle(st, &q, req) {
        Ok(result) => (query::success(XMLNS, &q.action, &result, &request_id), None),
        Err(failure) => (failure.render(XMLNS, &request_id), Some(failure.code)),
    };
    st.log.push(q.call(req, &resp, error));
    resp.delayed(st.latency)
}

fn handle(st: &mut State, q: &Query, req: &Request) -> Result<Xml, Failure> {
    // Faults match on the action, since every Query call is `POST /`.
    let probe = Request { path: format!("/{}", q.action), ..req.clone() };
    if let Some(fault) = take_fault(&mut st.faults, &probe, q.param("Marker").is_some()) {
        let code = fault.error.clone().unwrap_or_else(|| fault_code(fault.status).to_string());
        return Err(Failure::new(fault.status, &code, &format!("injected fault: {code}")));
    }
    if st.throttled() {
        return Err(Failure::new(400, "Throttling", "Rate exceeded"));
    }
    let Some(key) = q.access_key.as_deref() else {
        return Err(Failure::new(403, "MissingAuthenticationToken", "Request is missing Authentication Token"));
    };
    let caller = st.caller(key);
    let denied_here = st.target_role(q, &caller).is_some_and(|role| st.denied_on.contains(&(q.action.clone(), role)));
    if st.denied.contains(&q.action) || denied_here {
        let resource = entities::resource(q, &caller);
        let message = format!(
            "User: {} is not authorized to perform: iam:{action} on resource: {resource} because no \
             identity-based policy allows the iam:{action} action",
            caller.arn,
            action = q.action,
        );
        return Err(Failure::new(403, "AccessDenied", &message));
    }
    match q.action.as_str() {
        "GenerateServiceLastAccessedDetails" => advisor::generate(st, q, &caller),
        "GetServiceLastAccessedDetails" => advisor::get(st, q, &caller),
        "GetRole" => entities::get_role(st, q, &caller),
        "ListAttachedRolePolicies" => entities::list_attached_role_policies(st, q, &caller),
        "ListRolePolicies" => entities::list_role_policies(st, q, &caller),
        "GetRolePolicy" => entities::get_role_policy(st, q, &caller),
        "GetPolicy" => entities::get_policy(st, q, &caller),
        "GetPolicyVersion" => entities::get_policy_version(st, q, &caller),
        "ListOpenIDConnectProviders" => entities::list_oidc_providers(st, &caller),
        "GetOpenIDConnectProvider" => entities::get_oidc_provider(st, q, &caller),
        "" => Err(Failure::new(400, "MissingAction", "Missing Action")),
        other => {
            Err(Failure::new(400, "InvalidAction", &format!("Could not find operation {other} for version 2010-05-08")))
        }
    }
}

fn fault_code(status: u16) -> &'static str {
    match status {
        400 => "InvalidInput",
        403 => "AccessDenied",
        404 => "NoSuchEntity",
        409 => "LimitExceeded",
        429 => "Throttling",
        503 => "ServiceUnavailable",
        _ => "ServiceFailure",
    }
}
