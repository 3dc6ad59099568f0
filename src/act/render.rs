//! Rendering in one place: tables for people, JSON/YAML documents for programs. Colour only ever
//! reaches tables.

use std::io::{self, Write};

use serde::Serialize;
use tabwriter::TabWriter;

use super::paint::Paint;
use crate::cli::Format;
use crate::model::{Binding, BindingList, Problem, ProblemCode};

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

/// How much a problem matters, for colour and ordering.
fn severity_paint(code: ProblemCode, paint: Paint, text: &str) -> String {
    use ProblemCode::*;
    match code {
        MalformedRoleArn
        | RoleNotFound
        | TrustPolicyMismatch
        | PodIdentityAgentMissing
        | StalePodCredentials
        | AccessDenied => paint.bad(text),
        CrossAccountRole | NoWorkloadIdentity => paint.dim(text),
        _ => paint.warn(text),
    }
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
        let mut header = "NAMESPACE\tSERVICE ACCOUNT\tROLE\tSOURCE\tWORKLOADS\tPODS\tPROBLEMS".to_string();
        if wide {
            header.push_str("\tTARGET ROLE\tAUDIENCE\tTOKEN EXPIRATION\tPOD NAMES");
        }
        writeln!(tw, "{header}")?;
        for b in &list.items {
            write!(
                tw,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                b.namespace,
                b.service_account,
                b.role_arn,
                source_cell(b, paint),
                workloads_cell(b, wide),
                b.pods.len(),
                problems_cell(b, paint)
            )?;
            if wide {
                let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "<none>".into());
                let pods = if b.pods.is_empty() { "<none>".to_string() } else { b.pods.join(",") };
                write!(
                    tw,
                    "\t{}\t{}\t{}\t{pods}",
                    or_none(&b.target_role_arn),
                    or_none(&b.audience),
                    or_none(&b.token_expiration)
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
            let at = match &p.namespace {
                Some(ns) => format!("{ns}/{}", p.object),
                None => p.object.clone(),
            };
            writeln!(out, "{} {at}\n    {}", severity_paint(p.code, paint, p.code.as_str()), p.message)?;
        }
    }
    Ok(())
}
