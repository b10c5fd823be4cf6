//! Service accounts and their tokens, end to end with kubectl: every namespace gets a
//! `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap (both come back when deleted);
//! `kubectl create token` issues JWTs with upstream's claims that work as bearer tokens until
//! their ServiceAccount or bound pod is gone; legacy token Secrets are filled in and work;
//! pods get the kube-api-access volume; issuer discovery serves keys that verify the tokens.
//!
//! One etcd and one tenant master serve every check, each in its own namespace.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use kplex_e2e::kubelet::FakeKubelet;
use kplex_e2e::{curl, kubectl_with, CurlOutput, Etcd, TenantMaster};
use serde_json::{json, Value};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Polls `f` until it returns Some, for up to 30 s.
#[track_caller]
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get_json(tm: &TenantMaster, args: &[&str]) -> Option<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let out = tm.kubectl(&a);
    out.ok.then(|| serde_json::from_str(&out.stdout).unwrap())
}

fn uid_of(v: &Value) -> String {
    v["metadata"]["uid"].as_str().unwrap().to_string()
}

/// The header and claims of a JWT (not verified).
fn decode(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let dec = |s: &str| {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap(),
        )
        .unwrap()
    };
    (dec(parts[0]), dec(parts[1]))
}

/// GET `path` with only a bearer token (no client certificate).
fn with_token(tm: &TenantMaster, token: &str, path: &str) -> CurlOutput {
    curl(
        tm,
        &[
            "-H".to_string(),
            format!("Authorization: Bearer {}", token.trim()),
        ],
        &[&format!("{}{path}", tm.url())],
    )
}

/// A kubeconfig that authenticates with a bearer token only.
fn token_kubeconfig(tm: &TenantMaster, dir: &Path, token: &str) -> std::path::PathBuf {
    let path = dir.join("token-kubeconfig");
    let kc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: sa\ncurrent-context: t\n",
        tm.url(),
        tm.dir.join("pki/ca.crt").display(),
        token.trim()
    );
    std::fs::write(&path, kc).unwrap();
    path
}

