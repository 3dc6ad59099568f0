//! A fake AWS STS endpoint speaking the Query protocol as aws-sdk-sts expects it (point the SDK at it with
//! `AWS_ENDPOINT_URL_STS`): `GetCallerIdentity` and `AssumeRole`. Keys it hands out are `ASIA` + the role's
//! 12-digit account + a 4-character suffix, so the fake IAM knows which account a caller is in; linked with
//! [`FakeSts::share_keys_with`] it also tells IAM who the caller is and refuses roles IAM does not hold.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

pub use super::http_server::Fault;
use super::http_server::{Handler, Request, Response, Server, serve, take_fault};
pub use super::iam::query::Call;
use super::iam::query::{Failure, Query, Xml};
use super::iam::{FakeIam, entity_id};

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

#[derive(Debug, Clone)]
struct Session {
    account: String,
    arn: String,
    user_id: String,
}

#[derive(Default)]
struct State {
    account: String,
    issued: BTreeMap<String, Session>,
    denied: BTreeSet<String>,
    /// When set, only these role ARNs may be assumed.
    allowed: Option<BTreeSet<String>>,
    iam: Option<FakeIam>,
    faults: Vec<Fault>,
    served: u64,
    log: Vec<Call>,
}

/// The fake's state; clone-cheap, shared with the server once started.
#[derive(Clone)]
pub struct FakeSts {
    state: Arc<Mutex<State>>,
}

