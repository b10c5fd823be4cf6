//! The syncer end to end: a `kplex tenant-master` is the super cluster's API (with the
//! VirtualCluster CRD), `kplex node-simulator` runs its nodes, `kplex super-scheduler` places
//! pods, `kplex syncer` multiplexes three tenants (each a real `kplex tenant-master` dialing it
//! over mutual TLS). Checked as a tenant user and the provider would notice, with kubectl.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use kplex_e2e::{free_port, kubectl_with, node_simulator, Etcd, Process, TenantMaster};
use serde_json::Value;

const CRD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds/tenancy.kplex.io_virtualclusters.yaml");

fn kubectl() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

fn json(tm: &TenantMaster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&tm.kubectl(&a).must()).unwrap()
}

fn apply(tm: &TenantMaster, yaml: &str) {
    let out = kubectl_with(&kubectl(), &tm.kubeconfig, &["apply", "-f", "-"], Some(yaml));
    assert!(out.ok, "apply failed: {}\n{yaml}", out.stderr);
}

#[track_caller]
fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn name(o: &Value) -> String {
    o["metadata"]["name"].as_str().unwrap_or("").to_string()
}

/// The super pods in a super namespace (optionally with a label selector).
fn super_pods(sup: &TenantMaster, sns: &str, selector: &str) -> Vec<Value> {
    let mut a = vec!["get", "pods", "-n", sns];
    if !selector.is_empty() {
        a.extend(["-l", selector]);
    }
    items(&json(sup, &a))
}

fn running(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string()
}

struct Tenant {
    tm: TenantMaster,
    uid: String,
}

impl Tenant {
    fn sns(&self, ns: &str) -> String {
        kplex_syncer::naming::super_namespace(&self.tm.name, &self.uid, ns)
    }
}

/// Creates the VirtualCluster, issues the tenant's certificate and starts its tenant master
/// connected to the syncer.
fn tenant(etcd: &Etcd, sup: &TenantMaster, dir: &Path, name: &str, spec: &str, syncer_addr: &str) -> Tenant {
    apply(sup, &format!("apiVersion: tenancy.kplex.io/v1alpha1\nkind: VirtualCluster\nmetadata:\n  name: {name}\nspec: {spec}\n"));
    let uid = json(sup, &["get", "virtualcluster", name])["metadata"]["uid"].as_str().unwrap().to_string();
    let certs = dir.join(format!("{name}-syncer"));
    kplex_syncer::pki::issue_tenant_client(&dir.join("syncer-pki"), name, &uid, &certs).unwrap();
    let p = |f: &str| certs.join(f).display().to_string();
    let (ca, crt, key) = (p("ca.crt"), p("tls.crt"), p("tls.key"));
    let endpoint = format!("https://{syncer_addr}");
    let tm =
        TenantMaster::start(etcd, name, &dir.join(name), &["--syncer-endpoint", &endpoint, "--syncer-ca", &ca, "--syncer-cert", &crt, "--syncer-key", &key]);
    Tenant { tm, uid }
}

