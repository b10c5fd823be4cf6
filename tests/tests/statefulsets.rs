//! StatefulSets with the built-in statefulset controller, driven with kubectl: ordered creation
//! (web-1 only once web-0 is Ready) with PersistentVolumeClaims made before their pods,
//! Parallel creation, ordered scale up and down, retention-policy ownership of claims, a
//! partitioned rolling update, and `kubectl rollout status/history/undo`.
//!
//! One etcd and tenant master serve every check, each in its own namespace.

use std::time::{Duration, Instant};

use kplex_e2e::kubelet::{FakeKubelet, KubeletOpts};
use kplex_e2e::{kubectl_with, Etcd, TenantMaster};
use serde_json::Value;

fn sts(ns: &str, replicas: u32, policy: &str, extra_spec: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: {ns}}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web, namespace: {ns}}}
spec:
  serviceName: web
  replicas: {replicas}
  podManagementPolicy: {policy}
  selector: {{matchLabels: {{app: web}}}}
  {extra_spec}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        volumeMounts: [{{name: www, mountPath: /usr/share/nginx/html}}]
  volumeClaimTemplates:
  - metadata: {{name: www}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
"#
    )
}

fn apply(tm: &TenantMaster, yaml: &str) {
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(yaml));
    assert!(out.ok, "{out:?}");
}

