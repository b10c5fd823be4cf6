//! `persistentVolumeClaimRetentionPolicy` expressed through owner references, as upstream's
//! StatefulSetAutoDeletePVC (GA): the garbage collector deletes a claim whose controlling
//! owner is gone, so
//!
//! | whenScaled | whenDeleted | the claim is controlled by                         |
//! |------------|-------------|----------------------------------------------------|
//! | Retain     | Retain      | nobody (no reference to the set or the pod)        |
//! | Retain     | Delete      | the set                                            |
//! | Delete     | Retain      | the pod, once the pod is scaled away               |
//! | Delete     | Delete      | the set, or the pod once the pod is scaled away    |

use serde_json::{json, Value};

use super::identity::in_ordinal_range;
use crate::controllers::runtime::OwnerRef;
use crate::meta;

/// The policy's (whenDeleted, whenScaled), Retain when unset.
pub fn policy(set: &Value) -> (&str, &str) {
    let p = &set["spec"]["persistentVolumeClaimRetentionPolicy"];
    (p["whenDeleted"].as_str().unwrap_or("Retain"), p["whenScaled"].as_str().unwrap_or("Retain"))
}

fn refs(obj: &Value) -> Vec<Value> {
    obj["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default()
}

/// The reference points at an object of this apiVersion, kind and name (`matchesRef`).
fn matches_ref(r: &Value, obj: &Value, api_version: &str, kind: &str) -> bool {
    r["apiVersion"] == api_version && r["kind"] == kind && r["name"] == meta::name(obj)
}

fn set_ref(r: &Value, set: &Value) -> bool {
    matches_ref(r, set, "apps/v1", "StatefulSet")
}

fn pod_ref(r: &Value, pod: &Value) -> bool {
    matches_ref(r, pod, "v1", "Pod")
}

/// `target` has a reference with `owner`'s UID (`hasOwnerRef`).
fn has_owner_ref(target: &Value, owner: &Value) -> bool {
    let uid = meta::uid(owner);
    !uid.is_empty() && refs(target).iter().any(|r| r["uid"] == uid)
}

/// The first reference naming `obj` carries another UID: a previous incarnation's
/// (`hasStaleOwnerRef`). A pod not created yet has no UID, so any reference to its name is stale.
fn has_stale_ref(target: &Value, obj: &Value, is_set: bool) -> bool {
    for r in refs(target) {
        let hit = if is_set { set_ref(&r, obj) } else { pod_ref(&r, obj) };
        if hit {
            return r["uid"] != meta::uid(obj);
        }
    }
    false
}

/// With a deleting policy, another controller than the set or pod controls the claim, or a
/// reference to them is stale (`hasUnexpectedController`).
fn has_unexpected_controller(claim: &Value, set: &Value, pod: &Value) -> bool {
    if policy(set) == ("Retain", "Retain") {
        return false;
    }
    for r in refs(claim) {
        if set_ref(&r, set) {
            if r["uid"] != meta::uid(set) {
                return true;
            }
            continue;
        }
        if pod_ref(&r, pod) {
            if r["uid"] != meta::uid(pod) {
                return true;
            }
            continue;
        }
        if r["controller"] == json!(true) {
            return true;
        }
    }
    false
}

/// The set or pod owns the claim without being its controller (`hasNonControllerOwner`).
fn has_non_controller_owner(claim: &Value, set: &Value, pod: &Value) -> bool {
    refs(claim).iter().any(|r| (r["uid"] == meta::uid(set) || (!meta::uid(pod).is_empty() && r["uid"] == meta::uid(pod))) && r["controller"] != json!(true))
}

/// Whether the claim's owner references already say what the policy asks
/// (`isClaimOwnerUpToDate`); stale or foreign ownership is left alone.
pub fn owner_up_to_date(claim: &Value, set: &Value, pod: &Value) -> bool {
    if has_stale_ref(claim, set, true) || has_stale_ref(claim, pod, false) {
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(has_owner_ref(claim, set) || has_owner_ref(claim, pod));
    }
    if has_non_controller_owner(claim, set, pod) {
        return false;
    }
    let scaled_down = !in_ordinal_range(pod, set);
    match policy(set) {
        ("Delete", "Retain") => has_owner_ref(claim, set) && !has_owner_ref(claim, pod),
        ("Retain", "Delete") => !has_owner_ref(claim, set) && scaled_down == has_owner_ref(claim, pod),
        ("Delete", "Delete") => scaled_down != has_owner_ref(claim, set) && scaled_down == has_owner_ref(claim, pod),
        // Retain/Retain, and unknown values treated as Retain.
        _ => !has_owner_ref(claim, set) && !has_owner_ref(claim, pod),
    }
}

/// Rewrites the claim's references to the set and pod as the policy asks
/// (`updateClaimOwnerRefForSetAndPod`); other owners are kept.
pub fn update_owner_refs(claim: &mut Value, set: &Value, pod: &Value) {
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut rs: Vec<Value> = refs(claim).into_iter().filter(|r| !set_ref(r, set) && !pod_ref(r, pod)).collect();
    if !unexpected {
        let scaled_down = !in_ordinal_range(pod, set);
        let (by_set, by_pod) = match policy(set) {
            ("Delete", "Retain") => (true, false),
            ("Retain", "Delete") => (false, scaled_down),
            ("Delete", "Delete") => (!scaled_down, scaled_down),
            _ => (false, false),
        };
        let mut add = |owner: &Value| {
            if !meta::uid(owner).is_empty() && !rs.iter().any(|r| r["uid"] == meta::uid(owner)) {
                rs.push(OwnerRef::controller_ref(owner));
            }
        };
        if by_set {
            add(set);
        }
        if by_pod {
            add(pod);
        }
    }
    let md = meta::metadata_mut(claim);
    if rs.is_empty() {
        md.remove("ownerReferences");
    } else {
        md.insert("ownerReferences".into(), json!(rs));
    }
}

/// With whenScaled Delete, a claim still owned by an earlier pod of the same name blocks the
/// new pod until the garbage collector removed it (`PodClaimIsStale`).
pub fn is_stale_for(claim: &Value, set: &Value, pod: &Value) -> bool {
    policy(set).1 != "Retain" && has_stale_ref(claim, pod, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(deleted: &str, scaled: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
               "spec": {"replicas": replicas, "persistentVolumeClaimRetentionPolicy": {"whenDeleted": deleted, "whenScaled": scaled}}})
    }

    fn pod(ord: i64, uid: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("web-{ord}"), "namespace": "ns", "uid": uid}})
    }

    fn owners(c: &Value) -> Vec<String> {
        refs(c).iter().map(|r| r["kind"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn retention_policies_map_to_owner_references() {
        let claim = json!({"metadata": {"name": "www-web-1"}});
        let cases = [
            ("Retain", "Retain", 2, vec![]),
            ("Delete", "Retain", 2, vec!["StatefulSet"]),
            ("Retain", "Delete", 2, vec![]),
            ("Retain", "Delete", 1, vec!["Pod"]),
            ("Delete", "Delete", 2, vec!["StatefulSet"]),
            ("Delete", "Delete", 1, vec!["Pod"]),
        ];
        for (d, s, n, want) in cases {
            let (st, p) = (set(d, s, n), pod(1, "pod-uid"));
            let mut c = claim.clone();
            assert_eq!(owner_up_to_date(&c, &st, &p), want.is_empty(), "{d}/{s}/{n}");
            update_owner_refs(&mut c, &st, &p);
            assert_eq!(owners(&c), want, "{d}/{s}/{n}");
            assert!(owner_up_to_date(&c, &st, &p), "{d}/{s}/{n}");
            // Back to Retain/Retain: the references go.
            let rr = set("Retain", "Retain", n);
            update_owner_refs(&mut c, &rr, &p);
            assert!(owners(&c).is_empty());
        }
    }

    #[test]
    fn foreign_and_stale_owners_are_respected() {
        let st = set("Delete", "Delete", 2);
        let p = pod(1, "pod-uid");
        let other = json!({"metadata": {"name": "c", "ownerReferences": [{"apiVersion": "v1", "kind": "Foo", "name": "f", "uid": "f", "controller": true}]}});
        assert!(owner_up_to_date(&other, &st, &p));
        let stale =
            json!({"metadata": {"name": "c", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "old", "controller": true}]}});
        assert!(owner_up_to_date(&stale, &st, &p));
        let unborn = pod(1, "");
        assert!(is_stale_for(&stale, &st, &unborn));
        assert!(!is_stale_for(&stale, &set("Delete", "Retain", 2), &unborn));
        let non_ctrl =
            json!({"metadata": {"name": "c", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-uid"}]}});
        assert!(!owner_up_to_date(&non_ctrl, &st, &p));
    }
}
