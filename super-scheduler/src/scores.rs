//! The node scores that need no other pod's placement: TaintToleration (PreferNoSchedule),
//! NodeAffinity (preferred terms), NodeResourcesFit (LeastAllocated over cpu and memory, weight 1
//! each) and NodeResourcesBalancedAllocation, with kube-scheduler's normalisation. Every plugin
//! scores 0..100 (`MaxNodeScore`); the profile weights are TaintToleration 3, NodeAffinity 2,
//! PodTopologySpread 2, InterPodAffinity 2, NodeResourcesFit 1, BalancedAllocation 1.

use crate::node::NodeInfo;
use crate::pod::PodInfo;
use crate::state::NodeSlot;

pub const MAX_NODE_SCORE: i64 = 100;
pub const WEIGHT_TAINT: i64 = 3;
pub const WEIGHT_NODE_AFFINITY: i64 = 2;
pub const WEIGHT_SPREAD: i64 = 2;
pub const WEIGHT_INTERPOD: i64 = 2;
pub const WEIGHT_FIT: i64 = 1;
pub const WEIGHT_BALANCED: i64 = 1;

/// TaintToleration: how many PreferNoSchedule taints the pod does not tolerate (only tolerations
/// with an empty or PreferNoSchedule effect count).
pub fn intolerable_prefer_no_schedule(node: &NodeInfo, pod: &PodInfo) -> i64 {
    node.taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|t| !pod.tolerations.iter().filter(|x| x.effect.is_empty() || x.effect == "PreferNoSchedule").any(|x| x.tolerates(t)))
        .count() as i64
}

/// NodeAffinity: the sum of the weights of the preferred terms the virtual node matches.
pub fn preferred_node_affinity(node: &NodeInfo, pod: &PodInfo) -> i64 {
    pod.preferred_node_affinity.iter().filter(|(_, t)| t.matches(&node.name, &node.vlabels)).map(|(w, _)| *w as i64).sum()
}

/// `helper.DefaultNormalizeScore`: scale to 0..100 by the maximum; `reverse` flips.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    ((capacity - requested) as i128 * MAX_NODE_SCORE as i128 / capacity as i128) as i64
}

/// NodeResourcesFit with the LeastAllocated strategy: the free share of cpu and memory after
/// the pod, counting kube-scheduler's default requests for containers that set none.
pub fn least_allocated(node: &NodeInfo, slot: &NodeSlot, pod: &PodInfo) -> i64 {
    let mut score = 0;
    let mut weights = 0;
    for (alloc, req) in [
        (node.allocatable.milli_cpu, slot.nonzero_cpu.saturating_add(pod.nonzero_cpu)),
        (node.allocatable.memory, slot.nonzero_memory.saturating_add(pod.nonzero_memory)),
    ] {
        if alloc == 0 {
            continue;
        }
        score += least_requested(req, alloc);
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        score / weights
    }
}

/// NodeResourcesBalancedAllocation: 100 × (1 − the standard deviation of the cpu and memory
/// fractions after the pod). None for a pod requesting neither (BestEffort pods are skipped).
pub fn balanced_allocation(node: &NodeInfo, slot: &NodeSlot, pod: &PodInfo) -> Option<i64> {
    if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
        return None;
    }
    let fraction = |alloc: i64, req: i64| (alloc != 0).then(|| (req as f64 / alloc as f64).min(1.0));
    let cpu = fraction(node.allocatable.milli_cpu, slot.requested.milli_cpu.saturating_add(pod.requests.milli_cpu));
    let mem = fraction(node.allocatable.memory, slot.requested.memory.saturating_add(pod.requests.memory));
    // With two resources the standard deviation is half their difference; with one, zero.
    let std = match (cpu, mem) {
        (Some(c), Some(m)) => ((c - m) / 2.0).abs(),
        _ => 0.0,
    };
    Some(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
}

/// A stable tie-break between equally scored nodes: FNV-1a of the pod UID and the node name,
/// so ties spread over nodes yet every run decides the same.
pub fn tie_break(uid: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in uid.bytes().chain([b'/']).chain(node.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::VirtualNodePolicy;
    use crate::resources::Resources;
    use serde_json::json;

    fn node(cpu: &str, mem: &str, taints: serde_json::Value) -> NodeInfo {
        NodeInfo::from_node(
            &serde_json::from_value(json!({"metadata": {"name": "n", "labels": {"topology.kubernetes.io/zone": "a"}}, "spec": {"taints": taints},
                "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}, "conditions": [{"type": "Ready", "status": "True"}]}}))
            .unwrap(),
            &VirtualNodePolicy::default(),
        )
    }

    fn pod(spec: serde_json::Value) -> PodInfo {
        PodInfo::from_pod(&serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap(), None).unwrap()
    }

    #[test]
    fn least_allocated_matches_upstream_cases() {
        // Upstream "nothing scheduled, resources requested, differently sized nodes": a pod
        // requesting 3000m/5000 on a 4000m/10000 node scores ((4000-3000)*100/4000 + (10000-5000)*100/10000)/2 = 37.
        let n = node("4", "10000", json!([]));
        let p = pod(json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "2000"}}},
                                          {"name": "b", "resources": {"requests": {"cpu": "2", "memory": "3000"}}}]}));
        assert_eq!(least_allocated(&n, &NodeSlot::default(), &p), 37);
        // A pod with no requests counts 100m and 200Mi.
        let n = node("1", "1Gi", json!([]));
        let slot = NodeSlot { nonzero_cpu: 400, nonzero_memory: 312 << 20, ..Default::default() };
        assert_eq!(least_allocated(&n, &slot, &pod(json!({"containers": [{"name": "a"}]}))), (50 + 50) / 2);
    }

    #[test]
    fn balanced_allocation_prefers_even_use() {
        let n = node("4", "10000", json!([]));
        // cpu 3000/4000 = 0.75, memory 5000/10000 = 0.5: std 0.125, score 87.
        let p = pod(json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "3", "memory": "5000"}}}]}));
        assert_eq!(balanced_allocation(&n, &NodeSlot::default(), &p), Some(87));
        let even = pod(json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "2", "memory": "5000"}}}]}));
        assert_eq!(balanced_allocation(&n, &NodeSlot::default(), &even), Some(100));
        assert_eq!(balanced_allocation(&n, &NodeSlot::default(), &pod(json!({"containers": [{"name": "a"}]}))), None, "BestEffort pods skip it");
        let full = NodeSlot { requested: Resources { milli_cpu: 8000, ..Default::default() }, ..Default::default() };
        assert_eq!(balanced_allocation(&n, &full, &even), Some(75), "fractions cap at 1");
    }

    #[test]
    fn prefer_no_schedule_taints_and_normalisation() {
        let n = node(
            "1",
            "1Gi",
            json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}, {"key": "c", "effect": "NoSchedule"}]),
        );
        assert_eq!(intolerable_prefer_no_schedule(&n, &pod(json!({"containers": []}))), 2);
        let tol =
            pod(json!({"containers": [], "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert_eq!(intolerable_prefer_no_schedule(&n, &tol), 1, "a NoSchedule toleration does not count for PreferNoSchedule");
        let mut s = vec![0, 1, 2];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
        let mut s = vec![3, 6, 0];
        default_normalize(&mut s, false);
        assert_eq!(s, vec![50, 100, 0]);
    }

    #[test]
    fn tie_break_is_stable() {
        assert_eq!(tie_break("u", "n1"), tie_break("u", "n1"));
        assert_ne!(tie_break("u", "n1"), tie_break("u", "n2"));
    }
}
