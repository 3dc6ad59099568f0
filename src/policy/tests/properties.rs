//! The properties of `--suggest-policy`, checked against an independent oracle: every pattern is expanded
//! over a fixed catalogue of concrete action names with a matcher written separately from the product's
//! (`oracle_match`, a plain dynamic-programming table), so a bug in `glob_match` or `Actions::matches`
//! cannot hide itself. For generated policies (proptest, which shrinks a failure to a minimal case):
//!
//! - a draft allows a subset of what its original allows (alone, and the role's drafts together);
//! - a draft allows every catalogue action its original allows that is neither of an unused service nor
//!   an unused action (draft ⊇ used);
//! - an unused action a draft still grants is reported (`not_narrowed`);
//! - Deny statements are kept, and a second run changes nothing.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

use super::super::suggest::may_match_service;
use super::*;

/// 205 real actions across 27 services, as `(service, "Action Action ...")`; a service may take
/// several lines.
const CATALOG: &[(&str, &str)] = &[
    ("s3", "GetObject PutObject DeleteObject ListBucket GetBucketPolicy PutBucketPolicy CreateBucket DeleteBucket"),
    ("s3", "GetObjectAcl PutObjectAcl PutBucketAcl ListAllMyBuckets GetBucketLocation AbortMultipartUpload"),
    ("s3", "GetBucketTagging PutLifecycleConfiguration ListMultipartUploadParts"),
    ("s3-object-lambda", "GetObject ListBucket WriteGetObjectResponse"),
    ("ec2", "DescribeInstances RunInstances TerminateInstances CreateTags DescribeNetworkInterfaces"),
    ("ec2", "AttachNetworkInterface AssignPrivateIpAddresses DescribeSubnets DescribeSecurityGroups"),
    ("ec2", "AuthorizeSecurityGroupIngress CreateSnapshot DeleteVolume DescribeVpcs CreateVolume AttachVolume"),
    ("ec2", "DescribeImages ModifyInstanceAttribute"),
    ("iam", "GetRole PassRole CreateRole DeleteRole ListRoles PutRolePolicy AttachRolePolicy CreateServiceLinkedRole"),
    ("iam", "GetPolicyVersion ListAttachedRolePolicies TagRole ListRolePolicies GetRolePolicy UpdateAssumeRolePolicy"),
    ("iam", "GetOpenIDConnectProvider"),
    ("kms", "Decrypt Encrypt GenerateDataKey GenerateDataKeyWithoutPlaintext DescribeKey CreateGrant"),
    ("kms", "ScheduleKeyDeletion GetKeyPolicy ListKeys ReEncryptFrom ListAliases TagResource"),
    ("sqs", "SendMessage ReceiveMessage DeleteMessage GetQueueUrl GetQueueAttributes ChangeMessageVisibility"),
    ("sqs", "CreateQueue PurgeQueue ListQueues TagQueue"),
    ("sns", "Publish Subscribe CreateTopic DeleteTopic ListTopics GetTopicAttributes SetTopicAttributes Unsubscribe"),
    ("dynamodb", "GetItem PutItem Query Scan UpdateItem DeleteItem BatchGetItem BatchWriteItem DescribeTable"),
    ("dynamodb", "CreateTable DeleteTable ListTables DescribeStream GetRecords"),
    ("lambda", "InvokeFunction GetFunction CreateFunction UpdateFunctionCode DeleteFunction ListFunctions"),
    ("lambda", "AddPermission GetFunctionConfiguration PublishVersion TagResource"),
    ("logs", "CreateLogGroup CreateLogStream PutLogEvents DescribeLogGroups DescribeLogStreams GetLogEvents"),
    ("logs", "FilterLogEvents DeleteLogGroup PutRetentionPolicy"),
    ("cloudwatch", "PutMetricData GetMetricData GetMetricStatistics ListMetrics DescribeAlarms PutMetricAlarm"),
    ("sts", "AssumeRole GetCallerIdentity AssumeRoleWithWebIdentity TagSession GetSessionToken"),
    ("secretsmanager", "GetSecretValue DescribeSecret ListSecrets PutSecretValue CreateSecret DeleteSecret"),
    ("secretsmanager", "RotateSecret TagResource"),
    ("ssm", "GetParameter GetParameters GetParametersByPath PutParameter DeleteParameter DescribeParameters"),
    ("ssm", "SendCommand StartSession GetParameterHistory"),
    ("ecr", "GetAuthorizationToken BatchGetImage GetDownloadUrlForLayer BatchCheckLayerAvailability PutImage"),
    ("ecr", "InitiateLayerUpload DescribeRepositories CreateRepository"),
    ("eks", "DescribeCluster ListClusters ListPodIdentityAssociations DescribePodIdentityAssociation"),
    ("eks", "CreatePodIdentityAssociation AccessKubernetesApi DescribeAddon ListNodegroups"),
    ("rds", "DescribeDBInstances CreateDBInstance DeleteDBInstance ModifyDBInstance CreateDBSnapshot"),
    ("rds", "DescribeDBClusters"),
    ("rds-db", "connect"),
    ("elasticloadbalancing", "DescribeLoadBalancers CreateLoadBalancer RegisterTargets DeregisterTargets"),
    ("elasticloadbalancing", "ModifyListener DescribeTargetGroups"),
    ("route53", "ChangeResourceRecordSets ListHostedZones GetChange ListResourceRecordSets GetHostedZone"),
    ("route53", "ListTagsForResource"),
    ("cloudformation", "DescribeStacks CreateStack UpdateStack DeleteStack ListStacks"),
    ("xray", "PutTraceSegments PutTelemetryRecords GetSamplingRules GetSamplingTargets"),
    ("events", "PutEvents PutRule PutTargets DescribeRule ListRules"),
    ("states", "StartExecution DescribeExecution ListStateMachines SendTaskSuccess StopExecution"),
    ("organizations", "DescribeOrganization ListAccounts"),
    ("account", "GetAccountInformation ListRegions"),
    ("autoscaling", "DescribeAutoScalingGroups SetDesiredCapacity UpdateAutoScalingGroup"),
    ("autoscaling", "TerminateInstanceInAutoScalingGroup"),
];

