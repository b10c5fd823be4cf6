//! Defaulting of pod specs as kube-apiserver's core/v1 defaulters do it
//! (`SetObjectDefaults_Pod` / `SetObjectDefaults_PodTemplate` and what the apps and batch
//! defaulters call for their embedded templates): the PodSpec fields, every container kind,
//! ports, env, probes and lifecycle hooks, each volume source, and resource quantities.
//!
//! Besides the defaulting functions, Go's JSON encoding makes some fields appear although nobody
//! set them: non-pointer structs are always written (`resources: {}` on a container, the
//! template's `metadata`, whose zero `creationTimestamp` is written as `null` in v1.33). Those are
//! filled here too, since a real cluster returns them.

use serde_json::{json, Value};

use crate::registry::quantity;
use crate::registry::strategies::common::default_field;

/// As [`default_field`], also replacing an empty string (`if obj.X == ""`).
fn default_string(obj: &mut Value, key: &str, v: &str) {
    if obj.is_object() && obj.get(key).and_then(|x| x.as_str()).map(|s| s.is_empty()).unwrap_or(true) {
        obj[key] = json!(v);
    }
}

/// As [`default_field`] for an int32 that upstream defaults when it is 0 (non-pointer fields).
fn default_nonzero(obj: &mut Value, key: &str, v: i64) {
    if obj.is_object() && obj.get(key).and_then(|x| x.as_i64()).unwrap_or(0) == 0 {
        obj[key] = json!(v);
    }
}

fn objects_mut<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key).and_then(|x| x.as_array_mut()).into_iter().flatten().filter(|x| x.is_object())
}

/// The tag `parsers.ParseImageName` finds: `latest` when neither tag nor digest is given, ""
/// for a digest-only reference or one the Docker reference grammar rejects.
pub fn image_tag(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !valid_repository(repo) || digest.map(|d| !d.contains(':')).unwrap_or(false) {
        return String::new();
    }
    match tag {
        Some(t) if valid_tag(t) => t.to_string(),
        Some(_) => String::new(),
        None if digest.is_some() => String::new(),
        None => "latest".to_string(),
    }
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !t.is_empty() && t.len() <= 128 && t.starts_with(ok) && t.chars().all(|c| ok(c) || c == '.' || c == '-')
}

/// A repository as the Docker reference grammar accepts it: an optional registry host (with a
/// port) then lowercase path components joined by `.`, `_`, `__` or dashes.
fn valid_repository(repo: &str) -> bool {
    if repo.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase())) {
        let (host, port) = first.split_once(':').unwrap_or((first, ""));
        let host_ok = !host.is_empty() && host.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-') && !l.ends_with('-'));
        if !host_ok || (first.contains(':') && (port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()))) {
            return false;
        }
        parts.remove(0);
    }
    parts.iter().all(|p| {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        if p.is_empty() || !p.starts_with(alnum) || !p.ends_with(alnum) {
            return false;
        }
        let mut run = String::new();
        for c in p.chars() {
            if alnum(c) {
                if !(run.is_empty() || run == "." || run == "_" || run == "__" || run.chars().all(|x| x == '-')) {
                    return false;
                }
                run.clear();
            } else if c == '.' || c == '_' || c == '-' {
                run.push(c);
            } else {
                return false;
            }
        }
        true
    })
}

/// Upstream's image pull policy default: Always for the `latest` tag (given or implied),
/// IfNotPresent otherwise.
pub fn pull_policy(image: &str) -> &'static str {
    if image_tag(image) == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The object at `key`, without inserting anything when it is absent (unlike `IndexMut`).
fn child<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    v.get_mut(key).filter(|x| x.is_object())
}

/// `SetDefaults_HTTPGetAction` on the handler's `httpGet`, when it has one.
fn default_http_get(handler: &mut Value) {
    if let Some(h) = child(handler, "httpGet") {
        default_string(h, "path", "/");
        default_string(h, "scheme", "HTTP");
    }
}

/// `SetDefaults_Probe` plus its handler's defaults.
fn default_probe(p: &mut Value) {
    if !p.is_object() {
        return;
    }
    default_nonzero(p, "timeoutSeconds", 1);
    default_nonzero(p, "periodSeconds", 10);
    default_nonzero(p, "successThreshold", 1);
    default_nonzero(p, "failureThreshold", 3);
    default_http_get(p);
    if let Some(g) = child(p, "grpc") {
        default_field(g, "service", json!(""));
    }
}

/// `SetDefaults_Container` and the nested defaults of every container kind.
fn default_container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("").to_string();
    default_string(c, "imagePullPolicy", pull_policy(&image));
    default_string(c, "terminationMessagePath", "/dev/termination-log");
    default_string(c, "terminationMessagePolicy", "File");
    for p in objects_mut(c, "ports") {
        default_string(p, "protocol", "TCP");
    }
    for e in objects_mut(c, "env") {
        if e["valueFrom"]["fieldRef"].is_object() {
            default_string(&mut e["valueFrom"]["fieldRef"], "apiVersion", "v1");
        }
    }
    default_field(c, "resources", json!({}));
    for list in ["limits", "requests"] {
        quantity::default_resource_list(&mut c["resources"][list]);
        if c["resources"][list].is_null() {
            if let Some(r) = c["resources"].as_object_mut() {
                r.remove(list);
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, probe) {
            default_probe(p);
        }
    }
    if let Some(l) = child(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = child(l, hook) {
                default_http_get(h);
            }
        }
    }
}

