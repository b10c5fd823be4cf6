//! Deployments, ReplicaSets and ReplicationControllers with the built-in controllers, driven by
//! the real kubectl, the stand-in kubelet making pods Ready (issue 4's first acceptance bullet):
//! create, rollout status, a rolling update watched for its maxSurge/maxUnavailable bounds,
//! rollout history and undo, scaling up and down, pause/resume and restart, and a
//! ReplicationController keeping its replicas. One etcd and tenant master serve all checks,
//! each in a namespace of its own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kplex_e2e::kubelet::FakeKubelet;
use kplex_e2e::{Etcd, TenantMaster};
use kube::api::Api;
use kube::runtime::watcher;

/// Polls `f` until it returns Some, for at most `secs` seconds.
#[track_caller]
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a watch on a namespace's pods and ReplicaSets saw during a rollout.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Most pods not being deleted at any moment.
    max_pods: usize,
    /// Fewest Ready pods not being deleted at any moment.
    min_ready: usize,
    /// Largest sum of the ReplicaSets' spec.replicas.
    max_desired: i32,
    events: usize,
}

/// Watches pods and ReplicaSets of a namespace from a thread of its own until dropped.
struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(tm: &TenantMaster, ns: &str) -> Watch {
        let (stop, seen) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Mutex::new(Seen {
                min_ready: usize::MAX,
                ..Default::default()
            })),
        );
        let (kubeconfig, ns) = (tm.kubeconfig.clone(), ns.to_string());
        let (s, out) = (stop.clone(), seen.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
                let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .unwrap();
                let client = kube::Client::try_from(cfg).unwrap();
                let pods = watcher(
                    Api::<Pod>::namespaced(client.clone(), &ns),
                    watcher::Config::default(),
                )
                .map(|e| e.map(Ev::Pod));
                let rss = watcher(
                    Api::<ReplicaSet>::namespaced(client, &ns),
                    watcher::Config::default(),
                )
                .map(|e| e.map(Ev::Rs));
                let mut both = futures::stream::select(pods.boxed(), rss.boxed());
                let (mut pod_state, mut rs_state): (
                    HashMap<String, Pod>,
                    HashMap<String, ReplicaSet>,
                ) = Default::default();
                let (mut pods_synced, mut rss_synced, mut announced) = (false, false, false);
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while !s.load(Ordering::SeqCst) {
                    let ev = tokio::select! {
                        ev = both.next() => ev,
                        _ = tick.tick() => continue,
                    };
                    let Some(Ok(ev)) = ev else { continue };
                    match ev {
                        Ev::Pod(watcher::Event::Apply(p))
                        | Ev::Pod(watcher::Event::InitApply(p)) => {
                            pod_state.insert(p.metadata.name.clone().unwrap_or_default(), p);
                        }
                        Ev::Pod(watcher::Event::Delete(p)) => {
                            pod_state.remove(&p.metadata.name.clone().unwrap_or_default());
                        }
                        Ev::Pod(watcher::Event::InitDone) => pods_synced = true,
                        Ev::Rs(watcher::Event::Apply(r)) | Ev::Rs(watcher::Event::InitApply(r)) => {
                            rs_state.insert(r.metadata.name.clone().unwrap_or_default(), r);
                        }
                        Ev::Rs(watcher::Event::Delete(r)) => {
                            rs_state.remove(&r.metadata.name.clone().unwrap_or_default());
                        }
                        Ev::Rs(watcher::Event::InitDone) => rss_synced = true,
                        _ => {}
                    }
                    if !(pods_synced && rss_synced) {
                        continue;
                    }
                    if !announced {
                        announced = true;
                        let _ = ready_tx.send(());
                    }
                    let live: Vec<&Pod> = pod_state
                        .values()
                        .filter(|p| p.metadata.deletion_timestamp.is_none())
                        .collect();
                    let ready = live.iter().filter(|p| is_ready(p)).count();
                    let desired: i32 = rs_state
                        .values()
                        .map(|r| r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0))
                        .sum();
                    let mut st = out.lock().unwrap();
                    st.max_pods = st.max_pods.max(live.len());
                    st.min_ready = st.min_ready.min(ready);
                    st.max_desired = st.max_desired.max(desired);
                    st.events += 1;
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("watch did not start");
        Watch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

enum Ev {
    Pod(watcher::Event<Pod>),
    Rs(watcher::Event<ReplicaSet>),
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        .unwrap_or(false)
}

/// Names of the pods of a namespace that are not being deleted, with their image.
fn live_pods(tm: &TenantMaster, ns: &str) -> Vec<(String, String)> {
    let out = tm.kubectl(&["-n", ns, "get", "pods", "-o", "json"]).must();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

fn jsonpath(tm: &TenantMaster, ns: &str, obj: &str, path: &str) -> String {
    tm.kubectl(&["-n", ns, "get", obj, "-o", &format!("jsonpath={path}")])
        .must()
}

fn rollout_status(tm: &TenantMaster, ns: &str) {
    let out = tm
        .kubectl(&[
            "-n",
            ns,
            "rollout",
            "status",
            "deployment/web",
            "--timeout=90s",
        ])
        .must();
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
}

#[test]
fn deployments_roll_scale_pause_restart_and_undo() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "deploys", dir.path(), &[]);
    let kubelet = FakeKubelet::start(&tm);
    let ns = "roll";
    tm.kubectl(&["create", "namespace", ns]).must();

    // Create: three pods of one ReplicaSet named after the template hash.
    tm.kubectl(&[
        "-n",
        ns,
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=3",
    ])
    .must();
    rollout_status(&tm, ns);
    let pods = live_pods(&tm, ns);
    assert_eq!(pods.len(), 3, "{pods:?}");
    let rs1 = jsonpath(&tm, ns, "rs", "{.items[0].metadata.name}");
    let hash = jsonpath(
        &tm,
        ns,
        "rs",
        "{.items[0].metadata.labels.pod-template-hash}",
    );
    assert_eq!(rs1, format!("web-{hash}"));
    assert!(
        pods.iter()
            .all(|(n, i)| n.starts_with(&format!("{rs1}-")) && i == "nginx:1.25"),
        "{pods:?}"
    );
    let table = tm.kubectl(&["-n", ns, "get", "deploy", "web"]).must();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "3/3", "3", "3"], "{table}");
    assert_eq!(
        jsonpath(
            &tm,
            ns,
            "deploy/web",
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "1"
    );

    // Rolling update, watched: the defaults on 3 replicas allow 1 extra pod and 0 unavailable.
    let watch = Watch::start(&tm, ns);
    tm.kubectl(&[
        "-n",
        ns,
        "set",
        "image",
        "deployment/web",
        "nginx=nginx:1.26",
    ])
    .must();
    rollout_status(&tm, ns);
    let seen = watch.finish();
    assert!(seen.events > 5, "the rollout was observed: {seen:?}");
    assert!(
        seen.max_desired <= 4,
        "never more than replicas+maxSurge pods wanted: {seen:?}"
    );
    assert!(
        seen.max_pods <= 4,
        "never more than replicas+maxSurge pods: {seen:?}"
    );
    assert!(
        seen.min_ready >= 3,
        "never fewer than replicas-maxUnavailable ready: {seen:?}"
    );
    let pods = wait_for(30, "old pods to go", || {
        Some(live_pods(&tm, ns)).filter(|p| p.len() == 3)
    });
    assert!(pods.iter().all(|(_, i)| i == "nginx:1.26"), "{pods:?}");
    let desc = tm
        .kubectl(&["-n", ns, "describe", "deployment", "web"])
        .must();
    assert!(
        desc.contains(&format!("Scaled up replica set {rs1} to 3")),
        "{desc}"
    );
    assert!(
        desc.contains("ScalingReplicaSet") && desc.contains("deployment-controller"),
        "{desc}"
    );
    assert!(
        desc.contains(&format!("Scaled down replica set {rs1} to 0 from 1")),
        "{desc}"
    );
    assert!(desc.contains("NewReplicaSetAvailable"), "{desc}");

    // History lists both revisions; undo goes back to 1.25 as revision 3, reusing the first
    // ReplicaSet.
    let hist = tm
        .kubectl(&["-n", ns, "rollout", "history", "deployment/web"])
        .must();
    let revs: Vec<&str> = hist
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, ["1", "2"], "{hist}");
    let rev1 = tm
        .kubectl(&[
            "-n",
            ns,
            "rollout",
            "history",
            "deployment/web",
            "--revision=1",
        ])
        .must();
    assert!(rev1.contains("nginx:1.25"), "{rev1}");
    let undo = tm
        .kubectl(&["-n", ns, "rollout", "undo", "deployment/web"])
        .must();
    assert!(undo.contains("rolled back"), "{undo}");
    rollout_status(&tm, ns);
    let pods = wait_for(30, "undo to settle", || {
        Some(live_pods(&tm, ns)).filter(|p| p.len() == 3)
    });
    assert!(
        pods.iter()
            .all(|(n, i)| i == "nginx:1.25" && n.starts_with(&format!("{rs1}-"))),
        "{pods:?}"
    );
    assert_eq!(
        jsonpath(
            &tm,
            ns,
            "deploy/web",
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "3"
    );
    let hist = tm
        .kubectl(&["-n", ns, "rollout", "history", "deployment/web"])
        .must();
    let revs: Vec<&str> = hist
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(revs, ["2", "3"], "{hist}");
    assert_eq!(
        jsonpath(
            &tm,
            ns,
            &format!("rs/{rs1}"),
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision-history}"
        ),
        "1"
    );

    // Scale up and back down.
    tm.kubectl(&["-n", ns, "scale", "deployment/web", "--replicas=5"])
        .must();
    rollout_status(&tm, ns);
    wait_for(30, "5 pods", || {
        Some(()).filter(|_| live_pods(&tm, ns).len() == 5)
    });
    tm.kubectl(&["-n", ns, "scale", "deployment/web", "--replicas=3"])
        .must();
    rollout_status(&tm, ns);
    wait_for(30, "3 pods", || {
        Some(()).filter(|_| live_pods(&tm, ns).len() == 3)
    });
    assert_eq!(
        jsonpath(
            &tm,
            ns,
            "deploy/web",
            "{.status.replicas} {.status.availableReplicas}"
        ),
        "3 3"
    );

    // Paused: a template change waits (scaling still applies); resumed, it rolls out.
    tm.kubectl(&["-n", ns, "rollout", "pause", "deployment/web"])
        .must();
    tm.kubectl(&[
        "-n",
        ns,
        "set",
        "image",
        "deployment/web",
        "nginx=nginx:1.27",
    ])
    .must();
    tm.kubectl(&["-n", ns, "scale", "deployment/web", "--replicas=4"])
        .must();
    wait_for(30, "the paused deployment to scale", || {
        Some(()).filter(|_| live_pods(&tm, ns).len() == 4)
    });
    let reason = wait_for(30, "the paused condition", || {
        Some(jsonpath(
            &tm,
            ns,
            "deploy/web",
            "{.status.conditions[?(@.type==\"Progressing\")].reason}",
        ))
        .filter(|r| r == "DeploymentPaused")
    });
    assert_eq!(reason, "DeploymentPaused");
    assert_eq!(
        jsonpath(&tm, ns, "rs", "{.items[*].metadata.name}")
            .split_whitespace()
            .count(),
        2,
        "no new ReplicaSet while paused"
    );
    assert!(live_pods(&tm, ns).iter().all(|(_, i)| i == "nginx:1.25"));
    tm.kubectl(&["-n", ns, "rollout", "resume", "deployment/web"])
        .must();
    rollout_status(&tm, ns);
    let pods = wait_for(30, "the resumed rollout", || {
        Some(live_pods(&tm, ns))
            .filter(|p| p.len() == 4 && p.iter().all(|(_, i)| i == "nginx:1.27"))
    });
    assert_eq!(pods.len(), 4);
    assert_eq!(
        jsonpath(
            &tm,
            ns,
            "deploy/web",
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "4"
    );

    // Restart: a new template annotation, a new ReplicaSet, fresh pods.
    let before: Vec<String> = live_pods(&tm, ns).into_iter().map(|(n, _)| n).collect();
    tm.kubectl(&["-n", ns, "rollout", "restart", "deployment/web"])
        .must();
    rollout_status(&tm, ns);
    let after = wait_for(30, "restarted pods", || {
        Some(live_pods(&tm, ns))
            .filter(|p| p.len() == 4 && p.iter().all(|(n, _)| !before.contains(n)))
    });
    assert_eq!(after.len(), 4);
    assert_eq!(
        jsonpath(
            &tm,
            ns,
            "deploy/web",
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "5"
    );
    let restarted = jsonpath(
        &tm,
        ns,
        "deploy/web",
        "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    );
    assert!(!restarted.is_empty());

    // A ReplicationController from YAML keeps its replicas.
    let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: legacy\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {app: legacy}\n    spec:\n      containers: [{name: c, image: nginx}]\n";
    tm.kubectl(&["create", "namespace", "legacy"]).must();
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    kplex_e2e::kubectl_with(
        &kubectl,
        &tm.kubeconfig,
        &["-n", "legacy", "apply", "-f", "-"],
        Some(rc),
    )
    .must();
    let ready = |want: &str| {
        wait_for(30, "the replication controller", || {
            Some(())
                .filter(|_| jsonpath(&tm, "legacy", "rc/legacy", "{.status.readyReplicas}") == want)
        })
    };
    ready("2");
    let victim = live_pods(&tm, "legacy")[0].0.clone();
    tm.kubectl(&["-n", "legacy", "delete", "pod", &victim])
        .must();
    wait_for(30, "a replacement pod", || {
        Some(()).filter(|_| {
            let p = live_pods(&tm, "legacy");
            p.len() == 2 && p.iter().all(|(n, _)| *n != victim)
        })
    });
    ready("2");
    let table = tm.kubectl(&["-n", "legacy", "get", "rc"]).must();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["legacy", "2", "2", "2"], "{table}");

    // Recreate: the old pods go before any new one is made.
    let rec = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  strategy: {type: Recreate}\n  selector: {matchLabels: {app: rec}}\n  template:\n    metadata: {labels: {app: rec}}\n    spec:\n      containers: [{name: nginx, image: 'nginx:1.25'}]\n";
    tm.kubectl(&["create", "namespace", "recreate"]).must();
    kplex_e2e::kubectl_with(
        &kubectl,
        &tm.kubeconfig,
        &["-n", "recreate", "apply", "-f", "-"],
        Some(rec),
    )
    .must();
    rollout_status(&tm, "recreate");
    let watch = Watch::start(&tm, "recreate");
    tm.kubectl(&[
        "-n",
        "recreate",
        "set",
        "image",
        "deployment/web",
        "nginx=nginx:1.26",
    ])
    .must();
    rollout_status(&tm, "recreate");
    let pods = wait_for(30, "the recreated pods", || {
        Some(live_pods(&tm, "recreate"))
            .filter(|p| p.len() == 2 && p.iter().all(|(_, i)| i == "nginx:1.26"))
    });
    assert_eq!(pods.len(), 2);
    let seen = watch.finish();
    assert!(
        seen.max_pods <= 2 && seen.max_desired <= 2,
        "no surge with Recreate: {seen:?}"
    );
    assert_eq!(
        seen.min_ready, 0,
        "Recreate has all old pods gone before new ones: {seen:?}"
    );

    // Without a kubelet nothing becomes ready: the rollout runs past its progress deadline and
    // `kubectl rollout status` says so.
    drop(kubelet);
    let stuck = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 3\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      containers: [{name: c, image: nginx}]\n";
    tm.kubectl(&["create", "namespace", "stuck"]).must();
    kplex_e2e::kubectl_with(
        &kubectl,
        &tm.kubeconfig,
        &["-n", "stuck", "apply", "-f", "-"],
        Some(stuck),
    )
    .must();
    let out = tm.kubectl(&[
        "-n",
        "stuck",
        "rollout",
        "status",
        "deployment/stuck",
        "--timeout=60s",
    ]);
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("deployment \"stuck\" exceeded its progress deadline"),
        "{out:?}"
    );
    let cond = jsonpath(&tm, "stuck", "deploy/stuck", "{.status.conditions[?(@.type==\"Progressing\")].reason}: {.status.conditions[?(@.type==\"Progressing\")].message}");
    assert!(
        cond.starts_with("ProgressDeadlineExceeded: ReplicaSet \"stuck-")
            && cond.ends_with("\" has timed out progressing."),
        "{cond}"
    );
}

