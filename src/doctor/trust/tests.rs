//! Trust policies as they appear in real accounts.

use serde_json::{Value, json};

use super::*;

/// The verdicts, on documents written as JSON here.
fn typed(doc: &Value) -> PolicyDocument {
    serde_json::from_value(doc.clone()).expect("a policy document")
}

fn irsa(doc: &Value, issuer: &str, account: &str, namespace: &str, service_account: &str) -> Trust {
    super::irsa(&typed(doc), issuer, account, namespace, service_account)
}

fn pod_identity(doc: &Value) -> Trust {
    super::pod_identity(&typed(doc))
}

fn chained(doc: &Value, source: &str) -> Trust {
    super::chained(&typed(doc), source)
}

const ISSUER: &str = "https://oidc.eks.us-west-2.amazonaws.com/id/5C9F2A7B41D3E8F06A1B2C3D4E5F6A7B";
const HOST: &str = "oidc.eks.us-west-2.amazonaws.com/id/5C9F2A7B41D3E8F06A1B2C3D4E5F6A7B";
const OTHER_HOST: &str = "oidc.eks.eu-west-1.amazonaws.com/id/0000000000000000000000000000AAAA";

fn provider(host: &str) -> String {
    format!("arn:aws:iam::111122223333:oidc-provider/{host}")
}

fn web_identity(conditions: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": provider(HOST)},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": conditions,
    }]})
}

fn check(doc: &Value) -> Trust {
    irsa(doc, ISSUER, "111122223333", "payments", "api")
}

#[test]
fn exact_sub_and_aud_is_ok() {
    let doc = web_identity(json!({"StringEquals": {
        format!("{HOST}:sub"): "system:serviceaccount:payments:api",
        format!("{HOST}:aud"): "sts.amazonaws.com",
    }}));
    assert_eq!(check(&doc), Trust::Ok);
}

#[test]
fn string_like_with_a_wildcard_is_too_wide_and_one_without_is_ok() {
    let wild = web_identity(json!({
        "StringLike": {format!("{HOST}:sub"): "system:serviceaccount:payments:*"},
        "StringEquals": {format!("{HOST}:aud"): "sts.amazonaws.com"},
    }));
    assert!(matches!(check(&wild), Trust::TooWide(why) if why.contains("wildcard")));
    let exact_like = web_identity(json!({
        "StringLike": {format!("{HOST}:sub"): "system:serviceaccount:payments:api"},
        "StringEquals": {format!("{HOST}:aud"): "sts.amazonaws.com"},
    }));
    assert_eq!(check(&exact_like), Trust::Ok);
}

#[test]
fn missing_conditions_are_too_wide() {
    let no_sub = web_identity(json!({"StringEquals": {format!("{HOST}:aud"): "sts.amazonaws.com"}}));
    assert!(matches!(check(&no_sub), Trust::TooWide(why) if why.contains("no condition on sub")));
    let no_aud = web_identity(json!({"StringEquals": {format!("{HOST}:sub"): "system:serviceaccount:payments:api"}}));
    assert!(matches!(check(&no_aud), Trust::TooWide(why) if why.contains("aud")));
    let none = json!({"Statement": {"Effect": "Allow", "Principal": {"Federated": provider(HOST)}, "Action": "sts:AssumeRoleWithWebIdentity"}});
    assert!(matches!(check(&none), Trust::TooWide(_)), "Statement as a single object");
}

#[test]
fn another_service_account_or_cluster_is_a_mismatch_naming_it() {
    let other_sa = web_identity(json!({"StringEquals": {
        format!("{HOST}:sub"): ["system:serviceaccount:payments:worker", "system:serviceaccount:web:api"],
        format!("{HOST}:aud"): "sts.amazonaws.com",
    }}));
    assert!(
        matches!(check(&other_sa), Trust::Mismatch(why) if why.contains("payments:worker") && why.contains("payments:api"))
    );
    let other_cluster = json!({"Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider(OTHER_HOST)}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{OTHER_HOST}:sub"): "system:serviceaccount:payments:api"}},
    }]});
    assert!(matches!(check(&other_cluster), Trust::Mismatch(why) if why.contains(OTHER_HOST)));
    let wrong_aud = web_identity(json!({"StringEquals": {
        format!("{HOST}:sub"): "system:serviceaccount:payments:api", format!("{HOST}:aud"): "sts.example.com",
    }}));
    assert!(matches!(check(&wrong_aud), Trust::Mismatch(why) if why.contains("aud")));
    assert!(matches!(check(&json!({"Statement": []})), Trust::Mismatch(_)));
}

#[test]
fn several_statements_and_clusters_in_one_policy() {
    let doc = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Federated": provider(OTHER_HOST)}, "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {format!("{OTHER_HOST}:sub"): "system:serviceaccount:payments:api"}}},
        {"Effect": "Allow", "Principal": {"Federated": [provider(HOST)]}, "Action": ["sts:AssumeRoleWithWebIdentity"],
         "Condition": {"StringEquals": {format!("{HOST}:sub"): "system:serviceaccount:payments:api", format!("{HOST}:aud"): "sts.amazonaws.com"}}},
    ]});
    assert_eq!(check(&doc), Trust::Ok);
}

