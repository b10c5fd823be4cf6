//! Resource quota accounting shared by the `resourcequota` controller and quota admission, after
//! upstream's `k8s.io/apiserver/pkg/quota/v1` and `pkg/quota/v1/evaluator/core`: resource lists
//! and their arithmetic, a quota's view (hard, used, scopes), and per-resource evaluators that
//! say what an object costs ([`evaluators`], [`pods`]).

pub mod evaluators;
pub mod pods;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::registry::quantity::Quantity;

/// `corev1.ResourceList`: resource name to quantity, sorted by name.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Reads a JSON resource list; entries that are not quantities are skipped.
pub fn parse_list(v: &Value) -> ResourceList {
    v.as_object().into_iter().flatten().filter_map(|(k, v)| Quantity::from_json(v).map(|q| (k.clone(), q))).collect()
}

/// A resource list as JSON, each value in canonical text.
pub fn list_to_json(l: &ResourceList) -> Value {
    let mut m = Map::new();
    for (k, q) in l {
        m.insert(k.clone(), json!(q.canonical()));
    }
    Value::Object(m)
}

/// `quota.Add`: the sum of two lists (keys of either).
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        let v = match out.get(k) {
            Some(cur) => cur.add(q),
            None => *q,
        };
        out.insert(k.clone(), v);
    }
    out
}

/// `quota.SubtractWithNonNegativeResult`: `a - b` for a's keys, never below zero.
pub fn sub_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    for (k, q) in a {
        let mut v = match b.get(k) {
            Some(d) => q.sub(d),
            None => *q,
        };
        if v.signum() < 0 {
            v = Quantity { mantissa: 0, exp: 0, format: v.format };
        }
        out.insert(k.clone(), v);
    }
    out
}

/// `quota.Mask`: only the entries named in `names`.
pub fn mask<'a>(l: &ResourceList, names: impl IntoIterator<Item = &'a String>) -> ResourceList {
    let mut out = ResourceList::new();
    for n in names {
        if let Some(q) = l.get(n) {
            out.insert(n.clone(), *q);
        }
    }
    out
}

/// `quota.Equals`: same names, equal values.
pub fn equals(a: &ResourceList, b: &ResourceList) -> bool {
    a.len() == b.len() && a.iter().all(|(k, q)| b.get(k).map(|o| o.cmp_value(q).is_eq()).unwrap_or(false))
}

/// `quota.LessThanOrEqual`: whether every entry of `a` that `b` also names is within `b`; the
/// names that are not.
pub fn less_or_equal(a: &ResourceList, b: &ResourceList) -> (bool, Vec<String>) {
    let exceeded: Vec<String> =
        b.iter().filter(|(k, lim)| a.get(*k).map(|v| v.cmp_value(lim).is_gt()).unwrap_or(false)).map(|(k, _)| k.clone()).collect();
    (exceeded.is_empty(), exceeded)
}

/// `quota.RemoveZeros`.
pub fn remove_zeros(l: &ResourceList) -> ResourceList {
    l.iter().filter(|(_, q)| !q.is_zero()).map(|(k, q)| (k.clone(), *q)).collect()
}

/// `quota.IsNegative`: the names with negative values.
pub fn negative(l: &ResourceList) -> Vec<String> {
    l.iter().filter(|(_, q)| q.signum() < 0).map(|(k, _)| k.clone()).collect()
}

/// `prettyPrint` of quota errors: `name=value` sorted by name, comma-separated.
pub fn pretty(l: &ResourceList) -> String {
    l.iter().map(|(k, q)| format!("{k}={}", q.canonical())).collect::<Vec<_>>().join(",")
}

/// One `scopeSelector.matchExpressions` entry (or a `scopes` entry as `Exists`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSelector {
    pub scope: String,
    pub operator: String,
    pub values: Vec<String>,
}

