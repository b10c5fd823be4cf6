//! What several workload controllers need to know about pods and templates, after upstream's
//! `k8s.io/kubernetes/pkg/controller` and `pkg/api/v1/pod` helpers: whether a pod is active,
//! ready or available, how a pod is stamped out of a template, how templates are hashed, and
//! how a controller adopts and releases the objects its selector matches (`ControllerRefManager`).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::runtime::{controller_of, Ctx, OwnerRef, Res};
use crate::api::selectors::LabelSelector;
use crate::api::status::ApiResult;
use crate::meta;
use crate::registry::store::Part;

/// `status.phase` of a pod ("" when unset).
pub fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

/// Neither finished (Succeeded/Failed) nor being deleted (`controller.IsPodActive`).
pub fn is_active(pod: &Value) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && !meta::is_deleting(pod)
}

/// Succeeded or Failed.
pub fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// A pod condition by type.
pub fn condition<'a>(pod: &'a Value, typ: &str) -> Option<&'a Value> {
    pod["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == typ)
}

/// The Ready condition is True (`podutil.IsPodReady`).
pub fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").map(|c| c["status"] == "True").unwrap_or(false)
}

/// Ready for at least `min_ready_seconds` by `now` (`podutil.IsPodAvailable`).
pub fn is_available(pod: &Value, min_ready_seconds: i64, now: DateTime<Utc>) -> bool {
    let Some(c) = condition(pod, "Ready") else { return false };
    if c["status"] != "True" {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match c["lastTransitionTime"].as_str().and_then(meta::parse_time) {
        Some(t) => t + chrono::Duration::seconds(min_ready_seconds) <= now,
        None => false,
    }
}

/// When a pod that is Ready but not yet available becomes available (None: never, or already).
pub fn available_at(pod: &Value, min_ready_seconds: i64) -> Option<DateTime<Utc>> {
    let c = condition(pod, "Ready")?;
    if c["status"] != "True" || min_ready_seconds <= 0 {
        return None;
    }
    let t = c["lastTransitionTime"].as_str().and_then(meta::parse_time)?;
    Some(t + chrono::Duration::seconds(min_ready_seconds))
}

/// Total container restarts, for ranking pods to delete.
pub fn restarts(pod: &Value) -> i64 {
    pod["status"]["containerStatuses"].as_array().into_iter().flatten().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum()
}

/// The label selector in `spec.selector` (a `metav1.LabelSelector`); None when absent or
/// invalid. An empty selector selects nothing for a workload, as upstream decides.
pub fn selector(obj: &Value) -> Option<LabelSelector> {
    let s = LabelSelector::from_object(&obj["spec"]["selector"])?;
    (!s.is_empty()).then_some(s)
}

/// A `map[string]string` selector (ReplicationController, Service) as a LabelSelector.
pub fn map_selector(sel: &Value) -> Option<LabelSelector> {
    let m = sel.as_object()?;
    if m.is_empty() {
        return None;
    }
    LabelSelector::from_object(&json!({"matchLabels": sel}))
}

/// A pod made from a workload's `template` (`controller.GetPodFromTemplate`): the template's
/// labels, annotations, finalizers and spec, `generateName` as given, owned by `owner` as its
/// controller. The caller adds names or labels of its own.
pub fn pod_from_template(template: &Value, owner: &Value, generate_name: &str) -> Value {
    let tm = &template["metadata"];
    let mut md = Map::new();
    if !generate_name.is_empty() {
        md.insert("generateName".into(), json!(generate_name));
    }
    for f in ["labels", "annotations", "finalizers"] {
        if let Some(v) = tm.get(f).filter(|v| !v.is_null()) {
            md.insert(f.into(), v.clone());
        }
    }
    md.insert("ownerReferences".into(), json!([OwnerRef::controller_ref(owner)]));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": Value::Object(md),
        "spec": template["spec"].clone(),
    })
}

const SAFE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `rand.SafeEncodeString`: maps each byte to a character that cannot spell words.
pub fn safe_encode(s: &str) -> String {
    s.bytes().map(|b| SAFE_CHARS[b as usize % SAFE_CHARS.len()] as char).collect()
}

/// FNV-1a, 32 bits.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// The hash of a pod template plus collision count, rendered as upstream renders
/// `pod-template-hash` and controller-revision hashes (`controller.ComputeHash`): FNV-1a of
/// the template (here: its canonical JSON, keys sorted) and the collision count, decimal,
/// safe-encoded. Stable for equal templates; not byte-identical to Go's (which hashes a
/// spew dump of the Go struct), which no client depends on.
pub fn compute_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut bytes = canonical_json(template).into_bytes();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&(c as u32).to_le_bytes());
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// JSON with object keys sorted at every level, so equal values hash equally whatever order
/// their fields arrived in.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<_> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            x => x.clone(),
        }
    }
    sorted(v).to_string()
}

/// Takes ownership of the objects a controller's selector matches and lets go of those it no
/// longer matches, as upstream's `ControllerRefManager.Claim*`: an orphan (no controller)
/// matching `sel` is adopted unless the owner is being deleted; an owned object not matching
/// is released (its owner reference removed); objects with another controller are left
/// alone. Returns the objects owned after claiming.
pub async fn claim(ctx: &Ctx, r: Res, owner: &Value, sel: &LabelSelector, candidates: Vec<std::sync::Arc<Value>>) -> ApiResult<Vec<Value>> {
    Ok(claim_shared(ctx, r, owner, sel, candidates).await?.into_iter().map(|v| (*v).clone()).collect())
}

