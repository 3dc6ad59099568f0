//! Observed usage at organisation scale, read live: the attribution query (`usage::athena::query`) run on
//! Athena (`StartQueryExecution`, polling `GetQueryExecution` with backoff, every page of
//! `GetQueryResults`), with the bytes it scanned.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_athena::types::{QueryExecutionState, ResultConfiguration};

use super::aws::error_sentence;
use crate::usage::athena::Row;
use crate::{Error, Result};

/// What Athena said about a finished query.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    pub id: String,
    pub bytes_scanned: u64,
    pub rows: usize,
}

/// Where and how to run the query.
#[derive(Debug, Clone)]
pub struct AthenaOptions {
    pub workgroup: Option<String>,
    /// `s3://bucket/prefix/` for results, when the workgroup does not set one.
    pub output: Option<String>,
    /// Give up on a query still running after this long.
    pub timeout: Duration,
}

/// Runs `sql` and returns its rows (column name -> value), with the query's statistics.
pub async fn run(sdk: &SdkConfig, sql: &str, options: &AthenaOptions) -> Result<(Vec<Row>, QueryStats)> {
    let client = aws_sdk_athena::Client::from_conf(
        aws_sdk_athena::config::Builder::from(sdk).interceptor(super::aws::RetryNotice).build(),
    );
    let failed = |what: &str, e: String| {
        Error::aws(format!(
            "Athena {what} failed ({e}); check --athena-workgroup/--athena-output and athena:{what} (README: Permissions)"
        ))
    };
    let started = client
        .start_query_execution()
        .query_string(sql)
        .set_work_group(options.workgroup.clone())
        .set_result_configuration(
            options.output.as_ref().map(|o| ResultConfiguration::builder().output_location(o).build()),
        )
        .send()
        .await
        .map_err(|e| failed("StartQueryExecution", error_sentence(&e)))?;
    let id = started.query_execution_id().unwrap_or_default().to_string();
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut wait = Duration::from_millis(200);
    let stats = loop {
        let out = client
            .get_query_execution()
            .query_execution_id(&id)
            .send()
            .await
            .map_err(|e| failed("GetQueryExecution", error_sentence(&e)))?;
        let execution = out.query_execution();
        let status = execution.and_then(|q| q.status());
        match status.and_then(|s| s.state()) {
            Some(QueryExecutionState::Succeeded) => {
                let scanned = execution.and_then(|q| q.statistics()).and_then(|s| s.data_scanned_in_bytes());
                break QueryStats { id: id.clone(), bytes_scanned: scanned.unwrap_or(0).max(0) as u64, rows: 0 };
            }
            Some(QueryExecutionState::Failed | QueryExecutionState::Cancelled) => {
                let reason = status.and_then(|s| s.state_change_reason()).unwrap_or("no reason given");
                return Err(Error::aws(format!("the Athena query {id} did not succeed: {reason}")));
            }
            _ if tokio::time::Instant::now() >= deadline => {
                return Err(Error::aws(format!(
                    "the Athena query {id} was still running after {} s; it may still finish in Athena",
                    options.timeout.as_secs()
                )));
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 3 / 2).min(Duration::from_secs(5));
            }
        }
    };
    let mut rows = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .get_query_results()
            .query_execution_id(&id)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| failed("GetQueryResults", error_sentence(&e)))?;
        let Some(set) = page.result_set() else { break };
        if columns.is_empty() {
            columns = set
                .result_set_metadata()
                .map(|m| m.column_info().iter().map(|c| c.name().to_string()).collect())
                .unwrap_or_default();
        }
        for row in set.rows() {
            let values: Vec<Option<String>> =
                row.data().iter().map(|d| d.var_char_value().map(str::to_string)).collect();
            // The first row of the first page repeats the column names.
            if rows.is_empty() && values.iter().map(|v| v.as_deref()).eq(columns.iter().map(|c| Some(c.as_str()))) {
                continue;
            }
            rows.push(columns.iter().cloned().zip(values).collect::<Row>());
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let stats = QueryStats { rows: rows.len(), ..stats };
    Ok((rows, stats))
}
