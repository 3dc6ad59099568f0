//! Rendering in one place: tables for people, JSON/YAML documents for programs. Colour only ever
//! reaches tables.

use std::io::{self, Write};

use serde::Serialize;
use tabwriter::TabWriter;

use super::paint::{Paint, escape};
use crate::audit::{AuditReport, PolicySuggestionList, Status};
use crate::cli::Format;
use crate::doctor::DoctorReport;
use crate::model::{Binding, BindingList, Problem, ProblemCode, Severity};

/// Writes a document as JSON (pretty) or YAML.
pub fn document<T: Serialize>(out: &mut dyn Write, doc: &T, format: Format) -> io::Result<()> {
    match format {
        Format::Yaml => {
            let text = serde_saphyr::to_string(doc).map_err(io::Error::other)?;
            out.write_all(text.as_bytes())
        }
        _ => {
            serde_json::to_writer_pretty(&mut *out, doc)?;
            writeln!(out)
        }
    }
}

/// Colour by severity.
fn severity_paint(code: ProblemCode, paint: Paint, text: &str) -> String {
    match code.severity() {
        Severity::Error => paint.bad(text),
        Severity::Warning => paint.warn(text),
        Severity::Info => paint.dim(text),
    }
}

/// One problem: its code (coloured by severity) and where, then what to do on the next line.
fn write_problem(out: &mut dyn Write, p: &Problem, paint: Paint) -> io::Result<()> {
    let at = p.namespace.as_ref().map_or(p.object.clone(), |ns| format!("{ns}/{}", p.object));
    let at = p.cluster.as_ref().map_or(at.clone(), |c| format!("{c}: {at}"));
    writeln!(out, "{} {}\n    {}", severity_paint(p.code, paint, p.code.as_str()), escape(&at), escape(&p.message))
}

const MAX_WORKLOADS_SHOWN: usize = 3;

fn workloads_cell(b: &Binding, wide: bool) -> String {
    if b.workloads.is_empty() {
        return "<none>".to_string();
    }
    let shown = if wide { b.workloads.len() } else { MAX_WORKLOADS_SHOWN };
    let mut cell: Vec<String> = b.workloads.iter().take(shown).map(|w| w.to_string()).collect();
    if b.workloads.len() > shown {
        cell.push(format!("+{} more", b.workloads.len() - shown));
    }
    cell.join(",")
}

/// `current/total` where they differ (pods that will switch at their next restart, or that carry another
/// role), else the count.
fn pods_cell(b: &Binding) -> String {
    if b.current_pods.len() == b.pods.len() {
        b.pods.len().to_string()
    } else {
        format!("{}/{}", b.current_pods.len(), b.pods.len())
    }
}

fn role_cell(b: &Binding, paint: Paint) -> String {
    if b.role_known() { escape(&b.role_arn).into_owned() } else { paint.warn("<unknown>") }
}

/// Pod names for `-o wide`: running pods, then completed ones marked as such.
fn pod_names_cell(b: &Binding) -> String {
    let names: Vec<String> = b
        .pods
        .iter()
        .map(|p| if b.current_pods.contains(p) || !b.configured { p.clone() } else { format!("{p} (at restart)") })
        .chain(b.completed_pods.iter().map(|p| format!("{p} (completed)")))
        .collect();
    if names.is_empty() { "<none>".to_string() } else { names.join(",") }
}

fn source_cell(b: &Binding, paint: Paint) -> String {
    if b.effective { b.source.as_str().to_string() } else { paint.dim(&format!("{} (inactive)", b.source.as_str())) }
}

fn problems_cell(b: &Binding, paint: Paint) -> String {
    if b.problems.is_empty() {
        return paint.good("-");
    }
    let mut codes: Vec<ProblemCode> = b.problems.iter().map(|p| p.code).collect();
    codes.dedup();
    codes.iter().map(|c| severity_paint(*c, paint, c.as_str())).collect::<Vec<_>>().join(",")
}

