//! PodTopologySpread, scoped to one tenant: domains are the values of the topology key on the
//! virtual nodes the tenant may use, and only the tenant's pods in the pod's (tenant) namespace
//! are counted. `DoNotSchedule` constraints filter (maxSkew, minDomains, nodeAffinityPolicy,
//! nodeTaintsPolicy); `ScheduleAnyway` constraints, or the system default constraints when the
//! pod has none, score.

use crate::filters::Failure;
use crate::labels::{Labels, Map, Selector};
use crate::pod::{first_untolerated, PodInfo, SpreadConstraint};
use crate::state::ClusterState;

const HOSTNAME: &str = "kubernetes.io/hostname";

/// kube-scheduler's system default constraints (used with the selector of the Services and
/// controllers selecting the pod).
pub fn default_constraints(selector: &Selector) -> Vec<SpreadConstraint> {
    [(3, HOSTNAME), (5, "topology.kubernetes.io/zone")]
        .into_iter()
        .map(|(skew, key)| SpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            hard: false,
            selector: selector.clone(),
            min_domains: 1,
            honor_affinity: true,
            honor_taints: false,
        })
        .collect()
}

fn has_all_keys(labels: &Labels, cs: &[SpreadConstraint]) -> bool {
    cs.iter().all(|c| labels.contains_key(&c.topology_key))
}

/// `matchNodeInclusionPolicies`.
fn included(c: &SpreadConstraint, pod: &PodInfo, name: &str, labels: &Labels, taints: &[crate::node::Taint]) -> bool {
    (!c.honor_affinity || pod.matches_node_affinity(name, labels)) && (!c.honor_taints || first_untolerated(taints, &pod.tolerations).is_none())
}

/// Per node, how many of the tenant's pods in the pod's namespace each constraint's selector
/// matches (terminating pods excluded; an empty selector counts nothing).
fn counts_by_node(st: &ClusterState, tenant: &str, pod: &PodInfo, cs: &[SpreadConstraint]) -> Map<usize, Vec<i64>> {
    let mut m: Map<usize, Vec<i64>> = Map::default();
    let Some(t) = st.tenant(tenant) else { return m };
    for &id in &t.pods {
        let p = st.pod(id);
        if p.info.deleting || p.info.namespace != pod.namespace {
            continue;
        }
        for (i, c) in cs.iter().enumerate() {
            if !c.selector.is_empty() && c.selector.matches(&p.info.labels) {
                m.entry(p.node).or_insert_with(|| vec![0; cs.len()])[i] += 1;
            }
        }
    }
    m
}

/// The filter state (PreFilter): pods per domain and the global minimum, per hard constraint.
#[derive(Debug)]
pub struct FilterState {
    constraints: Vec<SpreadConstraint>,
    domains: Vec<Map<String, i64>>,
    min: Vec<i64>,
}

impl FilterState {
    /// None when the pod has no DoNotSchedule constraint.
    pub fn new(st: &ClusterState, tenant: &str, pod: &PodInfo, nodes: &[usize]) -> Option<FilterState> {
        let constraints: Vec<SpreadConstraint> = pod.spread.iter().filter(|c| c.hard).cloned().collect();
        if constraints.is_empty() {
            return None;
        }
        let per_node = counts_by_node(st, tenant, pod, &constraints);
        let mut domains: Vec<Map<String, i64>> = vec![Map::default(); constraints.len()];
        for &i in nodes {
            let n = st.node(i);
            if !has_all_keys(&n.vlabels, &constraints) {
                continue;
            }
            for (ci, c) in constraints.iter().enumerate() {
                if !included(c, pod, &n.name, &n.vlabels, &n.taints) {
                    continue;
                }
                let count = per_node.get(&i).map(|v| v[ci]).unwrap_or(0);
                let value = &n.vlabels[&c.topology_key];
                match domains[ci].get_mut(value) {
                    Some(d) => *d += count,
                    None => {
                        domains[ci].insert(value.clone(), count);
                    }
                }
            }
        }
        let min = constraints
            .iter()
            .zip(&domains)
            .map(|(c, d)| if (d.len() as i64) < c.min_domains as i64 { 0 } else { d.values().copied().min().unwrap_or(0) })
            .collect();
        Some(FilterState { constraints, domains, min })
    }

