//! A fake Amazon EKS endpoint speaking REST-JSON as aws-sdk-eks expects it (point the SDK at it with
//! `AWS_ENDPOINT_URL_EKS`): DescribeCluster, ListPodIdentityAssociations (paged, filtered) and
//! DescribePodIdentityAssociation, with errors the AWS way (`x-amzn-ErrorType` + `{"message"}`), injected
//! faults, a delay and a request log that says whether each request was SigV4-signed.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use super::b64;
pub use super::http_server::{Fault, Recorded};
use super::http_server::{Handler, Request, Response, Server, serve, take_fault};

const CREATED_AT: f64 = 1_700_000_000.0;

#[derive(Debug, Clone)]
struct Cluster {
    region: String,
    account: String,
    /// The 32 upper-case hex digits of the OIDC issuer and endpoint host.
    id: String,
}

/// One Pod Identity association; public so a test can edit it with [`FakeEks::edit_association`].
#[derive(Debug, Clone)]
pub struct Association {
    pub id: String,
    pub cluster: String,
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    pub target_role_arn: Option<String>,
    pub external_id: Option<String>,
    /// Set when an EKS add-on owns the association.
    pub owner_arn: Option<String>,
    pub disable_session_tags: bool,
    pub tags: BTreeMap<String, String>,
    arn: String,
}

#[derive(Default)]
struct State {
    clusters: BTreeMap<String, Cluster>,
    associations: Vec<Association>,
    faults: Vec<Fault>,
    delay: Option<Duration>,
    log: Vec<Recorded>,
}

/// The fake's state; clone-cheap, shared with the server once started.
#[derive(Clone, Default)]
pub struct FakeEks {
    state: Arc<Mutex<State>>,
}

/// Base-36 digits of a hash, for ids that look like EKS's.
fn alnum(seed: &str, len: usize) -> String {
    let mut h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (0..len)
        .map(|_| {
            let digit = (h % 36) as u32;
            h = h.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) >> 1;
            char::from_digit(digit, 36).unwrap_or('0')
        })
        .collect()
}

impl FakeEks {
    pub fn new() -> Self {
        FakeEks::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an ACTIVE cluster and returns its OIDC issuer URL.
    pub fn add_cluster(&self, name: &str, region: &str, account: &str) -> String {
        let id = super::fixtures::uid("Cluster", &format!("{account}/{region}"), name).replace('-', "").to_uppercase();
        let cluster = Cluster { region: region.into(), account: account.into(), id };
        let issuer = issuer(&cluster);
        self.lock().clusters.insert(name.to_string(), cluster);
        issuer
    }

    /// Adds an association for `ns`/`sa` and returns its id (`a-` + 17 lowercase alphanumerics).
    pub fn add_association(
        &self,
        cluster: &str,
        ns: &str,
        sa: &str,
        role_arn: &str,
        target_role_arn: Option<&str>,
    ) -> String {
        let mut st = self.lock();
        let c = st.clusters.get(cluster).unwrap_or_else(|| panic!("add_cluster({cluster:?}) first"));
        let id = format!("a-{}", alnum(&format!("{cluster}/{ns}/{sa}/{}", st.associations.len()), 17));
        let arn = format!("arn:aws:eks:{}:{}:podidentityassociation/{cluster}/{id}", c.region, c.account);
        st.associations.push(Association {
            id: id.clone(),
            cluster: cluster.into(),
            namespace: ns.into(),
            service_account: sa.into(),
            role_arn: role_arn.into(),
            // EKS generates an external id for role chaining and puts it in the target role's trust.
            external_id: target_role_arn.map(|_| super::fixtures::uid("ExternalId", cluster, &id)),
            target_role_arn: target_role_arn.map(str::to_string),
            owner_arn: None,
            disable_session_tags: false,
            tags: BTreeMap::new(),
            arn,
        });
        id
    }

    /// Changes an association in place (role, owner, tags...). Panics if the id is unknown.
    pub fn edit_association(&self, id: &str, edit: impl FnOnce(&mut Association)) {
        let mut st = self.lock();
        let found = st.associations.iter_mut().find(|a| a.id == id);
        edit(found.unwrap_or_else(|| panic!("no association {id}")));
    }

    pub fn remove_association(&self, id: &str) -> bool {
        let mut st = self.lock();
        let before = st.associations.len();
        st.associations.retain(|a| a.id != id);
        st.associations.len() != before
    }

    /// `Fault::error` overrides the `x-amzn-ErrorType` derived from the status.
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    pub fn count(&self, path_contains: &str) -> usize {
        self.lock().log.iter().filter(|r| r.path.contains(path_contains)).count()
    }

    pub fn start(self) -> RunningEks {
        let eks = self.clone();
        let handler: Handler = Arc::new(move |req| {
            let mut st = eks.lock();
            st.log.push(Recorded::of(&req));
            let delay = st.delay;
            respond(&mut st, &req).delayed(delay)
        });
        RunningEks { server: serve(handler), eks: self }
    }
}

/// A started fake; derefs to [`FakeEks`]. Stops on drop.
pub struct RunningEks {
    eks: FakeEks,
    server: Server,
}

impl RunningEks {
    /// The value for `AWS_ENDPOINT_URL_EKS`.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl Deref for RunningEks {
    type Target = FakeEks;

    fn deref(&self) -> &FakeEks {
        &self.eks
    }
}

fn issuer(c: &Cluster) -> String {
    format!("https://oidc.eks.{}.amazonaws.com/id/{}", c.region, c.id)
}

fn error(status: u16, error_type: &str, message: &str) -> Response {
    Response::json(status, &json!({ "message": message })).header("x-amzn-errortype", error_type)
}

fn error_type(status: u16) -> &'static str {
    match status {
        400 => "InvalidParameterException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "ServerException",
    }
}