/// The `list`/`who-uses` table, then the problems found, each once.
pub fn binding_table(out: &mut dyn Write, list: &BindingList, wide: bool, paint: Paint) -> io::Result<()> {
    if !list.items.is_empty() {
        let mut tw = TabWriter::new(&mut *out).padding(3).ansi(true);
        let fleet = list.clusters.is_some();
        let mut header = "NAMESPACE\tSERVICE ACCOUNT\tROLE\tSOURCE\tWORKLOADS\tPODS\tPROBLEMS".to_string();
        if fleet {
            header.insert_str(0, "CLUSTER\t");
        }
        if wide {
            header.push_str("\tBINDING\tTARGET ROLE\tAUDIENCE\tTOKEN EXPIRATION\tPOD NAMES");
        }
        writeln!(tw, "{header}")?;
        for b in &list.items {
            if fleet {
                write!(tw, "{}\t", escape(b.cluster.as_deref().unwrap_or("-")))?;
            }
            write!(
                tw,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                escape(&b.namespace),
                escape(&b.service_account),
                role_cell(b, paint),
                source_cell(b, paint),
                escape(&workloads_cell(b, wide)),
                pods_cell(b),
                problems_cell(b, paint)
            )?;
            if wide {
                let or_none = |v: &Option<String>| v.as_deref().map_or("<none>".into(), |v| escape(v).into_owned());
                let binding = if b.configured { "configured" } else { "carried only" };
                write!(
                    tw,
                    "\t{binding}\t{}\t{}\t{}\t{}",
                    or_none(&b.target_role_arn),
                    or_none(&b.audience),
                    or_none(&b.token_expiration),
                    escape(&pod_names_cell(b))
                )?;
            }
            writeln!(tw)?;
        }
        tw.flush()?;
    }
    let mut problems: Vec<&Problem> = list.items.iter().flat_map(|b| &b.problems).chain(&list.problems).collect();
    problems.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()).then_with(|| a.message.cmp(&b.message)));
    problems.dedup();
    if !problems.is_empty() {
        writeln!(out, "\n{}", paint.bold(&format!("PROBLEMS ({})", problems.len())))?;
        for p in problems {
            write_problem(out, p, paint)?;
        }
    }
    Ok(())
}

fn status_cell(status: Status, paint: Paint) -> String {
    match status {
        Status::Ok => paint.good(status.as_str()),
        Status::UnusedServices => paint.warn(status.as_str()),
        Status::UnusedRole => paint.bad(status.as_str()),
        Status::Unknown => paint.dim(status.as_str()),
    }
}

/// Up to `max` entries, then "+N more"; escaped, since the entries come from the cluster, IAM or a snapshot.
fn capped(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "-".to_string();
    }
    let mut cell = items.iter().take(max).cloned().collect::<Vec<_>>().join(",");
    if items.len() > max {
        cell.push_str(&format!(" +{} more", items.len() - max));
    }
    escape(&cell).into_owned()
}

/// Entries joined with `, `, escaped.
fn listed(items: &[String]) -> String {
    escape(&items.join(", ")).into_owned()
}

/// The `audit` table, then each role that could not be audited with the reason.
pub fn audit_table(out: &mut dyn Write, report: &AuditReport, wide: bool, paint: Paint) -> io::Result<()> {
    let limit = if wide { usize::MAX } else { 4 };
    let mut tw = TabWriter::new(&mut *out).padding(3).ansi(true);
    let mut header = "ROLE\tSTATUS\tUNUSED SERVICES\tLAST USED\tWORKLOADS".to_string();
    if wide {
        header.push_str("\tUNUSED ACTIONS");
    }
    writeln!(tw, "{header}")?;
    for role in &report.roles {
        let last_used = match (role.status, role.role_last_used) {
            (Status::Unknown, _) => "-".to_string(),
            (_, Some(t)) => t.strftime("%Y-%m-%d").to_string(),
            (_, None) => "never".to_string(),
        };
        let workloads: Vec<String> = role
            .bindings
            .iter()
            .flat_map(|b| {
                let cluster = b.cluster.as_ref().map(|c| format!("{c}:")).unwrap_or_default();
                let sa = format!("{cluster}{}/ServiceAccount/{}", b.namespace, b.service_account);
                let named: Vec<String> = b.workloads.iter().map(|w| format!("{cluster}{}/{w}", b.namespace)).collect();
                if named.is_empty() { vec![sa] } else { named }
            })
            .collect();
        write!(
            tw,
            "{}\t{}\t{}\t{last_used}\t{}",
            escape(&role.role_arn),
            status_cell(role.status, paint),
            capped(&role.unused_services, limit),
            capped(&workloads, if wide { usize::MAX } else { 2 })
        )?;
        if wide {
            let actions: Vec<String> =
                role.services.iter().flat_map(|s| s.unused_actions.iter().flatten().cloned()).collect();
            write!(tw, "\t{}", capped(&actions, usize::MAX))?;
        }
        writeln!(tw)?;
    }
    tw.flush()?;
    let failed: Vec<_> = report.roles.iter().filter_map(|r| r.error.as_ref().map(|e| (r, e))).collect();
    if !failed.is_empty() {
        writeln!(out, "\n{}", paint.bold(&format!("NOT AUDITED ({})", failed.len())))?;
        for (role, e) in failed {
            let code = severity_paint(e.code, paint, e.code.as_str());
            writeln!(out, "{code} {}\n    {}", escape(&role.role_arn), escape(&e.message))?;
        }
    }
    Ok(())
}

