//! `ValidatePodUpdate`: what a pod update may change (images, a shorter
//! `activeDeadlineSeconds`, added tolerations, removed scheduling gates, a negative grace period
//! raised to 1) and the Forbidden error listing those fields for anything else.

use serde_json::{json, Value};

use crate::api::status::FieldError;

/// The fields the Forbidden message lists (`updatablePodSpecFields` in v1.33, where resources
/// change through the `resize` subresource instead).
pub const UPDATABLE: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(|a| a.as_slice()).unwrap_or(&[])
}

/// `ValidateContainerUpdates`; true when the lists differ in length (validation stops there).
fn container_updates(new: &Value, old: &Value, path: &str, errs: &mut Vec<FieldError>) -> bool {
    if arr(new).len() != arr(old).len() {
        errs.push(FieldError::forbidden(path, "pod updates may not add or remove containers"));
        return true;
    }
    for (i, c) in arr(new).iter().enumerate() {
        let img = c["image"].as_str().unwrap_or("");
        if img.is_empty() {
            errs.push(FieldError::required(format!("{path}[{i}].image"), ""));
        }
        if img.trim().len() != img.len() {
            errs.push(FieldError::invalid(format!("{path}[{i}].image"), img, "must not have leading or trailing whitespace"));
        }
    }
    false
}

/// A toleration compared without its `tolerationSeconds`.
fn toleration_key(t: &Value) -> Value {
    let mut t = t.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("tolerationSeconds");
    }
    t
}

/// Go's name of a PodSpec field, for the diff.
fn go_field(json_name: &str) -> String {
    match json_name {
        "dnsPolicy" => "DNSPolicy".into(),
        "dnsConfig" => "DNSConfig".into(),
        "os" => "OS".into(),
        "serviceAccount" => "DeprecatedServiceAccount".into(),
        "hostPID" => "HostPID".into(),
        "hostIPC" => "HostIPC".into(),
        "setHostnameAsFQDN" => "SetHostnameAsFQDN".into(),
        other => {
            let mut c = other.chars();
            c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
        }
    }
}

/// A `cmp.Diff`-shaped summary of two specs: the changed top-level fields with `-` (old) and
/// `+` (new) lines. go-cmp's own output is deliberately unstable, so this follows its layout
/// without claiming to reproduce it byte for byte.
pub fn spec_diff(old: &Value, new: &Value) -> String {
    let mut keys: Vec<&String> = old.as_object().into_iter().flatten().map(|(k, _)| k).collect();
    for k in new.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort();
    let mut out = String::from("  core.PodSpec{\n");
    let mut same = 0;
    let flush = |same: &mut usize, out: &mut String| {
        if *same > 0 {
            out.push_str(&format!("  \t... // {} identical field{}\n", same, if *same == 1 { "" } else { "s" }));
            *same = 0;
        }
    };
    for k in keys {
        let (o, n) = (old.get(k.as_str()).unwrap_or(&Value::Null), new.get(k.as_str()).unwrap_or(&Value::Null));
        if o == n {
            same += 1;
            continue;
        }
        flush(&mut same, &mut out);
        let f = go_field(k);
        if !o.is_null() {
            out.push_str(&format!("- \t{f}: {o},\n"));
        }
        if !n.is_null() {
            out.push_str(&format!("+ \t{f}: {n},\n"));
        }
    }
    flush(&mut same, &mut out);
    out.push_str("  }\n");
    out
}

