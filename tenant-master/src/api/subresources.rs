//! pods/binding and pods/eviction.

use axum::response::Response;
use http::StatusCode;
use serde_json::{json, Value};

use super::handlers::json_response;
use super::selectors::LabelSelector;
use super::status::{ApiError, ApiResult};
use super::ApiState;
use crate::registry::store::{DeleteOpts, ListOpts, Part, WriteOpts};
use crate::registry::Strategy;

fn success(code: StatusCode) -> Response {
    json_response(code, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code.as_u16()}))
}

/// Binds a pending pod to a node (what a scheduler does).
pub async fn bind(st: &ApiState, s: &dyn Strategy, ns: &str, name: &str, b: &Value, wo: &WriteOpts) -> ApiResult<Response> {
    let node = b["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiError::invalid("", "Binding", name, &[super::status::FieldError::required("target.name", "")]));
    }
    let now = crate::meta::now_rfc3339();
    let bind_opts = WriteOpts { skip_update_validation: true, ..wo.clone() };
    st.store
        .guaranteed_update(s, ns, name, Part::Main, &bind_opts, false, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found("", "pods", name))?;
            if crate::meta::is_deleting(cur) {
                return Err(ApiError::conflict("", "pods", name, "pod is being deleted, cannot be assigned to a host"));
            }
            if let Some(n) = cur["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                return Err(ApiError::conflict("", "pods", name, &format!("pod {name} is already assigned to node \"{n}\"")));
            }
            let mut p = cur.clone();
            p["spec"]["nodeName"] = json!(node);
            Ok(p)
        })
        .await
        .map_err(|e| e)?;
    // The PodScheduled condition goes through the status half of the object.
    st.store
        .guaranteed_update(s, ns, name, Part::Status, wo, false, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found("", "pods", name))?;
            let mut p = cur.clone();
            let mut conds: Vec<Value> = p["status"]["conditions"].as_array().cloned().unwrap_or_default();
            conds.retain(|c| c["type"] != "PodScheduled");
            conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            p["status"]["conditions"] = json!(conds);
            Ok(p)
        })
        .await?;
    Ok(success(StatusCode::CREATED))
}

/// Evicts a pod unless a PodDisruptionBudget forbids it.
pub async fn evict(st: &ApiState, s: &dyn Strategy, ns: &str, name: &str, b: &Value) -> ApiResult<Response> {
    let pod = st.store.get(s, ns, name).await?.value();
    if let Some(pdbs) = st.store.registry.lookup("policy", "v1", "poddisruptionbudgets") {
        let page = st.store.list(pdbs.as_ref(), ns, &ListOpts::default()).await?;
        for pdb in page.items {
            let v = pdb.value();
            let Some(sel) = LabelSelector::from_object(&v["spec"]["selector"]) else { continue };
            if sel.is_empty() || !sel.matches_json(&pod["metadata"]["labels"]) {
                continue;
            }
            let phase = pod["status"]["phase"].as_str().unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" || phase == "Pending" {
                continue;
            }
            if v["status"]["disruptionsAllowed"].as_i64().unwrap_or(0) <= 0 {
                let mut e = ApiError::new(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.");
                e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": format!("The disruption budget {} needs {} healthy pods and has {} currently", crate::meta::name(&v), v["status"]["desiredHealthy"].as_i64().unwrap_or(0), v["status"]["currentHealthy"].as_i64().unwrap_or(0))}]}));
                return Err(e);
            }
        }
    }
    let mut d = DeleteOpts::default();
    if let Some(g) = b["deleteOptions"]["gracePeriodSeconds"].as_i64() {
        d.grace_period = Some(g);
    }
    if let Some(u) = b["deleteOptions"]["preconditions"]["uid"].as_str() {
        d.precondition_uid = Some(u.into());
    }
    st.store.delete(s, ns, name, &d).await?;
    Ok(success(StatusCode::CREATED))
}
