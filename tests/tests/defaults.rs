//! Objects created from minimal manifests read back with the defaults a real v1.33 cluster
//! fills in. Each `tests/testdata/defaults/NAME.yaml` is created with `kubectl create`, and
//! every object in `NAME.expected.yaml` (what kube-apiserver returns for it, derived from
//! upstream's defaulting functions and registry strategies) is compared field by field with
//! `kubectl get -o yaml`. Server-chosen values are written as placeholders: `${UID}` (the
//! object's uid), `${IP}` (an allocated IPv4 address), `${NODEPORT}` (an allocated node port).
//! uid, resourceVersion, creationTimestamp and managedFields are not compared.

use std::path::PathBuf;

use kplex_e2e::{kubectl_with, Etcd, TenantMaster};
use serde::Deserialize;
use serde_json::Value;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/defaults").join(name)
}

/// Every document of a YAML stream, as JSON values.
fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Drops what differs on every run and is not a default.
fn strip_volatile(v: &mut Value) {
    if let Some(md) = v["metadata"].as_object_mut() {
        for f in ["uid", "resourceVersion", "creationTimestamp", "managedFields"] {
            md.remove(f);
        }
    }
}

/// Field-by-field differences between `want` and `got`, with their paths.
fn diff(path: &str, want: &Value, got: &Value, uid: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::String(w), _) if w == "${UID}" => {
            if got.as_str() != Some(uid) {
                out.push(format!("{path}: want the object's uid {uid}, got {got}"));
            }
        }
        (Value::String(w), _) if w == "${IP}" => {
            if got.as_str().and_then(|s| s.parse::<std::net::Ipv4Addr>().ok()).is_none() {
                out.push(format!("{path}: want an IPv4 address, got {got}"));
            }
        }
        (Value::String(w), _) if w == "${NODEPORT}" => {
            if !got.as_u64().map(|p| (30000..=32767).contains(&p)).unwrap_or(false) {
                out.push(format!("{path}: want a node port, got {got}"));
            }
        }
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => diff(&format!("{path}.{k}"), wv, gv, uid, out),
                    None => out.push(format!("{path}.{k}: missing, want {wv}")),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    out.push(format!("{path}.{k}: unexpected {gv}"));
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                out.push(format!("{path}: want {} items, got {}: {got}", w.len(), g.len()));
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff(&format!("{path}[{i}]"), wv, gv, uid, out);
            }
        }
        _ => {
            if want != got {
                out.push(format!("{path}: want {want}, got {got}"));
            }
        }
    }
}

/// `kubectl get` of one expected object, in YAML, parsed.
fn get(tm: &TenantMaster, want: &Value) -> Value {
    let kind = want["kind"].as_str().unwrap().to_lowercase();
    let group = want["apiVersion"].as_str().unwrap().rsplit_once('/').map(|(g, _)| format!(".{g}")).unwrap_or_default();
    let name = want["metadata"]["name"].as_str().unwrap();
    let resource = format!("{kind}{group}/{name}");
    let out = tm.kubectl(&["-n", "defaults", "get", &resource, "-o", "yaml"]);
    assert!(out.ok, "{resource}: {out:?}");
    let mut docs = yaml_docs(&out.stdout);
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

fn check(tm: &TenantMaster, case: &str) -> Vec<String> {
    let manifest = testdata(&format!("{case}.yaml"));
    let created = tm.kubectl(&["-n", "defaults", "create", "-f", manifest.to_str().unwrap()]);
    assert!(created.ok, "{case}: {created:?}");
    let expected = std::fs::read_to_string(testdata(&format!("{case}.expected.yaml"))).unwrap();
    let mut problems = Vec::new();
    for want in yaml_docs(&expected) {
        let mut got = get(tm, &want);
        let uid = got["metadata"]["uid"].as_str().unwrap_or("").to_string();
        strip_volatile(&mut got);
        let name = format!("{}/{}", want["kind"].as_str().unwrap(), want["metadata"]["name"].as_str().unwrap());
        diff(&name, &want, &got, &uid, &mut problems);
    }
    problems
}

#[test]
fn minimal_manifests_read_back_with_upstream_defaults() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "defaults-e2e", dir.path(), kplex_e2e::API_ONLY);
    assert!(tm.kubectl(&["create", "namespace", "defaults"]).ok);

    let mut problems = Vec::new();
    for case in ["deployment", "services", "pod", "job", "cronjob", "statefulset", "daemonset", "misc", "cluster"] {
        problems.extend(check(&tm, case));
    }
    assert!(problems.is_empty(), "differences from a real cluster's output:\n{}", problems.join("\n"));
}

#[test]
fn defaults_are_applied_on_update_too() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let tm = TenantMaster::start(&etcd, "defaults-update", dir.path(), kplex_e2e::API_ONLY);
    assert!(tm.kubectl(&["create", "namespace", "defaults"]).ok);
    let manifest = testdata("deployment.yaml");
    assert!(tm.kubectl(&["-n", "defaults", "create", "-f", manifest.to_str().unwrap()]).ok);

    // A replace with the minimal manifest again (no strategy, no pull policy, no probes'
    // defaults) plus a probe: the stored object is defaulted as on create.
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "        ports:\n        - containerPort: 80\n",
        "        ports:\n        - containerPort: 80\n        livenessProbe:\n          tcpSocket:\n            port: 80\n",
    );
    let replaced = kubectl_with("kubectl", &tm.kubeconfig, &["-n", "defaults", "replace", "-f", "-"], Some(&text));
    assert!(replaced.ok, "{replaced:?}");
    let expected = std::fs::read_to_string(testdata("deployment.expected.yaml")).unwrap().replace("generation: 1", "generation: 2").replace(
        "        ports:\n",
        "        livenessProbe:\n          failureThreshold: 3\n          periodSeconds: 10\n          successThreshold: 1\n          tcpSocket:\n            port: 80\n          timeoutSeconds: 1\n        ports:\n",
    );
    let want = yaml_docs(&expected).remove(0);
    let mut got = get(&tm, &want);
    strip_volatile(&mut got);
    let mut problems = Vec::new();
    diff("Deployment/web", &want, &got, "", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
