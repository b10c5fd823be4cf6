//! The Deployment controller (kube-controller-manager's `deployment`), after upstream's
//! `pkg/controller/deployment`: one ReplicaSet per pod template, named
//! `<deployment>-<pod-template-hash>`, rolled over by the RollingUpdate or Recreate strategy,
//! scaled proportionally when the Deployment is scaled mid-rollout, paused and resumed,
//! old ReplicaSets kept for `kubectl rollout history/undo` up to revisionHistoryLimit, and the
//! Progressing/Available conditions `kubectl rollout status` reads.
//!
//! - [`sync`]: new and old ReplicaSets, scaling, cleanup, status;
//! - [`rolling`], [`recreate`]: the strategies;
//! - [`progress`]: the Progressing condition and progress deadlines;
//! - [`history`]: revisions, annotations and the legacy rollback request;
//! - [`util`]: fenceposts, orderings, conditions.

pub mod history;
pub mod progress;
pub mod recreate;
pub mod rolling;
pub mod sync;
pub mod util;

use std::sync::Arc;

use serde_json::{json, Value};

use super::podutil;
use super::recorder::Recorder;
use super::runtime::ctx::{PODS, REPLICASETS};
use super::runtime::{controller_of, owner_keys, Action, Change, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::meta;
use recreate::PodMap;
use sync::Dc;

pub use super::runtime::ctx::DEPLOYMENTS;

/// Runs the Deployment controller until the process ends.
pub async fn run(ctx: Ctx) {
    let rec = Recorder::new(ctx.clone(), "deployment-controller");
    let (rs_lookup, pod_lookup) = (ctx.clone(), ctx.clone());
    let owners = owner_keys("Deployment");
    Controller::new("deployment", ctx)
        .watches(DEPLOYMENTS, |ch| vec![ch.key()])
        .watches(REPLICASETS, move |ch| {
            let mut keys = owners(ch);
            for k in orphan_keys(&rs_lookup, ch) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            keys
        })
        .watches(PODS, move |ch| deleted_pod_keys(&pod_lookup, ch))
        .workers(5)
        .run(move |ctx, key| {
            let rec = rec.clone();
            async move { reconcile(&ctx, &rec, &key).await }
        })
        .await
}

/// For a ReplicaSet without a controller that appeared, changed labels or lost its
/// controller: the Deployments whose selector matches it (one may adopt it).
fn orphan_keys(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    let Some(now) = ch.object else {
        return Vec::new();
    };
    let v = now.value();
    if controller_of(&v).is_some() || meta::is_deleting(&v) {
        return Vec::new();
    }
    if let Some(prev) = ch.prev {
        if prev.labels == now.labels && controller_of(&prev.value()).is_none() {
            return Vec::new();
        }
    }
    ctx.list(DEPLOYMENTS, &now.namespace)
        .into_iter()
        .filter(|o| {
            podutil::selector(&o.value())
                .map(|s| s.matches(&now.labels))
                .unwrap_or(false)
        })
        .map(|o| ObjKey::new(o.namespace.clone(), o.name.clone()))
        .collect()
}

/// A deleted pod wakes the Deployment owning its ReplicaSet: a Recreate rollout waits for the
/// old pods to be gone (`deletePod`).
fn deleted_pod_keys(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    if ch.object.is_some() {
        return Vec::new();
    }
    let Some(prev) = ch.prev else {
        return Vec::new();
    };
    let Some(rs_ref) = controller_of(&prev.value()).filter(|c| c.kind == "ReplicaSet") else {
        return Vec::new();
    };
    let Some(rs) = ctx.get(REPLICASETS, &prev.namespace, &rs_ref.name) else {
        return Vec::new();
    };
    match controller_of(&rs) {
        Some(d) if d.kind == "Deployment" => vec![ObjKey::new(prev.namespace.clone(), d.name)],
        _ => Vec::new(),
    }
}

/// `syncDeployment`.
async fn reconcile(ctx: &Ctx, rec: &Recorder, key: &ObjKey) -> Result<Action, ApiError> {
    let Some(cached) = ctx.get(DEPLOYMENTS, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let mut d = (*cached).clone();
    let dc = Dc { ctx, rec };
    let Some(sel) = podutil::selector(&d) else {
        // Refused by validation; upstream still records that it saw the generation.
        rec.event(
            &d,
            "Warning",
            "SelectingAll",
            "This deployment is selecting all pods. A non-empty selector is required.",
        );
        let generation = util::int(&d["metadata"]["generation"]);
        if util::status(&d, "observedGeneration") < generation {
            d["status"]["observedGeneration"] = json!(generation);
            dc.update_status(&mut d).await?;
        }
        return Ok(Action::Done);
    };
    let candidates: Vec<Arc<Value>> = ctx
        .list(REPLICASETS, &key.namespace)
        .into_iter()
        .map(|o| o.value())
        .collect();
    let mut rs_list = podutil::claim(ctx, REPLICASETS, &d, &sel, candidates).await?;
    if meta::is_deleting(&d) {
        dc.sync_status_only(&mut d, &mut rs_list).await?;
        return Ok(Action::Done);
    }
    dc.check_paused_conditions(&mut d).await?;
    if d["spec"]["paused"].as_bool().unwrap_or(false) {
        dc.sync(&mut d, &mut rs_list).await?;
        return Ok(Action::Done);
    }
    if history::rollback_to(&d).is_some() {
        history::rollback(&dc, &mut d, &mut rs_list).await?;
        return Ok(Action::Done);
    }
    if dc.is_scaling_event(&mut d, &mut rs_list).await? {
        dc.sync(&mut d, &mut rs_list).await?;
        return Ok(Action::Done);
    }
    let requeue = match d["spec"]["strategy"]["type"].as_str() {
        Some("Recreate") => {
            let pods = pod_map(ctx, &d, &sel, &rs_list);
            dc.rollout_recreate(&mut d, &mut rs_list, &pods).await?
        }
        Some("RollingUpdate") => dc.rollout_rolling(&mut d, &mut rs_list).await?,
        other => {
            return Err(ApiError::internal(format!(
                "unexpected deployment strategy type: {}",
                other.unwrap_or("")
            )))
        }
    };
    Ok(requeue.map_or(Action::Done, Action::RequeueAfter))
}

/// The pods of the Deployment's ReplicaSets by ReplicaSet UID (`getPodMapForDeployment`).
fn pod_map(
    ctx: &Ctx,
    d: &Value,
    sel: &crate::api::selectors::LabelSelector,
    rs_list: &[Value],
) -> PodMap {
    let mut map: PodMap = rs_list
        .iter()
        .map(|rs| (meta::uid(rs).to_string(), Vec::new()))
        .collect();
    for p in ctx.list_selected(PODS, meta::namespace(d), sel) {
        let v = p.value();
        if let Some(c) = controller_of(&v) {
            if let Some(list) = map.get_mut(&c.uid) {
                list.push(v);
            }
        }
    }
    map
}
