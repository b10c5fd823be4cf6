//! A stand-in for the kubelet in end-to-end tests: the tenant master runs no scheduler and no
//! kubelet, so this binds pending pods to a node, reports them Running and Ready through the
//! status subresource, finishes pods of Jobs, and confirms the deletion of terminating pods.
//! It talks to the tenant master only through its API (the kube crate), as a kubelet would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::TenantMaster;

/// A further node the stand-in kubelet creates (if missing), with labels and taints of the
/// test's choosing.
#[derive(Debug, Clone, Default)]
pub struct NodeSpec {
    pub name: String,
    pub labels: Vec<(String, String)>,
    /// `{"key", "value", "effect"}` objects, as in `node.spec.taints`.
    pub taints: Vec<serde_json::Value>,
}

impl NodeSpec {
    pub fn new(name: &str) -> NodeSpec {
        NodeSpec { name: name.into(), ..Default::default() }
    }

    pub fn label(mut self, key: &str, value: &str) -> NodeSpec {
        self.labels.push((key.into(), value.into()));
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> NodeSpec {
        self.taints.push(json!({"key": key, "value": value, "effect": effect}));
        self
    }
}

/// How the stand-in kubelet behaves.
#[derive(Debug, Clone)]
pub struct KubeletOpts {
    /// The node pods are bound to (created if missing), unless their required node affinity
    /// names another one (`matchFields metadata.name In [node]`, as DaemonSet pods have).
    pub node: String,
    /// Further nodes to create besides `node`.
    pub nodes: Vec<NodeSpec>,
    /// Report pods Ready (false: Running but not Ready).
    pub ready: bool,
    /// Pods owned by a Job terminate this long after starting (or after the seconds in their
    /// annotation `kplex.test/runtime-seconds`): Succeeded, or Failed when the pod has the
    /// annotation `kplex.test/exit-code` with a non-zero value.
    pub job_pod_runtime: Duration,
}

impl Default for KubeletOpts {
    fn default() -> Self {
        KubeletOpts { node: "node-1".into(), nodes: Vec::new(), ready: true, job_pod_runtime: Duration::from_millis(500) }
    }
}

/// The running stand-in; stops when dropped.
pub struct FakeKubelet {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKubelet {
    pub fn start(tm: &TenantMaster) -> FakeKubelet {
        FakeKubelet::start_with(tm, KubeletOpts::default())
    }

    pub fn start_with(tm: &TenantMaster, opts: KubeletOpts) -> FakeKubelet {
        let stop = Arc::new(AtomicBool::new(false));
        let kubeconfig = tm.kubeconfig.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
                let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
                let client = kube::Client::try_from(cfg).unwrap();
                ensure_node(&client, &NodeSpec::new(&opts.node)).await;
                for n in &opts.nodes {
                    ensure_node(&client, n).await;
                }
                let _ = ready_tx.send(());
                run(client, opts, s).await;
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(30)).expect("fake kubelet did not start");
        FakeKubelet { stop, thread: Some(thread) }
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn ensure_node(client: &kube::Client, spec: &NodeSpec) {
    let name = spec.name.as_str();
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(name).await.unwrap().is_some() {
        return;
    }
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"});
    for (k, v) in &spec.labels {
        labels[k] = json!(v);
    }
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": spec.taints},
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let now = chrono_now();
    let status = json!({"status": {
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": name}],
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
}

fn chrono_now() -> String {
    // RFC 3339 in seconds, as metav1.Time serializes.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

async fn run(client: kube::Client, opts: KubeletOpts, stop: Arc<AtomicBool>) {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher(pods, watcher::Config::default()).boxed();
    let mut next_ip: u32 = 2;
    let mut ips: HashMap<String, String> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut finishing: Vec<(tokio::time::Instant, Pod)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let ev = tokio::select! {
            ev = stream.next() => ev,
            _ = tick.tick() => {
                let now = tokio::time::Instant::now();
                let due: Vec<Pod> = {
                    let (due, rest): (Vec<_>, Vec<_>) = finishing.drain(..).partition(|(at, _)| *at <= now);
                    finishing = rest;
                    due.into_iter().map(|(_, p)| p).collect()
                };
                for p in due {
                    finish(&client, &p).await;
                }
                continue;
            }
        };
        let ev = match ev {
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                eprintln!("fake kubelet: watch: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            None => return,
        };
        let pods = match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => vec![p],
            _ => continue,
        };
        for p in pods {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let spec = p.spec.clone().unwrap_or_default();
            let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
            if p.metadata.deletion_timestamp.is_some() {
                // The containers are stopped: confirm the deletion.
                let _ = api.delete(&name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await;
                continue;
            }
            if spec.node_name.as_deref().unwrap_or("").is_empty() {
                let node = pinned_node(&spec).unwrap_or_else(|| opts.node.clone());
                let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                                     "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/binding"))
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&binding).unwrap())
                    .unwrap();
                if let Err(e) = client.request_text(req).await {
                    eprintln!("fake kubelet: binding {ns}/{name}: {e}");
                }
                continue;
            }
            if phase == "Pending" || phase.is_empty() {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                let ip = ips
                    .entry(uid)
                    .or_insert_with(|| {
                        next_ip += 1;
                        format!("10.244.{}.{}", next_ip / 250, next_ip % 250 + 2)
                    })
                    .clone();
                let now = chrono_now();
                let ready = if opts.ready { "True" } else { "False" };
                let statuses: Vec<_> = spec
                    .containers
                    .iter()
                    .map(|c| json!({"name": c.name, "image": c.image, "imageID": "", "ready": opts.ready, "started": true,
                                    "restartCount": 0, "state": {"running": {"startedAt": now}}}))
                    .collect();
                let status = json!({"status": {
                    "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
                    "startTime": now, "containerStatuses": statuses,
                    "conditions": [
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                        {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                        {"type": "Ready", "status": ready, "lastTransitionTime": now},
                    ],
                }});
                if api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.is_ok() {
                    let owned_by_job = p.metadata.owner_references.iter().flatten().any(|o| o.kind == "Job");
                    if owned_by_job {
                        let runtime = p
                            .metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get("kplex.test/runtime-seconds"))
                            .and_then(|s| s.parse().ok())
                            .map(Duration::from_secs)
                            .unwrap_or(opts.job_pod_runtime);
                        finishing.push((tokio::time::Instant::now() + runtime, p.clone()));
                    }
                }
            }
        }
    }
}

/// The one node a pod's required node affinity names by `matchFields metadata.name In [..]`.
fn pinned_node(spec: &k8s_openapi::api::core::v1::PodSpec) -> Option<String> {
    let terms = &spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
    terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find_map(|r| {
        let vals = r.values.as_deref().unwrap_or_default();
        (r.key == "metadata.name" && r.operator == "In" && vals.len() == 1).then(|| vals[0].clone())
    })
}

/// Terminates a Job's pod: Succeeded, or Failed with the exit code its annotation asks for.
async fn finish(client: &kube::Client, p: &Pod) {
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    let name = p.metadata.name.clone().unwrap_or_default();
    let code: i32 = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kplex.test/exit-code"))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let now = chrono_now();
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let reason = if code == 0 { "Completed" } else { "Error" };
    let statuses: Vec<_> = p
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| json!({"name": c.name, "image": c.image, "imageID": "", "ready": false, "started": false, "restartCount": 0,
                        "state": {"terminated": {"exitCode": code, "reason": reason, "startedAt": now, "finishedAt": now}}}))
        .collect();
    let status = json!({"status": {
        "phase": phase, "containerStatuses": statuses,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
            {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
        ],
    }});
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await;
}
