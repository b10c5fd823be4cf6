//! Label and field selectors, parsed as `k8s.io/apimachinery/pkg/labels` and `fields` do.

use std::collections::BTreeMap;

use super::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Debug, Clone)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

fn valid_label_key(k: &str) -> bool {
    crate::validation::qualified_name_errors(k).is_empty()
}

fn valid_label_value(v: &str) -> bool {
    crate::validation::label_value_errors(v).is_empty()
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1`.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        let s = s.trim();
        if s.is_empty() {
            return Ok(LabelSelector { reqs });
        }
        let bad = |m: String| ApiError::bad_request(format!("unable to parse requirement: {m}"));
        for part in split_top_level(s) {
            let p = part.trim();
            if p.is_empty() {
                return Err(ApiError::bad_request(format!("unable to parse requirement: found '', expected: identifier")));
            }
            let req = if let Some(k) = p.strip_prefix('!') {
                Requirement { key: k.trim().into(), op: Op::DoesNotExist, values: vec![] }
            } else if let Some(i) = p.find(" notin ").or_else(|| p.find(" notin(")) {
                let (k, rest) = (&p[..i], p[i + 6..].trim());
                Requirement { key: k.trim().into(), op: Op::NotIn, values: paren_list(rest).map_err(bad)? }
            } else if let Some(i) = p.find(" in ").or_else(|| p.find(" in(")) {
                let (k, rest) = (&p[..i], p[i + 3..].trim());
                Requirement { key: k.trim().into(), op: Op::In, values: paren_list(rest).map_err(bad)? }
            } else if let Some(i) = p.find("!=") {
                Requirement { key: p[..i].trim().into(), op: Op::NotEq, values: vec![p[i + 2..].trim().into()] }
            } else if let Some(i) = p.find("==") {
                Requirement { key: p[..i].trim().into(), op: Op::Eq, values: vec![p[i + 2..].trim().into()] }
            } else if let Some(i) = p.find('=') {
                Requirement { key: p[..i].trim().into(), op: Op::Eq, values: vec![p[i + 1..].trim().into()] }
            } else if let Some(i) = p.find('>') {
                Requirement { key: p[..i].trim().into(), op: Op::Gt, values: vec![p[i + 1..].trim().into()] }
            } else if let Some(i) = p.find('<') {
                Requirement { key: p[..i].trim().into(), op: Op::Lt, values: vec![p[i + 1..].trim().into()] }
            } else {
                Requirement { key: p.into(), op: Op::Exists, values: vec![] }
            };
            if !valid_label_key(&req.key) {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: values[0][{}]: Invalid value: {:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                    req.key, req.key
                )));
            }
            for v in &req.values {
                if matches!(req.op, Op::Gt | Op::Lt) {
                    if v.parse::<i64>().is_err() {
                        return Err(bad(format!("for 'Gt', 'Lt' operators, the value must be an integer")));
                    }
                } else if !valid_label_value(v) {
                    return Err(bad(format!("values[0][{}]: Invalid value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character", req.key)));
                }
            }
            reqs.push(req);
        }
        Ok(LabelSelector { reqs })
    }

    /// Builds a selector from a `metav1.LabelSelector` object (matchLabels/matchExpressions).
    pub fn from_object(sel: &serde_json::Value) -> Option<LabelSelector> {
        if !sel.is_object() {
            return None;
        }
        let mut reqs = Vec::new();
        if let Some(m) = sel["matchLabels"].as_object() {
            for (k, v) in m {
                reqs.push(Requirement { key: k.clone(), op: Op::Eq, values: vec![v.as_str().unwrap_or("").into()] });
            }
        }
        if let Some(exprs) = sel["matchExpressions"].as_array() {
            for e in exprs {
                let key = e["key"].as_str().unwrap_or("").to_string();
                let values: Vec<String> =
                    e["values"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default();
                let op = match e["operator"].as_str().unwrap_or("") {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    _ => return None,
                };
                reqs.push(Requirement { key, op, values });
            }
        }
        Some(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| {
            let v = labels.get(&r.key);
            match r.op {
                Op::Eq => v == Some(&r.values[0]),
                Op::NotEq => v != Some(&r.values[0]),
                Op::In => v.map(|v| r.values.contains(v)).unwrap_or(false),
                Op::NotIn => v.map(|v| !r.values.contains(v)).unwrap_or(true),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::Gt | Op::Lt => {
                    let (Some(v), Ok(bound)) = (v.and_then(|v| v.parse::<i64>().ok()), r.values[0].parse::<i64>()) else {
                        return false;
                    };
                    if r.op == Op::Gt { v > bound } else { v < bound }
                }
            }
        })
    }

    /// Matches a JSON labels map.
    pub fn matches_json(&self, labels: &serde_json::Value) -> bool {
        let m: BTreeMap<String, String> = labels
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
            .unwrap_or_default();
        self.matches(&m)
    }
}

fn paren_list(s: &str) -> Result<Vec<String>, String> {
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| format!("found '{s}', expected: '('"))?;
    Ok(inner.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
}

/// A parsed field selector: `metadata.name=x,status.phase!=Running`.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some(i) = part.find("!=") {
                (&part[..i], false, &part[i + 2..])
            } else if let Some(i) = part.find("==") {
                (&part[..i], true, &part[i + 2..])
            } else if let Some(i) = part.find('=') {
                (&part[..i], true, &part[i + 1..])
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            reqs.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Fields the selector names (to check against what the resource supports).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.reqs.iter().map(|(k, _, _)| k.as_str())
    }

    /// The value required for `metadata.name`, if the selector pins it (used to narrow lookups).
    pub fn exact(&self, key: &str) -> Option<&str> {
        self.reqs.iter().find(|(k, eq, _)| k == key && *eq).map(|(_, _, v)| v.as_str())
    }

    /// `get` returns a field's value for the object.
    pub fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.reqs.iter().all(|(k, eq, v)| {
            let actual = get(k).unwrap_or_default();
            (actual == *v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_operators() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("n>3", true),
            ("n<3", false),
            ("app=web,tier in (back)", false),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&l), want, "{sel}");
        }
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("bad key!=x").is_err());
    }

    #[test]
    fn field_selector() {
        let f = FieldSelector::parse("metadata.name=a,status.phase!=Running").unwrap();
        let get = |k: &str| match k {
            "metadata.name" => Some("a".to_string()),
            "status.phase" => Some("Pending".to_string()),
            _ => None,
        };
        assert!(f.matches(&get));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
