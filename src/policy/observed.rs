//! Action-level drafts from observed usage (`audit --suggest-policy --usage cloudtrail`): each `Allow`
//! statement keeps only the actions CloudTrail saw the role call, and every pattern it cannot judge.
//!
//! Rules, each of which only removes (a kept entry is an original pattern, or an exact action an original
//! pattern matches), so a draft never widens:
//! - `Deny` statements, and `Allow` statements with `NotAction`, are kept unchanged.
//! - A pattern is kept as written when CloudTrail could not have seen all it allows: the trail records no
//!   management events; it may match a data-event action of a service whose data events the trail does not
//!   record (S3 objects, Lambda invocations, DynamoDB items, SQS messages, SNS publishes); or it may match a
//!   service Access Advisor says was used although CloudTrail saw none of its actions.
//! - Otherwise a pattern is replaced by the observed actions it matches (none: it goes); a statement left
//!   with no action goes, and a document left with no statement is `None`.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Actions, Case, Effect, PolicyDocument, wildcard_match};
use crate::usage::Coverage;

/// Data-event actions per service (`AWS::S3::Object` -> `s3`...): CloudTrail logs them only when the trail
/// selects that service's data events.
pub const DATA_ACTIONS: &[(&str, &str)] = &[
    (
        "s3",
        "GetObject GetObjectVersion GetObjectAcl GetObjectVersionAcl GetObjectTagging GetObjectAttributes PutObject \
         PutObjectAcl PutObjectTagging DeleteObject DeleteObjectVersion DeleteObjectTagging AbortMultipartUpload \
         ListMultipartUploadParts RestoreObject",
    ),
    ("lambda", "InvokeFunction InvokeAsync"),
    ("dynamodb", "GetItem PutItem UpdateItem DeleteItem BatchGetItem BatchWriteItem Query Scan ConditionCheckItem"),
    ("sqs", "SendMessage ReceiveMessage DeleteMessage ChangeMessageVisibility"),
    ("sns", "Publish"),
];

/// What the drafts may rely on.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The actions observed (`s3:GetObject`), any case.
    pub observed: BTreeSet<String>,
    pub coverage: Coverage,
    /// Services Access Advisor says were used within the window but CloudTrail saw none of.
    pub unseen_services: BTreeSet<String>,
}

impl Evidence {
    /// Whether CloudTrail may have missed part of what `pattern` allows.
    fn cannot_judge(&self, pattern: &str) -> bool {
        if !self.coverage.management {
            return true;
        }
        let unrecorded = DATA_ACTIONS
            .iter()
            .filter(|(service, _)| !self.coverage.data_services.contains(*service))
            .flat_map(|(service, names)| names.split_whitespace().map(move |n| format!("{service}:{n}")));
        let unseen = self.unseen_services.iter().map(|s| format!("{s}:"));
        unrecorded.into_iter().any(|a| wildcard_match(pattern, &a, Case::Insensitive))
            || unseen.into_iter().any(|prefix| pattern_service_may_be(pattern, &prefix))
    }
}

/// Whether `pattern`'s service part can be the service `prefix` (`kms:`).
fn pattern_service_may_be(pattern: &str, prefix: &str) -> bool {
    let service = &prefix[..prefix.len() - 1];
    match pattern.split_once(':') {
        Some((p, _)) => wildcard_match(p, service, Case::Insensitive),
        // `*` or `kms*`: a pattern without a colon may span services.
        None => wildcard_match(pattern, &format!("{service}:x"), Case::Insensitive),
    }
}

/// One policy's observed-usage draft.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedDraft {
    pub source: String,
    pub changed: bool,
    /// `None` when nothing is left: the policy can go.
    pub document: Option<PolicyDocument>,
    /// Patterns kept as written because CloudTrail could not judge them.
    pub kept_unjudged: Vec<String>,
}

