//! IAM policy documents, pure: the one model of permission and trust policies. Parse them as IAM returns
//! them, ask whether one allows an action, read a statement's principals and conditions (the trust
//! verdicts in `doctor::trust` are built on these), and draft a narrower copy that drops what Access
//! Advisor says is unused ([`suggest`]).
//!
//! Evaluation here is per action only. Resources, `Principal` and conditions are carried over unchanged
//! by every rewrite, so comparing which actions a statement matches is enough to prove a draft never
//! widens the original: a statement that keeps its resources and conditions and matches fewer actions
//! grants less.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub mod observed;
mod suggest;

pub use suggest::{ActionChange, Draft, NotNarrowed, Reason, Suggestion, Summary, suggest};

/// An IAM policy document, in IAM's own key style (`Version`, `Statement`, ...).
///
/// `Statement` may be one object or a list when read; it is always written as a list, which IAM reads the
/// same way. Absent fields stay absent when written (IAM rejects `"Id": null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version", default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(rename = "Id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "Statement", deserialize_with = "one_or_many")]
    pub statements: Vec<Statement>,
}

/// One statement. Only the actions are interpreted; everything else is kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "Sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    #[serde(rename = "Principal", default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Value>,
    #[serde(rename = "NotPrincipal", default, skip_serializing_if = "Option::is_none")]
    pub not_principal: Option<Value>,
    /// `Action` or `NotAction`: IAM requires exactly one of them.
    #[serde(flatten)]
    pub actions: Actions,
    #[serde(rename = "Resource", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    #[serde(rename = "NotResource", default, skip_serializing_if = "Option::is_none")]
    pub not_resource: Option<Value>,
    #[serde(rename = "Condition", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

/// Whether a statement grants or refuses; a matching `Deny` always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// The action patterns of a statement, read as a string or a list and written as a string when there is
/// one (the shape people write by hand), a list otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Actions {
    /// The statement applies to the actions these globs match.
    #[serde(rename = "Action", serialize_with = "string_or_list", deserialize_with = "one_or_many")]
    Action(Vec<String>),
    /// The statement applies to every action except those these globs match.
    #[serde(rename = "NotAction", serialize_with = "string_or_list", deserialize_with = "one_or_many")]
    NotAction(Vec<String>),
}

impl Actions {
    /// Whether the statement applies to `action` (case-insensitive, as IAM compares actions).
    pub fn matches(&self, action: &str) -> bool {
        match self {
            Actions::Action(patterns) => patterns.iter().any(|p| glob_match(p, action)),
            Actions::NotAction(patterns) => !patterns.iter().any(|p| glob_match(p, action)),
        }
    }
}

impl Statement {
    /// Whether the statement allows (rather than refuses).
    pub fn allows(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The principals of one type (`AWS`, `Federated`, `Service`) the statement names.
    /// `"Principal": "*"` names no principal of a type; ask [`Statement::names_anyone`] for that.
    pub fn principals(&self, kind: &str) -> Vec<&str> {
        match &self.principal {
            Some(Value::Object(p)) => strings(p.get(kind)),
            _ => Vec::new(),
        }
    }

    /// `"Principal": "*"`, or `*` as the principal of some type (`{"AWS": "*"}`): every principal.
    pub fn names_anyone(&self) -> bool {
        match &self.principal {
            Some(Value::String(p)) => p == "*",
            Some(Value::Object(p)) => p.values().any(|v| strings(Some(v)).contains(&"*")),
            _ => false,
        }
    }

    /// Whether the statement has any condition.
    pub fn is_conditional(&self) -> bool {
        self.condition.as_ref().and_then(Value::as_object).is_some_and(|c| !c.is_empty())
    }

    /// The values a condition operator (`StringEquals`, `StringLike`, with or without `ForAnyValue:`)
    /// requires for `key`; operators and condition keys compare case-insensitively, as IAM does.
    pub fn condition_values(&self, operator: &str, key: &str) -> Option<Vec<&str>> {
        let conditions = self.condition.as_ref()?.as_object()?;
        conditions.iter().find_map(|(op, block)| {
            let op = op.strip_prefix("ForAnyValue:").unwrap_or(op);
            if !op.eq_ignore_ascii_case(operator) {
                return None;
            }
            block.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| strings(Some(v)))
        })
    }

