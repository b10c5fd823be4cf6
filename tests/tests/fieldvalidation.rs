//! fieldValidation (Strict/Warn/Ignore) and dryRun on writes, as kube-apiserver does them.

use kplex_e2e::{Etcd, TenantMaster};

/// curl as the admin; returns (code, response headers, body).
fn curl(tm: &TenantMaster, args: &[&str]) -> (u16, String, String) {
    let o = kplex_e2e::curl(tm, &tm.admin_cert(), args);
    (o.code, o.headers, o.body)
}

fn warnings(headers: &str) -> Vec<String> {
    headers
        .lines()
        .filter_map(|l| l.strip_prefix("warning: ").or_else(|| l.strip_prefix("Warning: ")))
        .map(|l| {
            let t = l.trim().strip_prefix("299 - \"").unwrap().strip_suffix('"').unwrap();
            t.replace("\\\"", "\"")
        })
        .collect()
}

const INVALID: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "NAME", "unknownMeta": "x", "labels": {"app": "nginx"}},
  "spec": {
    "unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
    "paused": true, "paused": false,
    "selector": {"matchLabels": {"app": "nginx"}},
    "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [{
      "name": "nginx", "image": "nginx:latest", "unknownNested": "val1",
      "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}
  }
}"#;

const FINDINGS: [&str; 6] = [
    r#"unknown field "metadata.unknownMeta""#,
    r#"unknown field "spec.unknown1""#,
    r#"unknown field "spec.unknownDupe""#,
    r#"duplicate field "spec.paused""#,
    r#"unknown field "spec.template.spec.containers[0].unknownNested""#,
    r#"duplicate field "spec.template.spec.containers[0].imagePullPolicy""#,
];

#[test]
fn field_validation_and_dry_run() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "fv", dir.path(), &[]);
    let deps = format!("{}/apis/apps/v1/namespaces/default/deployments", tm.url());
    let bodies = tempfile::tempdir().unwrap();
    let post = |name: &str, query: &str| {
        let f = bodies.path().join(name);
        std::fs::write(&f, INVALID.replace("NAME", name)).unwrap();
        curl(&tm, &["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", &format!("@{}", f.display()), &format!("{deps}{query}")])
    };
    let get = |name: &str| curl(&tm, &[&format!("{deps}/{name}")]);

    // Strict: 400 with every finding in document order; nothing stored.
    let (code, _, body) = post("strict", "?fieldValidation=Strict");
    assert_eq!(code, 400, "{body}");
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["reason"], "BadRequest");
    let msg = st["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!("Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: {}", FINDINGS.join(", "))
    );
    assert_eq!(get("strict").0, 404);

    // Warn (also the default): created, one Warning header per finding, unknown fields dropped,
    // the last of duplicated fields kept.
    for (name, query) in [("warn", "?fieldValidation=Warn"), ("default", "")] {
        let (code, headers, body) = post(name, query);
        assert_eq!(code, 201, "{body}");
        assert_eq!(warnings(&headers), FINDINGS, "{headers}");
        let (code, _, body) = get(name);
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["metadata"].get("unknownMeta").is_none(), "{body}");
        assert!(v["spec"].get("unknown1").is_none() && v["spec"].get("unknownDupe").is_none(), "{body}");
        assert_eq!(v["spec"]["paused"], false);
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert!(c.get("unknownNested").is_none(), "{body}");
        assert_eq!(c["imagePullPolicy"], "Never");
    }

    // Ignore: created silently.
    let (code, headers, body) = post("ignore", "?fieldValidation=Ignore");
    assert_eq!(code, 201, "{body}");
    assert!(warnings(&headers).is_empty(), "{headers}");

    // A bad directive is a 400.
    let (code, _, body) = post("bad", "?fieldValidation=strict");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("fieldValidation must be one of"), "{body}");

    // Merge patch, Strict: 422 on the field `patch`; the object is unchanged.
    let patch = r#"{"spec": {"paused": true, "paused": false, "bogus": 1}}"#;
    let (code, _, body) = curl(&tm, &["-X", "PATCH", "-H", "Content-Type: application/merge-patch+json", "--data-binary", patch, &format!("{deps}/warn?fieldValidation=Strict")]);
    assert_eq!(code, 422, "{body}");
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["details"]["causes"][0]["field"], "patch");
    assert!(st["message"].as_str().unwrap().ends_with(r#"strict decoding error: duplicate field "spec.paused", unknown field "spec.bogus""#), "{body}");
    // Warn: applied, unknown field dropped, warnings sent.
    let (code, headers, body) = curl(&tm, &["-X", "PATCH", "-H", "Content-Type: application/merge-patch+json", "--data-binary", patch, &format!("{deps}/warn")]);
    assert_eq!(code, 200, "{body}");
    assert_eq!(warnings(&headers), [r#"duplicate field "spec.paused""#, r#"unknown field "spec.bogus""#]);
    assert!(!body.contains("bogus"), "{body}");

    // dryRun=All: the response is what would be stored; nothing is.
    let cm = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"a": "1"}}"#;
    let cms = format!("{}/api/v1/namespaces/default/configmaps", tm.url());
    let (code, _, body) = curl(&tm, &["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", cm, &format!("{cms}?dryRun=All")]);
    assert_eq!(code, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["metadata"]["uid"].is_string() && v["metadata"]["creationTimestamp"].is_string(), "{body}");
    assert_eq!(curl(&tm, &[&format!("{cms}/dry")]).0, 404);
    let (code, _, body) = curl(&tm, &["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", cm, &format!("{cms}?dryRun=Bogus")]);
    assert_eq!(code, 400, "{body}");

    // kubectl: --dry-run=server prints the defaulted object and stores nothing; a dry-run
    // delete leaves the object; an update dry run leaves it unchanged.
    let out = tm.kubectl(&["create", "deployment", "web", "--image=nginx:1.27", "--dry-run=server", "-o", "yaml"]);
    assert!(out.ok, "{out:?}");
    assert!(out.stdout.contains("uid:") && out.stdout.contains("name: web"), "{}", out.stdout);
    assert!(!tm.kubectl(&["get", "deployment", "web"]).ok);
    let out = tm.kubectl(&["delete", "deployment", "warn", "--dry-run=server"]);
    assert!(out.ok && out.stdout.contains("(server dry run)"), "{out:?}");
    let out = tm.kubectl(&["scale", "deployment", "warn", "--replicas=5", "--dry-run=server"]);
    assert!(out.ok, "{out:?}");
    let out = tm.kubectl(&["label", "deployment", "warn", "dry=run", "--dry-run=server"]);
    assert!(out.ok, "{out:?}");
    let out = tm.kubectl(&["get", "deployment", "warn", "-o", "jsonpath={.spec.replicas} {.metadata.labels.dry}"]);
    assert!(out.ok, "{out:?}");
    assert_eq!(out.stdout.trim(), "1");

    // kubectl apply with default flags refuses an unknown field (strict validation).
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict-cm\ndata:\n  a: \"1\"\nbogus: true\n";
    let out = kplex_e2e::kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(manifest));
    assert!(!out.ok, "{out:?}");
    assert!(out.stderr.contains("unknown field \"bogus\""), "{}", out.stderr);
    assert!(!tm.kubectl(&["get", "configmap", "strict-cm"]).ok);
}
