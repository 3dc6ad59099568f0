//! `annotate`: audit live, plan the annotation changes, apply them (or print them with `--dry-run`).
//! Writes rest on complete, verified evidence only (SPEC 4): objects whose evidence is incomplete are left
//! as they are, and a binding whose role does not trust it gets no usage data.

use std::collections::HashMap;
use std::io::{BufWriter, Write};

use super::iam::{connect, last_accessed};
use super::{now_seconds, print_warnings, warn};
use crate::act::annotate::{self, Held};
use crate::act::paint::Paint;
use crate::audit::AuditReport;
use crate::cli::{Cli, IamArgs, UsageArgs};
use crate::doctor::trust::{self, Trust};
use crate::model::{RoleDetails, Snapshot, Source, Workload};
use crate::resolve::owners::OwnerIndex;
use crate::{Error, Result, audit, collect, resolve};

/// Audits live, plans the annotation changes, and applies them (or prints them with `--dry-run`).
/// Per-object failures are reported and counted; the run fails (exit 1) when any object was left alone on
/// incomplete evidence or could not be written, so a CronJob shows it.
pub(super) async fn annotate(cli: &Cli, run: &Run<'_>) -> Result<()> {
    let (prefix, usage) = (run.prefix, run.usage);
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
    check_prefix(prefix)?;
    if !cli.is_fleet() {
        return annotate_cluster(cli, &cli.collect_options(), None, run).await;
    }
    if usage.usage.is_some() {
        return Err(Error::Usage("--usage reads one cluster's trail at a time; pass one --context".into()));
    }
    // One cluster after another, each written with its own findings only; the last-accessed cache makes a
    // role several clusters bind one job.
    let mut failed = Vec::new();
    for (context, options) in super::fleet::targets(cli)? {
        if let Err(e) = annotate_cluster(cli, &options, Some(&context), run).await {
            eprintln!("{} context {context}: {}", Paint::stderr(cli.output.color).bad("error:"), crate::causes(&e));
            failed.push(context);
        }
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(Error::Incomplete(format!("annotate did not complete in {n} cluster(s): {}", failed.join(", ")))),
    }
}

/// What `annotate` was asked to do.
pub(super) struct Run<'a> {
    pub unused_days: u32,
    pub dry_run: bool,
    pub prefix: &'a str,
    pub iam: &'a IamArgs,
    pub usage: &'a UsageArgs,
}

