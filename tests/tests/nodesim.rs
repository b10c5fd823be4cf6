//! The node simulator against a real API server (a `kplex tenant-master` standing in for the
//! super cluster): nodes with realistic labels, capacity and taints, renewing leases; pods bound
//! to them run, finish, crash-loop and are deleted gracefully; the NotReady hooks; adoption of
//! nodes and pods after a restart. Everything is observed with kubectl, as a user would.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use kplex_e2e::{node_simulator, Etcd, TenantMaster};
use serde_json::Value;

fn json(tm: &TenantMaster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&tm.kubectl(&a).must()).unwrap()
}

#[track_caller]
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn cond<'a>(obj: &'a Value, typ: &str) -> &'a Value {
    obj["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == typ)).unwrap_or(&Value::Null)
}

fn label<'a>(n: &'a Value, k: &str) -> &'a str {
    n["metadata"]["labels"][k].as_str().unwrap_or("")
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    let (base, bits) = cidr.split_once('/').unwrap();
    let (ip, base): (Ipv4Addr, Ipv4Addr) = (ip.parse().unwrap(), base.parse().unwrap());
    let mask = u32::MAX << (32 - bits.parse::<u32>().unwrap());
    u32::from(ip) & mask == u32::from(base)
}

fn pod_yaml(name: &str, node: &str, annotations: &[(&str, &str)], restart: &str, extra_spec: &str) -> String {
    let mut ann = String::new();
    if !annotations.is_empty() {
        ann.push_str("  annotations:\n");
        for (k, v) in annotations {
            ann.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: apps\n{ann}spec:\n  nodeName: {node}\n  restartPolicy: {restart}\n  containers:\n  - name: main\n    image: nginx:1.27\n{extra_spec}"
    )
}

fn apply(tm: &TenantMaster, yaml: &str) {
    let kc = tm.kubeconfig.clone();
    let out = kplex_e2e::kubectl_with(&std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()), &kc, &["apply", "-f", "-"], Some(yaml));
    assert!(out.ok, "apply failed: {}\n{yaml}", out.stderr);
}

fn renew_time(tm: &TenantMaster, node: &str) -> String {
    tm.kubectl(&["-n", "kube-node-lease", "get", "lease", node, "-o", "jsonpath={.spec.renewTime}"]).must()
}

