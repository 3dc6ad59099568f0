//! The IAM side of the commands: the SDK config, last-accessed reports with a progress bar, trust policies
//! for `doctor`, the `who-uses` summary and `--suggest-policy`.

use std::time::Duration;

use super::{DEFAULT_UNUSED_DAYS, now_seconds, print, warn};
use crate::act::render;
use crate::arn::{RoleArn, RoleQuery};
use crate::audit::AuditReport;
use crate::cli::{Cli, Format, IamArgs};
use crate::collect::cache::{self, Cache};
use crate::collect::iam::{AuditSettings, IamClients};
use crate::model::{BindingList, RoleReport, Snapshot};
use crate::policy::observed::{Evidence, ObservedDraft, narrow};
use crate::usage::{Observed, Usage, User};
use crate::{Result, audit, collect};
use std::collections::BTreeSet;

/// The last-accessed summary of the roles `who-uses` found: from the snapshot offline, live when AWS
/// credentials allow (cached, so asking again is free), otherwise nothing.
pub(super) async fn usage_summary(
    cli: &Cli,
    snap: &Snapshot,
    list: &BindingList,
    query: &RoleQuery,
) -> Option<AuditReport> {
    let (reports, now) = if cli.output.snapshot.is_some() {
        (snap.last_accessed.clone(), snap.taken_at)
    } else {
        let roles: Vec<RoleArn> =
            audit::auditable(list).into_iter().filter(|r| query.matches(&r.to_string())).collect();
        let reports = match connect(cli, snap, &[]).await {
            Ok(iam) => Ok(last_accessed(&iam, &roles, &IamArgs::default()).await),
            Err(e) => Err(e),
        };
        match reports {
            Ok(reports) => (reports, now_seconds()),
            Err(e) => {
                tracing::debug!("no last-accessed summary: {e}");
                return None;
            }
        }
    };
    let mut report = audit::audit(list, &reports, DEFAULT_UNUSED_DAYS, now);
    report.roles.retain(|r| query.matches(&r.role_arn));
    let known = report.roles.iter().any(|r| r.error.is_none());
    known.then_some(report)
}

/// Drafts narrower policies for the roles with unused services and prints them (never changes IAM). With
/// observed usage, also action-level drafts and, for a role whose service accounts call different actions,
/// a split proposal.
pub(super) async fn suggest_policies(
    cli: &Cli,
    iam: &IamClients,
    report: &audit::AuditReport,
    usage: Option<&Usage>,
) -> Result<()> {
    let mut items = Vec::new();
    let observed_role = |r: &audit::RoleAudit| usage.is_some() && r.observed.is_some() && r.error.is_none();
    for role in report.roles.iter().filter(|r| r.has_unused() || observed_role(r)) {
        let Ok(arn) = role.role_arn.parse::<RoleArn>() else { continue };
        let unused_actions = role.unused_actions();
        let mut item = audit::RoleSuggestion {
            role_arn: role.role_arn.clone(),
            unused_services: role.unused_services.clone(),
            unused_actions: unused_actions.clone(),
            drafts: Vec::new(),
            error: None,
            observed_drafts: None,
            split: None,
            called_by_others: Vec::new(),
        };
        match iam.client_for(&arn) {
            Err(e) => item.error = Some(e),
            Ok(client) => match collect::policies::role_policies(client, &arn).await {
                Ok(docs) => item.drafts = crate::policy::suggest(&docs, &role.unused_services, &unused_actions).drafts,
                Err((code, message)) => item.error = Some(crate::model::ReportError { code, message }),
            },
        }
        if let (Some(usage), Some(observed), None) = (usage, &role.observed, &item.error) {
            observed_drafts(&mut item, role, observed, usage);
        }
        items.push(item);
    }
    let doc = audit::PolicySuggestionList {
        api_version: crate::model::API_VERSION.to_string(),
        kind: "PolicySuggestionList".to_string(),
        cluster: report.cluster.clone(),
        unused_days: report.unused_days,
        generated_at: report.generated_at,
        items,
    };
    print(cli, |out, paint| match cli.output.output {
        Format::Table | Format::Wide => render::suggestions(out, &doc, paint),
        f => render::document(out, &doc, f),
    })
}