fn respond(st: &mut State, req: &Request) -> Response {
    let continuing = req.query_param("nextToken").is_some_and(|t| !t.is_empty());
    let resp = match take_fault(&mut st.faults, req, continuing) {
        Some(fault) => {
            let kind = fault.error.clone().unwrap_or_else(|| error_type(fault.status).to_string());
            error(fault.status, &kind, &format!("injected fault: {kind}"))
        }
        None => route(st, req),
    };
    resp.header("x-amzn-requestid", &super::fixtures::uid("Request", "", &st.log.len().to_string()))
}

fn route(st: &State, req: &Request) -> Response {
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let (name, rest) = match segments.as_slice() {
        ["clusters", name, rest @ ..] if req.method == "GET" => (*name, rest),
        _ => return error(404, "UnknownOperationException", "Unknown operation"),
    };
    let Some(cluster) = st.clusters.get(name) else {
        return error(404, "ResourceNotFoundException", &format!("No cluster found for name: {name}."));
    };
    match rest {
        [] => Response::json(200, &json!({ "cluster": describe_cluster(name, cluster) })),
        ["pod-identity-associations"] => list_associations(st, name, req),
        ["pod-identity-associations", id] => match st.associations.iter().find(|a| a.cluster == name && a.id == *id) {
            Some(a) => Response::json(200, &json!({ "association": describe_association(a) })),
            None => error(
                404,
                "ResourceNotFoundException",
                &format!("No Pod Identity Association found with id {id} in cluster {name}."),
            ),
        },
        _ => error(404, "UnknownOperationException", "Unknown operation"),
    }
}

fn describe_cluster(name: &str, c: &Cluster) -> Value {
    let (region, account) = (&c.region, &c.account);
    json!({
        "name": name, "arn": format!("arn:aws:eks:{region}:{account}:cluster/{name}"),
        "createdAt": CREATED_AT, "version": "1.33", "status": "ACTIVE", "platformVersion": "eks.10",
        "endpoint": format!("https://{}.gr7.{region}.eks.amazonaws.com", c.id),
        "roleArn": format!("arn:aws:iam::{account}:role/eksClusterRole"),
        "identity": { "oidc": { "issuer": issuer(c) } },
        "certificateAuthority": { "data": b64::encode(b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n") },
        "resourcesVpcConfig": {
            "subnetIds": ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"], "securityGroupIds": [],
            "clusterSecurityGroupId": "sg-0123456789abcdef0", "vpcId": "vpc-0123456789abcdef0",
            "endpointPublicAccess": true, "endpointPrivateAccess": true, "publicAccessCidrs": ["0.0.0.0/0"],
        },
        "kubernetesNetworkConfig": { "serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": "ipv4" },
        "logging": { "clusterLogging": [{ "types": ["api", "audit", "authenticator"], "enabled": false }] },
        "accessConfig": { "authenticationMode": "API_AND_CONFIG_MAP" },
        "tags": {}, "health": { "issues": [] },
    })
}

fn summary(a: &Association) -> Value {
    let mut v = json!({
        "clusterName": a.cluster, "namespace": a.namespace, "serviceAccount": a.service_account,
        "associationArn": a.arn, "associationId": a.id,
    });
    if let Some(owner) = &a.owner_arn {
        v["ownerArn"] = json!(owner);
    }
    v
}

fn describe_association(a: &Association) -> Value {
    let mut v = summary(a);
    v["roleArn"] = json!(a.role_arn);
    v["tags"] = json!(a.tags);
    v["createdAt"] = json!(CREATED_AT);
    v["modifiedAt"] = json!(CREATED_AT);
    v["disableSessionTags"] = json!(a.disable_session_tags);
    if let Some(target) = &a.target_role_arn {
        v["targetRoleArn"] = json!(target);
    }
    if let Some(external_id) = &a.external_id {
        v["externalId"] = json!(external_id);
    }
    v
}

/// Tokens are opaque to clients; here they are the base64 of the next offset.
fn list_associations(st: &State, cluster: &str, req: &Request) -> Response {
    let max = match req.query_param("maxResults").map(|m| m.parse::<usize>()) {
        None => 100,
        Some(Ok(m)) if (1..=100).contains(&m) => m,
        Some(_) => {
            let message = format!(
                "1 validation error detected: Value '{}' at 'maxResults' failed to satisfy constraint: \
                 Member must have value between 1 and 100",
                req.query_param("maxResults").unwrap_or_default()
            );
            return error(400, "InvalidParameterException", &message);
        }
    };
    let start = match req.query_param("nextToken") {
        None => 0,
        Some(token) => match b64::decode(&token).and_then(|b| String::from_utf8(b).ok()) {
            Some(offset) if offset.parse::<usize>().is_ok() => offset.parse().unwrap_or(0),
            _ => {
                return error(400, "InvalidParameterException", "The nextToken provided is invalid.");
            }
        },
    };
    let namespace = req.query_param("namespace");
    let service_account = req.query_param("serviceAccount");
    let matching: Vec<&Association> = st
        .associations
        .iter()
        .filter(|a| a.cluster == cluster)
        .filter(|a| namespace.as_ref().is_none_or(|ns| *ns == a.namespace))
        .filter(|a| service_account.as_ref().is_none_or(|sa| *sa == a.service_account))
        .collect();
    let page: Vec<Value> = matching.iter().skip(start).take(max).map(|a| summary(a)).collect();
    let mut body = json!({ "associations": page });
    if start + max < matching.len() {
        body["nextToken"] = json!(b64::encode((start + max).to_string().as_bytes()));
    }
    Response::json(200, &body)
}
