//! A schema of real-world size and shape: cert-manager's Certificate (v1), written for kplex
//! after the published CRD, with CEL rules added.

use serde_json::{json, Value};

use super::{check, check_update, schema};

fn certificate_schema() -> Value {
    serde_json::from_str(include_str!("certificate.schema.json")).expect("schema json")
}

fn certificate() -> Value {
    json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "secretName": "web-tls", "commonName": "web.example.com",
            "dnsNames": ["web.example.com", "www.example.com"], "ipAddresses": ["10.0.0.1"],
            "duration": "2160h", "renewBefore": "360h",
            "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "encoding": "PKCS8"},
            "usages": ["server auth", "client auth"],
            "subject": {"organizations": ["Example"]},
            "secretTemplate": {"labels": {"app": "web"}},
            "keystores": {"pkcs12": {"create": true, "passwordSecretRef": {"name": "p12", "key": "password"}}},
            "uris": ["spiffe://cluster.local/ns/default/sa/web"]
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}],
            "notAfter": "2024-04-01T00:00:00Z", "revision": 1
        }
    })
}

#[test]
fn a_real_certificate_is_defaulted_pruned_and_valid() {
    let st = schema(certificate_schema());
    let mut c = certificate();
    c["spec"]["unknownField"] = json!(1);
    c["spec"]["issuerRef"]["extra"] = json!("x");
    let pruned = st.prune(&mut c);
    assert_eq!(pruned, vec![".spec.issuerRef.extra", ".spec.unknownField"]);
    st.apply_defaults(&mut c);
    assert_eq!(c["spec"]["privateKey"]["rotationPolicy"], "Always");
    assert_eq!(check(&st, c.clone()), Vec::<String>::new());
    assert_eq!(check_update(&st, c.clone(), c), Vec::<String>::new());
}

#[test]
fn invalid_certificates_are_refused_with_upstream_messages() {
    let st = schema(certificate_schema());
    let mut c = certificate();
    c["spec"]["privateKey"]["algorithm"] = json!("DSA");
    c["spec"]["usages"] = json!(["server auth", "server auth"]);
    c["spec"]["secretName"] = json!("Web_TLS");
    c["spec"]["renewBeforePercentage"] = json!(120);
    c["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "Maybe"}]);
    let got = check(&st, c);
    let want = [
        "spec.privateKey.algorithm: Unsupported value: \"DSA\": supported values: \"RSA\", \"ECDSA\", \"Ed25519\"",
        "spec.renewBeforePercentage: Invalid value: 120: spec.renewBeforePercentage in body should be less than or equal to 99",
        "spec.secretName: Invalid value: \"Web_TLS\": spec.secretName in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
        "status.conditions[1].status: Unsupported value: \"Maybe\": supported values: \"True\", \"False\", \"Unknown\"",
        "spec.usages[1]: Duplicate value: \"server auth\"",
        "status.conditions[1]: Duplicate value: {\"type\":\"Ready\"}",
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
    ];
    for w in want {
        assert!(got.contains(&w.to_string()), "missing {w}\ngot {got:#?}");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");

    let mut c = certificate();
    c["spec"]["renewBeforePercentage"] = json!(50);
    c["spec"]["ipAddresses"] = json!(["not-an-ip"]);
    c["spec"]["privateKey"] = json!({"algorithm": "Ed25519", "size": 256});
    assert_eq!(
        check(&st, c),
        vec![
            "spec: Invalid value: \"object\": renewBefore and renewBeforePercentage are mutually exclusive",
            "spec: Invalid value: \"object\": ipAddresses must be IP addresses",
            "spec.privateKey.size: Invalid value: \"object\": size may not be set for Ed25519 keys",
        ]
    );
}

/// Not a pass/fail test: prints how long parsing and validating take (run with --ignored).
#[test]
#[ignore]
fn certificate_timing() {
    let raw = certificate_schema();
    let t = std::time::Instant::now();
    let n = 20;
    for _ in 0..n {
        schema(raw.clone());
    }
    println!("parse: {:?} per schema", t.elapsed() / n);
    let st = schema(raw);
    let c = certificate();
    let t = std::time::Instant::now();
    let n = 2000;
    for _ in 0..n {
        let mut e = Vec::new();
        st.validate(&c, Some(&c), &mut e);
        assert!(e.is_empty());
    }
    println!("validate (update, with CEL): {:?} per object", t.elapsed() / n);
    let text = include_str!("certificate.schema.json").replace("x-kubernetes-validations", "x-unused");
    let plain = schema(serde_json::from_str(&text).unwrap());
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut e = Vec::new();
        plain.validate(&c, Some(&c), &mut e);
    }
    println!("validate (update, no CEL rules): {:?} per object", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut e = Vec::new();
        plain.validate(&c, None, &mut e);
    }
    println!("validate (create, no CEL rules): {:?} per object", t.elapsed() / n);
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut x = c.clone();
        st.prune(&mut x);
        st.apply_defaults(&mut x);
    }
    println!("prune + default (incl. clone): {:?} per object", t.elapsed() / n);
}
