//! InterPodAffinity, scoped to one tenant: the incoming pod's required affinity and
//! anti-affinity, the required anti-affinity of the tenant's placed pods, and the preferred terms
//! for scoring. Only the tenant's own pods (placed and reserved) take part; other tenants' pods
//! and the provider's are invisible to these rules. Topology values are the virtual node labels.

use crate::labels::{Labels, Map};
use crate::pod::{AffinityTerm, PodInfo};
use crate::state::{ClusterState, PodId};

/// Counts per topology key, then value.
type TopoCounts = Map<String, Map<String, i64>>;

fn bump(m: &mut TopoCounts, key: &str, value: &str, by: i64) {
    let vals = match m.get_mut(key) {
        Some(v) => v,
        None => m.entry(key.to_string()).or_default(),
    };
    match vals.get_mut(value) {
        Some(c) => *c += by,
        None => {
            vals.insert(value.to_string(), by);
        }
    }
}

fn get(m: &TopoCounts, key: &str, value: &str) -> i64 {
    m.get(key).and_then(|v| v.get(value)).copied().unwrap_or(0)
}

/// The tenant's pods with the virtual labels of their nodes (pods on unknown nodes are skipped).
fn tenant_pods<'a>(st: &'a ClusterState, ids: impl Iterator<Item = &'a PodId>) -> impl Iterator<Item = (&'a PodInfo, &'a Labels)> {
    ids.filter_map(move |&id| {
        let p = st.pod(id);
        st.nodes[p.node].info.as_ref().map(|n| (&p.info, &n.vlabels))
    })
}

/// Whether any of the pod's terms has a namespace selector to resolve.
pub fn has_namespace_selectors(pod: &PodInfo) -> bool {
    let a = &pod.affinity;
    let sel = |t: &AffinityTerm| !t.ns_selector.nothing && !t.ns_selector.is_empty();
    a.required.iter().any(sel) || a.required_anti.iter().any(sel) || a.preferred.iter().any(|(_, t)| sel(t)) || a.preferred_anti.iter().any(|(_, t)| sel(t))
}

/// The incoming pod's terms with namespace selectors resolved against the tenant's namespaces
/// (`mergeAffinityTermNamespacesIfNotEmpty`).
pub fn resolve_namespaces(pod: &mut PodInfo, namespaces: &[(String, Labels)]) {
    let resolve = |t: &mut AffinityTerm| {
        if t.ns_selector.is_empty() {
            return;
        }
        for (name, labels) in namespaces {
            if t.ns_selector.matches(labels) && !t.namespaces.contains(name) {
                t.namespaces.push(name.clone());
            }
        }
        t.ns_selector = crate::labels::Selector::nothing();
    };
    let a = &mut pod.affinity;
    a.required.iter_mut().for_each(resolve);
    a.required_anti.iter_mut().for_each(resolve);
    a.preferred.iter_mut().for_each(|(_, t)| resolve(t));
    a.preferred_anti.iter_mut().for_each(|(_, t)| resolve(t));
}

/// What the filter needs, computed once per pod (PreFilter).
#[derive(Debug, Default)]
pub struct FilterState {
    existing_anti: TopoCounts,
    affinity: TopoCounts,
    anti: TopoCounts,
    /// No other pod matches all the affinity terms, but the pod matches them itself.
    self_affine: bool,
}

