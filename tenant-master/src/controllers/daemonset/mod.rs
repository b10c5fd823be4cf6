//! The DaemonSet controller (kube-controller-manager's `daemonset`): one pod per node the set
//! may run on (node selector, required node affinity, taints against tolerations), updated by
//! revision (RollingUpdate with maxUnavailable/maxSurge, or OnDelete), with ControllerRevision
//! history that `kubectl rollout history/undo/status` use.
//!
//! The controller does not bind pods: like upstream since v1.12, it gives each pod a required
//! node affinity `matchFields metadata.name In [node]` and leaves binding to whoever schedules
//! (the super-scheduler; the stand-in kubelet in tests).
//!
//! Differences from upstream: there are no expectations (the runtime reads its own writes, see
//! docs/controllers.md); daemon pods meant for a node that no longer exists are deleted here at
//! once, bound or not (upstream deletes only unbound ones and leaves the rest to the pod garbage
//! collector, 40 s later).

pub mod nodes;
pub mod predicates;
pub mod revisions;
pub mod rolling;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::history::POD_REVISION_LABEL;
use super::podutil;
use super::runtime::ctx::{CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS};
use super::runtime::{controller_of, owner_keys, Action, Change, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::{DeleteOpts, Part};
use nodes::{Backoff, Event};

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    let (c1, c2) = (ctx.clone(), ctx.clone());
    let backoff = Arc::new(Mutex::new(Backoff::default()));
    Controller::new("daemonset", ctx)
        .watches(DAEMONSETS, |ch| vec![ch.key()])
        .watches(PODS, move |ch| pod_keys(&c1, ch))
        .watches(CONTROLLERREVISIONS, owner_keys("DaemonSet"))
        .watches(NODES, move |ch| node_keys(&c2, ch))
        .run(move |ctx, key| {
            let backoff = backoff.clone();
            async move { reconcile(&ctx, &key, &backoff).await }
        })
        .await
}

fn all_sets(ctx: &Ctx, keep: impl Fn(&Value) -> bool) -> Vec<ObjKey> {
    ctx.list(DAEMONSETS, "").into_iter().filter(|d| keep(&d.value())).map(|d| ObjKey::new(d.namespace.clone(), d.name.clone())).collect()
}

/// The set controlling a changed pod, or for an orphan every set whose selector matches it.
fn pod_keys(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    let mut keys = owner_keys("DaemonSet")(ch);
    let o = ch.latest();
    if ch.object.is_some() && controller_of(&o.value()).is_none() {
        for d in ctx.list(DAEMONSETS, &o.namespace) {
            if podutil::selector(&d.value()).map(|s| s.matches(&o.labels)).unwrap_or(false) {
                keys.push(ObjKey::new(d.namespace.clone(), d.name.clone()));
            }
        }
    }
    keys
}

/// The sets a node change concerns: for a new node those that should run there, for a changed
/// one those whose verdict changed (only labels and taints matter), for a removed one those
/// that had a pod there.
fn node_keys(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    match (ch.object, ch.prev) {
        (Some(n), None) => {
            let n = n.value();
            all_sets(ctx, |d| predicates::should_run(&n, d).0)
        }
        (Some(n), Some(p)) => {
            let (n, p) = (n.value(), p.value());
            if n["metadata"]["labels"] == p["metadata"]["labels"] && n["spec"]["taints"] == p["spec"]["taints"] {
                return Vec::new();
            }
            all_sets(ctx, |d| predicates::should_run(&n, d) != predicates::should_run(&p, d))
        }
        (None, Some(p)) => {
            let p = p.value();
            all_sets(ctx, |d| predicates::should_run(&p, d) != (false, false))
        }
        (None, None) => Vec::new(),
    }
}

fn record(ctx: &Ctx, ds: &Value, events: Vec<Event>) {
    for e in events {
        ctx.event(ds, e.typ, e.reason, e.message);
    }
}

