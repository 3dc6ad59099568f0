//! A fake AWS CloudTrail endpoint speaking JSON 1.1 (`POST /`, `X-Amz-Target: CloudTrail_20131101.<Operation>`,
//! optionally namespaced `com.amazonaws.cloudtrail.v20131101.`; point the SDK at it with
//! `AWS_ENDPOINT_URL_CLOUDTRAIL`): `DescribeTrails` and `GetEventSelectors`, errors with `__type`, a request log.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

pub use super::http_server::{Fault, Recorded};
use super::http_server::{Handler, Request, Response, Running, take_fault};

/// The target prefix the SDK sends (`CloudTrail_20131101.`); the service also takes it namespaced.
const TARGET: &str = "CloudTrail_20131101.";

fn operation(target: &str) -> Option<&str> {
    target.strip_prefix("com.amazonaws.cloudtrail.v20131101.").unwrap_or(target).strip_prefix(TARGET)
}

/// A trail as `DescribeTrails` returns it, and its event selectors (the `GetEventSelectors` body).
#[derive(Debug, Clone)]
pub struct TrailSpec {
    pub name: String,
    pub account: String,
    pub home_region: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub multi_region: bool,
    pub kms_key: Option<String>,
    pub selectors: Value,
}

impl TrailSpec {
    /// A multi-region trail of management events (read and write) and no data events.
    pub fn new(name: &str, account: &str, region: &str, bucket: &str) -> Self {
        TrailSpec {
            name: name.into(),
            account: account.into(),
            home_region: region.into(),
            bucket: bucket.into(),
            prefix: None,
            multi_region: true,
            kms_key: None,
            selectors: json!({"EventSelectors": [
                {"ReadWriteType": "All", "IncludeManagementEvents": true, "DataResources": [], "ExcludeManagementEventSources": []}
            ]}),
        }
    }

    /// Also records S3 object-level data events.
    pub fn with_s3_data_events(mut self) -> Self {
        self.selectors["EventSelectors"][0]["DataResources"] =
            json!([{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]);
        self
    }

    pub fn arn(&self) -> String {
        format!("arn:aws:cloudtrail:{}:{}:trail/{}", self.home_region, self.account, self.name)
    }
}

#[derive(Default)]
struct State {
    trails: Vec<TrailSpec>,
    faults: Vec<Fault>,
    log: Vec<Recorded>,
}

#[derive(Clone, Default)]
pub struct FakeCloudTrail {
    state: Arc<Mutex<State>>,
}

impl FakeCloudTrail {
    pub fn new() -> Self {
        FakeCloudTrail::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_trail(&self, trail: TrailSpec) {
        self.lock().trails.push(trail);
    }

    /// Faults match on the operation name (the `X-Amz-Target` suffix), e.g. `GetEventSelectors`.
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    /// The operations called, in order.
    pub fn operations(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| r.header("x-amz-target").and_then(operation).map(str::to_string))
            .collect()
    }

    pub fn start(self) -> RunningCloudTrail {
        let ct = self.clone();
        let handler: Handler = Arc::new(move |req| {
            let mut st = ct.lock();
            st.log.push(Recorded::of(&req));
            respond(&mut st, &req)
        });
        Running::serve(self, handler)
    }
}

/// A started fake; derefs to [`FakeCloudTrail`]. Stops on drop.
pub type RunningCloudTrail = Running<FakeCloudTrail>;

fn error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(status, &json!({"__type": kind, "message": message}))
        .header("content-type", "application/x-amz-json-1.1")
}

fn respond(st: &mut State, req: &Request) -> Response {
    let operation = req.header("x-amz-target").and_then(operation).unwrap_or_default().to_string();
    let routed = Request { path: format!("/{operation}"), ..req.clone() };
    if let Some(f) = take_fault(&mut st.faults, &routed, false) {
        let kind = f.error.clone().unwrap_or_else(|| match f.status {
            400 => "ThrottlingException".into(),
            403 => "AccessDeniedException".into(),
            _ => "InternalFailure".into(),
        });
        return error(f.status, &kind, "injected fault");
    }
    if !req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")) {
        return error(400, "MissingAuthenticationTokenException", "Request is missing Authentication Token");
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
    let reply = |v: Value| Response::json(200, &v).header("content-type", "application/x-amz-json-1.1");
    match operation.as_str() {
        "DescribeTrails" => {
            let list: Vec<Value> = st
                .trails
                .iter()
                .map(|t| {
                    let mut v = json!({
                        "Name": t.name, "S3BucketName": t.bucket, "IncludeGlobalServiceEvents": true,
                        "IsMultiRegionTrail": t.multi_region, "HomeRegion": t.home_region, "TrailARN": t.arn(),
                        "LogFileValidationEnabled": true, "HasCustomEventSelectors": false,
                        "HasInsightSelectors": false, "IsOrganizationTrail": false,
                    });
                    if let Some(p) = &t.prefix {
                        v["S3KeyPrefix"] = p.clone().into();
                    }
                    if let Some(k) = &t.kms_key {
                        v["KmsKeyId"] = k.clone().into();
                    }
                    v
                })
                .collect();
            reply(json!({ "trailList": list }))
        }
        "GetEventSelectors" => {
            let wanted = body["TrailName"].as_str().unwrap_or_default();
            match st.trails.iter().find(|t| t.name == wanted || t.arn() == wanted) {
                Some(t) => {
                    let mut v = t.selectors.clone();
                    v["TrailARN"] = t.arn().into();
                    reply(v)
                }
                None => error(400, "TrailNotFoundException", &format!("Unknown trail: {wanted} for the user")),
            }
        }
        other => error(400, "UnknownOperationException", &format!("unknown operation {other}")),
    }
}
