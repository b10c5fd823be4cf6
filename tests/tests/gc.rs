//! The garbage collector, driven with kubectl against one etcd and tenant master: objects are
//! chained by hand-written ownerReferences (no workload controller runs: pods created by hand
//! with a reference to a ReplicaSet stay put), then their owners are deleted with background,
//! orphan and foreground propagation; dependents of owners that never existed are collected,
//! and work left pending while the collector was off completes after a restart.

use std::time::{Duration, Instant};

use kplex_e2e::{kubectl_with, Etcd, Output, TenantMaster};
use serde_json::{json, Value};

/// Controllers that would act on the hand-made pods of a ReplicaSet once they exist.
const NO_WORKLOADS: &str = "replicaset,deployment";

fn start(etcd: &Etcd, dir: &std::path::Path, disable: &str) -> TenantMaster {
    TenantMaster::start(etcd, "gc", dir, &["--disable-controllers", disable])
}

fn create(tm: &TenantMaster, ns: &str, items: Vec<Value>) {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out = kubectl_with("kubectl", &tm.kubeconfig, &["-n", ns, "create", "-f", "-"], Some(&list.to_string()));
    assert!(out.ok, "create failed: {}", out.stderr);
}

fn k(tm: &TenantMaster, ns: &str, args: &[&str]) -> Output {
    let mut a = vec!["-n", ns];
    a.extend_from_slice(args);
    tm.kubectl(&a)
}

fn jsonpath(tm: &TenantMaster, ns: &str, obj: &str, path: &str) -> String {
    k(tm, ns, &["get", obj, "-o", &format!("jsonpath={path}")]).must()
}

fn uid(tm: &TenantMaster, ns: &str, obj: &str) -> String {
    jsonpath(tm, ns, obj, "{.metadata.uid}")
}

fn exists(tm: &TenantMaster, ns: &str, obj: &str) -> bool {
    let out = k(tm, ns, &["get", obj, "-o", "name"]);
    if !out.ok {
        assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
    }
    out.ok
}

fn oref(api_version: &str, kind: &str, name: &str, uid: &str, block: bool) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "blockOwnerDeletion": block})
}

fn cm(name: &str, owners: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "ownerReferences": owners}, "data": {"k": "v"}})
}

fn secret(name: &str, owners: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "ownerReferences": owners}, "stringData": {"k": "v"}})
}

fn pod(name: &str, owners: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"made": "by-hand"}, "ownerReferences": owners},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

/// Waits (for correctness, not speed) until `f` holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_deleted(tm: &TenantMaster, ns: &str, objs: &[&str]) {
    let mut a = vec!["wait", "--for=delete", "--timeout=30s"];
    a.extend_from_slice(objs);
    k(tm, ns, &a).must();
}

fn owner_names(tm: &TenantMaster, ns: &str, obj: &str) -> String {
    jsonpath(tm, ns, obj, "{.metadata.ownerReferences[*].name}")
}

#[test]
fn owners_and_dependents() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = start(&etcd, dir.path(), NO_WORKLOADS);
    for ns in ["gc-bg", "gc-orphan", "gc-fg", "gc-ghost", "gc-restart"] {
        tm.kubectl(&["create", "namespace", ns]).must();
    }
    background(&tm);
    orphan(&tm);
    foreground(&tm);
    owners_that_never_existed(&tm);
    drop(tm);
    after_restart(&etcd, dir.path());
}