async fn reconcile(ctx: &Ctx, key: &ObjKey, backoff: &Mutex<Backoff>) -> Result<Action, ApiError> {
    let Some(ds) = ctx.get(DAEMONSETS, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let ds = (*ds).clone();
    let Some(sel) = podutil::selector(&ds) else {
        ctx.event(&ds, "Warning", "SelectingAll", "This daemon set is selecting all pods. A non-empty selector is required.");
        return Ok(Action::Done);
    };
    // Its history may be going away with it: no status for a set being deleted.
    if meta::is_deleting(&ds) {
        return Ok(Action::Done);
    }
    let node_list: Vec<Value> = ctx.list(NODES, "").into_iter().map(|n| (*n.value()).clone()).collect();
    let candidates = ctx.list(PODS, &key.namespace).into_iter().map(|o| o.value()).collect();
    let pods = podutil::claim(ctx, PODS, &ds, &sel, candidates).await?;
    let (cur, mut old) = revisions::construct(ctx, &ds, &pods).await?;
    let hash = cur["metadata"]["labels"][POD_REVISION_LABEL].as_str().unwrap_or("").to_string();
    let now = Utc::now();

    // manage: one pod per node that should run one.
    let by_node = nodes::by_node(&pods, false);
    let mut create_on = Vec::new();
    let mut delete = Vec::new();
    let mut requeue: Option<Duration> = None;
    {
        let mut b = backoff.lock();
        b.gc(std::time::Instant::now());
        for n in &node_list {
            let w = nodes::on_node(n, by_node.get(meta::name(n)), &ds, &hash, now, &mut b);
            if w.create {
                create_on.push(meta::name(n).to_string());
            }
            delete.extend(w.delete);
            record(ctx, &ds, w.events);
            if let Some(d) = w.requeue {
                requeue = Some(requeue.map_or(d, |r| r.min(d)));
            }
        }
    }
    for (node, pods) in &by_node {
        if !node_list.iter().any(|n| meta::name(n) == node) {
            delete.extend(pods.iter().filter(|p| !meta::is_deleting(p)).cloned());
        }
    }
    let managed = !create_on.is_empty() || !delete.is_empty();
    let mut res = sync_nodes(ctx, &ds, &delete, &create_on, &hash).await;

    // Roll out once the pods are what manage wants (upstream: once its expectations are met).
    if res.is_ok() && !managed && ds["spec"]["updateStrategy"]["type"] == "RollingUpdate" {
        let r = rolling::plan(&ds, &node_list, &by_node, &hash, now);
        res = sync_nodes(ctx, &ds, &r.delete, &r.create_on, &hash).await;
    }
    if res.is_ok() {
        let all = nodes::by_node(&pods, true).into_values().flatten().collect::<Vec<_>>();
        res = revisions::cleanup(ctx, &ds, &mut old, &all).await;
    }

    // Status, even after a failure.
    let st = nodes::status(&ds, &node_list, &by_node, &hash, now);
    let stored = &ds["status"];
    let generation = ds["metadata"]["generation"].as_i64().unwrap_or(0);
    let same = st.as_object().expect("object").iter().all(|(k, v)| stored[k].as_i64().unwrap_or(0) == v.as_i64().unwrap_or(0))
        && stored["observedGeneration"].as_i64().unwrap_or(0) >= generation;
    if !same {
        let uid = meta::uid(&ds).to_string();
        let written = ctx
            .modify(DAEMONSETS, &key.namespace, &key.name, Part::Status, |cur| {
                if meta::uid(cur) != uid {
                    return Ok(());
                }
                if !cur["status"].is_object() {
                    cur["status"] = json!({});
                }
                cur["status"]["observedGeneration"] = json!(generation);
                for (k, v) in st.as_object().expect("object") {
                    // omitempty fields of DaemonSetStatus are left out when zero.
                    let omit = matches!(k.as_str(), "updatedNumberScheduled" | "numberAvailable" | "numberUnavailable") && v == 0;
                    let m = cur["status"].as_object_mut().expect("object");
                    if omit {
                        m.remove(k);
                    } else {
                        m.insert(k.clone(), v.clone());
                    }
                }
                Ok(())
            })
            .await;
        match written {
            Ok(_) => {}
            Err(e) if e.code == 404 => return Ok(Action::Done),
            Err(e) if res.is_ok() => res = Err(ApiError::internal(format!("error storing status for daemon set {}: {}", key, e.message))),
            Err(e) => {
                tracing::warn!(daemonset = %key, error = %e.message, "could not update status")
            }
        }
    }
    res?;

    // minReadySeconds: look again when the next ready pod becomes available.
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    if let Some(at) =
        pods.iter().filter(|p| podutil::is_ready(p) && !podutil::is_available(p, min_ready, now)).filter_map(|p| podutil::available_at(p, min_ready)).min()
    {
        let d = (at - now).to_std().unwrap_or_default() + Duration::from_millis(10);
        requeue = Some(requeue.map_or(d, |r| r.min(d)));
    }
    Ok(requeue.map(Action::RequeueAfter).unwrap_or(Action::Done))
}

/// Deletes pods and creates one pinned pod per node (`syncNodes`), recording upstream's
/// "Created pod: …" / "Deleted pod: …" events. A terminating namespace stops creation quietly.
async fn sync_nodes(ctx: &Ctx, ds: &Value, delete: &[Value], create_on: &[String], hash: &str) -> Result<(), ApiError> {
    let ns = meta::namespace(ds);
    let mut first_err = None;
    if !create_on.is_empty() {
        let template = predicates::pod_template(ds, nodes::template_generation(ds), hash);
        let prefix = format!("{}-", meta::name(ds));
        for node in create_on {
            let mut t = template.clone();
            predicates::pin_to_node(&mut t["spec"], node);
            let pod = podutil::pod_from_template(&t, ds, &prefix);
            match ctx.create(PODS, ns, pod).await {
                Ok(p) => ctx.event(ds, "Normal", "SuccessfulCreate", format!("Created pod: {}", meta::name(&p))),
                Err(e) if e.code == 403 && e.message.contains("is being terminated") => break,
                Err(e) => {
                    ctx.event(ds, "Warning", "FailedCreate", format!("Error creating: {}", e.message));
                    first_err.get_or_insert(e);
                    // Slow start: stop after a failure rather than repeat it for every node.
                    break;
                }
            }
        }
    }
    for p in delete {
        let o = DeleteOpts { precondition_uid: Some(meta::uid(p).to_string()).filter(|u| !u.is_empty()), ..Default::default() };
        match ctx.delete(PODS, ns, meta::name(p), &o).await {
            Ok(Some(_)) => ctx.event(ds, "Normal", "SuccessfulDelete", format!("Deleted pod: {}", meta::name(p))),
            Ok(None) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => {
                ctx.event(ds, "Warning", "FailedDelete", format!("Error deleting: {}", e.message));
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