/// Actions of services nobody listed, so `*`, `NotAction` and prefix globs are checked against them too.
const OUTSIDERS: &[&str] = &["kinesis:GetRecords", "glue:GetTable", "k:GetItem", "s3express:CreateSession"];

const VERBS: &[&str] = &["Get", "List", "Describe", "Put", "Create", "Delete", "Update", "Tag", "Batch", "Send"];
const NOUNS: &[&str] = &["Object", "Bucket", "Key", "Queue", "Item", "Function", "Role", "Secret", "Parameter", ""];

/// Every concrete action the oracle knows, lower-cased (IAM compares actions without case).
fn catalogue() -> Vec<String> {
    let listed = CATALOG.iter().flat_map(|(service, names)| names.split(' ').map(move |n| format!("{service}:{n}")));
    let mut all: Vec<String> =
        listed.chain(OUTSIDERS.iter().map(|a| a.to_string())).map(|a| a.to_lowercase()).collect();
    all.sort();
    all.dedup();
    all
}

thread_local! {
    static CATALOGUE: Vec<String> = catalogue();
    /// The catalogue actions each pattern matches: patterns repeat across originals, drafts and cases.
    static EXPANDED: RefCell<HashMap<String, Rc<BTreeSet<String>>>> = RefCell::new(HashMap::new());
}

/// The catalogue actions `pattern` matches, by the oracle.
fn expand_pattern(pattern: &str) -> Rc<BTreeSet<String>> {
    let key = pattern.to_lowercase();
    if let Some(hit) = EXPANDED.with(|e| e.borrow().get(&key).cloned()) {
        return hit;
    }
    let matched: BTreeSet<String> = CATALOGUE.with(|c| c.iter().filter(|a| oracle_match(&key, a)).cloned().collect());
    let matched = Rc::new(matched);
    EXPANDED.with(|e| e.borrow_mut().insert(key, matched.clone()));
    matched
}

fn services() -> Vec<&'static str> {
    let mut all: Vec<&str> = CATALOG.iter().map(|(service, _)| *service).collect();
    all.sort();
    all.dedup();
    all
}

/// The oracle's matcher: `*` any run, `?` one character, no case; `m[i][j]` says whether the first `i`
/// pattern characters match the first `j` text characters. Written for clarity, not speed.
fn oracle_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let mut m = vec![vec![false; t.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        m[i][0] = m[i - 1][0] && p[i - 1] == '*';
        for j in 1..=t.len() {
            m[i][j] = match p[i - 1] {
                '*' => m[i - 1][j] || m[i][j - 1],
                '?' => m[i - 1][j - 1],
                c => m[i - 1][j - 1] && c == t[j - 1],
            };
        }
    }
    m[p.len()][t.len()]
}

