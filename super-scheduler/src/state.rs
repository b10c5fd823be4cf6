//! The scheduler's picture of the super cluster: real nodes, every pod placed on them (tenant or
//! not) and the scheduler's own in-flight reservations, with per-node and per-tenant totals kept
//! up to date as pods come and go (kube-scheduler's cache and `NodeInfo`).
//!
//! A reservation is a tenant pod the scheduler placed that the syncer has not created in the super
//! cluster yet. It counts like a placed pod. When the super pod carrying the tenant pod's UID
//! (`tenancy.kplex.io/uid`) shows up with a node, it replaces the reservation; a reservation
//! nobody confirms or releases expires.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::labels::{Map, NAMESPACE_ANNOTATION, TENANT_LABEL, UID_ANNOTATION};
use crate::node::{NodeInfo, VirtualNodePolicy};
use crate::pod::{HostPort, PodInfo};
use crate::policy::TenantPolicy;
use crate::resources::Resources;

/// Index of a pod in the state.
pub type PodId = usize;
type Set<T> = HashSet<T, foldhash::fast::FixedState>;

/// A pod on a node: placed in the super cluster, or reserved by the scheduler.
#[derive(Debug, Clone)]
pub struct PlacedPod {
    pub info: PodInfo,
    pub tenant: Option<String>,
    /// The tenant pod's UID (its reservation key).
    pub tenant_uid: Option<String>,
    pub node: usize,
    /// The super-cluster pod's UID; None for a reservation.
    pub super_uid: Option<String>,
    /// When a reservation lapses.
    pub expires: Option<Instant>,
}

/// A real node with the pods on it and their totals.
#[derive(Debug, Clone, Default)]
pub struct NodeSlot {
    /// None while pods name a node the scheduler has not seen (or no longer sees).
    pub info: Option<NodeInfo>,
    pub requested: Resources,
    pub nonzero_cpu: i64,
    pub nonzero_memory: i64,
    pub pods: Vec<PodId>,
    pub ports: Vec<HostPort>,
}

/// One tenant: its rules, its pods and what they use.
#[derive(Debug, Default)]
pub struct TenantState {
    pub policy: TenantPolicy,
    pub pods: Set<PodId>,
    /// Its pods that have pod (anti-)affinity terms.
    pub with_affinity: Set<PodId>,
    pub used: Resources,
    pub pod_count: i64,
    visible: Option<(u64, Vec<usize>)>,
}

/// Nodes, pods, reservations and tenants.
#[derive(Debug, Default)]
pub struct ClusterState {
    pub nodes: Vec<NodeSlot>,
    names: Map<String, usize>,
    free_nodes: Vec<usize>,
    order: Vec<usize>,
    order_dirty: bool,
    pods: Vec<Option<PlacedPod>>,
    free_pods: Vec<usize>,
    by_super_uid: Map<String, PodId>,
    by_tenant_uid: Map<(String, String), PodId>,
    tenants: Map<String, TenantState>,
    node_gen: u64,
    live_nodes: usize,
    reserved: usize,
    /// Bumped by every change that may let a pod fit that did not (see `WatchChanges`).
    pub generation: u64,
    pub vpolicy: VirtualNodePolicy,
}

impl ClusterState {
    pub fn new(vpolicy: VirtualNodePolicy) -> ClusterState {
        ClusterState { vpolicy, ..Default::default() }
    }

    pub fn pod(&self, id: PodId) -> &PlacedPod {
        self.pods[id].as_ref().expect("live pod id")
    }