#[test]
fn simulated_nodes_run_pods_like_a_kubelet() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "super", dir.path(), &[]);
    let mut sim = node_simulator(&tm, &["--nodes", "6", "--node-lease-duration", "4s", "--crash-loop-backoff", "1s", "--pod-start-delay", "300ms"]);
    assert!(sim.ready_line.contains("6 nodes"), "{}", sim.ready_line);

    // ---- nodes ----
    let nodes = json(&tm, &["get", "nodes"]);
    let items = nodes["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 6);
    let table = tm.kubectl(&["get", "nodes"]).must();
    assert_eq!(table.lines().filter(|l| l.split_whitespace().nth(1) == Some("Ready")).count(), 6, "{table}");
    let mut zones = std::collections::BTreeSet::new();
    let mut types = std::collections::BTreeSet::new();
    for n in &items {
        let name = n["metadata"]["name"].as_str().unwrap();
        assert_eq!(cond(n, "Ready")["status"], "True", "{name}");
        assert_eq!(cond(n, "Ready")["reason"], "KubeletReady");
        for c in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(cond(n, c)["status"], "False", "{name} {c}");
        }
        assert_eq!(label(n, "kubernetes.io/hostname"), name);
        assert_eq!(label(n, "kubernetes.io/os"), "linux");
        assert_eq!(label(n, "beta.kubernetes.io/os"), "linux");
        assert!(["amd64", "arm64"].contains(&label(n, "kubernetes.io/arch")));
        assert_eq!(label(n, "beta.kubernetes.io/arch"), label(n, "kubernetes.io/arch"));
        assert!(!label(n, "topology.kubernetes.io/region").is_empty());
        zones.insert(label(n, "topology.kubernetes.io/zone").to_string());
        types.insert(label(n, "node.kubernetes.io/instance-type").to_string());
        assert!(n["spec"]["podCIDR"].as_str().unwrap().ends_with("/24"));
        let addrs = n["status"]["addresses"].as_array().unwrap();
        assert!(addrs.iter().any(|a| a["type"] == "InternalIP"));
        assert!(addrs.iter().any(|a| a["type"] == "Hostname" && a["address"] == name));
        assert!(n["status"]["nodeInfo"]["kubeletVersion"].as_str().unwrap().starts_with("v1.33."));
        assert!(n["status"]["nodeInfo"]["containerRuntimeVersion"].as_str().unwrap().starts_with("containerd://"));
        for r in ["cpu", "memory", "pods", "ephemeral-storage", "hugepages-2Mi"] {
            assert!(n["status"]["capacity"][r].is_string() && n["status"]["allocatable"][r].is_string(), "{name} {r}");
        }
    }
    assert_eq!(zones.len(), 3, "{zones:?}");
    assert!(types.len() >= 2, "{types:?}");
    let cidrs: std::collections::BTreeSet<_> = items.iter().map(|n| n["spec"]["podCIDR"].as_str().unwrap().to_string()).collect();
    assert_eq!(cidrs.len(), 6, "podCIDRs are distinct");
    let gpu: Vec<&Value> = items.iter().filter(|n| n["status"]["capacity"]["nvidia.com/gpu"] == "1").collect();
    assert!(!gpu.is_empty());
    for g in &gpu {
        let taints = g["spec"]["taints"].as_array().unwrap();
        assert!(taints.iter().any(|t| t["key"] == "nvidia.com/gpu" && t["value"] == "present" && t["effect"] == "NoSchedule"), "{taints:?}");
    }
    let by_pool = |pool: &str, i: usize| -> Value { items.iter().filter(|n| label(n, "kplex.io/node-pool") == pool).nth(i).cloned().unwrap() };
    let node_a = by_pool("general", 0);
    let node_b = by_pool("general", 1);
    let name_a = node_a["metadata"]["name"].as_str().unwrap().to_string();
    let name_b = node_b["metadata"]["name"].as_str().unwrap().to_string();

    // Leases renew (every second with a 4 s lease).
    let first = renew_time(&tm, &name_a);
    assert!(!first.is_empty());
    wait_until("the lease is renewed", || renew_time(&tm, &name_a) != first);
    let lease = json(&tm, &["-n", "kube-node-lease", "get", "lease", &name_a]);
    assert_eq!(lease["spec"]["holderIdentity"], name_a.as_str());
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 4);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["uid"], node_a["metadata"]["uid"]);

    // ---- a pod runs ----
    tm.kubectl(&["create", "namespace", "apps"]).must();
    wait_until("the default service account exists", || tm.kubectl(&["-n", "apps", "get", "sa", "default"]).ok);
    apply(&tm, &pod_yaml("web", &name_a, &[("sim.kplex.io/start-delay", "4s")], "Always", ""));
    wait_until("web shows ContainerCreating", || tm.kubectl(&["-n", "apps", "get", "pod", "web"]).stdout.contains("ContainerCreating"));
    let pending = json(&tm, &["-n", "apps", "get", "pod", "web"]);
    assert_eq!(pending["status"]["phase"], "Pending");
    assert_eq!(pending["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
    assert_eq!(cond(&pending, "Ready")["status"], "False");

    // Meanwhile, containers that finish (checked below).
    apply(&tm, &pod_yaml("done", &name_b, &[("sim.kplex.io/exit-after", "1s")], "Never", ""));
    apply(&tm, &pod_yaml("broken", &name_b, &[("sim.kplex.io/exit-code", "3")], "Never", ""));
    apply(&tm, &pod_yaml("crash", &name_b, &[("sim.kplex.io/exit-code", "1"), ("sim.kplex.io/exit-after", "500ms")], "Always", ""));
    let job = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: batch\n  namespace: apps\nspec:\n  completions: 2\n  template:\n    metadata:\n      annotations:\n        sim.kplex.io/exit-after: 1s\n    spec:\n      nodeName: {name_b}\n      restartPolicy: Never\n      containers:\n      - name: work\n        image: busybox\n"
    );
    apply(&tm, &job);

    tm.kubectl(&["-n", "apps", "wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]).must();
    let web = json(&tm, &["-n", "apps", "get", "pod", "web"]);
    let st = &web["status"];
    assert_eq!(st["phase"], "Running");
    let web_ip = st["podIP"].as_str().unwrap().to_string();
    assert!(in_cidr(&web_ip, node_a["spec"]["podCIDR"].as_str().unwrap()), "{web_ip}");
    let internal = node_a["status"]["addresses"].as_array().unwrap().iter().find(|a| a["type"] == "InternalIP").unwrap()["address"].clone();
    assert_eq!(st["hostIP"], internal);
    assert!(st["startTime"].is_string());
    for c in ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"] {
        assert_eq!(cond(&web, c)["status"], "True", "{c}");
        assert!(cond(&web, c)["lastTransitionTime"].is_string(), "{c}");
    }
    let cs = &st["containerStatuses"][0];
    assert_eq!((cs["ready"].as_bool(), cs["started"].as_bool(), cs["restartCount"].as_i64()), (Some(true), Some(true), Some(0)));
    assert!(cs["state"]["running"]["startedAt"].is_string());
    assert!(cs["containerID"].as_str().unwrap().starts_with("containerd://"));
    assert!(cs["imageID"].as_str().unwrap().contains("@sha256:"));
    let table = tm.kubectl(&["-n", "apps", "get", "pod", "web", "-o", "wide"]).must();
    assert!(table.contains("1/1") && table.contains("Running") && table.contains(&web_ip), "{table}");

    // Init containers complete before the containers start; a second pod gets another address.
    let init = "  initContainers:\n  - name: setup\n    image: busybox\n";
    apply(&tm, &pod_yaml("web2", &name_a, &[], "Always", init));
    tm.kubectl(&["-n", "apps", "wait", "--for=condition=Ready", "pod/web2", "--timeout=30s"]).must();
    let web2 = json(&tm, &["-n", "apps", "get", "pod", "web2"]);
    let ist = &web2["status"]["initContainerStatuses"][0]["state"]["terminated"];
    assert_eq!(ist["reason"], "Completed");
    assert!(ist["finishedAt"].as_str().unwrap() <= web2["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].as_str().unwrap());
    let ip2 = web2["status"]["podIP"].as_str().unwrap();
    assert_ne!(ip2, web_ip);
    assert!(in_cidr(ip2, node_a["spec"]["podCIDR"].as_str().unwrap()));

    // ---- containers that finish ----
    tm.kubectl(&["-n", "apps", "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/done", "--timeout=30s"]).must();
    tm.kubectl(&["-n", "apps", "wait", "--for=jsonpath={.status.phase}=Failed", "pod/broken", "--timeout=30s"]).must();
    let done = json(&tm, &["-n", "apps", "get", "pod", "done"]);
    assert_eq!(done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
    assert_eq!(cond(&done, "Ready")["reason"], "PodCompleted");
    let broken = json(&tm, &["-n", "apps", "get", "pod", "broken"]);
    assert_eq!(broken["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3);
    assert_eq!(broken["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Error");
    assert!(tm.kubectl(&["-n", "apps", "get", "pod", "broken"]).must().contains("Error"));
    wait_until("crash restarts twice", || {
        let p = json(&tm, &["-n", "apps", "get", "pod", "crash"]);
        p["status"]["containerStatuses"][0]["restartCount"].as_i64().unwrap_or(0) >= 2
    });
    let crash = json(&tm, &["-n", "apps", "get", "pod", "crash"]);
    assert_eq!(crash["status"]["phase"], "Running");
    assert_eq!(crash["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 1);
    tm.kubectl(&["-n", "apps", "wait", "--for=condition=Complete", "job/batch", "--timeout=30s"]).must();

    // ---- graceful deletion ----
    apply(&tm, &pod_yaml("slow", &name_b, &[("sim.kplex.io/stop-delay", "3s")], "Always", ""));
    tm.kubectl(&["-n", "apps", "wait", "--for=condition=Ready", "pod/slow", "--timeout=30s"]).must();
    tm.kubectl(&["-n", "apps", "delete", "pod", "slow", "--wait=false"]).must();
    let table = tm.kubectl(&["-n", "apps", "get", "pod", "slow"]).must();
    assert!(table.contains("Terminating"), "{table}");
    tm.kubectl(&["-n", "apps", "wait", "--for=delete", "pod/slow", "--timeout=30s"]).must();
    // Without a stop delay the deletion is confirmed as soon as it is seen.
    tm.kubectl(&["-n", "apps", "delete", "pod", "web2", "--timeout=30s"]).must();

    // ---- NotReady hooks ----
    // The kubelet reports NotReady but keeps renewing its lease.
    tm.kubectl(&["annotate", "node", &name_b, "sim.kplex.io/ready=false"]).must();
    tm.kubectl(&["wait", "--for=condition=Ready=false", &format!("node/{name_b}"), "--timeout=30s"]).must();
    let nb = json(&tm, &["get", "node", &name_b]);
    assert_eq!(cond(&nb, "Ready")["reason"], "KubeletNotReady");
    let before = renew_time(&tm, &name_b);
    wait_until("a NotReady node's lease is still renewed", || renew_time(&tm, &name_b) != before);
    wait_until("the not-ready taint is set", || {
        tm.kubectl(&["get", "node", &name_b, "-o", "jsonpath={.spec.taints}"]).must().contains("node.kubernetes.io/not-ready")
    });
    tm.kubectl(&["annotate", "node", &name_b, "sim.kplex.io/ready-"]).must();
    tm.kubectl(&["wait", "--for=condition=Ready", &format!("node/{name_b}"), "--timeout=30s"]).must();

    // The kubelet is gone: no lease renewals, conditions Unknown, unreachable taints, pods not ready.
    tm.kubectl(&["annotate", "node", &name_a, "sim.kplex.io/ready=unknown"]).must();
    tm.kubectl(&["wait", "--for=condition=Ready=Unknown", &format!("node/{name_a}"), "--timeout=30s"]).must();
    assert!(tm.kubectl(&["get", "node", &name_a]).must().contains("NotReady"));
    tm.kubectl(&["-n", "apps", "wait", "--for=condition=Ready=false", "pod/web", "--timeout=30s"]).must();
    wait_until("the unreachable taints are set", || {
        let n = json(&tm, &["get", "node", &name_a]);
        let t = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        ["NoSchedule", "NoExecute"].iter().all(|e| t.iter().any(|t| t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == *e))
    });
    let frozen = renew_time(&tm, &name_a);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(renew_time(&tm, &name_a), frozen, "a lost node's lease is not renewed");
    tm.kubectl(&["annotate", "node", &name_a, "sim.kplex.io/ready-"]).must();
    tm.kubectl(&["wait", "--for=condition=Ready", &format!("node/{name_a}"), "--timeout=30s"]).must();
    tm.kubectl(&["-n", "apps", "wait", "--for=condition=Ready", "pod/web", "--timeout=30s"]).must();
    wait_until("the lease is renewed again", || renew_time(&tm, &name_a) != frozen);
    wait_until("the unreachable taints are gone", || !tm.kubectl(&["get", "node", &name_a, "-o", "jsonpath={.spec.taints}"]).must().contains("unreachable"));

    // ---- restart: nodes and pods are adopted ----
    let uids = |tm: &TenantMaster| -> Vec<(String, String)> {
        let mut v: Vec<_> = json(tm, &["get", "nodes"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["metadata"]["name"].as_str().unwrap().to_string(), n["metadata"]["uid"].as_str().unwrap().to_string()))
            .collect();
        v.sort();
        v
    };
    let before = uids(&tm);
    sim.restart();
    assert_eq!(uids(&tm), before, "the same six nodes");
    apply(&tm, &pod_yaml("web3", &name_a, &[], "Always", ""));
    tm.kubectl(&["-n", "apps", "wait", "--for=condition=Ready", "pod/web3", "--timeout=30s"]).must();
    let web = json(&tm, &["-n", "apps", "get", "pod", "web"]);
    assert_eq!(web["status"]["podIP"], web_ip.as_str(), "web keeps its address");
    assert_eq!(web["status"]["containerStatuses"][0]["restartCount"], 0);
    let ip3 = json(&tm, &["-n", "apps", "get", "pod", "web3"])["status"]["podIP"].as_str().unwrap().to_string();
    assert_ne!(ip3, web_ip, "the adopted pod's address stays taken");
    assert!(in_cidr(&ip3, node_a["spec"]["podCIDR"].as_str().unwrap()));
    assert!(tm.kubectl(&["get", "nodes"]).must().lines().filter(|l| l.contains(" Ready ")).count() == 6);
}
