//! The cache: last-accessed reports (one JSON file per caller account, role and granularity; IAM's data lags
//! about four hours, so re-reading it sooner only costs another job) and what was read of a CloudTrail trail
//! (per trail, account, region and day).
//!
//! The cache holds what one identity may read about IAM roles, so it is private and trusts nothing it did
//! not write: directories are created `0700` and files `0600`, each written under a random name with
//! `O_EXCL` and renamed into place; an entry is read only when it is a regular file (never through a
//! symlink) owned by this user, under directories owned by this user that no one else may write to. An
//! entry names its format version, the account whose credentials read it, and the role, and is used only
//! when all three match.

use std::fs::{DirBuilder, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::{Granularity, RoleReport};

/// How long a report is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(4 * 3600);

/// The entry format; a change of an entry's meaning bumps it, so old entries are never misread.
const FORMAT: u32 = 3;

/// A directory of cached reports; `None` disables caching (no cache directory could be found).
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Option<PathBuf>,
    ttl: Duration,
}

/// What one file holds.
#[derive(Serialize, Deserialize)]
struct Entry<T> {
    format: u32,
    /// The account of the credentials that read the data.
    caller: String,
    data: T,
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

    /// The directories from the root down to the entry's (`v2/<caller>/<parts...>`), and its file name.
    fn location(&self, caller: &str, parts: &[&str], name: &str) -> Option<(Vec<PathBuf>, String)> {
        let root = self.dir.as_ref()?;
        let mut dirs = vec![root.clone()];
        let components =
            [format!("v{FORMAT}"), file_name(caller)].into_iter().chain(parts.iter().map(|p| file_name(p)));
        for part in components {
            let next = dirs[dirs.len() - 1].join(part);
            dirs.push(next);
        }
        Some((dirs, format!("{}.json", file_name(name))))
    }

    fn last_accessed_location(
        &self,
        caller: &str,
        role_arn: &str,
        granularity: Granularity,
    ) -> Option<(Vec<PathBuf>, String)> {
        let granularity = match granularity {
            Granularity::Service => "service",
            Granularity::Action => "action",
        };
        self.location(caller, &["last-accessed", granularity], role_arn)
    }

    /// The entry `caller`'s credentials wrote under `parts`/`name`, if it is there and may be trusted.
    pub fn read<T: DeserializeOwned>(&self, caller: &str, parts: &[&str], name: &str) -> Option<T> {
        let (dirs, name) = self.location(caller, parts, name)?;
        read_entry(&dirs, &name, caller)
    }

    /// Stores an entry; a cache that cannot be written only costs work later.
    pub fn write<T: Serialize>(&self, caller: &str, parts: &[&str], name: &str, data: &T) {
        if let Some((dirs, name)) = self.location(caller, parts, name) {
            write_entry(&dirs, &name, caller, data);
        }
    }

    /// A report `caller`'s credentials fetched less than the TTL before `now`.
    pub fn get(&self, caller: &str, role_arn: &str, granularity: Granularity, now: Timestamp) -> Option<RoleReport> {
        let (dirs, name) = self.last_accessed_location(caller, role_arn, granularity)?;
        let report: RoleReport = read_entry(&dirs, &name, caller)?;
        let age = now.duration_since(report.fetched_at);
        let fresh = age >= SignedDuration::ZERO && age.unsigned_abs() < self.ttl;
        (fresh && report.role_arn == role_arn && report.granularity == granularity && report.error.is_none())
            .then_some(report)
    }

    /// Stores a successful report read with `caller`'s credentials.
    pub fn put(&self, caller: &str, report: &RoleReport) {
        if report.error.is_some() {
            return;
        }
        if let Some((dirs, name)) = self.last_accessed_location(caller, &report.role_arn, report.granularity) {
            write_entry(&dirs, &name, caller, report);
        }
    }
}

fn read_entry<T: DeserializeOwned>(dirs: &[PathBuf], name: &str, caller: &str) -> Option<T> {
    if let Err(reason) = dirs.iter().enumerate().try_for_each(|(i, d)| check_dir(d, i == 0)) {
        tracing::debug!("not reading the cache: {reason}");
        return None;
    }
    let path = dirs[dirs.len() - 1].join(name);
    let text = match read_private(&path) {
        Ok(text) => text?,
        Err(reason) => {
            tracing::debug!("not reading the cache entry {}: {reason}", path.display());
            return None;
        }
    };
    let entry: Entry<T> = serde_json::from_str(&text).ok()?;
    (entry.format == FORMAT && entry.caller == caller).then_some(entry.data)
}

fn write_entry<T: Serialize>(dirs: &[PathBuf], name: &str, caller: &str, data: &T) {
    let write = || -> Result<(), String> {
        for (i, dir) in dirs.iter().enumerate() {
            make_dir(dir, i == 0)?;
        }
        let dir = &dirs[dirs.len() - 1];
        let entry = Entry { format: FORMAT, caller: caller.to_string(), data };
        let bytes = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
        // A fresh file with a random name, created O_EXCL and 0600, renamed over the entry: a concurrent
        // reader never sees half a file, and nothing planted at a guessable name is ever opened.
        let mut file = tempfile::Builder::new()
            .prefix(".entry-")
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
        file.write_all(&bytes).map_err(|e| e.to_string())?;
        file.persist(dir.join(name)).map_err(|e| e.to_string())?;
        Ok(())
    };
    if let Err(reason) = write() {
        tracing::debug!("cannot write the cache: {reason}");
    }
}

/// A name that is safe as one path component.
fn file_name(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.+=,@".contains(c) { c } else { '_' }).collect()
}

/// Creates `dir` (`0700`) unless it exists, then checks it as [`check_dir`] does.
fn make_dir(dir: &Path, root: bool) -> Result<(), String> {
    match DirBuilder::new().recursive(root).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    check_dir(dir, root)
}

/// A directory the cache may trust: the root (which the user may name, and may be a symlink) must be
/// owned by this user or be sticky like /tmp, and no one else may write to it; every directory below it
/// must be a real directory, owned by this user, closed to everyone else.
fn check_dir(dir: &Path, root: bool) -> Result<(), String> {
    let meta = if root { std::fs::metadata(dir) } else { std::fs::symlink_metadata(dir) };
    let meta = meta.map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let mine = meta.uid() == rustix::process::geteuid().as_raw();
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    let open_to_others = if root { mode & 0o022 != 0 && !sticky } else { mode & 0o077 != 0 };
    if !(mine || root && sticky) {
        return Err(format!("{} belongs to another user (uid {})", dir.display(), meta.uid()));
    }
    if open_to_others {
        return Err(format!("{} is open to other users (mode {:o})", dir.display(), mode & 0o7777));
    }
    Ok(())
}

/// The text of a private file: `None` when there is none; an error when it is not a regular file of
/// this user's that only this user can read and write.
fn read_private(path: &Path) -> Result<Option<String>, String> {
    let no_follow = rustix::fs::OFlags::NOFOLLOW.bits().cast_signed();
    let mut file = match OpenOptions::new().read(true).custom_flags(no_follow).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    private_file(&meta)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(Some(text))
}

fn private_file(meta: &Metadata) -> Result<(), String> {
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(format!("owned by another user (uid {})", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!("open to other users (mode {:o})", meta.mode() & 0o777));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
