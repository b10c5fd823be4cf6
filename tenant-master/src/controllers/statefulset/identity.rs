//! A StatefulSet pod's identity, after upstream's `stateful_set_utils.go`: its name
//! `<set>-<ordinal>`, its labels (pod name, pod index, revision), its hostname and subdomain, and
//! the PersistentVolumeClaims `<template>-<set>-<ordinal>` its volumes refer to. Pure functions
//! over JSON objects.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::controllers::history::POD_REVISION_LABEL;
use crate::controllers::podutil;
use crate::meta;

/// Label carrying the pod's own name (`StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label carrying the pod's ordinal (`PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The parent set's name and the ordinal a pod name ends with (`getParentNameAndOrdinal`, the
/// regular expression `(.*)-([0-9]+)$`); ordinal -1 when the name has none or it overflows int32.
pub fn parent_and_ordinal(name: &str) -> (&str, i64) {
    let digits = name.bytes().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || name.len() == digits || name.as_bytes()[name.len() - digits - 1] != b'-' {
        return ("", -1);
    }
    let parent = &name[..name.len() - digits - 1];
    let ord = name[name.len() - digits..].parse::<i32>().map(|o| o as i64).unwrap_or(-1);
    (parent, ord)
}

/// The ordinal of a pod, -1 if its name has none.
pub fn ordinal(pod: &Value) -> i64 {
    parent_and_ordinal(meta::name(pod)).1
}

/// `spec.replicas` (1 when unset, as defaulted).
pub fn replicas(set: &Value) -> i64 {
    set["spec"]["replicas"].as_i64().unwrap_or(1).max(0)
}

/// The first ordinal (`spec.ordinals.start`, 0 by default).
pub fn start_ordinal(set: &Value) -> i64 {
    set["spec"]["ordinals"]["start"].as_i64().unwrap_or(0).max(0)
}

/// The last ordinal, inclusive (`getEndOrdinal`).
pub fn end_ordinal(set: &Value) -> i64 {
    start_ordinal(set) + replicas(set) - 1
}

/// Whether a pod's ordinal lies in the set's range (`podInOrdinalRange`).
pub fn in_ordinal_range(pod: &Value, set: &Value) -> bool {
    let o = ordinal(pod);
    o >= start_ordinal(set) && o <= end_ordinal(set)
}

pub fn pod_name(set: &Value, ord: i64) -> String {
    format!("{}-{ord}", meta::name(set))
}

/// `<template>-<set>-<ordinal>` (`getPersistentVolumeClaimName`).
pub fn claim_name(set: &Value, template: &str, ord: i64) -> String {
    format!("{template}-{}-{ord}", meta::name(set))
}

/// The pod's name says it belongs to the set (`isMemberOf`).
pub fn is_member(set: &Value, pod: &Value) -> bool {
    parent_and_ordinal(meta::name(pod)).0 == meta::name(set)
}

/// Name, namespace and pod-name label agree with the set (`identityMatches`).
pub fn identity_matches(set: &Value, pod: &Value) -> bool {
    let (parent, ord) = parent_and_ordinal(meta::name(pod));
    ord >= 0
        && parent == meta::name(set)
        && meta::name(pod) == pod_name(set, ord)
        && meta::namespace(pod) == meta::namespace(set)
        && pod["metadata"]["labels"][POD_NAME_LABEL].as_str() == Some(meta::name(pod))
}

fn templates(set: &Value) -> impl Iterator<Item = &Value> {
    set["spec"]["volumeClaimTemplates"].as_array().into_iter().flatten()
}

/// The pod's volumes cover the set's claim templates (`storageMatches`).
pub fn storage_matches(set: &Value, pod: &Value) -> bool {
    let ord = ordinal(pod);
    if ord < 0 {
        return false;
    }
    let vols = pod["spec"]["volumes"].as_array();
    templates(set).all(|t| {
        let tn = t["metadata"]["name"].as_str().unwrap_or("");
        vols.into_iter().flatten().any(|v| v["name"] == tn && v["persistentVolumeClaim"]["claimName"].as_str() == Some(claim_name(set, tn, ord).as_str()))
    })
}

