//! The shape of the core, checked on the source (STYLE: edges depend on the model, not on the judges):
//! `collect` never imports the command line, the judges or the renderers; ARN strings are split only in
//! `src/arn.rs`; trust verdicts read the one policy model, not raw JSON.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The file's code before its `#[cfg(test)]` module: tests may build whatever they like.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    text.split("#[cfg(test)]").next().unwrap_or_default().to_string()
}

#[test]
fn collect_depends_on_the_model_only() {
    const FORBIDDEN: [&str; 6] =
        ["crate::cli", "crate::app", "crate::doctor", "crate::audit", "crate::resolve", "crate::act"];
    let mut found = Vec::new();
    for file in rust_files(&src().join("collect")) {
        let code = code(&file);
        for module in FORBIDDEN {
            if code.contains(module) {
                found.push(format!("{} uses {module}", file.display()));
            }
        }
    }
    assert!(found.is_empty(), "collect must take its own options and return the model: {found:#?}");
}

#[test]
fn arns_are_split_only_in_the_arn_module() {
    let mut found = Vec::new();
    for file in rust_files(&src()) {
        if file.ends_with("arn.rs") {
            continue;
        }
        for (i, line) in code(&file).lines().enumerate() {
            if line.contains("split(':')") || line.contains(", ':')") || line.contains("strip_prefix(\"arn:") {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "parse ARNs with arn::Arn or arn::RoleArn: {found:#?}");
}

#[test]
fn trust_verdicts_read_the_policy_model() {
    let trust = code(&src().join("doctor/trust.rs"));
    assert!(trust.contains("PolicyDocument"));
    assert!(!trust.contains("serde_json::Value"), "doctor/trust.rs walks raw JSON again");
}
