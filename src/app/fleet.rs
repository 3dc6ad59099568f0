//! Runs over several clusters (`--context A --context B`, `--all-contexts`, or a fleet snapshot): each
//! cluster is collected concurrently with its own context, EKS cluster, region and credentials, resolved on
//! its own, and the lists merged with every item and problem naming its cluster. A cluster that cannot be
//! read is a `cluster-unreachable` problem of the run, never its end.

use futures::future::join_all;

use super::print_warnings;
use crate::cli::Cli;
use crate::model::{BindingList, Problem, ProblemCode, Snapshot};
use crate::{Error, Result, collect, resolve};

/// What a run read: one snapshot per cluster, and the clusters that could not be read.
pub(super) struct Loaded {
    pub snaps: Vec<Snapshot>,
    pub unreachable: Vec<Problem>,
    /// Several clusters are in scope: items and problems name their cluster.
    pub fleet: bool,
}

/// The contexts of a fleet run (those named, or every context of the kubeconfig) with what to read in each.
pub(super) fn targets(cli: &Cli) -> Result<Vec<(String, collect::Options)>> {
    let all = if cli.kube.all_contexts { collect::context::context_names(&cli.collect_options())? } else { Vec::new() };
    let targets = cli.fleet_options(&all)?;
    if targets.is_empty() {
        return Err(Error::config("the kubeconfig has no contexts"));
    }
    Ok(targets)
}

/// Collects every cluster of the run (or reads the snapshot file), printing collection warnings.
pub(super) async fn load_all(cli: &Cli) -> Result<Loaded> {
    if let Some(path) = &cli.output.snapshot {
        let snaps = collect::snapshot::read_all(path)?
            .into_iter()
            .map(|s| collect::snapshot::narrow(s, &cli.collect_options()))
            .collect::<Result<Vec<_>>>()?;
        snaps.iter().for_each(|s| print_warnings(cli, s));
        let fleet = snaps.len() > 1;
        return Ok(Loaded { snaps, unreachable: Vec::new(), fleet });
    }
    let selector = cli.kube.selector.as_deref();
    if !cli.is_fleet() {
        let conn = collect::Connection::open(&cli.collect_options()).await?;
        let snap = collect::live(&conn, selector).await?;
        print_warnings(cli, &snap);
        return Ok(Loaded { snaps: vec![snap], unreachable: Vec::new(), fleet: false });
    }
    let targets = targets(cli)?;
    let results = join_all(targets.into_iter().map(|(context, options)| async move {
        let snap = async {
            let conn = collect::Connection::open(&options).await?;
            collect::live(&conn, selector).await
        }
        .await;
        (context, snap)
    }))
    .await;
    let mut loaded = Loaded { snaps: Vec::new(), unreachable: Vec::new(), fleet: true };
    for (context, result) in results {
        match result {
            Ok(mut snap) => {
                snap.cluster.name.get_or_insert(context);
                print_warnings(cli, &snap);
                loaded.snaps.push(snap);
            }
            Err(e) => {
                // The cluster's name as the context names it (an EKS ARN's), else the context's.
                let arn = context.parse::<crate::arn::Arn>().ok();
                let cluster = arn.as_ref().and_then(|a| a.eks_cluster()).unwrap_or(&context).to_string();
                loaded.unreachable.push(Problem {
                    code: ProblemCode::ClusterUnreachable,
                    namespace: None,
                    object: format!("Context/{context}"),
                    message: format!("cluster {cluster} (context {context}) could not be read: {}", crate::causes(&e)),
                    cluster: Some(cluster),
                })
            }
        }
    }
    Ok(loaded)
}

/// Resolves each cluster and, in a fleet run, merges the lists with every item and problem naming its cluster.
pub(super) fn resolve_all(loaded: &Loaded) -> BindingList {
    if !loaded.fleet
        && let Some(snap) = loaded.snaps.first()
    {
        return resolve::resolve(snap);
    }
    let mut merged = BindingList {
        api_version: crate::model::API_VERSION.to_string(),
        kind: "BindingList".to_string(),
        cluster: None,
        clusters: Some(Vec::new()),
        items: Vec::new(),
        problems: loaded.unreachable.clone(),
    };
    for snap in &loaded.snaps {
        let list = resolve::resolve(snap);
        let name = snap.cluster.name.clone().unwrap_or_default();
        for mut item in list.items {
            item.cluster = Some(name.clone());
            for p in &mut item.problems {
                p.cluster = Some(name.clone());
            }
            merged.items.push(item);
        }
        merged.problems.extend(list.problems.into_iter().map(|mut p| {
            p.cluster = Some(name.clone());
            p
        }));
        merged.clusters.get_or_insert_with(Vec::new).push(name);
    }
    if let Some(clusters) = merged.clusters.as_mut() {
        clusters.extend(loaded.unreachable.iter().filter_map(|p| p.cluster.clone()));
        clusters.sort();
    }
    merged.items.sort_by(|a, b| {
        (&a.cluster, &a.namespace, &a.service_account, &a.role_arn).cmp(&(
            &b.cluster,
            &b.namespace,
            &b.service_account,
            &b.role_arn,
        ))
    });
    merged.problems.sort_by(|a, b| (&a.cluster, a.sort_key()).cmp(&(&b.cluster, b.sort_key())));
    merged
}

/// The run's end: a failure when some cluster could not be read, after everything else was printed.
pub(super) fn finish(loaded: &Loaded) -> Result<()> {
    match loaded.unreachable.len() {
        0 => Ok(()),
        n => Err(Error::Incomplete(format!(
            "{n} of {} cluster(s) could not be read (see cluster-unreachable above); the output covers the others",
            n + loaded.snaps.len()
        ))),
    }
}
