//! The super-scheduler end to end: a real `kplex tenant-master` is the super cluster's API, the
//! test creates its Nodes (labels, capacity, taints, a tainted GPU pool, a dedicated pool) and
//! plays the syncer: it asks `kplex super-scheduler` over gRPC where tenant pods go and creates the
//! super pods with spec.nodeName. Checked as a provider and a tenant would notice: where pods
//! land, the FailedScheduling messages, quotas, pools, and that the scheduler follows the super
//! cluster (pods created and deleted there, nodes added later) through its watches.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kplex_e2e::{free_port, kplex_bin, Etcd, TenantMaster};
use kplex_super_scheduler::proto::{self, decision, PodRef, PodToSchedule, ScheduleRequest};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

type Client = kplex_super_scheduler::SchedulerClient;
type Changes = kplex_super_scheduler::ChangeStream;

/// A running `kplex super-scheduler`, killed on drop.
struct SuperScheduler {
    child: Child,
    grpc: String,
    metrics: String,
}

impl SuperScheduler {
    fn start(kubeconfig: &std::path::Path, policy_file: &std::path::Path) -> SuperScheduler {
        let (gp, mp) = (free_port(), free_port());
        let mut child = Command::new(kplex_bin())
            .arg("super-scheduler")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--listen", &format!("127.0.0.1:{gp}"), "--metrics-listen", &format!("127.0.0.1:{mp}")])
            .args(["--node-label-prefix", "kplex.test/"])
            .arg("--policy-file")
            .arg(policy_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("super-scheduler exited before ready").unwrap();
        assert!(line.contains("ready"), "unexpected first line: {line}");
        std::thread::spawn(move || for _ in lines {});
        SuperScheduler { child, grpc: format!("http://127.0.0.1:{gp}"), metrics: format!("http://127.0.0.1:{mp}/metrics") }
    }
}

impl Drop for SuperScheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node: name, zone, instance type, cpu; extra labels, taints and allocatable resources.
struct NodeDef<'a>(&'a str, &'a str, &'a str, &'a str, Value, Value, Value);

async fn create_node(client: &kube::Client, def: NodeDef<'_>) {
    let NodeDef(name, zone, itype, cpu, labels, taints, extra) = def;
    let nodes: Api<Node> = Api::all(client.clone());
    let mut l = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "topology.kubernetes.io/region": "eu-1", "topology.kubernetes.io/zone": zone, "node.kubernetes.io/instance-type": itype});
    for (k, v) in labels.as_object().unwrap() {
        l[k] = v.clone();
    }
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": l}, "spec": {"taints": taints}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let mut alloc = json!({"cpu": cpu, "memory": "16Gi", "pods": "110"});
    for (k, v) in extra.as_object().unwrap() {
        alloc[k] = v.clone();
    }
    let status = json!({"status": {"capacity": alloc, "allocatable": alloc,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

/// A tenant pod as the tenant master would hand it to the syncer.
fn tpod(name: &str, labels: Value, cpu: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["containers"] = json!([{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]);
    if let Some(gpu) = spec.get("gpu").cloned() {
        spec["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = gpu.clone();
        spec["containers"][0]["resources"]["limits"] = json!({"nvidia.com/gpu": gpu});
        spec.as_object_mut().unwrap().remove("gpu");
    }
    json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": labels}, "spec": spec})
}

enum Got {
    Placed(Box<proto::Placement>),
    Refused(String),
}

async fn schedule(c: &mut Client, tenant: &str, pods: &[Value]) -> Vec<Got> {
    let req = ScheduleRequest {
        pods: pods.iter().map(|p| PodToSchedule { tenant: tenant.into(), pod: serde_json::to_vec(p).unwrap(), ..Default::default() }).collect(),
    };
    let resp = c.schedule(req).await.unwrap().into_inner();
    assert_eq!(resp.decisions.len(), pods.len());
    resp.decisions
        .into_iter()
        .map(|d| match d.result.unwrap() {
            decision::Result::Placed(p) => Got::Placed(Box::new(p)),
            decision::Result::Unschedulable(u) => {
                assert_eq!(u.reason, "Unschedulable");
                Got::Refused(u.message)
            }
        })
        .collect()
}

async fn place(c: &mut Client, tenant: &str, pod: Value) -> String {
    match schedule(c, tenant, &[pod]).await.remove(0) {
        Got::Placed(p) => p.node_name,
        Got::Refused(m) => panic!("not placed: {m}"),
    }
}

async fn refuse(c: &mut Client, tenant: &str, pod: Value) -> String {
    match schedule(c, tenant, &[pod]).await.remove(0) {
        Got::Placed(p) => panic!("placed on {}", p.node_name),
        Got::Refused(m) => m,
    }
}

/// Places a pod that does not fit yet, trying again at each announced change (as the syncer
/// would), for up to 30 s.
async fn place_after_change(c: &mut Client, changes: &mut Changes, tenant: &str, pod: Value) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), changes.next()).await {
            Ok(Some(Ok(_))) => {}
            other => panic!("no change announced: {other:?}"),
        }
        if let Got::Placed(p) = schedule(c, tenant, std::slice::from_ref(&pod)).await.remove(0) {
            return p.node_name;
        }
    }
}

/// Creates the super pod the syncer would create for a placed tenant pod.
async fn create_super_pod(client: &kube::Client, tenant: &str, pod: &Value, node: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let name = format!("{tenant}-{}", pod["metadata"]["name"].as_str().unwrap());
    let mut labels = pod["metadata"]["labels"].clone();
    labels["tenancy.kplex.io/tenant"] = json!(tenant);
    let mut spec = pod["spec"].clone();
    spec["nodeName"] = json!(node);
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels, "annotations": {
        "tenancy.kplex.io/namespace": "default", "tenancy.kplex.io/name": pod["metadata"]["name"], "tenancy.kplex.io/uid": pod["metadata"]["uid"]}},
        "spec": spec}))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
}