#[test]
fn tenants_run_on_the_super_cluster_exactly_and_fairly() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let sup = TenantMaster::start(&etcd, "super", &dir.path().join("super"), &[]);
    let skc = sup.kubeconfig.display().to_string();
    sup.kubectl(&["apply", "-f", CRD]).must();
    sup.kubectl(&["wait", "--for=condition=established", "crd/virtualclusters.tenancy.kplex.io", "--timeout=30s"]).must();
    let _nodes = node_simulator(&sup, &["--nodes", "6", "--pod-start-delay", "200ms", "--metrics-listen", "127.0.0.1:0"]);
    let sched_addr = format!("127.0.0.1:{}", free_port());
    let _sched = Process::start(&["super-scheduler", "--kubeconfig", &skc, "--listen", &sched_addr, "--metrics-listen", "127.0.0.1:0"]);
    // The syncer's CA first (tenant certificates and the serving certificate share it).
    let pki = dir.path().join("syncer-pki");
    kplex_syncer::pki::SyncerPki::load_or_create(&pki, &[]).unwrap();
    let syncer_addr = format!("127.0.0.1:{}", free_port());
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let pki_s = pki.display().to_string();
    let mut syncer = Process::start(&[
        "syncer",
        "--super-kubeconfig",
        &skc,
        "--scheduler",
        &format!("http://{sched_addr}"),
        "--listen",
        &syncer_addr,
        "--pki-dir",
        &pki_s,
        "--patrol-seconds",
        "3",
        "--metrics-listen",
        &metrics_addr,
    ]);
    let mut acme = tenant(&etcd, &sup, dir.path(), "acme", "{}", &syncer_addr);
    let beta = tenant(&etcd, &sup, dir.path(), "beta", "{}", &syncer_addr);
    let small = tenant(&etcd, &sup, dir.path(), "small", "{quota: {cpu: '2'}}", &syncer_addr);
    let sns = acme.sns("default");

    // --- a deployment of 3: three super pods with nodeName; Running with IPs and nodes in the tenant.
    acme.tm.kubectl(&["create", "deployment", "web", "--image=nginx", "--replicas=3"]).must();
    wait_until("three super pods of web with nodeName", 60, || {
        let pods = super_pods(&sup, &sns, "app=web");
        pods.len() == 3 && pods.iter().all(|p| p["spec"]["nodeName"].is_string())
    });
    wait_until("web Running in the tenant", 60, || {
        let pods = items(&json(&acme.tm, &["get", "pods", "-l", "app=web"]));
        pods.len() == 3 && pods.iter().all(running)
    });
    let wide = acme.tm.kubectl(&["get", "pods", "-o", "wide"]).must();
    let supers = super_pods(&sup, &sns, "app=web");
    for p in &supers {
        let line = wide.lines().find(|l| l.starts_with(&name(p))).unwrap_or_else(|| panic!("{} missing in\n{wide}", name(p)));
        assert!(line.contains("Running"), "{line}");
        assert!(line.contains(p["status"]["podIP"].as_str().unwrap()), "tenant shows the super pod's IP: {line}");
        assert!(line.contains(p["spec"]["nodeName"].as_str().unwrap()), "tenant shows the node: {line}");
        let a = &p["metadata"]["annotations"];
        assert_eq!(a["tenancy.kplex.io/namespace"], "default");
        assert_eq!(a["tenancy.kplex.io/tenant-uid"], acme.uid.as_str());
        assert_eq!(p["metadata"]["labels"]["tenancy.kplex.io/tenant"], "acme");
        // Containers see their tenant's API server.
        let env = p["spec"]["containers"][0]["env"].as_array().unwrap();
        let host = env.iter().find(|e| e["name"] == "KUBERNETES_SERVICE_PORT").unwrap();
        assert_eq!(host["value"], acme.tm.port.to_string());
    }
    // The mounted token is the tenant's: its secret holds a token the tenant's API accepts.
    let tok = json(&sup, &["get", "secret", "-n", &sns, "kplex-token-default"]);
    let token = String::from_utf8(base64_decode(tok["data"]["token"].as_str().unwrap())).unwrap();
    let who = kplex_e2e::curl(&acme.tm, &[format!("-HAuthorization: Bearer {token}")], &[&format!("{}/api/v1/namespaces/default/pods", acme.tm.url())]);
    assert_ne!(who.code, 401, "token rejected by the tenant: {}", who.body);
    let tenant_nodes = items(&json(&acme.tm, &["get", "nodes"]));
    let used: BTreeSet<String> = supers.iter().map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string()).collect();
    assert_eq!(tenant_nodes.iter().map(name).collect::<BTreeSet<_>>(), used, "the tenant sees exactly the nodes its pods use");

    // --- services downward (the super cluster allocates its own ClusterIP), endpoints of a
    // selector-less service, events about a pod upward.
    acme.tm.kubectl(&["expose", "deployment", "web", "--port=80"]).must();
    apply(&acme.tm, "apiVersion: v1\nkind: Service\nmetadata:\n  name: external\nspec:\n  ports: [{port: 5432}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata:\n  name: external\nsubsets:\n- addresses: [{ip: 192.0.2.10}]\n  ports: [{port: 5432}]\n");
    wait_until("web and external services in the super cluster", 30, || {
        sup.kubectl(&["get", "service", "-n", &sns, "web"]).ok && sup.kubectl(&["get", "endpoints", "-n", &sns, "external"]).ok
    });
    let ssvc = json(&sup, &["get", "service", "-n", &sns, "web"]);
    assert_eq!(ssvc["spec"]["selector"]["app"], "web");
    assert_eq!(ssvc["spec"]["ports"][0]["port"], 80);
    assert!(ssvc["spec"]["clusterIP"].is_string());
    let sep = json(&sup, &["get", "endpoints", "-n", &sns, "external"]);
    assert_eq!(sep["subsets"][0]["addresses"][0]["ip"], "192.0.2.10");
    assert!(!sup.kubectl(&["get", "service", "-n", &sns, "kubernetes"]).ok, "the tenant's API service is not synced");
    let p0 = &supers[0];
    apply(
        &sup,
        &format!(
            "apiVersion: v1\nkind: Event\nmetadata:\n  name: pulled-1\n  namespace: {sns}\ninvolvedObject: {{kind: Pod, apiVersion: v1, namespace: {sns}, name: {}, uid: {}}}\nreason: Pulled\nmessage: Successfully pulled image nginx\ntype: Normal\nsource: {{component: kubelet}}\n",
            name(p0),
            p0["metadata"]["uid"].as_str().unwrap()
        ),
    );
    wait_until("the super event in the tenant", 30, || {
        let evs = items(&json(&acme.tm, &["get", "events", "--field-selector", &format!("involvedObject.name={}", name(p0))]));
        evs.iter().any(|e| e["reason"] == "Pulled" && e["involvedObject"]["namespace"] == "default")
    });

    // --- ConfigMaps and Secrets: only those pods reference.
    acme.tm.kubectl(&["create", "configmap", "mounted", "--from-literal=k=v"]).must();
    acme.tm.kubectl(&["create", "configmap", "unmounted", "--from-literal=k=v"]).must();
    acme.tm.kubectl(&["create", "secret", "generic", "creds", "--from-literal=password=s3cret"]).must();
    apply(
        &acme.tm,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: reader\nspec:\n  containers:\n  - name: c\n    image: busybox\n    volumeMounts:\n    - {name: cm, mountPath: /cm}\n    - {name: s, mountPath: /s}\n  volumes:\n  - {name: cm, configMap: {name: mounted}}\n  - {name: s, secret: {secretName: creds}}\n",
    );
    wait_until("reader Running", 60, || running(&json(&acme.tm, &["get", "pod", "reader"])));
    let cm = json(&sup, &["get", "configmap", "-n", &sns, "mounted"]);
    assert_eq!(cm["data"]["k"], "v");
    let s = json(&sup, &["get", "secret", "-n", &sns, "creds"]);
    assert_eq!(s["data"]["password"], "czNjcmV0");
    assert!(!sup.kubectl(&["get", "configmap", "-n", &sns, "unmounted"]).ok, "an unmounted ConfigMap is not synced");

    // --- a foreign object in the tenant's super namespace is left alone.
    sup.kubectl(&["create", "configmap", "-n", &sns, "foreign", "--from-literal=x=y"]).must();
    sup.kubectl(&["label", "configmap", "-n", &sns, "foreign", "tenancy.kplex.io/tenant=acme"]).must();
    let foreign_rv = json(&sup, &["get", "configmap", "-n", &sns, "foreign"])["metadata"]["resourceVersion"].clone();
    // An orphan (marked as acme's, with no tenant object) is removed.
    apply(
        &sup,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: orphan\n  namespace: {sns}\n  labels: {{tenancy.kplex.io/tenant: acme}}\n  annotations: {{tenancy.kplex.io/tenant-uid: {}, tenancy.kplex.io/namespace: default, tenancy.kplex.io/name: orphan, tenancy.kplex.io/uid: gone}}\ndata: {{k: v}}\n",
            acme.uid
        ),
    );
    wait_until("the orphan removed", 30, || !sup.kubectl(&["get", "configmap", "-n", &sns, "orphan"]).ok);

    // --- deleting in the tenant deletes in the super cluster (and the ConfigMap no pod uses).
    acme.tm.kubectl(&["delete", "pod", "reader", "--wait=false"]).must();
    wait_until("reader gone from the super cluster", 60, || !sup.kubectl(&["get", "pod", "-n", &sns, "reader"]).ok);
    wait_until("reader gone from the tenant", 60, || !acme.tm.kubectl(&["get", "pod", "reader"]).ok);
    wait_until("unreferenced ConfigMap removed", 30, || !sup.kubectl(&["get", "configmap", "-n", &sns, "mounted"]).ok);

    // --- a super pod deleted by hand comes back.
    let victim = &supers[0];
    let vname = name(victim);
    let vuid = victim["metadata"]["uid"].as_str().unwrap().to_string();
    sup.kubectl(&["delete", "pod", "-n", &sns, &vname, "--wait=false"]).must();
    wait_until("the hand-deleted super pod recreated and Running", 60, || {
        let out = sup.kubectl(&["get", "pod", "-n", &sns, &vname, "-o", "json"]);
        out.ok && {
            let p: Value = serde_json::from_str(&out.stdout).unwrap();
            p["metadata"]["uid"] != vuid.as_str() && running(&p)
        }
    });

    // --- zone nodeSelector (tenant beta): all on zone-b; beta sees only the nodes it uses.
    apply(
        &beta.tm,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: zoned\nspec:\n  replicas: 4\n  selector: {matchLabels: {app: zoned}}\n  template:\n    metadata: {labels: {app: zoned}}\n    spec:\n      nodeSelector: {topology.kubernetes.io/zone: zone-b}\n      containers:\n      - {name: c, image: nginx, resources: {requests: {cpu: 100m}}}\n",
    );
    let bsns = beta.sns("default");
    wait_until("zoned Running in beta", 60, || {
        let pods = items(&json(&beta.tm, &["get", "pods", "-l", "app=zoned"]));
        pods.len() == 4 && pods.iter().all(running)
    });
    let zone_b: BTreeSet<String> = items(&json(&sup, &["get", "nodes", "-l", "topology.kubernetes.io/zone=zone-b"])).iter().map(name).collect();
    let placed: BTreeSet<String> = super_pods(&sup, &bsns, "app=zoned").iter().map(|p| p["spec"]["nodeName"].as_str().unwrap().to_string()).collect();
    assert!(placed.is_subset(&zone_b) && !placed.is_empty(), "{placed:?} not all in zone-b {zone_b:?}");
    let shown = beta.tm.kubectl(&["get", "nodes", "--show-labels"]).must();
    let shown_names: BTreeSet<String> = shown.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(String::from).collect();
    assert_eq!(shown_names, placed, "beta sees exactly its used virtual nodes:\n{shown}");
    for l in shown.lines().skip(1) {
        assert!(l.contains("topology.kubernetes.io/zone=zone-b"), "{l}");
        assert!(!l.contains("tenancy.kplex.io"), "provider labels leak: {l}");
    }

    // --- quota (tenant small, cpu=2): the third 1-cpu pod stays Pending with FailedScheduling; beta unaffected.
    for i in 0..3 {
        apply(
            &small.tm,
            &format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: q{i}\nspec:\n  containers:\n  - {{name: c, image: nginx, resources: {{requests: {{cpu: '1'}}}}}}\n"),
        );
        if i < 2 {
            wait_until("quota pod Running", 60, || running(&json(&small.tm, &["get", "pod", &format!("q{i}")])));
        }
    }
    wait_until("FailedScheduling for q2", 60, || {
        let evs = items(&json(&small.tm, &["get", "events", "--field-selector", "involvedObject.name=q2"]));
        evs.iter().any(|e| e["reason"] == "FailedScheduling" && e["message"].as_str().unwrap_or("").contains("exceeded quota"))
    });
    let q2 = json(&small.tm, &["get", "pod", "q2"]);
    assert_eq!(q2["status"]["phase"], "Pending");
    let cond = q2["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PodScheduled").unwrap().clone();
    assert_eq!((cond["status"].as_str(), cond["reason"].as_str()), (Some("False"), Some("Unschedulable")));
    apply(
        &beta.tm,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: free\nspec:\n  containers:\n  - {name: c, image: nginx, resources: {requests: {cpu: '1'}}}\n",
    );
    wait_until("beta's 1-cpu pod Running", 60, || running(&json(&beta.tm, &["get", "pod", "free"])));

    // --- pause removes acme's super pods; resume brings them back Running.
    sup.kubectl(&["patch", "virtualcluster", "acme", "--type=merge", "-p", "{\"spec\":{\"paused\":true}}"]).must();
    wait_until("acme's super pods removed", 60, || super_pods(&sup, &sns, "").is_empty());
    sup.kubectl(&["patch", "virtualcluster", "acme", "--type=merge", "-p", "{\"spec\":{\"paused\":false}}"]).must();
    wait_until("acme's super pods back Running", 60, || {
        let pods = super_pods(&sup, &sns, "app=web");
        pods.len() == 3 && pods.iter().all(running)
    });

    // --- kill -9 of the syncer in the middle of a burst: exactly N super pods, all Running, no orphans.
    let n = 200;
    acme.tm.kubectl(&["create", "deployment", "burst", "--image=nginx", &format!("--replicas={n}")]).must();
    wait_until("the burst under way", 60, || super_pods(&sup, &sns, "app=burst").len() >= 20);
    syncer.restart();
    wait_until("the burst complete after the restart", 120, || {
        let pods = super_pods(&sup, &sns, "app=burst");
        pods.len() == n && pods.iter().all(running)
    });
    wait_until("every tenant pod Running", 60, || {
        let pods = items(&json(&acme.tm, &["get", "pods", "-l", "app=burst"]));
        pods.len() == n && pods.iter().all(running)
    });
    let tenant_names: BTreeSet<String> = items(&json(&acme.tm, &["get", "pods"])).iter().map(name).collect();
    let super_names: BTreeSet<String> = super_pods(&sup, &sns, "").iter().map(name).collect();
    assert_eq!(super_names, tenant_names, "no orphan and no missing super pod");
    let all_super = items(&json(&sup, &["get", "pods", "-A", "-l", "tenancy.kplex.io/tenant=acme"]));
    assert_eq!(all_super.len(), tenant_names.len(), "no duplicate anywhere");
    assert_eq!(json(&sup, &["get", "configmap", "-n", &sns, "foreign"])["metadata"]["resourceVersion"], foreign_rv, "foreign object untouched");

    // --- a restarted tenant master reconnects and syncing goes on.
    acme.tm.restart();
    acme.tm.kubectl(&["scale", "deployment", "web", "--replicas=4"]).must();
    wait_until("a fourth web super pod after the tenant master's restart", 60, || {
        let pods = super_pods(&sup, &sns, "app=web");
        pods.len() == 4 && pods.iter().all(running)
    });

    // --- metrics.
    let out = std::process::Command::new("curl").args(["-s", &format!("http://{metrics_addr}/metrics")]).output().unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    for m in ["kplex_syncer_queue_depth{tenant=\"acme\"}", "kplex_syncer_sync_duration_seconds_count{tenant=\"acme\"}", "kplex_syncer_connected_tenants 3"] {
        assert!(body.contains(m), "{m} missing in /metrics:\n{body}");
    }

    // --- converged means quiet: two patrols over unchanged tenants write nothing anywhere.
    let writes = || {
        let out = std::process::Command::new("curl").args(["-s", &format!("http://{metrics_addr}/metrics")]).output().unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        {
            let mut l: Vec<&str> = body.lines().filter(|l| l.starts_with("kplex_syncer_tenant_writes_total")).collect();
            l.sort();
            l.join("\n")
        }
    };
    let before = writes();
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(writes(), before, "writes into tenants while nothing changed");
    let super_rv = |what: &str| -> Vec<String> {
        items(&json(&sup, &["get", what, "-A", "-l", "tenancy.kplex.io/tenant"]))
            .iter()
            .map(|o| o["metadata"]["resourceVersion"].as_str().unwrap().to_string())
            .collect()
    };
    let (cms, secrets) = (super_rv("configmaps"), super_rv("secrets"));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!((super_rv("configmaps"), super_rv("secrets")), (cms, secrets), "super objects rewritten while nothing changed");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