impl ScopeSelector {
    /// Whether a label-like map `{scope: value}` (None: absent) satisfies the expression, as
    /// `ScopedResourceSelectorRequirementsAsSelector` evaluates it.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match self.operator.as_str() {
            "In" => value.map(|v| self.values.iter().any(|x| x == v)).unwrap_or(false),
            "NotIn" => value.map(|v| !self.values.iter().any(|x| x == v)).unwrap_or(true),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    }
}

/// What quota accounting reads from a ResourceQuota.
#[derive(Debug, Clone)]
pub struct QuotaView {
    pub name: String,
    pub namespace: String,
    pub resource_version: String,
    pub spec_hard: ResourceList,
    pub hard: ResourceList,
    /// None when the controller has not computed usage yet.
    pub used: Option<ResourceList>,
    pub selectors: Vec<ScopeSelector>,
}

impl QuotaView {
    pub fn parse(q: &Value) -> QuotaView {
        let mut selectors: Vec<ScopeSelector> = q["spec"]["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .map(|s| ScopeSelector { scope: s.to_string(), operator: "Exists".into(), values: vec![] })
            .collect();
        for e in q["spec"]["scopeSelector"]["matchExpressions"].as_array().into_iter().flatten() {
            selectors.push(ScopeSelector {
                scope: e["scopeName"].as_str().unwrap_or("").to_string(),
                operator: e["operator"].as_str().unwrap_or("").to_string(),
                values: e["values"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect(),
            });
        }
        QuotaView {
            name: crate::meta::name(q).to_string(),
            namespace: crate::meta::namespace(q).to_string(),
            resource_version: crate::meta::resource_version(q).to_string(),
            spec_hard: parse_list(&q["spec"]["hard"]),
            hard: parse_list(&q["status"]["hard"]),
            used: q["status"]["used"].is_object().then(|| parse_list(&q["status"]["used"])),
            selectors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> ResourceList {
        pairs.iter().map(|(k, v)| (k.to_string(), Quantity::parse(v).unwrap())).collect()
    }

    #[test]
    fn list_arithmetic() {
        let a = l(&[("pods", "2"), ("requests.memory", "64Mi")]);
        let b = l(&[("pods", "1"), ("requests.cpu", "100m")]);
        assert_eq!(pretty(&add(&a, &b)), "pods=3,requests.cpu=100m,requests.memory=64Mi");
        assert_eq!(pretty(&sub_non_negative(&b, &a)), "pods=0,requests.cpu=100m");
        let (ok, ex) = less_or_equal(&l(&[("pods", "3"), ("cpu", "1")]), &l(&[("pods", "2"), ("cpu", "2")]));
        assert!(!ok);
        assert_eq!(ex, vec!["pods".to_string()]);
        assert!(equals(&l(&[("cpu", "1")]), &l(&[("cpu", "1000m")])));
        assert!(!equals(&l(&[("cpu", "1")]), &l(&[("cpu", "1"), ("pods", "0")])));
        assert_eq!(pretty(&mask(&a, &["pods".to_string(), "x".to_string()])), "pods=2");
        assert_eq!(list_to_json(&a), json!({"pods": "2", "requests.memory": "64Mi"}));
    }

    #[test]
    fn scope_selectors() {
        let s = |op: &str, vals: &[&str]| ScopeSelector {
            scope: "PriorityClass".into(),
            operator: op.into(),
            values: vals.iter().map(|v| v.to_string()).collect(),
        };
        assert!(s("In", &["high"]).matches_value(Some("high")));
        assert!(!s("In", &["high"]).matches_value(None));
        assert!(s("NotIn", &["high"]).matches_value(None));
        assert!(!s("NotIn", &["high"]).matches_value(Some("high")));
        assert!(s("Exists", &[]).matches_value(Some("x")));
        assert!(s("DoesNotExist", &[]).matches_value(None));
        let q = QuotaView::parse(&json!({"metadata": {"name": "q", "namespace": "n"}, "spec": {"hard": {"pods": "2"}, "scopes": ["BestEffort"],
            "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}}));
        assert_eq!(q.selectors.len(), 2);
        assert!(q.used.is_none());
    }
}
