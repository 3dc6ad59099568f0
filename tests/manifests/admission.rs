//! `manifests/admission-policy.yaml`, evaluated: a CEL interpreter runs the policy's match conditions,
//! variables and validations (as the API server does for a ValidatingAdmissionPolicy, with `object` and
//! `oldObject` dynamic) on sample updates, so a policy that would let the auditor change a spec, a label or
//! another tool's annotation fails here. Also: the policy covers every resource the ClusterRole lets the
//! auditor patch, names the auditor's service account, uses the binary's default prefix, and is bound.
//!
//! The interpreter is cel-rust, not cel-go: it checks the expressions' meaning, not the API server's
//! compile-time cost limits; `kubectl apply --dry-run=server` on a 1.30+ cluster checks those.

use std::collections::{BTreeSet, HashMap};

use cel::{Context, Program, Value as Cel};
use serde_json::{Value, json};

use super::{Manifests, NAMESPACE, documents};

const AUDITOR: &str = "system:serviceaccount:iam-roles:iam-roles-auditor";

/// The policy document as the API server reads it.
fn policy() -> Value {
    let docs = documents("admission-policy.yaml");
    docs.into_iter().find(|d| d["kind"] == "ValidatingAdmissionPolicy").expect("a ValidatingAdmissionPolicy")
}

#[derive(Debug, PartialEq)]
enum Verdict {
    /// A match condition is false: the policy does not apply to this request.
    NotMatched,
    Allowed,
    /// The messages of the validations that failed.
    Denied(Vec<String>),
}

fn eval(source: &str, ctx: &Context) -> Cel {
    let program = Program::compile(source).unwrap_or_else(|e| panic!("{source}: does not compile: {e}"));
    program.execute(ctx).unwrap_or_else(|e| panic!("{source}: fails to evaluate: {e}"))
}

fn boolean(source: &str, ctx: &Context) -> bool {
    match eval(source, ctx) {
        Cel::Bool(b) => b,
        other => panic!("{source}: not a bool: {other:?}"),
    }
}

/// What the API server decides for an UPDATE by `user` from `old` to `new`, under `policy`.
fn admit(policy: &Value, user: &str, old: &Value, new: &Value) -> Verdict {
    let spec = &policy["spec"];
    let mut ctx = Context::default();
    ctx.add_variable("object", new.clone()).expect("object");
    ctx.add_variable("oldObject", old.clone()).expect("oldObject");
    let request = json!({"operation": "UPDATE", "userInfo": {"username": user}});
    ctx.add_variable("request", request).expect("request");
    for condition in spec["matchConditions"].as_array().into_iter().flatten() {
        if !boolean(condition["expression"].as_str().expect("expression"), &ctx) {
            return Verdict::NotMatched;
        }
    }
    // Variables are evaluated in order; each may use the ones before it.
    let mut variables: HashMap<String, Cel> = HashMap::new();
    for variable in spec["variables"].as_array().into_iter().flatten() {
        let value = eval(variable["expression"].as_str().expect("expression"), &ctx);
        variables.insert(variable["name"].as_str().expect("name").to_string(), value);
        ctx.add_variable_from_value("variables", variables.clone());
    }
    let mut failed = Vec::new();
    for validation in spec["validations"].as_array().expect("validations") {
        if !boolean(validation["expression"].as_str().expect("expression"), &ctx) {
            let message = match validation.get("messageExpression").and_then(Value::as_str) {
                Some(expr) => match eval(expr, &ctx) {
                    Cel::String(s) => s.to_string(),
                    other => panic!("messageExpression gives {other:?}"),
                },
                None => validation["message"].as_str().expect("a message").to_string(),
            };
            failed.push(message);
        }
    }
    if failed.is_empty() { Verdict::Allowed } else { Verdict::Denied(failed) }
}

fn deployment(annotations: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "api", "namespace": "shop", "labels": {"app": "api"},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "u1"}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"serviceAccountName": "api", "containers": [{"name": "api", "image": "shop/api:1.4"}]},
            },
        },
        "status": {"replicas": 2},
    })
}

fn service_account() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "api", "namespace": "shop",
                     "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/api"}},
        "automountServiceAccountToken": true,
    })
}

/// A named edit of an object.
type Change = (&'static str, fn(&mut Value));

fn denied(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Denied(_))
}