/// The catalogue actions a statement applies to, by the oracle: read from the document's JSON, not the
/// product's model.
fn applies(statement: &serde_json::Value) -> BTreeSet<String> {
    let patterns = |key: &str| -> Option<Vec<String>> {
        match statement.get(key)? {
            serde_json::Value::String(s) => Some(vec![s.clone()]),
            serde_json::Value::Array(items) => {
                Some(items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect())
            }
            _ => Some(Vec::new()),
        }
    };
    let union = |p: Vec<String>| -> BTreeSet<String> {
        p.iter().flat_map(|p| expand_pattern(p).iter().cloned().collect::<Vec<_>>()).collect()
    };
    match (patterns("Action"), patterns("NotAction")) {
        (Some(p), None) => union(p),
        (None, Some(p)) => {
            let excluded = union(p);
            CATALOGUE.with(|c| c.iter().filter(|a| !excluded.contains(*a)).cloned().collect())
        }
        _ => panic!("a statement with exactly one of Action and NotAction: {statement}"),
    }
}

/// The catalogue actions some statement of `effect` in the documents applies to.
fn expand(docs: &[&PolicyDocument], effect: &str) -> BTreeSet<String> {
    docs.iter()
        .flat_map(|d| serde_json::to_value(d).expect("serialise")["Statement"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["Effect"] == effect)
        .flat_map(|s| applies(&s))
        .collect()
}

/// What the documents allow together: an Allow applies and no Deny does (conditions read as always true,
/// the reading under which a draft and its original are compared).
fn allowed(docs: &[&PolicyDocument]) -> BTreeSet<String> {
    let denied = expand(docs, "Deny");
    expand(docs, "Allow").into_iter().filter(|a| !denied.contains(a)).collect()
}

/// What the documents' Allow statements grant, whatever the Denies say: a conditional Deny may not apply,
/// so a widened Allow behind it is a widening too.
fn granted(docs: &[&PolicyDocument]) -> BTreeSet<String> {
    expand(docs, "Allow")
}

fn is_unused(action: &str, s: &Suggestion) -> bool {
    let service = action.split_once(':').map_or("", |(svc, _)| svc);
    s.unused_services.iter().any(|u| u.eq_ignore_ascii_case(service))
        || s.unused_actions.iter().any(|u| u.eq_ignore_ascii_case(action))
}

/// `Err` names an action a draft allows or grants that its original does not, alone or for the whole role.
fn never_widens(originals: &[PolicyDocument], drafts: &[Option<PolicyDocument>]) -> Result<(), String> {
    for (i, (original, draft)) in originals.iter().zip(drafts).enumerate() {
        let Some(draft) = draft else { continue };
        for f in [allowed, granted] {
            if let Some(extra) = f(&[draft]).difference(&f(&[original])).next() {
                return Err(format!("draft {i} allows {extra}, its original does not"));
            }
        }
    }
    let before: Vec<&PolicyDocument> = originals.iter().collect();
    let after: Vec<&PolicyDocument> = drafts.iter().flatten().collect();
    match allowed(&after).difference(&allowed(&before)).next() {
        Some(extra) => Err(format!("the role's drafts allow {extra}, its policies do not")),
        None => Ok(()),
    }
}

/// `Err` names a used action (of no unused service, not an unused action) a draft treats differently from its
/// original: drafts take away only what was reported unused.
fn keeps_everything_used(originals: &[PolicyDocument], s: &Suggestion) -> Result<(), String> {
    for (original, draft) in originals.iter().zip(&s.drafts) {
        let document: Vec<&PolicyDocument> = draft.document.iter().collect();
        for f in [allowed, granted] {
            let (before, after) = (f(&[original]), f(&document));
            if let Some(lost) = before.iter().find(|a| !is_unused(a, s) && !after.contains(*a)) {
                return Err(format!("{}: used {lost} is treated differently by the draft", draft.source));
            }
        }
    }
    Ok(())
}

/// `Err` names an unused action a draft still grants without reporting it.
fn unused_gone_unless_reported(s: &Suggestion) -> Result<(), String> {
    for draft in &s.drafts {
        let Some(d) = &draft.document else { continue };
        for action in granted(&[d]).iter().filter(|a| is_unused(a, s)) {
            let reported = draft.summary.not_narrowed.iter().any(|n| oracle_match(&n.action, action));
            if !reported {
                return Err(format!("{}: an Allow still matches unused {action} and is not reported", draft.source));
            }
        }
    }
    Ok(())
}

/// The patterns people write, from exact actions to globs spanning every service, in any case.
fn pattern() -> impl Strategy<Value = String> {
    let actions: Vec<String> = catalogue();
    (0..12usize, select(services()), select(actions), select(VERBS), select(NOUNS), 0..4usize).prop_map(
        |(kind, service, action, verb, noun, case)| {
            let name = &action[action.find(':').unwrap() + 1..];
            let pattern = match kind {
                0..=3 => action.clone(),
                4 => format!("{service}:*"),
                5 => format!("{service}:{verb}*"),
                6 => format!("{service}:?{}", name.get(1..).unwrap_or_default()),
                7 => "*".to_string(),
                8 => format!("*:{verb}*"),
                9 => format!("*{noun}"),
                10 => format!("{}*:{verb}*", &service[..1]),
                _ => format!("{}?{}:*", &service[..1], &service[2.min(service.len())..]),
            };
            match case {
                0 => pattern.to_ascii_uppercase(),
                1 => pattern.to_ascii_lowercase(),
                _ => pattern,
            }
        },
    )
}

fn statement() -> impl Strategy<Value = serde_json::Value> {
    (
        prop::collection::vec(pattern(), 1..5),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(patterns, allow, action, conditional)| {
            let mut statement = json!({"Effect": if allow { "Allow" } else { "Deny" }, "Resource": "*"});
            statement[if action { "Action" } else { "NotAction" }] = json!(patterns);
            if conditional {
                statement["Condition"] = json!({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}});
            }
            statement
        })
}

