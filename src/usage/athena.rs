//! Observed usage at organisation scale: the attribution as one SQL query over AWS's documented CloudTrail
//! table in Athena (`useridentity` a struct, `requestparameters`/`responseelements` JSON text, partitioned by
//! `timestamp` = `yyyy/MM/dd`), keeping the events of the accounts the roles belong to. The query tallies the calls of the roles in scope per (role, access key,
//! event) and joins each key to the STS event that issued it; [`tally_from_rows`] turns its rows into the
//! same [`Tally`] the log-file reader builds, so attribution to this cluster is the same code either way.
//!
//! The SQL is Trino's (Athena engine 3). [`Dialect::DuckDb`] maps the one function whose name differs, so
//! the query's semantics are tested by running it on DuckDB over the same records the reader is tested on.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;

use super::{Count, Issued, POD_IDENTITY_SERVICE, Tally, action, role_key};
use crate::arn::RoleArn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Athena (Trino).
    Athena,
    /// DuckDB, for testing the query's meaning.
    DuckDb,
}

/// What the query covers.
#[derive(Debug, Clone)]
pub struct QueryScope<'a> {
    /// `database.table`, as the user names it.
    pub table: &'a str,
    /// Whole UTC days, first and last (partition pruning on `timestamp`).
    pub from: Date,
    pub to: Date,
    pub roles: &'a [RoleArn],
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().map(|s| quote(&s)).collect::<Vec<_>>().join(", ")
}

/// The query: one row per (role, access key, event source, event name, denied) with its count and last time,
/// and the issuing STS event's columns (null when the key's session began outside the window).
pub fn query(scope: &QueryScope, dialect: Dialect) -> String {
    let json = match dialect {
        Dialect::Athena => "json_extract_scalar",
        Dialect::DuckDb => "json_extract_string",
    };
    let tag = |key: &str| {
        format!("NULLIF(regexp_extract(requestparameters, '\"key\":\"{key}\",\"value\":\"([^\"]*)\"', 1), '')")
    };
    let roles = list(scope.roles.iter().map(ToString::to_string));
    let window = format!(
        "\"timestamp\" BETWEEN {} AND {} AND recipientaccountid IN ({})",
        quote(&scope.from.strftime("%Y/%m/%d").to_string()),
        quote(&scope.to.strftime("%Y/%m/%d").to_string()),
        // A role's calls are logged in its own account: an organisation table holds them all.
        list(scope.roles.iter().map(|r| r.account.clone()).collect::<std::collections::BTreeSet<_>>())
    );
    format!(
        "WITH sessions AS (\n\
         \x20 SELECT {json}(responseelements, '$.credentials.accessKeyId') AS access_key,\n\
         \x20        eventname AS via,\n\
         \x20        {json}(responseelements, '$.provider') AS provider,\n\
         \x20        coalesce({json}(responseelements, '$.subjectFromWebIdentityToken'), useridentity.username) AS subject,\n\
         \x20        coalesce({arn_tag}, {name_tag}) AS cluster,\n\
         \x20        {ns_tag} AS namespace,\n\
         \x20        {sa_tag} AS service_account,\n\
         \x20        {pod_tag} AS pod\n\
         \x20 FROM {table}\n\
         \x20 WHERE {window}\n\
         \x20   AND eventsource = 'sts.amazonaws.com' AND errorcode IS NULL\n\
         \x20   AND (eventname = 'AssumeRoleWithWebIdentity'\n\
         \x20        OR (eventname = 'AssumeRole' AND useridentity.invokedby = '{pods}'))\n\
         \x20   AND {json}(requestparameters, '$.roleArn') IN ({roles})\n\
         ),\n\
         calls AS (\n\
         \x20 SELECT useridentity.sessioncontext.sessionissuer.arn AS role_arn,\n\
         \x20        useridentity.accesskeyid AS access_key,\n\
         \x20        eventsource, eventname,\n\
         \x20        coalesce(errorcode IN ({denied}), false) AS denied,\n\
         \x20        count(*) AS calls,\n\
         \x20        max(eventtime) AS last_call\n\
         \x20 FROM {table}\n\
         \x20 WHERE {window}\n\
         \x20   AND useridentity.type = 'AssumedRole'\n\
         \x20   AND useridentity.sessioncontext.sessionissuer.arn IN ({roles})\n\
         \x20 GROUP BY 1, 2, 3, 4, 5\n\
         )\n\
         SELECT c.role_arn, c.access_key, c.eventsource, c.eventname, c.denied, c.calls, c.last_call,\n\
         \x20      s.via, s.provider, s.subject, s.cluster, s.namespace, s.service_account, s.pod\n\
         FROM calls c LEFT JOIN sessions s ON c.access_key = s.access_key\n\
         ORDER BY c.role_arn, c.access_key, c.eventsource, c.eventname, c.denied\n",
        table = scope.table,
        arn_tag = tag("eks-cluster-arn"),
        name_tag = tag("eks-cluster-name"),
        ns_tag = tag("kubernetes-namespace"),
        sa_tag = tag("kubernetes-service-account"),
        pod_tag = tag("kubernetes-pod-name"),
        pods = POD_IDENTITY_SERVICE,
        denied = list(action::DENIED_CODES.iter().map(|d| d.to_string())),
    )
}