/// Narrows `doc` to what `evidence` shows used.
pub fn narrow(source: &str, doc: &PolicyDocument, evidence: &Evidence) -> ObservedDraft {
    let observed: Vec<&String> = evidence.observed.iter().collect();
    let mut kept_unjudged = BTreeSet::new();
    let mut statements = Vec::new();
    for s in &doc.statements {
        let Actions::Action(patterns) = &s.actions else {
            statements.push(s.clone());
            continue;
        };
        if s.effect == Effect::Deny {
            statements.push(s.clone());
            continue;
        }
        let mut kept: Vec<String> = Vec::new();
        for p in patterns {
            if evidence.cannot_judge(p) {
                kept_unjudged.insert(p.clone());
                kept.push(p.clone());
            } else {
                kept.extend(observed.iter().filter(|a| wildcard_match(p, a, Case::Insensitive)).map(|a| a.to_string()));
            }
        }
        let mut seen = BTreeSet::new();
        kept.retain(|a| seen.insert(a.to_ascii_lowercase()));
        if !kept.is_empty() {
            let mut narrowed = s.clone();
            narrowed.actions = Actions::Action(kept);
            statements.push(narrowed);
        }
    }
    let document = (!statements.is_empty()).then(|| PolicyDocument { statements, ..doc.clone() });
    let changed = document.as_ref() != Some(doc);
    ObservedDraft { source: source.to_string(), changed, document, kept_unjudged: kept_unjudged.into_iter().collect() }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(v: serde_json::Value) -> PolicyDocument {
        serde_json::from_value(v).unwrap()
    }

    fn evidence(observed: &[&str], data: &[&str]) -> Evidence {
        Evidence {
            observed: observed.iter().map(|s| s.to_string()).collect(),
            coverage: Coverage { management: true, data_services: data.iter().map(|s| s.to_string()).collect() },
            unseen_services: BTreeSet::new(),
        }
    }

    fn actions(d: &ObservedDraft) -> serde_json::Value {
        serde_json::to_value(d.document.as_ref().unwrap()).unwrap()["Statement"].clone()
    }

    #[test]
    fn keeps_what_was_called_and_what_cloudtrail_cannot_see() {
        let policy = doc(json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Data", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:List*", "kms:*"], "Resource": "*"},
            {"Sid": "Queue", "Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
            {"Sid": "Guard", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
        ]}));
        // S3 data events recorded, SQS's not: sqs:* is kept whole; s3:PutObject was never called.
        let d = narrow("inline:app", &policy, &evidence(&["s3:GetObject", "s3:ListBucket", "kms:Decrypt"], &["s3"]));
        assert!(d.changed);
        assert_eq!(
            actions(&d),
            json!([
                {"Sid": "Data", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "kms:Decrypt"], "Resource": "*"},
                {"Sid": "Queue", "Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                {"Sid": "Guard", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"},
            ])
        );
        assert_eq!(d.kept_unjudged, ["sqs:*"]);

        // Without S3 data events, an unobserved s3:PutObject may still be in use: it stays, and so does s3:List*
        // (it reaches the data event ListMultipartUploadParts).
        let d = narrow("p", &policy, &evidence(&["kms:Decrypt"], &[]));
        assert_eq!(actions(&d)[0]["Action"], json!(["s3:GetObject", "s3:PutObject", "s3:List*", "kms:Decrypt"]));
        // A service Access Advisor saw used but CloudTrail did not: its patterns stay.
        let mut e = evidence(&[], &["s3", "sqs"]);
        e.unseen_services.insert("kms".into());
        let d = narrow("p", &policy, &e);
        assert_eq!(actions(&d)[0]["Action"], json!("kms:*"));
        // No management events: nothing can be judged.
        let mut e = evidence(&[], &["s3", "sqs"]);
        e.coverage.management = false;
        assert!(!narrow("p", &policy, &e).changed);
    }

    #[test]
    fn a_policy_of_nothing_used_goes() {
        let policy = doc(
            json!({"Statement": [{"Effect": "Allow", "Action": ["kms:Decrypt", "ssm:GetParameter"], "Resource": "*"}]}),
        );
        let d = narrow("p", &policy, &evidence(&["s3:GetObject"], &["s3"]));
        assert_eq!(d.document, None);
        assert!(d.changed);
    }
}
