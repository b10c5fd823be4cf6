//! Namespace lifecycle: once a namespace is marked for deletion, delete everything in it, then
//! remove the `kubernetes` finalizer so the namespace itself goes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::meta;
use crate::registry::store::{DeleteOpts, ListOpts, Part, Store, WriteOpts};

/// Runs until the process ends.
pub async fn run(store: Arc<Store>) {
    let Some(nss) = store.registry.lookup("", "v1", "namespaces") else { return };
    let cache = store.caches.resource(&nss.info().id());
    let mut notify = cache.subscribe();
    loop {
        let (items, _) = cache.snapshot();
        let mut pending = false;
        for ns in items {
            let v = ns.value();
            if !meta::is_deleting(&v) {
                continue;
            }
            let has_fin = v["spec"]["finalizers"].as_array().map(|a| a.iter().any(|f| f == "kubernetes")).unwrap_or(false);
            if !has_fin {
                continue;
            }
            match finalize(&store, &ns.name).await {
                Ok(true) => {}
                Ok(false) => pending = true,
                Err(e) => {
                    tracing::warn!(namespace = %ns.name, error = %e, "namespace cleanup failed");
                    pending = true;
                }
            }
        }
        if pending {
            // Something is still going away (finalizers, grace periods): look again soon.
            let _ = tokio::time::timeout(Duration::from_secs(2), notify.changed()).await;
        } else if notify.changed().await.is_err() {
            return;
        }
    }
}

/// Deletes the namespace's content; true once it is empty and the finalizer is removed.
async fn finalize(store: &Store, ns: &str) -> Result<bool, crate::api::status::ApiError> {
    let mut remaining = 0;
    for s in store.registry.all() {
        let inf = s.info();
        if !inf.namespaced {
            continue;
        }
        let items = store.delete_collection(s.as_ref(), ns, &ListOpts::default(), &DeleteOpts::default()).await?;
        remaining += items.len();
    }
    if remaining > 0 {
        // Deleted objects with finalizers or grace periods are still there; check again.
        let mut left = 0;
        for s in store.registry.all() {
            if s.info().namespaced {
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
