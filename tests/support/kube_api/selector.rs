//! Label and field selectors as the API server reads them. Written independently of the crate under
//! test on purpose: a shared parser would hide a shared bug.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Greater(String, i64),
    Less(String, i64),
}

/// A parsed `labelSelector`: every requirement must hold (comma = AND).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses the Kubernetes selector syntax; the error reads like the API server's.
    pub fn parse(text: &str) -> Result<Self, String> {
        split_top_level(text)
            .into_iter()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_requirement)
            .collect::<Result<Vec<_>, _>>()
            .map(LabelSelector)
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            // As in Kubernetes, `!=` and `notin` also match objects without the label.
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Greater(k, n) => number(get(k)).is_some_and(|l| l > *n),
            Requirement::Less(k, n) => number(get(k)).is_some_and(|l| l < *n),
        })
    }
}

fn number(label: Option<&str>) -> Option<i64> {
    label?.parse().ok()
}

/// Splits on commas outside parentheses: `a in (x,y),b` is two requirements.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/')
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let invalid = || format!("unable to parse requirement: found '{part}', expected: identifier");
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        return match key.chars().all(is_key_char) && !key.is_empty() {
            true => Ok(Requirement::NotExists(key.to_string())),
            false => Err(invalid()),
        };
    }
    let key_end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
    let (key, rest) = (part[..key_end].to_string(), part[key_end..].trim_start());
    if key.is_empty() {
        return Err(invalid());
    }
    let value = |v: &str| -> Result<String, String> {
        let v = v.trim();
        match v.chars().all(is_key_char) {
            true => Ok(v.to_string()),
            false => Err(format!("unable to parse requirement: invalid label value: \"{v}\"")),
        }
    };
    let integer = |v: &str| v.trim().parse::<i64>().map_err(|_| invalid());
    if rest.is_empty() {
        Ok(Requirement::Exists(key))
    } else if let Some(v) = rest.strip_prefix("!=") {
        Ok(Requirement::NotEquals(key, value(v)?))
    } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        Ok(Requirement::Equals(key, value(v)?))
    } else if let Some(v) = rest.strip_prefix('>') {
        Ok(Requirement::Greater(key, integer(v)?))
    } else if let Some(v) = rest.strip_prefix('<') {
        Ok(Requirement::Less(key, integer(v)?))
    } else if let Some(set) = rest.strip_prefix("notin") {
        Ok(Requirement::NotIn(key, parse_set(set, part)?))
    } else if let Some(set) = rest.strip_prefix("in") {
        Ok(Requirement::In(key, parse_set(set, part)?))
    } else {
        Err(invalid())
    }
}

fn parse_set(text: &str, part: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: found '{part}', expected: '(' ... ')'"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

/// A `fieldSelector` of `path=value`, `path==value` and `path!=value` terms over dotted JSON paths.
pub fn field_selector_matches(selector: &str, obj: &Value) -> bool {
    selector.split(',').filter(|t| !t.trim().is_empty()).all(|term| {
        let (path, want, negate) = match term.split_once("!=") {
            Some((p, v)) => (p, v, true),
            None => match term.split_once("==").or_else(|| term.split_once('=')) {
                Some((p, v)) => (p, v, false),
                None => return false,
            },
        };
        let got = path.trim().split('.').try_fold(obj, |v, key| v.get(key));
        let got = got.map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
        (got.as_deref().unwrap_or("") == want.trim()) != negate
    })
}
