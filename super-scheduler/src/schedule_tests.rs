//! Scheduling decisions end to end through the core: the issue's acceptance cases, upstream's
//! FailedScheduling wording, reservations, spreading, affinity and scoring.

use std::time::Instant;

use serde_json::{json, Value};

use crate::labels::TENANT_LABEL;
use crate::node::VirtualNodePolicy;
use crate::pod::PodInfo;
use crate::policy::TenantPolicy;
use crate::schedule::{num_feasible_nodes_to_find, Outcome, PodRequest, Scheduler, SchedulerConfig};
use crate::state::ClusterState;

fn node(name: &str, zone: &str, itype: &str, cpu: &str, extra_labels: Value, taints: Value, extra_alloc: Value) -> k8s_openapi::api::core::v1::Node {
    let mut labels = json!({"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "r1",
                            "node.kubernetes.io/instance-type": itype, "kubernetes.io/os": "linux"});
    for (k, v) in extra_labels.as_object().unwrap() {
        labels[k] = v.clone();
    }
    let mut alloc = json!({"cpu": cpu, "memory": "16Gi", "pods": "110"});
    for (k, v) in extra_alloc.as_object().unwrap() {
        alloc[k] = v.clone();
    }
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints},
        "status": {"capacity": alloc, "allocatable": alloc, "conditions": [{"type": "Ready", "status": "True"}]}}))
    .unwrap()
}

/// Six nodes: four general ones over zones a and b (two instance types, one with a custom
/// label), two tainted GPU nodes in zone c.
fn cluster() -> Scheduler {
    let mut st = ClusterState::new(VirtualNodePolicy::with(&[], &["kplex.test/".into()]));
    st.upsert_node(&node("gen-a1", "a", "m5.large", "4", json!({"kplex.test/disk": "ssd"}), json!([]), json!({})));
    st.upsert_node(&node("gen-a2", "a", "m5.xlarge", "4", json!({}), json!([]), json!({})));
    st.upsert_node(&node("gen-b1", "b", "m5.large", "4", json!({"hidden.corp/rack": "r1"}), json!([]), json!({})));
    st.upsert_node(&node("gen-b2", "b", "m5.xlarge", "4", json!({}), json!([]), json!({})));
    let gpu_taint = json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
    st.upsert_node(&node("gpu-c1", "c", "p3.2xlarge", "8", json!({}), gpu_taint.clone(), json!({"nvidia.com/gpu": "4"})));
    st.upsert_node(&node("gpu-c2", "c", "p3.2xlarge", "8", json!({}), gpu_taint, json!({"nvidia.com/gpu": "4"})));
    Scheduler::new(st, SchedulerConfig::default())
}

fn pod(uid: &str, ns: &str, labels: Value, spec: Value) -> PodInfo {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]);
    }
    let p = json!({"metadata": {"name": uid, "namespace": ns, "uid": uid, "labels": labels}, "spec": spec});
    PodInfo::from_pod(&serde_json::from_value(p).unwrap(), None).unwrap()
}

fn cpu(c: &str) -> Value {
    json!([{"name": "c", "resources": {"requests": {"cpu": c}}}])
}

fn req(tenant: &str, pod: PodInfo) -> PodRequest {
    PodRequest { tenant: tenant.into(), pod, namespaces: Vec::new(), default_spread_selector: None }
}

fn place(s: &mut Scheduler, tenant: &str, p: PodInfo) -> String {
    match s.schedule(&req(tenant, p), Instant::now()) {
        Outcome::Placed { node, .. } => node,
        o => panic!("not placed: {o:?}"),
    }
}

fn refuse(s: &mut Scheduler, tenant: &str, p: PodInfo) -> String {
    match s.schedule(&req(tenant, p), Instant::now()) {
        Outcome::Unschedulable { message, .. } => message,
        o => panic!("placed: {o:?}"),
    }
}

