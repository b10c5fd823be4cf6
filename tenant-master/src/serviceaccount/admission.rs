//! The ServiceAccount admission plugin on pod create (`plugin/pkg/admission/serviceaccount`):
//!
//! - `spec.serviceAccountName` defaults to `default` (and `spec.serviceAccount` mirrors it);
//! - the ServiceAccount must exist: looked up in the watch cache, then live, and for `default`
//!   up to ten times 100-200 ms apart, since the serviceaccount controller creates it a moment
//!   after its namespace (otherwise 403 `error looking up service account ns/x: ...`);
//! - unless `automountServiceAccountToken` is false (the pod's, else the ServiceAccount's), a
//!   projected volume `kube-api-access-<5 random chars>` (token, `kube-root-ca.crt`'s `ca.crt`,
//!   the namespace) is added and mounted read-only at [`TOKEN_MOUNT_PATH`] in every init
//!   container and container that does not already mount something there;
//! - pods without imagePullSecrets get the ServiceAccount's;
//! - with the ServiceAccount annotation `kubernetes.io/enforce-mountable-secrets: "true"`, the
//!   pod may only reference secrets the ServiceAccount lists;
//! - mirror pods (annotation `kubernetes.io/config.mirror`) are left alone but may reference
//!   neither service accounts nor secrets.
//!
//! Simplified: ephemeral containers added later through `pods/ephemeralcontainers` are not
//! checked against enforce-mountable-secrets.

use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use super::{
    DEFAULT_SERVICE_ACCOUNT, ROOT_CA_CONFIGMAP, TOKEN_MOUNT_PATH, WARN_ONLY_EXPIRATION_SECONDS,
};
use crate::api::status::{ApiError, ApiResult};
use crate::registry::store::Store;
use crate::registry::ResourceInfo;

/// The prefix of the injected volume's name.
pub const VOLUME_PREFIX: &str = "kube-api-access-";

const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";

/// `pods "name" is forbidden: <why>` (or `pods is forbidden: ...` for a generated name), as
/// `admission.NewForbidden` words it.
fn forbidden(name: &str, why: impl std::fmt::Display) -> ApiError {
    let message = if name.is_empty() {
        format!("pods is forbidden: {why}")
    } else {
        format!("pods \"{name}\" is forbidden: {why}")
    };
    let mut e = ApiError::forbidden(message);
    e.details = Some(json!({"name": name, "kind": "pods"}));
    e
}

/// Runs the plugin on a new object of resource `inf` (anything but core pods passes through).
/// `generated`: the name was generated from generateName (errors then name no pod).
pub async fn admit_create(
    store: &Store,
    inf: &ResourceInfo,
    ns: &str,
    pod: &mut Value,
    generated: bool,
) -> ApiResult<()> {
    if !inf.group.is_empty() || inf.plural != "pods" {
        return Ok(());
    }
    let name = if generated {
        String::new()
    } else {
        crate::meta::name(pod).to_string()
    };
    if pod["metadata"]["annotations"]
        .get(MIRROR_ANNOTATION)
        .is_some()
    {
        return check_mirror_pod(pod).map_err(|why| forbidden(&name, why));
    }
    let sa_name = match pod["spec"]["serviceAccountName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        Some(s) => s.to_string(),
        None => DEFAULT_SERVICE_ACCOUNT.to_string(),
    };
    pod["spec"]["serviceAccountName"] = json!(sa_name);
    pod["spec"]["serviceAccount"] = json!(sa_name);
    let sa = match get_service_account(store, ns, &sa_name).await {
        Ok(Some(sa)) => sa,
        Ok(None) => {
            let why = format!("error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found");
            return Err(forbidden(&name, why));
        }
        Err(e) => {
            return Err(forbidden(
                &name,
                format!(
                    "error looking up service account {ns}/{sa_name}: {}",
                    e.message
                ),
            ))
        }
    };
    mutate(pod, &sa);
    if sa["metadata"]["annotations"][ENFORCE_MOUNTABLE_SECRETS]
        .as_str()
        .map(|v| v.eq_ignore_ascii_case("true") || v == "1" || v == "t")
        == Some(true)
    {
        limit_secret_references(&sa, pod).map_err(|why| forbidden(&name, why))?;
    }
    Ok(())
}