    /// The PodTopologySpread filter on one node.
    pub fn filter(&self, pod: &PodInfo, labels: &Labels) -> Option<Failure> {
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(v) = labels.get(&c.topology_key) else { return Some(Failure::SpreadMissingLabel) };
            let self_match = c.selector.matches(&pod.labels) as i64;
            let count = self.domains[i].get(v).copied().unwrap_or(0);
            if count + self_match - self.min[i] > c.max_skew as i64 {
                return Some(Failure::Spread);
            }
        }
        None
    }
}

/// The score state (PreScore) over the feasible nodes.
#[derive(Debug)]
pub struct ScoreState {
    constraints: Vec<SpreadConstraint>,
    require_all: bool,
    /// Per constraint: domain value to matching pods (hostname constraints count per node).
    domains: Vec<Map<String, i64>>,
    weights: Vec<f64>,
    per_node: Map<usize, Vec<i64>>,
}

impl ScoreState {
    /// None when there is nothing to score (Skip).
    pub fn new(st: &ClusterState, tenant: &str, pod: &PodInfo, default_selector: Option<&Selector>, all: &[usize], feasible: &[usize]) -> Option<ScoreState> {
        let (constraints, require_all) = if !pod.spread.is_empty() {
            (pod.spread.iter().filter(|c| !c.hard).cloned().collect::<Vec<_>>(), true)
        } else {
            match default_selector.filter(|s| !s.is_empty()) {
                Some(sel) => (default_constraints(sel), false),
                None => (Vec::new(), false),
            }
        };
        if constraints.is_empty() || all.is_empty() {
            return None;
        }
        let mut domains: Vec<Map<String, i64>> = vec![Map::default(); constraints.len()];
        let mut ignored = 0;
        for &i in feasible {
            let n = st.node(i);
            if require_all && !has_all_keys(&n.vlabels, &constraints) {
                ignored += 1;
                continue;
            }
            for (ci, c) in constraints.iter().enumerate() {
                if c.topology_key != HOSTNAME {
                    if let Some(v) = n.vlabels.get(&c.topology_key) {
                        if !domains[ci].contains_key(v) {
                            domains[ci].insert(v.clone(), 0);
                        }
                    }
                }
            }
        }
        let weights = constraints
            .iter()
            .zip(&domains)
            .map(|(c, d)| {
                let size = if c.topology_key == HOSTNAME { feasible.len() - ignored } else { d.len() };
                ((size + 2) as f64).ln()
            })
            .collect();
        let per_node = counts_by_node(st, tenant, pod, &constraints);
        for &i in all {
            let n = st.node(i);
            if require_all && !has_all_keys(&n.vlabels, &constraints) {
                continue;
            }
            for (ci, c) in constraints.iter().enumerate() {
                if c.topology_key == HOSTNAME || !included(c, pod, &n.name, &n.vlabels, &n.taints) {
                    continue;
                }
                let Some(v) = n.vlabels.get(&c.topology_key) else { continue };
                if let Some(slot) = domains[ci].get_mut(v) {
                    *slot += per_node.get(&i).map(|x| x[ci]).unwrap_or(0);
                }
            }
        }
        Some(ScoreState { constraints, require_all, domains, weights, per_node })
    }

    /// The raw score of a feasible node (None: the node lacks a topology key and is ignored).
    pub fn score(&self, idx: usize, labels: &Labels) -> Option<i64> {
        if self.require_all && !has_all_keys(labels, &self.constraints) {
            return None;
        }
        let mut score = 0.0;
        for (i, c) in self.constraints.iter().enumerate() {
            if let Some(v) = labels.get(&c.topology_key) {
                let cnt =
                    if c.topology_key == HOSTNAME { self.per_node.get(&idx).map(|x| x[i]).unwrap_or(0) } else { self.domains[i].get(v).copied().unwrap_or(0) };
                score += cnt as f64 * self.weights[i] + (c.max_skew - 1) as f64;
            }
        }
        Some(score.round() as i64)
    }
}