#[test]
fn url_encoded_documents_from_get_role() {
    let doc = web_identity(json!({"StringEquals": {
        format!("{HOST}:sub"): "system:serviceaccount:payments:api", format!("{HOST}:aud"): "sts.amazonaws.com",
    }}));
    let encoded: String = doc
        .to_string()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    assert!(encoded.starts_with("%7B"));
    let parsed = policy::parse(&encoded).unwrap();
    assert_eq!(super::irsa(&parsed, ISSUER, "111122223333", "payments", "api"), Trust::Ok);
    assert!(policy::parse("%7Bnot json").is_err());
}

#[test]
fn a_deny_wins() {
    let mut doc = web_identity(json!({"StringEquals": {
        format!("{HOST}:sub"): "system:serviceaccount:payments:api", format!("{HOST}:aud"): "sts.amazonaws.com",
    }}));
    doc["Statement"].as_array_mut().unwrap().push(json!({
        "Effect": "Deny", "Principal": {"Federated": provider(HOST)}, "Action": "sts:*",
    }));
    assert!(matches!(check(&doc), Trust::Mismatch(why) if why.contains("Deny")));
}

#[test]
fn pod_identity_needs_assume_role_and_tag_session() {
    let good = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
    }]});
    assert_eq!(pod_identity(&good), Trust::Ok);
    let list_principal = json!({"Statement": [{
        "Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com", "pods.eks.amazonaws.com"]}, "Action": "sts:*",
    }]});
    assert_eq!(pod_identity(&list_principal), Trust::Ok);
    let no_tags = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    assert!(matches!(pod_identity(&no_tags), Trust::Mismatch(why) if why.contains("sts:TagSession")));
    let irsa_only = web_identity(json!({}));
    assert!(matches!(pod_identity(&irsa_only), Trust::Mismatch(_)));
}

#[test]
fn string_like_is_case_sensitive_unlike_actions() {
    assert!(string_like("system:serviceaccount:*:api", "system:serviceaccount:payments:api"));
    assert!(string_like("a?c", "abc") && !string_like("a?c", "ac"));
    assert!(!string_like("system:serviceaccount:Payments:api", "system:serviceaccount:payments:api"));
    let upper = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["STS:assumerole", "sts:tagsession"]}]});
    assert_eq!(pod_identity(&upper), Trust::Ok, "action names compare without case");
}

#[test]
fn a_chained_target_must_trust_the_association_role_with_tags() {
    let source = "arn:aws:iam::111122223333:role/etl-runner";
    let by_role = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": source}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]});
    assert_eq!(chained(&by_role, source), Trust::Ok);
    let by_account = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:root"]}, "Action": "sts:*"}]});
    assert_eq!(chained(&by_account, source), Trust::Ok);
    let no_tags = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": source}, "Action": "sts:AssumeRole"}]});
    assert!(matches!(chained(&no_tags, source), Trust::Mismatch(why) if why.contains("TagSession")));
    let other = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"}, "Action": "sts:*"}]});
    assert!(matches!(chained(&other, source), Trust::Mismatch(_)));
}

#[test]
fn the_matcher_never_backtracks_exponentially() {
    // A recursive matcher takes about 2^20 steps per extra `*a` here; this one answers at once.
    let pattern = format!("{}b", "*a".repeat(20));
    let text = "a".repeat(200);
    assert!(!string_like(&pattern, &text));
    assert!(string_like(&format!("{}*", "*a".repeat(20)), &text));
    assert!(string_like("système:*", "système:x") && !string_like("s?stème", "systeme"));
}

#[test]
fn a_wildcard_principal_anywhere_is_too_wide_whatever_else_is_allowed() {
    let exact = json!({
        format!("{HOST}:sub"): "system:serviceaccount:payments:api",
        format!("{HOST}:aud"): "sts.amazonaws.com",
    });
    for anyone in [json!("*"), json!({"AWS": "*"}), json!({"AWS": ["arn:aws:iam::111122223333:root", "*"]})] {
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"Federated": provider(HOST)},
             "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {"StringEquals": exact}},
            {"Sid": "Open", "Effect": "Allow", "Principal": anyone, "Action": "sts:AssumeRole"},
        ]});
        assert!(matches!(check(&doc), Trust::TooWide(ref why) if why.contains("\"Open\"")), "{:?}", check(&doc));
        assert!(matches!(pod_identity(&doc), Trust::TooWide(_)));
    }
    // Narrowed by a condition (an organisation ID): not open to anyone.
    let narrowed = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}}]});
    assert!(!matches!(pod_identity(&narrowed), Trust::TooWide(_)));
}

#[test]
fn a_cross_account_irsa_role_is_judged_by_the_provider_in_its_own_account() {
    let own = json!({"Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::444455556666:oidc-provider/{HOST}")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {format!("{HOST}:sub"): "system:serviceaccount:payments:api",
                                       format!("{HOST}:aud"): "sts.amazonaws.com"}}}]});
    assert_eq!(irsa(&own, ISSUER, "444455556666", "payments", "api"), Trust::Ok);
    assert!(matches!(irsa(&own, ISSUER, "111122223333", "payments", "api"), Trust::Mismatch(_)));
}
