//! A randomised checker: thousands of pods with mixed constraints (resources and GPUs, node
//! selectors and affinity with every operator, taints and tolerations, host ports, cordoned and
//! NotReady nodes, pod affinity and anti-affinity, topology spread, quotas, dedicated pools,
//! hidden labels), scheduled over hundreds of nodes while reservations are released, confirmed by
//! super pods, and super pods deleted. Every decision is compared with an independent brute-force
//! evaluation of the same filters (tests/brute): a placement must be feasible, a pod may only be
//! unschedulable when no node fits, and its FailedScheduling message must be the one
//! kube-scheduler would print.
//!
//! Seeded and sized for CI (2 seeds of 2,000 pods over 200 nodes); `KPLEX_CHECKER_NODES`, `KPLEX_CHECKER_PODS` and `KPLEX_CHECKER_SEEDS`
//! make a larger run (e.g. 1000 nodes, 20000 pods, 5 seeds).

mod brute;

use std::time::Instant;

use brute::{expect, BPod, World};
use kplex_super_scheduler::node::{VirtualNodePolicy, DEFAULT_VISIBLE_LABELS};
use kplex_super_scheduler::pod::PodInfo;
use kplex_super_scheduler::policy::TenantPolicy;
use kplex_super_scheduler::state::ClusterState;
use kplex_super_scheduler::{Outcome, PodRequest, Scheduler, SchedulerConfig};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const TENANTS: &[&str] = &["t0", "t1", "t2", "t3", "t4"];
const NAMESPACES: &[(&str, &[(&str, &str)])] = &[("ns0", &[("env", "prod")]), ("ns1", &[("env", "dev")]), ("ns2", &[("env", "prod"), ("team", "x")])];

fn policies() -> Vec<(&'static str, Value)> {
    vec![
        ("t0", json!({"quota": {"cpu": "40", "pods": "300"}})),
        ("t1", json!({"dedicatedNodePool": true})),
        ("t2", json!({"nodeSelector": {"pool": "general"}, "quota": {"memory": "64Gi"}})),
        ("t4", json!({"quota": {"nvidia.com/gpu": "6"}})),
    ]
}

fn pick<'a, T>(rng: &mut StdRng, v: &'a [T]) -> &'a T {
    v.choose(rng).unwrap()
}

fn make_node(rng: &mut StdRng, i: usize) -> Value {
    let name = format!("n{i:04}");
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "topology.kubernetes.io/region": "r1",
        "node.kubernetes.io/instance-type": pick(rng, &["it-small", "it-large"]), "pool": pick(rng, &["general", "batch"]),
        "kplex.test/cores": pick(rng, &["4", "8", "16", "32", "64"])});
    if rng.gen_bool(0.98) {
        labels["topology.kubernetes.io/zone"] = json!(format!("z{}", i % 4));
    }
    if rng.gen_bool(0.6) {
        labels["kplex.test/disk"] = json!(pick(rng, &["ssd", "hdd"]));
    }
    let mut alloc = json!({"cpu": pick(rng, &["2", "4", "8", "16", "3500m"]), "memory": pick(rng, &["4Gi", "8Gi", "16Gi", "64Gi"]),
                           "pods": pick(rng, &["4", "10", "110", "110", "110"])});
    if rng.gen_bool(0.5) {
        alloc["ephemeral-storage"] = json!("20Gi");
    }
    let mut taints = vec![];
    if rng.gen_bool(0.1) {
        taints.push(json!({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}));
        alloc["nvidia.com/gpu"] = json!("4");
        labels["kplex.test/gpu"] = json!("true");
    }
    if rng.gen_bool(0.05) {
        labels["tenancy.kplex.io/tenant"] = json!("t1");
        taints.push(json!({"key": "tenancy.kplex.io/tenant", "value": "t1", "effect": "NoSchedule"}));
    }
    if rng.gen_bool(0.05) {
        taints.push(json!({"key": "team", "value": "x", "effect": "NoExecute"}));
    }
    if rng.gen_bool(0.05) {
        taints.push(json!({"key": "spot", "effect": "PreferNoSchedule"}));
    }
    let conditions = match rng.gen_range(0..100) {
        0..=2 => json!([{"type": "Ready", "status": "False"}]),
        3 => json!([]),
        _ => json!([{"type": "Ready", "status": "True"}]),
    };
    json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints, "unschedulable": rng.gen_bool(0.03)},
           "status": {"allocatable": alloc, "capacity": alloc, "conditions": conditions}})
}

