//! Observed usage for `audit` and `snapshot`: the trail read with a progress bar (files and bytes, on a
//! terminal), then attributed for this cluster.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{HumanBytes, ProgressBar};

use super::{now_seconds, warn};
use crate::cli::{Cli, IamArgs, UsageArgs, UsageSource};
use crate::collect::athena::{self, AthenaOptions};
use crate::collect::cache::{self, Cache};
use crate::collect::cloudtrail::{self, TrailOptions};
use crate::collect::iam::IamClients;
use crate::model::{BindingList, Snapshot};
use crate::usage::athena::{Dialect, QueryScope, query, tally_from_rows};
use crate::usage::{ClusterId, Usage, attribute};
use crate::{Result, audit};

/// Reads the account's trail for the window `args` asks and attributes the calls of the roles in `list` to
/// the service accounts of the clusters in `snaps` (labelled with their cluster when there are several).
pub(super) async fn observe(
    cli: &Cli,
    iam: &IamClients,
    snaps: &[&Snapshot],
    list: &BindingList,
    args: &UsageArgs,
    iam_args: &IamArgs,
) -> Result<Usage> {
    let roles = audit::auditable(list);
    let to = now_seconds();
    let from = to - args.since;
    let fleet = snaps.len() > 1;
    let clusters: Vec<ClusterId> = snaps
        .iter()
        .map(|snap| {
            let c = &snap.cluster;
            ClusterId {
                name: c.name.clone(),
                arn: match (&c.region, &c.account, &c.name) {
                    (Some(region), Some(account), Some(name)) => {
                        Some(format!("arn:{}:eks:{region}:{account}:cluster/{name}", iam.partition))
                    }
                    _ => None,
                },
                issuer: c.oidc_issuer.clone(),
                label: c.name.clone().filter(|_| fleet),
            }
        })
        .collect();
    if args.usage == Some(UsageSource::Athena) {
        return athena(iam, args, &roles, from, to, &clusters).await;
    }
    let options = TrailOptions {
        trail: args.trail.clone(),
        from,
        to,
        refresh: iam_args.refresh,
        concurrency: usize::from(iam_args.concurrency),
        cache: Cache::new(iam_args.cache_dir.as_deref(), cache::DEFAULT_TTL),
        caller: iam.caller.clone(),
    };
    let progress = FileProgress::start();
    let read = cloudtrail::read(&iam.sdk, &iam.caller, &roles, &options, &progress).await;
    progress.bar.finish_and_clear();
    let read = read?;
    for w in &read.warnings {
        warn(cli, w);
    }
    tracing::debug!(
        "read {} CloudTrail files ({} bytes) of trail {}",
        read.files_read,
        read.bytes_read,
        read.trail.arn
    );
    Ok(Usage {
        source: "cloudtrail".into(),
        trail: read.trail.arn.clone(),
        from: Some(from),
        to: Some(to),
        coverage: read.coverage,
        roles: attribute(&read.tally, &roles, &clusters),
    })
}

/// Runs the attribution query on Athena; says on stderr how much it scanned and what that costs.
async fn athena(
    iam: &IamClients,
    args: &UsageArgs,
    roles: &[crate::arn::RoleArn],
    from: jiff::Timestamp,
    to: jiff::Timestamp,
    clusters: &[ClusterId],
) -> Result<Usage> {
    let table = args.athena_table.clone().unwrap_or_default();
    let utc = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let scope = QueryScope { table: &table, from: utc(from), to: utc(to), roles };
    let sql = query(&scope, Dialect::Athena);
    let options = AthenaOptions {
        workgroup: args.athena_workgroup.clone(),
        output: args.athena_output.clone(),
        timeout: std::time::Duration::from_secs(1800),
    };
    let (rows, stats) = athena::run(&iam.sdk, &sql, &options).await?;
    // Athena bills $5 per TB scanned, at least 10 MB a query.
    let billed = stats.bytes_scanned.max(10_000_000) as f64;
    eprintln!(
        "athena: query {} scanned {} (about ${:.4} at $5/TB) and returned {} rows",
        crate::act::paint::escape(&stats.id),
        HumanBytes(stats.bytes_scanned),
        billed / 1e12 * 5.0,
        stats.rows
    );
    Ok(Usage {
        source: "athena".into(),
        trail: table.clone(),
        from: Some(from),
        to: Some(to),
        // What the trail behind the table records is unknown here: drafts narrow nothing on it.
        coverage: Default::default(),
        roles: attribute(&tally_from_rows(&rows), roles, clusters),
    })
}

/// Files read, on stderr when it is a terminal and the read takes a moment.
struct FileProgress {
    bar: ProgressBar,
    /// Bytes listed, and bytes read so far.
    total: AtomicU64,
    done: AtomicU64,
}

impl FileProgress {
    fn start() -> Self {
        let template = "{spinner} reading CloudTrail logs {pos}/{len} files, {msg} {wide_bar} {elapsed}";
        let bar = super::progress::delayed_bar(0, template);
        FileProgress { bar, total: AtomicU64::new(0), done: AtomicU64::new(0) }
    }

    fn show_bytes(&self) {
        let (done, total) = (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed));
        self.bar.set_message(format!("{} of {}", HumanBytes(done), HumanBytes(total)));
    }
}

impl cloudtrail::Progress for FileProgress {
    fn listed(&self, files: u64, bytes: u64) {
        self.bar.set_length(files);
        self.total.store(bytes, Ordering::Relaxed);
        self.show_bytes();
    }

    fn file_done(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        self.bar.inc(1);
        self.show_bytes();
    }
}
