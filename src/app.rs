//! Runs a parsed command line: collect, resolve, act.

use std::io::{BufWriter, IsTerminal, Write};
use std::time::Duration;

use clap::CommandFactory;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;

use crate::act::paint::Paint;
use crate::act::{annotate, render};
use crate::arn::{RoleArn, RoleQuery};
use crate::audit::AuditReport;
use crate::cli::{Cli, Command, Format, IamArgs};
use crate::collect::cache::{self, Cache};
use crate::collect::iam::AuditSettings;
use crate::model::{BindingList, RoleReport, Snapshot};

/// The `--unused-days` default, also used for the `who-uses` summary.
const DEFAULT_UNUSED_DAYS: u32 = 90;
use crate::{Error, Result, audit, collect, doctor, resolve};

/// Runs one command; the caller turns the result into an exit code.
pub async fn run(cli: Cli) -> Result<()> {
    let command = cli.command.as_ref().unwrap_or(&Command::List);
    match command {
        Command::Completion { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(*shell, &mut Cli::command(), "kubectl-iam_roles", &mut out);
            Ok(())
        }
        Command::List => {
            let snap = load(&cli).await?;
            let list = resolve::resolve(&snap);
            if list.items.is_empty() && list.problems.is_empty() && is_table(&cli) {
                eprintln!("No IAM role bindings found {}.", scope_text(&snap));
                return Ok(());
            }
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => {
                    render::binding_table(out, &list, cli.output.output == Format::Wide, paint)
                }
                f => render::document(out, &list, f),
            })
        }
        Command::WhoUses { role } => {
            let query = RoleQuery::parse(role).map_err(|e| Error::Usage(format!("{e}; pass a role name or ARN")))?;
            let snap = load(&cli).await?;
            let list = resolve::who_uses(resolve::resolve(&snap), &query);
            if list.items.is_empty() && is_table(&cli) {
                eprintln!(
                    "Nothing uses role {role} {}: no service account is bound to it and no pod carries it.",
                    scope_text(&snap)
                );
                return Ok(());
            }
            let usage = if is_table(&cli) { usage_summary(&cli, &snap, &list, &query).await } else { None };
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => {
                    render::binding_table(out, &list, cli.output.output == Format::Wide, paint)?;
                    usage.as_ref().map_or(Ok(()), |u| render::usage_summary(out, u, paint))
                }
                f => render::document(out, &list, f),
            })
        }
        Command::Snapshot { iam } => {
            let mut snap = load(&cli).await?;
            let list = resolve::resolve(&snap);
            let roles = audit::auditable(&list);
            // Re-scoping a snapshot file keeps the IAM data it holds; a live snapshot reads it.
            if cli.output.snapshot.is_none() && !roles.is_empty() {
                let account_roles = iam.account_roles.iter().cloned().collect();
                match role_wiring(&cli, &snap, &doctor::roles_to_check(&list), &account_roles).await {
                    Ok((roles, providers)) => (snap.roles, snap.oidc_providers) = (roles, providers),
                    Err(e) => warn(&cli, &format!("trust policies are not recorded in the snapshot: {e}")),
                }
                match last_accessed(&cli, &snap, &roles, iam).await {
                    Ok(reports) => snap.last_accessed = reports,
                    Err(e) => warn(&cli, &format!("last-accessed data is not recorded in the snapshot: {e}")),
                }
            }
            let format = if cli.output.output == Format::Yaml { Format::Yaml } else { Format::Json };
            print(&cli, |out, _| render::document(out, &snap, format))
        }
        Command::Annotate { unused_days, dry_run, annotation_prefix, iam } => {
            annotate(&cli, *unused_days, *dry_run, annotation_prefix, iam).await
        }
        Command::Doctor { fail_on, account_roles } => {
            let mut snap = load(&cli).await?;
            let list = resolve::resolve(&snap);
            if cli.output.snapshot.is_none() {
                let account_roles = account_roles.iter().cloned().collect();
                match role_wiring(&cli, &snap, &doctor::roles_to_check(&list), &account_roles).await {
                    Ok((roles, providers)) => (snap.roles, snap.oidc_providers) = (roles, providers),
                    Err(e) => warn(&cli, &format!("trust policies were not checked: {e}")),
                }
            }
            let report = doctor::doctor(&list, &snap);
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => render::doctor_table(out, &report, paint),
                f => render::document(out, &report, f),
            })?;
            match fail_on {
                Some(level) if report.has(*level) => Err(Error::Findings(format!(
                    "doctor found {} error(s) and {} warning(s); failing as --fail-on asks",
                    report.summary.errors, report.summary.warnings
                ))),
                _ => Ok(()),
            }
        }
        Command::Audit { unused_days, suggest_policy, iam } => {
            let snap = load(&cli).await?;
            let list = resolve::resolve(&snap);
            let (reports, now) = if cli.output.snapshot.is_some() {
                (snap.last_accessed.clone(), snap.taken_at)
            } else {
                (last_accessed(&cli, &snap, &audit::auditable(&list), iam).await?, now_seconds())
            };
            let report = audit::audit(&list, &reports, *unused_days, now);
            if *suggest_policy {
                return suggest_policies(&cli, &snap, &report, iam).await;
            }
            if report.roles.is_empty() && is_table(&cli) {
                eprintln!("No IAM roles are bound {}.", scope_text(&snap));
                return Ok(());
            }
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => {
                    render::audit_table(out, &report, cli.output.output == Format::Wide, paint)
                }
                f => render::document(out, &report, f),
            })
        }
    }
}

