//! ControllerRevision history shared by the statefulset and daemonset controllers, after
//! upstream's `pkg/controller/history`: a revision is a snapshot of a workload's template
//! (`data`), numbered by `revision`, named `<parent>-<hash>` and controlled by its workload.
//! `kubectl rollout history` and `kubectl rollout undo` read these objects.

use serde_json::{json, Map, Value};

use super::podutil;
use super::runtime::ctx::CONTROLLERREVISIONS;
use super::runtime::{controller_of, Ctx, OwnerRef};
use crate::api::selectors::LabelSelector;
use crate::api::status::{ApiError, ApiResult};
use crate::meta;
use crate::registry::store::{DeleteOpts, Part};

/// Label on a ControllerRevision holding the hash of its data (`ControllerRevisionHashLabel`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// Label on pods naming the revision they were made from (`apps/v1` `ControllerRevisionHashLabelKey`).
pub const POD_REVISION_LABEL: &str = "controller-revision-hash";

/// `<prefix>-<hash>`, the prefix cut to 223 bytes so the name stays within 253.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut end = prefix.len().min(223);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash}", &prefix[..end])
}

/// FNV-1, 32 bits (Go's `fnv.New32`, which `HashControllerRevision` uses).
fn fnv32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in data {
        h = h.wrapping_mul(0x01000193);
        h ^= *b as u32;
    }
    h
}

/// The hash of a revision's data plus an optional collision probe, safe-encoded
/// (`HashControllerRevision`). The data is hashed as canonical JSON (keys sorted), so equal data
/// hashes equally; not byte-identical to Go's, which hashes the raw bytes it serialized.
pub fn hash_data(data: &Value, probe: Option<i32>) -> String {
    let mut bytes = podutil::canonical_json(data).into_bytes();
    if let Some(p) = probe {
        bytes.extend_from_slice(p.to_string().as_bytes());
    }
    podutil::safe_encode(&fnv32(&bytes).to_string())
}

/// A new ControllerRevision controlled by `parent` (`NewControllerRevision`): the template's
/// labels plus the hash label, `data`, `revision`, named `<parent>-<hash>`.
pub fn new_revision(parent: &Value, template_labels: &Value, data: Value, revision: i64, collision_count: i32) -> Value {
    let mut labels: Map<String, Value> = template_labels.as_object().cloned().unwrap_or_default();
    let hash = hash_data(&data, Some(collision_count));
    labels.insert(HASH_LABEL.into(), json!(hash));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(meta::name(parent), &hash),
            "namespace": meta::namespace(parent),
            "labels": labels,
            "ownerReferences": [OwnerRef::controller_ref(parent)],
        },
        "data": data,
        "revision": revision,
    })
}

/// `revision` of a ControllerRevision.
pub fn number(rev: &Value) -> i64 {
    rev["revision"].as_i64().unwrap_or(0)
}

/// Sorts by revision, then creation time, then name (`SortControllerRevisions`).
pub fn sort(revs: &mut [Value]) {
    revs.sort_by(|a, b| {
        number(a)
            .cmp(&number(b))
            .then_with(|| {
                let t = |v: &Value| v["metadata"]["creationTimestamp"].as_str().and_then(meta::parse_time);
                t(a).cmp(&t(b))
            })
            .then_with(|| meta::name(a).cmp(meta::name(b)))
    });
}

/// Whether two revisions hold the same data (`EqualRevision`).
pub fn equal(a: &Value, b: &Value) -> bool {
    a["data"] == b["data"]
}

/// The revisions equal to `needle`, in the order given (`FindEqualRevisions`).
pub fn find_equal<'a>(revs: &'a [Value], needle: &Value) -> Vec<&'a Value> {
    revs.iter().filter(|r| equal(r, needle)).collect()
}

/// One more than the highest revision of a sorted list; 1 for an empty one (`nextRevision`).
pub fn next_revision(sorted: &[Value]) -> i64 {
    sorted.last().map(|r| number(r) + 1).unwrap_or(1)
}

/// The revisions in `parent`'s namespace matching `sel` that `parent` controls or nobody does
/// (`ListControllerRevisions`), from the cache.
pub fn list(ctx: &Ctx, parent: &Value, sel: &LabelSelector) -> Vec<Value> {
    let uid = meta::uid(parent);
    ctx.list_selected(CONTROLLERREVISIONS, meta::namespace(parent), sel)
        .into_iter()
        .map(|o| (*o.value()).clone())
        .filter(|r| controller_of(r).map(|c| c.uid == uid).unwrap_or(true))
        .collect()
}

/// The revisions `parent` controls, whatever their labels.
pub fn owned(ctx: &Ctx, parent: &Value) -> Vec<Value> {
    let uid = meta::uid(parent);
    ctx.list(CONTROLLERREVISIONS, meta::namespace(parent))
        .into_iter()
        .map(|o| (*o.value()).clone())
        .filter(|r| controller_of(r).map(|c| c.uid == uid).unwrap_or(false))
        .collect()
}

