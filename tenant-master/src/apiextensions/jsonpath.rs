//! The part of Kubernetes' JSONPath (`k8s.io/client-go/util/jsonpath`) that printer columns
//! use: `.field`, `['field']`, `[n]` (negative from the end), `[a:b]`, `[*]`, `.*`, `..field`
//! (recursive descent) and filters `[?(@.type=="Ready")]` with `==`, `!=`, `<`, `<=`, `>`, `>=`
//! or bare existence. A dot in a field name is escaped as `\.` (`.metadata.labels.app\.kubernetes\.io/name`).

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    /// Every value below (and including) the current ones.
    Descend,
    Filter(Filter),
}

/// A filter `?(@.path op literal)`.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Step>,
    op: Option<(String, Value)>,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

fn literal(s: &str) -> Result<Value, String> {
    let s = s.trim();
    if (s.starts_with('"') && s.ends_with('"') || s.starts_with('\'') && s.ends_with('\'')) && s.len() >= 2 {
        return Ok(Value::String(s[1..s.len() - 1].to_string()));
    }
    match s {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    serde_json::from_str::<serde_json::Number>(s).map(Value::Number).map_err(|_| format!("unrecognized literal {s:?}"))
}

fn parse_filter(expr: &str) -> Result<Filter, String> {
    let expr = expr.trim();
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some((l, r)) = expr.split_once(op) {
            let l = l.trim().strip_prefix('@').ok_or_else(|| format!("filter must start with @: {expr}"))?;
            return Ok(Filter { path: parse_steps(l)?, op: Some((op.to_string(), literal(r)?)) });
        }
    }
    let l = expr.strip_prefix('@').ok_or_else(|| format!("filter must start with @: {expr}"))?;
    Ok(Filter { path: parse_steps(l)?, op: None })
}

fn parse_steps(s: &str) -> Result<Vec<Step>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                if i < chars.len() && chars[i] == '.' {
                    out.push(Step::Descend);
                    i += 1;
                }
                if i < chars.len() && chars[i] == '*' {
                    out.push(Step::Wildcard);
                    i += 1;
                    continue;
                }
                let mut name = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    name.push(chars[i]);
                    i += 1;
                }
                if !name.is_empty() {
                    out.push(Step::Field(name));
                }
            }
            '[' => {
                // Find the matching bracket, minding quotes and nested brackets in filters.
                let start = i + 1;
                let (mut depth, mut quote) = (1, None);
                i += 1;
                while i < chars.len() && depth > 0 {
                    match (chars[i], quote) {
                        (q @ ('\'' | '"'), None) => quote = Some(q),
                        (q, Some(open)) if q == open => quote = None,
                        ('[', None) => depth += 1,
                        (']', None) => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                if depth != 0 {
                    return Err(format!("unclosed bracket in {s:?}"));
                }
                let inner: String = chars[start..i - 1].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    out.push(Step::Wildcard);
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
                    out.push(Step::Filter(parse_filter(f)?));
                } else if inner.starts_with('\'') || inner.starts_with('"') {
                    match literal(inner)? {
                        Value::String(k) => out.push(Step::Field(k)),
                        _ => return Err(format!("bad key {inner:?}")),
                    }
                } else if let Some((a, b)) = inner.split_once(':') {
                    let n = |x: &str| -> Result<Option<i64>, String> {
                        let x = x.split(':').next().unwrap_or("").trim();
                        if x.is_empty() {
                            Ok(None)
                        } else {
                            x.parse().map(Some).map_err(|_| format!("bad slice {inner:?}"))
                        }
                    };
                    out.push(Step::Slice(n(a)?, n(b)?));
                } else {
                    out.push(Step::Index(inner.parse().map_err(|_| format!("bad index {inner:?}"))?));
                }
            }
            ' ' => i += 1,
            c => return Err(format!("unexpected {c:?} in {s:?}")),
        }
    }
    Ok(out)
}

fn descendants<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Object(m) => m.values().for_each(|x| descendants(x, out)),
        Value::Array(a) => a.iter().for_each(|x| descendants(x, out)),
        _ => {}
    }
}