#[test]
fn service_accounts_tokens_and_root_ca() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tm = TenantMaster::start(&etcd, "sa", dir.path(), &[]);
    let kubelet = FakeKubelet::start(&tm);
    let ca = std::fs::read_to_string(dir.path().join("pki/ca.crt")).unwrap();

    // A new namespace gets its default ServiceAccount and the root CA ConfigMap.
    tm.kubectl(&["create", "namespace", "sa-a"]).must();
    let sa = eventually("the default ServiceAccount", || {
        get_json(&tm, &["-n", "sa-a", "serviceaccount", "default"])
    });
    let cm = eventually("kube-root-ca.crt", || {
        get_json(
            &tm,
            &[
                "-n",
                "sa-a",
                "configmap",
                "kube-root-ca.crt",
                "--show-managed-fields",
            ],
        )
    });
    assert_eq!(cm["data"], json!({"ca.crt": ca}));
    assert!(cm["metadata"]["annotations"]["kubernetes.io/description"]
        .as_str()
        .unwrap()
        .starts_with("Contains a CA bundle"));
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["kube-controller-manager"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        eventually("system namespaces' accounts", || {
            get_json(&tm, &["-n", ns, "serviceaccount", "default"])
        });
    }

    // Deleted or changed, they come back.
    tm.kubectl(&["-n", "sa-a", "delete", "configmap", "kube-root-ca.crt"])
        .must();
    tm.kubectl(&["-n", "sa-a", "delete", "serviceaccount", "default"])
        .must();
    let sa2 = eventually("a new default ServiceAccount", || {
        get_json(&tm, &["-n", "sa-a", "serviceaccount", "default"])
            .filter(|s| uid_of(s) != uid_of(&sa))
    });
    eventually("kube-root-ca.crt again", || {
        get_json(&tm, &["-n", "sa-a", "configmap", "kube-root-ca.crt"])
    });
    tm.kubectl(&[
        "-n",
        "sa-a",
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-p",
        r#"{"data":{"ca.crt":"forged","extra":"x"}}"#,
    ])
    .must();
    eventually("kube-root-ca.crt restored", || {
        get_json(&tm, &["-n", "sa-a", "configmap", "kube-root-ca.crt"])
            .filter(|c| c["data"] == json!({"ca.crt": ca}))
    });

    // kubectl create token: a JWT with upstream's claims.
    let token = tm
        .kubectl(&["-n", "sa-a", "create", "token", "default"])
        .must();
    let (header, claims) = decode(&token);
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], json!([ISSUER]));
    assert_eq!(claims["sub"], "system:serviceaccount:sa-a:default");
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "sa-a", "serviceaccount": {"name": "default", "uid": uid_of(&sa2)}})
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 36));
    let two_hours = tm
        .kubectl(&["-n", "sa-a", "create", "token", "default", "--duration=2h"])
        .must();
    let (_, c) = decode(&two_hours);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        7200
    );
    let short = tm.kubectl(&["-n", "sa-a", "create", "token", "default", "--duration=1m"]);
    assert!(!short.ok && short.stderr.contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"), "{}", short.stderr);
    let missing = tm.kubectl(&["-n", "sa-a", "create", "token", "ghost"]);
    assert!(
        !missing.ok
            && missing
                .stderr
                .contains("serviceaccounts \"ghost\" not found"),
        "{}",
        missing.stderr
    );

    // The token authenticates; a token for another audience, a forged one or none do not.
    assert_eq!(with_token(&tm, &token, "/api").code, 200);
    let kc = token_kubeconfig(&tm, dir.path(), &token);
    let out = kubectl_with(
        "kubectl",
        &kc,
        &[
            "-n",
            "sa-a",
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-o",
            "name",
        ],
        None,
    );
    assert_eq!(
        out.stdout.trim(),
        "configmap/kube-root-ca.crt",
        "{}",
        out.stderr
    );
    let vault = tm
        .kubectl(&[
            "-n",
            "sa-a",
            "create",
            "token",
            "default",
            "--audience=vault",
        ])
        .must();
    assert_eq!(decode(&vault).1["aud"], json!(["vault"]));
    assert_eq!(with_token(&tm, &vault, "/api").code, 401);
    let mut forged = token.trim().to_string();
    forged.pop();
    assert_eq!(with_token(&tm, &forged, "/api").code, 401);
    assert_eq!(with_token(&tm, "garbage", "/api").code, 401);

    // Issuer discovery: the keys verify the token (checked with a JWT library).
    let admin = tm.admin_cert();
    let oidc = curl(
        &tm,
        &admin,
        &[&format!("{}/.well-known/openid-configuration", tm.url())],
    );
    assert_eq!(oidc.code, 200);
    let oidc: Value = serde_json::from_str(&oidc.body).unwrap();
    assert_eq!(oidc["issuer"], ISSUER);
    assert_eq!(
        oidc["jwks_uri"],
        format!("https://127.0.0.1:{}/openid/v1/jwks", tm.port)
    );
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    let jwks = curl(&tm, &admin, &[&format!("{}/openid/v1/jwks", tm.url())]);
    assert!(
        jwks.headers
            .to_lowercase()
            .contains("content-type: application/jwk-set+json"),
        "{}",
        jwks.headers
    );
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.body).unwrap();
    let jwk = set
        .find(header["kid"].as_str().unwrap())
        .expect("the token's key in the JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[ISSUER]);
    v.set_issuer(&[ISSUER]);
    let verified = jsonwebtoken::decode::<Value>(
        token.trim(),
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(verified.claims["sub"], "system:serviceaccount:sa-a:default");
    assert!(jsonwebtoken::decode::<Value>(
        &forged,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v
    )
    .is_err());

    // serviceaccounts/token in discovery, as kube-apiserver lists it.
    let v1: Value = serde_json::from_str(&tm.kubectl(&["get", "--raw", "/api/v1"]).must()).unwrap();
    let sub = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .expect("serviceaccounts/token");
    assert_eq!(
        (&sub["group"], &sub["version"], &sub["kind"], &sub["verbs"]),
        (
            &json!("authentication.k8s.io"),
            &json!("v1"),
            &json!("TokenRequest"),
            &json!(["create"])
        )
    );

    // A pod gets the kube-api-access volume and mounts, as a real cluster's ServiceAccount
    // admission adds them; a token bound to it names it (and its node).
    tm.kubectl(&["-n", "sa-a", "run", "web", "--image=nginx"])
        .must();
    tm.kubectl(&[
        "-n",
        "sa-a",
        "wait",
        "--for=condition=Ready",
        "pod/web",
        "--timeout=30s",
    ])
    .must();
    let pod = get_json(&tm, &["-n", "sa-a", "pod", "web"]).unwrap();
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert_eq!(pod["spec"]["serviceAccount"], "default");
    let vols = pod["spec"]["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 1);
    let vname = vols[0]["name"].as_str().unwrap();
    assert!(
        vname.starts_with("kube-api-access-") && vname.len() == 21,
        "{vname}"
    );
    assert_eq!(
        vols[0]["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
        ]})
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"],
        json!([{"mountPath": MOUNT_PATH, "name": vname, "readOnly": true}])
    );
    let bound = tm
        .kubectl(&[
            "-n",
            "sa-a",
            "create",
            "token",
            "default",
            "--bound-object-kind=Pod",
            "--bound-object-name=web",
        ])
        .must();
    let (_, c) = decode(&bound);
    let node = get_json(&tm, &["node", "node-1"]).unwrap();
    assert_eq!(
        c["kubernetes.io"]["pod"],
        json!({"name": "web", "uid": uid_of(&pod)})
    );
    assert_eq!(
        c["kubernetes.io"]["node"],
        json!({"name": "node-1", "uid": uid_of(&node)})
    );
    assert_eq!(with_token(&tm, &bound, "/api").code, 200);
    let wrong_uid = tm.kubectl(&[
        "-n",
        "sa-a",
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=web",
        "--bound-object-uid=0000",
    ]);
    assert!(
        !wrong_uid.ok
            && wrong_uid.stderr.contains(
                "the UID in the bound object reference (0000) does not match the UID in record"
            ),
        "{}",
        wrong_uid.stderr
    );
    let no_pod = tm.kubectl(&[
        "-n",
        "sa-a",
        "create",
        "token",
        "default",
        "--bound-object-kind=Pod",
        "--bound-object-name=nope",
    ]);
    assert!(
        !no_pod.ok && no_pod.stderr.contains("pods \"nope\" not found"),
        "{}",
        no_pod.stderr
    );
    tm.kubectl(&["-n", "sa-a", "delete", "pod", "web", "--timeout=30s"])
        .must();
    assert_eq!(with_token(&tm, &bound, "/api").code, 401);

    // Opting out: no volume. Naming a missing ServiceAccount: refused as upstream refuses it.
    tm.kubectl(&[
        "-n",
        "sa-a",
        "run",
        "quiet",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"automountServiceAccountToken":false}}"#,
    ])
    .must();
    let quiet = get_json(&tm, &["-n", "sa-a", "pod", "quiet"]).unwrap();
    assert!(
        quiet["spec"]["volumes"].is_null()
            && quiet["spec"]["containers"][0]["volumeMounts"].is_null(),
        "{quiet}"
    );
    let ghost = tm.kubectl(&[
        "-n",
        "sa-a",
        "run",
        "ghost",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"serviceAccountName":"ghost"}}"#,
    ]);
    assert!(
        !ghost.ok && ghost.stderr.contains(r#"pods "ghost" is forbidden: error looking up service account sa-a/ghost: serviceaccount "ghost" not found"#),
        "{}",
        ghost.stderr
    );

    // A pod created together with its namespace waits for the namespace's default account.
    let both = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: sa-race\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: first\n  namespace: sa-race\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
    kubectl_with("kubectl", &tm.kubeconfig, &["apply", "-f", "-"], Some(both)).must();
    assert_eq!(
        get_json(&tm, &["-n", "sa-race", "pod", "first"]).unwrap()["spec"]["serviceAccountName"],
        "default"
    );

    // A legacy token Secret is filled in, and its token works while the Secret exists.
    tm.kubectl(&["-n", "sa-a", "create", "serviceaccount", "build"])
        .must();
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: build-token\n  namespace: sa-a\n  annotations:\n    kubernetes.io/service-account.name: build\ntype: kubernetes.io/service-account-token\n";
    kubectl_with(
        "kubectl",
        &tm.kubeconfig,
        &["apply", "-f", "-"],
        Some(secret),
    )
    .must();
    let s = eventually("the token Secret filled in", || {
        get_json(&tm, &["-n", "sa-a", "secret", "build-token"])
            .filter(|s| s["data"]["token"].is_string())
    });
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let unb64 = |v: &Value| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(s["data"]["ca.crt"], b64(&ca));
    assert_eq!(s["data"]["namespace"], b64("sa-a"));
    let build = get_json(&tm, &["-n", "sa-a", "serviceaccount", "build"]).unwrap();
    assert_eq!(
        s["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        json!(uid_of(&build))
    );
    let legacy = unb64(&s["data"]["token"]);
    let (_, c) = decode(&legacy);
    assert_eq!(c["iss"], "kubernetes/serviceaccount");
    assert_eq!(c["sub"], "system:serviceaccount:sa-a:build");
    assert_eq!(c["kubernetes.io/serviceaccount/secret.name"], "build-token");
    assert!(c.get("exp").is_none());
    assert_eq!(with_token(&tm, &legacy, "/api").code, 200);
    tm.kubectl(&["-n", "sa-a", "delete", "secret", "build-token"])
        .must();
    assert_eq!(with_token(&tm, &legacy, "/api").code, 401);
    // A token Secret of a missing ServiceAccount is deleted.
    let orphan = secret.replace("build-token", "orphan-token").replace(
        "service-account.name: build",
        "service-account.name: nobody",
    );
    kubectl_with(
        "kubectl",
        &tm.kubeconfig,
        &["apply", "-f", "-"],
        Some(&orphan),
    )
    .must();
    eventually("the orphan token Secret deleted", || {
        get_json(&tm, &["-n", "sa-a", "secret", "orphan-token"])
            .is_none()
            .then_some(())
    });

    // The signing key survives a restart: tokens stay valid.
    let key = std::fs::read_to_string(dir.path().join("pki/sa.key")).unwrap();
    drop(kubelet);
    tm.restart();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("pki/sa.key")).unwrap(),
        key
    );
    assert_eq!(with_token(&tm, &token, "/api").code, 200);

    // Once its ServiceAccount is deleted (and recreated with a new uid), a token is refused.
    tm.kubectl(&["-n", "sa-a", "delete", "serviceaccount", "default"])
        .must();
    eventually("the default ServiceAccount recreated", || {
        get_json(&tm, &["-n", "sa-a", "serviceaccount", "default"])
            .filter(|s| uid_of(s) != uid_of(&sa2))
    });
    assert_eq!(with_token(&tm, &token, "/api").code, 401);
}
