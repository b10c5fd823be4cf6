//! The Python `kubernetes` client against a tenant master (see tests/python/test_client.py).

use kplex_e2e::{Etcd, TenantMaster};

#[test]
fn python_client_works() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "python", dir.path(), &[]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/test_client.py");
    let out = std::process::Command::new("python3").arg(&script).env("KUBECONFIG", &tm.kubeconfig).output().unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    let se = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {so}\nstderr: {se}");
    assert!(so.contains("python client: ok"), "{so}");
}
