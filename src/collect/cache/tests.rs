use std::os::unix::fs::PermissionsExt;

use super::*;

const CALLER: &str = "111122223333";
const ARN: &str = "arn:aws:iam::111122223333:role/team/app";

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

fn t0() -> Timestamp {
    "2026-11-22T10:00:00Z".parse().unwrap()
}

fn later(h: i64) -> Timestamp {
    t0() + SignedDuration::from_hours(h)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The one entry file under `root`.
fn entry_file(root: &Path) -> PathBuf {
    let cache = Cache::new(Some(root), DEFAULT_TTL);
    let (dirs, name) = cache.last_accessed_location(CALLER, ARN, Granularity::Service).unwrap();
    dirs[dirs.len() - 1].join(name)
}

#[test]
fn reuses_fresh_reports_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(Some(dir.path()), DEFAULT_TTL);
    cache.put(CALLER, &report(ARN, t0()));
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(3)).is_some());
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(5)).is_none(), "past the TTL");
    assert!(cache.get(CALLER, ARN, Granularity::Action, later(1)).is_none(), "another granularity");
    assert!(cache.get(CALLER, "arn:aws:iam::111122223333:role/other", Granularity::Service, later(1)).is_none());
    let mut failed = report("arn:aws:iam::111122223333:role/failed", t0());
    failed.error =
        Some(crate::model::ReportError { code: crate::model::ProblemCode::AccessDenied, message: "x".into() });
    cache.put(CALLER, &failed);
    assert!(cache.get(CALLER, "arn:aws:iam::111122223333:role/failed", Granularity::Service, later(1)).is_none());
}

#[test]
fn entries_belong_to_the_account_that_read_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(Some(dir.path()), DEFAULT_TTL);
    cache.put(CALLER, &report(ARN, t0()));
    assert!(cache.get("999988887777", ARN, Granularity::Service, later(1)).is_none());
    // A file copied under another caller's directory still names the caller that read it.
    let theirs = Cache::new(Some(dir.path()), DEFAULT_TTL)
        .last_accessed_location("999988887777", ARN, Granularity::Service)
        .unwrap();
    let theirs_dir = &theirs.0[theirs.0.len() - 1];
    for d in &theirs.0 {
        make_dir(d, d == dir.path()).unwrap();
    }
    let copied = theirs_dir.join(&theirs.1);
    std::fs::copy(entry_file(dir.path()), &copied).unwrap();
    std::fs::set_permissions(&copied, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(cache.get("999988887777", ARN, Granularity::Service, later(1)).is_none());
}

#[test]
fn directories_are_private_and_files_0600() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("cache");
    let cache = Cache::new(Some(&root), DEFAULT_TTL);
    cache.put(CALLER, &report(ARN, t0()));
    let file = entry_file(&root);
    assert_eq!(mode(&file), 0o600, "entry file");
    let mut dir = file.parent().unwrap();
    loop {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        if dir == root {
            break;
        }
        dir = dir.parent().unwrap();
    }
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
}

#[test]
fn a_planted_symlink_is_neither_followed_nor_read() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(Some(dir.path()), DEFAULT_TTL);
    cache.put(CALLER, &report(ARN, t0()));
    let file = entry_file(dir.path());
    let elsewhere = dir.path().join("elsewhere.json");
    std::fs::rename(&file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_none(), "read through a symlink");

    // Writing replaces the link; the file it pointed to is untouched. The same holds for the name the old
    // cache used for its temporary file (`<entry>.json.<pid>`), which an attacker could predict.
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&victim, &file).unwrap();
    let predictable = file.with_extension(format!("json.{}", std::process::id()));
    std::os::unix::fs::symlink(&victim, &predictable).unwrap();
    cache.put(CALLER, &report(ARN, t0()));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!std::fs::symlink_metadata(&file).unwrap().file_type().is_symlink());
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_some());
}

#[test]
fn entries_open_to_others_are_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(Some(dir.path()), DEFAULT_TTL);
    cache.put(CALLER, &report(ARN, t0()));
    let file = entry_file(dir.path());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_none(), "world-writable file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_some());

    // A directory anyone may write to could have had its entries swapped: neither read nor written.
    let shared = file.parent().unwrap();
    std::fs::set_permissions(shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_none(), "world-writable directory");
    std::fs::remove_file(&file).unwrap();
    cache.put(CALLER, &report(ARN, t0()));
    assert!(!file.exists(), "wrote into a world-writable directory");
}

#[test]
fn a_sticky_shared_root_like_tmp_is_usable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let cache = Cache::new(Some(dir.path()), DEFAULT_TTL);
    cache.put(CALLER, &report(ARN, t0()));
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_some());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_none(), "a root anyone may rename in");
}

#[test]
fn entries_of_another_format_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(Some(dir.path()), DEFAULT_TTL);
    cache.put(CALLER, &report(ARN, t0()));
    let file = entry_file(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(&format!("\"format\":{FORMAT}"), "\"format\":1")).unwrap();
    assert!(cache.get(CALLER, ARN, Granularity::Service, later(1)).is_none());
}