impl FilterState {
    /// None when nothing applies (no terms on the pod, no matching anti-affinity on others).
    pub fn new(st: &ClusterState, tenant: &str, pod: &PodInfo, ns_labels: &Labels) -> Option<FilterState> {
        let none = crate::state::TenantState::default();
        let t = st.tenant(tenant).unwrap_or(&none);
        let empty = Labels::default();
        let mut s = FilterState::default();
        for (p, labels) in tenant_pods(st, t.with_affinity.iter()) {
            for term in &p.affinity.required_anti {
                if term.matches(&pod.namespace, &pod.labels, ns_labels) {
                    if let Some(v) = labels.get(&term.topology_key) {
                        bump(&mut s.existing_anti, &term.topology_key, v, 1);
                    }
                }
            }
        }
        let a = &pod.affinity;
        if !a.required.is_empty() || !a.required_anti.is_empty() {
            for (p, labels) in tenant_pods(st, t.pods.iter()) {
                if !a.required.is_empty() && a.required.iter().all(|term| term.matches(&p.namespace, &p.labels, &empty)) {
                    for term in &a.required {
                        if let Some(v) = labels.get(&term.topology_key) {
                            bump(&mut s.affinity, &term.topology_key, v, 1);
                        }
                    }
                }
                for term in &a.required_anti {
                    if term.matches(&p.namespace, &p.labels, &empty) {
                        if let Some(v) = labels.get(&term.topology_key) {
                            bump(&mut s.anti, &term.topology_key, v, 1);
                        }
                    }
                }
            }
        }
        s.self_affine = s.affinity.is_empty() && a.required.iter().all(|term| term.matches(&pod.namespace, &pod.labels, &empty));
        if s.existing_anti.is_empty() && a.required.is_empty() && a.required_anti.is_empty() {
            return None;
        }
        Some(s)
    }

    /// The InterPodAffinity filter on one node.
    pub fn filter(&self, pod: &PodInfo, labels: &Labels) -> Option<crate::filters::Failure> {
        use crate::filters::Failure;
        let mut pods_exist = true;
        for term in &pod.affinity.required {
            match labels.get(&term.topology_key) {
                Some(v) => pods_exist &= get(&self.affinity, &term.topology_key, v) > 0,
                None => return Some(Failure::PodAffinity),
            }
        }
        if !pods_exist && !self.self_affine {
            return Some(Failure::PodAffinity);
        }
        for term in &pod.affinity.required_anti {
            if let Some(v) = labels.get(&term.topology_key) {
                if get(&self.anti, &term.topology_key, v) > 0 {
                    return Some(Failure::PodAntiAffinity);
                }
            }
        }
        if !self.existing_anti.is_empty() {
            for (k, v) in labels {
                if get(&self.existing_anti, k, v) > 0 {
                    return Some(Failure::ExistingAntiAffinity);
                }
            }
        }
        None
    }
}

/// The InterPodAffinity score state (PreScore): weights per topology pair.
#[derive(Debug, Default)]
pub struct ScoreState {
    scores: TopoCounts,
}

impl ScoreState {
    /// None when the plugin has nothing to score (Skip).
    pub fn new(st: &ClusterState, tenant: &str, pod: &PodInfo, ns_labels: &Labels, hard_weight: i64) -> Option<ScoreState> {
        let t = st.tenant(tenant)?;
        let a = &pod.affinity;
        let has_constraints = !a.preferred.is_empty() || !a.preferred_anti.is_empty();
        let empty = Labels::default();
        let mut s = ScoreState::default();
        let ids: Box<dyn Iterator<Item = &PodId>> = if has_constraints { Box::new(t.pods.iter()) } else { Box::new(t.with_affinity.iter()) };
        for (p, labels) in tenant_pods(st, ids) {
            if labels.is_empty() {
                continue;
            }
            let mut term = |term: &AffinityTerm, weight: i64, target: &PodInfo, nsl: &Labels| {
                if let Some(v) = labels.get(&term.topology_key) {
                    if term.matches(&target.namespace, &target.labels, nsl) {
                        bump(&mut s.scores, &term.topology_key, v, weight);
                    }
                }
            };
            for (w, tm) in &a.preferred {
                term(tm, *w as i64, p, &empty);
            }
            for (w, tm) in &a.preferred_anti {
                term(tm, -(*w as i64), p, &empty);
            }
            if hard_weight > 0 {
                for tm in &p.affinity.required {
                    term(tm, hard_weight, pod, ns_labels);
                }
            }
            for (w, tm) in &p.affinity.preferred {
                term(tm, *w as i64, pod, ns_labels);
            }
            for (w, tm) in &p.affinity.preferred_anti {
                term(tm, -(*w as i64), pod, ns_labels);
            }
        }
        (!s.scores.is_empty()).then_some(s)
    }

    /// The raw score of a node: the weights of the topology pairs it is in.
    pub fn score(&self, labels: &Labels) -> i64 {
        self.scores.iter().filter_map(|(k, vals)| labels.get(k).and_then(|v| vals.get(v))).sum()
    }
}

