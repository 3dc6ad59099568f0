//! Runs a parsed command line: collect, resolve, act.

use std::io::{BufWriter, Write};

use clap::CommandFactory;
use jiff::Timestamp;

use crate::act::paint::Paint;
use crate::act::render;
use crate::arn::RoleQuery;
use crate::cli::{Cli, Command, Format};
use crate::model::Snapshot;
use crate::{Error, Result, audit, collect, doctor, resolve};

mod annotate;
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
        Command::Snapshot { iam, usage } => {
            let mut snap = load(&cli).await?;
            let list = resolve::resolve(&snap);
            let roles = audit::auditable(&list);
            // Re-scoping a snapshot file keeps the IAM data it holds; a live snapshot reads it.
            if cli.output.snapshot.is_none() && !roles.is_empty() {
                match connect(&cli, &snap, &iam.account_roles).await {
                    Ok(clients) => {
                        (snap.roles, snap.oidc_providers) = role_wiring(&cli, &clients, &audit::auditable(&list)).await;
                        snap.last_accessed = last_accessed(&clients, &roles, iam).await;
                        if usage.usage.is_some() {
                            snap.observed = Some(usage::observe(&cli, &clients, &snap, &list, usage, iam).await?);
                        }
                    }
                    Err(e) => warn(&cli, &format!("IAM data is not recorded in the snapshot: {e}")),
                }
            }
            let format = if cli.output.output == Format::Yaml { Format::Yaml } else { Format::Json };
            print(&cli, |out, _| render::document(out, &snap, format))
        }
        Command::Annotate { unused_days, dry_run, annotation_prefix, iam, usage } => {
            annotate::annotate(&cli, *unused_days, *dry_run, annotation_prefix, iam, usage).await
        }
        Command::Doctor { fail_on, account_roles } => {
            let mut snap = load(&cli).await?;
            let list = resolve::resolve(&snap);
            if cli.output.snapshot.is_none() {
                match connect(&cli, &snap, account_roles).await {
                    Ok(clients) => {
                        (snap.roles, snap.oidc_providers) = role_wiring(&cli, &clients, &audit::auditable(&list)).await;
                    }
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
        Command::Audit { unused_days, suggest_policy, iam, usage } => {
            let snap = load(&cli).await?;
            let list = resolve::resolve(&snap);
            if *suggest_policy && cli.output.snapshot.is_some() {
                return Err(Error::Usage(
                    "--suggest-policy reads the roles' policies from IAM, which a snapshot does not hold; run it live"
                        .into(),
                ));
            }
            let (reports, now, clients) = if cli.output.snapshot.is_some() {
                (snap.last_accessed.clone(), snap.taken_at, None)
            } else {
                let clients = connect(&cli, &snap, &iam.account_roles).await?;
                (last_accessed(&clients, &audit::auditable(&list), iam).await, now_seconds(), Some(clients))
            };
            let mut report = audit::audit(&list, &reports, *unused_days, now);
            let observed = match (&clients, usage.usage) {
                (Some(clients), Some(_)) => Some(usage::observe(&cli, clients, &snap, &list, usage, iam).await?),
                (None, Some(_)) if snap.observed.is_none() => {
                    return Err(Error::Usage(
                        "the snapshot holds no observed usage; take it with `snapshot --usage cloudtrail`".into(),
                    ));
                }
                _ => snap.observed.clone(),
            };
            if let Some(observed) = &observed {
                audit::with_usage(&mut report, observed);
            }
            if let (true, Some(clients)) = (*suggest_policy, &clients) {
                return suggest_policies(&cli, clients, &report, observed.as_ref()).await;
            }
            if report.roles.is_empty() && is_table(&cli) {
                eprintln!("No IAM roles are bound {}.", scope_text(&snap));
                return Ok(());
            }
            print(&cli, |out, paint| match cli.output.output {
                Format::Table => render::audit_table(out, &report, false, paint),
                Format::Wide => {
                    render::audit_table(out, &report, true, paint)?;
                    render::observed_table(out, &report, paint)
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
        Some(path) => collect::snapshot::narrow(collect::snapshot::read(path)?, &cli.collect_options())?,
        None => {
            let conn = collect::Connection::open(&cli.collect_options()).await?;
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
