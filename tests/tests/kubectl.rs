//! kubectl against a tenant master, as a user of a real cluster drives it.

use kplex_e2e::{kubectl_versions, kubectl_with, Etcd, TenantMaster};

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
"#;

fn pod(name: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {{app: web}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
}

#[test]
fn kubectl_flows_work_like_a_real_cluster() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "kubectl-e2e", dir.path(), &[]);

    let v = tm.kubectl(&["version", "-o", "json"]);
    assert!(v.ok, "{v:?}");
    assert!(v.stdout.contains("\"gitVersion\": \"v1.33."), "{}", v.stdout);

    let ns = tm.kubectl(&["get", "ns"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.stdout.contains(n), "{}", ns.stdout);
    }
    assert!(ns.stdout.starts_with("NAME"), "{}", ns.stdout);
    let svc = tm.kubectl(&["get", "svc", "kubernetes", "-n", "default"]);
    assert!(svc.stdout.contains("10.96.0.1") && svc.stdout.contains("443/TCP"), "{}", svc.stdout);

    let created = kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(MANIFEST));
    assert!(created.ok, "{created:?}");
    assert!(created.stdout.contains("deployment.apps/web created"), "{}", created.stdout);

    let cm = tm.kubectl(&["-n", "shop", "create", "configmap", "settings", "--from-literal=color=blue"]);
    assert!(cm.ok, "{cm:?}");
    let y = tm.kubectl(&["-n", "shop", "get", "configmap", "settings", "-o", "yaml"]);
    assert!(y.stdout.contains("color: blue") && y.stdout.contains("resourceVersion:"), "{}", y.stdout);
    let j = tm.kubectl(&["-n", "shop", "get", "deploy", "web", "-o", "json"]);
    let d: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["metadata"]["generation"], 1);
    let jp = tm.kubectl(&["-n", "shop", "get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].imagePullPolicy}"]);
    assert_eq!(jp.stdout, "IfNotPresent");

    let wide = tm.kubectl(&["-n", "shop", "get", "deploy,rs,pods", "-o", "wide"]);
    assert!(wide.stdout.contains("READY") && wide.stdout.contains("UP-TO-DATE") && wide.stdout.contains("IMAGES"), "{}", wide.stdout);

    assert!(tm.kubectl(&["-n", "shop", "label", "configmap", "settings", "tier=gold"]).ok);
    assert!(tm.kubectl(&["-n", "shop", "annotate", "configmap", "settings", "owner=team-a"]).ok);
    let sel = tm.kubectl(&["-n", "shop", "get", "cm", "-l", "tier in (gold,silver)", "-o", "name"]);
    assert_eq!(sel.stdout.trim(), "configmap/settings");
    let ann = tm.kubectl(&["-n", "shop", "get", "cm", "settings", "-o", "jsonpath={.metadata.annotations.owner}"]);
    assert_eq!(ann.stdout, "team-a");

    let sc = tm.kubectl(&["-n", "shop", "scale", "deploy", "web", "--replicas=5"]);
    assert!(sc.ok, "{sc:?}");
    let r = tm.kubectl(&["-n", "shop", "get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.metadata.generation}"]);
    assert_eq!(r.stdout, "5 2");

    // get -w shows changes live.
    let kc = tm.kubeconfig.clone();
    let watcher = std::thread::spawn(move || {
        std::process::Command::new("timeout")
            .args(["6", "kubectl", "--kubeconfig"])
            .arg(&kc)
            .args(["-n", "shop", "get", "pods", "-w"])
            .output()
            .unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let p = kubectl_with("kubectl", &tm.kubeconfig, &["create", "-f", "-"], Some(&pod("live-1")));
    assert!(p.ok, "{p:?}");
    let out = watcher.join().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("live-1") && shown.contains("Pending"), "watch printed: {shown}");

    // describe with events.
    let uid = tm.kubectl(&["-n", "shop", "get", "pod", "live-1", "-o", "jsonpath={.metadata.uid}"]).stdout;
    let ev = format!("apiVersion: v1\nkind: Event\nmetadata:\n  name: live-1.a\n  namespace: shop\ninvolvedObject:\n  apiVersion: v1\n  kind: Pod\n  name: live-1\n  namespace: shop\n  uid: {uid}\nreason: Pulled\nmessage: pulled the image\ntype: Normal\nsource: {{component: kubelet}}\ncount: 1\n");
    assert!(kubectl_with("kubectl", &tm.kubeconfig, &["create", "-f", "-"], Some(&ev)).ok);
    let desc = tm.kubectl(&["-n", "shop", "describe", "pod", "live-1"]);
    assert!(desc.stdout.contains("Pulled") && desc.stdout.contains("pulled the image"), "{}", desc.stdout);

    // wait --for=delete, delete.
    let kc = tm.kubeconfig.clone();
    let waiter = std::thread::spawn(move || kubectl_with("kubectl", &kc, &["-n", "shop", "wait", "--for=delete", "pod/live-1", "--timeout=30s"], None));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(tm.kubectl(&["-n", "shop", "delete", "pod", "live-1"]).ok);
    let w = waiter.join().unwrap();
    assert!(w.ok, "{w:?}");

    let ar = tm.kubectl(&["api-resources"]);
    assert!(ar.stdout.contains("deployments") && ar.stdout.contains("deploy") && ar.stdout.contains("apps/v1"), "{}", ar.stdout);
    let av = tm.kubectl(&["api-versions"]);
    assert!(av.stdout.lines().any(|l| l == "batch/v1") && av.stdout.lines().any(|l| l == "v1"), "{}", av.stdout);
    let raw = tm.kubectl(&["get", "--raw", "/version"]);
    assert!(raw.stdout.contains("\"minor\":\"33\""), "{}", raw.stdout);

    // Deleting a namespace removes what is in it, then the namespace.
    let del = tm.kubectl(&["delete", "namespace", "shop", "--timeout=60s"]);
    assert!(del.ok, "{del:?}");
    let gone = tm.kubectl(&["get", "ns", "shop"]);
    assert!(!gone.ok && gone.stderr.contains("NotFound"), "{gone:?}");

    // The newest installed kubectl versions read the same cluster.
    for bin in kubectl_versions().iter().rev().take(2) {
        let out = kubectl_with(bin.to_str().unwrap(), &tm.kubeconfig, &["get", "ns", "-o", "name"], None);
        assert!(out.ok && out.stdout.contains("namespace/default"), "{}: {out:?}", bin.display());
    }
}