#[test]
fn node_selectors_on_zone_instance_type_and_custom_label() {
    let mut s = cluster();
    for i in 0..6 {
        let n = place(&mut s, "t", pod(&format!("z{i}"), "ns", json!({}), json!({"nodeSelector": {"topology.kubernetes.io/zone": "b"}})));
        assert!(n.starts_with("gen-b"), "{n}");
        let n = place(&mut s, "t", pod(&format!("i{i}"), "ns", json!({}), json!({"nodeSelector": {"node.kubernetes.io/instance-type": "m5.xlarge"}})));
        assert!(n == "gen-a2" || n == "gen-b2", "{n}");
        let n = place(&mut s, "t", pod(&format!("c{i}"), "ns", json!({}), json!({"nodeSelector": {"kplex.test/disk": "ssd"}})));
        assert_eq!(n, "gen-a1");
    }
    // A label the tenant cannot see matches nothing, even though the real node has it.
    let msg = refuse(&mut s, "t", pod("hidden", "ns", json!({}), json!({"nodeSelector": {"hidden.corp/rack": "r1"}})));
    assert_eq!(
        msg,
        "0/6 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 4 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
    );
}

#[test]
fn gpu_pods_need_the_toleration() {
    let mut s = cluster();
    let gpu = json!([{"name": "c", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}]);
    let tol = json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    for i in 0..8 {
        let n = place(&mut s, "t", pod(&format!("g{i}"), "ns", json!({}), json!({"containers": gpu, "tolerations": tol})));
        assert!(n.starts_with("gpu-"), "{n}");
    }
    let msg = refuse(&mut s, "t", pod("g9", "ns", json!({}), json!({"containers": gpu, "tolerations": tol})));
    assert_eq!(
        msg,
        "0/6 nodes are available: 6 Insufficient nvidia.com/gpu. \
         preemption: 0/6 nodes are available: 2 No preemption victims found for incoming pod, 4 Preemption is not helpful for scheduling."
    );
    let msg = refuse(&mut s, "t", pod("nogpu", "ns", json!({}), json!({"containers": gpu})));
    assert!(msg.starts_with("0/6 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 4 Insufficient nvidia.com/gpu."), "{msg}");
    for i in 0..10 {
        let n = place(&mut s, "t", pod(&format!("plain{i}"), "ns", json!({}), json!({})));
        assert!(n.starts_with("gen-"), "a pod without the toleration never lands in the GPU pool: {n}");
    }
}

#[test]
fn required_anti_affinity_spreads_a_tenants_replicas_only_against_its_own_pods() {
    let mut s = cluster();
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    // Tenant "other" fills every general node with app=web pods first.
    for n in ["gen-a1", "gen-a2", "gen-b1", "gen-b2"] {
        place(&mut s, "other", pod(&format!("o-{n}"), "ns", json!({"app": "web"}), json!({"nodeName": n})));
    }
    let mut nodes: Vec<String> = (0..4).map(|i| place(&mut s, "t", pod(&format!("w{i}"), "ns", json!({"app": "web"}), anti.clone()))).collect();
    nodes.sort();
    assert_eq!(nodes, vec!["gen-a1", "gen-a2", "gen-b1", "gen-b2"], "one replica per node, other tenants' pods ignored");
    let msg = refuse(&mut s, "t", pod("w4", "ns", json!({"app": "web"}), anti.clone()));
    assert_eq!(
        msg,
        "0/6 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 4 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/6 nodes are available: 2 Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod."
    );
    // Another namespace of the same tenant is not selected by the term (its own namespace only).
    place(&mut s, "t", pod("dev", "dev", json!({"app": "web"}), anti));
}

#[test]
fn quota_refuses_the_third_pod_and_leaves_other_tenants_alone() {
    let mut s = cluster();
    s.state.set_policy("small", TenantPolicy::from_virtual_cluster(&json!({"spec": {"quota": {"cpu": "2"}}})).unwrap());
    place(&mut s, "small", pod("a", "ns", json!({}), json!({"containers": cpu("1")})));
    place(&mut s, "small", pod("b", "ns", json!({}), json!({"containers": cpu("1")})));
    let o = s.schedule(&req("small", pod("c", "ns", json!({}), json!({"containers": cpu("1")}))), Instant::now());
    assert_eq!(
        o,
        Outcome::Unschedulable {
            reason: "Unschedulable",
            message: "0/6 nodes are available: exceeded quota of virtual cluster small, requested: cpu=1, used: cpu=2, limited: cpu=2. \
                      preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
                .into(),
            quota: true
        }
    );
    for i in 0..4 {
        place(&mut s, "big", pod(&format!("b{i}"), "ns", json!({}), json!({"containers": cpu("1")})));
    }
    assert!(s.release("small", "a"));
    place(&mut s, "small", pod("c", "ns", json!({}), json!({"containers": cpu("1")})));
}