/// The ServiceAccount from the cache, else live; `default` is retried for a while since its
/// controller creates it just after the namespace.
async fn get_service_account(store: &Store, ns: &str, name: &str) -> ApiResult<Option<Value>> {
    let Some(s) = store.registry.lookup("", "v1", "serviceaccounts") else {
        return Ok(None);
    };
    if let Some(o) = store.get_cached(s.as_ref(), ns, name) {
        return Ok(Some((*o.value()).clone()));
    }
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        10
    } else {
        1
    };
    let interval = Duration::from_millis(rand::thread_rng().gen_range(100..200));
    for i in 0..attempts {
        if i > 0 {
            tokio::time::sleep(interval).await;
        }
        match store.get(s.as_ref(), ns, name).await {
            Ok(o) => return Ok(Some((*o.value()).clone())),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// What the plugin changes on a pod, given its ServiceAccount (`Admit` after the lookup).
pub fn mutate(pod: &mut Value, sa: &Value) {
    if should_automount(sa, pod) {
        mount_token(pod);
    }
    let has_pull_secrets = pod["spec"]["imagePullSecrets"]
        .as_array()
        .map(|a| !a.is_empty())
        .unwrap_or(false);
    if !has_pull_secrets {
        let from_sa: Vec<Value> = sa["imagePullSecrets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| json!({"name": r["name"].as_str().unwrap_or("")}))
            .collect();
        if !from_sa.is_empty() {
            pod["spec"]["imagePullSecrets"] = json!(from_sa);
        }
    }
}

/// The pod's `automountServiceAccountToken`, else the ServiceAccount's, else true.
fn should_automount(sa: &Value, pod: &Value) -> bool {
    pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true)
}

/// The projected volume source of the auto-mounted token (`TokenVolumeSource`).
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": WARN_ONLY_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

/// Adds the `kube-api-access-*` volume (reusing one already there) and its mount to every
/// (init) container without a mount at [`TOKEN_MOUNT_PATH`].
fn mount_token(pod: &mut Value) {
    let spec = &mut pod["spec"];
    let existing = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .find(|n| n.starts_with(VOLUME_PREFIX))
        .map(String::from);
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", crate::registry::store::random_suffix()));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(cs) = spec.get_mut(list).and_then(|c| c.as_array_mut()) else {
            continue;
        };
        for c in cs {
            let mounted = c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == TOKEN_MOUNT_PATH);
            if mounted || !c.is_object() {
                continue;
            }
            match c.get_mut("volumeMounts").and_then(|m| m.as_array_mut()) {
                Some(ms) => ms.push(mount.clone()),
                None => c["volumeMounts"] = json!([mount.clone()]),
            }
            needs_volume = true;
        }
    }
    if existing.is_none() && needs_volume {
        let vol = json!({"name": volume_name, "projected": token_volume_source()});
        match spec.get_mut("volumes").and_then(|v| v.as_array_mut()) {
            Some(vs) => vs.push(vol),
            None => spec["volumes"] = json!([vol]),
        }
    }
}

fn names(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
}

/// With enforce-mountable-secrets: every secret a pod references must be listed by its
/// ServiceAccount (`secrets` for volumes and env, `imagePullSecrets` for pull secrets).
fn limit_secret_references(sa: &Value, pod: &Value) -> Result<(), String> {
    let sa_name = crate::meta::name(sa);
    let mountable: Vec<&str> = names(&sa["secrets"]).collect();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if let Some(s) = v["secret"]["secretName"].as_str() {
            if !mountable.contains(&s) {
                return Err(format!("volume with secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"));
            }
        }
    }
    for (list, what) in [
        ("initContainers", "init container"),
        ("containers", "container"),
    ] {
        for c in pod["spec"][list].as_array().into_iter().flatten() {
            let cname = c["name"].as_str().unwrap_or("");
            for e in c["env"].as_array().into_iter().flatten() {
                if let Some(s) = e["valueFrom"]["secretKeyRef"]["name"].as_str() {
                    if !mountable.contains(&s) {
                        let env = e["name"].as_str().unwrap_or("");
                        return Err(format!("{what} {cname} with envVar {env} referencing secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"));
                    }
                }
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(s) = e["secretRef"]["name"].as_str() {
                    if !mountable.contains(&s) {
                        return Err(format!("{what} {cname} with envFrom referencing secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"));
                    }
                }
            }
        }
    }
    let pull: Vec<&str> = names(&sa["imagePullSecrets"]).collect();
    for (i, s) in names(&pod["spec"]["imagePullSecrets"]).enumerate() {
        if !pull.contains(&s) {
            return Err(format!("imagePullSecrets[{i}].name=\"{s}\" is not allowed because service account {sa_name} does not reference that imagePullSecret"));
        }
    }
    Ok(())
}

/// Whether any part of a pod names a secret (a simplified `VisitPodSecretNames`: pull
/// secrets, env and envFrom, and any `secretName` / `secretRef` in a volume source).
fn references_secrets(pod: &Value) -> bool {
    fn nested(v: &Value) -> bool {
        match v {
            Value::Object(m) => m.iter().any(|(k, x)| {
                ((k == "secretName" || k == "secretRef") && !x.is_null())
                    || (k == "secret" && x.is_object())
                    || nested(x)
            }),
            Value::Array(a) => a.iter().any(nested),
            _ => false,
        }
    }
    let spec = &pod["spec"];
    if names(&spec["imagePullSecrets"]).next().is_some() {
        return true;
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let env = c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["valueFrom"]["secretKeyRef"].is_object());
            let env_from = c["envFrom"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|e| e["secretRef"].is_object());
            if env || env_from {
                return true;
            }
        }
    }
    spec["volumes"].as_array().into_iter().flatten().any(nested)
}