/// Creates `rev` for `parent`; on a name taken by different data, bumps `collision_count` and
/// tries the next name (`CreateControllerRevision`). Returns the stored revision (an existing
/// one with the same data counts as created).
pub async fn create(ctx: &Ctx, parent: &Value, rev: &Value, collision_count: &mut i32) -> ApiResult<Value> {
    let ns = meta::namespace(parent).to_string();
    for _ in 0..100 {
        let hash = hash_data(&rev["data"], Some(*collision_count));
        let mut clone = rev.clone();
        clone["metadata"]["name"] = json!(revision_name(meta::name(parent), &hash));
        clone["metadata"]["labels"][HASH_LABEL] = json!(hash);
        match ctx.create(CONTROLLERREVISIONS, &ns, clone.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) if e.code == 409 => {
                let name = meta::name(&clone).to_string();
                let existing = ctx.store.get(ctx.strategy(CONTROLLERREVISIONS).as_ref(), &ns, &name).await;
                match existing {
                    Ok(o) if o.value()["data"] == rev["data"] => return Ok((*o.value()).clone()),
                    Ok(_) => *collision_count += 1,
                    Err(e) if e.code == 404 => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::internal("too many ControllerRevision name collisions"))
}

/// Sets a revision's number (`UpdateControllerRevision`), retried on conflicts.
pub async fn renumber(ctx: &Ctx, rev: &Value, revision: i64) -> ApiResult<Value> {
    if number(rev) == revision {
        return Ok(rev.clone());
    }
    ctx.modify(CONTROLLERREVISIONS, meta::namespace(rev), meta::name(rev), Part::Main, |cur| {
        cur["revision"] = json!(revision);
        Ok(())
    })
    .await
}

/// Makes `parent` the controller of an orphaned revision (`AdoptControllerRevision`); None if
/// it vanished or another controller took it meanwhile.
pub async fn adopt(ctx: &Ctx, parent: &Value, rev: &Value) -> ApiResult<Option<Value>> {
    let want_uid = meta::uid(rev).to_string();
    let res = ctx
        .modify(CONTROLLERREVISIONS, meta::namespace(rev), meta::name(rev), Part::Main, |cur| {
            if meta::uid(cur) != want_uid || controller_of(cur).is_some() {
                return Ok(());
            }
            let md = meta::metadata_mut(cur);
            let refs = md.entry("ownerReferences").or_insert_with(|| json!([]));
            if !refs.is_array() {
                *refs = json!([]);
            }
            refs.as_array_mut().expect("array").push(OwnerRef::controller_ref(parent));
            Ok(())
        })
        .await;
    match res {
        Ok(v) => Ok(controller_of(&v).filter(|c| c.uid == meta::uid(parent)).map(|_| v)),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes a revision; a missing one is fine.
pub async fn delete(ctx: &Ctx, rev: &Value) -> ApiResult<()> {
    ctx.delete(CONTROLLERREVISIONS, meta::namespace(rev), meta::name(rev), &DeleteOpts::default()).await.map(|_| ())
}

/// The data a workload's revision stores (`getPatch` of both controllers): a strategic merge
/// patch replacing `spec.template` with the workload's template.
pub fn template_patch(obj: &Value) -> Value {
    let mut t = obj["spec"]["template"].clone();
    if !t.is_object() {
        t = json!({});
    }
    t["$patch"] = json!("replace");
    json!({"spec": {"template": t}})
}

/// The template a revision's data restores (the strategic merge patch's `$patch: replace`
/// applied to `spec.template`); None when the data holds no template.
pub fn template_of(rev: &Value) -> Option<Value> {
    let mut t = rev["data"]["spec"]["template"].clone();
    let m = t.as_object_mut()?;
    m.remove("$patch");
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
               "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}})
    }

    #[test]
    fn names_hashes_and_labels() {
        let p = parent();
        let data = template_patch(&p);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let r = new_revision(&p, &p["spec"]["template"]["metadata"]["labels"], data.clone(), 1, 0);
        let hash = r["metadata"]["labels"][HASH_LABEL].as_str().unwrap().to_string();
        assert_eq!(r["metadata"]["name"], format!("web-{hash}"));
        assert_eq!(r["metadata"]["labels"]["app"], "web");
        assert_eq!(r["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(r["revision"], 1);
        // Equal data: equal hash; another probe or other data: another hash.
        assert_eq!(hash_data(&data, Some(0)), hash);
        assert_ne!(hash_data(&data, Some(1)), hash);
        let mut p2 = p.clone();
        p2["spec"]["template"]["spec"]["containers"][0]["image"] = json!("i:2");
        assert_ne!(hash_data(&template_patch(&p2), Some(0)), hash);
        assert_eq!(template_of(&r).unwrap(), p["spec"]["template"]);
        let long = "x".repeat(300);
        assert_eq!(revision_name(&long, "h").len(), 225);
    }

    #[test]
    fn sorting_equality_and_next_revision() {
        let p = parent();
        let a = new_revision(&p, &json!({}), json!({"a": 1}), 2, 0);
        let b = new_revision(&p, &json!({}), json!({"b": 1}), 1, 0);
        let c = new_revision(&p, &json!({}), json!({"a": 1}), 3, 0);
        let mut v = vec![a.clone(), b.clone(), c.clone()];
        sort(&mut v);
        assert_eq!(v.iter().map(number).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(next_revision(&v), 4);
        assert_eq!(next_revision(&[]), 1);
        assert_eq!(find_equal(&v, &a).len(), 2);
        assert!(equal(&a, &c) && !equal(&a, &b));
    }
}