#[test]
fn dedicated_pools_take_only_their_tenants_pods() {
    let mut s = cluster();
    s.state.upsert_node(&node("ded-1", "a", "m5.large", "4", json!({TENANT_LABEL: "vip"}), json!([]), json!({})));
    for i in 0..20 {
        let n = place(&mut s, "t", pod(&format!("p{i}"), "ns", json!({}), json!({})));
        assert_ne!(n, "ded-1");
    }
    let msg = refuse(&mut s, "t", pod("pin", "ns", json!({}), json!({"nodeSelector": {"kubernetes.io/hostname": "ded-1"}})));
    assert!(msg.starts_with("0/6 nodes are available:"), "the pool is not even counted for others: {msg}");
    s.state.set_policy("vip", TenantPolicy { dedicated_pool: true, ..Default::default() });
    for i in 0..5 {
        assert_eq!(place(&mut s, "vip", pod(&format!("v{i}"), "ns", json!({}), json!({}))), "ded-1");
    }
    s.state.set_policy("vip", TenantPolicy::default());
    let n = place(&mut s, "vip", pod("free", "ns", json!({}), json!({"nodeSelector": {"kubernetes.io/hostname": "ded-1"}})));
    assert_eq!(n, "ded-1");
}

#[test]
fn the_issue_example_message() {
    let mut s = cluster();
    // Fill zone a's two nodes' cpu; ask for zone a or c only, without the GPU toleration.
    place(&mut s, "t", pod("fill1", "ns", json!({}), json!({"nodeName": "gen-a1", "containers": cpu("3500m")})));
    place(&mut s, "t", pod("fill2", "ns", json!({}), json!({"nodeName": "gen-a2", "containers": cpu("3500m")})));
    let sel = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": ["b", "c"]}]}]}}}, "containers": cpu("1")});
    assert_eq!(
        refuse(&mut s, "t", pod("x", "ns", json!({}), sel)),
        "0/6 nodes are available: 2 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector, \
         2 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/6 nodes are available: 2 No preemption victims found for incoming pod, \
         4 Preemption is not helpful for scheduling."
    );
    let never = json!({"preemptionPolicy": "Never", "nodeSelector": {"topology.kubernetes.io/zone": "a"}, "containers": cpu("1"),
                       "tolerations": [{"operator": "Exists"}]});
    assert_eq!(
        refuse(&mut s, "t", pod("y", "ns", json!({}), never)),
        "0/6 nodes are available: 2 Insufficient cpu, 4 node(s) didn't match Pod's node affinity/selector. preemption: not eligible due to preemptionPolicy=Never."
    );
    let pinned = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gone"]}]}]}}}});
    assert_eq!(
        refuse(&mut s, "t", pod("z", "ns", json!({}), pinned)),
        "0/6 nodes are available: 6 node(s) didn't satisfy plugin(s) [NodeAffinity]. preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
    );
    let pinned = json!({"tolerations": [{"operator": "Exists"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gen-a1"]}]}]}}}, "containers": cpu("1")});
    assert_eq!(
        refuse(&mut s, "t", pod("w", "ns", json!({}), pinned)),
        "0/6 nodes are available: 1 Insufficient cpu, 5 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
         preemption: 0/6 nodes are available: 1 No preemption victims found for incoming pod, 5 Preemption is not helpful for scheduling."
    );
    let empty = Scheduler::new(ClusterState::default(), SchedulerConfig::default()).schedule(&req("t", pod("e", "ns", json!({}), json!({}))), Instant::now());
    assert!(matches!(empty, Outcome::Unschedulable { ref message, .. } if message == "no nodes available to schedule pods"));
}

#[test]
fn reservations_never_overcommit_and_repeat_requests_are_idempotent() {
    let mut s = cluster();
    let big = || json!({"nodeSelector": {"topology.kubernetes.io/zone": "a"}, "containers": cpu("3")});
    let a = place(&mut s, "t", pod("r1", "ns", json!({}), big()));
    let b = place(&mut s, "t", pod("r2", "ns", json!({}), big()));
    assert_ne!(a, b);
    refuse(&mut s, "t", pod("r3", "ns", json!({}), big()));
    assert_eq!(s.schedule(&req("t", pod("r1", "ns", json!({}), big())), Instant::now()), Outcome::Placed { node: a, existing: true });
}

#[test]
fn hard_topology_spread_keeps_zones_within_max_skew() {
    let mut s = cluster();
    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "db"}}}]});
    let a = place(&mut s, "t", pod("d0", "ns", json!({"app": "db"}), spread.clone()));
    let b = place(&mut s, "t", pod("d1", "ns", json!({"app": "db"}), spread.clone()));
    assert_ne!(a[..5], b[..5], "the second replica goes to the other zone");
    // The GPU zone is a domain too (node affinity does not exclude it; taints are ignored by
    // default) and the pod cannot go there, so with nothing in it zones a and b are full.
    assert_eq!(
        refuse(&mut s, "t", pod("d2", "ns", json!({"app": "db"}), spread.clone())),
        "0/6 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 4 node(s) didn't match pod topology spread constraints. \
         preemption: 0/6 nodes are available: 2 Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod."
    );
    // Other tenants' pods and other namespaces do not count.
    place(&mut s, "u", pod("d0", "ns", json!({"app": "db"}), spread.clone()));
    place(&mut s, "t", pod("e0", "other", json!({"app": "db"}), spread.clone()));
    // With the taint honoured, zone c is no domain and the skew is counted over a and b.
    let honour = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "nodeTaintsPolicy": "Honor", "labelSelector": {"matchLabels": {"app": "db"}}}]});
    place(&mut s, "t", pod("d3", "ns", json!({"app": "db"}), honour));
}

