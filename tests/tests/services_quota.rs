//! Endpoints, EndpointSlices, ResourceQuota and the pod garbage collector, driven with kubectl
//! and the kube crate against a real tenant master, as a user of a real cluster sees them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kplex_e2e::kubelet::FakeKubelet;
use kplex_e2e::{kubectl_with, Etcd, TenantMaster};
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;

/// Polls `f` until it returns Some, for up to 30 s (correctness only, never speed).
#[track_caller]
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_json(tm: &TenantMaster, args: &[&str]) -> Option<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let out = tm.kubectl(&a);
    out.ok.then(|| serde_json::from_str(&out.stdout).unwrap())
}

fn apply(tm: &TenantMaster, yaml: &str) {
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(yaml));
    assert!(out.ok, "{out:?}");
}

fn web_pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: svc\n  labels: {{app: web}}\nspec:\n  containers:\n  - name: c\n    image: nginx\n    ports:\n    - name: http\n      containerPort: 8080\n"
    )
}

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: svc
  labels: {tier: frontend}
spec:
  selector: {app: web}
  ports:
  - name: web
    port: 80
    targetPort: http
"#;

const EXTERNAL: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: ext
  namespace: svc
spec:
  ports:
  - name: db
    port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: ext
  namespace: svc
subsets:
- addresses: [{ip: 192.0.2.10}]
  notReadyAddresses: [{ip: 192.0.2.11}]
  ports: [{name: db, port: 5432}]
"#;

fn pod_ip(tm: &TenantMaster, name: &str) -> String {
    tm.kubectl(&["-n", "svc", "get", "pod", name, "-o", "jsonpath={.status.podIP}"]).must()
}

fn ips(list: &Value) -> BTreeSet<String> {
    list.as_array().into_iter().flatten().map(|a| a["ip"].as_str().unwrap().to_string()).collect()
}

/// (ready addresses, not-ready addresses, ports) of the `web` Endpoints.
fn endpoints(tm: &TenantMaster) -> Option<(BTreeSet<String>, BTreeSet<String>, Value)> {
    let ep = get_json(tm, &["-n", "svc", "endpoints", "web"])?;
    let subsets = ep["subsets"].as_array().cloned().unwrap_or_default();
    if subsets.len() > 1 {
        return None;
    }
    let s = subsets.first().cloned().unwrap_or(Value::Null);
    Some((ips(&s["addresses"]), ips(&s["notReadyAddresses"]), s["ports"].clone()))
}

/// The `web` slices' endpoints as (address, ready) and their ports.
fn slices(tm: &TenantMaster) -> (BTreeSet<(String, bool)>, Vec<Value>) {
    let list = get_json(tm, &["-n", "svc", "endpointslices", "-l", "kubernetes.io/service-name=web"]).unwrap();
    let mut eps = BTreeSet::new();
    let mut ports = Vec::new();
    for s in list["items"].as_array().unwrap() {
        for e in s["endpoints"].as_array().into_iter().flatten() {
            eps.insert((e["addresses"][0].as_str().unwrap().to_string(), e["conditions"]["ready"].as_bool().unwrap()));
        }
        ports.push(s["ports"].clone());
    }
    (eps, ports)
}

