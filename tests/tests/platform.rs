//! The local platform end to end (issue 5): `kplex up`, the tenant verbs, tenant isolation in
//! the API and in etcd, crash recovery, pause/resume, Ctrl-C and restart, delete.
//! One `kplex up` serves every check, in order (each step builds on the previous one).

use std::path::Path;
use std::time::Instant;

use kplex_e2e::{eventually, kplex_bin, Platform};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn pid_alive(pid: u32) -> bool {
    // A zombie is dead for our purpose.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false)
}

fn read_pid(f: &Path) -> Option<u32> {
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}

fn event(name: &str, owner: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: {name}, namespace: prod}}\ninvolvedObject: {{kind: ConfigMap, name: cfg, namespace: prod}}\nreason: Test\nmessage: from {owner}\ntype: Normal\n"
    )
}

/// The tenant's pods in the super cluster (only the Running ones if `running`).
fn super_pods(p: &Platform, tenant: &str, running: bool) -> usize {
    let mut args = vec!["get", "pods", "-A", "-l"];
    let sel = format!("tenancy.kplex.io/tenant={tenant}");
    args.push(&sel);
    if running {
        args.extend(["--field-selector", "status.phase=Running"]);
    }
    args.extend(["-o", "name"]);
    p.super_kubectl(&args).stdout.lines().filter(|l| !l.is_empty()).count()
}