#[test]
fn pod_affinity_follows_the_tenants_pods_and_admits_the_first_one() {
    let mut s = cluster();
    let aff = json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}});
    let first = place(&mut s, "t", pod("c0", "ns", json!({"app": "cache"}), aff.clone()));
    for i in 1..5 {
        let n = place(&mut s, "t", pod(&format!("c{i}"), "ns", json!({"app": "cache"}), aff.clone()));
        assert_eq!(n[..5], first[..5], "same zone as the first");
    }
    // A pod that does not match its own term cannot be first.
    let msg = refuse(&mut s, "u", pod("lonely", "ns", json!({"app": "x"}), aff));
    assert!(msg.contains("4 node(s) didn't match pod affinity rules"), "{msg}");
}

#[test]
fn scores_prefer_free_nodes_preferred_affinity_and_untainted_nodes() {
    let mut s = cluster();
    place(&mut s, "t", pod("busy", "ns", json!({}), json!({"nodeName": "gen-a1", "containers": cpu("3")})));
    for i in 0..3 {
        assert_ne!(place(&mut s, "t", pod(&format!("f{i}"), "ns", json!({}), json!({"containers": cpu("500m")}))), "gen-a1");
    }
    let pref = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge"]}]}}]}}});
    for i in 0..3 {
        let n = place(&mut s, "t", pod(&format!("p{i}"), "ns", json!({}), pref.clone()));
        assert!(n == "gen-a2" || n == "gen-b2", "{n}");
    }
    s.state.upsert_node(&node("soft", "a", "m5.large", "64", json!({}), json!([{"key": "spot", "effect": "PreferNoSchedule"}]), json!({})));
    for i in 0..3 {
        assert_ne!(place(&mut s, "t", pod(&format!("s{i}"), "ns", json!({}), json!({}))), "soft");
    }
}

#[test]
fn feasible_node_search_stops_like_upstream() {
    assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
    assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
    assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
    assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
    assert_eq!(num_feasible_nodes_to_find(0, 150), 100);
    assert_eq!(num_feasible_nodes_to_find(30, 1000), 300);
}
