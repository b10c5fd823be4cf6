//! Server-side apply and `metadata.managedFields`, as kube-apiserver does them.
//!
//! Every write records who changed which fields: creates, updates and patches as `Update`
//! operations of their field manager ([`track_update`], called by the store), `PATCH` with
//! `application/apply-patch+yaml` as an `Apply` operation that merges the applied configuration
//! into the object, prunes what the applier no longer applies, and reports conflicts with other
//! managers as a 409 unless forced ([`apply_patch`]).
//!
//! The parts follow upstream's structured-merge-diff and `managedfields` packages:
//! [`fieldset`] (paths, sets, FieldsV1), [`typed`] (what the schema makes of a value),
//! [`merge`] (field sets, comparison, merge, removal), [`managers`] (the bookkeeping),
//! [`lastapplied`] (client-side apply's annotation) and [`zero`] (the empty object a create
//! starts from).

pub mod fieldset;
pub mod lastapplied;
pub mod managers;
pub mod merge;
pub mod typed;
pub mod zero;

use http::HeaderMap;
use serde_json::{json, Value};

use super::request::Query;
use super::status::{ApiError, ApiResult, FieldError};
use crate::meta;
use crate::registry::store::{Part, Store, WriteOpts};
use crate::registry::{ResourceInfo, Strategy};
use fieldset::{PathElement, Set};
use managers::{ApplyError, Applied, Ctx, Managed, ManagerId, Operation};

/// At most this many Update entries are kept; older ones merge into `ancient-changes`.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager that owns what an object had before its first apply, when nothing was tracked.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The fields a write through `subresource` does not own because the endpoint resets them:
/// status on the main resource (when there is a status subresource), everything but status on
/// /status.
fn reset_fields(inf: &ResourceInfo, tr: typed::TypeRef, subresource: &str) -> Set {
    let f = |s: &str| PathElement::Field(s.into());
    let mut s = Set::new();
    match subresource {
        "" if inf.has_subresource("status") => s.insert(&[f("status")]),
        "status" => {
            if let typed::TypeRef::Message(m) = tr {
                for fl in crate::schema::SCHEMA.json_fields(m) {
                    if !matches!(fl.name.as_str(), "status" | "apiVersion" | "kind") {
                        s.insert(&[f(&fl.name)]);
                    }
                }
            }
            if let typed::TypeRef::Custom(typed::Custom::Struct { fields, .. }) = tr {
                for name in fields.keys() {
                    if !matches!(name.as_str(), "status" | "apiVersion" | "kind") {
                        s.insert(&[f(name)]);
                    }
                }
            }
            s.insert(&[f("spec")]);
            s.insert(&[f("metadata")]);
        }
        _ => {}
    }
    s
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(md) = v["metadata"].as_object_mut() {
        md.remove("managedFields");
    }
    v
}

fn set_managed_fields(obj: &mut Value, managed: &Managed) {
    let md = meta::metadata_mut(obj);
    match managed.encode() {
        Some(e) => {
            md.insert("managedFields".into(), e);
        }
        None => {
            md.remove("managedFields");
        }
    }
}

/// Records an Update operation (create, update, patch, subresource write) by `manager` that
/// turned `live` (None: a create) into `new`, rewriting `new`'s managedFields.
///
/// As upstream: managedFields sent in `new` are taken as the starting point (an empty list or a
/// single empty entry resets them; invalid ones fall back to the live object's); writes through a
/// subresource always start from the live object's. An existing object without managedFields
/// stays untracked until it is applied to.
pub fn track_update(new: &mut Value, live: Option<&Value>, manager: &str, subresource: &str, inf: &ResourceInfo) {
    let tr = typed::for_kind(&inf.api_version(), &inf.kind);
    track_update_typed(new, live, manager, subresource, inf, tr)
}

/// As [`track_update`], with the type the resource's strategy gives (custom resources have
/// theirs from the CRD's schema).
pub fn track_update_typed(new: &mut Value, live: Option<&Value>, manager: &str, subresource: &str, inf: &ResourceInfo, tr: typed::TypeRef) {
    let api_version = inf.api_version();
    let live_managed = || {
        live.and_then(managers::entries).map(|e| Managed::decode(e).unwrap_or_default()).unwrap_or_default()
    };
    let mut managed = match managers::entries(new) {
        _ if !subresource.is_empty() => live_managed(),
        Some(e) if managers::is_reset(e) => Managed::default(),
        Some(e) => match Managed::decode(e) {
            Ok(m) if !m.fields.is_empty() => m,
            _ => live_managed(),
        },
        None => live_managed(),
    };
    meta::metadata_mut(new).remove("managedFields");
    if managed.fields.is_empty() && live.is_some() {
        return;
    }
    let base = match live {
        Some(l) => without_managed_fields(l),
        None => zero::zero_object(&api_version, &inf.kind),
    };
    let ignored = reset_fields(inf, tr, subresource);
    let now = meta::now_rfc3339();
    let ctx = Ctx { tr, api_version: &api_version, ignored: &ignored, now: &now };
    let id = ManagerId::new(manager, Operation::Update, &api_version, subresource);
    managers::update(&mut managed, &base, new, &id, &ctx);
    managers::cap_updaters(&mut managed, MAX_UPDATE_MANAGERS);
    set_managed_fields(new, &managed);
}

