//! DaemonSets with the built-in daemonset controller over several nodes of the stand-in
//! kubelet: a tainted node gets no pod until the set tolerates the taint, a new node gets one,
//! a node that stops matching the node selector or goes away loses its pod, and
//! `kubectl rollout status/history/undo` work.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kplex_e2e::kubelet::{FakeKubelet, KubeletOpts, NodeSpec};
use kplex_e2e::{kubectl_with, Etcd, TenantMaster};
use serde_json::Value;

const AGENT: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ds}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ds}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - {name: agent, image: "agent:1"}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: picky, namespace: ds}
spec:
  selector: {matchLabels: {app: picky}}
  template:
    metadata: {labels: {app: picky}}
    spec:
      nodeSelector: {disk: ssd}
      containers:
      - {name: picky, image: "picky:1"}
"#;

#[track_caller]
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(tm: &TenantMaster, what: &[&str]) -> Value {
    let args: Vec<&str> = ["-n", "ds", "get"].iter().chain(what).chain(&["-o", "json"]).copied().collect();
    serde_json::from_str(&tm.kubectl(&args).must()).unwrap()
}

/// Node name -> image of the set's live pods.
fn placement(tm: &TenantMaster, app: &str) -> BTreeMap<String, String> {
    let pods = get(tm, &["pods", "-l", &format!("app={app}")]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| (p["spec"]["nodeName"].as_str().unwrap_or("").to_string(), p["spec"]["containers"][0]["image"].as_str().unwrap().to_string()))
        .collect()
}

fn on(nodes: &[&str], image: &str) -> BTreeMap<String, String> {
    nodes.iter().map(|n| (n.to_string(), image.to_string())).collect()
}

fn rollout(tm: &TenantMaster) -> String {
    tm.kubectl(&["-n", "ds", "rollout", "status", "ds/agent", "--timeout=60s"]).must()
}

#[test]
fn daemonsets_follow_nodes_taints_and_revisions() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "ds-e2e", dir.path(), &[]);
    let opts = KubeletOpts { nodes: vec![NodeSpec::new("node-2"), NodeSpec::new("node-3").taint("dedicated", "db", "NoSchedule")], ..Default::default() };
    let _kubelet = FakeKubelet::start_with(&tm, opts);
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(AGENT));
    assert!(out.ok, "{out:?}");

    // Two untainted nodes, two pods; the tainted node gets none.
    let done = rollout(&tm);
    assert!(done.contains("daemon set \"agent\" successfully rolled out"), "{done}");
    assert_eq!(placement(&tm, "agent"), on(&["node-1", "node-2"], "agent:1"));
    let ds = get(&tm, &["ds/agent"]);
    let st = &ds["status"];
    assert_eq!((st["desiredNumberScheduled"].as_i64(), st["numberReady"].as_i64(), st["numberMisscheduled"].as_i64()), (Some(2), Some(2), Some(0)), "{st}");
    assert_eq!(st["observedGeneration"], ds["metadata"]["generation"]);
    // Pods are pinned to their node by affinity and carry the default tolerations.
    let pods = get(&tm, &["pods", "-l", "app=agent"]);
    let p = &pods["items"][0];
    let term = &p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0];
    assert_eq!((term["key"].as_str(), term["operator"].as_str()), (Some("metadata.name"), Some("In")));
    assert_eq!(term["values"][0], p["spec"]["nodeName"]);
    let tols = p["spec"]["tolerations"].to_string();
    for k in ["not-ready", "unreachable", "disk-pressure", "memory-pressure", "pid-pressure", "unschedulable"] {
        assert!(tols.contains(&format!("node.kubernetes.io/{k}")), "{tols}");
    }
    let hash = p["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap().to_string();
    let revs = tm.kubectl(&["-n", "ds", "get", "controllerrevisions", "-o", "name"]).must();
    assert!(revs.contains(&format!("agent-{hash}")), "{revs}");

    // Tolerating the taint: a new revision rolls out onto all three nodes.
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":"agent:2"}],"tolerations":[{"key":"dedicated","operator":"Equal","value":"db","effect":"NoSchedule"}]}}}}"#;
    tm.kubectl(&["-n", "ds", "patch", "ds/agent", "--type=strategic", "-p", patch]).must();
    let done = rollout(&tm);
    assert!(done.contains("successfully rolled out"), "{done}");
    wait_for("agent:2 on three nodes", || placement(&tm, "agent") == on(&["node-1", "node-2", "node-3"], "agent:2"));
    let st = get(&tm, &["ds/agent"])["status"].clone();
    assert_eq!((st["desiredNumberScheduled"].as_i64(), st["updatedNumberScheduled"].as_i64()), (Some(3), Some(3)), "{st}");

    // A fourth node gets a pod; when it goes, so does its pod.
    let node4 = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-4","labels":{"kubernetes.io/hostname":"node-4"}}}"#;
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["create", "-f", "-"], Some(node4));
    assert!(out.ok, "{out:?}");
    wait_for("a pod on node-4", || placement(&tm, "agent").contains_key("node-4"));
    rollout(&tm);
    tm.kubectl(&["delete", "node", "node-4"]).must();
    wait_for("node-4's pod gone", || !placement(&tm, "agent").contains_key("node-4"));

    // A node selector: labelling a node brings a pod, unlabelling takes it away.
    assert!(placement(&tm, "picky").is_empty());
    tm.kubectl(&["label", "node", "node-2", "disk=ssd"]).must();
    wait_for("picky on node-2", || placement(&tm, "picky") == on(&["node-2"], "picky:1"));
    tm.kubectl(&["label", "node", "node-2", "disk-"]).must();
    wait_for("picky gone", || placement(&tm, "picky").is_empty());

    // History and undo: back to agent:1 without the toleration, so node-3 loses its pod.
    let hist = tm.kubectl(&["-n", "ds", "rollout", "history", "ds/agent"]).must();
    assert!(hist.contains("REVISION") && hist.contains("1 ") && hist.contains("2 "), "{hist}");
    let undo = tm.kubectl(&["-n", "ds", "rollout", "undo", "ds/agent"]).must();
    assert!(undo.contains("daemonset.apps/agent rolled back"), "{undo}");
    rollout(&tm);
    wait_for("agent:1 on two nodes", || placement(&tm, "agent") == on(&["node-1", "node-2"], "agent:1"));
    let revs = get(&tm, &["controllerrevisions"]);
    let current: Vec<i64> = revs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["metadata"]["name"] == format!("agent-{hash}"))
        .map(|r| r["revision"].as_i64().unwrap())
        .collect();
    assert_eq!(current, vec![3], "the first revision is reused as revision 3");

    // Settled: nothing is written any more (no controller loops while idle).
    let rv = |tm: &TenantMaster| get(tm, &["ds/agent"])["metadata"]["resourceVersion"].clone();
    let before = rv(&tm);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(rv(&tm), before);
}
