//! The StatefulSet controller (kube-controller-manager's `statefulset`): pods with stable
//! names `<set>-<ordinal>`, hostnames and claims, created and deleted in order (OrderedReady) or
//! all at once (Parallel), updated by revision (RollingUpdate with a partition, or OnDelete),
//! with ControllerRevision history that `kubectl rollout history/undo/status` use.
//!
//! One pass ([`reconcile`]): adopt orphaned revisions, claim the set's pods, find the current
//! and update revisions, [`plan::plan`] the next steps, [`pods::execute`] them, record the
//! status, trim the history.

pub mod claims;
pub mod identity;
pub mod plan;
pub mod pods;
pub mod revisions;

use std::time::Duration;

use super::history;
use super::podutil;
use super::runtime::ctx::{CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS};
use super::runtime::{controller_of, owner_keys, Action, Change, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::Part;
use chrono::Utc;

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    let c = ctx.clone();
    Controller::new("statefulset", ctx)
        .watches(STATEFULSETS, |ch| vec![ch.key()])
        .watches(PODS, move |ch| pod_keys(&c, ch))
        .watches(CONTROLLERREVISIONS, owner_keys("StatefulSet"))
        .run(|ctx, key| async move { reconcile(&ctx, &key).await })
        .await
}

/// The set controlling a changed pod, or for an orphan every set whose selector matches it
/// (it may want to adopt it).
fn pod_keys(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    let mut keys = owner_keys("StatefulSet")(ch);
    let o = ch.latest();
    let v = o.value();
    if ch.object.is_some() && controller_of(&v).is_none() {
        for s in ctx.list(STATEFULSETS, &o.namespace) {
            let sv = s.value();
            if podutil::selector(&sv).map(|sel| sel.matches(&o.labels)).unwrap_or(false) {
                keys.push(ObjKey::new(s.namespace.clone(), s.name.clone()));
            }
        }
    }
    keys
}

async fn reconcile(ctx: &Ctx, key: &ObjKey) -> Result<Action, ApiError> {
    let Some(set) = ctx.get(STATEFULSETS, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let set = (*set).clone();
    let Some(sel) = podutil::selector(&set) else {
        tracing::debug!(statefulset = %key, "invalid or empty selector; not syncing");
        return Ok(Action::Done);
    };

    // Revisions: adopt orphans the selector matches.
    let mut revisions = Vec::new();
    for r in history::list(ctx, &set, &sel) {
        if controller_of(&r).is_some() {
            revisions.push(r);
        } else if !meta::is_deleting(&set) {
            if let Some(r) = history::adopt(ctx, &set, &r).await? {
                revisions.push(r);
            }
        }
    }
    history::sort(&mut revisions);

    // Pods: those named after the set, claimed through the selector.
    let candidates: Vec<_> = ctx.list(PODS, &key.namespace).into_iter().map(|o| o.value()).filter(|p| identity::is_member(&set, p)).collect();
    let pods = podutil::claim(ctx, PODS, &set, &sel, candidates).await?;

    let (current, update, collision) = revisions::current_and_update(ctx, &set, &revisions).await?;
    let current_set = identity::apply_revision(&set, &current);
    let update_set = identity::apply_revision(&set, &update);
    let now = Utc::now();
    let mut p = {
        let ns = key.namespace.clone();
        let claim = |name: &str| ctx.get(PERSISTENTVOLUMECLAIMS, &ns, name).map(|c| (*c).clone());
        plan::plan(&plan::Inputs {
            set: &set,
            current_set: &current_set,
            update_set: &update_set,
            current_revision: meta::name(&current),
            update_revision: meta::name(&update),
            collision_count: collision as i64,
            pods: &pods,
            claim: &claim,
            now,
        })
    };
    let res = pods::execute(ctx, &set, &update_set, &p).await;

    // Record the status even when a step failed.
    plan::complete_rolling_update(&set, &mut p.status);
    if plan::inconsistent(&set, &p.status) {
        let status = p.status.clone();
        let uid = meta::uid(&set).to_string();
        let written = ctx
            .modify(STATEFULSETS, &key.namespace, &key.name, Part::Status, |cur| {
                if meta::uid(cur) == uid {
                    cur["status"] = status.clone();
                }
                Ok(())
            })
            .await;
        match written {
            Ok(_) => {}
            Err(e) if e.code == 404 => return Ok(Action::Done),
            Err(e) if res.is_ok() => return Err(e),
            Err(e) => {
                tracing::warn!(statefulset = %key, error = %e.message, "could not update status")
            }
        }
    }
    res?;

    for r in revisions::to_delete(&set, &pods, &revisions, &current, &update) {
        history::delete(ctx, r).await?;
    }

    // minReadySeconds: look again when the next ready pod becomes available.
    let min_ready = identity::min_ready_seconds(&set);
    let next = pods
        .iter()
        .filter(|p| identity::is_running_and_ready(p) && !identity::is_running_and_available(p, min_ready, now))
        .filter_map(|p| podutil::available_at(p, min_ready))
        .min();
    Ok(match next {
        Some(at) => Action::RequeueAfter((at - now).to_std().unwrap_or_default() + Duration::from_millis(10)),
        None => Action::Done,
    })
}