impl FakeSts {
    /// Long-term keys that STS did not issue (such as `AKIDEXAMPLE`) are the user `tester` in `account`.
    pub fn new(account: &str) -> Self {
        FakeSts { state: Arc::new(Mutex::new(State { account: account.into(), ..State::default() })) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers every key `AssumeRole` hands out with `iam`, and refuses roles `iam` does not hold, as STS
    /// refuses a role that does not exist (with `AccessDenied`).
    pub fn share_keys_with(&self, iam: &FakeIam) {
        self.lock().iam = Some(iam.clone());
    }

    /// `AssumeRole` of this role ARN is answered 403 `AccessDenied`.
    pub fn deny_assume(&self, role_arn: &str) {
        self.lock().denied.insert(role_arn.into());
    }

    /// Only these role ARNs may be assumed; every other is answered 403 `AccessDenied`.
    pub fn allow_only(&self, role_arns: &[&str]) {
        self.lock().allowed = Some(role_arns.iter().map(|a| a.to_string()).collect());
    }

    /// Faults match on the Action (`Fault::new("AssumeRole", 500)`); `Fault::error` overrides the code.
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub fn requests(&self) -> Vec<Call> {
        self.lock().log.clone()
    }

    pub fn count(&self, action: &str) -> usize {
        self.lock().log.iter().filter(|c| c.action == action).count()
    }

    pub fn start(self) -> RunningSts {
        let sts = self.clone();
        let handler: Handler = Arc::new(move |req| respond(&mut sts.lock(), &req));
        RunningSts { server: serve(handler), sts: self }
    }
}

/// A started fake; derefs to [`FakeSts`]. Stops on drop.
pub struct RunningSts {
    sts: FakeSts,
    server: Server,
}

impl RunningSts {
    /// The value for `AWS_ENDPOINT_URL_STS`.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl Deref for RunningSts {
    type Target = FakeSts;

    fn deref(&self) -> &FakeSts {
        &self.sts
    }
}

fn respond(st: &mut State, req: &Request) -> Response {
    let q = Query::parse(req);
    st.served += 1;
    let request_id = super::fixtures::uid("Request", "sts", &st.served.to_string());
    let (resp, error) = match handle(st, &q, req) {
        Ok(result) => (super::iam::query::success(XMLNS, &q.action, &result, &request_id), None),
        Err(failure) => (failure.render(XMLNS, &request_id), Some(failure.code)),
    };
    st.log.push(q.call(req, &resp, error));
    resp
}

fn handle(st: &mut State, q: &Query, req: &Request) -> Result<Xml, Failure> {
    let probe = Request { path: format!("/{}", q.action), ..req.clone() };
    if let Some(fault) = take_fault(&mut st.faults, &probe, false) {
        let code = fault.error.clone().unwrap_or_else(|| fault_code(fault.status).to_string());
        return Err(Failure::new(fault.status, &code, &format!("injected fault: {code}")));
    }
    let Some(key) = q.access_key.clone() else {
        return Err(Failure::new(403, "MissingAuthenticationToken", "Request is missing Authentication Token"));
    };
    let caller = caller(st, &key)?;
    match q.action.as_str() {
        "GetCallerIdentity" => {
            Ok(Xml::new().text("Arn", &caller.arn).text("UserId", &caller.user_id).text("Account", &caller.account))
        }
        "AssumeRole" => assume_role(st, q, &caller),
        "" => Err(Failure::new(400, "MissingAction", "Missing Action")),
        other => {
            Err(Failure::new(400, "InvalidAction", &format!("Could not find operation {other} for version 2011-06-15")))
        }
    }
}

fn caller(st: &State, key: &str) -> Result<Session, Failure> {
    if let Some(session) = st.issued.get(key) {
        return Ok(session.clone());
    }
    if key.starts_with("ASIA") {
        return Err(Failure::new(
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ));
    }
    let account = st.account.clone();
    Ok(Session { arn: format!("arn:aws:iam::{account}:user/tester"), user_id: entity_id("AIDA", key), account })
}

fn assume_role(st: &mut State, q: &Query, caller: &Session) -> Result<Xml, Failure> {
    let role_arn = q.required("RoleArn")?.to_string();
    let session_name = q.required("RoleSessionName")?.to_string();
    let duration: i64 = q.param("DurationSeconds").and_then(|d| d.parse().ok()).unwrap_or(3600);
    let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
    let (account, role_name) = match parts.as_slice() {
        ["arn", _, "iam", "", account, resource] if account.len() == 12 && resource.starts_with("role/") => {
            (account.to_string(), resource.rsplit('/').next().unwrap_or_default().to_string())
        }
        _ => {
            let message = format!("{role_arn} is invalid");
            return Err(Failure::new(400, "ValidationError", &message));
        }
    };
    let missing = st.iam.as_ref().is_some_and(|iam| !iam.has_role(&role_arn));
    let refused = st.denied.contains(&role_arn) || st.allowed.as_ref().is_some_and(|a| !a.contains(&role_arn));
    if missing || refused {
        let message =
            format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", caller.arn);
        return Err(Failure::new(403, "AccessDenied", &message));
    }
    let key = format!("ASIA{account}{}", suffix(st.issued.len()));
    let role_id = match &st.iam {
        Some(iam) => iam.role_id(&role_arn).unwrap_or_else(|| entity_id("AROA", &role_arn)),
        None => entity_id("AROA", &role_arn),
    };
    let arn = format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}");
    let user_id = format!("{role_id}:{session_name}");
    if let Some(iam) = &st.iam {
        iam.register_key(&key, &account, &arn);
    }
    st.issued.insert(key.clone(), Session { account, arn: arn.clone(), user_id: user_id.clone() });
    let expiration = jiff::Timestamp::now().as_second() + duration;
    let expiration = jiff::Timestamp::from_second(expiration).unwrap_or_else(|_| jiff::Timestamp::now());
    let secret = super::fixtures::uid("Secret", &key, "").replace('-', "");
    let credentials = Xml::new()
        .text("AccessKeyId", &key)
        .text("SecretAccessKey", format!("{secret}{}", &secret[..8]))
        .text("SessionToken", super::b64::encode(format!("fake-session-token/{key}/{session_name}").as_bytes()))
        .text("Expiration", expiration);
    Ok(Xml::new()
        .node("AssumedRoleUser", Xml::new().text("AssumedRoleId", &user_id).text("Arn", &arn))
        .node("Credentials", credentials)
        .text("PackedPolicySize", 6))
}

/// 4 upper-case base-36 digits.
fn suffix(n: usize) -> String {
    let mut n = n;
    let mut out = [b'0'; 4];
    for slot in out.iter_mut().rev() {
        *slot = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 36];
        n /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fault_code(status: u16) -> &'static str {
    match status {
        400 => "ValidationError",
        403 => "AccessDenied",
        429 => "Throttling",
        503 => "ServiceUnavailable",
        _ => "InternalFailure",
    }
}
