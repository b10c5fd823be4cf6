//! Label and node selectors with apimachinery's semantics (`labels.Selector`,
//! `nodeaffinity.NodeSelector`), the tenancy keys, and the hash map the scheduler uses.
//!
//! Selectors are parsed once per pod; a requirement upstream would refuse to parse (an `In`
//! without values, `Gt` with a non-integer) makes its term match nothing, as kube-scheduler
//! ignores such terms ("Ignore parsing errors for backwards compatibility"). Label key and value
//! syntax is not re-validated: the tenant master validated the pod when it was created.

use k8s_openapi::api::core::v1::{NodeSelector as K8sNodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A hash map with a fixed seed: fast, and the same iteration order on every run.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
/// Labels of a node or a pod.
pub type Labels = Map<String, String>;

/// The label naming a super pod's tenant, and on a node the tenant whose dedicated pool it is in.
pub const TENANT_LABEL: &str = "tenancy.kplex.io/tenant";
/// The annotation carrying a super pod's namespace in its tenant.
pub const NAMESPACE_ANNOTATION: &str = "tenancy.kplex.io/namespace";
/// The annotation carrying a super pod's name in its tenant.
pub const NAME_ANNOTATION: &str = "tenancy.kplex.io/name";
/// The annotation carrying the tenant pod's UID: the key of its reservation.
pub const UID_ANNOTATION: &str = "tenancy.kplex.io/uid";
/// Every key under this prefix is the provider's: never shown to a tenant, never matched by one.
pub const TENANCY_PREFIX: &str = "tenancy.kplex.io/";

/// Labels from an optional k8s-openapi map.
pub fn labels_from(m: Option<&std::collections::BTreeMap<String, String>>) -> Labels {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

/// The operator of one requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

/// One requirement of a selector (`labels.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
    /// The integer of `Gt`/`Lt`.
    pub bound: i64,
}

impl Requirement {
    /// Builds a requirement, refusing what `labels.NewRequirement` refuses.
    pub fn new(key: &str, op: &str, values: &[String]) -> Option<Requirement> {
        let op = match op {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        };
        if key.is_empty() {
            return None;
        }
        let mut bound = 0;
        match op {
            Op::In | Op::NotIn if values.is_empty() => return None,
            Op::Exists | Op::DoesNotExist if !values.is_empty() => return None,
            Op::Gt | Op::Lt => {
                if values.len() != 1 {
                    return None;
                }
                bound = values[0].parse::<i64>().ok()?;
            }
            _ => {}
        }
        Some(Requirement { key: key.to_string(), op, values: values.to_vec(), bound })
    }

    /// `Requirement.Matches`.
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match self.op {
            Op::In => v.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => v.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|n| n > self.bound),
            Op::Lt => v.and_then(|v| v.parse::<i64>().ok()).is_some_and(|n| n < self.bound),
        }
    }
}

/// A label selector: `Everything` (no requirements), `Nothing`, or requirements ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Selector {
    pub reqs: Vec<Requirement>,
    pub nothing: bool,
}

impl Selector {
    /// Matches nothing (`labels.Nothing()`, what a nil `LabelSelector` becomes).
    pub fn nothing() -> Selector {
        Selector { reqs: Vec::new(), nothing: true }
    }

    /// `labels.SelectorFromSet`.
    pub fn from_map<'a>(m: impl IntoIterator<Item = (&'a String, &'a String)>) -> Selector {
        let mut reqs: Vec<Requirement> = m.into_iter().map(|(k, v)| Requirement { key: k.clone(), op: Op::In, values: vec![v.clone()], bound: 0 }).collect();
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Selector { reqs, nothing: false }
    }

    /// `metav1.LabelSelectorAsSelector`: nil is Nothing, `{}` is Everything. None when a
    /// requirement does not parse.
    pub fn from_label_selector(ls: Option<&LabelSelector>) -> Option<Selector> {
        let Some(ls) = ls else { return Some(Selector::nothing()) };
        let mut reqs = Vec::new();
        for (k, v) in ls.match_labels.iter().flatten() {
            reqs.push(Requirement::new(k, "In", std::slice::from_ref(v))?);
        }
        for e in ls.match_expressions.iter().flatten() {
            if !matches!(e.operator.as_str(), "In" | "NotIn" | "Exists" | "DoesNotExist") {
                return None;
            }
            reqs.push(Requirement::new(&e.key, &e.operator, e.values.as_deref().unwrap_or_default())?);
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Some(Selector { reqs, nothing: false })
    }

    /// `Selector.Empty()`: no requirements (true of Everything, false of Nothing).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels))
    }

    /// Adds `key=value` requirements in front (the merge of `matchLabelKeys`).
    pub fn merge_set(&mut self, set: &[(String, String)]) {
        if self.nothing {
            return;
        }
        for (k, v) in set.iter().rev() {
            self.reqs.insert(0, Requirement { key: k.clone(), op: Op::In, values: vec![v.clone()], bound: 0 });
        }
    }
}

/// One parsed `NodeSelectorTerm`: label requirements and `metadata.name` field requirements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeTerm {
    pub labels: Vec<Requirement>,
    /// `(In?, name)`: `metadata.name` must (In) or must not (NotIn) be `name`.
    pub fields: Vec<(bool, String)>,
    /// The term did not parse: it matches no node.
    pub invalid: bool,
}

