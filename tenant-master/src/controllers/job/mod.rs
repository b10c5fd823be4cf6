//! The Job controller (kube-controller-manager's `job`): runs a Job's pods to completion.
//!
//! - [`sync`]: one reconcile (failure and success verdicts, creating and deleting pods,
//!   backoff before replacing failed pods, suspend and resume, activeDeadlineSeconds).
//! - [`status`]: exact counting through the `batch.kubernetes.io/job-tracking` finalizer and
//!   `status.uncountedTerminatedPods`, interim and terminal conditions, events.
//! - [`pods`], [`indexes`], [`backoff`], [`policy`], [`spec`]: the pieces.
//!
//! A second loop in the same task removes the tracking finalizer from pods no Job will count
//! any more (orphans, pods of deleted or finished Jobs), as upstream's orphan queue.
//!
//! Simplified against upstream: no expectations (the runtime waits for the cache to hold this
//! server's writes instead); pod changes are reconciled at once rather than batched per second;
//! the backoff records live in memory as upstream's, so a restart forgets them.

pub mod backoff;
pub mod indexes;
pub mod pods;
pub mod policy;
pub mod spec;
pub mod status;
pub mod sync;

use std::sync::Arc;

use super::runtime::ctx::{JOBS, PODS};
use super::runtime::{controller_of, owner_keys, Action, Change, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::controllers::podutil;
use crate::meta;

/// What the Job controller keeps between reconciles.
#[derive(Default)]
pub struct State {
    pub backoff: backoff::Store,
}

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    let state = Arc::new(State::default());
    let jobs = {
        let c = ctx.clone();
        let owners = owner_keys("Job");
        Controller::new("job", ctx.clone())
            .watches(JOBS, |ch| vec![ch.key()])
            .watches(PODS, move |ch| {
                let mut keys = owners(ch);
                if keys.is_empty() {
                    keys = orphan_candidates(&c, ch);
                }
                keys
            })
            .run(move |ctx, key| {
                let state = state.clone();
                async move { sync::sync(&ctx, &state, &key).await }
            })
    };
    let orphans = {
        let c = ctx.clone();
        Controller::new("job-orphan-pods", ctx.clone())
            .watches(PODS, {
                let c = c.clone();
                move |ch| match ch.object {
                    Some(o) if untracked(&c, &o.value()) => vec![ch.key()],
                    _ => vec![],
                }
            })
            .watches(JOBS, move |ch| finished_job_pods(&c, ch))
            .workers(2)
            .run(|ctx, key| async move { sync_orphan_pod(&ctx, &key).await })
    };
    tokio::join!(jobs, orphans);
}

/// Jobs in the pod's namespace whose selector matches a pod without a controller (they may
/// adopt it).
fn orphan_candidates(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    let Some(o) = ch.object else { return vec![] };
    let pod = o.value();
    if controller_of(&pod).is_some() {
        return vec![];
    }
    ctx.list(JOBS, &o.namespace)
        .iter()
        .filter(|j| podutil::selector(&j.value()).map(|s| s.matches(&o.labels)).unwrap_or(false))
        .map(|j| ObjKey::new(j.namespace.clone(), j.name.clone()))
        .collect()
}

/// The tracked pods of a Job that finished or went away (their finalizers must go).
fn finished_job_pods(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    let gone = ch.object.is_none();
    let job = ch.latest().value();
    if !gone && !spec::is_finished(&job) {
        return vec![];
    }
    let uid = meta::uid(&job).to_string();
    ctx.list(PODS, meta::namespace(&job))
        .iter()
        .filter(|p| {
            let v = p.value();
            pods::has_tracking_finalizer(&v) && controller_of(&v).map(|c| c.uid == uid).unwrap_or(false)
        })
        .map(|p| ObjKey::new(p.namespace.clone(), p.name.clone()))
        .collect()
}

/// A pod with the tracking finalizer that no unfinished Job (run by this controller) controls.
fn untracked(ctx: &Ctx, pod: &serde_json::Value) -> bool {
    if !pods::has_tracking_finalizer(pod) {
        return false;
    }
    let Some(c) = controller_of(pod) else {
        return true;
    };
    if c.kind != "Job" || c.api_version != "batch/v1" {
        return false;
    }
    match ctx.get(JOBS, meta::namespace(pod), &c.name).filter(|j| meta::uid(j) == c.uid) {
        None => true,
        Some(job) => {
            let external = job["spec"]["managedBy"].as_str().map(|m| m != spec::MANAGED_BY_DEFAULT).unwrap_or(false);
            !external && spec::is_finished(&job)
        }
    }
}

/// Removes the tracking finalizer from a pod no unfinished Job controls.
async fn sync_orphan_pod(ctx: &Ctx, key: &ObjKey) -> Result<Action, ApiError> {
    let Some(pod) = ctx.get(PODS, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    if untracked(ctx, &pod) {
        pods::remove_tracking_finalizer(ctx, &pod).await?;
    }
    Ok(Action::Done)
}
