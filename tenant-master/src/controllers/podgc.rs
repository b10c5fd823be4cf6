//! The pod garbage collector, after upstream's podgc controller:
//!
//! - terminated pods (phase neither Pending, Running nor Unknown) beyond
//!   `--terminated-pod-gc-threshold` are deleted, evicted ones first, then oldest first;
//! - terminating pods on a node that is not ready and tainted `node.kubernetes.io/out-of-service`
//!   are force-deleted;
//! - pods bound to a node that no longer exists are force-deleted once the node has been
//!   missing for the quarantine (40 s), marked Failed with the `DisruptionTarget` condition
//!   (`DeletionByPodGC`) first, as upstream 1.33;
//! - terminating pods that were never scheduled (no nodeName) are force-deleted.
//!
//! Upstream runs all of this every 20 s. Here a pass runs when a pod or node change could make
//! one of these cases true, and again only when a quarantine deadline is pending, so an idle
//! tenant never wakes up.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::podutil;
use super::runtime::ctx::{NODES, PODS};
use super::runtime::{Action, Change, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::{DeleteOpts, Part};

/// When each missing node (by name) was first seen referenced by a pod.
type Quarantine = Arc<Mutex<HashMap<String, Instant>>>;

/// Runs until the process ends. One key: every pass looks at all pods.
pub async fn run(ctx: Ctx) {
    let quarantine: Quarantine = Arc::default();
    let c = ctx.clone();
    Controller::new("podgc", ctx)
        .workers(1)
        .watches(PODS, move |ch| if pod_needs_gc(&c, ch) { vec![ObjKey::new("", "")] } else { vec![] })
        .watches(NODES, |ch| if node_changed(ch) { vec![ObjKey::new("", "")] } else { vec![] })
        .run(move |ctx, _| {
            let q = quarantine.clone();
            async move { gc(&ctx, &q).await }
        })
        .await
}

/// `isPodTerminated`.
fn is_terminated(pod: &Value) -> bool {
    !matches!(podutil::phase(pod), "Pending" | "Running" | "Unknown")
}

fn node_name(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

fn node_ready(node: &Value) -> bool {
    node["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn out_of_service(node: &Value) -> bool {
    !node_ready(node) && node["spec"]["taints"].as_array().into_iter().flatten().any(|t| t["key"] == "node.kubernetes.io/out-of-service")
}

/// Whether a pod change may give the collector work.
fn pod_needs_gc(ctx: &Ctx, ch: &Change) -> bool {
    let Some(o) = ch.object else { return false };
    let pod = o.value();
    let deleting = meta::is_deleting(&pod);
    let node = node_name(&pod);
    if ctx.settings.terminated_pod_gc_threshold > 0 && is_terminated(&pod) && ch.prev.map(|p| !is_terminated(&p.value())).unwrap_or(true) {
        return true;
    }
    if deleting && node.is_empty() {
        return true;
    }
    if node.is_empty() {
        return false;
    }
    match ctx.get(NODES, "", node) {
        None => !(deleting && podutil::is_terminal(&pod)),
        Some(n) => deleting && out_of_service(&n),
    }
}

/// Node deletions (orphans), additions (end of a quarantine) and readiness or taint changes
/// (out-of-service).
fn node_changed(ch: &Change) -> bool {
    match (ch.object, ch.prev) {
        (Some(o), Some(p)) => {
            let (v, pv) = (o.value(), p.value());
            v["spec"]["taints"] != pv["spec"]["taints"] || node_ready(&v) != node_ready(&pv)
        }
        _ => true,
    }
}

/// One pass of every collection; requeues when a quarantine ends.
async fn gc(ctx: &Ctx, quarantine: &Quarantine) -> Result<Action, ApiError> {
    let pods: Vec<Arc<Value>> = ctx.list(PODS, "").iter().map(|o| o.value()).collect();
    let nodes: HashMap<String, Arc<Value>> = ctx.list(NODES, "").iter().map(|o| (o.name.clone(), o.value())).collect();
    let mut doomed: Vec<(Arc<Value>, Option<Value>)> = Vec::new();

    // Terminated pods beyond the threshold, evicted first, then oldest.
    let threshold = ctx.settings.terminated_pod_gc_threshold;
    if threshold > 0 {
        let mut done: Vec<&Arc<Value>> = pods.iter().filter(|p| is_terminated(p)).collect();
        if done.len() > threshold {
            let n = done.len() - threshold;
            done.sort_by_key(|p| (!is_evicted(p), p["metadata"]["creationTimestamp"].as_str().and_then(meta::parse_time), meta::name(p).to_string()));
            doomed.extend(done.into_iter().take(n).map(|p| (p.clone(), None)));
        }
    }
    // Terminating pods on out-of-service nodes.
    for p in pods.iter().filter(|p| meta::is_deleting(p)) {
        if nodes.get(node_name(p)).map(|n| out_of_service(n)).unwrap_or(false) {
            doomed.push((p.clone(), None));
        }
    }
    // Pods on nodes gone for longer than the quarantine.
    let (orphans, next) = orphans(ctx, quarantine, &pods, &nodes);
    let cond = json!({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists"});
    doomed.extend(orphans.into_iter().map(|p| (p, Some(cond.clone()))));
    // Terminating pods that were never scheduled.
    for p in pods.iter().filter(|p| meta::is_deleting(p) && node_name(p).is_empty()) {
        doomed.push((p.clone(), None));
    }

    let mut seen = HashSet::new();
    doomed.retain(|(p, _)| seen.insert(meta::uid(p).to_string()));
    let results: Vec<Result<(), ApiError>> =
        stream::iter(doomed).map(|(p, c)| async move { mark_failed_and_delete(ctx, &p, c).await }).buffer_unordered(16).collect().await;
    if let Some(e) = results.into_iter().find_map(|r| r.err()) {
        return Err(e);
    }
    Ok(match next {
        Some(d) => Action::RequeueAfter(d),
        None => Action::Done,
    })
}

/// `eviction.PodIsEvicted`.
fn is_evicted(pod: &Value) -> bool {
    podutil::phase(pod) == "Failed" && pod["status"]["reason"] == "Evicted"
}

/// Pods whose node has been missing for the quarantine, and how long until the next
/// quarantine ends.
fn orphans(ctx: &Ctx, quarantine: &Quarantine, pods: &[Arc<Value>], nodes: &HashMap<String, Arc<Value>>) -> (Vec<Arc<Value>>, Option<Duration>) {
    let now = Instant::now();
    let wait = ctx.settings.pod_gc_quarantine;
    let mut q = quarantine.lock();
    // Pods already failed and being deleted (kept by finalizers) need nothing more.
    let pending = |p: &Value| !(meta::is_deleting(p) && podutil::is_terminal(p));
    let missing: HashSet<&str> =
        pods.iter().filter(|p| pending(p)).map(|p| node_name(p)).filter(|n| !n.is_empty() && !nodes.contains_key(*n)).collect();
    q.retain(|n, _| missing.contains(n.as_str()));
    let mut gone = HashSet::new();
    let mut next: Option<Duration> = None;
    for n in missing {
        let since = *q.entry(n.to_string()).or_insert(now);
        let elapsed = now.duration_since(since);
        if elapsed >= wait {
            // The cache is as fresh as storage here (the runtime waited for it), so the
            // node is truly gone, which upstream confirms with a GET.
            gone.insert(n.to_string());
        } else {
            let left = wait - elapsed;
            next = Some(next.map_or(left, |x| x.min(left)));
        }
    }
    q.retain(|n, _| !gone.contains(n));
    let out = pods.iter().filter(|p| pending(p) && gone.contains(node_name(p))).cloned().collect();
    (out, next)
}

/// Marks a pod Failed (with `cond`, if given) unless it already finished, then deletes it with
/// no grace period.
async fn mark_failed_and_delete(ctx: &Ctx, pod: &Value, cond: Option<Value>) -> Result<(), ApiError> {
    let (ns, name, uid) = (meta::namespace(pod), meta::name(pod), meta::uid(pod).to_string());
    tracing::info!(namespace = ns, pod = name, "PodGC is force deleting Pod");
    if !podutil::is_terminal(pod) {
        let res = ctx
            .modify(PODS, ns, name, Part::Status, |cur| {
                if meta::uid(cur) != uid {
                    return Err(ApiError::conflict("", "pods", name, "the pod was replaced"));
                }
                if podutil::is_terminal(cur) {
                    return Ok(());
                }
                cur["status"]["phase"] = json!("Failed");
                if let Some(c) = &cond {
                    let mut c = c.clone();
                    c["lastProbeTime"] = Value::Null;
                    c["lastTransitionTime"] = json!(meta::now_rfc3339());
                    podutil::set_condition(&mut cur["status"], c);
                }
                Ok(())
            })
            .await;
        match res {
            Ok(_) => {}
            Err(e) if e.code == 404 || e.code == 409 => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    let opts = DeleteOpts { grace_period: Some(0), precondition_uid: Some(uid), ..Default::default() };
    match ctx.delete(PODS, ns, name, &opts).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
