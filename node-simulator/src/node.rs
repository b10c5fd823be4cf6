//! One simulated node: the Node object a kubelet registers, the status it reports (conditions
//! with heartbeats, capacity, nodeInfo), its Lease in kube-node-lease, and what upstream's node
//! lifecycle controller shows when the node is NotReady or lost (conditions Unknown, the
//! not-ready / unreachable taints).

use std::collections::HashSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

use crate::hooks::NodeMode;
use crate::layout::NodePlan;
use crate::net::{Cidr, IpPool};
use crate::pod::{Requests, Step};
use crate::quantity;
use crate::util::{self, micro_time, time, Ts};

/// The kubelet version the nodes report.
pub const KUBELET_VERSION: &str = "v1.33.1";
/// Annotation naming the simulator (its `--name-prefix`) that owns a node.
pub const OWNER_ANNOTATION: &str = "sim.kplex.io/simulator";
/// Taint keys the node lifecycle controller manages.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

const COND_TYPES: [&str; 4] = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];

/// A reference to a simulated pod: slot and generation (slots are reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PodRef {
    pub slot: u32,
    pub gen: u32,
}

/// A node condition as last reported: status ("True", "False", "Unknown") and since when.
#[derive(Debug, Clone)]
pub struct NodeCond {
    pub status: &'static str,
    pub since: Ts,
}

/// A simulated node.
#[derive(Debug)]
pub struct SimNode {
    pub plan: NodePlan,
    pub uid: String,
    pub cidr: Cidr,
    pub ip: Ipv4Addr,
    pub ips: IpPool,
    pub mode: NodeMode,
    pub conds: [NodeCond; 4],
    /// When the kubelet last posted its status (kept in the conditions once it stops).
    pub heartbeat: Ts,
    /// The full status (capacity, nodeInfo, addresses) still has to be written.
    pub full_status_due: bool,
    /// The node object was deleted: the kubelet stops (it does not register again until restarted).
    pub deleted: bool,
    pub allocatable: Requests,
    pub max_pods: u32,
    pub used: Requests,
    pub pods_used: u32,
    pub pods: HashSet<PodRef>,
    /// Pod steps held back while the kubelet is down or the network is not ready.
    pub parked: Vec<(PodRef, Step)>,
}