    /// A name for the statement in messages: its `Sid`, else its position (`#2`).
    pub fn label(&self, index: usize) -> String {
        self.sid.as_ref().map_or(format!("#{}", index + 1), |sid| format!("{sid:?}"))
    }
}

/// A string or a list of strings, as IAM allows almost everywhere; anything else is no strings.
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Parses a policy document as IAM returns it: `GetRolePolicy`, `GetPolicyVersion` and `GetRole` give
/// the JSON percent-encoded (RFC 3986); documents from files or snapshots are plain JSON.
///
/// A JSON object starts with `{` (after whitespace) and an encoded one cannot (`{` is `%7B`), so that is
/// the test; looking for `%22` instead would mangle a plain document whose strings contain it.
pub fn parse(text: &str) -> serde_json::Result<PolicyDocument> {
    let text = text.trim_start();
    if text.starts_with('{') { serde_json::from_str(text) } else { serde_json::from_str(&percent_decode(text)) }
}

/// Whether the document allows `action`: some `Allow` statement matches it and no `Deny` statement does.
///
/// Resources and conditions are ignored: every statement is read as if it applied to all resources
/// unconditionally, so a `Deny` limited to one region or bucket counts as refusing the action. That is the
/// right reading for comparing a draft with its original, which carry the same resources and conditions on
/// every statement; it is not an answer for one concrete request.
pub fn allows(doc: &PolicyDocument, action: &str) -> bool {
    let any = |effect| doc.statements.iter().any(|s| s.effect == effect && s.actions.matches(action));
    any(Effect::Allow) && !any(Effect::Deny)
}

/// How a wildcard pattern compares letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// IAM action names (`S3:getobject` is `s3:GetObject`).
    Insensitive,
    /// Condition values under `StringLike`.
    Sensitive,
}

/// The one `*`/`?` matcher for trust and permission documents: `*` any run of characters (`:` included),
/// `?` exactly one character. Greedy with a single backtrack point (the last `*`), so it never backtracks
/// exponentially: at worst O(|pattern| x |text|), linear for the patterns policies hold. It does not
/// allocate for ASCII, which is every action name; other text is compared character by character.
pub fn wildcard_match(pattern: &str, text: &str, case: Case) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return matches_units(pattern.as_bytes(), text.as_bytes(), |a, b| match case {
            Case::Insensitive => a.eq_ignore_ascii_case(b),
            Case::Sensitive => a == b,
        });
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    matches_units(&p, &t, |a: &char, b: &char| match case {
        Case::Insensitive => a.to_lowercase().eq(b.to_lowercase()),
        Case::Sensitive => a == b,
    })
}

trait Unit: Copy + PartialEq {
    const STAR: Self;
    const ANY: Self;
}

impl Unit for u8 {
    const STAR: u8 = b'*';
    const ANY: u8 = b'?';
}

impl Unit for char {
    const STAR: char = '*';
    const ANY: char = '?';
}

fn matches_units<U: Unit>(p: &[U], t: &[U], eq: impl Fn(&U, &U) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was and how much text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(&c) if c == U::STAR => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == U::ANY || eq(c, &t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    pi = sp + 1;
                    ti = st + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == U::STAR)
}

/// IAM's action glob: [`wildcard_match`] without case.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    wildcard_match(pattern, text, Case::Insensitive)
}

/// RFC 3986 percent-decoding. `+` stays a `+`: IAM encodes a space as `%20`, and botocore (which the
/// AWS CLI uses) decodes with `unquote`, not `unquote_plus`, so a literal `+` in a condition value is a `+`.
/// A `%` not followed by two hex digits is kept as is rather than failing the whole document.
pub(crate) fn percent_decode(text: &str) -> String {
    let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits always fit in a byte.
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// IAM takes a single value or a list almost everywhere. Going through `Value` keeps serde's message for
/// a bad statement instead of the untagged-enum "did not match any variant".
fn one_or_many<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().map(serde_json::from_value).collect(),
        one => serde_json::from_value(one).map(|item| vec![item]),
    }
    .map_err(D::Error::custom)
}

fn string_or_list<S: Serializer>(patterns: &[String], s: S) -> Result<S::Ok, S::Error> {
    match patterns {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

#[cfg(test)]
mod tests;