#[test]
fn endpoints_and_slices_list_the_ready_pods() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "svc-e2e", dir.path(), &["--terminated-pod-gc-threshold=2"]);
    let _kubelet = FakeKubelet::start(&tm);
    tm.kubectl(&["create", "namespace", "svc"]).must();
    for p in ["web-1", "web-2", "web-3"] {
        apply(&tm, &web_pod(p));
    }
    apply(&tm, SERVICE);
    tm.kubectl(&["-n", "svc", "wait", "--for=condition=Ready", "pod", "--all", "--timeout=30s"]).must();
    let all: BTreeSet<String> = ["web-1", "web-2", "web-3"].iter().map(|p| pod_ip(&tm, p)).collect();
    let port = serde_json::json!([{"name": "web", "port": 8080, "protocol": "TCP"}]);

    // Every ready pod, with the named target port resolved.
    let (ready, _, ports) = eventually("endpoints of 3 pods", || endpoints(&tm).filter(|(r, n, _)| *r == all && n.is_empty()));
    assert_eq!(ports, port);
    let ep = get_json(&tm, &["-n", "svc", "endpoints", "web"]).unwrap();
    assert_eq!(ep["metadata"]["labels"], serde_json::json!({"tier": "frontend"}));
    assert!(ep["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"].is_string(), "{ep}");
    let addr = &ep["subsets"][0]["addresses"][0];
    assert_eq!(addr["nodeName"], "node-1");
    assert_eq!(addr["targetRef"]["kind"], "Pod");
    assert_eq!(ready.len(), 3);
    let want: BTreeSet<(String, bool)> = all.iter().map(|ip| (ip.clone(), true)).collect();
    eventually("slices of 3 pods", || (slices(&tm).0 == want).then_some(()));
    let list = get_json(&tm, &["-n", "svc", "endpointslices", "-l", "kubernetes.io/service-name=web"]).unwrap();
    let s = &list["items"][0];
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(s["metadata"]["name"].as_str().unwrap().starts_with("web-"));
    assert_eq!(s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
    assert_eq!(s["metadata"]["labels"]["tier"], "frontend");
    assert_eq!(s["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(s["addressType"], "IPv4");
    assert_eq!(s["ports"], port);
    assert_eq!(s["endpoints"][0]["nodeName"], "node-1");

    // A pod turning unready moves to notReadyAddresses and ready=false.
    let unready = r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#;
    tm.kubectl(&["-n", "svc", "patch", "pod", "web-1", "--subresource=status", "--type=strategic", "-p", unready]).must();
    let ip1 = pod_ip(&tm, "web-1");
    let rest: BTreeSet<String> = all.iter().filter(|i| **i != ip1).cloned().collect();
    eventually("web-1 not ready in endpoints", || endpoints(&tm).filter(|(r, n, _)| *r == rest && n.len() == 1 && n.contains(&ip1)));
    let want: BTreeSet<(String, bool)> = all.iter().map(|ip| (ip.clone(), *ip != ip1)).collect();
    eventually("web-1 not ready in slices", || (slices(&tm).0 == want).then_some(()));

    // A deleted pod disappears.
    let ip2 = pod_ip(&tm, "web-2");
    tm.kubectl(&["-n", "svc", "delete", "pod", "web-2", "--timeout=30s"]).must();
    let left: BTreeSet<String> = rest.iter().filter(|i| **i != ip2).cloned().collect();
    eventually("web-2 gone from endpoints", || endpoints(&tm).filter(|(r, n, _)| *r == left && n.len() == 1));
    eventually("web-2 gone from slices", || (slices(&tm).0.len() == 2 && !slices(&tm).0.iter().any(|(a, _)| *a == ip2)).then_some(()));

    // Selector-less services keep their Endpoints as written (the `kubernetes` one by bootstrap).
    let k = get_json(&tm, &["-n", "default", "endpoints", "kubernetes"]).unwrap();
    assert!(k["subsets"][0]["addresses"][0]["ip"].is_string(), "{k}");
    assert!(k["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"].is_null(), "{k}");

    // A selector-less service: the user's Endpoints stay as written and are mirrored into
    // EndpointSlices; the bootstrap `kubernetes` slice is left alone.
    apply(&tm, EXTERNAL);
    let mirrored = eventually("mirrored slice", || {
        let l =
            get_json(&tm, &["-n", "svc", "endpointslices", "-l", "endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io"])?;
        l["items"].as_array().filter(|i| i.len() == 1).map(|i| i[0].clone())
    });
    assert_eq!(mirrored["metadata"]["labels"]["kubernetes.io/service-name"], "ext");
    assert_eq!(mirrored["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
    assert_eq!(mirrored["ports"], serde_json::json!([{"name": "db", "port": 5432, "protocol": "TCP"}]));
    let conds: BTreeSet<(String, bool)> = mirrored["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["addresses"][0].as_str().unwrap().to_string(), e["conditions"]["ready"].as_bool().unwrap()))
        .collect();
    assert_eq!(conds, [("192.0.2.10".to_string(), true), ("192.0.2.11".to_string(), false)].into_iter().collect());
    let ext = get_json(&tm, &["-n", "svc", "endpoints", "ext"]).unwrap();
    assert!(ext["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"].is_null(), "{ext}");
    assert_eq!(ext["subsets"][0]["addresses"][0]["ip"], "192.0.2.10");
    assert!(tm.kubectl(&["-n", "default", "get", "endpointslice", "kubernetes"]).ok);

    // The Endpoints go with their Service.
    tm.kubectl(&["-n", "svc", "delete", "service", "web"]).must();
    eventually("endpoints deleted", || (!tm.kubectl(&["-n", "svc", "get", "endpoints", "web"]).ok).then_some(()));

    // Terminated pods beyond --terminated-pod-gc-threshold (2): the oldest is deleted.
    tm.kubectl(&["create", "namespace", "done"]).must();
    for p in ["done-1", "done-2", "done-3"] {
        tm.kubectl(&["-n", "done", "run", p, "--image=busybox", "--restart=Never"]).must();
        std::thread::sleep(Duration::from_millis(1100)); // distinct creation timestamps
    }
    tm.kubectl(&["-n", "done", "wait", "--for=condition=Ready", "pod", "--all", "--timeout=30s"]).must();
    for p in ["done-1", "done-2", "done-3"] {
        tm.kubectl(&["-n", "done", "patch", "pod", p, "--subresource=status", "--type=merge", "-p", r#"{"status":{"phase":"Succeeded"}}"#]).must();
    }
    eventually("the oldest terminated pod collected", || {
        let names = tm.kubectl(&["-n", "done", "get", "pods", "-o", "name"]).must();
        (names.split_whitespace().collect::<Vec<_>>() == ["pod/done-2", "pod/done-3"]).then_some(())
    });
}

fn quota_used(tm: &TenantMaster, ns: &str, q: &str, res: &str) -> Option<String> {
    let out = tm.kubectl(&["-n", ns, "get", "quota", q, "-o", &format!("jsonpath={{.status.used.{}}}", res.replace('.', "\\."))]);
    (out.ok && !out.stdout.is_empty()).then_some(out.stdout)
}

#[test]
fn quota_is_enforced_at_create_time_and_pods_are_collected() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "quota-e2e", dir.path(), &["--pod-gc-quarantine=2s"]);

    // The third pod is refused with upstream's message and nothing is stored.
    tm.kubectl(&["create", "namespace", "q"]).must();
    tm.kubectl(&["-n", "q", "create", "quota", "q", "--hard=pods=2,services.nodeports=0"]).must();
    eventually("quota usage", || quota_used(&tm, "q", "q", "pods").filter(|u| u == "0"));
    tm.kubectl(&["-n", "q", "run", "p1", "--image=nginx"]).must();
    tm.kubectl(&["-n", "q", "run", "p2", "--image=nginx"]).must();
    let third = tm.kubectl(&["-n", "q", "run", "p3", "--image=nginx"]);
    assert!(!third.ok);
    assert_eq!(
        third.stderr.trim(),
        r#"Error from server (Forbidden): pods "p3" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"#
    );
    assert!(tm.kubectl(&["-n", "q", "get", "pod", "p3"]).stderr.contains("NotFound"));
    let d = tm.kubectl(&["-n", "q", "describe", "quota", "q"]).must();
    assert!(d.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pods", "2", "2"]), "{d}");
    assert!(d.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Resource", "Used", "Hard"]), "{d}");

    // Deleting a pod frees its slot; dry runs are checked but never charged.
    tm.kubectl(&["-n", "q", "delete", "pod", "p1"]).must();
    eventually("usage back to 1", || quota_used(&tm, "q", "q", "pods").filter(|u| u == "1"));
    for _ in 0..2 {
        tm.kubectl(&["-n", "q", "run", "dry", "--image=nginx", "--dry-run=server"]).must();
    }
    assert_eq!(quota_used(&tm, "q", "q", "pods").unwrap(), "1");
    tm.kubectl(&["-n", "q", "run", "p4", "--image=nginx"]).must();

    // Updates are charged too: a service may not become a NodePort one.
    tm.kubectl(&["-n", "q", "create", "service", "clusterip", "s1", "--tcp=80"]).must();
    let np = tm.kubectl(&["-n", "q", "patch", "service", "s1", "-p", r#"{"spec":{"type":"NodePort"}}"#]);
    assert!(!np.ok);
    assert!(
        np.stderr.contains(r#"services "s1" is forbidden: exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0"#),
        "{}",
        np.stderr
    );

    // Compute quotas require every container to state what they limit.
    tm.kubectl(&["create", "namespace", "cpu"]).must();
    tm.kubectl(&["-n", "cpu", "create", "quota", "cq", "--hard=limits.cpu=1"]).must();
    eventually("compute quota usage", || quota_used(&tm, "cpu", "cq", "limits.cpu"));
    let c = tm.kubectl(&["-n", "cpu", "run", "c", "--image=nginx"]);
    assert_eq!(c.stderr.trim(), r#"Error from server (Forbidden): pods "c" is forbidden: failed quota: cq: must specify limits.cpu for: c"#);

    // Concurrent creates never exceed the quota.
    tm.kubectl(&["create", "namespace", "burst"]).must();
    tm.kubectl(&["-n", "burst", "create", "quota", "three", "--hard=pods=3"]).must();
    eventually("burst quota usage", || quota_used(&tm, "burst", "three", "pods"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ok, refused) = rt.block_on(async {
        let pods: Api<Pod> = Api::namespaced(tm.client().await, "burst");
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let pods = pods.clone();
                tokio::spawn(async move {
                    let p: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": format!("b{i}")},
                        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))
                    .unwrap();
                    pods.create(&PostParams::default(), &p).await
                })
            })
            .collect();
        let mut ok = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("exceeded quota: three") => refused += 1,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(pods.list(&ListParams::default()).await.unwrap().items.len(), 3);
        (ok, refused)
    });
    assert_eq!((ok, refused), (3, 7));
    assert_eq!(quota_used(&tm, "burst", "three", "pods").unwrap(), "3");

    // A terminating pod that was never scheduled is force-deleted (marked Failed; its
    // finalizer keeps it until removed).
    tm.kubectl(&["create", "namespace", "gc"]).must();
    apply(&tm, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: held\n  namespace: gc\n  finalizers: [kplex.test/hold]\nspec:\n  containers:\n  - name: c\n    image: nginx\n");
    tm.kubectl(&["-n", "gc", "delete", "pod", "held", "--wait=false"]).must();
    eventually("unscheduled terminating pod failed", || {
        let p = get_json(&tm, &["-n", "gc", "pod", "held"])?;
        (p["status"]["phase"] == "Failed").then_some(())
    });
    tm.kubectl(&["-n", "gc", "patch", "pod", "held", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]).must();
    eventually("held pod gone", || (!tm.kubectl(&["-n", "gc", "get", "pod", "held"]).ok).then_some(()));

    // Pods on a node that is deleted go away after the quarantine, marked Failed with the
    // DisruptionTarget condition first.
    apply(&tm, "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-x\n");
    let on_node = |name: &str, fin: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: gc\n  finalizers: [{fin}]\nspec:\n  nodeName: node-x\n  containers:\n  - name: c\n    image: nginx\n")
    };
    apply(&tm, &on_node("orphan", "kplex.test/hold"));
    apply(&tm, &on_node("orphan2", "").replace("  finalizers: []\n", ""));
    tm.kubectl(&["delete", "node", "node-x"]).must();
    eventually("orphan without finalizers deleted", || (!tm.kubectl(&["-n", "gc", "get", "pod", "orphan2"]).ok).then_some(()));
    let p = eventually("orphan marked", || get_json(&tm, &["-n", "gc", "pod", "orphan"]).filter(|p| p["status"]["phase"] == "Failed"));
    let cond = p["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "DisruptionTarget").cloned().unwrap();
    assert_eq!((cond["status"].as_str(), cond["reason"].as_str()), (Some("True"), Some("DeletionByPodGC")));
    assert_eq!(cond["message"], "PodGC: node no longer exists");
    assert!(p["metadata"]["deletionTimestamp"].is_string());
}