/// PodTopologySpread's NormalizeScore: fewer matching pods score higher; ignored nodes get 0.
pub fn normalize(raw: &[Option<i64>]) -> Vec<i64> {
    let valid = raw.iter().flatten();
    let min = valid.clone().copied().min().unwrap_or(i64::MAX);
    let max = valid.copied().max().unwrap_or(0).max(0);
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => 100,
            Some(s) => 100 * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::VirtualNodePolicy;
    use serde_json::json;
    use std::time::{Duration, Instant};

    /// Nodes a..d (zone by the given letters), with `pods[i]` matching app=web pods of tenant t.
    fn setup(zones: &[&str], pods: &[usize]) -> ClusterState {
        let mut st = ClusterState::new(VirtualNodePolicy::default());
        for (i, z) in zones.iter().enumerate() {
            let name = format!("n{i}");
            st.upsert_node(
                &serde_json::from_value(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": z}},
                    "status": {"allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"}, "conditions": [{"type": "Ready", "status": "True"}]}}))
                .unwrap(),
            );
        }
        for (i, &n) in pods.iter().enumerate() {
            let idx = st.node_index(&format!("n{i}")).unwrap();
            for k in 0..n {
                let labels: Labels = [("app".to_string(), "web".to_string())].into_iter().collect();
                let info = PodInfo { uid: format!("p{i}-{k}"), namespace: "ns".into(), labels, ..Default::default() };
                st.reserve("t", info, idx, Instant::now() + Duration::from_secs(60));
            }
        }
        st
    }

    fn pod(constraint: serde_json::Value) -> PodInfo {
        PodInfo::from_pod(
            &serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
                "spec": {"containers": [], "topologySpreadConstraints": [constraint]}}))
            .unwrap(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn soft_hostname_spreading_scores_emptier_nodes_higher() {
        let st = setup(&["a", "a", "a"], &[2, 1, 0]);
        let p = pod(json!({"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}));
        let all = [0, 1, 2];
        let s = ScoreState::new(&st, "t", &p, None, &all, &all).unwrap();
        // weight ln(3 + 2); raw 2w, w, 0 rounded: 3, 2, 0; normalised 100 * (max + min - s) / max.
        let raw: Vec<Option<i64>> = all.iter().map(|&i| s.score(i, &st.node(i).vlabels)).collect();
        assert_eq!(raw, vec![Some(3), Some(2), Some(0)]);
        assert_eq!(normalize(&raw), vec![0, 33, 100]);
        // Another tenant's pods are not counted.
        let s = ScoreState::new(&st, "u", &p, None, &all, &all).unwrap();
        assert_eq!(normalize(&all.iter().map(|&i| s.score(i, &st.node(i).vlabels)).collect::<Vec<_>>()), vec![100, 100, 100]);
    }

    #[test]
    fn hard_zone_spreading_with_min_domains() {
        // Zones a (n0, n1) and b (n2); 2 pods in a, 1 in b.
        let st = setup(&["a", "a", "b"], &[1, 1, 1]);
        let c = json!({"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                       "labelSelector": {"matchLabels": {"app": "web"}}});
        let p = pod(c.clone());
        let f = FilterState::new(&st, "t", &p, &[0, 1, 2]).unwrap();
        assert_eq!(f.filter(&p, &st.node(0).vlabels), Some(Failure::Spread), "a: 2 + 1 - 1 > 1");
        assert_eq!(f.filter(&p, &st.node(2).vlabels), None);
        // minDomains 3 with 2 domains: the global minimum counts as 0, so b (1 + 1 - 0) is full too.
        let mut c3 = c;
        c3["minDomains"] = json!(3);
        let p = pod(c3);
        let f = FilterState::new(&st, "t", &p, &[0, 1, 2]).unwrap();
        assert_eq!(f.filter(&p, &st.node(2).vlabels), Some(Failure::Spread));
        let mut no_zone = Labels::default();
        no_zone.insert(HOSTNAME.into(), "x".into());
        assert_eq!(f.filter(&p, &no_zone), Some(Failure::SpreadMissingLabel));
    }
}