/// `audit -o wide` with observed usage: per role and service account, the actions it called (with counts)
/// and its workloads; then what no service account here accounts for, and what was denied.
pub fn observed_table(out: &mut dyn Write, report: &AuditReport, paint: Paint) -> io::Result<()> {
    let observed: Vec<_> = report.roles.iter().filter_map(|r| Some((r, r.observed.as_ref()?))).collect();
    let Some((_, first)) = observed.first() else { return Ok(()) };
    let day = |t: Option<jiff::Timestamp>| t.map_or("?".to_string(), |t| t.strftime("%Y-%m-%d").to_string());
    let title = format!("OBSERVED ({}, {} to {})", first.source, day(first.from), day(first.to));
    writeln!(out, "\n{}", paint.bold(&title))?;
    let mut tw = TabWriter::new(&mut *out).padding(3).ansi(true);
    writeln!(tw, "ROLE\tSERVICE ACCOUNT\tWORKLOADS\tACTIONS")?;
    for (role, o) in observed {
        let count = |action: &str| o.actions.iter().find(|a| a.action == action).map_or(0, |a| a.count);
        for user in role.users() {
            let workloads: Vec<String> = role
                .bindings
                .iter()
                .filter(|b| {
                    b.namespace == user.namespace
                        && b.service_account == user.service_account
                        && b.cluster == user.cluster
                })
                .flat_map(|b| b.workloads.iter().map(ToString::to_string))
                .collect();
            let actions: Vec<String> = o.actions_of(&user).into_iter().map(|a| format!("{a}({})", count(&a))).collect();
            let actions = if actions.is_empty() { paint.dim("none") } else { escape(&actions.join(",")).into_owned() };
            // In a fleet, `cluster:namespace/name`, as the audit table's workloads are written.
            let cluster = user.cluster.as_ref().map(|c| format!("{}:", escape(c))).unwrap_or_default();
            writeln!(
                tw,
                "{}\t{cluster}{}/{}\t{}\t{actions}",
                escape(&role.role_arn),
                escape(&user.namespace),
                escape(&user.service_account),
                capped(&workloads, usize::MAX),
            )?;
        }
        if o.unattributed > 0 {
            let what = format!("{} call(s) by sessions of no service account here", o.unattributed);
            writeln!(tw, "{}\t{}\t-\t{what}", escape(&role.role_arn), paint.dim("<unattributed>"))?;
        }
        if !o.denied.is_empty() {
            writeln!(tw, "{}\t{}\t-\t{}", escape(&role.role_arn), paint.warn("<denied>"), listed(&o.denied))?;
        }
    }
    tw.flush()
}

/// The last-accessed lines under a `who-uses` table.
pub fn usage_summary(out: &mut dyn Write, report: &AuditReport, paint: Paint) -> io::Result<()> {
    writeln!(out, "\n{}", paint.bold(&format!("LAST ACCESSED (IAM, unused = more than {} days)", report.unused_days)))?;
    for role in &report.roles {
        let line = match (&role.error, role.role_last_used) {
            (Some(e), _) => format!("not audited: {}", escape(&e.message)),
            (None, None) => format!("never used; holds {}", capped(&role.unused_services, usize::MAX)),
            (None, Some(t)) if role.unused_services.is_empty() => {
                format!("last used {}; every service it holds was used", t.strftime("%Y-%m-%d"))
            }
            (None, Some(t)) => format!(
                "last used {}; {} of {} services unused: {}",
                t.strftime("%Y-%m-%d"),
                role.unused_services.len(),
                role.services.len(),
                listed(&role.unused_services)
            ),
        };
        writeln!(out, "{} {}: {line}", status_cell(role.status, paint), escape(&role.role_arn))?;
    }
    Ok(())
}