/// [`claim`] without copying the objects it keeps: for controllers that own many pods.
pub async fn claim_shared(ctx: &Ctx, r: Res, owner: &Value, sel: &LabelSelector, candidates: Vec<std::sync::Arc<Value>>) -> ApiResult<Vec<std::sync::Arc<Value>>> {
    let uid = meta::uid(owner).to_string();
    let owner_deleting = meta::is_deleting(owner);
    let mut owned = Vec::new();
    for c in candidates {
        let matches = sel.matches_json(&c["metadata"]["labels"]);
        match controller_of(&c) {
            Some(cr) if cr.uid == uid => {
                if matches || owner_deleting {
                    owned.push(c);
                } else if !meta::is_deleting(&c) {
                    release(ctx, r, &c, &uid).await?;
                }
            }
            Some(_) => {}
            None => {
                if matches && !owner_deleting && !meta::is_deleting(&c) {
                    if let Some(v) = adopt(ctx, r, &c, owner).await? {
                        owned.push(std::sync::Arc::new(v));
                    }
                }
            }
        }
    }
    Ok(owned)
}

/// Adds `owner` as controller of `obj` if it still has no controller; None if it vanished or
/// was taken meanwhile.
async fn adopt(ctx: &Ctx, r: Res, obj: &Value, owner: &Value) -> ApiResult<Option<Value>> {
    let want_uid = meta::uid(obj).to_string();
    let res = ctx
        .modify(r, meta::namespace(obj), meta::name(obj), Part::Main, |cur| {
            if meta::uid(cur) != want_uid || controller_of(cur).is_some() {
                return Ok(());
            }
            let md = meta::metadata_mut(cur);
            let refs = md.entry("ownerReferences").or_insert_with(|| json!([]));
            if !refs.is_array() {
                *refs = json!([]);
            }
            refs.as_array_mut().expect("array").push(OwnerRef::controller_ref(owner));
            Ok(())
        })
        .await;
    match res {
        Ok(v) => Ok(controller_of(&v).filter(|c| c.uid == meta::uid(owner)).map(|_| v)),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the owner reference with `owner_uid` from `obj`.
async fn release(ctx: &Ctx, r: Res, obj: &Value, owner_uid: &str) -> ApiResult<()> {
    let res = ctx
        .modify(r, meta::namespace(obj), meta::name(obj), Part::Main, |cur| {
            if let Some(refs) = cur["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|o| o["uid"] != owner_uid);
            }
            Ok(())
        })
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// A condition entry as upstream's controllers write them.
pub fn new_condition(typ: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = meta::now_rfc3339();
    json!({"type": typ, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// Sets a condition in `status.conditions`, keeping lastTransitionTime when the status did not
/// change; returns whether anything changed (besides lastUpdateTime when only that moved).
pub fn set_condition(status: &mut Value, cond: Value) -> bool {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conds = status["conditions"].as_array_mut().expect("array");
    match conds.iter_mut().find(|c| c["type"] == cond["type"]) {
        Some(old) => {
            if old["status"] == cond["status"] && old["reason"] == cond["reason"] && old["message"] == cond["message"] {
                return false;
            }
            let mut c = cond;
            if old["status"] == c["status"] {
                c["lastTransitionTime"] = old["lastTransitionTime"].clone();
            }
            *old = c;
            true
        }
        None => {
            conds.push(cond);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_follows_ready_and_min_ready_seconds() {
        let now = Utc::now();
        let t = (now - chrono::Duration::seconds(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let pod = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}});
        assert!(is_ready(&pod));
        assert!(is_available(&pod, 0, now));
        assert!(is_available(&pod, 4, now));
        assert!(!is_available(&pod, 10, now));
        assert!(is_active(&pod));
        let done = json!({"status": {"phase": "Succeeded"}});
        assert!(!is_active(&done) && is_terminal(&done) && !is_ready(&done));
    }

    #[test]
    fn hashes_are_stable_and_safe() {
        let a = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let b = json!({"spec": {"containers": [{"image": "i", "name": "c"}]}, "metadata": {"labels": {"b": "2", "a": "1"}}});
        assert_eq!(compute_hash(&a, None), compute_hash(&b, None));
        assert_ne!(compute_hash(&a, None), compute_hash(&a, Some(1)));
        let h = compute_hash(&a, None);
        assert!(h.chars().all(|c| SAFE_CHARS.contains(&(c as u8))), "{h}");
        assert!(!h.is_empty() && h.len() <= 10);
    }

    #[test]
    fn pods_from_templates_carry_labels_and_a_controller_ref() {
        let owner = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "uid": "u1"}});
        let tpl = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let p = pod_from_template(&tpl, &owner, "web-1-");
        assert_eq!(p["metadata"]["generateName"], "web-1-");
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["spec"]["containers"][0]["image"], "i");
    }

    #[test]
    fn conditions_keep_their_transition_time() {
        let mut st = json!({});
        assert!(set_condition(&mut st, json!({"type": "Available", "status": "True", "reason": "A", "message": "", "lastTransitionTime": "t1"})));
        assert!(!set_condition(&mut st, json!({"type": "Available", "status": "True", "reason": "A", "message": "", "lastTransitionTime": "t2"})));
        assert!(set_condition(&mut st, json!({"type": "Available", "status": "True", "reason": "B", "message": "", "lastTransitionTime": "t3"})));
        assert_eq!(st["conditions"][0]["lastTransitionTime"], "t1");
        assert_eq!(st["conditions"][0]["reason"], "B");
    }
}
