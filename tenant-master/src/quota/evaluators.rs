//! Per-resource quota evaluators, after upstream's `quota.Evaluator` implementations: pods
//! (compute resources, scopes), services (type-dependent counts), persistent volume claims
//! (storage, per storage class) and an object counter for every other namespaced resource
//! (`count/<resource>.<group>`, plus the legacy names `configmaps`, `secrets`,
//! `replicationcontrollers`, `resourcequotas`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{pods, QuotaView, ResourceList, ScopeSelector};
use crate::registry::quantity::Quantity;

/// The operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
}

/// Measures what objects of one resource cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evaluator {
    Pods,
    Services,
    PersistentVolumeClaims,
    /// Counts objects: `count/<resource>[.<group>]` and, for a few core resources, a legacy name.
    Count {
        count_name: String,
        alias: Option<&'static str>,
    },
}

const SERVICE_RESOURCES: &[&str] = &["count/services", "services", "services.nodeports", "services.loadbalancers"];
const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// `ObjectCountQuotaResourceNameFor`: `count/pods`, `count/deployments.apps`.
pub fn count_name(group: &str, plural: &str) -> String {
    if group.is_empty() {
        format!("count/{plural}")
    } else {
        format!("count/{plural}.{group}")
    }
}

fn one() -> Quantity {
    Quantity::from_i64(1)
}

/// `storagehelpers.GetPersistentVolumeClaimClass`: the beta annotation wins over the field.
fn storage_class(pvc: &Value) -> Option<&str> {
    if let Some(c) = pvc["metadata"]["annotations"]["volume.beta.kubernetes.io/storage-class"].as_str() {
        return Some(c);
    }
    pvc["spec"]["storageClassName"].as_str()
}

fn allocated_storage(pvc: &Value) -> Option<Quantity> {
    Quantity::from_json(&pvc["status"]["allocatedResources"]["storage"])
}

/// Storage a claim is charged: its request in whole bytes, or what was allocated if larger.
fn pvc_storage(pvc: &Value) -> Option<Quantity> {
    let req = Quantity::from_json(&pvc["spec"]["resources"]["requests"]["storage"])?.round_up(0);
    match allocated_storage(pvc) {
        Some(a) if a.cmp_value(&req).is_gt() => Some(a.round_up(0)),
        _ => Some(req),
    }
}

impl Evaluator {
    /// The evaluator of a namespaced resource; None for resources quota ignores (events).
    pub fn for_resource(group: &str, plural: &str) -> Option<Evaluator> {
        let count = |alias| Some(Evaluator::Count { count_name: count_name(group, plural), alias });
        match (group, plural) {
            ("", "events") => None,
            ("", "pods") => Some(Evaluator::Pods),
            ("", "services") => Some(Evaluator::Services),
            ("", "persistentvolumeclaims") => Some(Evaluator::PersistentVolumeClaims),
            ("", "configmaps") => count(Some("configmaps")),
            ("", "secrets") => count(Some("secrets")),
            ("", "replicationcontrollers") => count(Some("replicationcontrollers")),
            ("", "resourcequotas") => count(Some("resourcequotas")),
            _ => count(None),
        }
    }

    /// Whether this operation can change usage (`Evaluator.Handles`). `subresource` is "" for
    /// the main resource.
    pub fn handles(&self, op: Op, subresource: &str, obj: &Value, old: Option<&Value>) -> bool {
        match self {
            // Pods are charged at creation only (their compute resources are immutable).
            Evaluator::Pods => op == Op::Create && subresource.is_empty(),
            // A service's type (and so its node ports and load balancers) can change.
            Evaluator::Services => true,
            Evaluator::PersistentVolumeClaims => match subresource {
                "" => true,
                "status" => {
                    old.map(|o| allocated_storage(o).map(|q| q.canonical()) != allocated_storage(obj).map(|q| q.canonical())).unwrap_or(false)
                }
                _ => false,
            },
            Evaluator::Count { .. } => op == Op::Create,
        }
    }