/// The `doctor` report: problems grouped by severity, each with its fix.
pub fn doctor_table(out: &mut dyn Write, report: &DoctorReport, paint: Paint) -> io::Result<()> {
    let s = &report.summary;
    if report.problems.is_empty() {
        return writeln!(out, "{}", paint.good("No problems found: every binding's wiring checks out."));
    }
    for (severity, title, count) in [
        (Severity::Error, "ERRORS", s.errors),
        (Severity::Warning, "WARNINGS", s.warnings),
        (Severity::Info, "INFO", s.info),
    ] {
        if count == 0 {
            continue;
        }
        writeln!(out, "{}", paint.bold(&format!("{title} ({count})")))?;
        for f in report.problems.iter().filter(|f| f.severity == severity) {
            write_problem(out, &f.problem, paint)?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{} error(s), {} warning(s), {} info", s.errors, s.warnings, s.info)
}

/// `audit --suggest-policy` for people: per role, what each draft removes, then the draft itself.
pub fn suggestions(out: &mut dyn Write, doc: &PolicySuggestionList, paint: Paint) -> io::Result<()> {
    if doc.items.is_empty() {
        return writeln!(out, "No role holds unused services: nothing to narrow.");
    }
    for item in &doc.items {
        writeln!(out, "{} {}", paint.bold("ROLE"), escape(&item.role_arn))?;
        writeln!(out, "  unused services: {}", capped(&item.unused_services, usize::MAX))?;
        if !item.unused_actions.is_empty() {
            writeln!(out, "  unused actions: {}", listed(&item.unused_actions))?;
        }
        if let Some(e) = &item.error {
            writeln!(out, "  {} {}", severity_paint(e.code, paint, e.code.as_str()), escape(&e.message))?;
        }
        for draft in &item.drafts {
            let s = &draft.summary;
            let removed: Vec<String> = s.removed_actions.iter().map(|a| a.action.clone()).collect();
            let excluded: Vec<String> = s.excluded_actions.iter().map(|a| a.action.clone()).collect();
            writeln!(out, "\n  policy {}", paint.bold(&escape(&draft.source)))?;
            if !draft.changed {
                writeln!(out, "    {}", paint.dim("unchanged: it grants nothing of the unused services"))?;
                continue;
            }
            if !removed.is_empty() {
                writeln!(out, "    removes: {}", listed(&removed))?;
            }
            if !s.removed_statements.is_empty() {
                writeln!(out, "    drops statements left empty: {}", listed(&s.removed_statements))?;
            }
            if !excluded.is_empty() {
                writeln!(out, "    excludes (NotAction): {}", listed(&excluded))?;
            }
            for n in &s.not_narrowed {
                writeln!(
                    out,
                    "    {} statement {} keeps {} (it also covers {}): narrow it by hand",
                    paint.warn("review:"),
                    escape(&n.statement),
                    escape(&n.action),
                    listed(&n.covers)
                )?;
            }
            write_document(out, draft.document.as_ref(), "    ")?;
        }
        if let Some(drafts) = &item.observed_drafts {
            writeln!(out, "\n  {}", paint.bold("observed usage: each draft keeps only the actions called"))?;
            write_observed_drafts(out, drafts, "  ", paint)?;
        }
        if let Some(split) = &item.split {
            writeln!(out, "\n  {}", paint.bold("split proposal: its service accounts call different actions"))?;
            for share in split {
                let actions = if share.actions.is_empty() { "nothing".to_string() } else { listed(&share.actions) };
                writeln!(out, "  {}/{} calls {actions}", escape(&share.namespace), escape(&share.service_account))?;
                write_observed_drafts(out, &share.drafts, "    ", paint)?;
            }
            if !item.called_by_others.is_empty() {
                writeln!(
                    out,
                    "  {} only callers that are no service account here used {}: a split takes them away from them",
                    paint.warn("review:"),
                    listed(&item.called_by_others)
                )?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

fn write_observed_drafts(
    out: &mut dyn Write,
    drafts: &[crate::policy::observed::ObservedDraft],
    indent: &str,
    paint: Paint,
) -> io::Result<()> {
    for d in drafts {
        writeln!(out, "{indent}policy {}", paint.bold(&escape(&d.source)))?;
        if !d.kept_unjudged.is_empty() {
            writeln!(
                out,
                "{indent}  kept as written (CloudTrail cannot see all they allow): {}",
                listed(&d.kept_unjudged)
            )?;
        }
        write_document(out, d.document.as_ref(), &format!("{indent}  "))?;
    }
    Ok(())
}

/// A draft policy, pretty JSON indented; none left means the policy can go.
fn write_document(out: &mut dyn Write, doc: Option<&crate::policy::PolicyDocument>, indent: &str) -> io::Result<()> {
    let Some(doc) = doc else {
        return writeln!(out, "{indent}nothing is left: detach or delete this policy");
    };
    let json = serde_json::to_string_pretty(doc).map_err(io::Error::other)?;
    for line in json.lines() {
        writeln!(out, "{indent}{line}")?;
    }
    Ok(())
}