/// `kubectl delete` (background): dependents of every kind go; a dependent with a second, live
/// owner stays and loses only the dangling reference.
fn background(tm: &TenantMaster) {
    let ns = "gc-bg";
    create(tm, ns, vec![cm("owner", vec![]), cm("other", vec![])]);
    let (o, other) = (uid(tm, ns, "cm/owner"), uid(tm, ns, "cm/other"));
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "nothing"}},
                 "template": {"metadata": {"labels": {"app": "nothing"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    create(tm, ns, vec![rs]);
    let r = uid(tm, ns, "rs/rs");
    let by_owner = || vec![oref("v1", "ConfigMap", "owner", &o, false)];
    let by_rs = || vec![oref("apps/v1", "ReplicaSet", "rs", &r, true)];
    create(
        tm,
        ns,
        vec![
            cm("dep", by_owner()),
            secret("dep", by_owner()),
            cm("shared", vec![oref("v1", "ConfigMap", "owner", &o, false), oref("v1", "ConfigMap", "other", &other, false)]),
            pod("p1", by_rs()),
            pod("p2", by_rs()),
        ],
    );
    create(tm, ns, vec![cm("grandchild", vec![oref("v1", "ConfigMap", "dep", &uid(tm, ns, "cm/dep"), false)])]);
    assert_eq!(owner_names(tm, ns, "cm/shared"), "owner other");

    let out = k(tm, ns, &["delete", "configmap", "owner"]).must();
    assert_eq!(out.trim(), "configmap \"owner\" deleted");
    wait_deleted(tm, ns, &["cm/dep", "secret/dep", "cm/grandchild"]);
    eventually("the shared dependent loses its dangling reference", || owner_names(tm, ns, "cm/shared") == "other");
    assert!(exists(tm, ns, "cm/other"));

    k(tm, ns, &["delete", "replicaset", "rs"]).must();
    wait_deleted(tm, ns, &["pod/p1", "pod/p2"]);
}

/// `kubectl delete --cascade=orphan`: the owner goes, its dependents stay without the reference.
fn orphan(tm: &TenantMaster) {
    let ns = "gc-orphan";
    create(tm, ns, vec![cm("owner", vec![]), cm("other", vec![])]);
    let (o, other) = (uid(tm, ns, "cm/owner"), uid(tm, ns, "cm/other"));
    let by_owner = || vec![oref("v1", "ConfigMap", "owner", &o, true)];
    create(
        tm,
        ns,
        vec![
            cm("dep", by_owner()),
            secret("dep", by_owner()),
            cm("two", vec![oref("v1", "ConfigMap", "other", &other, false), oref("v1", "ConfigMap", "owner", &o, false)]),
        ],
    );
    // kubectl waits until the owner is gone, which needs the collector to drop the finalizer.
    let out = k(tm, ns, &["delete", "configmap", "owner", "--cascade=orphan", "--timeout=30s"]).must();
    assert_eq!(out.trim(), "configmap \"owner\" deleted");
    assert!(!exists(tm, ns, "cm/owner"));
    assert_eq!(owner_names(tm, ns, "cm/dep"), "");
    assert_eq!(owner_names(tm, ns, "secret/dep"), "");
    assert_eq!(owner_names(tm, ns, "cm/two"), "other");
}

/// `kubectl delete --cascade=foreground`: the owner waits (deletionTimestamp, finalizer
/// foregroundDeletion) while a blocking dependent is held by a finalizer of its own; once
/// that goes, the dependent and then the owner go.
fn foreground(tm: &TenantMaster) {
    let ns = "gc-fg";
    create(tm, ns, vec![cm("owner", vec![])]);
    let o = uid(tm, ns, "cm/owner");
    let mut blocker = cm("blocker", vec![oref("v1", "ConfigMap", "owner", &o, true)]);
    blocker["metadata"]["finalizers"] = json!(["kplex.test/hold"]);
    create(tm, ns, vec![blocker, cm("loose", vec![oref("v1", "ConfigMap", "owner", &o, false)])]);

    let out = k(tm, ns, &["delete", "configmap", "owner", "--cascade=foreground", "--wait=false"]).must();
    assert_eq!(out.trim(), "configmap \"owner\" deleted");
    // The non-blocking dependent goes; the blocking one is being deleted but held.
    wait_deleted(tm, ns, &["cm/loose"]);
    eventually("the blocking dependent is being deleted", || !jsonpath(tm, ns, "cm/blocker", "{.metadata.deletionTimestamp}").is_empty());
    assert!(!jsonpath(tm, ns, "cm/owner", "{.metadata.deletionTimestamp}").is_empty());
    assert_eq!(jsonpath(tm, ns, "cm/owner", "{.metadata.finalizers}"), "[\"foregroundDeletion\"]");

    k(tm, ns, &["patch", "configmap", "blocker", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]).must();
    wait_deleted(tm, ns, &["cm/blocker", "cm/owner"]);
}

/// Dependents of an owner that never existed (unknown UID, or a live name with another UID)
/// are collected; a reference to a kind the server does not serve leaves its dependent alone;
/// a cluster-scoped dependent naming a namespaced owner kind is reported and left alone.
fn owners_that_never_existed(tm: &TenantMaster) {
    let ns = "gc-ghost";
    create(tm, ns, vec![cm("real", vec![])]);
    create(
        tm,
        ns,
        vec![
            cm("crd-dep", vec![oref("example.com/v1", "Widget", "w", "7a6f4bd8-2f40-4c4b-8a43-d3a2b1b0c001", false)]),
            cm("ghost-dep", vec![oref("v1", "ConfigMap", "nobody", "7a6f4bd8-2f40-4c4b-8a43-d3a2b1b0c002", false)]),
            secret("wrong-uid", vec![oref("v1", "ConfigMap", "real", "7a6f4bd8-2f40-4c4b-8a43-d3a2b1b0c003", false)]),
        ],
    );
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "gc-invalid", "ownerReferences": [oref("v1", "ConfigMap", "real", &uid(tm, ns, "cm/real"), false)]},
        "rules": []});
    create(tm, "default", vec![role]);
    wait_deleted(tm, ns, &["cm/ghost-dep", "secret/wrong-uid"]);
    assert!(exists(tm, ns, "cm/real"));
    assert!(exists(tm, ns, "cm/crd-dep"));
    eventually("an OwnerRefInvalidNamespace event is recorded", || {
        let evs = tm.kubectl(&["get", "events", "-A", "--field-selector=reason=OwnerRefInvalidNamespace", "-o", "json"]).must();
        let evs: Value = serde_json::from_str(&evs).unwrap();
        evs["items"].as_array().unwrap().iter().any(|e| {
            e["reason"] == "OwnerRefInvalidNamespace"
                && e["metadata"]["namespace"] == "default"
                && e["involvedObject"]["name"] == "gc-invalid"
                && e["type"] == "Warning"
                && e["message"].as_str().unwrap().starts_with("ownerRef [v1/ConfigMap, namespace: , name: real, uid: ")
        })
    });
    assert!(exists(tm, "default", "clusterrole/gc-invalid"));
}

