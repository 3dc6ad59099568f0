//! Runs a parsed command line: collect, resolve, act.

use std::io::{BufWriter, Write};

use clap::CommandFactory;
use jiff::Timestamp;

use crate::act::paint::Paint;
use crate::act::render;
use crate::arn::RoleQuery;
use crate::cli::{Cli, Command, Format};
use crate::model::{RoleReport, Snapshot};
use crate::{Error, Result, audit, doctor, resolve};

mod annotate;
mod fleet;
mod iam;
mod progress;
mod usage;

use iam::{connect, last_accessed, role_wiring, suggest_policies, usage_summary};

/// The `--unused-days` default, also used for the `who-uses` summary.
const DEFAULT_UNUSED_DAYS: u32 = 90;

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
            let loaded = fleet::load_all(&cli).await?;
            let list = fleet::resolve_all(&loaded);
            if list.items.is_empty() && list.problems.is_empty() && is_table(&cli) {
                let scope = loaded.snaps.first().map(scope_text).unwrap_or_default();
                eprintln!("No IAM role bindings found {scope}.");
                return fleet::finish(&loaded);
            }
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => {
                    render::binding_table(out, &list, cli.output.output == Format::Wide, paint)
                }
                f => render::document(out, &list, f),
            })?;
            fleet::finish(&loaded)
        }
        Command::WhoUses { role } => {
            let query = RoleQuery::parse(role).map_err(|e| Error::Usage(format!("{e}; pass a role name or ARN")))?;
            let loaded = fleet::load_all(&cli).await?;
            let list = resolve::who_uses(fleet::resolve_all(&loaded), &query);
            if list.items.is_empty() && is_table(&cli) {
                let scope = loaded.snaps.first().map(scope_text).unwrap_or_default();
                eprintln!("Nothing uses role {role} {scope}: no service account is bound to it and no pod carries it.");
                return fleet::finish(&loaded);
            }
            let usage = match (is_table(&cli), loaded.snaps.first()) {
                (true, Some(snap)) => usage_summary(&cli, snap, &list, &query).await,
                _ => None,
            };
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => {
                    render::binding_table(out, &list, cli.output.output == Format::Wide, paint)?;
                    usage.as_ref().map_or(Ok(()), |u| render::usage_summary(out, u, paint))
                }
                f => render::document(out, &list, f),
            })?;
            fleet::finish(&loaded)
        }
        Command::Snapshot { iam, usage } => {
            let mut loaded = fleet::load_all(&cli).await?;
            if loaded.fleet && usage.usage.is_some() {
                return Err(Error::Usage("--usage reads one cluster's trail at a time; pass one --context".into()));
            }
            // Re-scoping a snapshot file keeps the IAM data it holds; a live snapshot reads it. Clusters are read
            // one after another, so a role several of them bind is fetched once and then comes from the cache.
            for snap in &mut loaded.snaps {
                let list = resolve::resolve(snap);
                let roles = audit::auditable(&list);
                if cli.output.snapshot.is_some() || roles.is_empty() {
                    continue;
                }
                match connect(&cli, snap, &iam.account_roles).await {
                    Ok(clients) => {
                        (snap.roles, snap.oidc_providers) = role_wiring(&cli, &clients, &roles).await;
                        snap.last_accessed = last_accessed(&clients, &roles, iam).await;
                        if usage.usage.is_some() {
                            snap.observed = Some(usage::observe(&cli, &clients, &[&*snap], &list, usage, iam).await?);
                        }
                    }
                    Err(e) => warn(&cli, &format!("IAM data is not recorded in the snapshot: {e}")),
                }
            }
            let format = if cli.output.output == Format::Yaml { Format::Yaml } else { Format::Json };
            if loaded.fleet {
                let doc = crate::model::FleetSnapshot {
                    api_version: crate::model::API_VERSION.to_string(),
                    kind: "FleetSnapshot".to_string(),
                    snapshots: loaded.snaps.clone(),
                };
                print(&cli, |out, _| render::document(out, &doc, format))?;
            } else if let Some(snap) = loaded.snaps.first() {
                print(&cli, |out, _| render::document(out, snap, format))?;
            }
            fleet::finish(&loaded)
        }
        Command::Annotate { unused_days, dry_run, annotation_prefix, iam, usage } => {
            let run =
                annotate::Run { unused_days: *unused_days, dry_run: *dry_run, prefix: annotation_prefix, iam, usage };
            annotate::annotate(&cli, &run).await
        }
        Command::Doctor { fail_on, account_roles } => {
            let mut loaded = fleet::load_all(&cli).await?;
            let mut reports = Vec::new();
            for snap in &mut loaded.snaps {
                let list = resolve::resolve(snap);
                if cli.output.snapshot.is_none() {
                    match connect(&cli, snap, account_roles).await {
                        Ok(clients) => {
                            (snap.roles, snap.oidc_providers) =
                                role_wiring(&cli, &clients, &audit::auditable(&list)).await;
                        }
                        Err(e) => warn(&cli, &format!("trust policies were not checked: {e}")),
                    }
                }
                reports.push((snap.cluster.name.clone(), doctor::doctor(&list, snap)));
            }
            let report = if loaded.fleet {
                doctor::merge(reports, &loaded.unreachable)
            } else {
                reports.pop().map(|(_, r)| r).ok_or_else(|| Error::config("nothing was read"))?
            };
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => render::doctor_table(out, &report, paint),
                f => render::document(out, &report, f),
            })?;
            match fail_on {
                Some(level) if report.has(*level) => Err(Error::Findings(format!(
                    "doctor found {} error(s) and {} warning(s); failing as --fail-on asks",
                    report.summary.errors, report.summary.warnings
                ))),
                _ => fleet::finish(&loaded),
            }
        }
        Command::Audit { unused_days, suggest_policy, iam, usage } => {
            let loaded = fleet::load_all(&cli).await?;
            let list = fleet::resolve_all(&loaded);
            if *suggest_policy && cli.output.snapshot.is_some() {
                return Err(Error::Usage(
                    "--suggest-policy reads the roles' policies from IAM, which a snapshot does not hold; run it live"
                        .into(),
                ));
            }
            let Some(snap) = loaded.snaps.first() else { return fleet::finish(&loaded) };
            // One job per role, however many clusters bind it: the roles come from the merged list.
            let (reports, now, clients) = if cli.output.snapshot.is_some() {
                let mut reports: Vec<RoleReport> = loaded.snaps.iter().flat_map(|s| s.last_accessed.clone()).collect();
                reports.sort_by(|a, b| a.role_arn.cmp(&b.role_arn));
                reports.dedup_by(|a, b| a.role_arn == b.role_arn);
                (reports, snap.taken_at, None)
            } else {
                let clients = connect(&cli, snap, &iam.account_roles).await?;
                (last_accessed(&clients, &audit::auditable(&list), iam).await, now_seconds(), Some(clients))
            };
            let mut report = audit::audit(&list, &reports, *unused_days, now);
            let observed = match (&clients, usage.usage) {
                (Some(clients), Some(_)) => {
                    // One read of the trail for every cluster: each call is attributed to the cluster that issued it.
                    let snaps: Vec<&Snapshot> = loaded.snaps.iter().collect();
                    Some(usage::observe(&cli, clients, &snaps, &list, usage, iam).await?)
                }
                (None, Some(_)) if snap.observed.is_none() => {
                    return Err(Error::Usage(
                        "the snapshot holds no observed usage; take it with `snapshot --usage cloudtrail`".into(),
                    ));
                }
                _ if loaded.fleet => None,
                _ => snap.observed.clone(),
            };
            if let Some(observed) = &observed {
                audit::with_usage(&mut report, observed);
            }
            if let (true, Some(clients)) = (*suggest_policy, &clients) {
                suggest_policies(&cli, clients, &report, observed.as_ref()).await?;
                return fleet::finish(&loaded);
            }
            if report.roles.is_empty() && is_table(&cli) {
                eprintln!("No IAM roles are bound {}.", scope_text(snap));
                return fleet::finish(&loaded);
            }
            print(&cli, |out, paint| match cli.output.output {
                Format::Table => render::audit_table(out, &report, false, paint),
                Format::Wide => {
                    render::audit_table(out, &report, true, paint)?;
                    render::observed_table(out, &report, paint)
                }
                f => render::document(out, &report, f),
            })?;
            fleet::finish(&loaded)
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

fn print_warnings(cli: &Cli, snap: &Snapshot) {
    for w in &snap.warnings {
        warn(cli, w);
    }
    if let Some(reason) = &snap.pod_identity.skipped_reason {
        warn(cli, &format!("Pod Identity associations were not read: {reason}"));
    }
}

fn warn(cli: &Cli, message: &str) {
    eprintln!("{} {}", Paint::stderr(cli.output.color).warn("warning:"), crate::act::paint::escape(message));
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