fn is_table(cli: &Cli) -> bool {
    matches!(cli.output.output, Format::Table | Format::Wide)
}

fn scope_text(snap: &Snapshot) -> String {
    let mut s = match &snap.scope.namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "in any namespace".to_string(),
    };
    if let Some(sel) = &snap.scope.selector {
        s.push_str(&format!(" for pods matching {sel}"));
    }
    s
}

/// Collects live, or reads `--snapshot`; prints collection warnings to stderr either way.
async fn load(cli: &Cli) -> Result<Snapshot> {
    let snap = match &cli.output.snapshot {
        Some(path) => collect::snapshot::narrow(collect::snapshot::read(path)?, &cli.kube)?,
        None => {
            let conn = collect::Connection::open(&cli.kube, &cli.aws).await?;
            collect::live(&conn, cli.kube.selector.as_deref()).await?
        }
    };
    print_warnings(cli, &snap);
    Ok(snap)
}

fn print_warnings(cli: &Cli, snap: &Snapshot) {
    for w in &snap.warnings {
        warn(cli, w);
    }
    if let Some(reason) = &snap.pod_identity.skipped_reason {
        warn(cli, &format!("Pod Identity associations were not read: {reason}"));
    }
}

/// Audits live, plans the annotation changes, and applies them (or prints them with `--dry-run`).
/// Per-object failures are reported and counted; only a failed audit is an error.
async fn annotate(cli: &Cli, unused_days: u32, dry_run: bool, prefix: &str, iam: &IamArgs) -> Result<()> {
    if cli.output.snapshot.is_some() {
        return Err(Error::Usage(
            "annotate writes to the live cluster and cannot run on --snapshot; use audit --snapshot".into(),
        ));
    }
    if cli.kube.selector.is_some() {
        return Err(Error::Usage(
            "annotate works on whole namespaces (it also clears findings that no longer hold); drop -l".into(),
        ));
    }
    let conn = collect::Connection::open(&cli.kube, &cli.aws).await?;
    let snap = collect::live(&conn, None).await?;
    print_warnings(cli, &snap);
    let list = resolve::resolve(&snap);
    let reports = last_accessed(cli, &snap, &audit::auditable(&list), iam).await?;
    let now = now_seconds();
    let report = audit::audit(&list, &reports, unused_days, now);
    let objects = collect::kube::annotatable(&conn.client, conn.namespace.as_deref())
        .await
        .map_err(|e| Error::Kube(e.explain(&conn.server)))?;
    let (changes, missing) = annotate::plan(&report, &objects, &annotate::Keys::new(prefix));

    let mut summary = annotate::Summary {
        kind: "AnnotateSummary",
        dry_run,
        roles_audited: report.roles.iter().filter(|r| r.error.is_none()).count(),
        roles_with_unused_services: report
            .roles
            .iter()
            .filter(|r| matches!(r.status, audit::Status::UnusedServices | audit::Status::UnusedRole))
            .count(),
        errors: report.roles.iter().filter(|r| r.error.is_some()).count(),
        skipped: missing.len(),
        ..Default::default()
    };
    for m in &missing {
        warn(cli, m);
    }
    let paint = Paint::stdout(cli.output.color);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for change in &changes {
        let (outcome, event_warning) = if dry_run {
            annotate::write_diff(&mut out, change, paint)?;
            (annotate::Outcome::Done, None)
        } else {
            annotate::apply(&conn.client, change, now).await
        };
        let o = &change.object;
        match outcome {
            annotate::Outcome::Done => {
                if change.is_removal() {
                    summary.objects_cleared += 1;
                } else {
                    summary.objects_annotated += 1;
                }
                if !dry_run {
                    let verb = if change.is_removal() { "cleared" } else { "annotated" };
                    writeln!(out, "{} {}/{} {verb}", o.kind, o.namespace, o.name)?;
                }
            }
            annotate::Outcome::Skipped(why) => {
                summary.skipped += 1;
                warn(cli, &why);
            }
            annotate::Outcome::Failed(why) => {
                summary.errors += 1;
                eprintln!("{} {why}", Paint::stderr(cli.output.color).bad("error:"));
            }
        }
        if let Some(w) = event_warning {
            warn(cli, &w);
        }
    }
    serde_json::to_writer(&mut out, &summary).map_err(std::io::Error::other)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The last-accessed summary of the roles `who-uses` found: from the snapshot offline, live when AWS
/// credentials allow (cached, so asking again is free), otherwise nothing.
async fn usage_summary(cli: &Cli, snap: &Snapshot, list: &BindingList, query: &RoleQuery) -> Option<AuditReport> {
    let (reports, now) = if cli.output.snapshot.is_some() {
        (snap.last_accessed.clone(), snap.taken_at)
    } else {
        let roles: Vec<RoleArn> =
            audit::auditable(list).into_iter().filter(|r| query.matches(&r.to_string())).collect();
        match last_accessed(cli, snap, &roles, &IamArgs::default()).await {
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

fn warn(cli: &Cli, message: &str) {
    eprintln!("{} {message}", Paint::stderr(cli.output.color).warn("warning:"));
}

/// Drafts narrower policies for the roles with unused services and prints them (never changes IAM).
async fn suggest_policies(cli: &Cli, snap: &Snapshot, report: &audit::AuditReport, iam: &IamArgs) -> Result<()> {
    if cli.output.snapshot.is_some() {
        return Err(Error::Usage(
            "--suggest-policy reads the roles' policies from IAM, which a snapshot does not hold; run it live".into(),
        ));
    }
    let sdk = iam_sdk(cli, snap).await;
    let (_, clients) = collect::iam::clients(&sdk, &iam.account_roles.iter().cloned().collect()).await?;
    let mut items = Vec::new();
    for role in report.roles.iter().filter(|r| r.has_unused()) {
        let Ok(arn) = role.role_arn.parse::<RoleArn>() else { continue };
        let unused_actions = role.unused_actions();
        let mut item = audit::RoleSuggestion {
            role_arn: role.role_arn.clone(),
            unused_services: role.unused_services.clone(),
            unused_actions: unused_actions.clone(),
            drafts: Vec::new(),
            error: None,
        };
        match clients.get(&arn.account) {
            None => {
                item.error = Some(crate::model::ReportError {
                    code: crate::model::ProblemCode::CrossAccountRole,
                    message: format!("pass --account-role {}=ROLE_ARN to read the role's policies", arn.account),
                })
            }
            Some(client) => match collect::policies::role_policies(client, &arn).await {
                Ok(docs) => item.drafts = crate::policy::suggest(&docs, &role.unused_services, &unused_actions).drafts,
                Err((code, message)) => item.error = Some(crate::model::ReportError { code, message }),
            },
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

/// The IAM SDK config: IAM is global, but signing needs a region (the cluster's, else us-east-1).
async fn iam_sdk(cli: &Cli, snap: &Snapshot) -> aws_config::SdkConfig {
    let region = snap.cluster.region.clone().or_else(|| cli.aws.region.clone());
    let sdk = collect::aws::sdk_config(region.as_deref(), cli.aws.profile.as_deref()).await;
    if sdk.region().is_some() {
        sdk
    } else {
        collect::aws::sdk_config(Some("us-east-1"), cli.aws.profile.as_deref()).await
    }
}

/// Reads the roles' trust policies and the account's OIDC providers, for `doctor`.
async fn role_wiring(
    cli: &Cli,
    snap: &Snapshot,
    roles: &[RoleArn],
    account_roles: &std::collections::HashMap<String, String>,
) -> Result<(Vec<crate::model::RoleDetails>, Option<Vec<String>>)> {
    let sdk = iam_sdk(cli, snap).await;
    let (caller, clients) = collect::iam::clients(&sdk, account_roles).await?;
    let details = collect::roles::details(&clients, &caller, roles).await;
    let providers = match clients.get(&caller) {
        Some(client) => match collect::roles::oidc_providers(client).await {
            Ok(p) => Some(p),
            Err(e) => {
                warn(cli, &format!("cannot check the cluster's OIDC provider: {e}"));
                None
            }
        },
        None => None,
    };
    Ok((details, providers))
}

/// Reads last-accessed reports live, with a progress bar on a terminal when it takes more than a moment.
async fn last_accessed(cli: &Cli, snap: &Snapshot, roles: &[RoleArn], iam: &IamArgs) -> Result<Vec<RoleReport>> {
    let sdk = iam_sdk(cli, snap).await;
    let settings = AuditSettings {
        granularity: iam.granularity,
        concurrency: usize::from(iam.concurrency),
        job_timeout: Duration::from_secs(iam.job_timeout),
        refresh: iam.refresh,
        cache: Cache::new(iam.cache_dir.as_deref(), cache::DEFAULT_TTL),
        account_roles: iam.account_roles.iter().cloned().collect(),
    };
    let progress = Progress::start(roles.len() as u64);
    let reports = collect::iam::reports(&sdk, roles, &settings, &|_| progress.bar.inc(1)).await;
    progress.bar.finish_and_clear();
    reports
}

/// A progress bar on stderr that appears only when stderr is a terminal and the work takes a moment.
struct Progress {
    bar: ProgressBar,
}

impl Progress {
    const DELAY: Duration = Duration::from_millis(700);

    fn start(len: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} reading IAM last-accessed data {pos}/{len} roles {wide_bar} {elapsed}",
        ) {
            bar.set_style(style);
        }
        if std::io::stderr().is_terminal() {
            let shown = bar.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Self::DELAY).await;
                if !shown.is_finished() {
                    shown.set_draw_target(ProgressDrawTarget::stderr());
                    shown.enable_steady_tick(Duration::from_millis(120));
                }
            });
        }
        Progress { bar }
    }
}

/// Writes to stdout through a buffer; a closed pipe surfaces as an I/O error the caller treats as success.
fn print(cli: &Cli, f: impl FnOnce(&mut dyn Write, Paint) -> std::io::Result<()>) -> Result<()> {
    let paint = Paint::stdout(cli.output.color);
    let mut out = BufWriter::new(std::io::stdout().lock());
    f(&mut out, paint)?;
    out.flush()?;
    Ok(())
}

/// Now, in whole seconds: the times this tool writes (reports, annotations) need no more.
fn now_seconds() -> Timestamp {
    let now = Timestamp::now();
    now.round(jiff::Unit::Second).unwrap_or(now)
}
