//! `krew.yaml` against krew's plugin manifest rules (krew's `internal/index/validation`: apiVersion and kind, a safe
//! name, a one-line short description, a `v`-prefixed semantic version, and per platform a selector on `os`/`arch`
//! only, a `uri`, a lowercase hex `sha256`, a `bin` and well-formed `files`), plus what the krew-index reviewers ask
//! (a lowercase name, a short description under 50 characters, https archives) and what this project needs (the
//! four release targets, archives that match their selector and the crate's version, the binary in `files`).

use std::collections::BTreeSet;
use std::path::Path;

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

/// Semantic version 2.0.0 (`MAJOR.MINOR.PATCH`, optional `-pre` and `+build`), without leading zeros.
fn is_semver(v: &str) -> bool {
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = core.split_once('-').map_or((core, None), |(c, p)| (c, Some(p)));
    let numeric = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
    let parts: Vec<&str> = core.split('.').collect();
    let ident = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    parts.len() == 3 && parts.iter().all(|p| numeric(p)) && pre.is_none_or(|p| p.split('.').all(ident))
}

#[test]
fn semver_check_is_strict() {
    assert!(is_semver("0.1.0") && is_semver("1.20.3-rc.1+abc"));
    assert!(!is_semver("0.1") && !is_semver("01.0.0") && !is_semver("v0.1.0") && !is_semver("1.0.0-"));
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
    assert!(is_semver(semver), "spec.version {version} is not v + semver");
    assert_eq!(semver, env!("CARGO_PKG_VERSION"), "krew.yaml and Cargo.toml release the same version");

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
        assert!(sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "sha256 {sha:?}");

        assert_eq!(text(&p["bin"], "bin"), BIN, "no .exe: no Windows build");
        let files = p["files"].as_array().expect("files (krew copies only these)");
        assert!(!files.is_empty(), "krew: `files` has to be unspecified or non-empty");
        for f in files {
            assert!(!text(&f["from"], "from").is_empty() && !text(&f["to"], "to").is_empty(), "{f}");
        }
        let ships_bin = files.iter().any(|f| f["from"] == BIN || f["from"] == "*");
        assert!(ships_bin, "{os}/{arch}: files must copy the binary {BIN}");
    }
    let expected: BTreeSet<(String, String)> = ["linux", "darwin"]
        .iter()
        .flat_map(|os| ["amd64", "arm64"].iter().map(move |arch| (os.to_string(), arch.to_string())))
        .collect();
    assert_eq!(seen, expected, "linux and darwin, amd64 and arm64");
}
