//! `audit --suggest-policy`: a narrower draft of each of a role's policies, without what Access Advisor
//! reports unused, and a summary of what changed for the reviewer.
//!
//! One draft per source policy rather than one merged policy: the review then maps onto the policy it
//! replaces, an AWS-managed policy (which cannot be edited) shows up as its own customer-managed
//! replacement, and a merge could overflow IAM's size limits. Splitting changes nothing in evaluation:
//! a role's permissions are the union of its Allow statements minus any Deny, however they are grouped.
//!
//! Rules, each of which only ever removes actions from what a statement matches (never widens):
//! - `Deny` statements are kept unchanged: shortening or dropping one could allow more.
//! - In an `Allow` with `Action`, a pattern of an unused service (`kms:*`, `KMS:Get*`) and an exact unused
//!   action (`s3:CreateBucket`) are dropped; a statement left with no action is dropped.
//! - An `Allow` of every action (`*`) cannot lose a pattern, so it becomes `NotAction` with the unused
//!   services (`kms:*`) and actions: "all but these" is a subset of "all", with the same resources and
//!   conditions. It stays broad, and the summary says it was converted so a reviewer can replace it by a list.
//! - An `Allow` with `NotAction` gets the unused services and actions appended to its `NotAction`.
//! - A glob that reaches unused permissions but also used ones (`s3:Put*` when only `s3:PutBucketPolicy` is
//!   unused, `*:Get*` when `kms` is unused) is kept and reported as not narrowed: narrowing it would mean
//!   listing the service's actions, which needs a catalog this tool does not have.

use serde::Serialize;

use super::{Actions, Effect, PolicyDocument, Statement, glob_match};

/// The drafts for one role, with the inputs they were drafted from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// Service namespaces dropped (lowercase, sorted).
    pub unused_services: Vec<String>,
    /// Actions dropped at action level (`s3:CreateBucket`), sorted.
    pub unused_actions: Vec<String>,
    /// One draft per source policy, in the order given.
    pub drafts: Vec<Draft>,
}

/// The draft replacing one source policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Draft {
    /// The policy this draft replaces: its name (inline) or ARN (managed).
    pub source: String,
    /// Whether the draft differs from the source.
    pub changed: bool,
    /// The narrower document; `None` when no statement is left, so the policy can be detached or deleted.
    pub document: Option<PolicyDocument>,
    pub summary: Summary,
}

/// What a draft changed, per statement (named by `Sid`, or `#N` counting from 1 in the source).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Patterns removed from an `Allow` statement's `Action`.
    pub removed_actions: Vec<ActionChange>,
    /// `Allow` statements removed because none of their actions was left.
    pub removed_statements: Vec<String>,
    /// `Allow` statements of every action (`*`) rewritten as `NotAction`.
    pub converted_to_not_action: Vec<String>,
    /// Patterns added to an `Allow` statement's `NotAction` (including the converted ones).
    pub excluded_actions: Vec<ActionChange>,
    /// Patterns that still allow unused permissions: a reviewer has to narrow them by hand.
    pub not_narrowed: Vec<NotNarrowed>,
}

/// One action pattern of one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionChange {
    pub statement: String,
    pub action: String,
}

/// A pattern kept although it reaches unused permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotNarrowed {
    pub statement: String,
    pub action: String,
    pub reason: Reason,
    /// The unused services (`kms`) and actions (`s3:PutBucketPolicy`) it still reaches.
    pub covers: Vec<String>,
}

/// Why a pattern could not be narrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The service part is itself a glob, or missing (`*:Get*`, `*Describe*`).
    SpansServices,
    /// A glob within a used service that also matches unused actions (`s3:Put*`).
    CoversUnusedActions,
}

/// Drafts a narrower copy of each `(name or ARN, document)` of a role, dropping the actions of
/// `unused_services` (namespaces as Access Advisor gives them: `kms`) and the exact `unused_actions`
/// (`service:Action`, from action-level last-accessed data). See the module docs for the rules.
pub fn suggest(docs: &[(String, PolicyDocument)], unused_services: &[String], unused_actions: &[String]) -> Suggestion {
    let unused = Unused::new(unused_services, unused_actions);
    let drafts = docs.iter().map(|(source, doc)| draft(source, doc, &unused)).collect();
    Suggestion { unused_services: unused.services, unused_actions: unused.actions, drafts }
}

struct Unused {
    services: Vec<String>,
    actions: Vec<String>,
}

/// What to do with one pattern of an `Allow ... Action` statement.
enum Verdict {
    Keep,
    Drop,
    Broad(Reason, Vec<String>),
}

impl Unused {
    fn new(services: &[String], actions: &[String]) -> Self {
        let mut services: Vec<String> = services.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
        services.retain(|s| !s.is_empty());
        services.sort();
        services.dedup();
        let mut actions: Vec<String> = actions.iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
        actions.sort_by_key(|a| a.to_ascii_lowercase());
        actions.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        Unused { services, actions }
    }

