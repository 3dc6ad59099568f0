//! Access Advisor: `GenerateServiceLastAccessedDetails` starts a job whose report is computed at once from
//! the role's policies and usage (a snapshot, so later edits do not change it) and
//! `GetServiceLastAccessedDetails` reads it: `IN_PROGRESS` until the job delay has passed, then `COMPLETED`
//! (paged with `MaxItems`/`Marker`) or `FAILED` with an `Error`. Only the access key that created a job may
//! read it; IAM says the JobId must be used by the same user or role session.

use std::time::{Duration, Instant};

use super::catalog::service_name;
use super::policy::{self, Allowed};
use super::query::{Failure, Query, Xml, page};
use super::{Caller, Role, State, Usage, parse_arn};

#[derive(Debug, Clone)]
pub(super) struct Job {
    /// Creation order.
    seq: usize,
    arn: String,
    owner_key: String,
    granularity: &'static str,
    created: Instant,
    creation_date: jiff::Timestamp,
    delay: Duration,
    /// `None` = the job fails.
    report: Option<Vec<Row>>,
    /// `GetServiceLastAccessedDetails` answers so far: `IN_PROGRESS`, and first pages of the finished job.
    pending_reads: usize,
    finished_reads: usize,
    /// Answers to calls carrying a `Marker` (later pages).
    page_reads: usize,
}

/// What a test may check about one job: who created it, for which role, and how it was read.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    /// Creation order among all jobs.
    pub seq: usize,
    /// The `Arn` it was generated for.
    pub arn: String,
    /// The access key that generated it (only that key may read it).
    pub owner_key: String,
    /// `SERVICE_LEVEL` or `ACTION_LEVEL`.
    pub granularity: &'static str,
    /// Reads answered `IN_PROGRESS`.
    pub pending_reads: usize,
    /// Reads without a `Marker` answered `COMPLETED` or `FAILED`.
    pub finished_reads: usize,
    /// Reads with a `Marker` (later pages).
    pub page_reads: usize,
    /// Services in its report (`None` for a failed job).
    pub services: Option<usize>,
}

impl Job {
    pub(super) fn arn(&self) -> &str {
        &self.arn
    }

    pub(super) fn record(&self, id: &str) -> JobRecord {
        JobRecord {
            id: id.into(),
            seq: self.seq,
            arn: self.arn.clone(),
            owner_key: self.owner_key.clone(),
            granularity: self.granularity,
            pending_reads: self.pending_reads,
            finished_reads: self.finished_reads,
            page_reads: self.page_reads,
            services: self.report.as_ref().map(Vec::len),
        }
    }
}

#[derive(Debug, Clone)]
struct Row {
    namespace: &'static str,
    usage: Option<Usage>,
    /// `(ActionName, last access)` for tracked services in action-level jobs.
    tracked: Option<Vec<(&'static str, Option<Usage>)>>,
}

pub(super) fn generate(st: &mut State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let arn = q.required("Arn")?;
    let granularity = match q.param("Granularity").unwrap_or("SERVICE_LEVEL") {
        "SERVICE_LEVEL" => "SERVICE_LEVEL",
        "ACTION_LEVEL" => "ACTION_LEVEL",
        other => {
            let message = format!(
                "1 validation error detected: Value '{other}' at 'granularity' failed to satisfy constraint: \
                 Member must satisfy enum value set: [SERVICE_LEVEL, ACTION_LEVEL]"
            );
            return Err(Failure::new(400, "ValidationError", &message));
        }
    };
    let Some((account, resource)) = parse_arn(arn) else {
        return Err(Failure::new(400, "InvalidInput", &format!("ARN {arn} is not valid.")));
    };
    if account != caller.account {
        // IAM has no resource policies: another account's entities are out of reach.
        let message = format!(
            "User: {} is not authorized to perform: iam:GenerateServiceLastAccessedDetails on resource: {arn} \
             because no resource-based policy allows the iam:GenerateServiceLastAccessedDetails action",
            caller.arn
        );
        return Err(Failure::new(403, "AccessDenied", &message));
    }
    let name = resource.rsplit('/').next().unwrap_or_default().to_string();
    let role = match st.roles.get(&(account.clone(), name.clone())) {
        Some(role) if resource.starts_with("role/") && role.arn == arn => role,
        _ => {
            let message = format!("The role with name {name} cannot be found.");
            return Err(Failure::new(404, "NoSuchEntity", &message));
        }
    };
    let report = (!st.failing.contains(&(account, name))).then(|| report(st, role, granularity));
    let id = super::super::fixtures::uid("Job", &caller.key, &st.jobs.len().to_string());
    let job = Job {
        seq: st.jobs.len(),
        arn: arn.to_string(),
        owner_key: caller.key.clone(),
        granularity,
        created: Instant::now(),
        creation_date: now(),
        delay: st.job_delay,
        report,
        pending_reads: 0,
        finished_reads: 0,
        page_reads: 0,
    };
    st.jobs.insert(id.clone(), job);
    Ok(Xml::new().text("JobId", id))
}

fn now() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Millisecond).unwrap_or(now)
}