/// One result row: column name -> value (`None` for SQL null).
pub type Row = BTreeMap<String, Option<String>>;

/// The tally the query's rows describe (the same one the log-file reader builds from the records).
pub fn tally_from_rows(rows: &[Row]) -> Tally {
    let mut tally = Tally::default();
    let col = |row: &Row, name: &str| row.get(name).cloned().flatten();
    for row in rows {
        let (Some(role), Some(key), Some(source), Some(name)) =
            (col(row, "role_arn"), col(row, "access_key"), col(row, "eventsource"), col(row, "eventname"))
        else {
            continue;
        };
        let Some(role) = role.parse::<RoleArn>().ok().map(|r| role_key(&r)) else { continue };
        let issued = match col(row, "via").as_deref() {
            Some("AssumeRoleWithWebIdentity") => col(row, "provider")
                .zip(col(row, "subject"))
                .map(|(provider, subject)| Issued::WebIdentity { provider, subject }),
            Some("AssumeRole") => match (col(row, "cluster"), col(row, "namespace"), col(row, "service_account")) {
                (Some(cluster), Some(namespace), Some(service_account)) => {
                    Some(Issued::PodIdentity { cluster, namespace, service_account, pod: col(row, "pod") })
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(issued) = issued {
            tally.issued.insert(key.clone(), issued);
        }
        let Some(action) = action::action(&source, &name) else { continue };
        let calls: u64 = col(row, "calls").and_then(|c| c.parse().ok()).unwrap_or(0);
        let last = col(row, "last_call").and_then(|t| t.parse::<Timestamp>().ok());
        let denied = matches!(col(row, "denied").as_deref(), Some("true" | "True" | "1"));
        let count = tally.calls.entry(role).or_default().entry(key).or_default().entry(action).or_default();
        count.add(&Count::of(denied, calls, last));
        tally.records += calls;
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_prunes_partitions_quotes_literals_and_names_the_roles() {
        let roles: Vec<RoleArn> = vec!["arn:aws:iam::111122223333:role/o'brien/app".parse().unwrap()];
        let scope = QueryScope {
            table: "cloudtrail.logs",
            from: "2026-11-04".parse().unwrap(),
            to: "2026-12-04".parse().unwrap(),
            roles: &roles,
        };
        let sql = query(&scope, Dialect::Athena);
        assert!(sql.contains("\"timestamp\" BETWEEN '2026/11/04' AND '2026/12/04'"), "{sql}");
        assert!(sql.contains("'arn:aws:iam::111122223333:role/o''brien/app'"), "{sql}");
        assert!(sql.contains("json_extract_scalar") && !sql.contains("json_extract_string"));
        assert!(query(&scope, Dialect::DuckDb).contains("json_extract_string"));
    }
}