    fn verdict(&self, pattern: &str) -> Verdict {
        let covered: Vec<String> = self.actions.iter().filter(|a| glob_match(pattern, a)).cloned().collect();
        match literal_service(pattern) {
            Some(service) if self.services.contains(&service) => Verdict::Drop,
            Some(_) if !is_glob(pattern) && !covered.is_empty() => Verdict::Drop,
            Some(_) if covered.is_empty() => Verdict::Keep,
            Some(_) => Verdict::Broad(Reason::CoversUnusedActions, covered),
            None => {
                let mut covers: Vec<String> =
                    self.services.iter().filter(|s| may_match_service(pattern, s)).cloned().collect();
                covers.extend(covered);
                if covers.is_empty() { Verdict::Keep } else { Verdict::Broad(Reason::SpansServices, covers) }
            }
        }
    }

    /// What to add to a `NotAction` list so that it also leaves out every unused service and action.
    /// Already excluded ones are not repeated, so a second run changes nothing.
    fn exclusions(&self, existing: &[String]) -> Vec<String> {
        let services = self
            .services
            .iter()
            .map(|s| format!("{s}:*"))
            .filter(|wanted| !existing.iter().any(|p| is_match_all(p) || p.eq_ignore_ascii_case(wanted)));
        let actions = self.actions.iter().filter(|a| {
            let of_unused_service = literal_service(a).is_some_and(|s| self.services.contains(&s));
            !of_unused_service && !existing.iter().any(|p| glob_match(p, a))
        });
        services.chain(actions.cloned()).collect()
    }
}

fn draft(source: &str, doc: &PolicyDocument, unused: &Unused) -> Draft {
    let mut summary = Summary::default();
    let mut statements = Vec::with_capacity(doc.statements.len());
    for (i, statement) in doc.statements.iter().enumerate() {
        let label = statement.sid.clone().unwrap_or_else(|| format!("#{}", i + 1));
        let change = |action: &String| ActionChange { statement: label.clone(), action: action.clone() };
        let with = |actions| Statement { actions, ..statement.clone() };
        match &statement.actions {
            _ if statement.effect == Effect::Deny => statements.push(statement.clone()),
            Actions::Action(patterns) if patterns.iter().any(|p| is_match_all(p)) => {
                let excluded = unused.exclusions(&[]);
                if excluded.is_empty() {
                    statements.push(statement.clone());
                } else {
                    summary.converted_to_not_action.push(label.clone());
                    summary.excluded_actions.extend(excluded.iter().map(change));
                    statements.push(with(Actions::NotAction(excluded)));
                }
            }
            Actions::Action(patterns) => {
                let mut kept = Vec::with_capacity(patterns.len());
                for pattern in patterns {
                    match unused.verdict(pattern) {
                        Verdict::Drop => summary.removed_actions.push(change(pattern)),
                        Verdict::Keep => kept.push(pattern.clone()),
                        Verdict::Broad(reason, covers) => {
                            let ActionChange { statement, action } = change(pattern);
                            summary.not_narrowed.push(NotNarrowed { statement, action, reason, covers });
                            kept.push(pattern.clone());
                        }
                    }
                }
                match kept.len() {
                    0 => summary.removed_statements.push(label.clone()),
                    n if n == patterns.len() => statements.push(statement.clone()),
                    _ => statements.push(with(Actions::Action(kept))),
                }
            }
            Actions::NotAction(patterns) => {
                let excluded = unused.exclusions(patterns);
                summary.excluded_actions.extend(excluded.iter().map(change));
                statements.push(with(Actions::NotAction(patterns.iter().cloned().chain(excluded).collect())));
            }
        }
    }
    let changed = statements != doc.statements;
    let document = (!statements.is_empty()).then(|| PolicyDocument { statements, ..doc.clone() });
    Draft { source: source.to_string(), changed, document, summary }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// The service of a pattern whose service part is literal (`KMS:Get*` -> `kms`); `None` for `*`,
/// `*:Get*`, `s3*:List*` or a pattern without a colon, which can reach more than one service.
fn literal_service(pattern: &str) -> Option<String> {
    let (service, _) = pattern.split_once(':')?;
    (!is_glob(service)).then(|| service.to_ascii_lowercase())
}

/// Whether a pattern matches every action: `*`, `**`, `*:*` (every action has a colon).
fn is_match_all(pattern: &str) -> bool {
    let all_stars = |s: &str| !s.is_empty() && s.chars().all(|c| c == '*');
    all_stars(pattern) || pattern.split_once(':').is_some_and(|(a, b)| all_stars(a) && all_stars(b))
}

/// Whether some action `service:Name` matches `pattern`: runs the glob as a set of positions over the
/// text `service:` and asks whether anything is left to match the name, which any non-empty rest can.
pub(super) fn may_match_service(pattern: &str, service: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    // A `*` may match nothing, so reaching it also reaches the position after it.
    let close = |mut states: Vec<usize>| {
        let mut i = 0;
        while i < states.len() {
            let s = states[i];
            if p.get(s) == Some(&'*') && !states.contains(&(s + 1)) {
                states.push(s + 1);
            }
            i += 1;
        }
        states
    };
    let mut states = close(vec![0]);
    for c in service.to_ascii_lowercase().chars().chain([':']) {
        let mut next = Vec::new();
        for &s in &states {
            let to = match p.get(s) {
                Some('*') => s,
                Some(&q) if q == '?' || q == c => s + 1,
                _ => continue,
            };
            if !next.contains(&to) {
                next.push(to);
            }
        }
        states = close(next);
    }
    states.iter().any(|&s| s < p.len())
}