/// Validates a pod update against the old pod (the new pod is validated in full separately).
pub fn validate_pod_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let (ns, os) = (&new["spec"], &old["spec"]);
    if container_updates(&ns["containers"], &os["containers"], "spec.containers", errs)
        || container_updates(&ns["initContainers"], &os["initContainers"], "spec.initContainers", errs)
    {
        return;
    }
    match (ns["activeDeadlineSeconds"].as_i64(), os["activeDeadlineSeconds"].as_i64()) {
        (Some(n), _) if !(0..=i32::MAX as i64).contains(&n) => {
            errs.push(FieldError::invalid("spec.activeDeadlineSeconds", n, "must be between 0 and 2147483647, inclusive"));
            return;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid("spec.activeDeadlineSeconds", n, "must be less than or equal to previous value"));
            return;
        }
        (None, Some(_)) => errs.push(FieldError::invalid("spec.activeDeadlineSeconds", Value::Null, "must not update from a positive integer to nil value")),
        _ => {}
    }
    let new_tols: Vec<Value> = arr(&ns["tolerations"]).iter().map(toleration_key).collect();
    if arr(&os["tolerations"]).iter().any(|t| !new_tols.contains(&toleration_key(t))) {
        errs.push(FieldError::forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"));
    }
    let old_gates: Vec<&Value> = arr(&os["schedulingGates"]).iter().map(|g| &g["name"]).collect();
    for (i, g) in arr(&ns["schedulingGates"]).iter().enumerate() {
        if !old_gates.contains(&&g["name"]) {
            errs.push(FieldError::forbidden(
                format!("spec.schedulingGates[{i}].name"),
                format!("only deletion is allowed, but found new scheduling gate '{}'", g["name"].as_str().unwrap_or("")),
            ));
        }
    }
    if ns == os {
        return;
    }
    if super::super::pods::qos_class(ns) != super::super::pods::qos_class(os) {
        errs.push(FieldError::invalid("metadata", new["status"]["qosClass"].clone(), "Pod QoS is immutable"));
    }
    // Munge what may change to the old values, then anything left is forbidden.
    let mut munged = ns.clone();
    for list in ["containers", "initContainers"] {
        if let Some(cs) = munged.get_mut(list).and_then(|c| c.as_array_mut()) {
            for (i, c) in cs.iter_mut().enumerate() {
                c["image"] = os[list][i]["image"].clone();
            }
        }
    }
    for f in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        match os.get(f) {
            Some(v) => munged[f] = v.clone(),
            None => {
                if let Some(m) = munged.as_object_mut() {
                    m.remove(f);
                }
            }
        }
    }
    if os["terminationGracePeriodSeconds"].as_i64().map(|g| g < 0).unwrap_or(false) && munged["terminationGracePeriodSeconds"] == json!(1) {
        munged["terminationGracePeriodSeconds"] = os["terminationGracePeriodSeconds"].clone();
    }
    if munged != *os {
        errs.push(FieldError::forbidden("spec", format!("pod updates may not change fields other than {}\n{}", UPDATABLE.join(","), spec_diff(os, &munged))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"spec": {"containers": [{"name": "c", "image": "nginx:1"}], "restartPolicy": "Always",
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]}})
    }

    #[test]
    fn images_deadlines_and_added_tolerations_may_change() {
        let old = pod();
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["activeDeadlineSeconds"] = json!(30);
        new["spec"]["tolerations"][0]["tolerationSeconds"] = json!(10);
        new["spec"]["tolerations"].as_array_mut().unwrap().push(json!({"key": "x", "operator": "Exists"}));
        let mut errs = Vec::new();
        validate_pod_update(&new, &old, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn other_changes_are_forbidden_with_the_field_list() {
        let old = pod();
        let mut new = old.clone();
        new["spec"]["restartPolicy"] = json!("Never");
        let mut errs = Vec::new();
        validate_pod_update(&new, &old, &mut errs);
        assert_eq!(errs.len(), 1);
        let body = errs[0].body();
        assert!(body.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{\n"), "{body}");
        assert!(body.contains("- \tRestartPolicy: \"Always\",\n+ \tRestartPolicy: \"Never\",\n"), "{body}");
        let mut new = old.clone();
        new["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "d", "image": "x"}));
        errs.clear();
        validate_pod_update(&new, &old, &mut errs);
        assert_eq!(errs[0].body(), "Forbidden: pod updates may not add or remove containers");
        let mut new = old.clone();
        new["spec"]["tolerations"] = json!([]);
        errs.clear();
        validate_pod_update(&new, &old, &mut errs);
        assert_eq!(errs[0].field, "spec.tolerations");
    }
}
