//! The per-node filters that need no other pod's placement, in kube-scheduler's order
//! (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit),
//! and the failure record every filter leaves on a node it rejects, with upstream's reason text
//! and status code (Unschedulable, or UnschedulableAndUnresolvable when preemption cannot help).

use crate::node::{NodeInfo, Taint};
use crate::pod::{first_untolerated, tolerated, PodInfo};
use crate::state::NodeSlot;

/// A status code of a rejected node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Removing pods might make room (preemption is worth a look).
    Unschedulable,
    /// Nothing about other pods can change this.
    UnschedulableAndUnresolvable,
}

/// Bits of `Failure::Fit`.
pub const FIT_PODS: u32 = 1;
pub const FIT_CPU: u32 = 2;
pub const FIT_MEMORY: u32 = 4;
pub const FIT_EPHEMERAL: u32 = 8;
/// Scalar resource `i` of the pod's requests is bit `FIT_SCALAR0 << i`.
pub const FIT_SCALAR0: u32 = 16;

/// Why a node was rejected (the first failing filter, as kube-scheduler stops at the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NodeUnschedulable,
    NodeName,
    /// The index of the untolerated taint in the node's taints.
    Taint(usize),
    NodeAffinity,
    NodePorts,
    /// Insufficient resources (bits above); `unresolvable` when the pod exceeds the node's size.
    Fit {
        bits: u32,
        unresolvable: bool,
    },
    SpreadMissingLabel,
    Spread,
    PodAffinity,
    PodAntiAffinity,
    ExistingAntiAffinity,
}

impl Failure {
    pub fn code(&self) -> Code {
        match self {
            Failure::NodePorts | Failure::Spread | Failure::PodAntiAffinity | Failure::ExistingAntiAffinity => Code::Unschedulable,
            Failure::Fit { unresolvable: false, .. } => Code::Unschedulable,
            _ => Code::UnschedulableAndUnresolvable,
        }
    }

    /// The reasons of the status, as kube-scheduler's plugins word them.
    pub fn reasons(&self, node: &NodeInfo, pod: &PodInfo) -> Vec<String> {
        let s = |x: &str| vec![x.to_string()];
        match *self {
            Failure::NodeUnschedulable => s("node(s) were unschedulable"),
            Failure::NodeName => s("node(s) didn't match the requested node name"),
            Failure::Taint(i) => {
                let t: &Taint = &node.taints[i];
                vec![format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value)]
            }
            Failure::NodeAffinity => s("node(s) didn't match Pod's node affinity/selector"),
            Failure::NodePorts => s("node(s) didn't have free ports for the requested pod ports"),
            Failure::Fit { bits, .. } => {
                let mut r = Vec::new();
                for (bit, text) in [(FIT_PODS, "Too many pods"), (FIT_CPU, "Insufficient cpu"), (FIT_MEMORY, "Insufficient memory")] {
                    if bits & bit != 0 {
                        r.push(text.to_string());
                    }
                }
                if bits & FIT_EPHEMERAL != 0 {
                    r.push("Insufficient ephemeral-storage".into());
                }
                for (i, (name, _)) in pod.requests.scalars.iter().enumerate() {
                    if bits & (FIT_SCALAR0 << i) != 0 {
                        r.push(format!("Insufficient {name}"));
                    }
                }
                r
            }
            Failure::SpreadMissingLabel => s("node(s) didn't match pod topology spread constraints (missing required label)"),
            Failure::Spread => s("node(s) didn't match pod topology spread constraints"),
            Failure::PodAffinity => s("node(s) didn't match pod affinity rules"),
            Failure::PodAntiAffinity => s("node(s) didn't match pod anti-affinity rules"),
            Failure::ExistingAntiAffinity => s("node(s) didn't satisfy existing pods anti-affinity rules"),
        }
    }
}

/// The filters that depend on the node and the pod alone: NodeUnschedulable, NodeName,
/// TaintToleration, NodeAffinity (evaluated against the virtual node).
pub fn static_filters(node: &NodeInfo, pod: &PodInfo) -> Option<Failure> {
    if node.unschedulable {
        let cordon = Taint { key: "node.kubernetes.io/unschedulable".into(), value: String::new(), effect: "NoSchedule".into() };
        if !tolerated(&pod.tolerations, &cordon) {
            return Some(Failure::NodeUnschedulable);
        }
    }
    if pod.node_name.as_ref().is_some_and(|n| *n != node.name) {
        return Some(Failure::NodeName);
    }
    if let Some(t) = first_untolerated(&node.taints, &pod.tolerations) {
        let i = node.taints.iter().position(|x| std::ptr::eq(x, t)).unwrap_or(0);
        return Some(Failure::Taint(i));
    }
    if !pod.matches_node_affinity(&node.name, &node.vlabels) {
        return Some(Failure::NodeAffinity);
    }
    None
}