/// The observed-usage drafts of one role (from its Access Advisor drafts), and its split proposal.
fn observed_drafts(item: &mut audit::RoleSuggestion, role: &audit::RoleAudit, observed: &Observed, usage: &Usage) {
    let seen_services: BTreeSet<String> =
        observed.actions.iter().filter_map(|a| a.action.split_once(':').map(|(s, _)| s.to_ascii_lowercase())).collect();
    let evidence = |actions: BTreeSet<String>| Evidence {
        observed: actions,
        coverage: usage.coverage.clone(),
        unseen_services: role
            .services
            .iter()
            .filter(|s| s.state == audit::UseState::Used && !seen_services.contains(&s.namespace))
            .map(|s| s.namespace.clone())
            .collect(),
    };
    let narrow_all = |e: &Evidence| -> Vec<ObservedDraft> {
        item.drafts.iter().filter_map(|d| Some(narrow(&d.source, d.document.as_ref()?, e))).collect()
    };
    let all = evidence(observed.actions.iter().map(|a| a.action.clone()).collect());
    let drafts = narrow_all(&all);
    // Service accounts with their actions: the role's bindings here, and any other that called it.
    let sets: Vec<(User, Vec<String>)> = role
        .users()
        .into_iter()
        .map(|u| {
            let a = observed.actions_of(&u);
            (u, a)
        })
        .collect();
    let differ = sets.len() > 1 && sets.iter().any(|(_, a)| *a != sets[0].1);
    if differ {
        item.split = Some(
            sets.into_iter()
                .map(|(user, actions)| {
                    let drafts = narrow_all(&evidence(actions.iter().cloned().collect()));
                    audit::SplitProposal {
                        namespace: user.namespace,
                        service_account: user.service_account,
                        actions,
                        drafts,
                    }
                })
                .collect(),
        );
        item.called_by_others =
            observed.actions.iter().filter(|a| a.users.is_empty()).map(|a| a.action.clone()).collect();
    }
    item.observed_drafts = Some(drafts);
}

/// The IAM clients of a command, built once: the SDK config (IAM is global, but signing needs a region: the
/// cluster's, else us-east-1), the caller's account, and a client per `--account-role`.
pub(super) async fn connect(cli: &Cli, snap: &Snapshot, account_roles: &[(String, String)]) -> Result<IamClients> {
    let region = snap.cluster.region.clone().or_else(|| cli.aws.region.clone());
    let mut sdk = collect::aws::sdk_config(region.as_deref(), cli.aws.profile.as_deref()).await;
    if sdk.region().is_none() {
        sdk = collect::aws::sdk_config(Some("us-east-1"), cli.aws.profile.as_deref()).await;
    }
    // The configuration file's account roles, then the flags over them.
    let mut roles = match &cli.aws.config {
        Some(path) => crate::cli::ConfigFile::read(path)?.account_roles,
        None => Default::default(),
    };
    roles.extend(account_roles.iter().cloned());
    IamClients::connect(&sdk, &roles.into_iter().collect()).await
}

/// Reads the roles' trust policies and the account's OIDC providers, for `doctor`.
pub(super) async fn role_wiring(
    cli: &Cli,
    iam: &IamClients,
    roles: &[RoleArn],
) -> (Vec<crate::model::RoleDetails>, Option<Vec<String>>) {
    let details = collect::roles::details(iam, roles).await;
    let providers = match iam.own() {
        Some(client) => match collect::roles::oidc_providers(client).await {
            Ok(p) => Some(p),
            Err(e) => {
                warn(cli, &format!("cannot check the cluster's OIDC provider: {e}"));
                None
            }
        },
        None => None,
    };
    (details, providers)
}

/// Reads last-accessed reports live, with a progress bar on a terminal when it takes more than a moment.
pub(super) async fn last_accessed(iam: &IamClients, roles: &[RoleArn], args: &IamArgs) -> Vec<RoleReport> {
    let settings = AuditSettings {
        granularity: args.granularity,
        concurrency: usize::from(args.concurrency),
        job_timeout: Duration::from_secs(args.job_timeout),
        refresh: args.refresh,
        cache: Cache::new(args.cache_dir.as_deref(), cache::DEFAULT_TTL),
    };
    let bar = super::progress::delayed_bar(
        roles.len() as u64,
        "{spinner} reading IAM last-accessed data {pos}/{len} roles {wide_bar} {elapsed}",
    );
    let reports = collect::iam::reports(iam, roles, &settings, &|_| bar.inc(1)).await;
    bar.finish_and_clear();
    reports
}