fn names(tm: &TenantMaster, ns: &str, kinds: &str) -> Vec<String> {
    let out = tm.kubectl(&["-n", ns, "get", kinds, "-o", "name"]).must();
    let mut v: Vec<String> = out.lines().map(String::from).collect();
    v.sort();
    v
}

/// Issue 4's second acceptance bullet with the garbage collector, and a ResourceQuota capping a
/// Deployment: the controllers, the collector and quota admission working together.
#[test]
fn deleting_deployments_cascades_and_quota_caps_replicas() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "cascade", dir.path(), &[]);
    let _kubelet = FakeKubelet::start(&tm);
    for ns in ["bg", "orphan", "fg", "quota"] {
        tm.kubectl(&["create", "namespace", ns]).must();
    }
    for ns in ["bg", "orphan", "fg"] {
        tm.kubectl(&["-n", ns, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=2"]).must();
    }
    for ns in ["bg", "orphan", "fg"] {
        rollout_status(&tm, ns);
    }

    // Background (kubectl's default): the ReplicaSet and then its pods go.
    tm.kubectl(&["-n", "bg", "delete", "deployment", "web"]).must();
    wait_for(60, "the ReplicaSet and pods of a deleted deployment to go", || names(&tm, "bg", "rs,pods").is_empty().then_some(()));

    // Orphan: the ReplicaSet and pods stay, no longer owned; a new deployment adopts them back.
    tm.kubectl(&["-n", "orphan", "delete", "deployment", "web", "--cascade=orphan"]).must();
    wait_for(30, "the orphaned ReplicaSet to lose its owner", || {
        let owners = tm.kubectl(&["-n", "orphan", "get", "rs", "-o", "jsonpath={.items[*].metadata.ownerReferences}"]).must();
        owners.trim().is_empty().then_some(())
    });
    let pods = live_pods(&tm, "orphan");
    assert_eq!(pods.len(), 2, "{pods:?}");
    tm.kubectl(&["-n", "orphan", "create", "deployment", "web", "--image=nginx:1.25", "--replicas=2"]).must();
    rollout_status(&tm, "orphan");
    let kept: Vec<String> = live_pods(&tm, "orphan").into_iter().map(|p| p.0).collect();
    assert_eq!(kept, pods.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), "the recreated deployment adopts the same pods");
    assert_eq!(names(&tm, "orphan", "rs").len(), 1);

    // Foreground: the deployment stays (foregroundDeletion) until its dependents are gone.
    tm.kubectl(&["-n", "fg", "delete", "deployment", "web", "--cascade=foreground", "--wait=false"]).must();
    let fins = tm.kubectl(&["-n", "fg", "get", "deployment", "web", "-o", "jsonpath={.metadata.finalizers}"]);
    if fins.ok {
        assert!(fins.stdout.contains("foregroundDeletion") || fins.stdout.is_empty(), "{}", fins.stdout);
    }
    tm.kubectl(&["-n", "fg", "wait", "--for=delete", "deployment/web", "--timeout=60s"]).must();
    assert!(names(&tm, "fg", "rs,pods").is_empty(), "dependents are gone before the owner");

    // Quota: pods=2 caps a deployment of 3; the ReplicaSet says why.
    tm.kubectl(&["-n", "quota", "create", "quota", "q", "--hard=pods=2"]).must();
    tm.kubectl(&["-n", "quota", "create", "deployment", "web", "--image=nginx:1.25", "--replicas=3"]).must();
    let msg = wait_for(60, "the ReplicaSet to report ReplicaFailure", || {
        let out = tm
            .kubectl(&["-n", "quota", "get", "rs", "-o", "jsonpath={.items[0].status.conditions[?(@.type==\"ReplicaFailure\")].message}"])
            .must();
        (!out.is_empty()).then_some(out)
    });
    assert!(msg.contains("exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"), "{msg}");
    assert_eq!(live_pods(&tm, "quota").len(), 2);
    let events = tm.kubectl(&["-n", "quota", "get", "events", "--field-selector=reason=FailedCreate", "-o", "jsonpath={.items[*].message}"]).must();
    assert!(events.contains("Error creating: pods \"web-") && events.contains("is forbidden: exceeded quota: q"), "{events}");
    // Raising the quota lets the third pod in.
    tm.kubectl(&["-n", "quota", "patch", "quota", "q", "--type=merge", "-p", "{\"spec\":{\"hard\":{\"pods\":\"3\"}}}"]).must();
    wait_for(60, "the third pod once the quota allows it", || (live_pods(&tm, "quota").len() == 3).then_some(()));
}