/// `annotate` on one cluster.
async fn annotate_cluster(cli: &Cli, options: &collect::Options, context: Option<&str>, run: &Run<'_>) -> Result<()> {
    let Run { unused_days, dry_run, prefix, iam, usage } = *run;
    let conn = collect::Connection::open(options).await?;
    let snap = collect::live(&conn, None).await?;
    print_warnings(cli, &snap);
    let list = resolve::resolve(&snap);
    let clients = connect(cli, &snap, &iam.account_roles).await?;
    let roles = audit::auditable(&list);
    let (reports, details) =
        tokio::join!(last_accessed(&clients, &roles, iam), collect::roles::details(&clients, &roles));
    let now = now_seconds();
    let mut report = audit::audit(&list, &reports, unused_days, now);
    // Observed usage is evidence too; a trail that cannot be read stops the run before anything is written.
    if usage.usage.is_some() {
        let observed = super::usage::observe(cli, &clients, &[&snap], &list, usage, iam).await?;
        audit::with_usage(&mut report, &observed);
    }
    let mut held = incomplete_evidence(&snap);
    let unverified = keep_verified_bindings(&mut report, &snap, &details, &mut held);
    let (objects, unlisted) = collect::kube::annotatable(&conn.client, conn.namespace.as_deref()).await;
    let (changes, missing, left_alone) = annotate::plan(&report, &objects, &annotate::Keys::new(prefix), &held);

    let mut summary = annotate::Summary {
        kind: "AnnotateSummary",
        cluster: context.map(|_| snap.cluster.name.clone().unwrap_or_default()),
        dry_run,
        roles_audited: report.roles.iter().filter(|r| r.error.is_none()).count(),
        roles_with_unused_services: report.roles.iter().filter(|r| r.has_unused()).count(),
        errors: report.roles.iter().filter(|r| r.error.is_some()).count() + unlisted.len(),
        skipped: missing.len(),
        left_alone: left_alone.len(),
        ..Default::default()
    };
    for e in &unlisted {
        eprintln!("{} {}", Paint::stderr(cli.output.color).bad("error:"), e.explain(&conn.server));
    }
    for m in missing.iter().chain(&unverified) {
        warn(cli, m);
    }
    for why in &left_alone {
        warn(cli, &format!("left as it is, evidence incomplete: {why}"));
    }
    // Output that cannot be written (a closed pipe) never stops the patches: they are the point of the run.
    let paint = Paint::stdout(cli.output.color);
    let mut out = Lossy(BufWriter::new(std::io::stdout().lock()));
    for change in &changes {
        let (outcome, event_warning) = if dry_run {
            out.write(|w| annotate::write_diff(w, change, paint));
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
                    out.write(|w| writeln!(w, "{} {}/{} {verb}", o.kind, o.namespace, o.name));
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
    out.write(|w| {
        serde_json::to_writer(&mut *w, &summary).map_err(std::io::Error::other)?;
        writeln!(w)?;
        w.flush()
    });
    if summary.left_alone > 0 || summary.errors > 0 {
        return Err(Error::Incomplete(format!(
            "annotate left {} object(s) as they were on incomplete evidence and counted {} error(s) (see above); \
             fix what they name and run again",
            summary.left_alone, summary.errors
        )));
    }
    Ok(())
}

/// `--annotation-prefix` must be a DNS-subdomain prefix ending in `/`, and never one Kubernetes or EKS
/// owns: `annotate` removes keys under it, and under `eks.amazonaws.com/` that would unbind IRSA.
fn check_prefix(prefix: &str) -> Result<()> {
    let usage = |why: &str| Err(Error::Usage(format!("--annotation-prefix {prefix:?} {why}")));
    let Some(domain) = prefix.strip_suffix('/') else {
        return usage("must end with / (for example iam-roles.io/)");
    };
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.is_empty() || domain.len() > 253 || !domain.split('.').all(label_ok) {
        return usage("must be a DNS subdomain (lowercase letters, digits, - and .) followed by /");
    }
    let reserved = ["kubernetes.io", "k8s.io"];
    if domain == "eks.amazonaws.com" || reserved.iter().any(|r| domain == *r || domain.ends_with(&format!(".{r}"))) {
        return usage("is owned by Kubernetes or EKS; annotate would remove keys there. Use a domain of your own");
    }
    Ok(())
}

/// A writer whose failures are remembered, not returned: after the first one it writes nothing more.
struct Lossy<W: Write>(W);

impl<W: Write> Lossy<W> {
    fn write(&mut self, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
        if let Err(e) = f(&mut self.0) {
            tracing::debug!("stdout is gone ({e}); the patches go on");
        }
    }
}

/// The objects whose evidence is incomplete: everything when the Pod Identity associations or an owner
/// kind could not be listed; the objects of a service account whose association could not be described.
fn incomplete_evidence(snap: &Snapshot) -> Held {
    let mut held = Held::default();
    if !snap.pod_identity.collected {
        let reason = snap.pod_identity.skipped_reason.as_deref().unwrap_or("unknown reason");
        held.all = Some(format!("the Pod Identity associations could not be listed ({reason})"));
    } else if !snap.unlisted_kinds.is_empty() {
        held.all = Some(format!(
            "{} could not be listed, so pods cannot be traced to their workloads",
            snap.unlisted_kinds.join(" and ")
        ));
    }
    let owners = OwnerIndex::new(&snap.owners);
    for who in &snap.pod_identity.undescribed {
        let why = format!(
            "the Pod Identity association of service account {}/{} could not be described",
            who.namespace, who.service_account
        );
        // Every workload of the service account, completed pods' too: a CronJob between runs is one.
        let workloads = snap
            .pods
            .iter()
            .filter(|p| p.namespace == who.namespace && p.service_account == who.service_account)
            .map(|p| owners.top_level(p));
        hold(&mut held, &who.namespace, &who.service_account, workloads, &why);
    }
    held
}

fn hold(held: &mut Held, ns: &str, sa: &str, workloads: impl IntoIterator<Item = Workload>, why: &str) {
    let objects = std::iter::once(("ServiceAccount".to_string(), sa.to_string()))
        .chain(workloads.into_iter().map(|w| (w.kind, w.name)));
    for (kind, name) in objects {
        held.objects.entry((kind, ns.to_string(), name)).or_insert_with(|| why.to_string());
    }
}

/// Keeps in the report only the bindings whose role trusts them (SPEC 4, the tenant rule): Pod Identity
/// (an association only an EKS admin can make), and IRSA where the role's trust policy admits the service
/// account through this cluster's OIDC provider in the role's own account. A binding whose trust policy
/// could not be read holds its objects; an unverified one gets no usage data. Returns what was dropped.
fn keep_verified_bindings(
    report: &mut AuditReport,
    snap: &Snapshot,
    details: &[RoleDetails],
    held: &mut Held,
) -> Vec<String> {
    let details: HashMap<&str, &RoleDetails> = details.iter().map(|d| (d.role_arn.as_str(), d)).collect();
    let mut dropped = Vec::new();
    for role in &mut report.roles {
        let arn = role.role_arn.clone();
        role.bindings.retain(|b| {
            if b.source == Source::PodIdentity {
                return true;
            }
            let issuer = snap.cluster.oidc_issuer.as_deref();
            match details
                .get(arn.as_str())
                .and_then(|d| trust::irsa_binding(d, issuer, &b.namespace, &b.service_account))
            {
                None => {
                    let why = format!("the trust policy of role {arn} could not be checked against this cluster");
                    hold(held, &b.namespace, &b.service_account, b.workloads.clone(), &why);
                    false
                }
                Some(Trust::Ok | Trust::TooWide(_)) => true,
                Some(Trust::Mismatch(_)) => {
                    dropped.push(format!(
                        "role {arn} does not trust service account {}/{} (run doctor): no usage finding is written for \
                         it",
                        b.namespace, b.service_account
                    ));
                    false
                }
            }
        });
    }
    dropped
}
