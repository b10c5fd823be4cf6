//! PATCH as kubectl drives it: strategic merge patches computed by kubectl or written by hand,
//! merge and JSON patches, label/annotate, and client-side apply's three-way patch.

use std::process::{Command, Stdio};

use kplex_e2e::{kubectl_with, Etcd, TenantMaster};

const V1: &str = r#"
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
  labels: {app: web, tier: front, team: a}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        - containerPort: 443
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
      - name: sidecar
        image: busybox:1.36
        args: [sleep, infinity]
"#;

/// V1 without label `team`, env var `B` and port 443.
const V2: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: front}
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
      - name: sidecar
        image: busybox:1.36
        args: [sleep, infinity]
"#;

/// `kubectl apply -f -` of `manifest`. Without `openapi`, kubectl computes its patch from its
/// compiled-in Go types instead of the server's OpenAPI documents.
fn apply(tm: &TenantMaster, manifest: &str, openapi: bool) -> kplex_e2e::Output {
    use std::io::Write;
    let mut cmd = Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()));
    cmd.arg("--kubeconfig").arg(&tm.kubeconfig).args(["apply", "-f", "-"]);
    if !openapi {
        cmd.arg("--openapi-patch=false").env("KUBECTL_OPENAPIV3_PATCH", "false");
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("kubectl");
    child.stdin.take().unwrap().write_all(manifest.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    kplex_e2e::Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// `kubectl get deploy web -o jsonpath=...` in `shop`.
fn jp(tm: &TenantMaster, path: &str) -> String {
    jp_of(tm, "web", path)
}

fn jp_of(tm: &TenantMaster, name: &str, path: &str) -> String {
    let out = tm.kubectl(&["-n", "shop", "get", "deploy", name, "-o", &format!("jsonpath={path}")]);
    assert!(out.ok, "{out:?}");
    out.stdout
}

fn patch(tm: &TenantMaster, typ: &str, body: &str) -> kplex_e2e::Output {
    tm.kubectl(&["-n", "shop", "patch", "deploy", "web", "--type", typ, "-p", body])
}

const NAMES: &str = "{.spec.template.spec.containers[*].name}";
const IMAGES: &str = "{.spec.template.spec.containers[*].image}";
const NGINX_ENV: &str = "{.spec.template.spec.containers[?(@.name==\"nginx\")].env[*].name}";
const NGINX_PORTS: &str = "{.spec.template.spec.containers[?(@.name==\"nginx\")].ports[*].containerPort}";

#[test]
fn kubectl_patch_flows_merge_like_a_real_cluster() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "patch-e2e", dir.path(), &[]);

    let created = apply(&tm, V1, false);
    assert!(created.ok, "{created:?}");

    // Strategic patch of one container: merged by name, the other container untouched.
    let p = patch(&tm, "strategic", r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#);
    assert!(p.ok, "{p:?}");
    assert_eq!(jp(&tm, NAMES), "nginx sidecar");
    assert_eq!(jp(&tm, IMAGES), "nginx:1.25 busybox:1.37");
    assert_eq!(jp(&tm, NGINX_ENV), "A B");
    assert_eq!(jp(&tm, "{.spec.template.spec.containers[1].args}"), r#"["sleep","infinity"]"#);

    // A new container without $setElementOrder goes before the live ones, as upstream puts
    // it; `$patch: delete` removes it again.
    let p = patch(&tm, "strategic", r#"{"spec":{"template":{"spec":{"containers":[{"name":"extra","image":"busybox"}]}}}}"#);
    assert!(p.ok, "{p:?}");
    assert_eq!(jp(&tm, NAMES), "extra nginx sidecar");
    let p = patch(&tm, "strategic", r#"{"spec":{"template":{"spec":{"containers":[{"name":"extra","$patch":"delete"}]}}}}"#);
    assert!(p.ok, "{p:?}");
    assert_eq!(jp(&tm, NAMES), "nginx sidecar");

    // kubectl set image computes a two-way strategic patch with $setElementOrder.
    let si = tm.kubectl(&["-n", "shop", "set", "image", "deploy/web", "nginx=nginx:1.27"]);
    assert!(si.ok, "{si:?}");
    assert_eq!(jp(&tm, IMAGES), "nginx:1.27 busybox:1.37");
    assert_eq!(jp(&tm, NGINX_PORTS), "80 443");

    // Merge and JSON patches.
    assert!(patch(&tm, "merge", r#"{"spec":{"replicas":3}}"#).ok);
    assert_eq!(jp(&tm, "{.spec.replicas}"), "3");
    let p = patch(&tm, "json", r#"[{"op":"add","path":"/metadata/annotations/note","value":"hi"},{"op":"replace","path":"/spec/template/spec/containers/1/image","value":"busybox:1.38"}]"#);
    assert!(p.ok, "{p:?}");
    assert_eq!(jp(&tm, "{.metadata.annotations.note}"), "hi");
    assert_eq!(jp(&tm, IMAGES), "nginx:1.27 busybox:1.38");
    let p = patch(&tm, "json", r#"[{"op":"test","path":"/spec/replicas","value":99},{"op":"replace","path":"/spec/replicas","value":5}]"#);
    assert!(!p.ok, "{p:?}");
    assert_eq!(jp(&tm, "{.spec.replicas}"), "3");

    // label / annotate, with --overwrite and removal.
    let label = |args: &[&str]| {
        let mut a = vec!["-n", "shop", "label", "deploy", "web"];
        a.extend_from_slice(args);
        tm.kubectl(&a)
    };
    assert!(label(&["env=prod"]).ok);
    let again = label(&["env=staging"]);
    assert!(!again.ok && again.stderr.contains("--overwrite is false"), "{again:?}");
    assert!(label(&["--overwrite", "env=staging"]).ok);
    assert_eq!(jp(&tm, "{.metadata.labels.env}"), "staging");
    assert!(label(&["env-"]).ok);
    assert_eq!(jp(&tm, "{.metadata.labels.env}"), "");
    assert!(label(&["extra=yes"]).ok);
    let annotate = |args: &[&str]| {
        let mut a = vec!["-n", "shop", "annotate", "deploy", "web"];
        a.extend_from_slice(args);
        tm.kubectl(&a)
    };
    assert!(annotate(&["owner=team-a"]).ok);
    assert!(annotate(&["--overwrite", "owner=team-b"]).ok);
    assert_eq!(jp(&tm, "{.metadata.annotations.owner}"), "team-b");
    assert!(annotate(&["owner-"]).ok);
    assert_eq!(jp(&tm, "{.metadata.annotations.owner}"), "");

    // Client-side apply of V2: kubectl's three-way patch (computed from its compiled-in Go
    // types here) drops exactly what V2 dropped from V1.
    let applied = apply(&tm, V2, false);
    assert!(applied.ok, "{applied:?}");
    assert!(applied.stdout.contains("deployment.apps/web configured"), "{}", applied.stdout);
    assert_eq!(jp(&tm, NAMES), "nginx sidecar");
    assert_eq!(jp(&tm, NGINX_ENV), "A");
    assert_eq!(jp(&tm, "{.spec.template.spec.containers[0].env[0].value}"), "1");
    assert_eq!(jp(&tm, NGINX_PORTS), "80");
    assert_eq!(jp(&tm, "{.metadata.labels}"), r#"{"app":"web","extra":"yes","tier":"front"}"#);
    // What the manifest sets wins; what it never set stays.
    assert_eq!(jp(&tm, IMAGES), "nginx:1.25 busybox:1.36");
    assert_eq!(jp(&tm, "{.spec.template.spec.containers[1].args}"), r#"["sleep","infinity"]"#);
    assert_eq!(jp(&tm, "{.spec.replicas}"), "3");
    assert_eq!(jp(&tm, "{.metadata.annotations.note}"), "hi");
    // Applying again changes nothing.
    let same = apply(&tm, V2, false);
    assert!(same.ok && same.stdout.contains("deployment.apps/web unchanged"), "{same:?}");

    // By default kubectl takes the patch metadata from the server's OpenAPI v3 documents.
    // Where they carry x-kubernetes-patch-* it sends the same directives as above; where they
    // do not, it sends the whole containers list, which the server still merges by name, as
    // upstream merges by its Go types, so the dropped env var and port stay.
    let api = |m: &str| m.replace("name: web", "name: api");
    assert!(apply(&tm, &api(V1), true).ok);
    let applied = apply(&tm, &api(V2), true);
    assert!(applied.ok, "{applied:?}");
    let doc = tm.kubectl(&["get", "--raw", "/openapi/v3/apis/apps/v1"]);
    assert!(doc.ok, "{doc:?}");
    let with_patch_meta = doc.stdout.contains("x-kubernetes-patch-merge-key");
    let (env, ports) = if with_patch_meta { ("A", "80") } else { ("A B", "80 443") };
    assert_eq!(jp_of(&tm, "api", NGINX_ENV), env);
    assert_eq!(jp_of(&tm, "api", NGINX_PORTS), ports);
    assert_eq!(jp_of(&tm, "api", NAMES), "nginx sidecar");
    assert_eq!(jp_of(&tm, "api", "{.metadata.labels}"), r#"{"app":"web","tier":"front"}"#);

    // Bad strategic patches fail as upstream's do and change nothing.
    let rv = jp(&tm, "{.metadata.resourceVersion}");
    let bad = patch(&tm, "strategic", r#"{"spec":{"template":{"spec":{"containers":[{"image":"nginx"}]}}}}"#);
    assert!(!bad.ok, "{bad:?}");
    assert!(bad.stderr.contains("Error from server: map: map[image:nginx] does not contain declared merge key: name"), "{}", bad.stderr);
    let bad = patch(&tm, "strategic", r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}}"#);
    assert!(bad.stderr.contains("Error from server (BadRequest): invalid patch format of retainKeys"), "{}", bad.stderr);
    assert_eq!(jp(&tm, "{.metadata.resourceVersion}"), rv);
}

/// curl with the tenant's admin certificate; returns (code, body).
fn curl_patch(tm: &TenantMaster, content_type: &str, body: &str, path: &str) -> (u16, serde_json::Value) {
    let url = format!("{}{path}", tm.url());
    let ct = format!("Content-Type: {content_type}");
    let o = kplex_e2e::curl(tm, &tm.admin_cert(), &["-X", "PATCH", "-H", &ct, "--data-binary", body, &url]);
    (o.code, serde_json::from_str(&o.body).unwrap_or_default())
}

#[test]
fn strategic_patch_errors_carry_upstream_statuses() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "patch-errors", dir.path(), &[]);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\n  finalizers: [a/b]\ndata: {k: v}\n";
    assert!(kubectl_with("kubectl", &tm.kubeconfig, &["create", "-f", "-"], Some(cm)).ok);
    let path = "/api/v1/namespaces/default/configmaps/cfg";
    let smp = "application/strategic-merge-patch+json";

    let (code, s) = curl_patch(&tm, smp, r#"{"metadata":{"finalizers":[["x"]]}}"#, path);
    assert_eq!(code, 500, "{s}");
    assert_eq!(s["message"], "list element types are not identical: [[a/b] [[x]]]");
    assert!(s.get("reason").is_none(), "{s}");

    let (code, s) = curl_patch(&tm, smp, r#"{"metadata":{"$deleteFromPrimitiveList":["a/b"]}}"#, path);
    assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")), "{s}");
    assert_eq!(s["message"], "invalid patch format of primitive list");

    let (code, s) = curl_patch(&tm, smp, r#"[1]"#, path);
    assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")), "{s}");

    let (code, s) = curl_patch(&tm, "application/json-patch+json", r#"[{"op":"test","path":"/data/k","value":"w"}]"#, path);
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")), "{s}");
    assert_eq!(s["message"], "the server rejected our request due to an error in our request");
    assert_eq!(s["details"]["causes"][0]["reason"], "UnexpectedServerResponse");

    // A good one: finalizers merge as a set, `$deleteFromPrimitiveList` removes.
    let (code, s) = curl_patch(&tm, smp, r#"{"metadata":{"finalizers":["c/d"],"$deleteFromPrimitiveList/finalizers":["a/b"]},"data":{"k":null,"n":"1"}}"#, path);
    assert_eq!(code, 200, "{s}");
    assert_eq!(s["metadata"]["finalizers"], serde_json::json!(["c/d"]));
    assert_eq!(s["data"], serde_json::json!({"n": "1"}));
}
