//! `annotate`: audit live, plan the annotation changes, apply them (or print them with `--dry-run`).

use std::io::{BufWriter, Write};

use super::iam::{connect, last_accessed};
use super::{now_seconds, print_warnings, warn};
use crate::act::annotate;
use crate::act::paint::Paint;
use crate::cli::{Cli, IamArgs};
use crate::{Error, Result, audit, collect, resolve};

/// Audits live, plans the annotation changes, and applies them (or prints them with `--dry-run`).
/// Per-object failures are reported and counted; only a failed audit is an error.
pub(super) async fn annotate(cli: &Cli, unused_days: u32, dry_run: bool, prefix: &str, iam: &IamArgs) -> Result<()> {
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
    let clients = connect(cli, &snap, &iam.account_roles).await?;
    let reports = last_accessed(&clients, &audit::auditable(&list), iam).await;
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