fn compare(a: &Value, op: &str, b: &Value) -> bool {
    use std::cmp::Ordering::*;
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().zip(y.as_f64()).and_then(|(x, y)| x.partial_cmp(&y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match op {
        "==" => ord.map(|o| o == Equal).unwrap_or(a == b),
        "!=" => !ord.map(|o| o == Equal).unwrap_or(a == b),
        "<" => ord == Some(Less),
        "<=" => matches!(ord, Some(Less | Equal)),
        ">" => ord == Some(Greater),
        ">=" => matches!(ord, Some(Greater | Equal)),
        _ => false,
    }
}

fn apply<'a>(steps: &[Step], cur: Vec<&'a Value>) -> Vec<&'a Value> {
    let Some((step, rest)) = steps.split_first() else { return cur };
    let mut next = Vec::new();
    for v in cur {
        match step {
            Step::Field(k) => {
                if let Some(x) = v.get(k.as_str()) {
                    next.push(x);
                }
            }
            Step::Wildcard => match v {
                Value::Object(m) => next.extend(m.values()),
                Value::Array(a) => next.extend(a.iter()),
                _ => {}
            },
            Step::Index(i) => {
                if let Value::Array(a) = v {
                    let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                    if idx >= 0 {
                        if let Some(x) = a.get(idx as usize) {
                            next.push(x);
                        }
                    }
                }
            }
            Step::Slice(a, b) => {
                if let Value::Array(items) = v {
                    let len = items.len() as i64;
                    let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                    let (s, e) = (a.map(norm).unwrap_or(0), b.map(norm).unwrap_or(len));
                    if s < e {
                        next.extend(&items[s as usize..e as usize]);
                    }
                }
            }
            Step::Descend => descendants(v, &mut next),
            Step::Filter(f) => {
                let items: Vec<&Value> = match v {
                    Value::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for item in items {
                    let found = apply(&f.path, vec![item]);
                    let keep = match &f.op {
                        None => !found.is_empty(),
                        Some((op, lit)) => found.iter().any(|x| compare(x, op, lit)),
                    };
                    if keep {
                        next.push(item);
                    }
                }
            }
        }
    }
    apply(rest, next)
}

impl JsonPath {
    /// Parses a path such as `.status.conditions[?(@.type=="Ready")].status` (optionally
    /// wrapped in `{...}`, as templates are).
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let s = s.trim();
        let s = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(s);
        let s = s.strip_prefix('$').unwrap_or(s);
        parse_steps(s).map(JsonPath)
    }

    /// Every value the path finds in `v`, in document order.
    pub fn find<'a>(&self, v: &'a Value) -> Vec<&'a Value> {
        apply(&self.0, vec![v])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first(path: &str, v: &Value) -> Option<Value> {
        JsonPath::parse(path).unwrap().find(v).first().map(|x| (*x).clone())
    }

    #[test]
    fn paths_columns_use() {
        let v = json!({"spec": {"replicas": 3, "items": [{"n": 1}, {"n": 2}, {"n": 3}]},
            "metadata": {"labels": {"app.kubernetes.io/name": "w"}},
            "status": {"conditions": [{"type": "Issuing", "status": "False"}, {"type": "Ready", "status": "True", "reason": "Ok"}]}});
        assert_eq!(first(".spec.replicas", &v), Some(json!(3)));
        assert_eq!(first("{.spec.replicas}", &v), Some(json!(3)));
        assert_eq!(first(".status.conditions[?(@.type==\"Ready\")].status", &v), Some(json!("True")));
        assert_eq!(first(".status.conditions[?(@.type=='Ready')].reason", &v), Some(json!("Ok")));
        assert_eq!(first(".status.conditions[?(@.reason)].type", &v), Some(json!("Ready")));
        assert_eq!(first(".spec.items[-1].n", &v), Some(json!(3)));
        assert_eq!(first(".spec.items[?(@.n>1)].n", &v), Some(json!(2)));
        assert_eq!(JsonPath::parse(".spec.items[0:2].n").unwrap().find(&v).len(), 2);
        assert_eq!(JsonPath::parse(".spec.items[*].n").unwrap().find(&v).len(), 3);
        assert_eq!(first(".metadata.labels.app\\.kubernetes\\.io/name", &v), Some(json!("w")));
        assert_eq!(first(".metadata.labels['app.kubernetes.io/name']", &v), Some(json!("w")));
        assert_eq!(JsonPath::parse("..n").unwrap().find(&v).len(), 3);
        assert_eq!(first(".spec.missing", &v), None);
        assert!(JsonPath::parse(".spec[").is_err());
    }
}