impl NodeTerm {
    /// None for an empty term, which selects nothing and is dropped.
    pub fn parse(t: &NodeSelectorTerm) -> Option<NodeTerm> {
        let exprs = t.match_expressions.as_deref().unwrap_or_default();
        let fields = t.match_fields.as_deref().unwrap_or_default();
        if exprs.is_empty() && fields.is_empty() {
            return None;
        }
        let mut term = NodeTerm { labels: Vec::new(), fields: Vec::new(), invalid: false };
        for e in exprs {
            match Requirement::new(&e.key, &e.operator, e.values.as_deref().unwrap_or_default()) {
                Some(r) => term.labels.push(r),
                None => term.invalid = true,
            }
        }
        for f in fields {
            term.invalid |= !parse_field(f, &mut term.fields);
        }
        Some(term)
    }

    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        !self.invalid
            && self.labels.iter().all(|r| r.matches(labels))
            // A field selector on a key other than metadata.name sees an empty value.
            && self.fields.iter().all(|(is_in, v)| (name == v) == *is_in)
    }
}

/// `metadata.name In/NotIn [one value]`; other keys compare against "" (nodes have no other
/// selectable field), other operators or value counts do not parse.
fn parse_field(f: &NodeSelectorRequirement, out: &mut Vec<(bool, String)>) -> bool {
    let vals = f.values.as_deref().unwrap_or_default();
    let is_in = match f.operator.as_str() {
        "In" => true,
        "NotIn" => false,
        _ => return false,
    };
    if vals.len() != 1 {
        return false;
    }
    if f.key == "metadata.name" {
        out.push((is_in, vals[0].clone()));
    } else {
        // The field is absent: `key=v` never matches, `key!=v` always does.
        out.push((is_in, format!("\0{}", vals[0])));
    }
    true
}

/// A required `NodeSelector`: its terms are ORed; with no (valid) term it matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeSelector {
    pub terms: Vec<NodeTerm>,
}

impl NodeSelector {
    pub fn parse(ns: &K8sNodeSelector) -> NodeSelector {
        NodeSelector { terms: ns.node_selector_terms.iter().filter_map(NodeTerm::parse).collect() }
    }

    pub fn matches(&self, name: &str, labels: &Labels) -> bool {
        self.terms.iter().any(|t| t.matches(name, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, op: &str, vals: &[&str]) -> Requirement {
        Requirement::new(key, op, &vals.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn requirement_operators() {
        let n = l(&[("zone", "a"), ("cores", "16"), ("bad", "x")]);
        assert!(req("zone", "In", &["a", "b"]).matches(&n));
        assert!(!req("zone", "In", &["b"]).matches(&n));
        assert!(!req("missing", "In", &["a"]).matches(&n));
        assert!(req("zone", "NotIn", &["b"]).matches(&n));
        assert!(req("missing", "NotIn", &["b"]).matches(&n), "NotIn matches a node without the key");
        assert!(!req("zone", "NotIn", &["a"]).matches(&n));
        assert!(req("zone", "Exists", &[]).matches(&n));
        assert!(req("missing", "DoesNotExist", &[]).matches(&n));
        assert!(req("cores", "Gt", &["8"]).matches(&n));
        assert!(!req("cores", "Gt", &["16"]).matches(&n));
        assert!(req("cores", "Lt", &["17"]).matches(&n));
        assert!(!req("bad", "Gt", &["1"]).matches(&n), "a non-integer label never satisfies Gt");
        assert!(!req("missing", "Lt", &["100"]).matches(&n));
        assert!(Requirement::new("k", "In", &[]).is_none());
        assert!(Requirement::new("k", "Exists", &["x".into()]).is_none());
        assert!(Requirement::new("k", "Gt", &["x".into()]).is_none());
        assert!(Requirement::new("k", "Gt", &["1".into(), "2".into()]).is_none());
        assert!(Requirement::new("k", "Foo", &["1".into()]).is_none());
    }

    #[test]
    fn label_selector_nil_is_nothing_and_empty_is_everything() {
        let n = l(&[("app", "web")]);
        let nothing = Selector::from_label_selector(None).unwrap();
        assert!(!nothing.matches(&n) && !nothing.is_empty());
        let everything = Selector::from_label_selector(Some(&LabelSelector::default())).unwrap();
        assert!(everything.matches(&n) && everything.is_empty());
        let ls: LabelSelector =
            serde_json::from_value(json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})).unwrap();
        assert!(Selector::from_label_selector(Some(&ls)).unwrap().matches(&n));
        let gt: LabelSelector = serde_json::from_value(json!({"matchExpressions": [{"key": "n", "operator": "Gt", "values": ["1"]}]})).unwrap();
        assert!(Selector::from_label_selector(Some(&gt)).is_none(), "Gt is not a label selector operator");
    }

    #[test]
    fn node_selector_terms_are_ored_and_fields_match_the_name() {
        let ns: K8sNodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
        ]}))
        .unwrap();
        let sel = NodeSelector::parse(&ns);
        assert!(sel.matches("n1", &l(&[("zone", "a")])));
        assert!(sel.matches("n2", &l(&[("zone", "b")])));
        assert!(!sel.matches("n2", &l(&[("zone", "a")])));
        let empty: K8sNodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [{}]})).unwrap();
        assert!(!NodeSelector::parse(&empty).matches("n1", &l(&[])), "an empty term selects nothing");
        let bad: K8sNodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]}]}))
        .unwrap();
        assert!(!NodeSelector::parse(&bad).matches("n1", &l(&[])), "matchFields In takes exactly one value");
        let not_in: K8sNodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]}))
        .unwrap();
        assert!(!NodeSelector::parse(&not_in).matches("n1", &l(&[])));
        assert!(NodeSelector::parse(&not_in).matches("n2", &l(&[])));
    }
}