/// The claims a pod with ordinal `ord` uses, by template name (`getPersistentVolumeClaims`):
/// each template renamed, in the set's namespace, labelled with the selector's matchLabels.
pub fn claims(set: &Value, ord: i64) -> Vec<(String, Value)> {
    templates(set)
        .map(|t| {
            let tn = t["metadata"]["name"].as_str().unwrap_or("").to_string();
            let mut c = t.clone();
            if !c["metadata"].is_object() {
                c["metadata"] = json!({});
            }
            c["apiVersion"] = json!("v1");
            c["kind"] = json!("PersistentVolumeClaim");
            c["metadata"]["name"] = json!(claim_name(set, &tn, ord));
            c["metadata"]["namespace"] = json!(meta::namespace(set));
            if let Some(ml) = set["spec"]["selector"]["matchLabels"].as_object() {
                if !c["metadata"]["labels"].is_object() {
                    c["metadata"]["labels"] = json!({});
                }
                for (k, v) in ml {
                    c["metadata"]["labels"][k] = v.clone();
                }
            }
            if let Some(st) = c.as_object_mut() {
                st.remove("status");
            }
            (tn, c)
        })
        .collect()
}

/// Points the pod's volumes at its claims, keeping its other volumes (`updateStorage`).
pub fn update_storage(set: &Value, pod: &mut Value) {
    let ord = ordinal(pod);
    let cs = claims(set, ord);
    let mut vols: Vec<Value> = cs.iter().map(|(tn, c)| json!({"name": tn, "persistentVolumeClaim": {"claimName": c["metadata"]["name"]}})).collect();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        if !cs.iter().any(|(tn, _)| v["name"] == tn.as_str()) {
            vols.push(v.clone());
        }
    }
    if !vols.is_empty() || pod["spec"]["volumes"].is_array() {
        pod["spec"]["volumes"] = json!(vols);
    }
}

/// Sets the pod-name and pod-index labels (`updateIdentity`).
pub fn update_identity(set: &Value, pod: &mut Value) {
    let ord = ordinal(pod);
    let name = pod_name(set, ord);
    let md = meta::metadata_mut(pod);
    md.insert("name".into(), json!(name));
    md.insert("namespace".into(), json!(meta::namespace(set)));
    let labels = md.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[POD_NAME_LABEL] = json!(name);
    labels[POD_INDEX_LABEL] = json!(ord.to_string());
}

/// A new pod for ordinal `ord` made from the set's template (`newStatefulSetPod`): name,
/// identity labels, hostname and subdomain (set only at creation), claim volumes.
pub fn new_pod(set: &Value, ord: i64) -> Value {
    let prefix = format!("{}-", meta::name(set));
    let mut pod = podutil::pod_from_template(&set["spec"]["template"], set, &prefix);
    pod["metadata"]["name"] = json!(pod_name(set, ord));
    update_identity(set, &mut pod);
    if !pod["spec"].is_object() {
        pod["spec"] = json!({});
    }
    pod["spec"]["hostname"] = json!(pod_name(set, ord));
    match set["spec"]["serviceName"].as_str() {
        Some(s) if !s.is_empty() => pod["spec"]["subdomain"] = json!(s),
        _ => {}
    }
    update_storage(set, &mut pod);
    pod
}

/// The revision label of a pod ("" when unset).
pub fn pod_revision(pod: &Value) -> &str {
    pod["metadata"]["labels"][POD_REVISION_LABEL].as_str().unwrap_or("")
}

fn set_pod_revision(pod: &mut Value, rev: &str) {
    let md = meta::metadata_mut(pod);
    let labels = md.entry("labels").or_insert_with(|| json!({}));
    labels[POD_REVISION_LABEL] = json!(rev);
}

/// The partition of a RollingUpdate strategy, if it has a `rollingUpdate` block.
pub fn partition(set: &Value) -> Option<i64> {
    let ru = &set["spec"]["updateStrategy"]["rollingUpdate"];
    ru.is_object().then(|| ru["partition"].as_i64().unwrap_or(0))
}

/// `spec.updateStrategy.type` (RollingUpdate when unset).
pub fn strategy(set: &Value) -> &str {
    set["spec"]["updateStrategy"]["type"].as_str().unwrap_or("RollingUpdate")
}

/// A new pod for ordinal `ord` at the right revision (`newVersionedStatefulSetPod`): from the
/// current revision below the partition, from the update revision at or above it.
pub fn versioned_pod(current_set: &Value, update_set: &Value, current_rev: &str, update_rev: &str, ord: i64) -> Value {
    let start = start_ordinal(current_set);
    let current_replicas = current_set["status"]["currentReplicas"].as_i64().unwrap_or(0);
    // As upstream's condition, including how Go groups `a && b || c`.
    let use_current = match partition(current_set) {
        None => strategy(current_set) == "RollingUpdate" && ord < start + current_replicas,
        Some(p) => ord < start + p,
    };
    let (set, rev) = if use_current { (current_set, current_rev) } else { (update_set, update_rev) };
    let mut pod = new_pod(set, ord);
    set_pod_revision(&mut pod, rev);
    pod
}

