//! Bad input gets the Status upstream returns, and never touches stored state.

use kplex_e2e::{Etcd, TenantMaster};

/// curl with the tenant's CA; returns (code, body).
fn curl(tm: &TenantMaster, auth: &[&str], args: &[&str]) -> (u16, String) {
    let auth: Vec<String> = auth.iter().map(|a| a.to_string()).collect();
    let o = kplex_e2e::curl(tm, &auth, args);
    (o.code, o.body)
}

#[test]
fn bad_input_gets_upstream_errors() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "errors", dir.path(), &[]);
    let pki = tm.dir.join("pki");
    let (crt, key) = (pki.join("admin.crt"), pki.join("admin.key"));
    let admin = ["--cert", crt.to_str().unwrap(), "--key", key.to_str().unwrap()];
    let cms = format!("{}/api/v1/namespaces/default/configmaps", tm.url());

    // No credentials, a wrong token, a certificate from another CA: 401.
    assert_eq!(curl(&tm, &[], &[&cms]).0, 401);
    assert_eq!(curl(&tm, &["-H", "Authorization: Bearer wrong"], &[&cms]).0, 401);
    let other = tempfile::tempdir().unwrap();
    let _other_tm = TenantMaster::start(&etcd, "other", other.path(), &[]);
    let (ocrt, okey) = (other.path().join("pki/admin.crt"), other.path().join("pki/admin.key"));
    let (code, body) = curl(&tm, &["--cert", ocrt.to_str().unwrap(), "--key", okey.to_str().unwrap()], &[&cms]);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    // The static token works.
    let token = std::fs::read_to_string(tm.dir.join("tokens.csv")).unwrap().split(',').next().unwrap().to_string();
    assert_eq!(curl(&tm, &["-H", &format!("Authorization: Bearer {token}")], &[&cms]).0, 200);

    let bodies = tempfile::tempdir().unwrap();
    let file = |body: &str| {
        let f = bodies.path().join(format!("b{}", rand_name()));
        std::fs::write(&f, body).unwrap();
        format!("@{}", f.display())
    };
    let post = |body: &str| curl(&tm, &admin, &["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", &file(body), &cms]);
    let (code, body) = post("{\"metadata\": {\"name\": ");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"reason\":\"BadRequest\""), "{body}");

    let (code, body) = post("{\"metadata\": {\"name\": \"Bad_Name\"}}");
    assert_eq!(code, 422, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reason"], "Invalid");
    assert_eq!(v["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueInvalid");

    let (code, body) = post("{\"metadata\": {\"name\": \"cfg\"}, \"data\": {\"a\": \"1\"}}");
    assert_eq!(code, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rv = created["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let (code, _) = post("{\"metadata\": {\"name\": \"cfg\"}}");
    assert_eq!(code, 409);

    // Update with the current resourceVersion works; the same stale one then conflicts.
    let put = |rv: &str, val: &str| {
        curl(&tm, &admin, &["-X", "PUT", "-H", "Content-Type: application/json", "--data-binary",
            &format!("{{\"metadata\": {{\"name\": \"cfg\", \"resourceVersion\": \"{rv}\"}}, \"data\": {{\"a\": \"{val}\"}}}}"),
            &format!("{cms}/cfg")])
    };
    assert_eq!(put(&rv, "2").0, 200);
    let (code, body) = put(&rv, "3");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("the object has been modified"), "{body}");

    // Over 1.5 MiB: a ConfigMap fails its 1 MiB data limit (422), any other object the storage
    // limit (413); either way nothing is stored.
    let big = format!("{{\"metadata\": {{\"name\": \"big\"}}, \"data\": {{\"k\": \"{}\"}}}}", "x".repeat(1600 * 1024));
    let (code, body) = post(&big);
    assert_eq!(code, 422, "{}", &body[..200.min(body.len())]);
    let env: Vec<String> = (0..1700).map(|i| format!("{{\"name\": \"E{i}\", \"value\": \"{}\"}}", "x".repeat(1000))).collect();
    let pod = format!("{{\"metadata\": {{\"name\": \"bigpod\"}}, \"spec\": {{\"containers\": [{{\"name\": \"c\", \"image\": \"x\", \"env\": [{}]}}]}}}}", env.join(","));
    let (code, body) = curl(&tm, &admin, &["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", &file(&pod), &format!("{}/api/v1/namespaces/default/pods", tm.url())]);
    assert_eq!(code, 413, "{}", &body[..200.min(body.len())]);
    let huge = "x".repeat(4 * 1024 * 1024);
    let (code, _) = curl(&tm, &admin, &["--http1.1", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", &file(&huge), &cms]);
    assert_eq!(code, 413);
    for path in ["/api/v1/namespaces/default/configmaps/big", "/api/v1/namespaces/default/pods/bigpod"] {
        assert_eq!(curl(&tm, &admin, &[&format!("{}{path}", tm.url())]).0, 404);
    }
    let (_, list) = curl(&tm, &admin, &[&cms]);
    let l: serde_json::Value = serde_json::from_str(&list).unwrap();
    // Besides kube-root-ca.crt (every namespace has it), only the ConfigMap stored above.
    let items: Vec<&serde_json::Value> = l["items"].as_array().unwrap().iter().filter(|i| i["metadata"]["name"] != "kube-root-ca.crt").collect();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["data"]["a"], "2");
}

fn rand_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}
