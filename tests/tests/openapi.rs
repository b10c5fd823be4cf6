//! The OpenAPI documents as real clients use them: `kubectl explain` (1.33 and 1.27),
//! `kubectl apply --validate=strict`, `kubectl get --raw /openapi/v2`, and the client-go style
//! caching of `/openapi/v3` (hash in the index, ETag, immutable cache headers) through kube-rs.

use kplex_e2e::{kubectl_versions, kubectl_with, Etcd, Output, TenantMaster};

const BAD_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: strict
  namespace: default
spec:
  replicaz: 2
  selector:
    matchLabels: {app: strict}
  template:
    metadata:
      labels: {app: strict}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        bogus: 1
"#;

/// `kubectl explain` with its own cache dir, so each run fetches the documents.
fn explain(bin: &str, tm: &TenantMaster, cache: &std::path::Path, args: &[&str]) -> Output {
    let mut a = vec!["explain", "--cache-dir", cache.to_str().unwrap()];
    a.extend_from_slice(args);
    let out = kubectl_with(bin, &tm.kubeconfig, &a, None);
    assert!(out.ok, "{bin} explain {args:?}: {out:?}");
    out
}

fn assert_contains(out: &str, lines: &[&str]) {
    for l in lines {
        assert!(out.contains(l), "missing {l:?} in:\n{out}");
    }
}

/// What `kubectl explain deployment.spec.strategy` prints on a real cluster (field names,
/// types, descriptions of the field and of its type).
const STRATEGY: &[&str] = &[
    "KIND:       Deployment",
    "VERSION:    v1",
    "FIELD: strategy <DeploymentStrategy>",
    "DESCRIPTION:\n    The deployment strategy to use to replace existing pods with new ones.\n    DeploymentStrategy describes how to replace existing pods with new ones.",
    "FIELDS:\n  rollingUpdate\t<RollingUpdateDeployment>\n    Rolling update config params. Present only if DeploymentStrategyType =\n    RollingUpdate.",
    "  type\t<string>",
    "    Type of deployment. Can be \"Recreate\" or \"RollingUpdate\". Default is\n    RollingUpdate.",
];

/// Lines of `kubectl explain pods.spec.containers --recursive` on a real cluster.
const CONTAINERS: &[&str] = &[
    "KIND:       Pod",
    "VERSION:    v1",
    "FIELD: containers <[]Container>",
    "    List of containers belonging to the pod. Containers cannot currently be",
    "    A single application container that you want to run within a pod.",
    "FIELDS:\n  args\t<[]string>\n  command\t<[]string>\n  env\t<[]EnvVar>\n    name\t<string> -required-\n    value\t<string>\n    valueFrom\t<EnvVarSource>",
    "      configMapKeyRef\t<ConfigMapKeySelector>\n        key\t<string> -required-\n        name\t<string>\n        optional\t<boolean>",
    "  image\t<string>",
    "  livenessProbe\t<Probe>",
    "      port\t<IntOrString> -required-",
    "  name\t<string> -required-",
    "  ports\t<[]ContainerPort>\n    containerPort\t<integer> -required-",
    "  resources\t<ResourceRequirements>",
    "    limits\t<map[string]Quantity>",
    "  securityContext\t<SecurityContext>",
    "  volumeMounts\t<[]VolumeMount>\n    mountPath\t<string> -required-",
];

