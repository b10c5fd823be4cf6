//! Namespace lifecycle: once a namespace is marked for deletion, delete everything in it, then
//! remove the `kubernetes` finalizer so the namespace itself goes.

use std::time::Duration;

use serde_json::json;

use super::runtime::ctx::NAMESPACES;
use super::runtime::{Action, Controller, Ctx};
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::{DeleteOpts, ListOpts, Part, Store, WriteOpts};

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    Controller::new("namespace", ctx)
        .watches(NAMESPACES, |ch| vec![ch.key()])
        .run(|ctx, key| async move { reconcile(&ctx, &key.name).await })
        .await
}

async fn reconcile(ctx: &Ctx, name: &str) -> Result<Action, ApiError> {
    let Some(ns) = ctx.get(NAMESPACES, "", name) else { return Ok(Action::Done) };
    if !meta::is_deleting(&ns) {
        return Ok(Action::Done);
    }
    let has_fin = ns["spec"]["finalizers"].as_array().map(|a| a.iter().any(|f| f == "kubernetes")).unwrap_or(false);
    if !has_fin {
        return Ok(Action::Done);
    }
    if finalize(&ctx.store, name).await? {
        Ok(Action::Done)
    } else {
        // Something is still going away (finalizers, grace periods): look again soon.
        Ok(Action::RequeueAfter(Duration::from_secs(1)))
    }
}

/// Deletes the namespace's content; true once it is empty and the finalizer is removed.
async fn finalize(store: &Store, ns: &str) -> Result<bool, crate::api::status::ApiError> {
    let mut remaining = 0;
    // The registry as it is now, custom resources included; several versions of one resource
    // share their objects, so each is deleted through one of them.
    let mut seen = std::collections::HashSet::new();
    for s in store.registry.all() {
        let inf = s.info();
        if !inf.namespaced || !seen.insert(inf.id()) {
            continue;
        }
        let items = store.delete_collection(s.as_ref(), ns, &ListOpts::default(), &DeleteOpts::default()).await?;
        remaining += items.len();
    }
    if remaining > 0 {
        // Deleted objects with finalizers or grace periods are still there; check again.
        let mut left = 0;
        let mut seen = std::collections::HashSet::new();
        for s in store.registry.all() {
            if s.info().namespaced && seen.insert(s.info().id()) {
                left += store.list(s.as_ref(), ns, &ListOpts::default()).await?.items.len();
            }
        }
        if left > 0 {
            return Ok(false);
        }
    }
    let nss = store.registry.lookup("", "v1", "namespaces").expect("namespaces registered");
    let wo = WriteOpts { dry_run: false, field_manager: Some("namespace-controller".into()), ..Default::default() };
    store
        .guaranteed_update(nss.as_ref(), "", ns, Part::Finalize, &wo, false, |cur| {
            let cur = cur.ok_or_else(|| crate::api::status::ApiError::not_found("", "namespaces", ns))?;
            let mut n = cur.clone();
            let fins: Vec<_> = cur["spec"]["finalizers"].as_array().cloned().unwrap_or_default().into_iter().filter(|f| f != "kubernetes").collect();
            n["spec"]["finalizers"] = json!(fins);
            Ok(n)
        })
        .await
        .map(|_| true)
        .or_else(|e| if e.code == 404 { Ok(true) } else { Err(e) })
}