    /// Changes whenever a node is added, removed or changed.
    pub fn node_generation(&self) -> u64 {
        self.node_gen
    }

    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.names.get(name).copied().filter(|&i| self.nodes[i].info.is_some())
    }

    pub fn node(&self, idx: usize) -> &NodeInfo {
        self.nodes[idx].info.as_ref().expect("node with info")
    }

    pub fn tenant(&self, name: &str) -> Option<&TenantState> {
        self.tenants.get(name)
    }

    /// Every node the scheduler knows, by name.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().filter_map(|s| s.info.as_ref().map(|i| i.name.clone())).collect()
    }

    /// UIDs of the super-cluster pods in the state.
    pub fn super_pod_uids(&self) -> Vec<String> {
        self.by_super_uid.keys().cloned().collect()
    }

    /// How many nodes, placed pods and reservations there are.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.live_nodes, self.by_super_uid.len(), self.reserved)
    }

    fn slot_for(&mut self, name: &str) -> usize {
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        let i = match self.free_nodes.pop() {
            Some(i) => i,
            None => {
                self.nodes.push(NodeSlot::default());
                self.nodes.len() - 1
            }
        };
        self.names.insert(name.to_string(), i);
        i
    }

    fn drop_slot_if_empty(&mut self, i: usize) {
        let s = &self.nodes[i];
        if s.info.is_none() && s.pods.is_empty() {
            self.names.retain(|_, v| *v != i);
            self.nodes[i] = NodeSlot::default();
            self.free_nodes.push(i);
        }
    }

    /// Adds or updates a node from the super cluster.
    pub fn upsert_node(&mut self, node: &Node) {
        let info = NodeInfo::from_node(node, &self.vpolicy);
        if info.name.is_empty() {
            return;
        }
        let i = self.slot_for(&info.name.clone());
        if self.nodes[i].info.as_ref() == Some(&info) {
            return;
        }
        if self.nodes[i].info.replace(info).is_none() {
            self.live_nodes += 1;
        }
        self.node_gen += 1;
        self.order_dirty = true;
        self.generation += 1;
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(&i) = self.names.get(name) {
            if self.nodes[i].info.take().is_some() {
                self.live_nodes -= 1;
                self.node_gen += 1;
                self.order_dirty = true;
            }
            self.drop_slot_if_empty(i);
        }
    }

    /// Nodes in kube-scheduler's node-tree order: zones (region and zone) interleaved, so that a
    /// search that stops early still covers every zone.
    pub fn node_order(&mut self) -> &[usize] {
        if self.order_dirty {
            let mut zones: BTreeMap<&str, Vec<(&str, usize)>> = BTreeMap::new();
            for (i, s) in self.nodes.iter().enumerate() {
                if let Some(n) = &s.info {
                    zones.entry(n.zone_key.as_str()).or_default().push((n.name.as_str(), i));
                }
            }
            let mut lists: Vec<Vec<usize>> = zones
                .into_values()
                .map(|mut v| {
                    v.sort();
                    v.into_iter().map(|(_, i)| i).rev().collect()
                })
                .collect();
            let mut order = Vec::new();
            while lists.iter().any(|l| !l.is_empty()) {
                for l in lists.iter_mut() {
                    if let Some(i) = l.pop() {
                        order.push(i);
                    }
                }
            }
            self.order = order;
            self.order_dirty = false;
        }
        &self.order
    }

    /// The nodes a tenant may use, in node-tree order (cached until nodes or its policy change).
    pub fn visible_nodes(&mut self, tenant: &str) -> Vec<usize> {
        let gen = self.node_gen;
        if let Some((g, v)) = self.tenants.get(tenant).and_then(|t| t.visible.as_ref()) {
            if *g == gen {
                return v.clone();
            }
        }
        self.node_order();
        let default_policy = TenantPolicy::default();
        let policy = self.tenants.get(tenant).map(|t| &t.policy).unwrap_or(&default_policy);
        let v: Vec<usize> = self.order.iter().copied().filter(|&i| policy.admits(tenant, self.node(i))).collect();
        if let Some(t) = self.tenants.get_mut(tenant) {
            t.visible = Some((gen, v.clone()));
        }
        v
    }

    /// Sets a tenant's provider rules.
    pub fn set_policy(&mut self, tenant: &str, policy: TenantPolicy) {
        let t = self.tenants.entry(tenant.to_string()).or_default();
        if t.policy != policy {
            t.policy = policy;
            t.visible = None;
            self.generation += 1;
        }
    }

    pub fn remove_policy(&mut self, tenant: &str) {
        self.set_policy(tenant, TenantPolicy::default());
    }

    fn add_pod(&mut self, p: PlacedPod) -> PodId {
        let id = match self.free_pods.pop() {
            Some(i) => i,
            None => {
                self.pods.push(None);
                self.pods.len() - 1
            }
        };
        let slot = &mut self.nodes[p.node];
        slot.requested.add(&p.info.requests);
        slot.nonzero_cpu = slot.nonzero_cpu.saturating_add(p.info.nonzero_cpu);
        slot.nonzero_memory = slot.nonzero_memory.saturating_add(p.info.nonzero_memory);
        slot.ports.extend(p.info.host_ports.iter().cloned());
        slot.pods.push(id);
        if let Some(t) = &p.tenant {
            let ts = self.tenants.entry(t.clone()).or_default();
            ts.pods.insert(id);
            if !p.info.affinity.is_empty() {
                ts.with_affinity.insert(id);
            }
            ts.used.add(&p.info.requests);
            ts.pod_count += 1;
            if let Some(u) = &p.tenant_uid {
                self.by_tenant_uid.insert((t.clone(), u.clone()), id);
            }
        }
        match &p.super_uid {
            Some(u) => {
                self.by_super_uid.insert(u.clone(), id);
            }
            None => self.reserved += 1,
        }
        self.pods[id] = Some(p);
        id
    }

    fn remove_pod(&mut self, id: PodId) -> PlacedPod {
        let p = self.pods[id].take().expect("live pod id");
        self.free_pods.push(id);
        let slot = &mut self.nodes[p.node];
        slot.requested.sub(&p.info.requests);
        slot.nonzero_cpu = slot.nonzero_cpu.saturating_sub(p.info.nonzero_cpu);
        slot.nonzero_memory = slot.nonzero_memory.saturating_sub(p.info.nonzero_memory);
        for hp in &p.info.host_ports {
            if let Some(k) = slot.ports.iter().position(|x| x == hp) {
                slot.ports.swap_remove(k);
            }
        }
        if let Some(k) = slot.pods.iter().position(|&x| x == id) {
            slot.pods.swap_remove(k);
        }
        if let Some(t) = &p.tenant {
            if let Some(ts) = self.tenants.get_mut(t) {
                ts.pods.remove(&id);
                ts.with_affinity.remove(&id);
                ts.used.sub(&p.info.requests);
                ts.pod_count -= 1;
            }
            if let Some(u) = &p.tenant_uid {
                let key = (t.clone(), u.clone());
                if self.by_tenant_uid.get(&key) == Some(&id) {
                    self.by_tenant_uid.remove(&key);
                }
            }
        }
        match &p.super_uid {
            Some(u) => {
                self.by_super_uid.remove(u);
            }
            None => self.reserved -= 1,
        }
        let node = p.node;
        self.drop_slot_if_empty(node);
        p
    }

    /// Adds or updates a super-cluster pod. Pods without a node, or finished (Succeeded,
    /// Failed), are not on a node for the scheduler (its informer excludes terminal pods).
    pub fn upsert_pod(&mut self, pod: &Pod) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
        let (Some(node), false) = (node, phase == "Succeeded" || phase == "Failed") else {
            self.remove_super_pod(&uid);
            return;
        };
        let tenant = pod.metadata.labels.as_ref().and_then(|l| l.get(TENANT_LABEL)).cloned();
        let ann = pod.metadata.annotations.as_ref();
        let tenant_uid = tenant.as_ref().and_then(|_| ann.and_then(|a| a.get(UID_ANNOTATION)).cloned());
        let ns = tenant.as_ref().and_then(|_| ann.and_then(|a| a.get(NAMESPACE_ANNOTATION)).cloned());
        // A pod whose selectors do not parse still takes its resources; only its terms go.
        let info = PodInfo::from_pod(pod, ns.as_deref()).unwrap_or_else(|_| {
            let mut stripped = pod.clone();
            if let Some(s) = stripped.spec.as_mut() {
                s.affinity = None;
                s.topology_spread_constraints = None;
            }
            PodInfo::from_pod(&stripped, ns.as_deref()).unwrap_or_default()
        });
        let mut freed = false;
        if let Some(&old) = self.by_super_uid.get(&uid) {
            let o = self.remove_pod(old);
            freed = o.node != self.names.get(&node).copied().unwrap_or(usize::MAX) || o.info.requests != info.requests;
        }
        if let (Some(t), Some(u)) = (&tenant, &tenant_uid) {
            if let Some(&r) = self.by_tenant_uid.get(&(t.clone(), u.clone())) {
                if self.pod(r).super_uid.is_none() {
                    let o = self.remove_pod(r);
                    freed |= self.names.get(&node) != Some(&o.node);
                }
            }
        }
        let idx = self.slot_for(&node);
        self.add_pod(PlacedPod { info, tenant, tenant_uid, node: idx, super_uid: Some(uid), expires: None });
        if freed {
            self.generation += 1;
        }
    }

    pub fn remove_super_pod(&mut self, uid: &str) {
        if let Some(&id) = self.by_super_uid.get(uid) {
            self.remove_pod(id);
            self.generation += 1;
        }
    }

    /// The node a tenant pod is on or reserved on, if any.
    pub fn placement_of(&self, tenant: &str, uid: &str) -> Option<(usize, bool)> {
        let id = *self.by_tenant_uid.get(&(tenant.to_string(), uid.to_string()))?;
        let p = self.pod(id);
        Some((p.node, p.super_uid.is_none()))
    }

    /// Reserves a tenant pod on a node.
    pub fn reserve(&mut self, tenant: &str, info: PodInfo, node: usize, expires: Instant) -> PodId {
        let uid = info.uid.clone();
        self.add_pod(PlacedPod { info, tenant: Some(tenant.to_string()), tenant_uid: Some(uid), node, super_uid: None, expires: Some(expires) })
    }

    /// Drops a reservation; false when there is none (unknown, or already a super pod).
    pub fn release(&mut self, tenant: &str, uid: &str) -> bool {
        match self.by_tenant_uid.get(&(tenant.to_string(), uid.to_string())) {
            Some(&id) if self.pod(id).super_uid.is_none() => {
                self.remove_pod(id);
                self.generation += 1;
                true
            }
            _ => false,
        }
    }

    /// Drops reservations that lapsed by `now`; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let due: Vec<PodId> = self.pods.iter().enumerate().filter_map(|(i, p)| p.as_ref().filter(|p| p.expires.is_some_and(|e| e <= now)).map(|_| i)).collect();
        for &id in &due {
            self.remove_pod(id);
        }
        if !due.is_empty() {
            self.generation += 1;
        }
        due.len()
    }

    /// When the next reservation lapses.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.pods.iter().flatten().filter_map(|p| p.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn node(name: &str, zone: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}, "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap()
    }

    fn super_pod(uid: &str, node: &str, tenant: Option<(&str, &str)>, cpu: &str) -> Pod {
        let mut labels = json!({"app": "web"});
        let mut ann = json!({});
        if let Some((t, u)) = tenant {
            labels[TENANT_LABEL] = json!(t);
            ann[UID_ANNOTATION] = json!(u);
            ann[NAMESPACE_ANNOTATION] = json!("prod");
        }
        serde_json::from_value(json!({"metadata": {"name": uid, "namespace": "t-abc-prod", "uid": uid, "labels": labels, "annotations": ann},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
        .unwrap()
    }

    #[test]
    fn node_order_interleaves_zones() {
        let mut s = ClusterState::default();
        for (n, z) in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c"), ("c2", "c")] {
            s.upsert_node(&node(n, z));
        }
        let names: Vec<String> = s.node_order().to_vec().iter().map(|&i| s.node(i).name.clone()).collect();
        assert_eq!(names, vec!["a1", "b1", "c1", "a2", "c2", "a3"]);
    }

    #[test]
    fn a_super_pod_replaces_its_reservation_and_totals_stay_exact() {
        let mut s = ClusterState::default();
        s.upsert_node(&node("n1", "a"));
        s.upsert_node(&node("n2", "a"));
        let n1 = s.node_index("n1").unwrap();
        let info = PodInfo { uid: "tu1".into(), requests: Resources { milli_cpu: 1000, ..Default::default() }, ..Default::default() };
        s.reserve("acme", info, n1, Instant::now() + Duration::from_secs(60));
        assert_eq!(s.nodes[n1].requested.milli_cpu, 1000);
        assert_eq!(s.tenant("acme").unwrap().used.milli_cpu, 1000);
        s.upsert_pod(&super_pod("su1", "n1", Some(("acme", "tu1")), "1"));
        assert_eq!(s.nodes[n1].requested.milli_cpu, 1000, "the super pod replaced the reservation");
        assert_eq!(s.tenant("acme").unwrap().pod_count, 1);
        assert_eq!(s.counts(), (2, 1, 0));
        assert!(!s.release("acme", "tu1"), "a placed pod is not released");
        s.upsert_pod(&super_pod("other", "n2", None, "500m"));
        assert_eq!(s.nodes[s.node_index("n2").unwrap()].requested.milli_cpu, 500);
        let mut done = super_pod("su1", "n1", Some(("acme", "tu1")), "1");
        done.status = Some(serde_json::from_value(json!({"phase": "Succeeded"})).unwrap());
        s.upsert_pod(&done);
        assert_eq!(s.nodes[n1].requested.milli_cpu, 0);
        assert_eq!(s.tenant("acme").unwrap().pod_count, 0);
    }

    #[test]
    fn reservations_expire_and_release() {
        let mut s = ClusterState::default();
        s.upsert_node(&node("n1", "a"));
        let n1 = s.node_index("n1").unwrap();
        let now = Instant::now();
        for (u, secs) in [("a", 10), ("b", 20)] {
            s.reserve("t", PodInfo { uid: u.into(), ..Default::default() }, n1, now + Duration::from_secs(secs));
        }
        assert_eq!(s.next_expiry(), Some(now + Duration::from_secs(10)));
        assert_eq!(s.expire(now + Duration::from_secs(15)), 1);
        assert!(s.release("t", "b"));
        assert!(!s.release("t", "b"));
        assert_eq!(s.nodes[n1].pods.len(), 0);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_the_node() {
        let mut s = ClusterState::default();
        s.upsert_pod(&super_pod("p", "later", None, "2"));
        assert!(s.node_index("later").is_none());
        s.upsert_node(&node("later", "a"));
        let i = s.node_index("later").unwrap();
        assert_eq!(s.nodes[i].requested.milli_cpu, 2000);
        s.remove_node("later");
        s.remove_super_pod("p");
        assert!(s.node_names().is_empty());
    }
}