#[test]
fn the_auditor_may_add_change_and_remove_its_own_annotations() {
    let p = policy();
    let bare = deployment(json!({"deployment.kubernetes.io/revision": "3"}));
    let with = deployment(json!({"deployment.kubernetes.io/revision": "3", "iam-roles.io/unused-services": "kms,sqs",
                                 "iam-roles.io/audited-at": "2026-12-04T06:00:00Z"}));
    let changed = deployment(json!({"deployment.kubernetes.io/revision": "3", "iam-roles.io/unused-services": "sqs",
                                    "iam-roles.io/audited-at": "2026-12-05T06:00:00Z"}));
    assert_eq!(admit(&p, AUDITOR, &bare, &with), Verdict::Allowed, "add");
    assert_eq!(admit(&p, AUDITOR, &with, &changed), Verdict::Allowed, "change");
    assert_eq!(admit(&p, AUDITOR, &changed, &bare), Verdict::Allowed, "remove");
    // An object with no annotations at all.
    let mut none = bare.clone();
    none["metadata"].as_object_mut().unwrap().remove("annotations");
    let mut first = none.clone();
    first["metadata"]["annotations"] = json!({"iam-roles.io/unused-services": "kms"});
    assert_eq!(admit(&p, AUDITOR, &none, &first), Verdict::Allowed, "first annotation");
    assert_eq!(admit(&p, AUDITOR, &first, &none), Verdict::Allowed, "last annotation removed");
    // A service account, which has no spec.
    let sa = service_account();
    let mut annotated = sa.clone();
    annotated["metadata"]["annotations"]["iam-roles.io/unused-services"] = json!("kms");
    assert_eq!(admit(&p, AUDITOR, &sa, &annotated), Verdict::Allowed, "service account");
}