fn container(rng: &mut StdRng, name: &str, gpu: Option<&str>) -> Value {
    let mut req = serde_json::Map::new();
    if let Some(c) = pick(rng, &[None, Some("0"), Some("100m"), Some("250m"), Some("500m"), Some("1"), Some("2"), Some("4")]) {
        req.insert("cpu".into(), json!(c));
    }
    if let Some(m) = pick(rng, &[None, Some("64Mi"), Some("256Mi"), Some("1Gi"), Some("4Gi")]) {
        req.insert("memory".into(), json!(m));
    }
    if rng.gen_bool(0.03) {
        req.insert("ephemeral-storage".into(), json!("1Gi"));
    }
    if let Some(g) = gpu {
        req.insert("nvidia.com/gpu".into(), json!(g));
    }
    json!({"name": name, "image": "x", "resources": {"requests": req}})
}

fn selector(rng: &mut StdRng, own_app: &str) -> Value {
    let app = if rng.gen_bool(0.7) { own_app.to_string() } else { pick(rng, &["a", "b", "c", "d"]).to_string() };
    json!({"matchLabels": {"app": app}})
}

fn term(rng: &mut StdRng, own_app: &str, keys: &[&str]) -> Value {
    let mut t = json!({"labelSelector": selector(rng, own_app), "topologyKey": pick(rng, keys)});
    match rng.gen_range(0..10) {
        0 => t["namespaces"] = json!([pick(rng, &["ns0", "ns1", "ns2"])]),
        1 => t["namespaceSelector"] = json!({"matchLabels": {"env": "prod"}}),
        2 => t["namespaceSelector"] = json!({}),
        _ => {}
    }
    t
}

fn node_term(rng: &mut StdRng, nodes: &[String]) -> Value {
    let mut exprs = vec![];
    for _ in 0..rng.gen_range(1..=2) {
        exprs.push(match rng.gen_range(0..7) {
            0 => json!({"key": "topology.kubernetes.io/zone", "operator": "In", "values": [format!("z{}", rng.gen_range(0..4)), "z9"]}),
            1 => json!({"key": "topology.kubernetes.io/zone", "operator": "NotIn", "values": [format!("z{}", rng.gen_range(0..4))]}),
            2 => json!({"key": "kplex.test/cores", "operator": "Gt", "values": [pick(rng, &["4", "16", "32"])]}),
            3 => json!({"key": "kplex.test/cores", "operator": "Lt", "values": [pick(rng, &["8", "32", "64"])]}),
            4 => json!({"key": "kplex.test/disk", "operator": pick(rng, &["Exists", "DoesNotExist"])}),
            5 => json!({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["it-large"]}),
            _ => json!({"key": "pool", "operator": "Exists"}),
        });
    }
    let mut t = json!({"matchExpressions": exprs});
    if rng.gen_bool(0.1) {
        t["matchFields"] = json!([{"key": "metadata.name", "operator": pick(rng, &["In", "NotIn"]), "values": [pick(rng, nodes)]}]);
    }
    t
}