/// Validates the PatchOptions of a PATCH as upstream's `ValidatePatchOptions`: `force` only for
/// apply, a field manager required for apply. Returns `force`.
pub fn patch_options(is_apply: bool, q: &Query) -> ApiResult<bool> {
    let force = match q.get("force") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => return Err(ApiError::bad_request(format!("strconv.ParseBool: parsing {v:?}: invalid syntax"))),
    };
    let mut errs = Vec::new();
    if !is_apply && force.is_some() {
        errs.push(FieldError::forbidden("force", "may not be specified for non-apply patch"));
    }
    if is_apply && q.get("fieldManager").unwrap_or("").is_empty() {
        errs.push(FieldError::required("fieldManager", "is required for apply patch"));
    }
    if errs.is_empty() {
        return Ok(force.unwrap_or(false));
    }
    let parts: Vec<String> = errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect();
    let joined = if parts.len() == 1 { parts[0].clone() } else { format!("[{}]", parts.join(", ")) };
    let mut e = ApiError::new(422, "Invalid", format!("PatchOptions.meta.k8s.io \"\" is invalid: {joined}"));
    let causes: Vec<Value> = errs.iter().map(|fe| json!({"reason": fe_reason(fe), "message": fe.body(), "field": fe.field})).collect();
    e.details = Some(json!({"group": "meta.k8s.io", "kind": "PatchOptions", "causes": causes}));
    Err(e)
}

fn fe_reason(e: &FieldError) -> &'static str {
    match e.kind {
        super::status::FieldErrorKind::Required => "FieldValueRequired",
        super::status::FieldErrorKind::Forbidden => "FieldValueForbidden",
        _ => "FieldValueInvalid",
    }
}

/// upstream's `GroupVersionKind.String()`: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (g, v) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    format!("{g}/{v}, Kind={kind}")
}

/// The 409 an apply answers with on conflicts: one cause per conflicting field.
fn conflict_error(conflicts: &[managers::Conflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager.describe()), "field": fieldset::path_string(&c.path)}))
        .collect();
    ApiError { code: 409, reason: "Conflict", message: managers::conflict_message(conflicts), details: Some(json!({"causes": causes})) }
}

/// A failure upstream reports as a plain error: 500 without a reason.
fn internal(msg: String) -> ApiError {
    ApiError::new(500, "", msg)
}

/// What an apply needs besides the live object.
struct ApplyReq<'a> {
    inf: &'a ResourceInfo,
    tr: typed::TypeRef<'a>,
    config: &'a Value,
    manager: &'a str,
    force: bool,
    subresource: &'a str,
    ns: &'a str,
    name: &'a str,
}

