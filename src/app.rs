//! Runs a parsed command line: collect, resolve, act.

use std::io::{BufWriter, Write};

use clap::CommandFactory;

use crate::act::paint::Paint;
use crate::act::render;
use crate::arn::RoleQuery;
use crate::cli::{Cli, Command, Format};
use crate::model::Snapshot;
use crate::{Error, Result, collect, resolve};

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
            print(&cli, |out, paint| match cli.output.output {
                Format::Table | Format::Wide => {
                    render::binding_table(out, &list, cli.output.output == Format::Wide, paint)
                }
                f => render::document(out, &list, f),
            })
        }
        Command::Snapshot => {
            let snap = load(&cli).await?;
            let format = if cli.output.output == Format::Yaml { Format::Yaml } else { Format::Json };
            print(&cli, |out, _| render::document(out, &snap, format))
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
        None => collect::live(&cli.kube, &cli.aws).await?,
    };
    let paint = Paint::stderr(cli.output.color);
    for w in &snap.warnings {
        eprintln!("{} {w}", paint.warn("warning:"));
    }
    if let Some(reason) = &snap.pod_identity.skipped_reason {
        eprintln!("{} Pod Identity associations were not read: {reason}", paint.warn("warning:"));
    }
    Ok(snap)
}

/// Writes to stdout through a buffer; a closed pipe surfaces as an I/O error the caller treats as success.
fn print(cli: &Cli, f: impl FnOnce(&mut dyn Write, Paint) -> std::io::Result<()>) -> Result<()> {
    let paint = Paint::stdout(cli.output.color);
    let mut out = BufWriter::new(std::io::stdout().lock());
    f(&mut out, paint)?;
    out.flush()?;
    Ok(())
}
