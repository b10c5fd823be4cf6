//! Field paths and sets of them, as structured-merge-diff's `fieldpath` package defines them,
//! and their `FieldsV1` wire form (`{"f:spec":{"f:replicas":{}}}`).
//!
//! A [`Set`] is a trie: at each level the path elements that are themselves members, and the
//! children (elements with further paths below them). Both are kept sorted in upstream's order
//! so that serialization, iteration and conflict reports come out as kube-apiserver's do.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path (upstream `fieldpath.PathElement`).
#[derive(Clone, Debug)]
pub enum PathElement {
    /// `f:name`: a field of a struct or a key of a map.
    Field(String),
    /// `k:{...}`: the item of an associative list whose key fields have these values, sorted by
    /// field name.
    Key(Vec<(String, Value)>),
    /// `v:...`: the item of a set (a list of scalars) with this value.
    Value(Value),
    /// `i:N`: the item of a list at this index.
    Index(usize),
}

/// A path from the root of an object.
pub type Path = Vec<PathElement>;

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element (`f:name`, `k:{"name":"c"}`, `v:"x"`, `i:0`).
    pub fn to_key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(fields) => {
                let mut s = String::from("k:{");
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    go_json_string(k, &mut s);
                    s.push(':');
                    go_json(v, &mut s);
                }
                s.push('}');
                s
            }
            PathElement::Value(v) => {
                let mut s = String::from("v:");
                go_json(v, &mut s);
                s
            }
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key. `Ok(None)` for an element type this version does not know
    /// (upstream drops those rather than failing).
    pub fn from_key(s: &str) -> Result<Option<PathElement>, String> {
        let b = s.as_bytes();
        if b.len() < 2 {
            return Err(format!("key must be 2 characters long: {s}"));
        }
        if b[1] != b':' {
            return Err(format!("missing colon: {s}"));
        }
        let rest = &s[2..];
        Ok(Some(match b[0] {
            b'f' => PathElement::Field(rest.to_string()),
            b'v' => PathElement::Value(serde_json::from_str(rest).map_err(|e| format!("parsing {s}: {e}"))?),
            b'k' => {
                let m: Map<String, Value> = serde_json::from_str(rest).map_err(|e| format!("parsing {s}: {e}"))?;
                let mut fields: Vec<(String, Value)> = m.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                PathElement::Key(fields)
            }
            b'i' => PathElement::Index(rest.parse().map_err(|e| format!("parsing {s}: {e}"))?),
            _ => return Ok(None),
        }))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.as_bytes().cmp(b.as_bytes()),
            (PathElement::Key(a), PathElement::Key(b)) => compare_fields(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// Renders as upstream's `PathElement.String()`: `.name`, `[name="c"]`, `[="x"]`, `[0]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(n) => write!(f, ".{n}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", value_to_string(v))).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value_to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as upstream prints it in conflict messages: `.spec.template.spec.containers[name="c"].image`.
pub fn path_string(p: &[PathElement]) -> String {
    p.iter().map(|e| e.to_string()).collect()
}

/// upstream `value.ToString`: Go `%q` for strings, `%v` for the rest.
fn value_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!("[{}]", a.iter().map(value_to_string).collect::<Vec<_>>().join(",")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!("{{{}}}", keys.iter().map(|k| format!("{k}={}", value_to_string(&m[*k]))).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// Whether a JSON number is an integer (upstream keeps ints and floats apart).
fn as_int(n: &serde_json::Number) -> Option<i128> {
    n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from))
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Number(n) if as_int(n).is_none() => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
        Value::Null => 6,
    }
}

/// upstream `value.Compare`: a total order over values of any type (floats, then ints, strings,
/// bools, lists, maps, null), ints and floats compared numerically with each other.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        return match (as_int(x), as_int(y)) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal),
        };
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = compare_values(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: BTreeSet<&String> = x.keys().collect();
            keys.extend(y.keys());
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (None, _) => return Ordering::Greater,
                    (_, None) => return Ordering::Less,
                    (Some(p), Some(q)) => {
                        let c = compare_values(p, q);
                        if c != Ordering::Equal {
                            return c;
                        }
                    }
                }
            }
            Ordering::Equal
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Value equality as upstream's `value.Equals` (1 equals 1.0).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare_values(a, b) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| values_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

