//! Provider rules per tenant, read from the tenant's `VirtualCluster` (tenancy.kplex.io/v1alpha1)
//! in the super cluster:
//!
//! ```yaml
//! spec:
//!   quota:            # counted over the tenant's placed and reserved pods' requests
//!     cpu: "2"
//!     memory: 4Gi
//!     pods: "10"
//!     nvidia.com/gpu: "1"   # any extended resource; a `requests.` prefix is accepted
//!   nodeSelector:     # real node labels the tenant's nodes must have (the tenant never sees them)
//!     pool: general
//!   dedicatedNodePool: true   # confine the tenant to nodes labelled tenancy.kplex.io/tenant=NAME
//! ```
//!
//! Independently of these, a node labelled `tenancy.kplex.io/tenant=NAME` takes only NAME's pods.
//! Nodes a tenant may not use do not exist for it: they are not counted in "0/N nodes".

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::labels::Selector;
use crate::node::NodeInfo;
use crate::quantity;
use crate::resources::Resources;

/// An exceeded quota: resource, requested, used, limit.
type Exceeded<'a> = (&'a str, i64, i64, i64);

/// One tenant's provider rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantPolicy {
    /// Hard limits: resource name (`cpu`, `memory`, `ephemeral-storage`, `pods`, extended) to
    /// amount (cpu in thousandths).
    pub quota: BTreeMap<String, i64>,
    /// A selector over the real node labels.
    pub node_selector: Option<Selector>,
    /// Only nodes of the tenant's dedicated pool.
    pub dedicated_pool: bool,
}

/// `spec` of a VirtualCluster, the parts the scheduler reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VirtualClusterSpec {
    #[serde(default)]
    quota: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    node_selector: BTreeMap<String, String>,
    #[serde(default)]
    dedicated_node_pool: bool,
}

impl TenantPolicy {
    /// Reads a VirtualCluster object (`spec` as above); unknown fields are ignored, a malformed
    /// quota amount is an error.
    pub fn from_virtual_cluster(obj: &serde_json::Value) -> Result<TenantPolicy, String> {
        let spec: VirtualClusterSpec = match obj.get("spec") {
            Some(s) => serde_json::from_value(s.clone()).map_err(|e| format!("spec: {e}"))?,
            None => VirtualClusterSpec::default(),
        };
        let mut quota = BTreeMap::new();
        for (name, v) in spec.quota {
            let name = name.strip_prefix("requests.").unwrap_or(&name).to_string();
            let amount = quantity::json_value(&v, name == "cpu").ok_or_else(|| format!("spec.quota.{name}: not a quantity: {v}"))?;
            quota.insert(name, amount);
        }
        let node_selector = (!spec.node_selector.is_empty()).then(|| Selector::from_map(spec.node_selector.iter()));
        Ok(TenantPolicy { quota, node_selector, dedicated_pool: spec.dedicated_node_pool })
    }

    /// Whether the tenant may use the node at all.
    pub fn admits(&self, tenant: &str, node: &NodeInfo) -> bool {
        match node.pool.as_deref() {
            Some(pool) if pool != tenant => return false,
            None if self.dedicated_pool => return false,
            _ => {}
        }
        self.node_selector.as_ref().is_none_or(|s| s.matches(&node.labels))
    }

    /// The quota refusal for a pod requesting `req` while the tenant uses `used` over `pods`
    /// pods, worded like ResourceQuota admission; None when it fits.
    pub fn check_quota(&self, tenant: &str, req: &Resources, used: &Resources, pods: i64) -> Option<String> {
        let mut exceeded: Vec<Exceeded> = Vec::new();
        for (name, &limit) in &self.quota {
            let (want, have) = if name == "pods" { (1, pods) } else { (req.get(name), used.get(name)) };
            if want > 0 && have.saturating_add(want) > limit {
                exceeded.push((name.as_str(), want, have, limit));
            }
        }
        if exceeded.is_empty() {
            return None;
        }
        let list =
            |pick: fn(&Exceeded) -> i64| exceeded.iter().map(|e| format!("{}={}", e.0, quantity::format(pick(e), e.0 == "cpu"))).collect::<Vec<_>>().join(",");
        Some(format!("exceeded quota of virtual cluster {tenant}, requested: {}, used: {}, limited: {}", list(|e| e.1), list(|e| e.2), list(|e| e.3)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::node::VirtualNodePolicy;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn node(name: &str, labels: serde_json::Value) -> NodeInfo {
        NodeInfo::from_node(&serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap(), &VirtualNodePolicy::default())
    }

    #[test]
    fn virtual_cluster_spec_is_read() {
        let p = TenantPolicy::from_virtual_cluster(&json!({"spec": {"quota": {"cpu": "2", "requests.memory": "1Gi", "pods": 10, "nvidia.com/gpu": "1"},
            "nodeSelector": {"pool": "general"}, "dedicatedNodePool": true, "etcd": "shared"}}))
        .unwrap();
        assert_eq!(p.quota.get("cpu"), Some(&2000));
        assert_eq!(p.quota.get("memory"), Some(&(1 << 30)));
        assert_eq!(p.quota.get("pods"), Some(&10));
        assert_eq!(p.quota.get("nvidia.com/gpu"), Some(&1));
        assert!(p.dedicated_pool);
        assert!(TenantPolicy::from_virtual_cluster(&json!({"spec": {"quota": {"cpu": "lots"}}})).is_err());
        assert_eq!(TenantPolicy::from_virtual_cluster(&json!({})).unwrap(), TenantPolicy::default());
    }

    #[test]
    fn pools_and_selectors_decide_which_nodes_a_tenant_may_use() {
        let shared = node("s", json!({"pool": "general"}));
        let acme = node("a", json!({"tenancy.kplex.io/tenant": "acme", "pool": "general"}));
        let open = TenantPolicy::default();
        assert!(open.admits("acme", &shared) && open.admits("acme", &acme));
        assert!(!open.admits("other", &acme), "a dedicated node takes only its tenant's pods");
        let confined = TenantPolicy { dedicated_pool: true, ..Default::default() };
        assert!(!confined.admits("acme", &shared) && confined.admits("acme", &acme));
        let selective = TenantPolicy { node_selector: Some(Selector::from_map(labels(&[("pool", "gpu")]).iter())), ..Default::default() };
        assert!(!selective.admits("x", &shared));
    }

    #[test]
    fn quota_refusals_name_what_is_exceeded() {
        let p = TenantPolicy::from_virtual_cluster(&json!({"spec": {"quota": {"cpu": "2", "memory": "1Gi", "pods": "3"}}})).unwrap();
        let req = Resources { milli_cpu: 1000, ..Default::default() };
        let used = Resources { milli_cpu: 2000, memory: 512 << 20, ..Default::default() };
        assert_eq!(p.check_quota("acme", &req, &used, 2).unwrap(), "exceeded quota of virtual cluster acme, requested: cpu=1, used: cpu=2, limited: cpu=2");
        assert!(p.check_quota("acme", &req, &Resources::default(), 2).is_none());
        let big = Resources { milli_cpu: 500, memory: 1 << 30, ..Default::default() };
        assert_eq!(
            p.check_quota("acme", &big, &used, 3).unwrap(),
            "exceeded quota of virtual cluster acme, requested: cpu=500m,memory=1Gi,pods=1, used: cpu=2,memory=512Mi,pods=3, limited: cpu=2,memory=1Gi,pods=3"
        );
    }
}