/// The documents of the role's inline and attached policies (default versions).
fn documents(st: &State, role: &Role) -> Vec<serde_json::Value> {
    let inline = role.spec.inline.values().cloned();
    let attached =
        role.spec.attached.iter().filter_map(|arn| st.policies.get(arn)?.versions.last().map(|v| v.1.clone()));
    inline.chain(attached).map(|doc| policy::parse(&doc)).collect()
}

fn report(st: &State, role: &Role, granularity: &str) -> Vec<Row> {
    let with_entity = |u: &Usage| Usage { entity: u.entity.clone().or_else(|| Some(role.arn.clone())), ..u.clone() };
    policy::allowed(&documents(st, role))
        .into_iter()
        .map(|Allowed { namespace, tracked }| {
            let actions: Vec<(&'static str, Option<Usage>)> = tracked
                .unwrap_or_default()
                .into_iter()
                .map(|a| (a, role.action_usage.get(&format!("{namespace}:{a}")).map(with_entity)))
                .collect();
            // A tracked action's use is a use of its service too.
            let latest_action = actions.iter().filter_map(|(_, u)| u.clone()).max_by_key(|u| u.at);
            let usage = match (role.usage.get(namespace).map(with_entity), latest_action) {
                (Some(s), Some(a)) => Some(if a.at > s.at { a } else { s }),
                (s, a) => s.or(a),
            };
            let tracked = (granularity == "ACTION_LEVEL" && super::catalog::tracked_actions(namespace).is_some())
                .then_some(actions);
            Row { namespace, usage, tracked }
        })
        .collect()
}

fn row_xml(row: &Row) -> Xml {
    let usage = row.usage.as_ref();
    let mut xml = Xml::new()
        .text("ServiceName", service_name(row.namespace).unwrap_or(row.namespace))
        .text("ServiceNamespace", row.namespace)
        .opt("LastAuthenticated", usage.map(|u| &u.text))
        .opt("LastAuthenticatedEntity", usage.and_then(|u| u.entity.as_ref()))
        .opt("LastAuthenticatedRegion", usage.and_then(|u| u.region.as_ref()))
        .text("TotalAuthenticatedEntities", usize::from(usage.is_some()));
    if let Some(actions) = &row.tracked {
        let members = actions.iter().map(|(name, u)| {
            let u = u.as_ref();
            Xml::new()
                .text("ActionName", name)
                .opt("LastAccessedTime", u.map(|u| &u.text))
                .opt("LastAccessedEntity", u.and_then(|u| u.entity.as_ref()))
                .opt("LastAccessedRegion", u.and_then(|u| u.region.as_ref()))
        });
        xml = xml.list("TrackedActionsLastAccessed", members);
    }
    xml
}

pub(super) fn get(st: &mut State, q: &Query, caller: &Caller) -> Result<Xml, Failure> {
    let id = q.required("JobId")?;
    if id.len() != 36 {
        let message = format!(
            "1 validation error detected: Value '{id}' at 'jobId' failed to satisfy constraint: \
             Member must have length less than or equal to 36 and greater than or equal to 36"
        );
        return Err(Failure::new(400, "ValidationError", &message));
    }
    let page_cap = st.page_cap;
    let job = st.jobs.get_mut(id).filter(|j| j.owner_key == caller.key).ok_or_else(|| {
        Failure::new(404, "NoSuchEntity", &format!("No service last accessed report found for JobId {id}."))
    })?;
    let header = Xml::new().text("JobType", job.granularity).text("JobCreationDate", job.creation_date);
    let pending = job.created.elapsed() < job.delay;
    match (pending, q.param("Marker").is_some()) {
        (true, _) => job.pending_reads += 1,
        (false, false) => job.finished_reads += 1,
        (false, true) => job.page_reads += 1,
    }
    if pending {
        return Ok(Xml::new()
            .text("JobStatus", "IN_PROGRESS")
            .append(header)
            .list("ServicesLastAccessed", [])
            .text("IsTruncated", false));
    }
    let completed = job.creation_date.checked_add(job.delay).unwrap_or(job.creation_date);
    let Some(rows) = &job.report else {
        let error = Xml::new()
            .text("Message", "An internal error occurred while generating the report. Try again later.")
            .text("Code", "ServiceFailure");
        return Ok(Xml::new()
            .text("JobStatus", "FAILED")
            .append(header)
            .list("ServicesLastAccessed", [])
            .text("JobCompletionDate", completed)
            .text("IsTruncated", false)
            .node("Error", error));
    };
    let capped;
    let q = match page_cap {
        Some(cap) => {
            let mut params = q.params.clone();
            if let Some(entry) = params.iter_mut().find(|(k, _)| k == "MaxItems") {
                // Still validated as IAM validates it; only a valid MaxItems is capped.
                if entry.1.parse::<usize>().is_ok_and(|n| (1..=1000).contains(&n) && n > cap) {
                    entry.1 = cap.to_string();
                }
            } else {
                params.push(("MaxItems".into(), cap.min(100).to_string()));
            }
            capped = Query { action: q.action.clone(), params, access_key: q.access_key.clone() };
            &capped
        }
        None => q,
    };
    let page = page(rows, q, 100, 1000)?;
    let xml = Xml::new()
        .text("JobStatus", "COMPLETED")
        .append(header)
        .list("ServicesLastAccessed", page.items.iter().map(row_xml))
        .text("JobCompletionDate", completed);
    Ok(page.tail(xml))
}