/// Applies the configuration to `live` (None: the object does not exist yet) and returns the
/// object to store, managedFields included (upstream FieldManager.Apply and its managers).
fn apply_to(live: Option<&Value>, r: &ApplyReq) -> ApiResult<Value> {
    let inf = r.inf;
    let api_version = inf.api_version();
    let cfg = r.config;
    let (cav, ckind) = (cfg["apiVersion"].as_str().unwrap_or(""), cfg["kind"].as_str().unwrap_or(""));
    if cav != api_version || ckind != inf.kind {
        return Err(ApiError::bad_request(format!("invalid object type: {}", gvk_string(cav, ckind))));
    }
    if !cfg["metadata"]["managedFields"].is_null() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let tr = r.tr;
    let mut errs = Vec::new();
    typed::validate(cfg, tr, &mut Vec::new(), &mut errs);
    if !errs.is_empty() {
        let ns = if cfg["metadata"]["namespace"].is_string() { meta::namespace(cfg) } else { "" };
        return Err(internal(format!(
            "failed to create typed patch object ({ns}/{}; {}): {}",
            meta::name(cfg),
            gvk_string(cav, ckind),
            errs.join("\n")
        )));
    }
    let mut managed = match live.and_then(managers::entries) {
        Some(e) => Managed::decode(e).map_err(|e| internal(format!("failed to decode managed fields: {e}")))?,
        None => Managed::default(),
    };
    let base = match live {
        Some(l) => without_managed_fields(l),
        None => json!({}),
    };
    let ignored = reset_fields(inf, tr, r.subresource);
    let now = meta::now_rfc3339();
    let ctx = Ctx { tr, api_version: &api_version, ignored: &ignored, now: &now };
    // Nothing tracked yet: what is there belongs to "before-first-apply".
    if managed.fields.is_empty() && live.is_some() {
        let id = ManagerId::new(BEFORE_FIRST_APPLY, Operation::Update, &api_version, r.subresource);
        let empty = zero::zero_object(&api_version, &inf.kind);
        managers::update(&mut managed, &empty, &base, &id, &ctx);
    }
    let id = ManagerId::new(r.manager, Operation::Apply, &api_version, r.subresource);
    let mut attempt = managed.clone();
    let outcome = match managers::apply(&mut attempt, &base, cfg, &id, r.force, &ctx) {
        Err(ApplyError::Conflicts(c)) if r.manager == "kubectl" => {
            // Conflicts on what client-side apply set are kubectl's own: take them over.
            match lastapplied::allowed_conflicts(&base, &api_version, tr) {
                Some(allowed) => {
                    let left: Vec<_> = c.iter().filter(|x| !allowed.has(&x.path)).cloned().collect();
                    if left.is_empty() {
                        attempt = managed.clone();
                        managers::apply(&mut attempt, &base, cfg, &id, true, &ctx)
                    } else {
                        Err(ApplyError::Conflicts(left))
                    }
                }
                None => Err(ApplyError::Conflicts(c)),
            }
        }
        other => other,
    };
    let mut result = match outcome {
        Ok(Applied::Changed(v)) => v,
        Ok(Applied::Unchanged) => base.clone(),
        Err(ApplyError::Conflicts(c)) => return Err(conflict_error(&c)),
        Err(ApplyError::Other(e)) => return Err(internal(e)),
    };
    if r.manager == "kubectl" {
        lastapplied::sync(&mut result, cfg);
    }
    set_managed_fields(&mut result, &attempt);
    // What the patch handler checks on the result (upstream patcher.applyPatch).
    if live.is_none() && !meta::uid(&result).is_empty() {
        return Err(ApiError::conflict(
            &inf.group,
            &inf.plural,
            r.name,
            &format!("uid mismatch: the provided object specified uid {}, and no existing object was found", meta::uid(&result)),
        ));
    }
    if inf.namespaced {
        match meta::namespace(&result) {
            "" => {
                meta::metadata_mut(&mut result).insert("namespace".into(), json!(r.ns));
            }
            n if n != r.ns => {
                return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"))
            }
            _ => {}
        }
    } else {
        meta::metadata_mut(&mut result).remove("namespace");
    }
    if meta::name(&result) != r.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            meta::name(&result),
            r.name
        )));
    }
    Ok(result)
}

/// Decodes an apply request body (YAML or JSON) into an object; CBOR is not served (415).
fn decode_config(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.split(';').next().unwrap_or("").trim() == "application/apply-patch+cbor" {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
        ));
    }
    let config: Value = serde_yaml_ng::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    match config {
        Value::Object(_) => Ok(config),
        Value::Null => Ok(json!({})),
        other => Err(ApiError::bad_request(format!("error decoding YAML: cannot unmarshal {other} into an object"))),
    }
}

/// Runs an apply inside the store's read-modify-write. Returns the stored object and whether it
/// was created (only the main resource creates; subresources answer 404).
#[allow(clippy::too_many_arguments)]
async fn run_apply(
    store: &Store,
    s: &dyn Strategy,
    ns: &str,
    name: &str,
    part: Part,
    wo: &WriteOpts,
    config: &Value,
    subresource: &str,
    force: bool,
) -> ApiResult<(Value, bool)> {
    let inf = s.info();
    let manager = wo.field_manager.clone().unwrap_or_default();
    let req = ApplyReq { inf, tr: s.apply_type(), config, manager: &manager, force, subresource, ns, name };
    let mut wo = wo.clone();
    wo.managed_by_caller = true;
    let mut created = false;
    let res = store
        .guaranteed_update(s, ns, name, part, &wo, false, |cur| {
            if cur.is_none() && (part != Part::Main || !subresource.is_empty()) {
                return Err(ApiError::not_found(&inf.group, &inf.plural, name));
            }
            created = cur.is_none();
            let out = apply_to(cur, &req)?;
            if let Some(cur) = cur {
                let rv = meta::resource_version(&out);
                if !rv.is_empty() && rv != meta::resource_version(cur) {
                    return Err(ApiError::stale(&inf.group, &inf.plural, name));
                }
            }
            Ok(out)
        })
        .await?;
    Ok((res, created))
}