/// NodePorts: a wanted host port is in use on the node.
pub fn ports_filter(slot: &NodeSlot, pod: &PodInfo) -> Option<Failure> {
    pod.host_ports.iter().any(|p| p.conflicts(&slot.ports)).then_some(Failure::NodePorts)
}

/// NodeResourcesFit: the pod count, then each requested resource against allocatable minus
/// what the node's pods (placed and reserved) request.
pub fn fit_filter(node: &NodeInfo, slot: &NodeSlot, pod: &PodInfo) -> Option<Failure> {
    let mut bits = 0;
    let mut unresolvable = false;
    if slot.pods.len() as i64 >= node.allowed_pods {
        bits |= FIT_PODS;
    }
    let req = &pod.requests;
    if !req.is_zero() {
        let alloc = &node.allocatable;
        let used = &slot.requested;
        let mut check = |bit: u32, want: i64, alloc: i64, used: i64| {
            if want > 0 && want > alloc.saturating_sub(used) {
                bits |= bit;
                unresolvable |= want > alloc;
            }
        };
        check(FIT_CPU, req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
        check(FIT_MEMORY, req.memory, alloc.memory, used.memory);
        check(FIT_EPHEMERAL, req.ephemeral_storage, alloc.ephemeral_storage, used.ephemeral_storage);
        for (i, (name, want)) in req.scalars.iter().enumerate().take(16) {
            check(FIT_SCALAR0 << i, *want, alloc.scalar(name), used.scalar(name));
        }
    }
    (bits != 0).then_some(Failure::Fit { bits, unresolvable })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::VirtualNodePolicy;
    use crate::resources::Resources;
    use serde_json::json;

    fn node(v: serde_json::Value) -> NodeInfo {
        NodeInfo::from_node(&serde_json::from_value(v).unwrap(), &VirtualNodePolicy::default())
    }

    fn ready_node(name: &str, extra: serde_json::Value) -> NodeInfo {
        let mut v = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "a", "secret": "x"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3", "nvidia.com/gpu": "1"}}});
        if let serde_json::Value::Object(m) = extra {
            for (k, x) in m {
                v[k] = x;
            }
        }
        node(v)
    }

    fn pod(spec: serde_json::Value) -> PodInfo {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([]);
        }
        PodInfo::from_pod(&serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec})).unwrap(), None).unwrap()
    }

    #[test]
    fn static_filters_run_in_upstream_order() {
        let cordoned = ready_node("n1", json!({"spec": {"unschedulable": true, "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}));
        assert_eq!(static_filters(&cordoned, &pod(json!({}))), Some(Failure::NodeUnschedulable));
        let tolerant = pod(json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert_eq!(static_filters(&cordoned, &tolerant), Some(Failure::Taint(0)));
        let f = static_filters(&cordoned, &tolerant).unwrap();
        assert_eq!(f.reasons(&cordoned, &tolerant), vec!["node(s) had untolerated taint {dedicated: db}"]);
        let plain = ready_node("n2", json!({}));
        assert_eq!(static_filters(&plain, &pod(json!({"nodeName": "n1"}))), Some(Failure::NodeName));
        assert_eq!(static_filters(&plain, &pod(json!({"nodeSelector": {"topology.kubernetes.io/zone": "a"}}))), None);
        assert_eq!(static_filters(&plain, &pod(json!({"nodeSelector": {"secret": "x"}}))), Some(Failure::NodeAffinity), "an invisible label never matches");
        let not_ready = node(json!({"metadata": {"name": "n3"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        let f = static_filters(&not_ready, &pod(json!({}))).unwrap();
        assert_eq!(f.reasons(&not_ready, &pod(json!({}))), vec!["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]);
        assert_eq!(f.code(), Code::UnschedulableAndUnresolvable);
    }

    #[test]
    fn fit_reports_every_insufficient_resource() {
        let n = ready_node("n", json!({}));
        let mut slot = NodeSlot { requested: Resources { milli_cpu: 1500, memory: 1 << 30, ..Default::default() }, ..Default::default() };
        let p = pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "3Gi", "nvidia.com/gpu": "2"}}}]}));
        let f = fit_filter(&n, &slot, &p).unwrap();
        assert_eq!(f.reasons(&n, &p), vec!["Insufficient cpu", "Insufficient nvidia.com/gpu"]);
        assert_eq!(f.code(), Code::UnschedulableAndUnresolvable, "2 GPUs exceed the node's 1");
        let small = pod(json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}));
        assert_eq!(fit_filter(&n, &slot, &small).unwrap().code(), Code::Unschedulable);
        slot.pods = vec![1, 2, 3];
        let empty = pod(json!({}));
        assert_eq!(fit_filter(&n, &slot, &empty).unwrap().reasons(&n, &empty), vec!["Too many pods"]);
        slot.pods.clear();
        assert_eq!(fit_filter(&n, &slot, &empty), None);
    }
}