fn compare_fields(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((ka, va), (kb, vb)) in a.iter().zip(b) {
        let c = ka.as_bytes().cmp(kb.as_bytes()).then_with(|| compare_values(va, vb));
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

/// Writes a JSON string as Go's encoding/json does (HTML-safe escapes included).
fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Compact JSON as Go's encoder writes it: map keys sorted, HTML-safe string escapes.
pub fn go_json(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => go_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                go_json(&m[k], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A set of field paths (upstream `fieldpath.Set`).
///
/// Invariant: no child set is empty, so derived equality is set equality.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    /// The empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// A set holding the given paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a [PathElement]>) -> Set {
        let mut s = Set::new();
        for p in paths {
            s.insert(p);
        }
        s
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path; the empty path is ignored.
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether `pe` is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The paths below `pe` (upstream `WithPrefix`), if any.
    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    /// The elements that are members at this level.
    pub fn members(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter()
    }

    /// The elements with paths below them, with those paths.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter()
    }

    /// Builds a set from members and children, dropping empty children.
    pub fn from_parts(members: BTreeSet<PathElement>, children: BTreeMap<PathElement, Set>) -> Set {
        Set { members, children: children.into_iter().filter(|(_, c)| !c.is_empty()).collect() }
    }

    /// Paths in either set.
    pub fn union(&self, o: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(o.members.iter().cloned());
        for (pe, c) in &o.children {
            match out.children.get_mut(pe) {
                Some(mine) => *mine = mine.union(c),
                None => {
                    out.children.insert(pe.clone(), c.clone());
                }
            }
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, o: &Set) -> Set {
        let members = self.members.intersection(&o.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, c)| o.children.get(pe).map(|oc| (pe.clone(), c.intersection(oc))))
            .collect();
        Set::from_parts(members, children)
    }

    /// Paths of `self` not in `o`; paths below a member of `o` stay (see [`Set::recursive_difference`]).
    pub fn difference(&self, o: &Set) -> Set {
        let members = self.members.difference(&o.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(pe, c)| match o.children.get(pe) {
                Some(oc) => (pe.clone(), c.difference(oc)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        Set::from_parts(members, children)
    }

    /// Like [`Set::difference`], and also drops everything below a member of `o`: removing
    /// `a.b` from `a.b.c` leaves nothing under `a.b`.
    pub fn recursive_difference(&self, o: &Set) -> Set {
        let members = self.members.difference(&o.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !o.members.contains(*pe))
            .map(|(pe, c)| match o.children.get(pe) {
                Some(oc) => (pe.clone(), c.recursive_difference(oc)),
                None => (pe.clone(), c.clone()),
            })
            .collect();
        Set::from_parts(members, children)
    }

    /// Every path, members of a level before its children, as upstream's `Iterate`.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` form: members as `{}`, children as objects, a path that is both a member
    /// and has children carries `".": {}` (written last, as upstream's serializer does).
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        let mut keys: BTreeSet<&PathElement> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for pe in keys {
            let v = match self.children.get(pe) {
                Some(c) => Value::Object(c.emit(self.members.contains(pe))),
                None => Value::Object(Map::new()),
            };
            out.insert(pe.to_key(), v);
        }
        if include_self && !out.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        out
    }

    /// Parses the `FieldsV1` form.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Value::Object(m) = v else { return Err("FieldsV1 must be a JSON object".into()) };
        Ok(Set::read(m)?.0.unwrap_or_default())
    }

    /// Returns the children of one level and whether the level itself is a member.
    fn read(m: &Map<String, Value>) -> Result<(Option<Set>, bool), String> {
        let mut is_member = false;
        let mut set: Option<Set> = None;
        for (k, v) in m {
            if k == "." {
                is_member = true;
                continue;
            }
            let Some(pe) = PathElement::from_key(k)? else { continue };
            let Value::Object(cm) = v else { return Err(format!("value of {k} must be a JSON object")) };
            let (grandchildren, child_member) = Set::read(cm)?;
            let s = set.get_or_insert_with(Set::new);
            if child_member {
                s.members.insert(pe.clone());
            }
            if let Some(g) = grandchildren {
                if !g.is_empty() {
                    s.children.insert(pe, g);
                }
            }
        }
        if set.is_none() {
            is_member = true;
        }
        Ok((set, is_member))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(s: &str) -> PathElement {
        PathElement::Field(s.into())
    }

    #[test]
    fn fields_v1_round_trip_keeps_upstream_form() {
        let raw = json!({
            "f:metadata": {"f:labels": {"f:app": {}, ".": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}},
                }}},
                "f:finalizers": {"v:\"a/b\"": {}},
                "f:args": {"i:0": {}},
            }
        });
        let s = Set::from_fields_v1(&raw).unwrap();
        assert!(s.has(&[f("spec"), f("replicas")]));
        assert!(!s.has(&[f("spec")]));
        assert!(s.has(&[f("metadata"), f("labels")]), "'.' makes labels a member");
        let key = PathElement::Key(vec![("name".into(), json!("nginx"))]);
        assert!(s.has(&[f("spec"), f("template"), f("spec"), f("containers"), key.clone()]));
        assert!(s.has(&[f("spec"), f("finalizers"), PathElement::Value(json!("a/b"))]));
        assert!(s.has(&[f("spec"), f("args"), PathElement::Index(0)]));
        let back = s.to_fields_v1();
        // Same set after a round trip, and "." is written after the contents.
        assert_eq!(Set::from_fields_v1(&back).unwrap(), s);
        let labels = back["f:metadata"]["f:labels"].as_object().unwrap();
        assert_eq!(labels.keys().collect::<Vec<_>>(), vec!["f:app", "."]);
        let text = serde_json::to_string(&back["f:spec"]["f:template"]).unwrap();
        assert!(text.contains(r#"k:{\"containerPort\":80,\"protocol\":\"TCP\"}"#), "{text}");
        // Field elements sort before keys, keys before values, values before indexes.
        let mut order = vec![PathElement::Index(1), PathElement::Value(json!("x")), key, f("z")];
        order.sort();
        assert!(matches!(order[0], PathElement::Field(_)) && matches!(order[3], PathElement::Index(_)));
    }

    #[test]
    fn unknown_element_types_are_dropped_and_bad_keys_fail() {
        let s = Set::from_fields_v1(&json!({"f:a": {}, "x:zz": {}})).unwrap();
        assert_eq!(s.paths().len(), 1);
        assert!(Set::from_fields_v1(&json!({"fa": {}})).is_err());
        assert!(Set::from_fields_v1(&json!({"k:{bad": {}})).is_err());
    }

    #[test]
    fn set_operations() {
        let a = Set::from_paths([&[f("a"), f("b"), f("c")][..], &[f("a"), f("x")][..], &[f("d")][..]]);
        let b = Set::from_paths([&[f("a"), f("b")][..], &[f("d")][..]]);
        assert_eq!(a.difference(&b), Set::from_paths([&[f("a"), f("b"), f("c")][..], &[f("a"), f("x")][..]]));
        assert_eq!(a.recursive_difference(&b), Set::from_paths([&[f("a"), f("x")][..]]));
        assert_eq!(a.intersection(&b), Set::from_paths([&[f("d")][..]]));
        let u = a.union(&b);
        assert!(u.has(&[f("a"), f("b")]) && u.has(&[f("a"), f("b"), f("c")]));
        assert!(a.difference(&a).is_empty());
        // Members of a level come before its children, as upstream iterates.
        let paths: Vec<String> = u.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(paths, vec![".d", ".a.b", ".a.x", ".a.b.c"]);
    }

    #[test]
    fn path_strings_match_upstream() {
        let p = vec![
            f("spec"),
            PathElement::Key(vec![("containerPort".into(), json!(80)), ("protocol".into(), json!("TCP"))]),
            PathElement::Value(json!("x")),
            PathElement::Index(2),
        ];
        assert_eq!(path_string(&p), r#".spec[containerPort=80,protocol="TCP"][="x"][2]"#);
    }

    #[test]
    fn value_order_and_equality() {
        assert_eq!(compare_values(&json!(1.5), &json!(1)), Ordering::Greater);
        assert_eq!(compare_values(&json!(1), &json!("a")), Ordering::Less);
        assert_eq!(compare_values(&json!("a"), &json!(true)), Ordering::Less);
        assert_eq!(compare_values(&json!(null), &json!({})), Ordering::Greater);
        assert!(values_equal(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
        let mut s = String::new();
        go_json(&json!({"b": "<x>", "a": 1}), &mut s);
        assert_eq!(s, r#"{"a":1,"b":"\u003cx\u003e"}"#);
    }
}