fn policy() -> impl Strategy<Value = PolicyDocument> {
    prop::collection::vec(statement(), 1..5)
        .prop_map(|statements| doc(json!({"Version": "2012-10-17", "Statement": statements})))
}

/// A role's policies, its unused services and its unused actions (from the catalogue, in IAM's case).
fn role() -> impl Strategy<Value = (Vec<PolicyDocument>, Vec<String>, Vec<String>)> {
    let named: Vec<String> = CATALOG.iter().flat_map(|(s, n)| n.split(' ').map(move |n| format!("{s}:{n}"))).collect();
    (
        prop::collection::vec(policy(), 1..4),
        prop::collection::vec(select(services()).prop_map(str::to_string), 1..5),
        prop::collection::vec(select(named), 0..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn drafts_never_widen_keep_what_is_used_and_report_what_they_keep((originals, unused, unused_actions) in role()) {
        let sources: Vec<(String, PolicyDocument)> =
            originals.iter().enumerate().map(|(i, d)| (format!("policy-{i}"), d.clone())).collect();
        let s = suggest(&sources, &unused, &unused_actions);
        let drafts: Vec<Option<PolicyDocument>> = s.drafts.iter().map(|d| d.document.clone()).collect();
        prop_assert_eq!(never_widens(&originals, &drafts), Ok(()));
        prop_assert_eq!(keeps_everything_used(&originals, &s), Ok(()));
        prop_assert_eq!(unused_gone_unless_reported(&s), Ok(()));
        for (original, draft) in originals.iter().zip(&drafts) {
            let denies = |d: &PolicyDocument| {
                d.statements.iter().filter(|s| s.effect == Effect::Deny).cloned().collect::<Vec<_>>()
            };
            prop_assert_eq!(draft.as_ref().map(denies).unwrap_or_default(), denies(original), "Deny statements kept");
        }
        // A second run over the drafts has nothing left to do.
        let again: Vec<(String, PolicyDocument)> =
            s.drafts.iter().filter_map(|d| Some((d.source.clone(), d.document.clone()?))).collect();
        let second = suggest(&again, &unused, &unused_actions);
        prop_assert!(second.drafts.iter().all(|d| !d.changed), "a second run changed something");
    }

    #[test]
    fn the_product_matcher_agrees_with_the_oracle(pattern in pattern()) {
        for action in catalogue() {
            prop_assert_eq!(glob_match(&pattern, &action), oracle_match(&pattern, &action), "{} vs {}", pattern, action);
            let service = action.split_once(':').unwrap().0;
            if oracle_match(&pattern, &action) {
                prop_assert!(may_match_service(&pattern, service), "{} matches {}", pattern, action);
            }
        }
    }
}

/// Observed-usage drafts (`policy::observed`), against the same oracle.
fn observed_case() -> impl Strategy<Value = (PolicyDocument, Vec<String>, Vec<String>)> {
    let named: Vec<String> = CATALOG.iter().flat_map(|(s, n)| n.split(' ').map(move |n| format!("{s}:{n}"))).collect();
    let data = vec!["s3", "lambda", "dynamodb", "sqs", "sns"];
    (
        policy(),
        prop::collection::vec(select(named), 0..10),
        prop::sample::subsequence(data, 0..=5).prop_map(|d| d.into_iter().map(str::to_string).collect()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn observed_drafts_never_widen_and_keep_what_was_called_or_cannot_be_seen((original, called, data) in observed_case()) {
        use super::super::observed::{DATA_ACTIONS, Evidence, narrow};
        let evidence = Evidence {
            observed: called.iter().cloned().collect(),
            coverage: crate::usage::Coverage { management: true, data_services: data.iter().cloned().collect() },
            unseen_services: BTreeSet::new(),
        };
        let draft = narrow("p", &original, &evidence);
        let after: Vec<&PolicyDocument> = draft.document.iter().collect();
        for f in [allowed, granted] {
            let (before, now) = (f(&[&original]), f(&after));
            prop_assert!(now.is_subset(&before), "widened: {:?}", now.difference(&before).collect::<Vec<_>>());
        }
        let (before, now) = (allowed(&[&original]), allowed(&after));
        for action in called.iter().map(|a| a.to_lowercase()).filter(|a| before.contains(a)) {
            prop_assert!(now.contains(&action), "dropped {} although it was called", action);
        }
        let unrecorded = DATA_ACTIONS
            .iter()
            .filter(|(service, _)| !data.iter().any(|d| d == service))
            .flat_map(|(service, names)| names.split_whitespace().map(move |n| format!("{service}:{n}").to_lowercase()));
        for action in unrecorded.filter(|a| before.contains(a)) {
            prop_assert!(now.contains(&action), "dropped {} which the trail cannot see", action);
        }
    }
}

#[test]
fn the_oracle_matches_like_iam() {
    assert!(oracle_match("s3:Get*", "S3:GETOBJECT") && oracle_match("*", "kms:decrypt"));
    assert!(oracle_match("s3:?etObject", "s3:GetObject") && !oracle_match("s3:?etObject", "s3:etObject"));
    assert!(!oracle_match("s3:*", "s3-object-lambda:GetObject") && oracle_match("s3*", "s3-object-lambda:GetObject"));
    assert!(!may_match_service("ec2*:Describe*", "kms"));
    assert!(!may_match_service("kms:", "kms"), "no room left for an action name");
}

#[test]
fn the_property_checks_catch_widening_drafts() {
    let original = doc(s3_read_only());

    // A draft that swaps `s3:Get*` for `s3:*`.
    let widened = doc(json!({"Statement": [{"Effect": "Allow", "Action": ["s3:*", "s3:List*"], "Resource": "*"}]}));
    let err = never_widens(std::slice::from_ref(&original), &[Some(widened)]).unwrap_err();
    assert!(err.contains("draft 0 allows s3:"), "{err}");

    // A draft that turns a plain Action list into NotAction, as if it were `*`.
    let inverted = doc(json!({"Statement": [{"Effect": "Allow", "NotAction": "kms:*", "Resource": "*"}]}));
    assert!(never_widens(std::slice::from_ref(&original), &[Some(inverted)]).is_err());

    // A draft that drops another policy's Deny: each draft alone is narrower, the role is not.
    let guard = doc(json!({"Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}));
    let err = never_widens(&[original.clone(), guard], &[Some(original.clone()), None]).unwrap_err();
    assert!(err.contains("the role's drafts allow s3:getobject"), "{err}");

    // A draft that keeps an unused service without reporting it.
    let mut s = suggest(&[("p".into(), doc(app_policy()))], &names(&["kms"]), &[]);
    assert!(unused_gone_unless_reported(&s).is_ok());
    s.drafts[0].document = Some(doc(app_policy()));
    let err = unused_gone_unless_reported(&s).unwrap_err();
    assert!(err.contains("unused kms:"), "{err}");

    // A draft that takes away more than what is unused.
    let originals = [doc(s3_read_only())];
    let mut s = suggest(&[("p".into(), originals[0].clone())], &names(&["s3"]), &[]);
    assert!(keeps_everything_used(&originals, &s).is_ok());
    s.drafts[0].document = None;
    let err = keeps_everything_used(&originals, &s).unwrap_err();
    assert!(err.contains("used s3-object-lambda:getobject"), "{err}");
}
