//! `krew.yaml` against krew's plugin manifest rules (krew's `internal/index/validation`: apiVersion and kind, a safe
//! name, a one-line short description, a `v`-prefixed semantic version, and per platform a selector on `os`/`arch`
//! only, a `uri`, a lowercase hex `sha256`, a `bin` and well-formed `files`), plus what the krew-index reviewers ask
//! (a lowercase name, a short description under 50 characters, https archives) and what this project needs (real
//! digests of built archives only, archives that match their selector and the crate's version, the binary in `files`),
//! and that `.ci/release` packs and records what krew installs.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const BIN: &str = "kubectl-iam_roles";

fn krew() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("krew.yaml");
    let text = std::fs::read_to_string(&path).expect("read krew.yaml");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("krew.yaml is not YAML: {e}"))
}

fn text<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str().unwrap_or_else(|| panic!("{what} must be a string, got {v}"))
}

#[test]
fn krew_manifest_follows_krews_rules() {
    let k = krew();
    assert_eq!(k["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(k["kind"], "Plugin");

    let name = text(&k["metadata"]["name"], "metadata.name");
    assert_eq!(name, "iam-roles");
    assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{name}");
    assert!(!name.starts_with('-') && !name.ends_with('-'), "{name}");
    assert_eq!(BIN, format!("kubectl-{}", name.replace('-', "_")), "kubectl runs `kubectl {name}` as {BIN}");

    let spec = &k["spec"];
    let version = text(&spec["version"], "spec.version");
    let semver = version.strip_prefix('v').unwrap_or_else(|| panic!("krew requires the v prefix: {version}"));
    let parsed =
        semver::Version::parse(semver).unwrap_or_else(|e| panic!("spec.version {version} is not v + semver: {e}"));
    assert_eq!(parsed.to_string(), env!("CARGO_PKG_VERSION"), "krew.yaml and Cargo.toml release the same version");

    let short = text(&spec["shortDescription"], "spec.shortDescription");
    assert!(!short.trim().is_empty() && !short.contains(['\r', '\n']), "one line: {short:?}");
    assert!(short.chars().count() < 50, "krew-index asks for a short description under 50 characters: {short:?}");
    assert!(!text(&spec["description"], "spec.description").trim().is_empty());
    assert!(text(&spec["homepage"], "spec.homepage").starts_with("https://"));
}

#[test]
fn krew_platforms_are_complete_and_well_formed() {
    let k = krew();
    let version = text(&k["spec"]["version"], "spec.version");
    let platforms = k["spec"]["platforms"].as_array().expect("spec.platforms");
    assert!(!platforms.is_empty(), "krew: should have a platform specified");
    let mut seen = BTreeSet::new();
    for p in platforms {
        let selector = p["selector"].as_object().unwrap_or_else(|| panic!("a selector on every platform: {p}"));
        let labels = selector.get("matchLabels").and_then(Value::as_object).expect("matchLabels");
        assert!(!labels.is_empty(), "krew: `matchLabels` specified but empty");
        assert!(labels.keys().all(|k| k == "os" || k == "arch"), "krew supports only os and arch: {labels:?}");
        assert!(selector.keys().all(|k| k == "matchLabels" || k == "matchExpressions"), "{selector:?}");
        let os = text(&labels["os"], "os");
        let arch = text(&labels["arch"], "arch");
        assert!(seen.insert((os.to_string(), arch.to_string())), "{os}/{arch} listed twice");

        let uri = text(&p["uri"], "uri");
        assert!(uri.starts_with("https://"), "{uri}");
        assert!(uri.ends_with(".tar.gz") || uri.ends_with(".zip"), "krew unpacks .tar.gz or .zip: {uri}");
        assert!(uri.contains(&format!("/{version}/")) && uri.contains(&format!("-{version}-")), "{uri} is {version}");
        let (target_os, target_arch) = match (os, arch) {
            ("linux", a) => ("linux", a),
            ("darwin", a) => ("apple-darwin", a),
            (other, _) => panic!("unexpected os {other}"),
        };
        let rust_arch = match target_arch {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            other => panic!("unexpected arch {other}"),
        };
        assert!(uri.contains(rust_arch) && uri.contains(target_os), "{uri} is the {os}/{arch} build");

        let sha = text(&p["sha256"], "sha256");
        assert!(is_sha256(sha), "sha256 {sha:?}");
        assert!(sha.bytes().any(|b| b != b'0'), "{os}/{arch}: a placeholder digest; run .ci/release (or leave it out)");

        assert_eq!(text(&p["bin"], "bin"), BIN, "no .exe: no Windows build");
        let files = p["files"].as_array().expect("files (krew copies only these)");
        assert!(!files.is_empty(), "krew: `files` has to be unspecified or non-empty");
        for f in files {
            assert!(!text(&f["from"], "from").is_empty() && !text(&f["to"], "to").is_empty(), "{f}");
        }
        let ships_bin = files.iter().any(|f| f["from"] == BIN || f["from"] == "*");
        assert!(ships_bin, "{os}/{arch}: files must copy the binary {BIN}");
    }
    // Only what has been built and hashed is listed: linux/amd64, which .ci/release builds here.
    assert!(seen.contains(&("linux".to_string(), "amd64".to_string())), "linux/amd64 is released: {seen:?}");
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum (coreutils)");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a digest").to_string()
}

/// `.ci/release` packs a binary as krew unpacks it (the binary and LICENSE at the root), byte for byte the
/// same each time, and writes the archive's real sha256 into the linux/amd64 entry of the manifest it is given.
#[test]
fn the_release_script_packs_and_records_the_digest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let fake_bin = dir.path().join("built");
    std::fs::write(&fake_bin, "#!/bin/sh\necho iam-roles\n").unwrap();
    std::fs::set_permissions(&fake_bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let manifest = dir.path().join("krew.yaml");
    let original = std::fs::read_to_string(root.join("krew.yaml")).unwrap();
    let zeroed: String = original
        .lines()
        .map(|l| match l.split_once("sha256:") {
            Some((indent, _)) => format!("{indent}sha256: \"{}\"\n", "0".repeat(64)),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&manifest, &zeroed).unwrap();
    let dist = dir.path().join("dist");
    let release = |manifest: &Path| {
        let out = Command::new(root.join(".ci/release"))
            .arg("--binary")
            .arg(&fake_bin)
            .arg("--manifest")
            .arg(manifest)
            .arg("--dist")
            .arg(&dist)
            .output()
            .expect("run .ci/release");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    release(&manifest);

    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let archive = dist.join(format!("{BIN}-{version}-x86_64-unknown-linux-musl.tar.gz"));
    let sha = sha256_of(&archive);
    let written: Value = serde_saphyr::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let platforms = written["spec"]["platforms"].as_array().unwrap();
    let linux = platforms.iter().find(|p| p["selector"]["matchLabels"]["os"] == "linux").expect("linux/amd64");
    assert_eq!(linux["sha256"], sha.as_str(), "the archive's digest is recorded");
    assert_eq!(std::fs::read_to_string(&manifest).unwrap().lines().count(), zeroed.lines().count(), "one line changed");

    let listing = Command::new("tar").arg("-tzf").arg(&archive).output().expect("tar");
    let names: BTreeSet<String> = String::from_utf8_lossy(&listing.stdout).lines().map(str::to_string).collect();
    let expected: BTreeSet<String> = [BIN, "LICENSE"].iter().map(|s| s.to_string()).collect();
    assert_eq!(names, expected, "krew's files: entries find these at the archive root");

    // Reproducible: packing the same binary again gives the same bytes.
    release(&manifest);
    assert_eq!(sha256_of(&archive), sha);
}
