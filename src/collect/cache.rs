//! The last-accessed cache: one JSON file per role and granularity. IAM's data lags about four hours, so
//! re-reading it sooner only costs another job.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::model::{Granularity, RoleReport};

/// How long a report is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(4 * 3600);

/// A directory of cached reports; `None` disables caching (no cache directory could be found).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
    ttl: Duration,
}

impl Cache {
    /// `dir`, else `$IAM_ROLES_CACHE_DIR`, else the user's cache directory.
    pub fn new(dir: Option<&Path>, ttl: Duration) -> Self {
        let dir = dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("IAM_ROLES_CACHE_DIR").filter(|v| !v.is_empty()).map(PathBuf::from))
            .or_else(|| dirs::cache_dir().map(|d| d.join("kubectl-iam-roles")));
        Cache { dir, ttl }
    }

    fn path(&self, role_arn: &str, granularity: Granularity) -> Option<PathBuf> {
        let file: String = role_arn
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.+=,@".contains(c) { c } else { '_' })
            .collect();
        let sub = match granularity {
            Granularity::Service => "service",
            Granularity::Action => "action",
        };
        Some(self.dir.as_ref()?.join("last-accessed").join(sub).join(format!("{file}.json")))
    }

    /// A report fetched less than the TTL before `now`.
    pub fn get(&self, role_arn: &str, granularity: Granularity, now: Timestamp) -> Option<RoleReport> {
        let text = std::fs::read_to_string(self.path(role_arn, granularity)?).ok()?;
        let report: RoleReport = serde_json::from_str(&text).ok()?;
        let age = now.duration_since(report.fetched_at);
        let fresh = age >= SignedDuration::ZERO && age.unsigned_abs() < self.ttl;
        (fresh && report.role_arn == role_arn && report.error.is_none()).then_some(report)
    }

    /// Stores a successful report; a cache that cannot be written only costs a later job.
    pub fn put(&self, report: &RoleReport) {
        if report.error.is_some() {
            return;
        }
        let Some(path) = self.path(&report.role_arn, report.granularity) else { return };
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Write then rename, so a concurrent reader never sees half a file.
            let tmp = path.with_extension(format!("json.{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec(report)?)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            tracing::debug!("cannot write the last-accessed cache {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(arn: &str, fetched_at: Timestamp) -> RoleReport {
        RoleReport {
            role_arn: arn.into(),
            granularity: Granularity::Service,
            fetched_at,
            role_last_used: None,
            role_last_used_region: None,
            services: vec![],
            error: None,
        }
    }

    #[test]
    fn reuses_fresh_reports_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path()), DEFAULT_TTL);
        let arn = "arn:aws:iam::111122223333:role/team/app";
        let t0: Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
        cache.put(&report(arn, t0));
        let later = |h: i64| t0 + SignedDuration::from_hours(h);
        assert!(cache.get(arn, Granularity::Service, later(3)).is_some());
        assert!(cache.get(arn, Granularity::Service, later(5)).is_none(), "past the TTL");
        assert!(cache.get(arn, Granularity::Action, later(1)).is_none(), "another granularity");
        assert!(cache.get("arn:aws:iam::111122223333:role/other", Granularity::Service, later(1)).is_none());
        let mut failed = report("arn:aws:iam::111122223333:role/failed", t0);
        failed.error =
            Some(crate::model::ReportError { code: crate::model::ProblemCode::AccessDenied, message: "x".into() });
        cache.put(&failed);
        assert!(cache.get("arn:aws:iam::111122223333:role/failed", Granularity::Service, later(1)).is_none());
    }
}