/// Polls until `f` holds (a generous deadline: only for correctness, never for speed).
#[track_caller]
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(tm: &TenantMaster, ns: &str, kind: &str) -> Vec<String> {
    let out = tm.kubectl(&["-n", ns, "get", kind, "-o", "jsonpath={.items[*].metadata.name}"]).must();
    let mut v: Vec<String> = out.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

fn get(tm: &TenantMaster, ns: &str, what: &str) -> Value {
    serde_json::from_str(&tm.kubectl(&["-n", ns, "get", what, "-o", "json"]).must()).unwrap()
}

/// Reports a pod Ready, as its kubelet would.
fn make_ready(tm: &TenantMaster, ns: &str, pod: &str) {
    let patch = r#"{"status":{"conditions":[{"type":"Initialized","status":"True"},{"type":"ContainersReady","status":"True"},{"type":"Ready","status":"True"},{"type":"PodScheduled","status":"True"}]}}"#;
    tm.kubectl(&["-n", ns, "patch", "pod", pod, "--subresource=status", "--type=merge", "-p", patch]).must();
}

/// Event messages about the set, oldest first (event names end in hex nanoseconds).
fn events(tm: &TenantMaster, ns: &str) -> Vec<String> {
    let list = get(tm, ns, "events");
    let mut evs: Vec<(u128, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["kind"] == "StatefulSet")
        .map(|e| {
            let name = e["metadata"]["name"].as_str().unwrap();
            let nanos = u128::from_str_radix(name.rsplit('.').next().unwrap(), 16).unwrap_or(0);
            (nanos, e["message"].as_str().unwrap().to_string())
        })
        .collect();
    evs.sort();
    evs.into_iter().map(|(_, m)| m).collect()
}

fn rollout_status(tm: &TenantMaster, ns: &str) -> String {
    tm.kubectl(&["-n", ns, "rollout", "status", "sts/web", "--timeout=60s"]).must()
}

fn images(tm: &TenantMaster, ns: &str) -> Vec<(String, String)> {
    let pods = get(tm, ns, "pods");
    let mut v: Vec<(String, String)> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| (p["metadata"]["name"].as_str().unwrap().to_string(), p["spec"]["containers"][0]["image"].as_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn statefulsets_order_their_pods_and_claims() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "sts-e2e", dir.path(), &[]);

    // Pods stay Running but not Ready: web-1 must wait for web-0.
    let unready = FakeKubelet::start_with(&tm, KubeletOpts { ready: false, ..Default::default() });
    apply(&tm, &sts("order", 2, "OrderedReady", ""));
    apply(&tm, &sts("parallel", 3, "Parallel", ""));
    tm.kubectl(&["-n", "order", "wait", "--for=jsonpath={.status.phase}=Running", "pod/web-0", "--timeout=60s"]).must();
    assert_eq!(names(&tm, "order", "pvc"), vec!["www-web-0"]);
    // The controller has seen web-0 Running (status.replicas counts it) and still waits.
    wait_for("status of web", || get(&tm, "order", "sts/web")["status"]["replicas"] == 1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(names(&tm, "order", "pods"), vec!["web-0"], "web-1 must wait until web-0 is Ready");
    let web0 = get(&tm, "order", "pod/web-0");
    let set = get(&tm, "order", "sts/web");
    let labels = &web0["metadata"]["labels"];
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-0");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "0");
    assert_eq!(labels["controller-revision-hash"], set["status"]["updateRevision"]);
    assert_eq!((web0["spec"]["hostname"].as_str(), web0["spec"]["subdomain"].as_str()), (Some("web-0"), Some("web")));
    let vol = web0["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "www").unwrap().clone();
    assert_eq!(vol["persistentVolumeClaim"]["claimName"], "www-web-0");
    assert_eq!(web0["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");

    // Parallel: all three at once, none Ready.
    wait_for("three parallel pods", || names(&tm, "parallel", "pods").len() == 3);
    assert_eq!(names(&tm, "parallel", "pvc"), vec!["www-web-0", "www-web-1", "www-web-2"]);

    make_ready(&tm, "order", "web-0");
    wait_for("web-1", || names(&tm, "order", "pods") == vec!["web-0", "web-1"]);
    assert_eq!(names(&tm, "order", "pvc"), vec!["www-web-0", "www-web-1"]);
    wait_for("events", || events(&tm, "order").len() >= 4);
    let evs = events(&tm, "order");
    assert_eq!(
        evs[..4].to_vec(),
        vec![
            "create Claim www-web-0 Pod web-0 in StatefulSet web success",
            "create Pod web-0 in StatefulSet web successful",
            "create Claim www-web-1 Pod web-1 in StatefulSet web success",
            "create Pod web-1 in StatefulSet web successful",
        ],
        "{evs:?}"
    );
    let revs = tm.kubectl(&["-n", "order", "get", "controllerrevisions"]).must();
    assert!(revs.contains("statefulset.apps/web") && revs.contains(set["status"]["updateRevision"].as_str().unwrap()), "{revs}");
    drop(unready);

    // From here on pods become Ready.
    let _kubelet = FakeKubelet::start(&tm);

    // Scale up and down, highest ordinal first; claims follow the retention policy.
    let policy = "persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}";
    apply(&tm, &sts("scale", 2, "OrderedReady", policy));
    rollout_status(&tm, "scale");
    tm.kubectl(&["-n", "scale", "scale", "sts/web", "--replicas=3"]).must();
    let out = rollout_status(&tm, "scale");
    assert!(out.contains("partitioned roll out complete: 3 new pods have been updated"), "{out}");
    assert_eq!(names(&tm, "scale", "pods"), vec!["web-0", "web-1", "web-2"]);
    let claim = get(&tm, "scale", "pvc/www-web-2");
    assert_eq!(claim["metadata"]["ownerReferences"][0]["kind"], "StatefulSet", "{claim}");
    tm.kubectl(&["-n", "scale", "scale", "sts/web", "--replicas=1"]).must();
    let mut seen = Vec::new();
    wait_for("scale down to web-0", || {
        let n = names(&tm, "scale", "pods");
        seen.push(n.clone());
        n == vec!["web-0"]
    });
    assert!(!seen.iter().any(|n| n.contains(&"web-2".to_string()) && !n.contains(&"web-1".to_string())), "{seen:?}");
    let evs = events(&tm, "scale");
    let pos = |m: &str| evs.iter().position(|e| e == m).unwrap_or_else(|| panic!("{m} missing in {evs:?}"));
    assert!(pos("delete Pod web-2 in StatefulSet web successful") < pos("delete Pod web-1 in StatefulSet web successful"));
    // whenScaled Delete: the claims of scaled-away pods were handed to those pods, so the
    // garbage collector removes them with the pods; the remaining claim belongs to the set.
    wait_for("claims of scaled-away pods collected", || names(&tm, "scale", "pvc") == vec!["www-web-0"]);
    let refs = get(&tm, "scale", "pvc/www-web-0")["metadata"]["ownerReferences"].clone();
    assert_eq!(refs.as_array().map(|r| r.len()), Some(1), "{refs}");
    assert_eq!(refs[0]["kind"], "StatefulSet", "{refs}");
    let st = get(&tm, "scale", "sts/web")["status"].clone();
    assert_eq!((st["replicas"].as_i64(), st["readyReplicas"].as_i64()), (Some(1), Some(1)), "{st}");
    // Deleting the set: the garbage collector takes its pods, its revisions and (whenDeleted:
    // Delete) its claims.
    tm.kubectl(&["-n", "scale", "delete", "sts/web", "--wait=true"]).must();
    wait_for("pods, claims and revisions of a deleted set collected", || {
        names(&tm, "scale", "pods").is_empty() && names(&tm, "scale", "pvc").is_empty() && names(&tm, "scale", "controllerrevisions").is_empty()
    });

    // A rolling update with partition 1 replaces ordinals 2 and 1 only.
    apply(&tm, &sts("rolling", 3, "OrderedReady", "updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 1}}"));
    rollout_status(&tm, "rolling");
    let old_rev = get(&tm, "rolling", "sts/web")["status"]["currentRevision"].as_str().unwrap().to_string();
    tm.kubectl(&["-n", "rolling", "set", "image", "sts/web", "nginx=nginx:1.26"]).must();
    let out = rollout_status(&tm, "rolling");
    assert!(out.contains("partitioned roll out complete: 2 new pods have been updated"), "{out}");
    let want = |a: &str, b: &str, c: &str| vec![("web-0".to_string(), a.to_string()), ("web-1".into(), b.into()), ("web-2".into(), c.into())];
    assert_eq!(images(&tm, "rolling"), want("nginx:1.25", "nginx:1.26", "nginx:1.26"));
    let st = get(&tm, "rolling", "sts/web")["status"].clone();
    assert_eq!(
        (st["currentRevision"].as_str(), st["updatedReplicas"].as_i64(), st["currentReplicas"].as_i64()),
        (Some(old_rev.as_str()), Some(2), Some(1)),
        "{st}"
    );
    let new_rev = st["updateRevision"].as_str().unwrap().to_string();
    assert_ne!(new_rev, old_rev);
    assert_eq!(get(&tm, "rolling", "pod/web-0")["metadata"]["labels"]["controller-revision-hash"], old_rev);
    assert_eq!(get(&tm, "rolling", "pod/web-1")["metadata"]["labels"]["controller-revision-hash"], new_rev);

    // Partition 0 finishes the update; history and undo work as with any cluster.
    tm.kubectl(&["-n", "rolling", "patch", "sts/web", "--type=merge", "-p", r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#]).must();
    rollout_status(&tm, "rolling");
    assert_eq!(images(&tm, "rolling"), want("nginx:1.26", "nginx:1.26", "nginx:1.26"));
    wait_for("currentRevision", || get(&tm, "rolling", "sts/web")["status"]["currentRevision"] == new_rev.as_str());
    let hist = tm.kubectl(&["-n", "rolling", "rollout", "history", "sts/web"]).must();
    assert!(hist.contains("REVISION") && hist.contains("1 ") && hist.contains("2 "), "{hist}");
    let undo = tm.kubectl(&["-n", "rolling", "rollout", "undo", "sts/web"]).must();
    assert!(undo.contains("statefulset.apps/web rolled back"), "{undo}");
    rollout_status(&tm, "rolling");
    wait_for("rolled back images", || images(&tm, "rolling") == want("nginx:1.25", "nginx:1.25", "nginx:1.25"));
    let st = get(&tm, "rolling", "sts/web")["status"].clone();
    assert_eq!(st["updateRevision"].as_str(), Some(old_rev.as_str()), "the old revision is reused: {st}");
    let hist = tm.kubectl(&["-n", "rolling", "rollout", "history", "sts/web"]).must();
    assert!(hist.contains("2 ") && hist.contains("3 ") && !hist.contains("\n1 "), "{hist}");

    // Settled: nothing is written any more (no controller loops while idle).
    let rv = |tm: &TenantMaster| get(tm, "rolling", "sts/web")["metadata"]["resourceVersion"].clone();
    let (before, evs) = (rv(&tm), events(&tm, "rolling").len());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!((rv(&tm), events(&tm, "rolling").len()), (before, evs));
}
