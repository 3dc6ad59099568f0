//! Kubernetes label selectors (`-l`), evaluated locally when reading a snapshot.
//!
//! Live runs pass the selector to the API server; offline runs must apply the same rules to the pods
//! recorded in the snapshot, so this implements the selector grammar kubectl accepts.

use std::collections::BTreeMap;

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            reqs.push(parse_term(term).ok_or_else(|| format!("invalid label selector term {term:?}"))?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether a pod with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

/// Splits on commas that are not inside a `( ... )` value set.
fn split_terms(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_term(term: &str) -> Option<Requirement> {
    if let Some((k, v)) = term.split_once("!=") {
        return Some(Requirement::NotEquals(key(k)?, value(v)?));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Some(Requirement::Equals(key(k)?, value(v)?));
    }
    if let Some(k) = term.strip_prefix('!') {
        return Some(Requirement::DoesNotExist(key(k)?));
    }
    for (op, notin) in [(" notin ", true), (" in ", false)] {
        if let Some((k, set)) = term.split_once(op) {
            let set = set.trim().strip_prefix('(')?.strip_suffix(')')?;
            let values = set.split(',').map(value).collect::<Option<Vec<_>>>()?;
            let k = key(k)?;
            return Some(if notin { Requirement::NotIn(k, values) } else { Requirement::In(k, values) });
        }
    }
    Some(Requirement::Exists(key(term)?))
}

fn key(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    ok.then(|| s.to_string())
}

fn value(s: &str) -> Option<String> {
    let s = s.trim();
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn equality_existence_and_sets() {
        let l = labels(&[("app", "api"), ("tier", "web"), ("app.kubernetes.io/part-of", "shop")]);
        let yes = [
            "app=api",
            "app==api",
            "tier!=db",
            "app in (api, worker)",
            "tier notin (db)",
            "app",
            "!missing",
            "app=api,tier=web",
            "app.kubernetes.io/part-of=shop",
            "",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
        for s in ["app=web", "tier!=web", "app in (worker)", "app notin (api)", "missing", "!app", "app=api,tier=db"] {
            assert!(!LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in ["app in api", "a b=c", "app=(x)"] {
            assert!(LabelSelector::parse(s).is_err(), "{s}");
        }
    }
}