/// Downward API items: `fieldRef.apiVersion` v1.
fn default_downward_items(src: &mut Value) {
    for item in objects_mut(src, "items") {
        if item["fieldRef"].is_object() {
            default_string(&mut item["fieldRef"], "apiVersion", "v1");
        }
    }
}

/// Template metadata as Go writes an embedded `ObjectMeta`: always present, with a zero
/// `creationTimestamp` written as `null`.
pub fn default_embedded_metadata(obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec` and its resource lists.
pub fn default_claim_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_field(spec, "volumeMode", json!("Filesystem"));
    default_field(spec, "resources", json!({}));
    for list in ["limits", "requests"] {
        quantity::default_resource_list(&mut spec["resources"][list]);
        if spec["resources"][list].is_null() {
            if let Some(r) = spec["resources"].as_object_mut() {
                r.remove(list);
            }
        }
    }
}

/// The defaults of one volume (`SetDefaults_Volume` and each source's defaulter).
fn default_volume(v: &mut Value) {
    if !super::volumes::VOLUME_SOURCES.iter().any(|s| !v[*s].is_null()) {
        v["emptyDir"] = json!({});
    }
    if v["hostPath"].is_object() {
        default_field(&mut v["hostPath"], "type", json!(""));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if v[src].is_object() {
            default_field(&mut v[src], "defaultMode", json!(420));
        }
    }
    if v["downwardAPI"].is_object() {
        default_downward_items(&mut v["downwardAPI"]);
    }
    if v["iscsi"].is_object() {
        default_string(&mut v["iscsi"], "iscsiInterface", "default");
    }
    if v["rbd"].is_object() {
        let rbd = &mut v["rbd"];
        default_string(rbd, "pool", "rbd");
        default_string(rbd, "user", "admin");
        default_string(rbd, "keyring", "/etc/ceph/keyring");
    }
    if v["azureDisk"].is_object() {
        let d = &mut v["azureDisk"];
        default_field(d, "cachingMode", json!("ReadWrite"));
        default_field(d, "kind", json!("Shared"));
        default_field(d, "fsType", json!("ext4"));
        default_field(d, "readOnly", json!(false));
    }
    if v["scaleIO"].is_object() {
        default_string(&mut v["scaleIO"], "storageMode", "ThinProvisioned");
        default_string(&mut v["scaleIO"], "fsType", "xfs");
    }
    if v["projected"].is_object() {
        for s in objects_mut(&mut v["projected"], "sources") {
            if s["downwardAPI"].is_object() {
                default_downward_items(&mut s["downwardAPI"]);
            }
            if s["serviceAccountToken"].is_object() {
                default_field(&mut s["serviceAccountToken"], "expirationSeconds", json!(3600));
            }
        }
    }
    if v["emptyDir"]["sizeLimit"].is_string() || v["emptyDir"]["sizeLimit"].is_number() {
        quantity::canonicalize(&mut v["emptyDir"]["sizeLimit"]);
    }
    if v["ephemeral"]["volumeClaimTemplate"].is_object() {
        let t = &mut v["ephemeral"]["volumeClaimTemplate"];
        default_embedded_metadata(t);
        default_field(t, "spec", json!({}));
        default_claim_spec(&mut t["spec"]);
    }
}

/// `SetDefaults_PodSpec` and everything nested in it; what pod templates get.
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_string(spec, "dnsPolicy", "ClusterFirst");
    default_string(spec, "restartPolicy", "Always");
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_string(spec, "schedulerName", "default-scheduler");
    for v in objects_mut(spec, "volumes") {
        default_volume(v);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in objects_mut(spec, list) {
            default_container(c);
        }
    }
    if spec["overhead"].is_object() {
        quantity::default_resource_list(&mut spec["overhead"]);
    }
}

/// The defaults a pod template gets wherever it is embedded (workloads, jobs, cron jobs,
/// replication controllers, PodTemplates): metadata as Go writes it and the PodSpec defaults.
/// A template the client left out entirely is still written, as the struct is not a pointer.
pub fn default_pod_template(t: &mut Value) {
    if t.is_null() {
        *t = json!({});
    }
    if !t.is_object() {
        return;
    }
    default_embedded_metadata(t);
    if t["spec"].is_null() {
        t["spec"] = json!({});
    }
    default_pod_spec(&mut t["spec"]);
}

/// `SetDefaults_Pod`: what only pods (not templates) get on top of [`default_pod_spec`].
pub fn default_pod_only(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    // Requests default to limits, container by container.
    for list in ["containers", "initContainers"] {
        for c in objects_mut(spec, list) {
            let Some(limits) = c["resources"]["limits"].as_object().cloned() else { continue };
            let requests = c["resources"].as_object_mut().map(|r| r.entry("requests").or_insert_with(|| json!({})));
            if let Some(Value::Object(req)) = requests {
                for (k, v) in limits {
                    req.entry(k).or_insert(v);
                }
            }
        }
    }
    default_field(spec, "enableServiceLinks", json!(true));
    if spec["hostNetwork"] == json!(true) {
        for list in ["containers", "initContainers"] {
            for c in objects_mut(spec, list) {
                for p in objects_mut(c, "ports") {
                    if p["hostPort"].as_i64().unwrap_or(0) == 0 && !p["containerPort"].is_null() {
                        p["hostPort"] = p["containerPort"].clone();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        for (image, policy) in [
            ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"), ("localhost:5000/nginx", "Always"),
            ("registry:5000/nginx:1", "IfNotPresent"), ("nginx@sha256:abc", "IfNotPresent"), ("nginx:latest@sha256:abc", "Always"),
            ("Nginx", "IfNotPresent"), ("quay.io/org/app:v2", "IfNotPresent"), ("gcr.io/a/b", "Always"), ("my_repo/x__y", "Always"),
        ] {
            assert_eq!(pull_policy(image), policy, "{image}");
        }
    }

    #[test]
    fn template_gets_spec_defaults_and_go_shaped_metadata() {
        let mut t = json!({"spec": {"containers": [{"name": "c", "image": "busybox:1.36",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}},
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
            "lifecycle": {"preStop": {"httpGet": {"port": 80}}}}],
            "volumes": [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}, {"name": "c", "hostPath": {"path": "/x"}},
                {"name": "d", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}, {"downwardAPI": {"items": [{"path": "p", "fieldRef": {"fieldPath": "metadata.uid"}}]}}]}},
                {"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}}}]}});
        default_pod_template(&mut t);
        assert_eq!(t["metadata"], json!({"creationTimestamp": null}));
        let s = &t["spec"];
        assert_eq!((s["dnsPolicy"].clone(), s["restartPolicy"].clone(), s["schedulerName"].clone(), s["terminationGracePeriodSeconds"].clone(), s["securityContext"].clone()),
            (json!("ClusterFirst"), json!("Always"), json!("default-scheduler"), json!(30), json!({})));
        let c = &s["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(c["resources"], json!({"limits": {"cpu": "500m", "memory": "1Gi"}}));
        assert_eq!(c["livenessProbe"], json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}));
        assert_eq!((c["readinessProbe"]["grpc"]["service"].clone(), c["readinessProbe"]["periodSeconds"].clone()), (json!(""), json!(5)));
        assert_eq!(c["lifecycle"]["preStop"]["httpGet"]["scheme"], "HTTP");
        let v = &s["volumes"];
        assert_eq!(v[0]["emptyDir"], json!({}));
        assert_eq!(v[1]["configMap"]["defaultMode"], 420);
        assert_eq!(v[2]["hostPath"]["type"], "");
        assert_eq!(v[3]["projected"]["defaultMode"], 420);
        assert_eq!(v[3]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"], 3600);
        assert_eq!(v[3]["projected"]["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"], "v1");
        let claim = &v[4]["ephemeral"]["volumeClaimTemplate"];
        assert_eq!((claim["metadata"].clone(), claim["spec"]["volumeMode"].clone(), claim["spec"]["resources"]["requests"]["storage"].clone()),
            (json!({"creationTimestamp": null}), json!("Filesystem"), json!("1Gi")));
        // Pod-only: requests from limits; not applied to templates.
        assert!(c["resources"].get("requests").is_none());
        let mut spec = s.clone();
        spec["hostNetwork"] = json!(true);
        default_pod_only(&mut spec);
        assert_eq!(spec["containers"][0]["resources"]["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(spec["containers"][0]["ports"][0]["hostPort"], 80);
        assert_eq!(spec["enableServiceLinks"], true);
    }

    #[test]
    fn defaults_keep_what_the_client_set_and_add_no_nulls() {
        let mut t = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"restartPolicy": "Never", "dnsPolicy": "Default",
            "terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "x", "imagePullPolicy": "Never"}]}});
        default_pod_template(&mut t);
        assert_eq!(t["spec"]["restartPolicy"], "Never");
        assert_eq!(t["spec"]["dnsPolicy"], "Default");
        assert_eq!(t["spec"]["terminationGracePeriodSeconds"], 0);
        assert_eq!(t["spec"]["containers"][0]["imagePullPolicy"], "Never");
        assert_eq!(t["spec"]["containers"][0]["resources"], json!({}));
        assert!(t["spec"].get("volumes").is_none() && t["spec"]["containers"][0].get("ports").is_none());
        let c = t["spec"]["containers"][0].as_object().unwrap();
        assert!(c.values().all(|v| !v.is_null()), "{c:?}");
        let mut missing = Value::Null;
        default_pod_template(&mut missing);
        assert_eq!(missing["spec"]["restartPolicy"], "Always");
    }
}