async fn metric(url: &str, name: &str) -> Option<f64> {
    let body = reqwest_get(url).await;
    body.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn reqwest_get(url: &str) -> String {
    let out = tokio::process::Command::new("curl").args(["-s", url]).output().await.unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls until the metric has the value (correctness only, generous deadline).
async fn wait_metric(url: &str, name: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if metric(url, name).await == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never became {want}: {:?}", metric(url, name).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_pods_land_where_their_constraints_and_the_providers_rules_allow() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "super", dir.path(), &[]);
    let kc = tm.client().await;
    let gpu_taint = json!([{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]);
    create_node(&kc, NodeDef("a1", "zone-a", "m5.large", "4", json!({"kplex.test/disk": "ssd"}), json!([]), json!({}))).await;
    create_node(&kc, NodeDef("a2", "zone-a", "m5.xlarge", "4", json!({}), json!([]), json!({}))).await;
    create_node(&kc, NodeDef("b1", "zone-b", "m5.large", "4", json!({"corp.example/rack": "r7"}), json!([]), json!({}))).await;
    create_node(&kc, NodeDef("b2", "zone-b", "m5.xlarge", "4", json!({}), json!([]), json!({}))).await;
    create_node(&kc, NodeDef("gpu-1", "zone-c", "p3.2xlarge", "8", json!({}), gpu_taint.clone(), json!({"nvidia.com/gpu": "2"}))).await;
    create_node(&kc, NodeDef("gpu-2", "zone-c", "p3.2xlarge", "8", json!({}), gpu_taint, json!({"nvidia.com/gpu": "2"}))).await;
    create_node(&kc, NodeDef("tiny", "zone-a", "t3.small", "2", json!({"tenancy.kplex.io/tenant": "vip"}), json!([]), json!({}))).await;
    let policy = dir.path().join("policies.yaml");
    std::fs::write(&policy, "- metadata: {name: small}\n  spec: {quota: {cpu: '2'}}\n- metadata: {name: vip}\n  spec: {dedicatedNodePool: true}\n").unwrap();
    let ss = SuperScheduler::start(&tm.kubeconfig, &policy);
    let mut c = Client::connect(ss.grpc.clone()).await.unwrap();
    let mut placed: Vec<(String, Value, String)> = Vec::new();
    let mut track = |tenant: &str, pod: &Value, node: &str| placed.push((tenant.to_string(), pod.clone(), node.to_string()));

    // nodeSelector on zone, instance type and a custom (allow-listed) label.
    for i in 0..3 {
        let p = tpod(&format!("zb-{i}"), json!({}), "100m", json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-b"}}));
        let n = place(&mut c, "acme", p.clone()).await;
        assert!(n == "b1" || n == "b2", "{n}");
        track("acme", &p, &n);
        let p = tpod(&format!("xl-{i}"), json!({}), "100m", json!({"nodeSelector": {"node.kubernetes.io/instance-type": "m5.xlarge"}}));
        let n = place(&mut c, "acme", p.clone()).await;
        assert!(n == "a2" || n == "b2", "{n}");
        track("acme", &p, &n);
        let p = tpod(&format!("ssd-{i}"), json!({}), "100m", json!({"nodeSelector": {"kplex.test/disk": "ssd"}}));
        assert_eq!(place(&mut c, "acme", p.clone()).await, "a1");
        track("acme", &p, "a1");
    }
    // A label the tenant does not see matches nothing; the dedicated node is not counted.
    assert_eq!(
        refuse(&mut c, "acme", tpod("rack", json!({}), "100m", json!({"nodeSelector": {"corp.example/rack": "r7"}}))).await,
        "0/6 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 4 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
    );

    // GPU pods with the toleration fill the GPU pool; without it they never go there.
    let tol = json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]);
    for i in 0..4 {
        let p = tpod(&format!("gpu-{i}"), json!({}), "1", json!({"gpu": "1", "tolerations": tol}));
        let n = place(&mut c, "acme", p.clone()).await;
        assert!(n.starts_with("gpu-"), "{n}");
        track("acme", &p, &n);
    }
    assert_eq!(
        refuse(&mut c, "acme", tpod("gpu-4", json!({}), "1", json!({"gpu": "1", "tolerations": tol}))).await,
        "0/6 nodes are available: 6 Insufficient nvidia.com/gpu. preemption: 0/6 nodes are available: 2 No preemption victims found for incoming pod, \
         4 Preemption is not helpful for scheduling."
    );
    for i in 0..8 {
        let p = tpod(&format!("plain-{i}"), json!({}), "100m", json!({}));
        let n = place(&mut c, "acme", p.clone()).await;
        assert!(!n.starts_with("gpu-"), "a pod without the toleration landed in the GPU pool: {n}");
        track("acme", &p, &n);
    }

    // Required anti-affinity spreads a tenant's replicas and ignores another tenant's pods,
    // whether reserved or already running in the super cluster.
    for n in ["a1", "a2", "b1", "b2"] {
        let p = tpod(&format!("other-{n}"), json!({"app": "web"}), "100m", json!({"nodeSelector": {"kubernetes.io/hostname": n}}));
        assert_eq!(place(&mut c, "other", p.clone()).await, n);
        create_super_pod(&kc, "other", &p, n).await;
    }
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    let mut web = Vec::new();
    for i in 0..4 {
        let p = tpod(&format!("web-{i}"), json!({"app": "web"}), "100m", anti.clone());
        let n = place(&mut c, "acme", p.clone()).await;
        track("acme", &p, &n);
        web.push(n);
    }
    web.sort();
    assert_eq!(web, vec!["a1", "a2", "b1", "b2"]);
    assert_eq!(
        refuse(&mut c, "acme", tpod("web-4", json!({"app": "web"}), "100m", anti)).await,
        "0/6 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 4 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/6 nodes are available: 2 Preemption is not helpful for scheduling, 4 No preemption victims found for incoming pod."
    );

    // A tenant with quota cpu=2: the third 1-cpu pod is refused; another tenant is unaffected.
    for i in 0..2 {
        let p = tpod(&format!("q-{i}"), json!({}), "1", json!({}));
        let n = place(&mut c, "small", p.clone()).await;
        track("small", &p, &n);
    }
    assert_eq!(
        refuse(&mut c, "small", tpod("q-2", json!({}), "1", json!({}))).await,
        "0/6 nodes are available: exceeded quota of virtual cluster small, requested: cpu=1, used: cpu=2, limited: cpu=2. \
         preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling."
    );
    for i in 0..3 {
        let p = tpod(&format!("big-{i}"), json!({}), "1", json!({}));
        let n = place(&mut c, "big", p.clone()).await;
        track("big", &p, &n);
    }

    // The dedicated pool takes only its tenant's pods, and its tenant is confined to it.
    let p = tpod("vip-0", json!({}), "1500m", json!({}));
    assert_eq!(place(&mut c, "vip", p.clone()).await, "tiny");
    create_super_pod(&kc, "vip", &p, "tiny").await;
    assert!(placed.iter().all(|(_, _, n)| n != "tiny"));
    assert_eq!(
        refuse(&mut c, "vip", tpod("vip-1", json!({}), "1", json!({}))).await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );

    // The syncer creates the super pods: every reservation becomes a placed pod.
    for (t, p, n) in &placed {
        create_super_pod(&kc, t, p, n).await;
    }
    wait_metric(&ss.metrics, "kplex_scheduler_reservations", 0.0).await;
    wait_metric(&ss.metrics, "kplex_scheduler_placed_pods", (placed.len() + 5) as f64).await;
    let released = c.release(proto::ReleaseRequest { pods: vec![PodRef { tenant: "acme".into(), uid: "uid-plain-0".into(), ..Default::default() }] }).await;
    assert_eq!(released.unwrap().into_inner().released, 0, "a pod that runs is not released");

    // Deleting a super pod frees its node: the change is announced and the next try fits.
    let mut changes = c.watch_changes(proto::WatchChangesRequest {}).await.unwrap().into_inner();
    changes.next().await.unwrap().unwrap();
    let pods: Api<Pod> = Api::namespaced(kc.clone(), "default");
    pods.delete("vip-vip-0", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    assert_eq!(place_after_change(&mut c, &mut changes, "vip", tpod("vip-1", json!({}), "1", json!({}))).await, "tiny");

    // A reservation the syncer will not use is released, once.
    let n = place(&mut c, "acme", tpod("dropped", json!({}), "100m", json!({}))).await;
    let pod_ref = || PodRef { tenant: "acme".into(), uid: "uid-dropped".into(), ..Default::default() };
    assert_eq!(c.release(proto::ReleaseRequest { pods: vec![pod_ref()] }).await.unwrap().into_inner().released, 1, "on {n}");
    assert_eq!(c.release(proto::ReleaseRequest { pods: vec![pod_ref()] }).await.unwrap().into_inner().released, 0);

    // A node added later is used once the watch delivers it.
    let mut changes = c.watch_changes(proto::WatchChangesRequest {}).await.unwrap().into_inner();
    changes.next().await.unwrap().unwrap();
    create_node(&kc, NodeDef("d1", "zone-d", "m5.large", "4", json!({}), json!([]), json!({}))).await;
    let late = tpod("late", json!({}), "100m", json!({"nodeSelector": {"topology.kubernetes.io/zone": "zone-d"}}));
    assert_eq!(place_after_change(&mut c, &mut changes, "acme", late).await, "d1");

    // The virtual node shows allow-listed labels, taints and capacity; nothing of the provider's.
    let v = c.get_virtual_nodes(proto::GetVirtualNodesRequest { tenant: "acme".into(), node_names: vec!["b1".into(), "gpu-1".into(), "tiny".into()] }).await;
    let v = v.unwrap().into_inner().nodes;
    assert_eq!(v.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), vec!["b1", "gpu-1"], "acme cannot see vip's node");
    assert!(!v[0].labels.contains_key("corp.example/rack") && v[0].labels["topology.kubernetes.io/zone"] == "zone-b");
    assert_eq!(v[0].capacity["cpu"], "4");
    assert!(v[0].ready && v[1].taints.iter().any(|t| t.key == "nvidia.com/gpu" && t.effect == "NoSchedule"));

    // Metrics count decisions, and refusals by tenant and cause.
    let body = reqwest_get(&ss.metrics).await;
    assert!(body.contains("kplex_scheduler_decisions_total{result=\"scheduled\"}"), "{body}");
    assert!(body.contains("kplex_scheduler_unschedulable_total{tenant=\"small\",cause=\"quota\"} 1"), "{body}");
    assert!(body.contains("kplex_scheduler_decision_duration_seconds_bucket"), "{body}");
    drop(ss);
}