/// Work left pending while the collector was off (an orphan finalizer, dependents of a
/// deleted owner) completes once a tenant master with the collector starts on the same data;
/// so does work interrupted by a kill -9 right after the owner's deletion.
fn after_restart(etcd: &Etcd, dir: &std::path::Path) {
    let ns = "gc-restart";
    let off = start(etcd, dir, &format!("{NO_WORKLOADS},garbagecollector"));
    create(&off, ns, vec![cm("bg-owner", vec![]), cm("orphan-owner", vec![])]);
    let (bg, or) = (uid(&off, ns, "cm/bg-owner"), uid(&off, ns, "cm/orphan-owner"));
    create(
        &off,
        ns,
        vec![
            cm("bg-dep", vec![oref("v1", "ConfigMap", "bg-owner", &bg, false)]),
            cm("orphan-dep", vec![oref("v1", "ConfigMap", "orphan-owner", &or, true)]),
        ],
    );
    k(&off, ns, &["delete", "configmap", "bg-owner"]).must();
    k(&off, ns, &["delete", "configmap", "orphan-owner", "--cascade=orphan", "--wait=false"]).must();
    // Nothing collects while the collector is off.
    assert!(exists(&off, ns, "cm/bg-dep"));
    assert_eq!(jsonpath(&off, ns, "cm/orphan-owner", "{.metadata.finalizers}"), "[\"orphan\"]");
    drop(off);

    let mut tm = start(etcd, dir, NO_WORKLOADS);
    wait_deleted(&tm, ns, &["cm/bg-dep", "cm/orphan-owner"]);
    assert_eq!(owner_names(&tm, ns, "cm/orphan-dep"), "");

    // Deleted and killed at once: the dependent still goes after the restart.
    create(&tm, ns, vec![cm("owner", vec![])]);
    let o = uid(&tm, ns, "cm/owner");
    create(&tm, ns, vec![cm("dep", vec![oref("v1", "ConfigMap", "owner", &o, false)])]);
    k(&tm, ns, &["delete", "configmap", "owner", "--wait=false"]).must();
    tm.restart();
    wait_deleted(&tm, ns, &["cm/dep"]);
}
