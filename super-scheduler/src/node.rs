//! Real nodes as the scheduler keeps them, and the virtual node a tenant sees for each.
//!
//! The virtual node carries the real node's name, the labels an allow-list lets through, its
//! taints and its capacity; nothing about other tenants. Tenant pods' node selectors, node
//! affinity and tolerations are evaluated against the virtual node, so a selector on a label the
//! tenant cannot see matches nothing.
//!
//! kplex's super cluster runs no node lifecycle controller, so the scheduler adds the taints that
//! controller would (`TaintNodesByCondition`): `node.kubernetes.io/not-ready:NoSchedule` when the
//! Ready condition is False, `node.kubernetes.io/unreachable:NoSchedule` when it is Unknown or
//! missing, `node.kubernetes.io/unschedulable:NoSchedule` on a cordoned node, unless the node
//! already has a taint with that key. Taints under `tenancy.kplex.io/` are the provider's
//! (dedicated pools are enforced by the tenant policy) and are neither shown nor matched.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

use crate::labels::{labels_from, Labels, TENANCY_PREFIX, TENANT_LABEL};
use crate::resources::Resources;

/// The node labels every tenant sees by default.
pub const DEFAULT_VISIBLE_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
];

/// Which real-node labels a virtual node carries.
#[derive(Debug, Clone)]
pub struct VirtualNodePolicy {
    /// Exact keys.
    pub keys: Vec<String>,
    /// Key prefixes (`example.com/` lets `example.com/pool` through).
    pub prefixes: Vec<String>,
}

impl Default for VirtualNodePolicy {
    fn default() -> Self {
        VirtualNodePolicy { keys: DEFAULT_VISIBLE_LABELS.iter().map(|s| s.to_string()).collect(), prefixes: Vec::new() }
    }
}

impl VirtualNodePolicy {
    /// The default keys plus extra keys and prefixes.
    pub fn with(extra_keys: &[String], prefixes: &[String]) -> VirtualNodePolicy {
        let mut p = VirtualNodePolicy::default();
        p.keys.extend(extra_keys.iter().cloned());
        p.prefixes = prefixes.to_vec();
        p
    }

    pub fn allows(&self, key: &str) -> bool {
        !key.starts_with(TENANCY_PREFIX) && (self.keys.iter().any(|k| k == key) || self.prefixes.iter().any(|p| key.starts_with(p.as_str())))
    }
}

/// A taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

/// Everything the scheduler needs of one real node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// All labels of the real node (provider rules select on these).
    pub labels: Labels,
    /// The labels its virtual node carries (tenant pods are matched against these).
    pub vlabels: Labels,
    /// The taints of the virtual node, the condition taints included.
    pub taints: Vec<Taint>,
    pub allocatable: Resources,
    /// `allocatable.pods`.
    pub allowed_pods: i64,
    pub unschedulable: bool,
    pub ready: bool,
    /// The dedicated pool's tenant (`tenancy.kplex.io/tenant` label).
    pub pool: Option<String>,
    /// Capacity and allocatable as the node reports them, for the virtual node.
    pub capacity_text: BTreeMap<String, String>,
    pub allocatable_text: BTreeMap<String, String>,
    /// The zone key nodes are interleaved by (region and zone).
    pub zone_key: String,
}