/// PATCH with `application/apply-patch+yaml`: applies the configuration in `body` for the
/// field manager of `wo`, creating the object when it does not exist (the main resource only).
/// Returns the stored object and whether it was created.
#[allow(clippy::too_many_arguments)]
pub async fn apply_patch(
    store: &Store,
    s: &dyn Strategy,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    part: Part,
    wo: &WriteOpts,
    force: bool,
) -> ApiResult<(Value, bool)> {
    let config = decode_config(headers, body)?;
    let subresource = if part == Part::Status { "status" } else { "" };
    run_apply(store, s, ns, name, part, wo, &config, subresource, force).await
}

/// The parent configuration an applied `autoscaling/v1` Scale stands for: its `spec.replicas`
/// at the parent's `spec.replicas`, as upstream's ScaleHandler maps the managed fields.
fn scale_to_parent(scale: &Value, inf: &ResourceInfo, replicas_path: &[String]) -> ApiResult<Value> {
    let (av, kind) = (scale["apiVersion"].as_str().unwrap_or(""), scale["kind"].as_str().unwrap_or(""));
    if av != "autoscaling/v1" || kind != "Scale" {
        return Err(ApiError::bad_request(format!("invalid object type: {}", gvk_string(av, kind))));
    }
    if !scale["metadata"]["managedFields"].is_null() {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    let mut errs = Vec::new();
    typed::validate(scale, typed::for_kind(av, kind), &mut Vec::new(), &mut errs);
    if !errs.is_empty() {
        return Err(internal(format!("failed to create typed patch object (/{}; {}): {}", meta::name(scale), gvk_string(av, kind), errs.join("\n"))));
    }
    let mut md = json!({"name": scale["metadata"]["name"]});
    if let Some(ns) = scale["metadata"]["namespace"].as_str() {
        md["namespace"] = json!(ns);
    }
    let mut parent = json!({"apiVersion": inf.api_version(), "kind": inf.kind, "metadata": md});
    if let Some(r) = scale["spec"].get("replicas") {
        let mut v = &mut parent;
        for k in replicas_path {
            v = &mut v[k.as_str()];
        }
        *v = r.clone();
    }
    Ok(parent)
}

/// PATCH of `/scale` with an applied Scale: applied to the parent's `spec.replicas` and recorded
/// with subresource `scale`. Returns the parent as stored.
#[allow(clippy::too_many_arguments)]
pub async fn apply_scale(
    store: &Store,
    s: &dyn Strategy,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    wo: &WriteOpts,
    force: bool,
) -> ApiResult<Value> {
    let path = s.scale_mapping().map(|m| m.spec_replicas_path()).unwrap_or_default();
    let parent = scale_to_parent(&decode_config(headers, body)?, s.info(), &path)?;
    Ok(run_apply(store, s, ns, name, Part::Main, wo, &parent, "scale", force).await?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> ResourceInfo {
        crate::registry::Registry::builtin().lookup("apps", "v1", "deployments").unwrap().info().clone()
    }

    fn req<'a>(inf: &'a ResourceInfo, config: &'a Value, manager: &'a str, force: bool) -> ApplyReq<'a> {
        ApplyReq { inf, tr: typed::for_kind("apps/v1", "Deployment"), config, manager, force, subresource: "", ns: "default", name: "web" }
    }

    fn config(replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}})
    }

    fn stored(mut v: Value) -> Value {
        v["metadata"]["uid"] = json!("u1");
        v["metadata"]["resourceVersion"] = json!("5");
        v
    }

    #[test]
    fn apply_creates_then_conflicts_then_forces() {
        let inf = deployments();
        let created = apply_to(None, &req(&inf, &config(2), "mgr1", false)).unwrap();
        assert_eq!(created["metadata"]["namespace"], "default");
        let mf = &created["metadata"]["managedFields"];
        assert_eq!(mf[0]["manager"], "mgr1");
        assert_eq!(mf[0]["operation"], "Apply");
        assert_eq!(mf[0]["apiVersion"], "apps/v1");
        assert_eq!(mf[0]["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
        let live = stored(created);
        // Unchanged re-apply: same object, same managedFields.
        let again = apply_to(Some(&live), &req(&inf, &config(2), "mgr1", false)).unwrap();
        assert_eq!(again, live);
        let e = apply_to(Some(&live), &req(&inf, &config(3), "other", false)).unwrap_err();
        assert_eq!(e.code, 409);
        assert_eq!(e.message, "Apply failed with 1 conflict: conflict with \"mgr1\": .spec.replicas");
        assert_eq!(e.details.as_ref().unwrap()["causes"][0], json!({"reason": "FieldManagerConflict", "message": "conflict with \"mgr1\"", "field": ".spec.replicas"}));
        let forced = apply_to(Some(&live), &req(&inf, &config(3), "other", true)).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let owners: Vec<(&str, bool)> = forced["metadata"]["managedFields"].as_array().unwrap().iter()
            .map(|e| (e["manager"].as_str().unwrap(), e["fieldsV1"]["f:spec"].get("f:replicas").is_some())).collect();
        assert!(owners.contains(&("other", true)) && owners.contains(&("mgr1", false)), "{owners:?}");
    }

    #[test]
    fn apply_rejects_mismatched_bodies() {
        let inf = deployments();
        let mut c = config(1);
        c["kind"] = json!("StatefulSet");
        assert_eq!(apply_to(None, &req(&inf, &c, "m", false)).unwrap_err().message, "invalid object type: apps/v1, Kind=StatefulSet");
        let mut c = config(1);
        c["metadata"]["name"] = json!("other");
        assert_eq!(apply_to(None, &req(&inf, &c, "m", false)).unwrap_err().message, "the name of the object (other) does not match the name on the URL (web)");
        let mut c = config(1);
        c["metadata"]["managedFields"] = json!([]);
        assert_eq!(apply_to(None, &req(&inf, &c, "m", false)).unwrap_err().message, "metadata.managedFields must be nil");
        let mut c = config(1);
        c["spec"]["bogus"] = json!(1);
        let e = apply_to(None, &req(&inf, &c, "m", false)).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (500, "failed to create typed patch object (/web; apps/v1, Kind=Deployment): .spec.bogus: field not declared in schema"));
        let mut c = config(1);
        c["metadata"]["namespace"] = json!("elsewhere");
        assert_eq!(apply_to(None, &req(&inf, &c, "m", false)).unwrap_err().code, 400);
    }

    #[test]
    fn updates_are_tracked_and_reset() {
        let inf = deployments();
        let mut obj = config(1);
        track_update(&mut obj, None, "kubectl-create", "", &inf);
        let mf = obj["metadata"]["managedFields"].clone();
        assert_eq!(mf[0]["manager"], "kubectl-create");
        assert_eq!(mf[0]["operation"], "Update");
        // Containers added to the empty object carry "."; spec and template were already there.
        let fv = &mf[0]["fieldsV1"];
        assert!(fv["f:spec"].get(".").is_none());
        assert_eq!(fv["f:spec"]["f:template"]["f:metadata"]["f:labels"]["."], json!({}));
        assert_eq!(fv["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["."], json!({}));
        assert!(fv["f:spec"]["f:template"]["f:spec"]["f:containers"].get(".").is_none());
        assert!(fv["f:metadata"].get("f:name").is_none(), "stripped");
        let live = stored(obj.clone());
        // Scale through the subresource takes replicas over.
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(4);
        track_update(&mut scaled, Some(&live), "kubectl", "scale", &inf);
        let e = scaled["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(e.len(), 2);
        let scale = e.iter().find(|x| x["subresource"] == "scale").unwrap();
        assert_eq!(scale["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        // A single empty entry resets managedFields; the object then stays untracked.
        let mut reset = live.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        reset["spec"]["paused"] = json!(true);
        track_update(&mut reset, Some(&live), "x", "", &inf);
        assert!(reset["metadata"].get("managedFields").is_none());
        // Applying to an untracked object: the rest belongs to before-first-apply.
        let untracked = stored(without_managed_fields(&live));
        let e = apply_to(Some(&untracked), &req(&inf, &config(7), "m", false)).unwrap_err();
        assert!(e.message.contains("conflict with \"before-first-apply\" using apps/v1: .spec.replicas"), "{}", e.message);
    }

    #[test]
    fn patch_options_validation() {
        let q = |s: &str| Query::parse(Some(s)).unwrap();
        let e = patch_options(true, &q("")).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (422, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"));
        let e = patch_options(false, &q("force=true")).unwrap_err();
        assert!(e.message.contains("force: Forbidden: may not be specified for non-apply patch"), "{}", e.message);
        assert!(patch_options(true, &q("fieldManager=m&force=true")).unwrap());
        assert!(!patch_options(false, &q("")).unwrap());
    }
}