/// The set with its template restored from a revision (`ApplyRevision`).
pub fn apply_revision(set: &Value, rev: &Value) -> Value {
    let mut s = set.clone();
    if let Some(t) = crate::controllers::history::template_of(rev) {
        s["spec"]["template"] = t;
    }
    s
}

/// Has a phase: the API server has it (`isCreated`).
pub fn is_created(pod: &Value) -> bool {
    !podutil::phase(pod).is_empty()
}

pub fn is_pending(pod: &Value) -> bool {
    podutil::phase(pod) == "Pending"
}

pub fn is_failed(pod: &Value) -> bool {
    podutil::phase(pod) == "Failed"
}

pub fn is_succeeded(pod: &Value) -> bool {
    podutil::phase(pod) == "Succeeded"
}

pub fn is_terminating(pod: &Value) -> bool {
    meta::is_deleting(pod)
}

pub fn is_running_and_ready(pod: &Value) -> bool {
    podutil::phase(pod) == "Running" && podutil::is_ready(pod)
}

pub fn is_running_and_available(pod: &Value, min_ready: i64, now: DateTime<Utc>) -> bool {
    podutil::is_available(pod, min_ready, now)
}

/// Not available, or going away (`isUnavailable`).
pub fn is_unavailable(pod: &Value, min_ready: i64, now: DateTime<Utc>) -> bool {
    !is_running_and_available(pod, min_ready, now) || is_terminating(pod)
}

/// `spec.minReadySeconds`.
pub fn min_ready_seconds(set: &Value) -> i64 {
    set["spec"]["minReadySeconds"].as_i64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn set() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 1},
               "spec": {"replicas": 3, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}],
                                     "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]}},
                        "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"]}, "status": {"phase": "Pending"}}]}})
    }

    #[test]
    fn names_and_ordinals() {
        assert_eq!(parent_and_ordinal("web-0"), ("web", 0));
        assert_eq!(parent_and_ordinal("my-web-12"), ("my-web", 12));
        assert_eq!(parent_and_ordinal("web"), ("", -1));
        assert_eq!(parent_and_ordinal("web-"), ("", -1));
        assert_eq!(parent_and_ordinal("-3"), ("", 3));
        assert_eq!(parent_and_ordinal("web-99999999999").1, -1);
        let s = set();
        assert_eq!(claim_name(&s, "www", 2), "www-web-2");
        assert_eq!((start_ordinal(&s), end_ordinal(&s)), (0, 2));
    }

    #[test]
    fn new_pods_carry_identity_and_storage() {
        let s = set();
        let p = new_pod(&s, 1);
        assert_eq!(p["metadata"]["name"], "web-1");
        assert_eq!(p["metadata"]["generateName"], "web-");
        assert_eq!(p["metadata"]["labels"][POD_NAME_LABEL], "web-1");
        assert_eq!(p["metadata"]["labels"][POD_INDEX_LABEL], "1");
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!((p["spec"]["hostname"].clone(), p["spec"]["subdomain"].clone()), (json!("web-1"), json!("nginx")));
        assert_eq!(p["spec"]["volumes"][0], json!({"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}));
        assert_eq!(p["spec"]["volumes"][1]["name"], "cfg");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert!(identity_matches(&s, &p) && storage_matches(&s, &p) && is_member(&s, &p));
        let mut q = p.clone();
        q["metadata"]["labels"].as_object_mut().unwrap().remove(POD_NAME_LABEL);
        assert!(!identity_matches(&s, &q));
        update_identity(&s, &mut q);
        assert!(identity_matches(&s, &q));
        let c = claims(&s, 1);
        assert_eq!(c[0].0, "www");
        assert_eq!(c[0].1["metadata"]["name"], "www-web-1");
        assert_eq!(c[0].1["metadata"]["labels"]["app"], "web");
        assert!(c[0].1.get("status").is_none());
    }

    #[test]
    fn versioned_pods_follow_the_partition() {
        let mut cur = set();
        cur["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(2);
        let mut upd = cur.clone();
        upd["spec"]["template"]["spec"]["containers"][0]["image"] = json!("i:2");
        let p1 = versioned_pod(&cur, &upd, "web-a", "web-b", 1);
        let p2 = versioned_pod(&cur, &upd, "web-a", "web-b", 2);
        assert_eq!((pod_revision(&p1), pod_revision(&p2)), ("web-a", "web-b"));
        assert_eq!(p2["spec"]["containers"][0]["image"], "i:2");
        assert_eq!(p1["spec"]["containers"][0]["image"], "i:1");
    }
}
