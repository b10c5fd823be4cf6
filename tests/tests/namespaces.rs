//! Namespace lifecycle with the built-in controllers: deleting a namespace removes everything
//! in it (pods go through graceful termination, confirmed by the stand-in kubelet), then the
//! namespace itself.

use kplex_e2e::kubelet::FakeKubelet;
use kplex_e2e::{Etcd, TenantMaster};

#[test]
fn deleting_a_namespace_removes_its_content_then_itself() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "ns-life", dir.path(), &[]);
    let _kubelet = FakeKubelet::start(&tm);
    tm.kubectl(&["create", "namespace", "doomed"]).must();
    tm.kubectl(&["-n", "doomed", "create", "configmap", "c1", "--from-literal=a=b"]).must();
    tm.kubectl(&["-n", "doomed", "run", "p1", "--image=nginx"]).must();
    tm.kubectl(&["-n", "doomed", "wait", "--for=condition=Ready", "pod/p1", "--timeout=30s"]).must();
    let node = tm.kubectl(&["-n", "doomed", "get", "pod", "p1", "-o", "jsonpath={.spec.nodeName}"]).must();
    assert_eq!(node.trim(), "node-1");
    // kubectl delete waits for the namespace to be gone.
    tm.kubectl(&["delete", "namespace", "doomed", "--timeout=60s"]).must();
    let out = tm.kubectl(&["get", "namespace", "doomed"]);
    assert!(!out.ok);
    assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
    let left = tm.kubectl(&["get", "configmaps,pods", "-n", "doomed", "-o", "name"]).must();
    assert_eq!(left.trim(), "");
}

#[test]
fn the_system_namespaces_cannot_be_deleted() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "ns-sys", dir.path(), &[]);
    for ns in ["default", "kube-system", "kube-public"] {
        let out = tm.kubectl(&["delete", "namespace", ns]);
        assert!(!out.ok);
        assert!(out.stderr.contains(&format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted")), "{}", out.stderr);
    }
}
