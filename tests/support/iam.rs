//! A fake AWS IAM endpoint speaking the Query protocol as aws-sdk-iam expects it (point the SDK at it with
//! `AWS_ENDPOINT_URL_IAM`): roles with trust and permission policies, managed policies (a few AWS managed ones
//! built in), OIDC providers, and Access Advisor jobs whose service list is computed from the role's policies
//! the way IAM computes it. Callers are told apart by the access key in the SigV4 `Authorization` header: a
//! fake may hold several accounts, each seeing only its own entities. Throttling, denials, latency, injected
//! faults and a request log let tests drive the unhappy paths.

mod advisor;
mod catalog;
mod entities;
mod policy;
pub(super) mod query;
mod route;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use super::http_server::Fault;
use super::http_server::{Handler, Server, serve};
pub use advisor::JobRecord;
pub use query::Call;
pub use spec::{RoleSpec, allow, irsa_trust, pod_identity_trust};

const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
const CREATED: &str = "2025-03-01T10:00:00Z";

/// The key the tests sign with unless they say otherwise; it belongs to the fake's primary account.
pub const DEFAULT_ACCESS_KEY: &str = "AKIDEXAMPLE";

/// When, from where and by whom a service or tracked action was last accessed.
#[derive(Debug, Clone)]
struct Usage {
    at: jiff::Timestamp,
    text: String,
    entity: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Clone)]
struct Role {
    spec: RoleSpec,
    id: String,
    arn: String,
    /// namespace -> last access.
    usage: BTreeMap<String, Usage>,
    /// `ns:ActionName` -> last access.
    action_usage: BTreeMap<String, Usage>,
}

