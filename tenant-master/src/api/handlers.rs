//! Resource handlers: GET/LIST/WATCH, POST, PUT, PATCH, DELETE and deletecollection, plus the
//! status, scale, binding, eviction and finalize subresources.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use super::fieldvalidation::{check_body_for, check_patched_for, with_warnings, Directive};
use super::patch::{apply_patch, PatchType};
use super::request::{decode_body, negotiate, Output, Query, Target};
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{ApiError, ApiResult};
use super::table::{self, Include};
use super::ApiState;
use crate::meta;
use crate::registry::store::{DeleteOpts, Deleted, ListOpts, Part, WriteOpts};
use crate::registry::Strategy;

/// A JSON response with a status code.
pub fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (code, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn raw_response(code: StatusCode, body: impl IntoResponse) -> Response {
    (code, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Renders one object as the client asked.
fn render_object(s: &dyn Strategy, obj: &Value, out: Output, q: &Query, code: StatusCode) -> Response {
    match out {
        Output::Json => json_response(code, obj),
        Output::Table(av) => {
            let include = Include::parse(q.get("includeObject"));
            let mut t = table::table(s, &[Arc::new(obj.clone())], include, json!({"resourceVersion": obj["metadata"]["resourceVersion"]}), q.get("noHeaders").is_none());
            t["apiVersion"] = json!(av);
            json_response(code, &t)
        }
        Output::PartialMetadata(av) => {
            let mut p = table::partial_metadata(obj);
            p["apiVersion"] = json!(av);
            json_response(code, &p)
        }
    }
}

fn write_opts(q: &Query) -> ApiResult<WriteOpts> {
    Directive::parse(q.get("fieldValidation"))?;
    let fm = q.get("fieldManager").map(String::from);
    if let Some(m) = &fm {
        if m.len() > 128 {
            return Err(ApiError::invalid("", "", "", &[super::status::FieldError::too_long("fieldManager", 128)]));
        }
    }
    Ok(WriteOpts { dry_run: q.dry_run()?, field_manager: fm, ..Default::default() })
}

/// The field manager: `fieldManager`, else what upstream derives from the User-Agent (the part
/// before the first `/`, printable characters only, at most 128 bytes; "unknown" when empty).
fn default_manager(headers: &HeaderMap, q: &Query) -> Option<String> {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return Some(m.to_string());
    }
    let ua = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut prefix = String::new();
    for c in ua.split('/').next().unwrap_or("").chars().filter(|c| !c.is_control()) {
        if prefix.len() + c.len_utf8() > 128 {
            break;
        }
        prefix.push(c);
    }
    Some(prefix)
}

fn list_opts(q: &Query) -> ApiResult<ListOpts> {
    let limit = q.int("limit")?.unwrap_or(0);
    Ok(ListOpts {
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?,
        limit: if limit > 0 { limit as usize } else { 0 },
        continue_token: q.get("continue").filter(|c| !c.is_empty()).map(String::from),
        resource_version: q.get("resourceVersion").map(String::from),
        resource_version_match: q.get("resourceVersionMatch").filter(|c| !c.is_empty()).map(String::from),
    })
}

fn delete_opts(q: &Query, body: &[u8]) -> ApiResult<DeleteOpts> {
    let mut o = DeleteOpts {
        grace_period: q.int("gracePeriodSeconds")?,
        propagation: q.get("propagationPolicy").map(String::from),
        dry_run: q.dry_run()?,
        ..Default::default()
    };
    if q.get("orphanDependents") == Some("true") && o.propagation.is_none() {
        o.propagation = Some("Orphan".into());
    }
    if !body.is_empty() {
        let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        if let Some(g) = v["gracePeriodSeconds"].as_i64() {
            o.grace_period = Some(g);
        }
        if let Some(p) = v["propagationPolicy"].as_str() {
            o.propagation = Some(p.into());
        }
        if v["orphanDependents"] == json!(true) && o.propagation.is_none() {
            o.propagation = Some("Orphan".into());
        }
        if let Some(u) = v["preconditions"]["uid"].as_str() {
            o.precondition_uid = Some(u.into());
        }
        if let Some(r) = v["preconditions"]["resourceVersion"].as_str() {
            o.precondition_rv = Some(r.into());
        }
        if let Some(d) = v["dryRun"].as_array() {
            if d.iter().any(|x| x == "All") {
                o.dry_run = true;
            }
        }
    }
    Ok(o)
}

/// Handles one resource request.
pub async fn handle(st: &ApiState, method: &Method, t: &Target, q: &Query, headers: &HeaderMap, body: Bytes) -> Response {
    let resp = match handle_inner(st, method, t, q, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    // Requests to a deprecated version of a custom resource are told so, as upstream does.
    match st.store.registry.lookup(&t.group, &t.version, &t.resource).and_then(|s| s.deprecation_warning()) {
        Some(w) => with_warnings(resp, &[w]),
        None => resp,
    }
}

async fn handle_inner(st: &ApiState, method: &Method, t: &Target, q: &Query, headers: &HeaderMap, body: Bytes) -> ApiResult<Response> {
    let s = st
        .store
        .registry
        .lookup(&t.group, &t.version, &t.resource)
        .ok_or_else(ApiError::not_found_path)?;
    let inf = s.info().clone();
    if !inf.namespaced && !t.namespace.is_empty() {
        return Err(ApiError::not_found_path());
    }
    if !t.subresource.is_empty() && !inf.has_subresource(&t.subresource) {
        return Err(ApiError::not_found_path());
    }
    let out = negotiate(headers)?;
    let ns = t.namespace.as_str();
    let store = &st.store;
    let sd = s.as_ref();
    let watch = t.watch_path || q.flag("watch");

    if t.name.is_empty() {
        return match *method {
            Method::GET if watch => super::watch::serve(st.clone(), s.clone(), ns.to_string(), q.clone(), out).await,
            Method::GET => {
                let lo = list_opts(q)?;
                let page = store.list(sd, ns, &lo).await?;
                Ok(render_list(sd, page, out, q))
            }
            Method::POST => {
                let mut obj = decode_body(headers, &body)?;
                let mut wo = write_opts(q)?;
                wo.field_manager = default_manager(headers, q);
                let warnings = check_body_for(sd, headers, &body, &mut obj, Directive::parse(q.get("fieldValidation"))?)?;
                let created = store.create(sd, ns, obj, &wo).await?;
                Ok(with_warnings(render_object(sd, &created, out, q, StatusCode::CREATED), &warnings))
            }
            Method::DELETE => {
                let lo = list_opts(q)?;
                let d = delete_opts(q, &body)?;
                let items = store.delete_collection(sd, ns, &lo, &d).await?;
                let list = json!({
                    "kind": s.list_kind(),
                    "apiVersion": inf.api_version(),
                    "metadata": {},
                    "items": items,
                });
                Ok(json_response(StatusCode::OK, &list))
            }
            _ => Err(ApiError::method_not_supported(&inf.plural, method.as_str())),
        };
    }

    let name = t.name.as_str();
    match (t.subresource.as_str(), method.clone()) {
        ("", Method::GET) | ("status", Method::GET) => {
            if watch {
                let mut q2 = q.clone();
                q2.0.insert("fieldSelector".into(), format!("metadata.name={name}"));
                return super::watch::serve(st.clone(), s.clone(), ns.to_string(), q2, out).await;
            }
            let obj = match q.get("resourceVersion") {
                Some("0") => store.get_cached(sd, ns, name).ok_or_else(|| ApiError::not_found(&inf.group, &inf.plural, name))?,
                _ => store.get(sd, ns, name).await?,
            };
            if let Output::Json = out {
                // The cached serialized form, as LIST serves it: no re-encoding per GET.
                return Ok(raw_response(StatusCode::OK, s.served_bytes(&obj).unwrap_or_else(|| obj.raw.clone())));
            }
            Ok(render_object(sd, &obj.value(), out, q, StatusCode::OK))
        }
        ("", Method::PUT) | ("status", Method::PUT) | ("finalize", Method::PUT) => {
            let mut obj = decode_body(headers, &body)?;
            let warnings = check_body_for(sd, headers, &body, &mut obj, Directive::parse(q.get("fieldValidation"))?)?;
            let mut wo = write_opts(q)?;
            wo.field_manager = default_manager(headers, q);
            let part = if t.subresource == "status" { Part::Status } else { Part::Main };
            let (res, created) = if t.subresource == "finalize" {
                let fins = obj["spec"]["finalizers"].clone();
                let rv = meta::resource_version(&obj).to_string();
                let v = store
                    .guaranteed_update(sd, ns, name, Part::Finalize, &wo, !rv.is_empty(), |cur| {
                        let cur = cur.ok_or_else(|| ApiError::not_found("", "namespaces", name))?;
                        if !rv.is_empty() && rv != meta::resource_version(cur) {
                            return Err(ApiError::stale("", "namespaces", name));
                        }
                        let mut n = cur.clone();
                        n["spec"]["finalizers"] = if fins.is_null() { json!([]) } else { fins.clone() };
                        Ok(n)
                    })
                    .await?;
                (v, false)
            } else {
                store.update(sd, ns, name, obj, part, &wo).await?
            };
            Ok(with_warnings(render_object(sd, &res, out, q, if created { StatusCode::CREATED } else { StatusCode::OK }), &warnings))
        }
        ("", Method::PATCH) | ("status", Method::PATCH) => {
            let typ = PatchType::from_headers(headers)?;
            let force = super::apply::patch_options(typ == PatchType::Apply, q)?;
            let mut wo = write_opts(q)?;
            wo.field_manager = default_manager(headers, q);
            let part = if t.subresource == "status" { Part::Status } else { Part::Main };
            let (res, created, warnings) = if typ == PatchType::Apply {
                let (r, c) = super::apply::apply_patch(store, sd, ns, name, headers, &body, part, &wo, force).await?;
                (r, c, Vec::new())
            } else {
                let (r, w) = patch(st, sd, ns, name, typ, &body, part, &wo, q).await?;
                (r, false, w)
            };
            Ok(with_warnings(render_object(sd, &res, out, q, if created { StatusCode::CREATED } else { StatusCode::OK }), &warnings))
        }
        ("", Method::DELETE) => {
            let d = delete_opts(q, &body)?;
            match store.delete(sd, ns, name, &d).await? {
                Deleted::Pending(v) => Ok(render_object(sd, &v, Output::Json, q, StatusCode::ACCEPTED)),
                Deleted::Gone(v) => {
                    if s.return_deleted_object() {
                        Ok(render_object(sd, &v, Output::Json, q, StatusCode::OK))
                    } else {
                        let mut details = json!({"name": name, "kind": inf.plural, "uid": meta::uid(&v)});
                        if !inf.group.is_empty() {
                            details["group"] = json!(inf.group);
                        }
                        Ok(json_response(
                            StatusCode::OK,
                            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
                        ))
                    }
                }
            }
        }
        ("scale", m) => scale_handler(st, sd, ns, name, m, headers, &body, q).await,
        ("binding", Method::POST) => {
            let b = decode_body(headers, &body)?;
            super::subresources::bind(st, sd, ns, name, &b, &write_opts(q)?).await
        }
        ("token", Method::POST) => {
            let b = decode_body(headers, &body)?;
            let tr = crate::serviceaccount::token::create(store, ns, name, b).await?;
            Ok(json_response(StatusCode::CREATED, &tr))
        }
        ("eviction", Method::POST) => {
            let b = decode_body(headers, &body)?;
            super::subresources::evict(st, sd, ns, name, &b).await
        }
        _ => Err(ApiError::method_not_supported(&format!("{}/{}", inf.plural, t.subresource), method.as_str())),
    }
}

/// PATCH with retry on conflicts (unless the patch pins a resourceVersion). Returns the
/// patched object and the field validation warnings. Server-side apply goes through
/// [`super::apply::apply_patch`] instead.
#[allow(clippy::too_many_arguments)]
pub async fn patch(
    st: &ApiState,
    s: &dyn Strategy,
    ns: &str,
    name: &str,
    typ: PatchType,
    body: &[u8],
    part: Part,
    wo: &WriteOpts,
    q: &Query,
) -> ApiResult<(Value, Vec<String>)> {
    let inf = s.info();
    let builtin = s.strategic_merge();
    let directive = Directive::parse(q.get("fieldValidation"))?;
    let mut warnings = Vec::new();
    let mut pinned = false;
    let res = st
        .store
        .guaranteed_update(s, ns, name, part, wo, false, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(&inf.group, &inf.plural, name))?;
            let mut patched = apply_patch(typ, cur, body, builtin)?;
            let dup_source = if typ == PatchType::Json { None } else { Some(body) };
            warnings = check_patched_for(s, dup_source, &mut patched, directive)?;
            let prv = meta::resource_version(&patched);
            if !prv.is_empty() && prv != meta::resource_version(cur) {
                pinned = true;
                return Err(ApiError::stale(&inf.group, &inf.plural, name));
            }
            if meta::name(&patched) != name {
                return Err(ApiError::bad_request(format!("the name of the object ({}) does not match the name on the URL ({name})", meta::name(&patched))));
            }
            Ok(patched)
        })
        .await;
    let _ = pinned;
    res.map(|v| (v, warnings))
}

#[allow(clippy::too_many_arguments)]
async fn scale_handler(
    st: &ApiState,
    s: &dyn Strategy,
    ns: &str,
    name: &str,
    m: Method,
    headers: &HeaderMap,
    body: &[u8],
    q: &Query,
) -> ApiResult<Response> {
    let paths = s.scale_mapping().ok_or_else(ApiError::not_found_path)?;
    let inf = s.info();
    let store = &st.store;
    match m {
        Method::GET => {
            let o = store.get(s, ns, name).await?;
            Ok(json_response(StatusCode::OK, &paths.to_scale(&o.value())))
        }
        Method::PUT | Method::PATCH => {
            let mut wo = write_opts(q)?;
            wo.field_manager = default_manager(headers, q);
            wo.subresource = "scale";
            let typ = if m == Method::PATCH { Some(PatchType::from_headers(headers)?) } else { None };
            if let Some(t) = typ {
                let force = super::apply::patch_options(t == PatchType::Apply, q)?;
                if t == PatchType::Apply {
                    let res = super::apply::apply_scale(store, s, ns, name, headers, body, &wo, force).await?;
                    return Ok(json_response(StatusCode::OK, &paths.to_scale(&res)));
                }
            }
            let put_body = if typ.is_none() { Some(decode_body(headers, body)?) } else { None };
            let res = store
                .guaranteed_update(s, ns, name, Part::Main, &wo, false, |cur| {
                    let cur = cur.ok_or_else(|| ApiError::not_found(&inf.group, &inf.plural, name))?;
                    let current_scale = paths.to_scale(cur);
                    let new_scale = match (&typ, &put_body) {
                        (Some(t), _) => apply_patch(*t, &current_scale, body, true)?,
                        (None, Some(b)) => b.clone(),
                        _ => unreachable!(),
                    };
                    let rv = meta::resource_version(&new_scale);
                    if !rv.is_empty() && rv != meta::resource_version(cur) {
                        return Err(ApiError::stale(&inf.group, &inf.plural, name));
                    }
                    let replicas = new_scale["spec"]["replicas"].as_i64().unwrap_or(0);
                    if replicas < 0 {
                        return Err(ApiError::invalid("autoscaling", "Scale", name, &[super::status::FieldError::invalid("spec.replicas", replicas, "must be greater than or equal to 0")]));
                    }
                    let mut n = cur.clone();
                    paths.set_replicas(&mut n, replicas);
                    Ok(n)
                })
                .await?;
            Ok(json_response(StatusCode::OK, &paths.to_scale(&res)))
        }
        _ => Err(ApiError::method_not_supported(&format!("{}/scale", inf.plural), m.as_str())),
    }
}

/// Renders a LIST page: a `<Kind>List`, a Table or a PartialObjectMetadataList.
fn render_list(s: &dyn Strategy, page: crate::registry::store::ListPage, out: Output, q: &Query) -> Response {
    let inf = s.info();
    let mut list_meta = json!({"resourceVersion": page.resource_version.to_string()});
    if let Some(c) = &page.continue_token {
        list_meta["continue"] = json!(c);
    }
    if let Some(r) = page.remaining {
        list_meta["remainingItemCount"] = json!(r);
    }
    match out {
        Output::Json => {
            // Items are concatenated from their cached serialized form: no re-encoding.
            let head = json!({"kind": s.list_kind(), "apiVersion": inf.api_version(), "metadata": list_meta});
            let mut buf = serde_json::to_vec(&head).unwrap_or_default();
            buf.pop();
            buf.extend_from_slice(b",\"items\":[");
            for (i, it) in page.items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                match s.served_bytes(it) {
                    Some(b) => buf.extend_from_slice(&b),
                    None => buf.extend_from_slice(&it.raw),
                }
            }
            buf.extend_from_slice(b"]}");
            raw_response(StatusCode::OK, buf)
        }
        Output::Table(av) => {
            let include = Include::parse(q.get("includeObject"));
            let objs: Vec<Arc<Value>> = page.items.iter().map(|i| i.value()).collect();
            let mut t = table::table(s, &objs, include, list_meta, true);
            t["apiVersion"] = json!(av);
            json_response(StatusCode::OK, &t)
        }
        Output::PartialMetadata(av) => {
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|i| {
                    let v = i.value();
                    let mut p = table::partial_metadata(&v);
                    p["apiVersion"] = json!(av);
                    p
                })
                .collect();
            json_response(StatusCode::OK, &json!({"kind": "PartialObjectMetadataList", "apiVersion": av, "metadata": list_meta, "items": items}))
        }
    }
}