#[test]
fn platform_lifecycle() {
    // Not running: the verbs say so and fail.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(kplex_bin()).args(["list", "--data-dir"]).arg(empty.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"), "{}", String::from_utf8_lossy(&out.stderr));

    let t0 = Instant::now();
    let mut p = Platform::up(3);
    eprintln!("kplex up ready after {:?}: {}", t0.elapsed(), p.ready_line);

    // Simulated nodes, Ready, with their labels.
    let nodes = json(&p.super_kubectl(&["get", "nodes", "-o", "json"]).must());
    let items = nodes["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{nodes}");
    for n in items {
        let ready = n["status"]["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready, "node not Ready: {n}");
        for l in [
            "kubernetes.io/hostname",
            "kubernetes.io/os",
            "kubernetes.io/arch",
            "topology.kubernetes.io/zone",
            "topology.kubernetes.io/region",
            "node.kubernetes.io/instance-type",
        ] {
            assert!(n["metadata"]["labels"][l].is_string(), "node without {l}: {}", n["metadata"]["labels"]);
        }
    }
    assert!(p.super_kubectl(&["get", "nodes"]).must().contains(" Ready "));

    // One `kplex up` per data dir.
    let second = std::process::Command::new(kplex_bin()).args(["up", "--data-dir"]).arg(p.dir()).output().unwrap();
    assert!(!second.status.success() && String::from_utf8_lossy(&second.stderr).contains("already running"), "{second:?}");

    // A platform component that dies is restarted.
    let sim_pid_file = p.dir().join("logs/node-simulator.pid");
    let sim = read_pid(&sim_pid_file).unwrap();
    assert!(std::process::Command::new("kill").args(["-9", &sim.to_string()]).status().unwrap().success());
    eventually(30, "node simulator restarted", || read_pid(&sim_pid_file).filter(|p| *p != sim && pid_alive(*p)));

    // Create: bad names, duplicates.
    for t in ["a", "b"] {
        let out = p.kplex(&["create", t]);
        assert!(out.ok, "create {t}: {}", out.stderr);
        let path = out.stdout.trim();
        assert_eq!(Path::new(path), p.dir().join("tenants").join(t).join("kubeconfig"));
        assert!(Path::new(path).exists());
    }
    let bad = p.kplex(&["create", "Bad_Name"]);
    assert!(!bad.ok && bad.stderr.contains("invalid tenant name"), "{bad:?}");
    let dup = p.kplex(&["create", "a"]);
    assert!(!dup.ok && dup.stderr.contains("already exists"), "{dup:?}");
    let unknown = p.kplex(&["pause", "nope"]);
    assert!(!unknown.ok && unknown.stderr.contains("not found"), "{unknown:?}");

    let list = p.kplex(&["list"]).must();
    for t in ["a", "b"] {
        assert!(list.lines().any(|l| l.starts_with(&format!("{t} ")) && l.contains("Running")), "{list}");
    }
    let list = json(&p.kplex(&["list", "-o", "json"]).must());
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    // Isolation in the API: same names, different data; nothing crosses over.
    for t in ["a", "b"] {
        p.tenant_kubectl(t, &["create", "namespace", "prod"], None).must();
        p.tenant_kubectl(t, &["create", "configmap", "cfg", "-n", "prod", &format!("--from-literal=owner={t}")], None).must();
        p.tenant_kubectl(t, &["create", "namespace", &format!("only-{t}")], None).must();
        p.tenant_kubectl(t, &["create", "-f", "-"], Some(&event(&format!("ev-{t}"), t))).must();
    }
    for (me, other) in [("a", "b"), ("b", "a")] {
        let owner = p.tenant_kubectl(me, &["get", "configmap", "cfg", "-n", "prod", "-o", "jsonpath={.data.owner}"], None).must();
        assert_eq!(owner, me);
        let ns = p.tenant_kubectl(me, &["get", "namespaces", "-o", "name"], None).must();
        assert!(ns.contains(&format!("namespace/only-{me}")) && !ns.contains(&format!("only-{other}")), "{me}: {ns}");
        let ev = p.tenant_kubectl(me, &["get", "events", "-A", "-o", "name"], None).must();
        assert!(ev.contains(&format!("ev-{me}")) && !ev.contains(&format!("ev-{other}")), "{me}: {ev}");
    }

    // Workloads run on the super cluster through the syncer: Running in the tenant, on the
    // simulated nodes, as super pods of that tenant.
    for (t, n) in [("a", 1), ("b", 2)] {
        p.tenant_kubectl(t, &["create", "deployment", "web", "--image=nginx", &format!("--replicas={n}")], None).must();
    }
    for (t, n) in [("a", 1), ("b", 2)] {
        eventually(60, &format!("{t}'s pods Running"), || {
            let out = p.tenant_kubectl(t, &["get", "pods", "-l", "app=web", "-o", "jsonpath={range .items[*]}{.status.phase} {.spec.nodeName}{\"\\n\"}{end}"], None).stdout;
            (out.lines().filter(|l| l.starts_with("Running kplex-node-")).count() == n).then_some(())
        });
        eventually(30, &format!("{t}'s super pods"), || (super_pods(&p, t, true) == n).then_some(()));
    }

    // Isolation in etcd: a's credentials reach a's keys and nothing else.
    let a_pw = p.dir().join("tenants/a/etcd.password");
    let own = p.etcdctl("kplex-tenant-a", &a_pw, &["get", "/kplex/tenants/a/", "--prefix", "--keys-only"]);
    assert!(own.ok && own.stdout.contains("/kplex/tenants/a/registry/core/configmaps/prod/cfg"), "{own:?}");
    let denied: &[&[&str]] = &[
        &["get", "/kplex/tenants/b/", "--prefix"],
        &["get", "/kplex/tenants/b/registry/core/configmaps/prod/cfg"],
        &["put", "/kplex/tenants/b/registry/core/configmaps/prod/cfg", "x"],
        &["del", "/kplex/tenants/b/", "--prefix"],
        &["get", "/kplex/super/", "--prefix"],
        &["put", "/kplex/super/registry/x", "x"],
        &["get", "", "--from-key"],
        // A's prefix without its trailing slash would also cover tenant "ab".
        &["get", "/kplex/tenants/a", "--prefix"],
    ];
    for args in denied {
        let out = p.etcdctl("kplex-tenant-a", &a_pw, args);
        assert!(!out.ok && out.stderr.contains("permission denied"), "etcdctl {args:?} as a: {out:?}");
    }
    let b_cm = p.etcdctl_root(&["get", "/kplex/tenants/b/registry/core/configmaps/prod/cfg", "--print-value-only"]).must();
    assert!(b_cm.contains("\"owner\":\"b\""), "{b_cm}");

    // A dedicated etcd: the tenant's keys are not in the shared etcd; delete stops its etcd.
    let out = p.kplex(&["create", "c", "--etcd", "dedicated"]);
    assert!(out.ok, "create c: {}", out.stderr);
    p.tenant_kubectl("c", &["create", "configmap", "cfg", "--from-literal=owner=c"], None).must();
    assert_eq!(p.tenant_kubectl("c", &["get", "configmap", "cfg", "-o", "jsonpath={.data.owner}"], None).must(), "c");
    assert!(p.etcdctl_root(&["get", "/kplex/tenants/c/", "--prefix", "--keys-only"]).must().trim().is_empty());
    let c_etcd = read_pid(&p.dir().join("tenants/c/etcd.pid")).unwrap();
    p.kplex(&["delete", "c"]).must();
    eventually(10, "c's dedicated etcd stopped", || (!pid_alive(c_etcd)).then_some(()));

    // kill -9 of a tenant master: restarted, nothing lost.
    let pid_file = p.dir().join("tenants/a/master.pid");
    let old = read_pid(&pid_file).unwrap();
    assert!(std::process::Command::new("kill").args(["-9", &old.to_string()]).status().unwrap().success());
    eventually(30, "tenant a's master restarted and serving", || {
        let new = read_pid(&pid_file)?;
        (new != old && p.tenant_kubectl("a", &["get", "configmap", "cfg", "-n", "prod", "-o", "jsonpath={.data.owner}"], None).stdout == "a").then_some(())
    });
    assert!(p.tenant_kubectl("a", &["get", "namespace", "only-a"], None).ok);

    // Pause: the API stops serving; resume: it serves again with everything.
    p.kplex(&["pause", "b"]).must();
    let down = p.tenant_kubectl("b", &["get", "namespaces", "--request-timeout=3s"], None);
    assert!(!down.ok, "paused tenant still serves: {down:?}");
    let list = p.kplex(&["list"]).must();
    assert!(list.lines().any(|l| l.starts_with("b ") && l.contains("Paused")), "{list}");
    eventually(30, "b's super pods gone while paused", || (super_pods(&p, "b", false) == 0).then_some(()));
    p.kplex(&["resume", "b"]).must();
    assert_eq!(p.tenant_kubectl("b", &["get", "configmap", "cfg", "-n", "prod", "-o", "jsonpath={.data.owner}"], None).must(), "b");
    eventually(60, "b's super pods Running again after resume", || (super_pods(&p, "b", true) == 2).then_some(()));

    // Ctrl-C: everything stops (no orphan), and a new run brings every tenant back with its data.
    let mut pids: Vec<u32> = std::fs::read_dir(p.dir().join("logs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .filter_map(|e| read_pid(&e.path()))
        .collect();
    pids.extend(["a", "b"].iter().filter_map(|t| read_pid(&p.dir().join("tenants").join(t).join("master.pid"))));
    assert_eq!(pids.len(), 8, "etcd, super API, node simulator, scheduler, syncer, tenant manager, 2 masters: {pids:?}");
    assert!(p.stop_with("INT"), "kplex up did not exit cleanly on SIGINT");
    let alive: Vec<u32> = pids.iter().copied().filter(|p| pid_alive(*p)).collect();
    assert!(alive.is_empty(), "processes left after Ctrl-C: {alive:?}");
    p.start_again();
    for t in ["a", "b"] {
        eventually(30, &format!("tenant {t} back after restart"), || {
            (p.tenant_kubectl(t, &["get", "configmap", "cfg", "-n", "prod", "-o", "jsonpath={.data.owner}"], None).stdout == t).then_some(())
        });
    }

    // Delete: no key, user, role or super-cluster object of a remains; another tenant's
    // namespace with a's label but not a's uid is not a's and stays.
    let uid = p.super_kubectl(&["get", "virtualcluster", "a", "-o", "jsonpath={.metadata.uid}"]).must();
    for (ns, owner_uid) in [("a-0a0a0a-prod", uid.as_str()), ("a-ffffff-prod", "someone-else")] {
        p.super_kubectl(&["create", "namespace", ns]).must();
        p.super_kubectl(&["label", "namespace", ns, "tenancy.kplex.io/tenant=a"]).must();
        p.super_kubectl(&["annotate", "namespace", ns, &format!("tenancy.kplex.io/tenant-uid={owner_uid}")]).must();
    }
    p.super_kubectl(&["create", "configmap", "x", "-n", "a-0a0a0a-prod"]).must();
    assert!(p.super_kubectl(&["get", "secret", "a-kubeconfig", "-n", "kplex-system"]).ok);
    let out = p.kplex(&["delete", "a"]);
    assert!(out.ok, "{out:?}");
    assert!(!p.super_kubectl(&["get", "virtualcluster", "a"]).ok);
    assert!(!p.super_kubectl(&["get", "secret", "a-kubeconfig", "-n", "kplex-system"]).ok);
    eventually(30, "a's super namespace gone", || (!p.super_kubectl(&["get", "namespace", "a-0a0a0a-prod"]).ok).then_some(()));
    assert!(p.super_kubectl(&["get", "namespace", "a-ffffff-prod"]).ok, "a namespace not owned by a was deleted");
    let keys = p.etcdctl_root(&["get", "/kplex/tenants/a/", "--prefix", "--keys-only"]).must();
    assert!(keys.trim().is_empty(), "keys of a left: {keys}");
    let users = p.etcdctl_root(&["user", "list"]).must();
    assert!(!users.contains("kplex-tenant-a") && users.contains("kplex-tenant-b"), "{users}");
    let roles = p.etcdctl_root(&["role", "list"]).must();
    assert!(!roles.contains("kplex-tenant-a") && roles.contains("kplex-tenant-b"), "{roles}");
    assert!(!p.dir().join("tenants/a").exists());
    eventually(30, "a's super pods gone", || (super_pods(&p, "a", false) == 0).then_some(()));
    // a's namespaces terminate (their pods first, with their grace period); nothing recreates them.
    eventually(60, "only the namespace not owned by a left", || {
        let nss = p.super_kubectl(&["get", "namespaces", "-l", "tenancy.kplex.io/tenant=a", "-o", "jsonpath={.items[*].metadata.name}"]).must();
        (nss == "a-ffffff-prod").then_some(())
    });
    let again = p.kplex(&["delete", "a"]);
    assert!(!again.ok && again.stderr.contains("not found"), "{again:?}");
    // b is untouched.
    assert_eq!(p.tenant_kubectl("b", &["get", "configmap", "cfg", "-n", "prod", "-o", "jsonpath={.data.owner}"], None).must(), "b");
    eprintln!("platform_lifecycle took {:?}", t0.elapsed());
}