impl SimNode {
    pub fn new(plan: NodePlan, uid: String, cidr: Cidr, index: u64, now: Ts) -> SimNode {
        let (_, alloc) = plan.resources();
        let q = |k: &str| alloc[k].as_str().and_then(quantity::parse_millis).unwrap_or(0);
        let allocatable = Requests { cpu_m: q("cpu"), memory_m: q("memory"), gpus_m: q("nvidia.com/gpu") };
        let max_pods = plan.pool.pods;
        SimNode {
            plan,
            uid,
            cidr,
            ip: crate::net::node_ip(index),
            ips: IpPool::new(cidr),
            mode: NodeMode::Ready,
            conds: COND_TYPES.map(|t| NodeCond { status: if t == "Ready" { "True" } else { "False" }, since: now }),
            heartbeat: now,
            full_status_due: true,
            deleted: false,
            allocatable,
            max_pods,
            used: Requests::default(),
            pods_used: 0,
            pods: HashSet::new(),
            parked: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.plan.name
    }

    /// Takes the conditions' transition times from an existing node (adoption after a restart).
    pub fn adopt_conditions(&mut self, node: &Node) {
        let Some(conds) = node.status.as_ref().and_then(|s| s.conditions.as_ref()) else { return };
        for (i, t) in COND_TYPES.iter().enumerate() {
            if let Some(c) = conds.iter().find(|c| c.type_ == *t) {
                if c.status == self.conds[i].status {
                    if let Some(since) = c.last_transition_time.as_ref() {
                        self.conds[i].since = util::ts(since);
                    }
                }
            }
        }
    }

    /// The conditions' statuses for a mode.
    fn wanted(mode: NodeMode) -> [&'static str; 4] {
        match mode {
            NodeMode::Ready => ["False", "False", "False", "True"],
            NodeMode::NotReady => ["False", "False", "False", "False"],
            NodeMode::Lost => ["Unknown"; 4],
        }
    }

    /// Switches mode, updating transition times; true if anything changed.
    pub fn set_mode(&mut self, mode: NodeMode, now: Ts) -> bool {
        if mode == self.mode {
            return false;
        }
        self.mode = mode;
        for (c, s) in self.conds.iter_mut().zip(SimNode::wanted(mode)) {
            if c.status != s {
                *c = NodeCond { status: s, since: now };
            }
        }
        true
    }

    /// The conditions as the kubelet posts them (or, when lost, as the node lifecycle
    /// controller rewrites them: Unknown, the last heartbeat kept).
    pub fn conditions(&self, now: Ts) -> Vec<Value> {
        let lost = self.mode == NodeMode::Lost;
        let beat = if lost { self.heartbeat } else { now };
        COND_TYPES
            .iter()
            .zip(&self.conds)
            .map(|(t, c)| {
                let (reason, message) = if lost {
                    ("NodeStatusUnknown", "Kubelet stopped posting node status.")
                } else {
                    match (*t, c.status) {
                        ("MemoryPressure", _) => ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                        ("DiskPressure", _) => ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                        ("PIDPressure", _) => ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                        (_, "True") => ("KubeletReady", "kubelet is posting ready status"),
                        _ => (
                            "KubeletNotReady",
                            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
                        ),
                    }
                };
                json!({"type": t, "status": c.status, "lastHeartbeatTime": time(beat), "lastTransitionTime": time(c.since),
                       "reason": reason, "message": message})
            })
            .collect()
    }

    /// The whole status a kubelet reports at registration and after a restart.
    pub fn full_status(&self, now: Ts) -> Value {
        let p = &self.plan.pool;
        let (capacity, allocatable) = self.plan.resources();
        let name = self.name();
        let kernel = format!("6.1.0-37-cloud-{}", p.arch);
        json!({
            "addresses": [{"type": "InternalIP", "address": self.ip.to_string()}, {"type": "Hostname", "address": name}],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": self.conditions(now),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "features": {"supplementalGroupsPolicy": true},
            "nodeInfo": {
                "architecture": p.arch,
                "bootID": util::uuid_from(&["boot", name, &self.uid]),
                "containerRuntimeVersion": "containerd://2.0.5",
                "kernelVersion": kernel,
                "kubeProxyVersion": "",
                "kubeletVersion": KUBELET_VERSION,
                "machineID": util::hex64(&["machine", name])[..32].to_string(),
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": util::uuid_from(&["system", name]),
            },
            "runtimeHandlers": [
                {"name": "", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
                {"name": "runc", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": true}},
            ],
        })
    }

    /// The strategic merge patch of nodes/status: conditions (merged by type, so conditions
    /// other components own survive), plus everything else when a full report is due.
    pub fn status_patch(&self, now: Ts) -> Value {
        let mut st = if self.full_status_due { self.full_status(now) } else { json!({"conditions": self.conditions(now)}) };
        st["$setElementOrder/conditions"] = json!(COND_TYPES.iter().map(|t| json!({"type": t})).collect::<Vec<_>>());
        json!({"status": st})
    }

    /// The Node object the kubelet registers.
    pub fn object(&self, prefix: &str, now: Ts) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name(),
                "labels": self.plan.labels(),
                "annotations": {
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                    OWNER_ANNOTATION: prefix,
                },
            },
            "spec": {
                "podCIDR": self.cidr.to_string(),
                "podCIDRs": [self.cidr.to_string()],
                "providerID": format!("kplex-sim://{}/{}", self.plan.zone, self.name()),
                "taints": self.plan.taints(),
            },
            "status": self.full_status(now),
        })
    }

    /// The node's Lease, renewed now.
    pub fn lease(&self, duration_secs: u64, now: Ts) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name(),
                "namespace": "kube-node-lease",
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name(), "uid": self.uid}],
            },
            "spec": {"holderIdentity": self.name(), "leaseDurationSeconds": duration_secs, "renewTime": micro_time(now)},
        })
    }

    /// The lifecycle taints the node should carry in its mode (`timeAdded` now).
    pub fn lifecycle_taints(&self, now: Ts) -> Vec<Value> {
        let key = match self.mode {
            NodeMode::Ready => return vec![],
            NodeMode::NotReady => NOT_READY_TAINT,
            NodeMode::Lost => UNREACHABLE_TAINT,
        };
        ["NoSchedule", "NoExecute"].iter().map(|e| json!({"key": key, "effect": e, "timeAdded": time(now)})).collect()
    }

    /// Whether the kubelet on this node does anything at all.
    pub fn kubelet_up(&self) -> bool {
        self.mode != NodeMode::Lost && !self.deleted
    }

    /// Kubelet admission: whether a pod with these requests fits, else the kubelet's rejection
    /// (reason, message) as `lifecycle/predicate.go` words it.
    pub fn admit(&self, r: &Requests) -> Result<(), (String, String)> {
        let reject = |res: &str, req: u128, used: u128, cap: u128| {
            Err((format!("OutOf{res}"), format!("Pod was rejected: Node didn't have enough resource: {res}, requested: {req}, used: {used}, capacity: {cap}")))
        };
        if self.pods_used + 1 > self.max_pods {
            return reject("pods", 1, self.pods_used as u128, self.max_pods as u128);
        }
        if r.cpu_m > 0 && self.used.cpu_m + r.cpu_m > self.allocatable.cpu_m {
            return reject("cpu", r.cpu_m, self.used.cpu_m, self.allocatable.cpu_m);
        }
        let bytes = |m: u128| m / 1000;
        if r.memory_m > 0 && self.used.memory_m + r.memory_m > self.allocatable.memory_m {
            return reject("memory", bytes(r.memory_m), bytes(self.used.memory_m), bytes(self.allocatable.memory_m));
        }
        if r.gpus_m > 0 && self.used.gpus_m + r.gpus_m > self.allocatable.gpus_m {
            return reject("nvidia.com/gpu", bytes(r.gpus_m), bytes(self.used.gpus_m), bytes(self.allocatable.gpus_m));
        }
        Ok(())
    }

    pub fn take(&mut self, r: &Requests) {
        self.used = Requests { cpu_m: self.used.cpu_m + r.cpu_m, memory_m: self.used.memory_m + r.memory_m, gpus_m: self.used.gpus_m + r.gpus_m };
        self.pods_used += 1;
    }

    pub fn give_back(&mut self, r: &Requests) {
        self.used = Requests {
            cpu_m: self.used.cpu_m.saturating_sub(r.cpu_m),
            memory_m: self.used.memory_m.saturating_sub(r.memory_m),
            gpus_m: self.used.gpus_m.saturating_sub(r.gpus_m),
        };
        self.pods_used = self.pods_used.saturating_sub(1);
    }
}