#[test]
fn kubectl_explain_validate_and_raw_openapi() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "openapi-e2e", dir.path(), &[]);

    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let versions = kubectl_versions();
    let k127 = versions.iter().find(|p| p.to_string_lossy().ends_with("kubectl.1.27")).map(|p| p.to_string_lossy().to_string());
    let mut bins = vec![kubectl.clone()];
    bins.extend(k127.clone());
    assert!(k127.is_some() || versions.is_empty(), "kubectl.1.27 not found among {versions:?}");
    for bin in &bins {
        let cache = tempfile::tempdir().unwrap();
        let s = explain(bin, &tm, cache.path(), &["deployment.spec.strategy"]);
        assert_contains(&s.stdout, STRATEGY);
        let c = explain(bin, &tm, cache.path(), &["pods.spec.containers", "--recursive"]);
        assert_contains(&c.stdout, CONTAINERS);
        let missing = kubectl_with(bin, &tm.kubeconfig, &["explain", "--cache-dir", cache.path().to_str().unwrap(), "deployment.spec.nosuchfield"], None);
        assert!(!missing.ok && missing.stderr.contains("nosuchfield"), "{bin}: {missing:?}");

        // --validate=strict: kubectl finds fieldValidation on the kind's PATCH operation and
        // lets the server reject the unknown fields.
        let bad = kubectl_with(bin, &tm.kubeconfig, &["apply", "--validate=strict", "-v=6", "-f", "-"], Some(BAD_DEPLOYMENT));
        assert!(!bad.ok, "{bin}: apply of unknown fields succeeded: {bad:?}");
        assert!(bad.stderr.contains("fieldValidation=Strict"), "{bin}: kubectl did not ask the server to validate: {}", bad.stderr);
        assert!(
            bad.stderr.contains(r#"strict decoding error: unknown field "spec.replicaz", unknown field "spec.template.spec.containers[0].bogus""#),
            "{bin}: {}",
            bad.stderr
        );
        let good = BAD_DEPLOYMENT.replace("replicaz", "replicas").replace("        bogus: 1\n", "");
        let ok = kubectl_with(bin, &tm.kubeconfig, &["apply", "--validate=strict", "-f", "-"], Some(&good));
        assert!(ok.ok, "{bin}: {ok:?}");
        // The object exists now: kubectl sends a strategic merge patch, also checked.
        let bad = kubectl_with(bin, &tm.kubeconfig, &["apply", "--validate=strict", "-f", "-"], Some(BAD_DEPLOYMENT));
        assert!(!bad.ok && bad.stderr.contains(r#"unknown field "spec.replicaz""#), "{bin}: {bad:?}");
        assert!(tm.kubectl(&["delete", "deployment", "strict"]).ok);
    }

    // Every served resource can be explained (the plural, its group version's document, the
    // kind found there by x-kubernetes-group-version-kind).
    let cache = tempfile::tempdir().unwrap();
    let resources = tm.kubectl(&["api-resources", "--no-headers"]);
    assert!(resources.ok, "{resources:?}");
    let mut explained = 0;
    for line in resources.stdout.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (name, kind, api_version) = (cols[0], cols[cols.len() - 1], cols[cols.len() - 3]);
        let out = explain(&kubectl, &tm, cache.path(), &[name, "--api-version", api_version]);
        assert!(out.stdout.contains(&format!("KIND:       {kind}\n")), "{name} ({api_version}):\n{}", out.stdout);
        explained += 1;
    }
    assert!(explained >= 30, "{}", resources.stdout);

    // The Swagger 2.0 document through kubectl's own protobuf decoding (gnostic).
    let cache = tempfile::tempdir().unwrap();
    let v2 = explain(&kubectl, &tm, cache.path(), &["deployment.spec.strategy", "--output=plaintext-openapiv2"]);
    assert_contains(
        &v2.stdout,
        &[
            "KIND:     Deployment\nVERSION:  apps/v1\n\nRESOURCE: strategy <Object>",
            "     The deployment strategy to use to replace existing pods with new ones.\n\n     DeploymentStrategy describes how to replace existing pods with new ones.",
            "   rollingUpdate\t<Object>",
            "   type\t<string>",
        ],
    );

    // kubectl get --raw /openapi/v2 | head -c 300
    let raw = tm.kubectl(&["get", "--raw", "/openapi/v2"]);
    assert!(raw.ok, "{raw:?}");
    let head: String = raw.stdout.chars().take(300).collect();
    println!("kubectl get --raw /openapi/v2 | head -c 300:\n{head}");
    assert!(head.starts_with(r#"{"swagger":"2.0","info":{"title":"Kubernetes","version":"v1.33."#), "{head}");
    let v2: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    let patch = &v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
    let containers = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!((&containers["x-kubernetes-patch-merge-key"], &containers["x-kubernetes-patch-strategy"]), (&"name".into(), &"merge".into()));
}

/// One GET through kube-rs' client: status, headers, body.
async fn get(client: &kube::Client, uri: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut req = http::Request::get(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client.send(req.body(kube::client::Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    (parts.status.as_u16(), parts.headers, body.collect_bytes().await.unwrap().to_vec())
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v3_caching_and_v2_protobuf() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "openapi-cache", dir.path(), &[]);
    let client = tm.client().await;

    // The index links each group version's document with its hash.
    let (code, h, body) = get(&client, "/openapi/v3", &[]).await;
    assert_eq!(code, 200);
    assert_eq!(header(&h, "content-type"), "application/json");
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap().to_string();
    assert!(index["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap().starts_with("/openapi/v3/api/v1?hash="));
    let hash = url.split_once("?hash=").unwrap().1.to_string();
    assert_eq!(hash.len(), 128, "{url}");

    // With the current hash: immutable, cacheable for a year, ETag = hash.
    let (code, h, doc) = get(&client, &url, &[("accept", "application/json")]).await;
    assert_eq!(code, 200);
    assert_eq!(header(&h, "etag"), format!("\"{hash}\""));
    assert_eq!(header(&h, "cache-control"), "public, immutable");
    assert!(!header(&h, "expires").is_empty());
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    assert_eq!(doc["openapi"], "3.0.0");
    assert!(doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"].is_array());

    // A client that has it: 304, no body.
    let (code, h, body) = get(&client, &url, &[("if-none-match", &format!("\"{hash}\""))]).await;
    assert_eq!(code, 304);
    assert!(body.is_empty());
    assert_eq!(header(&h, "etag"), format!("\"{hash}\""));

    // A stale hash: redirected to the current document.
    let (code, h, _) = get(&client, "/openapi/v3/apis/apps/v1?hash=0123", &[]).await;
    assert_eq!(code, 301);
    assert_eq!(header(&h, "location"), url);

    // Without a hash: served, but not marked immutable.
    let (code, h, _) = get(&client, "/openapi/v3/apis/apps/v1", &[]).await;
    assert_eq!(code, 200);
    assert!(header(&h, "cache-control").is_empty());
    let (code, _, _) = get(&client, "/openapi/v3/apis/nosuch.k8s.io/v1", &[]).await;
    assert_eq!(code, 404);

    // /openapi/v2: JSON and gnostic protobuf share one ETag; 406 for what is not offered.
    let (code, h, json) = get(&client, "/openapi/v2", &[("accept", "application/json")]).await;
    assert_eq!(code, 200);
    let etag = header(&h, "etag").to_string();
    assert_eq!(etag.len(), 130);
    assert!(json.starts_with(br#"{"swagger":"2.0""#));
    let (code, h, pb) = get(&client, "/openapi/v2", &[("accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")]).await;
    assert_eq!(code, 200);
    assert_eq!(header(&h, "content-type"), "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
    assert_eq!(header(&h, "etag"), etag);
    assert!(pb.len() > 100_000 && pb[0] == 0x0a, "protobuf starts with field 1 (swagger)");
    // Clients that take gzip (kubectl, client-go) get the stored compressed bytes.
    let (code, h, gz) = get(&client, "/openapi/v2", &[("accept", "application/json"), ("accept-encoding", "gzip")]).await;
    assert_eq!(code, 200);
    assert_eq!(header(&h, "content-encoding"), "gzip");
    assert!(gz.starts_with(&[0x1f, 0x8b]) && gz.len() < json.len() / 4, "{} of {}", gz.len(), json.len());
    let (_, h, _) = get(&client, &url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&h, "content-encoding"), "gzip");
    let (code, _, _) = get(&client, "/openapi/v2", &[("if-none-match", &etag)]).await;
    assert_eq!(code, 304);
    let (code, _, _) = get(&client, "/openapi/v2", &[("accept", "text/html")]).await;
    assert_eq!(code, 406);
}