fn make_pod(rng: &mut StdRng, i: usize, nodes: &[String]) -> (String, Value) {
    let tenant = pick(rng, TENANTS).to_string();
    let ns = pick(rng, NAMESPACES).0;
    let app = *pick(rng, &["a", "b", "c", "d"]);
    let mut labels = json!({"app": app});
    if rng.gen_bool(0.5) {
        labels["tier"] = json!(pick(rng, &["web", "db"]));
    }
    let gpu = rng.gen_bool(0.08).then(|| *pick(rng, &["1", "2"]));
    let mut containers = vec![container(rng, "c0", gpu)];
    if rng.gen_bool(0.3) {
        containers.push(container(rng, "c1", None));
    }
    if rng.gen_bool(0.05) {
        let proto = *pick(rng, &["TCP", "UDP"]);
        let mut port = json!({"containerPort": 80, "hostPort": pick(rng, &[8080, 8443, 9100]), "protocol": proto});
        if rng.gen_bool(0.2) {
            port["hostIP"] = json!("10.0.0.1");
        }
        containers[0]["ports"] = json!([port]);
    }
    let mut spec = json!({"containers": containers});
    if rng.gen_bool(0.1) {
        let mut inits = vec![container(rng, "init", None)];
        if rng.gen_bool(0.5) {
            let mut side = container(rng, "side", None);
            side["restartPolicy"] = json!("Always");
            inits.insert(rng.gen_range(0..=1), side);
        }
        spec["initContainers"] = json!(inits);
    }
    if rng.gen_bool(0.03) {
        spec["overhead"] = json!({"cpu": "100m", "memory": "64Mi"});
    }
    let mut tolerations = vec![];
    if gpu.is_some() && rng.gen_bool(0.8) {
        tolerations.push(json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}));
    }
    for (p, t) in [
        (0.1, json!({"key": "team", "operator": "Equal", "value": "x", "effect": "NoExecute"})),
        (0.03, json!({"operator": "Exists"})),
        (0.03, json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"})),
        (0.03, json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists"})),
    ] {
        if rng.gen_bool(p) {
            tolerations.push(t);
        }
    }
    spec["tolerations"] = json!(tolerations);
    if rng.gen_bool(0.2) {
        spec["nodeSelector"] = match rng.gen_range(0..5) {
            0 => json!({"topology.kubernetes.io/zone": format!("z{}", rng.gen_range(0..4))}),
            1 => json!({"node.kubernetes.io/instance-type": "it-small"}),
            2 => json!({"kplex.test/disk": "ssd"}),
            3 => json!({"pool": "general"}),
            _ => json!({"kubernetes.io/hostname": pick(rng, nodes)}),
        };
    }
    let mut affinity = json!({});
    if rng.gen_bool(0.15) {
        let terms: Vec<Value> = (0..rng.gen_range(1..=2)).map(|_| node_term(rng, nodes)).collect();
        affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!({"nodeSelectorTerms": terms});
    }
    if rng.gen_bool(0.1) {
        affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = json!([{"weight": 50, "preference": node_term(rng, nodes)}]);
    }
    if rng.gen_bool(0.12) {
        let t = term(rng, app, &["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
        affinity["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!([t]);
    }
    if rng.gen_bool(0.1) {
        let t = term(rng, app, &["kubernetes.io/hostname"]);
        affinity["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = json!([{"weight": 10, "podAffinityTerm": t}]);
    }
    if rng.gen_bool(0.06) {
        let t = term(rng, app, &["topology.kubernetes.io/zone", "kplex.test/disk"]);
        affinity["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = json!([t]);
    }
    spec["affinity"] = affinity;
    if rng.gen_bool(0.12) {
        let mut c = json!({"maxSkew": rng.gen_range(1..=3), "topologyKey": pick(rng, &["topology.kubernetes.io/zone", "kubernetes.io/hostname"]),
                           "whenUnsatisfiable": pick(rng, &["DoNotSchedule", "DoNotSchedule", "ScheduleAnyway"]), "labelSelector": {"matchLabels": {"app": app}}});
        if rng.gen_bool(0.2) {
            c["minDomains"] = json!(rng.gen_range(2..=5));
        }
        if rng.gen_bool(0.2) {
            c["nodeAffinityPolicy"] = json!("Ignore");
        }
        if rng.gen_bool(0.2) {
            c["nodeTaintsPolicy"] = json!("Honor");
        }
        if rng.gen_bool(0.2) {
            c["matchLabelKeys"] = json!(["tier"]);
        }
        spec["topologySpreadConstraints"] = json!([c]);
    }
    if rng.gen_bool(0.01) {
        spec["nodeName"] = json!(pick(rng, nodes));
    }
    if rng.gen_bool(0.05) {
        spec["preemptionPolicy"] = json!("Never");
    }
    let uid = format!("u{i}");
    (tenant, json!({"metadata": {"name": format!("p{i}"), "namespace": ns, "uid": uid, "labels": labels}, "spec": spec}))
}

fn bpod(tenant: Option<&str>, pod: &Value, node: &str) -> BPod {
    let labels =
        pod["metadata"]["labels"].as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect()).unwrap_or_default();
    let m = &pod["metadata"];
    BPod::new(m["uid"].as_str().unwrap(), tenant, m["namespace"].as_str().unwrap(), labels, &pod["spec"], node)
}

fn super_pod(tenant: &str, pod: &Value, node: &str, deleting: bool) -> Value {
    let ns = pod["metadata"]["namespace"].as_str().unwrap();
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let mut labels = pod["metadata"]["labels"].clone();
    labels["tenancy.kplex.io/tenant"] = json!(tenant);
    let mut spec = pod["spec"].clone();
    spec["nodeName"] = json!(node);
    let mut meta = json!({"name": pod["metadata"]["name"], "namespace": format!("{tenant}-1a2b3c-{ns}"), "uid": format!("s-{uid}"), "labels": labels,
        "annotations": {"tenancy.kplex.io/namespace": ns, "tenancy.kplex.io/name": pod["metadata"]["name"], "tenancy.kplex.io/uid": uid}});
    if deleting {
        meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    json!({"metadata": meta, "spec": spec, "status": {"phase": "Running"}})
}

#[derive(Debug, Default)]
struct Stats {
    placed: usize,
    unschedulable: usize,
    quota: usize,
    brute: std::time::Duration,
    sched: std::time::Duration,
}

fn run(seed: u64, n_nodes: usize, n_pods: usize) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed);
    let prefixes = vec!["kplex.test/".to_string()];
    let mut sched = Scheduler::new(ClusterState::new(VirtualNodePolicy::with(&[], &prefixes)), SchedulerConfig::default());
    let mut world = World {
        visible_keys: DEFAULT_VISIBLE_LABELS.iter().map(|s| s.to_string()).collect(),
        visible_prefixes: prefixes,
        namespaces: NAMESPACES.iter().map(|(n, l)| (n.to_string(), l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())).collect(),
        ..Default::default()
    };
    for (t, spec) in policies() {
        sched.state.set_policy(t, TenantPolicy::from_virtual_cluster(&json!({"spec": spec})).unwrap());
        world.policies.insert(t.to_string(), spec);
    }
    for i in 0..n_nodes {
        let n = make_node(&mut rng, i);
        sched.state.upsert_node(&serde_json::from_value(n.clone()).unwrap());
        world.set_node(n);
    }
    let names: Vec<String> = world.nodes.keys().cloned().collect();
    // Pods of the provider's own (no tenant) already running.
    for i in 0..n_nodes / 2 {
        let node = pick(&mut rng, &names).clone();
        let mut c = container(&mut rng, "sys", None);
        if rng.gen_bool(0.2) {
            c["ports"] = json!([{"containerPort": 9100, "hostPort": 9100}]);
        }
        let p = json!({"metadata": {"name": format!("sys{i}"), "namespace": "kube-system", "uid": format!("sys{i}"), "labels": {"app": "a"}},
                       "spec": {"nodeName": node, "containers": [c]}, "status": {"phase": "Running"}});
        sched.state.upsert_pod(&serde_json::from_value(p.clone()).unwrap());
        world.pods.push(bpod(None, &p, &node));
    }
    let namespaces: Vec<_> = world.namespaces.iter().map(|(n, l)| (n.clone(), l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())).collect();
    let mut reserved: Vec<(String, Value, String)> = Vec::new();
    let mut confirmed: Vec<String> = Vec::new();
    let mut stats = Stats::default();
    let mut i = 0;
    while i < n_pods {
        // Keep the cluster around its capacity: past a level, pods only leave.
        let full = reserved.len() + confirmed.len() > 2 * n_nodes;
        let op = if full { rng.gen_range(0..34) } else { rng.gen_range(0..100) };
        if op < 10 && !reserved.is_empty() {
            let (t, p, _) = reserved.swap_remove(rng.gen_range(0..reserved.len()));
            let uid = p["metadata"]["uid"].as_str().unwrap();
            assert!(sched.release(&t, uid), "release of a reservation");
            world.pods.retain(|x| x.uid != uid);
            continue;
        }
        if op < 22 && !reserved.is_empty() {
            let (t, p, node) = reserved.swap_remove(rng.gen_range(0..reserved.len()));
            let deleting = rng.gen_bool(0.2);
            sched.state.upsert_pod(&serde_json::from_value(super_pod(&t, &p, &node, deleting)).unwrap());
            let uid = p["metadata"]["uid"].as_str().unwrap().to_string();
            world.pods.iter_mut().filter(|x| x.uid == uid).for_each(|x| x.deleting = deleting);
            confirmed.push(uid);
            continue;
        }
        if op < 34 && !confirmed.is_empty() {
            let uid = confirmed.swap_remove(rng.gen_range(0..confirmed.len()));
            sched.state.remove_super_pod(&format!("s-{uid}"));
            world.pods.retain(|x| x.uid != uid);
            continue;
        }
        if op < 35 {
            let name = pick(&mut rng, &names).clone();
            let mut node = world.nodes[&name].clone();
            node["spec"]["unschedulable"] = json!(!node["spec"]["unschedulable"].as_bool().unwrap_or(false));
            sched.state.upsert_node(&serde_json::from_value(node.clone()).unwrap());
            world.set_node(node);
            continue;
        }
        let (tenant, pod) = make_pod(&mut rng, i, &names);
        i += 1;
        let t0 = Instant::now();
        let want = expect(&world, &tenant, &pod);
        stats.brute += t0.elapsed();
        let info = PodInfo::from_pod(&serde_json::from_value(pod.clone()).unwrap(), None).unwrap();
        let req = PodRequest { tenant: tenant.clone(), pod: info, namespaces: namespaces.clone(), default_spread_selector: None };
        let ctx = || format!("seed {seed}, pod {i} of tenant {tenant}: {}", serde_json::to_string(&pod).unwrap());
        let t0 = Instant::now();
        let outcome = sched.schedule(&req, Instant::now());
        stats.sched += t0.elapsed();
        match outcome {
            Outcome::Placed { node, existing } => {
                assert!(!existing, "{}", ctx());
                assert!(want.feasible.contains(&node), "infeasible placement on {node}; feasible: {:?}; {}", want.feasible, ctx());
                world.pods.push(bpod(Some(&tenant), &pod, &node));
                reserved.push((tenant, pod, node));
                stats.placed += 1;
            }
            Outcome::Unschedulable { message, quota, .. } => {
                assert!(want.feasible.is_empty(), "left unschedulable with {} feasible node(s) {:?}: {message}; {}", want.feasible.len(), want.feasible, ctx());
                let expected = want.message.unwrap();
                assert_eq!(quota, want.quota_refused, "{message}; {}", ctx());
                if quota {
                    assert!(message.starts_with(&expected) && message.ends_with(&want.suffix), "{message}\nwant {expected}...{}; {}", want.suffix, ctx());
                    stats.quota += 1;
                } else {
                    assert_eq!(message, expected, "{}", ctx());
                }
                stats.unschedulable += 1;
            }
        }
    }
    stats
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn every_decision_matches_a_brute_force_evaluation() {
    let nodes = env("KPLEX_CHECKER_NODES", 200);
    let pods = env("KPLEX_CHECKER_PODS", 2000);
    for seed in 0..env("KPLEX_CHECKER_SEEDS", 2) as u64 {
        let t = Instant::now();
        let s = run(seed, nodes, pods);
        eprintln!("seed {seed}: {nodes} nodes, {pods} pods: {s:?} in {:.1?}", t.elapsed());
        assert!(s.placed > pods / 2, "most pods fit: {s:?}");
        assert!(s.unschedulable > pods / 100 && s.quota > 0, "some pods do not: {s:?}");
    }
}