impl NodeInfo {
    pub fn from_node(node: &Node, policy: &VirtualNodePolicy) -> NodeInfo {
        let name = node.metadata.name.clone().unwrap_or_default();
        let labels = labels_from(node.metadata.labels.as_ref());
        let vlabels: Labels = labels.iter().filter(|(k, _)| policy.allows(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let spec = node.spec.as_ref();
        let unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        let ready_status = status.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready")).map(|c| c.status.clone());
        let ready = ready_status.as_deref() == Some("True");
        let mut taints: Vec<Taint> = spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| !t.key.starts_with(TENANCY_PREFIX))
            .map(|t| Taint { key: t.key.clone(), value: t.value.clone().unwrap_or_default(), effect: t.effect.clone() })
            .collect();
        let mut add = |key: &str| {
            if !taints.iter().any(|t| t.key == key) {
                taints.push(Taint { key: key.to_string(), value: String::new(), effect: "NoSchedule".into() });
            }
        };
        match ready_status.as_deref() {
            Some("True") => {}
            Some("False") => add("node.kubernetes.io/not-ready"),
            _ => add("node.kubernetes.io/unreachable"),
        }
        if unschedulable {
            add("node.kubernetes.io/unschedulable");
        }
        let alloc_list = status.and_then(|s| s.allocatable.as_ref());
        let allocatable = Resources::from_list(alloc_list);
        let allowed_pods = alloc_list.and_then(|l| l.get("pods")).and_then(|q| crate::quantity::value(&q.0)).unwrap_or(0);
        let text = |l: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            l.into_iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect::<BTreeMap<_, _>>()
        };
        let zone_key = format!(
            "{}:\0:{}",
            labels.get("topology.kubernetes.io/region").map(String::as_str).unwrap_or(""),
            labels.get("topology.kubernetes.io/zone").map(String::as_str).unwrap_or("")
        );
        NodeInfo {
            pool: labels.get(TENANT_LABEL).cloned(),
            name,
            labels,
            vlabels,
            taints,
            allocatable,
            allowed_pods,
            unschedulable,
            ready,
            capacity_text: text(status.and_then(|s| s.capacity.as_ref())),
            allocatable_text: text(alloc_list),
            zone_key,
        }
    }
}

/// The virtual node a tenant sees for a real node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualNode {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub capacity: BTreeMap<String, String>,
    pub allocatable: BTreeMap<String, String>,
    pub unschedulable: bool,
    pub ready: bool,
}

impl From<&NodeInfo> for VirtualNode {
    fn from(n: &NodeInfo) -> VirtualNode {
        VirtualNode {
            name: n.name.clone(),
            labels: n.vlabels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            taints: n.taints.clone(),
            capacity: n.capacity_text.clone(),
            allocatable: n.allocatable_text.clone(),
            unschedulable: n.unschedulable,
            ready: n.ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn virtual_labels_pass_the_allow_list_only() {
        let n = node(json!({"metadata": {"name": "n1", "labels": {
            "kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "z1", "node.kubernetes.io/instance-type": "m5",
            "example.com/pool": "blue", "secret.corp/rack": "r7", "tenancy.kplex.io/tenant": "acme"}}}));
        let info = NodeInfo::from_node(&n, &VirtualNodePolicy::with(&[], &["example.com/".into(), "tenancy.kplex.io/".into()]));
        let mut keys: Vec<_> = info.vlabels.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, vec!["example.com/pool", "kubernetes.io/hostname", "node.kubernetes.io/instance-type", "topology.kubernetes.io/zone"]);
        assert_eq!(info.pool.as_deref(), Some("acme"));
        assert_eq!(info.labels.len(), 6);
    }

    #[test]
    fn conditions_become_taints_as_the_node_lifecycle_controller_would() {
        let ready = node(json!({"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110", "nvidia.com/gpu": "2"}}}));
        let info = NodeInfo::from_node(&ready, &VirtualNodePolicy::default());
        assert!(info.ready && info.taints.is_empty());
        assert_eq!((info.allocatable.milli_cpu, info.allowed_pods, info.allocatable.scalar("nvidia.com/gpu")), (4000, 110, 2));
        let not_ready = node(json!({"metadata": {"name": "b"}, "spec": {"unschedulable": true,
            "taints": [{"key": "tenancy.kplex.io/tenant", "value": "x", "effect": "NoSchedule"}, {"key": "gpu", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        let info = NodeInfo::from_node(&not_ready, &VirtualNodePolicy::default());
        let keys: Vec<_> = info.taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, vec!["gpu", "node.kubernetes.io/not-ready", "node.kubernetes.io/unschedulable"]);
        let unknown = node(json!({"metadata": {"name": "c"}}));
        assert_eq!(NodeInfo::from_node(&unknown, &VirtualNodePolicy::default()).taints[0].key, "node.kubernetes.io/unreachable");
    }
}