#[test]
fn the_auditor_may_not_change_a_spec() {
    let p = policy();
    let old = deployment(json!({}));
    let cases: [Change; 4] = [
        ("image", |d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil/miner:latest")),
        ("service account", |d| d["spec"]["template"]["spec"]["serviceAccountName"] = json!("admin")),
        ("replicas", |d| d["spec"]["replicas"] = json!(0)),
        ("spec removed", |d| {
            d.as_object_mut().unwrap().remove("spec");
        }),
    ];
    for (what, change) in cases {
        let mut new = old.clone();
        change(&mut new);
        new["metadata"]["annotations"]["iam-roles.io/unused-services"] = json!("kms");
        let verdict = admit(&p, AUDITOR, &old, &new);
        assert!(denied(&verdict), "{what}: {verdict:?}");
    }
}

#[test]
fn the_auditor_may_not_touch_other_annotations_labels_or_owners() {
    let p = policy();
    let old = deployment(json!({"team.example.com/owner": "shop", "iam-roles.io/unused-services": "kms"}));
    let cases: [Change; 7] = [
        ("foreign annotation changed", |d| d["metadata"]["annotations"]["team.example.com/owner"] = json!("evil")),
        ("foreign annotation added", |d| {
            d["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] = json!("arn:aws:iam::111122223333:role/admin")
        }),
        ("foreign annotation removed", |d| {
            d["metadata"]["annotations"].as_object_mut().unwrap().remove("team.example.com/owner");
        }),
        ("a look-alike prefix", |d| d["metadata"]["annotations"]["iam-roles.io.evil.com/x"] = json!("y")),
        ("label changed", |d| d["metadata"]["labels"]["app"] = json!("other")),
        ("owner removed", |d| {
            d["metadata"].as_object_mut().unwrap().remove("ownerReferences");
        }),
        ("finalizer added", |d| d["metadata"]["finalizers"] = json!(["example.com/block"])),
    ];
    for (what, change) in cases {
        let mut new = old.clone();
        change(&mut new);
        let verdict = admit(&p, AUDITOR, &old, &new);
        assert!(denied(&verdict), "{what}: {verdict:?}");
    }
    let mut new = old.clone();
    new["metadata"]["annotations"]["team.example.com/owner"] = json!("evil");
    let Verdict::Denied(messages) = admit(&p, AUDITOR, &old, &new) else { panic!("denied") };
    assert_eq!(messages, ["the iam-roles auditor may change only annotations under iam-roles.io/"]);
}

#[test]
fn the_auditor_may_not_change_a_service_accounts_token_settings() {
    let p = policy();
    let old = service_account();
    let cases: [Change; 3] = [
        ("automount", |sa| sa["automountServiceAccountToken"] = json!(false)),
        ("secrets", |sa| sa["secrets"] = json!([{"name": "stolen-token"}])),
        ("image pull secrets", |sa| sa["imagePullSecrets"] = json!([{"name": "registry"}])),
    ];
    for (what, change) in cases {
        let mut new = old.clone();
        change(&mut new);
        let verdict = admit(&p, AUDITOR, &old, &new);
        assert!(denied(&verdict), "{what}: {verdict:?}");
    }
}

#[test]
fn other_users_are_not_constrained() {
    let p = policy();
    let old = deployment(json!({}));
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(5);
    assert_eq!(admit(&p, "kubernetes-admin", &old, &new), Verdict::NotMatched);
    assert_eq!(admit(&p, "system:serviceaccount:other:iam-roles-auditor", &old, &new), Verdict::NotMatched);
    assert!(denied(&admit(&p, AUDITOR, &old, &new)));
}

/// Each validation is needed: without it, one of the updates above would get through.
#[test]
fn every_validation_stops_something() {
    let full = policy();
    let count = full["spec"]["validations"].as_array().expect("validations").len();
    let old_deploy = deployment(json!({"team.example.com/owner": "shop"}));
    let old_sa = service_account();
    let attacks: Vec<(Value, Value)> = vec![
        (old_deploy.clone(), {
            let mut d = old_deploy.clone();
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil/miner:latest");
            d
        }),
        (old_deploy.clone(), {
            let mut d = old_deploy.clone();
            d["metadata"]["labels"]["app"] = json!("other");
            d
        }),
        (old_deploy.clone(), {
            let mut d = old_deploy.clone();
            d["metadata"]["finalizers"] = json!(["example.com/block"]);
            d
        }),
        (old_sa.clone(), {
            let mut sa = old_sa.clone();
            sa["automountServiceAccountToken"] = json!(false);
            sa
        }),
        (old_deploy.clone(), {
            let mut d = old_deploy.clone();
            d["metadata"]["annotations"]["team.example.com/owner"] = json!("evil");
            d
        }),
    ];
    for skip in 0..count {
        let mut weakened = full.clone();
        weakened["spec"]["validations"].as_array_mut().unwrap().remove(skip);
        let through = attacks.iter().any(|(old, new)| admit(&weakened, AUDITOR, old, new) == Verdict::Allowed);
        assert!(through, "validation {skip} stops none of the sample attacks: add a sample it is there for");
    }
}

#[test]
fn the_policy_covers_everything_the_auditor_may_patch_and_is_bound() {
    let m = Manifests::load();
    assert_eq!(m.admission_policies.len(), 1);
    let policy = &m.admission_policies[0];
    let spec = policy.spec.as_ref().expect("spec");
    assert_eq!(spec.failure_policy.as_deref(), Some("Fail"), "fail closed");
    let covered: BTreeSet<(String, String)> = spec
        .match_constraints
        .as_ref()
        .and_then(|c| c.resource_rules.as_ref())
        .into_iter()
        .flatten()
        .filter(|r| r.operations.iter().flatten().any(|op| op == "UPDATE" || op == "*"))
        .flat_map(|r| {
            let groups = r.api_groups.clone().unwrap_or_default();
            let resources = r.resources.clone().unwrap_or_default();
            groups.into_iter().flat_map(move |g| resources.clone().into_iter().map(move |res| (g.clone(), res)))
        })
        .collect();
    let patchable: BTreeSet<(String, String)> = m
        .rules()
        .iter()
        .filter(|r| r.verbs.iter().any(|v| v == "patch" || v == "update"))
        .flat_map(|r| {
            let groups = r.api_groups.clone().unwrap_or_default();
            let resources = r.resources.clone().unwrap_or_default();
            groups.into_iter().flat_map(move |g| resources.clone().into_iter().map(move |res| (g.clone(), res)))
        })
        .collect();
    assert!(!patchable.is_empty());
    let uncovered: Vec<_> = patchable.difference(&covered).collect();
    assert!(
        uncovered.is_empty(),
        "the auditor may patch these, but the admission policy does not check them: {uncovered:?}"
    );

    // The match condition names the service account the CronJob runs as.
    let sa = m.pod_spec().service_account_name.as_deref().expect("the CronJob's service account");
    let expected = format!("request.userInfo.username == 'system:serviceaccount:{NAMESPACE}:{sa}'");
    let conditions: Vec<&str> = spec.match_conditions.iter().flatten().map(|c| c.expression.as_str()).collect();
    assert_eq!(conditions, [expected.as_str()]);

    assert_eq!(m.admission_bindings.len(), 1);
    let binding = m.admission_bindings[0].spec.as_ref().expect("binding spec");
    assert_eq!(binding.policy_name.as_deref(), policy.metadata.name.as_deref());
    assert_eq!(binding.validation_actions.as_deref(), Some(&["Deny".to_string()][..]));
}

/// The policy's prefix is the one `annotate` writes under by default.
#[test]
fn the_policy_prefix_is_annotates_default() {
    let p = policy();
    let prefix = p["spec"]["variables"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == "prefix")
        .and_then(|v| v["expression"].as_str())
        .expect("a prefix variable");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-iam_roles"))
        .args(["annotate", "--help"])
        .output()
        .expect("run the binary");
    let help = String::from_utf8_lossy(&out.stdout);
    let default = format!("[default: {}]", prefix.trim_matches('\''));
    assert!(help.contains(&default), "annotate --help shows {default}: {help}");
}
