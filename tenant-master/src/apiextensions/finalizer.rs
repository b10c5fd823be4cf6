//! The CRD finalizer (upstream's `pkg/controller/finalizer`): once a CRD is marked for deletion
//! it still carries the `customresourcecleanup.apiextensions.k8s.io` finalizer; this controller
//! sets its Terminating condition (`InstanceDeletionInProgress`), deletes every custom resource
//! it defines (namespace by namespace, through the store, so finalizers and the garbage
//! collector see ordinary deletions), waits until they are gone (`InstanceDeletionCompleted`;
//! a CRD that was never established has nothing to delete: `NeverEstablished`) and removes the
//! finalizer, which deletes the CRD.
//!
//! Upstream polls for up to a minute and then reports `InstanceDeletionCheck`; here the
//! controller looks again every second until the last custom resource (held by its own
//! finalizers, perhaps) is gone.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::model::{set_condition, Crd, CLEANUP_FINALIZER, ESTABLISHED, TERMINATING};
use super::resource::CrdState;
use super::CRDS;
use crate::api::status::{ApiError, ApiResult};
use crate::controllers::runtime::{Action, Controller, Ctx};
use crate::registry::store::{DeleteOpts, ListOpts, Part};

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    Controller::new("crd-finalizer", ctx).watches(CRDS, |ch| vec![ch.key()]).run(|ctx, key| async move { reconcile(&ctx, &key.name).await }).await
}

async fn set_terminating(ctx: &Ctx, name: &str, status: &str, reason: &str, message: &str) -> ApiResult<()> {
    ctx.modify(CRDS, "", name, Part::Status, |o| {
        set_condition(o, TERMINATING, status, reason, message);
        Ok(())
    })
    .await
    .map(|_| ())
}

/// Deletes every custom resource of the CRD; Ok(true) once none is left.
async fn delete_instances(ctx: &Ctx, crd: &Crd) -> ApiResult<bool> {
    let Some(s) = CrdState::new(crd.clone()).and_then(|st| st.storage_strategy()) else { return Ok(true) };
    let store = &ctx.store;
    let all = store.list(&s, "", &ListOpts::default()).await?;
    if all.items.is_empty() {
        return Ok(true);
    }
    let namespaces: BTreeSet<String> = all.items.iter().map(|o| o.namespace.clone()).collect();
    let mut errs = Vec::new();
    for ns in namespaces {
        if let Err(e) = store.delete_collection(&s, &ns, &ListOpts::default(), &DeleteOpts::default()).await {
            errs.push(e.message);
        }
    }
    if !errs.is_empty() {
        let joined = if errs.len() == 1 { errs.remove(0) } else { format!("[{}]", errs.join(", ")) };
        return Err(ApiError::internal(format!("could not issue all deletes: {joined}")));
    }
    let left = store.list(&s, "", &ListOpts::default()).await?.items.len();
    if left > 0 {
        tracing::debug!(crd = %crd.name, left, "waiting for custom resources to be removed");
    }
    Ok(left == 0)
}

async fn reconcile(ctx: &Ctx, name: &str) -> Result<Action, ApiError> {
    let Some(v) = ctx.get(CRDS, "", name) else { return Ok(Action::Done) };
    let crd = Crd::parse(&v);
    if !crd.deleting || !crate::meta::finalizers(&v).iter().any(|f| f == CLEANUP_FINALIZER) {
        return Ok(Action::Done);
    }
    set_terminating(ctx, name, "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress").await?;
    if crd.is_true(ESTABLISHED) {
        match delete_instances(ctx, &crd).await {
            Ok(true) => set_terminating(ctx, name, "False", "InstanceDeletionCompleted", "removed all instances").await?,
            Ok(false) => return Ok(Action::RequeueAfter(Duration::from_secs(1))),
            Err(e) => {
                set_terminating(ctx, name, "True", "InstanceDeletionFailed", &e.message).await?;
                return Err(e);
            }
        }
    } else {
        set_terminating(ctx, name, "False", "NeverEstablished", "resource was never established").await?;
    }
    let res = ctx
        .modify(CRDS, "", name, Part::Main, |o| {
            let fins: Vec<String> = crate::meta::finalizers(o).into_iter().filter(|f| f != CLEANUP_FINALIZER).collect();
            crate::meta::metadata_mut(o).insert("finalizers".into(), json!(fins));
            Ok(())
        })
        .await;
    match res {
        Ok(_) => Ok(Action::Done),
        Err(e) if e.code == 404 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}