fn check_mirror_pod(pod: &Value) -> Result<(), &'static str> {
    if !pod["spec"]["serviceAccountName"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return Err("a mirror pod may not reference service accounts");
    }
    if references_secrets(pod) {
        return Err("a mirror pod may not reference secrets");
    }
    let projects_token = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|v| {
            v["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s["serviceAccountToken"].is_object())
        });
    if projects_token {
        return Err("a mirror pod may not use ServiceAccountToken volume projections");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa() -> Value {
        json!({"metadata": {"name": "default", "namespace": "ns"}})
    }

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "a", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}, {"name": "b", "image": "nginx"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }})
    }

    #[test]
    fn injects_the_projected_volume_and_mounts_everywhere() {
        let mut p = pod();
        mutate(&mut p, &sa());
        let vols = p["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        let name = vols[1]["name"].as_str().unwrap();
        assert!(
            name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5,
            "{name}"
        );
        assert_eq!(vols[1]["projected"], token_volume_source());
        assert_eq!(
            vols[1]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        let mount = json!({"name": name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"});
        assert_eq!(
            p["spec"]["initContainers"][0]["volumeMounts"],
            json!([mount])
        );
        assert_eq!(p["spec"]["containers"][0]["volumeMounts"][1], mount);
        assert_eq!(p["spec"]["containers"][1]["volumeMounts"], json!([mount]));
        // Admitting again changes nothing (the volume is found by its prefix).
        let before = p.clone();
        mutate(&mut p, &sa());
        assert_eq!(p, before);
    }

    #[test]
    fn automount_false_on_the_pod_or_the_service_account_wins() {
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(false);
        mutate(&mut p, &sa());
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
        let mut s = sa();
        s["automountServiceAccountToken"] = json!(false);
        let mut p = pod();
        mutate(&mut p, &s);
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
        assert!(p["spec"]["containers"][1]["volumeMounts"].is_null());
        // The pod's true overrides the ServiceAccount's false.
        let mut p = pod();
        p["spec"]["automountServiceAccountToken"] = json!(true);
        mutate(&mut p, &s);
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn an_existing_mount_at_the_path_is_kept() {
        let mut p = pod();
        p["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": TOKEN_MOUNT_PATH}]);
        p["spec"]["initContainers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": TOKEN_MOUNT_PATH}]);
        mutate(&mut p, &sa());
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "data", "mountPath": TOKEN_MOUNT_PATH}])
        );
        assert_eq!(
            p["spec"]["containers"][1]["volumeMounts"][0]["mountPath"],
            TOKEN_MOUNT_PATH
        );
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 2);
        // Nobody needs it: no volume.
        let mut p = pod();
        for c in ["initContainers", "containers"] {
            for x in p["spec"][c].as_array_mut().unwrap() {
                x["volumeMounts"] = json!([{"name": "data", "mountPath": TOKEN_MOUNT_PATH}]);
            }
        }
        mutate(&mut p, &sa());
        assert_eq!(p["spec"]["volumes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn pull_secrets_come_from_the_service_account() {
        let mut s = sa();
        s["imagePullSecrets"] = json!([{"name": "reg"}]);
        let mut p = pod();
        mutate(&mut p, &s);
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "reg"}]));
        let mut p = pod();
        p["spec"]["imagePullSecrets"] = json!([{"name": "mine"}]);
        mutate(&mut p, &s);
        assert_eq!(p["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
        let err = limit_secret_references(&s, &p).unwrap_err();
        assert_eq!(err, "imagePullSecrets[0].name=\"mine\" is not allowed because service account default does not reference that imagePullSecret");
    }

    #[test]
    fn mountable_secrets_are_enforced() {
        let mut s = sa();
        s["secrets"] = json!([{"name": "ok"}]);
        let mut p = pod();
        p["spec"]["volumes"] = json!([{"name": "v", "secret": {"secretName": "ok"}}]);
        assert!(limit_secret_references(&s, &p).is_ok());
        p["spec"]["containers"][1]["env"] =
            json!([{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}]);
        assert_eq!(
            limit_secret_references(&s, &p).unwrap_err(),
            "container b with envVar PW referencing secret.secretName=\"other\" is not allowed because service account default does not reference that secret"
        );
    }

    #[test]
    fn mirror_pods_may_not_reference_accounts_or_secrets() {
        let mut p = pod();
        assert!(check_mirror_pod(&p).is_ok());
        p["spec"]["serviceAccountName"] = json!("x");
        assert_eq!(
            check_mirror_pod(&p).unwrap_err(),
            "a mirror pod may not reference service accounts"
        );
        let mut p = pod();
        p["spec"]["volumes"] = json!([{"name": "s", "secret": {"secretName": "x"}}]);
        assert_eq!(
            check_mirror_pod(&p).unwrap_err(),
            "a mirror pod may not reference secrets"
        );
    }
}
