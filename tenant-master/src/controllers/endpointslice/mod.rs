//! The endpointslice controller, after upstream's: EndpointSlices (`discovery.k8s.io/v1`) for
//! every Service with a selector (not ExternalName), planned by [`reconciler`] and written
//! through the API: generateName `<service>-`, labels `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io` plus the service's,
//! an owner reference to the Service (the garbage collector deletes them with it), at most
//! [`reconciler::MAX_ENDPOINTS_PER_SLICE`] endpoints each, with ready/serving/terminating
//! conditions, nodeName, zone (the node's `topology.kubernetes.io/zone`) and targetRef.
//!
//! It syncs a service when the service changes, when a pod change matters to it, and when one
//! of its slices is changed or deleted by someone else (its own writes come back as no-ops).
//! Upstream's EndpointSlice tracker (against stale informers) is not needed: the runtime
//! reads a cache that already holds this server's writes.

pub mod reconciler;
pub mod util;

use std::sync::Arc;

use serde_json::Value;

use super::runtime::ctx::{ENDPOINTSLICES, NODES, PODS, SERVICES};
use super::runtime::{Action, Change, Controller, Ctx, ObjKey};
use crate::api::selectors::LabelSelector;
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::DeleteOpts;
use reconciler::{Input, CONTROLLER_NAME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, MAX_ENDPOINTS_PER_SLICE};
use util::{TriggerTimeTracker, LAST_CHANGE_TRIGGER_TIME};

/// Runs until the process ends. Keys are services.
pub async fn run(ctx: Ctx) {
    let tracker = Arc::new(TriggerTimeTracker::default());
    let c = ctx.clone();
    Controller::new("endpointslice", ctx)
        .watches(SERVICES, |ch| vec![ch.key()])
        .watches(PODS, move |ch| util::services_for_pod_change(&c, ch))
        .watches(ENDPOINTSLICES, slice_owner)
        .run(move |ctx, key| {
            let t = tracker.clone();
            async move { reconcile(&ctx, &key, &t).await }
        })
        .await
}

/// The services of a changed slice this controller manages (before and after, should its
/// labels have moved).
fn slice_owner(ch: &Change) -> Vec<ObjKey> {
    let mut keys = Vec::new();
    for o in [ch.object, ch.prev].into_iter().flatten() {
        if o.labels.get(LABEL_MANAGED_BY).map(|m| m == CONTROLLER_NAME).unwrap_or(false) {
            if let Some(svc) = o.labels.get(LABEL_SERVICE_NAME) {
                let k = ObjKey::new(o.namespace.clone(), svc.clone());
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
    }
    keys
}

/// Writes empty lists as null, as they read back from a real API server (protobuf storage).
pub(crate) fn as_stored(mut s: Value) -> Value {
    for f in ["endpoints", "ports"] {
        if s[f].as_array().map(|a| a.is_empty()).unwrap_or(false) {
            s[f] = Value::Null;
        }
    }
    s
}

fn with_trigger_time(mut s: Value, trigger: &Option<String>) -> Value {
    let md = meta::metadata_mut(&mut s);
    let ann = md.entry("annotations").or_insert_with(|| serde_json::json!({}));
    if !ann.is_object() {
        *ann = serde_json::json!({});
    }
    let ann = ann.as_object_mut().expect("object");
    match trigger {
        Some(t) => ann.insert(LAST_CHANGE_TRIGGER_TIME.into(), serde_json::json!(t)),
        None => ann.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    if ann.is_empty() {
        md.remove("annotations");
    }
    as_stored(s)
}

async fn reconcile(ctx: &Ctx, key: &ObjKey, tracker: &TriggerTimeTracker) -> Result<Action, ApiError> {
    let (ns, name) = (key.namespace.as_str(), key.name.as_str());
    let Some(svc) = ctx.get(SERVICES, ns, name) else {
        // The garbage collector deletes the slices through their owner reference.
        tracker.delete(ns, name);
        return Ok(Action::Done);
    };
    let Some(sel) = util::managed_selector(&svc) else { return Ok(Action::Done) };
    let pods: Vec<Arc<Value>> = ctx.list_selected(PODS, ns, &sel).iter().map(|o| o.value()).collect();
    let slice_sel = LabelSelector::parse(&format!("{LABEL_SERVICE_NAME}={name},{LABEL_MANAGED_BY}={CONTROLLER_NAME}"))?;
    let existing: Vec<Value> =
        ctx.list_selected(ENDPOINTSLICES, ns, &slice_sel).iter().map(|o| (*o.value()).clone()).filter(|s| !meta::is_deleting(s)).collect();
    let trigger = tracker.compute(&svc, &pods).map(util::format_trigger_time);
    let zone = |node: &str| -> Option<Option<String>> {
        let n = ctx.get(NODES, "", node)?;
        Some(n["metadata"]["labels"]["topology.kubernetes.io/zone"].as_str().map(String::from))
    };
    let plan = reconciler::reconcile(Input { service: &svc, pods: &pods, existing, node_zone: &zone, max_per_slice: MAX_ENDPOINTS_PER_SLICE });

    // No new slices for a service being deleted (the garbage collector is removing them).
    if !meta::is_deleting(&svc) {
        for s in plan.create {
            match ctx.create(ENDPOINTSLICES, ns, with_trigger_time(s, &trigger)).await {
                Ok(_) => {}
                Err(e) if super::endpoints::is_namespace_terminating(&e) => return Ok(Action::Done),
                Err(e) => return Err(failed(ctx, &svc, e)),
            }
        }
    }
    for s in plan.update {
        ctx.update(ENDPOINTSLICES, with_trigger_time(s, &trigger)).await.map_err(|e| failed(ctx, &svc, e))?;
    }
    for s in plan.delete {
        ctx.delete(ENDPOINTSLICES, ns, meta::name(&s), &DeleteOpts::default()).await.map_err(|e| failed(ctx, &svc, e))?;
    }
    if !plan.missing_nodes.is_empty() {
        return Err(ApiError::internal(format!("skipping pods of service {ns}/{name}: node(s) {} not found", plan.missing_nodes.join(","))));
    }
    Ok(Action::Done)
}

/// Records upstream's warning event on the service for a failed write.
fn failed(ctx: &Ctx, svc: &Value, e: ApiError) -> ApiError {
    if e.code != 409 {
        let (ns, name) = (meta::namespace(svc), meta::name(svc));
        ctx.event(svc, "Warning", "FailedToUpdateEndpointSlices", format!("Error updating Endpoint Slices for Service {ns}/{name}: {}", e.message));
    }
    e
}