/// InterPodAffinity's NormalizeScore: min-max to 0..100.
pub fn normalize(scores: &mut [i64]) {
    let (Some(&min), Some(&max)) = (scores.iter().min(), scores.iter().max()) else { return };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 { (100.0 * ((*s - min) as f64 / diff as f64)) as i64 } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::VirtualNodePolicy;
    use serde_json::json;
    use std::time::{Duration, Instant};

    fn state() -> ClusterState {
        let mut st = ClusterState::new(VirtualNodePolicy::default());
        for (name, zone) in [("n0", "a"), ("n1", "a"), ("n2", "b")] {
            st.upsert_node(
                &serde_json::from_value(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}},
                    "status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"}, "conditions": [{"type": "Ready", "status": "True"}]}}))
                .unwrap(),
            );
        }
        st
    }

    fn pod(uid: &str, labels: serde_json::Value, affinity: serde_json::Value) -> PodInfo {
        PodInfo::from_pod(
            &serde_json::from_value(
                json!({"metadata": {"name": uid, "uid": uid, "namespace": "ns", "labels": labels}, "spec": {"containers": [], "affinity": affinity}}),
            )
            .unwrap(),
            None,
        )
        .unwrap()
    }

    fn add(st: &mut ClusterState, tenant: &str, p: PodInfo, node: &str) {
        let idx = st.node_index(node).unwrap();
        st.reserve(tenant, p, idx, Instant::now() + Duration::from_secs(60));
    }

    #[test]
    fn preferred_anti_affinity_scores_and_normalises_min_max() {
        let mut st = state();
        add(&mut st, "t", pod("w0", json!({"app": "web"}), json!({})), "n0");
        add(&mut st, "t", pod("w1", json!({"app": "web"}), json!({})), "n0");
        add(&mut st, "t", pod("w2", json!({"app": "web"}), json!({})), "n1");
        let p = pod(
            "new",
            json!({"app": "web"}),
            json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}}]}}),
        );
        let s = ScoreState::new(&st, "t", &p, &Labels::default(), 1).unwrap();
        let mut raw: Vec<i64> = ["n0", "n1", "n2"].iter().map(|n| s.score(&st.node(st.node_index(n).unwrap()).vlabels)).collect();
        assert_eq!(raw, vec![-20, -10, 0]);
        normalize(&mut raw);
        assert_eq!(raw, vec![0, 50, 100]);
        assert!(ScoreState::new(&st, "other", &p, &Labels::default(), 1).is_none(), "other tenants' pods do not count");
    }

    #[test]
    fn existing_pods_required_affinity_attracts_with_the_hard_weight() {
        let mut st = state();
        let aff = json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "topology.kubernetes.io/zone"}]}});
        add(&mut st, "t", pod("cache", json!({"app": "cache"}), aff), "n2");
        let p = pod("db", json!({"app": "db"}), json!({}));
        let s = ScoreState::new(&st, "t", &p, &Labels::default(), 1).unwrap();
        assert_eq!(s.score(&st.node(st.node_index("n2").unwrap()).vlabels), 1);
        assert_eq!(s.score(&st.node(st.node_index("n0").unwrap()).vlabels), 0);
    }

    #[test]
    fn existing_anti_affinity_blocks_the_topology_of_the_pod_that_has_it() {
        let mut st = state();
        let anti = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "noisy"}}, "topologyKey": "topology.kubernetes.io/zone"}]}});
        add(&mut st, "t", pod("quiet", json!({"app": "quiet"}), anti), "n0");
        let p = pod("noisy", json!({"app": "noisy"}), json!({}));
        let f = FilterState::new(&st, "t", &p, &Labels::default()).unwrap();
        let node = |n: &str| &st.node(st.node_index(n).unwrap()).vlabels;
        assert_eq!(f.filter(&p, node("n1")), Some(crate::filters::Failure::ExistingAntiAffinity), "same zone as the quiet pod");
        assert_eq!(f.filter(&p, node("n2")), None);
        assert!(FilterState::new(&st, "u", &p, &Labels::default()).is_none(), "another tenant's pod does not care");
    }
}