#[derive(Debug, Clone)]
struct ManagedPolicy {
    name: String,
    arn: String,
    path: String,
    id: String,
    description: Option<String>,
    /// Version documents; the last is the default (`v{index+1}`, or the AWS version for AWS managed ones).
    versions: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct OidcProvider {
    account: String,
    /// Without `https://`, as IAM stores it.
    url: String,
    client_ids: Vec<String>,
    thumbprints: Vec<String>,
}

#[derive(Debug, Clone)]
struct Caller {
    key: String,
    account: String,
    arn: String,
}

#[derive(Default)]
struct State {
    primary: String,
    roles: BTreeMap<(String, String), Role>,
    policies: BTreeMap<String, ManagedPolicy>,
    oidc: BTreeMap<String, OidcProvider>,
    /// Keys registered by a test or by the fake STS: key -> (account, caller ARN).
    keys: BTreeMap<String, (String, String)>,
    jobs: BTreeMap<String, advisor::Job>,
    job_delay: Duration,
    failing: BTreeSet<(String, String)>,
    denied: BTreeSet<String>,
    /// `(action, role key)`: calls of `action` on that one role are denied.
    denied_on: BTreeSet<(String, (String, String))>,
    /// At most this many services per `GetServiceLastAccessedDetails` page, whatever `MaxItems` says.
    page_cap: Option<usize>,
    throttle: Option<(f64, u64)>,
    draws: u64,
    latency: Option<Duration>,
    faults: Vec<Fault>,
    served: u64,
    log: Vec<Call>,
}

/// The fake's state; clone-cheap, shared with the server once started.
#[derive(Clone)]
pub struct FakeIam {
    state: Arc<Mutex<State>>,
}

impl FakeIam {
    /// An IAM holding `account` (the primary one, where [`DEFAULT_ACCESS_KEY`] belongs) and the built-in
    /// AWS managed policies.
    pub fn new(account: &str) -> Self {
        let mut st = State { primary: account.into(), ..State::default() };
        for p in catalog::aws_managed() {
            let arn = format!("arn:aws:iam::aws:policy/{}", p.name);
            let mut versions: Vec<(String, String)> = Vec::new();
            let n: usize = p.version.trim_start_matches('v').parse().unwrap_or(1);
            for i in 1..=n {
                versions.push((format!("v{i}"), serde_json::to_string_pretty(&p.document).unwrap_or_default()));
            }
            let policy = ManagedPolicy {
                name: p.name.into(),
                id: entity_id("ANPA", &arn),
                arn: arn.clone(),
                path: "/".into(),
                description: Some(p.description.into()),
                versions,
            };
            st.policies.insert(arn, policy);
        }
        FakeIam { state: Arc::new(Mutex::new(st)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn account(&self) -> String {
        self.lock().primary.clone()
    }

    /// Adds (or replaces) a role and returns its ARN. Panics on a policy that is not JSON or on an attached
    /// policy the fake does not know.
    pub fn add_role(&self, spec: RoleSpec) -> String {
        let mut st = self.lock();
        let account = spec.account.clone().unwrap_or_else(|| st.primary.clone());
        policy::parse(&spec.trust_policy);
        spec.inline.values().for_each(|doc| drop(policy::parse(doc)));
        for arn in &spec.attached {
            assert!(st.policies.contains_key(arn), "add_managed_policy({arn:?}) before attaching it");
        }
        let path = if spec.path.ends_with('/') { spec.path.clone() } else { format!("{}/", spec.path) };
        let arn = format!("arn:aws:iam::{account}:role{path}{}", spec.name);
        let role = Role {
            id: entity_id("AROA", &arn),
            arn: arn.clone(),
            spec: RoleSpec { path, ..spec },
            usage: BTreeMap::new(),
            action_usage: BTreeMap::new(),
        };
        st.roles.insert((account, role.spec.name.clone()), role);
        arn
    }

    /// Whether a role exists (by name in the primary account, or by ARN).
    pub fn has_role(&self, role: &str) -> bool {
        self.role_id(role).is_some()
    }

    /// The `RoleId` (`AROA...`) of a role (by name in the primary account, or by ARN).
    pub fn role_id(&self, role: &str) -> Option<String> {
        let st = self.lock();
        let role = st.roles.get(&st.role_key(role))?;
        Some(role.id.clone())
    }

    /// Adds the statements of `document` to a role's trust policy (by name in the primary account, or by ARN).
    pub fn trust_also(&self, role: &str, document: &serde_json::Value) {
        let mut st = self.lock();
        let key = st.role_key(role);
        let role = st.roles.get_mut(&key).unwrap_or_else(|| panic!("no role {role:?}"));
        let mut trust: serde_json::Value = serde_json::from_str(&role.spec.trust_policy).expect("trust policy JSON");
        let added = document["Statement"].as_array().cloned().unwrap_or_default();
        trust["Statement"].as_array_mut().expect("a Statement list").extend(added);
        role.spec.trust_policy = trust.to_string();
    }

    /// Deletes a role (by name in the primary account, or by ARN); its running jobs still complete.
    pub fn remove_role(&self, role: &str) -> bool {
        let mut st = self.lock();
        let key = st.role_key(role);
        st.roles.remove(&key).is_some()
    }

    /// Adds a managed policy, or a new default version of one already known. The account comes from the ARN
    /// (`arn:aws:iam::ACCOUNT:policy/PATH/NAME`; `aws` for AWS managed).
    pub fn add_managed_policy(&self, arn: &str, document: impl Display) {
        let document = document.to_string();
        policy::parse(&document);
        let (_, resource) = parse_arn(arn).unwrap_or_else(|| panic!("not a policy ARN: {arn}"));
        let full = resource.strip_prefix("policy").unwrap_or_else(|| panic!("not a policy ARN: {arn}"));
        let (path, name) = full.rsplit_once('/').unwrap_or_else(|| panic!("not a policy ARN: {arn}"));
        let mut st = self.lock();
        let policy = st.policies.entry(arn.to_string()).or_insert_with(|| ManagedPolicy {
            name: name.into(),
            arn: arn.into(),
            path: format!("{path}/"),
            id: entity_id("ANPA", arn),
            description: None,
            versions: Vec::new(),
        });
        let version = format!("v{}", policy.versions.len() + 1);
        policy.versions.push((version, document));
    }

    /// Records service use for a role (name in the primary account, or ARN). `last_authenticated: None`
    /// clears it (never used). `entity` defaults to the role's ARN, as IAM reports for a role.
    pub fn set_usage(
        &self,
        role: &str,
        namespace: &str,
        last_authenticated: Option<&str>,
        entity: Option<&str>,
        region: Option<&str>,
    ) {
        let mut st = self.lock();
        let role = st.role_mut(role);
        match last_authenticated {
            None => drop(role.usage.remove(namespace)),
            Some(at) => {
                let usage = Usage {
                    at: timestamp(at),
                    text: at.into(),
                    entity: entity.map(str::to_string),
                    region: region.map(str::to_string),
                };
                role.usage.insert(namespace.to_string(), usage);
            }
        }
    }

    /// Records use of a tracked action (`s3:CreateBucket`). Panics on an action IAM does not track at action
    /// level (data actions such as `s3:GetObject` are not tracked). The region is the service's, else
    /// `us-east-1`.
    pub fn set_action_usage(&self, role: &str, action: &str, time: &str) {
        let (namespace, name) = action.split_once(':').unwrap_or_else(|| panic!("expected service:Action: {action}"));
        let tracked = catalog::tracked_actions(namespace).unwrap_or_default();
        let Some(name) = tracked.iter().find(|t| t.eq_ignore_ascii_case(name)) else {
            panic!("{action} is not tracked at action level; tracked {namespace} actions: {tracked:?}")
        };
        let mut st = self.lock();
        let role = st.role_mut(role);
        let region = role.usage.get(namespace).and_then(|u| u.region.clone()).or(Some("us-east-1".into()));
        let usage = Usage { at: timestamp(time), text: time.into(), entity: None, region };
        role.action_usage.insert(format!("{namespace}:{name}"), usage);
    }

    /// Adds an OIDC provider to the primary account and returns its ARN.
    pub fn add_oidc_provider(&self, url: &str, client_ids: &[&str]) -> String {
        let account = self.account();
        self.add_oidc_provider_in(&account, url, client_ids)
    }

    pub fn add_oidc_provider_in(&self, account: &str, url: &str, client_ids: &[&str]) -> String {
        let url = url.trim_start_matches("https://").trim_end_matches('/').to_string();
        let arn = format!("arn:aws:iam::{account}:oidc-provider/{url}");
        let provider = OidcProvider {
            account: account.into(),
            url,
            client_ids: client_ids.iter().map(|c| c.to_string()).collect(),
            // The thumbprint of the root CA behind EKS OIDC issuers.
            thumbprints: vec!["9e99a48a9960b14926bb7f3b02e22da2b0ab7280".into()],
        };
        self.lock().oidc.insert(arn.clone(), provider);
        arn
    }

    /// Jobs report `IN_PROGRESS` until `delay` after their creation (default: done at once).
    pub fn job_delay(&self, delay: Duration) {
        self.lock().job_delay = delay;
    }

    /// Jobs for this role (name in the primary account, or ARN) end `FAILED` with an `Error`.
    pub fn fail_jobs_for(&self, role: &str) {
        let mut st = self.lock();
        let key = st.role_key(role);
        st.failing.insert(key);
    }

    /// Every call of `action` (`GetRole` or `iam:GetRole`) is answered 403 `AccessDenied`.
    pub fn deny(&self, action: &str) {
        self.lock().denied.insert(action.trim_start_matches("iam:").to_string());
    }

    /// Calls of `action` (`GetRole`, `GenerateServiceLastAccessedDetails`, `GetServiceLastAccessedDetails`)
    /// about this one role (name in the primary account, or ARN) are answered 403 `AccessDenied`, as when the
    /// caller's policy allows the action only on some resources.
    pub fn deny_on(&self, action: &str, role: &str) {
        let mut st = self.lock();
        let key = st.role_key(role);
        st.denied_on.insert((action.trim_start_matches("iam:").to_string(), key));
    }

    pub fn clear_denials(&self) {
        let mut st = self.lock();
        st.denied.clear();
        st.denied_on.clear();
    }

    /// `GetServiceLastAccessedDetails` returns at most `n` services a page even when `MaxItems` asks for more,
    /// as IAM may ("IAM might return fewer than the MaxItems number of results even when there are more"), so
    /// a client that ignores `IsTruncated` loses services.
    pub fn max_services_per_page(&self, n: usize) {
        self.lock().page_cap = Some(n.max(1));
    }

    /// Every Access Advisor job created so far, in creation order.
    pub fn jobs(&self) -> Vec<JobRecord> {
        let st = self.lock();
        let mut jobs: Vec<JobRecord> = st.jobs.iter().map(|(id, job)| job.record(id)).collect();
        jobs.sort_by_key(|j| j.seq);
        jobs
    }

    /// A deterministic pseudo-random `share` (0..=1) of all calls is answered 400 `Throttling`.
    pub fn throttle_share(&self, share: f64, seed: u64) {
        let mut st = self.lock();
        st.throttle = (share > 0.0).then_some((share, seed));
        st.draws = 0;
    }

    /// Every answer is sent after `latency`.
    pub fn latency(&self, latency: Duration) {
        self.lock().latency = Some(latency);
    }

    /// Faults match on the Action: `Fault::new("GetRole", 500)`, `Fault::new("", 503)` for every call;
    /// `with_continue()` hits only calls carrying a `Marker`. `Fault::error` overrides the error code.
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Makes `access_key` a caller in `account` with identity `arn` (the fake STS does this for its keys).
    /// Unregistered keys are `ASIA` + 12-digit account + suffix (that account) or else the primary account.
    pub fn register_key(&self, access_key: &str, account: &str, arn: &str) {
        self.lock().keys.insert(access_key.into(), (account.into(), arn.into()));
    }

    pub fn requests(&self) -> Vec<Call> {
        self.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Calls of `action` (`GetRole`), answered or not.
    pub fn count(&self, action: &str) -> usize {
        self.lock().log.iter().filter(|c| c.action == action).count()
    }

    pub fn start(self) -> RunningIam {
        let iam = self.clone();
        let handler: Handler = Arc::new(move |req| route::respond(&mut iam.lock(), &req));
        RunningIam { server: serve(handler), iam: self }
    }
}

/// A started fake; derefs to [`FakeIam`]. Stops on drop.
pub struct RunningIam {
    iam: FakeIam,
    server: Server,
}

impl RunningIam {
    /// The value for `AWS_ENDPOINT_URL_IAM`.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl Deref for RunningIam {
    type Target = FakeIam;

    fn deref(&self) -> &FakeIam {
        &self.iam
    }
}

impl State {
    /// `name` (primary account) or a role ARN -> the key of `roles`.
    fn role_key(&self, role: &str) -> (String, String) {
        match parse_arn(role) {
            Some((account, resource)) => (account, resource.rsplit('/').next().unwrap_or_default().to_string()),
            None => (self.primary.clone(), role.to_string()),
        }
    }

    fn role_mut(&mut self, role: &str) -> &mut Role {
        let key = self.role_key(role);
        self.roles.get_mut(&key).unwrap_or_else(|| panic!("add_role({role:?}) first"))
    }

    /// The role a call is about, when it names one: `RoleName` (caller's account), `Arn`, or a job's role.
    fn target_role(&self, q: &query::Query, caller: &Caller) -> Option<(String, String)> {
        match q.action.as_str() {
            "GenerateServiceLastAccessedDetails" => q.param("Arn").map(|arn| self.role_key(arn)),
            "GetServiceLastAccessedDetails" => {
                let job = self.jobs.get(q.param("JobId")?)?;
                Some(self.role_key(job.arn()))
            }
            _ => q.param("RoleName").map(|name| (caller.account.clone(), name.to_string())),
        }
    }

    fn caller(&self, key: &str) -> Caller {
        let (account, arn) = match self.keys.get(key) {
            Some(known) => known.clone(),
            None => {
                let digits = key.strip_prefix("ASIA").and_then(|rest| rest.get(..12));
                let account = match digits {
                    Some(d) if d.bytes().all(|b| b.is_ascii_digit()) => d.to_string(),
                    _ => self.primary.clone(),
                };
                let arn = format!("arn:aws:iam::{account}:user/tester");
                (account, arn)
            }
        };
        Caller { key: key.into(), account, arn }
    }

    /// One draw per call, so the throttled share is the same run after run for the same seed.
    fn throttled(&mut self) -> bool {
        let Some((share, seed)) = self.throttle else { return false };
        self.draws += 1;
        let mut z = seed.wrapping_add(self.draws.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < share
    }

    fn request_id(&mut self) -> String {
        self.served += 1;
        super::fixtures::uid("Request", "iam", &self.served.to_string())
    }
}

/// `arn:aws:iam::ACCOUNT:RESOURCE` -> (account, resource).
fn parse_arn(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource] if !partition.is_empty() && !resource.is_empty() => {
            Some((account.to_string(), resource.to_string()))
        }
        _ => None,
    }
}

/// IAM unique ids: a 4-letter prefix by kind (`AROA` role, `ANPA` policy, `AIDA` user) and 17 characters.
pub(super) fn entity_id(prefix: &str, seed: &str) -> String {
    let hex = super::fixtures::uid("IamId", prefix, seed).replace('-', "").to_uppercase();
    format!("{prefix}{}", &hex[..17])
}

fn timestamp(text: &str) -> jiff::Timestamp {
    text.parse().unwrap_or_else(|e| panic!("not an ISO 8601 timestamp ({e}): {text}"))
}