/// Replaces the lifecycle taints (not-ready / unreachable) in a node's taint list with `wanted`;
/// None when nothing changes.
pub fn merge_taints(current: &[Value], wanted: &[Value]) -> Option<Vec<Value>> {
    let lifecycle = |t: &Value| t["key"] == NOT_READY_TAINT || t["key"] == UNREACHABLE_TAINT;
    let kept: Vec<Value> = current.iter().filter(|t| !lifecycle(t)).cloned().collect();
    let have: Vec<(&Value, &Value)> = current.iter().filter(|t| lifecycle(t)).map(|t| (&t["key"], &t["effect"])).collect();
    let want: Vec<(&Value, &Value)> = wanted.iter().map(|t| (&t["key"], &t["effect"])).collect();
    if have.len() == want.len() && want.iter().all(|w| have.contains(w)) {
        return None;
    }
    Some(kept.into_iter().chain(wanted.iter().cloned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::default_pools;

    fn node() -> SimNode {
        let plan = default_pools(3).plan("sim", Some(3)).unwrap().remove(0);
        SimNode::new(plan, "uid-1".into(), Cidr::parse("10.244.0.0/24").unwrap(), 0, util::parse_time("2025-01-01T00:00:00Z").unwrap())
    }

    #[test]
    fn a_lost_node_shows_what_the_node_lifecycle_controller_writes() {
        let mut n = node();
        let t0 = n.heartbeat;
        let later = t0 + chrono::Duration::seconds(60);
        assert!(n.set_mode(NodeMode::Lost, later));
        assert!(!n.set_mode(NodeMode::Lost, later));
        let conds = n.conditions(later + chrono::Duration::seconds(5));
        assert_eq!(conds.len(), 4);
        for c in &conds {
            assert_eq!(c["status"], "Unknown");
            assert_eq!(c["reason"], "NodeStatusUnknown");
            assert_eq!(c["message"], "Kubelet stopped posting node status.");
            assert_eq!(c["lastHeartbeatTime"], "2025-01-01T00:00:00Z", "the last heartbeat is kept");
            assert_eq!(c["lastTransitionTime"], "2025-01-01T00:01:00Z");
        }
        let taints = n.lifecycle_taints(later);
        assert_eq!(taints.len(), 2);
        assert!(taints.iter().all(|t| t["key"] == UNREACHABLE_TAINT && t["timeAdded"] == "2025-01-01T00:01:00Z"));
        n.set_mode(NodeMode::NotReady, later);
        let ready = &n.conditions(later)[3];
        assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("KubeletNotReady")));
        assert_eq!(n.conditions(later)[0]["status"], "False");
        assert_eq!(n.lifecycle_taints(later)[0]["key"], NOT_READY_TAINT);
        n.set_mode(NodeMode::Ready, later);
        assert!(n.lifecycle_taints(later).is_empty());
        assert_eq!(n.conditions(later)[3]["reason"], "KubeletReady");
    }

    #[test]
    fn lifecycle_taints_are_merged_with_the_others() {
        let gpu = json!({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"});
        let nr = |e: &str| json!({"key": NOT_READY_TAINT, "effect": e, "timeAdded": "2025-01-01T00:00:00Z"});
        let un = |e: &str| json!({"key": UNREACHABLE_TAINT, "effect": e});
        assert_eq!(merge_taints(std::slice::from_ref(&gpu), &[]), None);
        assert_eq!(merge_taints(std::slice::from_ref(&gpu), &[nr("NoSchedule"), nr("NoExecute")]), Some(vec![gpu.clone(), nr("NoSchedule"), nr("NoExecute")]));
        assert_eq!(merge_taints(&[gpu.clone(), nr("NoSchedule"), nr("NoExecute")], &[nr("NoExecute"), nr("NoSchedule")]), None);
        assert_eq!(merge_taints(&[nr("NoSchedule"), gpu.clone()], &[un("NoSchedule")]), Some(vec![gpu.clone(), un("NoSchedule")]));
        assert_eq!(merge_taints(&[un("NoSchedule"), gpu.clone()], &[]), Some(vec![gpu]));
    }

    #[test]
    fn admission_rejects_what_does_not_fit_with_the_kubelets_words() {
        let mut n = node();
        let big = Requests { cpu_m: 9000, memory_m: 0, gpus_m: 0 };
        let (reason, msg) = n.admit(&big).unwrap_err();
        assert_eq!(reason, "OutOfcpu");
        assert_eq!(msg, "Pod was rejected: Node didn't have enough resource: cpu, requested: 9000, used: 0, capacity: 8000");
        let gpu = Requests { cpu_m: 0, memory_m: 0, gpus_m: 1000 };
        assert_eq!(n.admit(&gpu).unwrap_err().0, "OutOfnvidia.com/gpu");
        let small = Requests { cpu_m: 10, memory_m: 1000, gpus_m: 0 };
        for _ in 0..110 {
            assert!(n.admit(&small).is_ok());
            n.take(&small);
        }
        assert_eq!(n.admit(&Requests::default()).unwrap_err().0, "OutOfpods");
        n.give_back(&small);
        assert!(n.admit(&Requests::default()).is_ok());
        assert_eq!(n.used.cpu_m, 109 * 10);
    }

    #[test]
    fn the_node_object_and_lease_look_like_a_kubelets() {
        let n = node();
        let t = n.heartbeat;
        let o = n.object("sim", t);
        assert_eq!(o["spec"]["podCIDR"], "10.244.0.0/24");
        assert_eq!(o["metadata"]["annotations"][OWNER_ANNOTATION], "sim");
        assert_eq!(o["status"]["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(o["status"]["addresses"][0], json!({"type": "InternalIP", "address": "172.16.0.10"}));
        let l = n.lease(40, t);
        assert_eq!(l["spec"]["renewTime"], "2025-01-01T00:00:00.000000Z");
        assert_eq!(l["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        // Later reports carry only the conditions, kept in order.
        let mut n = n;
        n.full_status_due = false;
        let p = n.status_patch(t);
        assert_eq!(p["status"].as_object().unwrap().len(), 2);
        assert_eq!(p["status"]["$setElementOrder/conditions"][3]["type"], "Ready");
    }
}