    /// The quota resource names, of those given, this evaluator measures.
    pub fn matching_resources<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        names
            .into_iter()
            .filter(|n| match self {
                Evaluator::Pods => pods::matches_resource(n),
                Evaluator::Services => SERVICE_RESOURCES.contains(&n.as_str()),
                Evaluator::PersistentVolumeClaims => {
                    matches!(n.as_str(), "count/persistentvolumeclaims" | "persistentvolumeclaims" | "requests.storage")
                        || n.ends_with(&format!("{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"))
                        || n.ends_with(&format!("{STORAGE_CLASS_SUFFIX}requests.storage"))
                }
                Evaluator::Count { count_name, alias } => *n == count_name || alias.map(|a| a == n.as_str()).unwrap_or(false),
            })
            .cloned()
            .collect()
    }

    /// Whether an object falls in a scope; only pods have scopes (others match none).
    pub fn matches_scope(&self, sel: &ScopeSelector, obj: &Value) -> bool {
        match self {
            Evaluator::Pods => pods::matches_scope(sel, obj),
            _ => false,
        }
    }

    /// Whether a quota with these hard limits and scopes applies to the object
    /// (`generic.Matches`): it limits something this evaluator measures, and every scope holds.
    pub fn matches(&self, hard: &ResourceList, selectors: &[ScopeSelector], obj: &Value) -> bool {
        !self.matching_resources(hard.keys()).is_empty() && selectors.iter().all(|s| self.matches_scope(s, obj))
    }

    /// Whether a quota applies, judged by its `status.hard` (admission).
    pub fn matches_quota(&self, q: &QuotaView, obj: &Value) -> bool {
        self.matches(&q.hard, &q.selectors, obj)
    }

    /// What the object costs.
    pub fn usage(&self, obj: &Value, now: DateTime<Utc>) -> ResourceList {
        let mut r = ResourceList::new();
        match self {
            Evaluator::Pods => return pods::usage(obj, now),
            Evaluator::Services => {
                let spec = &obj["spec"];
                let ports = spec["ports"].as_array().map(|p| p.len()).unwrap_or(0) as i64;
                r.insert("count/services".into(), one());
                r.insert("services".into(), one());
                r.insert("services.loadbalancers".into(), Quantity::zero());
                r.insert("services.nodeports".into(), Quantity::zero());
                match spec["type"].as_str() {
                    Some("NodePort") => {
                        r.insert("services.nodeports".into(), Quantity::from_i64(ports));
                    }
                    Some("LoadBalancer") => {
                        // Without node port allocation only explicitly given node ports count.
                        let n = if spec["allocateLoadBalancerNodePorts"] == false {
                            spec["ports"].as_array().into_iter().flatten().filter(|p| p["nodePort"].as_i64().unwrap_or(0) != 0).count() as i64
                        } else {
                            ports
                        };
                        r.insert("services.nodeports".into(), Quantity::from_i64(n));
                        r.insert("services.loadbalancers".into(), one());
                    }
                    _ => {}
                }
            }
            Evaluator::PersistentVolumeClaims => {
                r.insert("persistentvolumeclaims".into(), one());
                r.insert("count/persistentvolumeclaims".into(), one());
                let class = storage_class(obj).filter(|c| !c.is_empty());
                if let Some(c) = class {
                    r.insert(format!("{c}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"), one());
                }
                if let Some(s) = pvc_storage(obj) {
                    r.insert("requests.storage".into(), s);
                    if let Some(c) = class {
                        r.insert(format!("{c}{STORAGE_CLASS_SUFFIX}requests.storage"), s);
                    }
                }
            }
            Evaluator::Count { count_name, alias } => {
                r.insert(count_name.clone(), one());
                if let Some(a) = alias {
                    r.insert(a.to_string(), one());
                }
            }
        }
        r
    }

    /// Checks the object states what the quota requires (`Evaluator.Constraints`).
    pub fn constraints(&self, required: &[String], obj: &Value) -> Result<(), String> {
        match self {
            Evaluator::Pods => pods::constraints(required, obj),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::pretty;
    use serde_json::json;

    #[test]
    fn services_count_node_ports_and_load_balancers() {
        let e = Evaluator::for_resource("", "services").unwrap();
        let now = Utc::now();
        let np = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}});
        assert_eq!(pretty(&e.usage(&np, now)), "count/services=1,services=1,services.loadbalancers=0,services.nodeports=2");
        let lb = json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80, "nodePort": 30001}, {"port": 81}]}});
        assert_eq!(pretty(&e.usage(&lb, now)), "count/services=1,services=1,services.loadbalancers=1,services.nodeports=1");
        assert!(e.handles(Op::Update, "", &np, Some(&np)));
    }

    #[test]
    fn claims_charge_storage_per_class() {
        let e = Evaluator::for_resource("", "persistentvolumeclaims").unwrap();
        let pvc = json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1.5Gi"}}},
                         "status": {"allocatedResources": {"storage": "2Gi"}}});
        assert_eq!(
            pretty(&e.usage(&pvc, Utc::now())),
            "count/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/persistentvolumeclaims=1,gold.storageclass.storage.k8s.io/requests.storage=2Gi,persistentvolumeclaims=1,requests.storage=2Gi"
        );
        let names = vec!["gold.storageclass.storage.k8s.io/requests.storage".to_string(), "pods".to_string()];
        assert_eq!(e.matching_resources(&names), vec![names[0].clone()]);
    }

    #[test]
    fn object_counts_and_scopes() {
        let e = Evaluator::for_resource("apps", "deployments").unwrap();
        assert_eq!(pretty(&e.usage(&json!({}), Utc::now())), "count/deployments.apps=1");
        let cm = Evaluator::for_resource("", "configmaps").unwrap();
        assert_eq!(pretty(&cm.usage(&json!({}), Utc::now())), "configmaps=1,count/configmaps=1");
        assert!(Evaluator::for_resource("", "events").is_none());
        assert!(!e.handles(Op::Update, "", &json!({}), Some(&json!({}))));
        let hard: ResourceList = [("count/deployments.apps".to_string(), Quantity::from_i64(1))].into();
        let scoped = vec![ScopeSelector { scope: "BestEffort".into(), operator: "Exists".into(), values: vec![] }];
        assert!(e.matches(&hard, &[], &json!({})));
        assert!(!e.matches(&hard, &scoped, &json!({})), "only pods have scopes");
    }
}
