//! A fake Amazon Athena endpoint speaking JSON 1.1 (`POST /`, `X-Amz-Target: AmazonAthena.<Operation>`; point
//! the SDK at it with `AWS_ENDPOINT_URL_ATHENA`): `StartQueryExecution`, `GetQueryExecution` (RUNNING for a
//! few polls, then SUCCEEDED or FAILED, with `DataScannedInBytes`), and `GetQueryResults` (the header row
//! first, `NextToken` paging). The query is answered by an engine the test gives (DuckDB over fixture
//! records), so the rows are what the SQL the binary sent really computes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::http_server::{Handler, Recorded, Request, Response, Running};

/// Column names and rows (`None` = SQL null).
pub type Table = (Vec<String>, Vec<Vec<Option<String>>>);

/// Answers a query with its table, or why it failed.
pub type Engine = Arc<dyn Fn(&str) -> Result<Table, String> + Send + Sync>;

struct Query {
    sql: String,
    workgroup: Option<String>,
    polls: usize,
    result: Result<Table, String>,
}

struct State {
    engine: Engine,
    queries: BTreeMap<String, Query>,
    polls_before_done: usize,
    page_size: usize,
    bytes_scanned: u64,
    log: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeAthena {
    state: Arc<Mutex<State>>,
}

impl FakeAthena {
    pub fn new(engine: Engine) -> Self {
        let state = State {
            engine,
            queries: BTreeMap::new(),
            polls_before_done: 2,
            page_size: 3,
            bytes_scanned: 734_003_200,
            log: Vec::new(),
        };
        FakeAthena { state: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// At most `n` rows (the header included) per GetQueryResults page.
    pub fn page_size(&self, n: usize) {
        self.lock().page_size = n;
    }

    /// The SQL and workgroup of every query started.
    pub fn queries(&self) -> Vec<(String, Option<String>)> {
        self.lock().queries.values().map(|q| (q.sql.clone(), q.workgroup.clone())).collect()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    /// The operations called, in order.
    pub fn operations(&self) -> Vec<String> {
        self.lock()
            .log
            .iter()
            .filter_map(|r| r.header("x-amz-target").and_then(|t| t.rsplit('.').next()).map(str::to_string))
            .collect()
    }

    pub fn start(self) -> RunningAthena {
        let fake = self.clone();
        let handler: Handler = Arc::new(move |req| {
            let mut st = fake.lock();
            st.log.push(Recorded::of(&req));
            respond(&mut st, &req)
        });
        Running::serve(self, handler)
    }
}

/// A started fake; derefs to [`FakeAthena`]. Stops on drop.
pub type RunningAthena = Running<FakeAthena>;

fn error(kind: &str, message: &str) -> Response {
    Response::json(400, &json!({"__type": kind, "Message": message}))
        .header("content-type", "application/x-amz-json-1.1")
}

fn respond(st: &mut State, req: &Request) -> Response {
    if !req.header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")) {
        return error("MissingAuthenticationTokenException", "Request is missing Authentication Token");
    }
    let operation = req.header("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or_default().to_string();
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(json!({}));
    let reply = |v: Value| Response::json(200, &v).header("content-type", "application/x-amz-json-1.1");
    let id = body["QueryExecutionId"].as_str().unwrap_or_default().to_string();
    match operation.as_str() {
        "StartQueryExecution" => {
            let sql = body["QueryString"].as_str().unwrap_or_default().to_string();
            let id = format!("a1b2c3d4-0000-4000-8000-{:012}", st.queries.len() + 1);
            let result = (st.engine)(&sql);
            let workgroup = body["WorkGroup"].as_str().map(str::to_string);
            st.queries.insert(id.clone(), Query { sql, workgroup, polls: 0, result });
            reply(json!({ "QueryExecutionId": id }))
        }
        "GetQueryExecution" => {
            let (done, bytes) = (st.polls_before_done, st.bytes_scanned);
            let Some(q) = st.queries.get_mut(&id) else {
                return error("InvalidRequestException", "QueryExecution not found");
            };
            q.polls += 1;
            let status = match (&q.result, q.polls > done) {
                (_, false) => json!({"State": "RUNNING"}),
                (Ok(_), true) => json!({"State": "SUCCEEDED"}),
                (Err(e), true) => json!({"State": "FAILED", "StateChangeReason": e}),
            };
            reply(json!({"QueryExecution": {
                "QueryExecutionId": id, "Query": q.sql, "StatementType": "DML", "Status": status,
                "Statistics": {"DataScannedInBytes": bytes, "EngineExecutionTimeInMillis": 1234},
            }}))
        }
        "GetQueryResults" => {
            let page_size = st.page_size;
            let Some(q) = st.queries.get(&id) else {
                return error("InvalidRequestException", "QueryExecution not found");
            };
            let Ok((columns, rows)) = &q.result else {
                return error("InvalidRequestException", "Query has not yet finished");
            };
            let datum = |v: &Option<String>| v.as_ref().map_or(json!({}), |v| json!({"VarCharValue": v}));
            // The header row comes first, as Athena returns it for SELECT queries.
            let mut all: Vec<Value> =
                vec![json!({"Data": columns.iter().map(|c| json!({"VarCharValue": c})).collect::<Vec<_>>()})];
            all.extend(rows.iter().map(|r| json!({"Data": r.iter().map(datum).collect::<Vec<_>>()})));
            let start: usize = body["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            let end = (start + page_size).min(all.len());
            let mut v = json!({
                "UpdateCount": 0,
                "ResultSet": {
                    "Rows": all[start..end],
                    "ResultSetMetadata": {"ColumnInfo": columns.iter().map(|c| json!({
                        "CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c,
                        "Type": "varchar", "Precision": 2147483647, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": true,
                    })).collect::<Vec<_>>()},
                },
            });
            if end < all.len() {
                v["NextToken"] = end.to_string().into();
            }
            reply(v)
        }
        other => error("UnknownOperationException", &format!("unknown operation {other}")),
    }
}
