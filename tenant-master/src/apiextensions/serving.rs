//! Keeps what the tenant master serves in step with its CustomResourceDefinitions (upstream's
//! `crdHandler` storage map plus its discovery and OpenAPI controllers): an Established CRD's
//! served versions are registered in the registry (discovery and OpenAPI read the registry, so
//! they follow at once) and its watch cache learns the CRD's selectable fields and defaults; a
//! CRD that is gone is unregistered and its cache dropped.
//!
//! Driven by the CRD watch cache. A change that does not touch what serving depends on (spec,
//! accepted names, stored versions, conditions that gate serving) rebuilds nothing.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;

use super::model::{Crd, ESTABLISHED};
use super::resource::CrdState;
use super::CRDS;
use crate::api::status::ApiError;
use crate::controllers::runtime::{Action, Controller, Ctx};
use crate::registry::store::Store;

/// What is being served per CRD name: a fingerprint of what serving depends on, and the
/// cache id.
#[derive(Default)]
pub struct Served(Mutex<HashMap<String, (u64, String)>>);

fn fingerprint(v: &Value, crd: &Crd) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(&v["spec"]).unwrap_or_default().hash(&mut h);
    serde_json::to_string(&v["status"]["acceptedNames"]).unwrap_or_default().hash(&mut h);
    crd.stored_versions.hash(&mut h);
    crd.is_true(ESTABLISHED).hash(&mut h);
    crd.is_true(super::model::TERMINATING).hash(&mut h);
    crd.deleting.hash(&mut h);
    h.finish()
}

impl Served {
    /// Brings one CRD's serving up to date with its current object (None: deleted).
    ///
    /// A CRD that is not Established (yet) changes nothing: once established a CRD stays so, and
    /// the naming controller registers it just before it writes the condition, so an older
    /// object seen here must not undo that.
    pub fn sync(&self, store: &Store, name: &str, obj: Option<&Value>) {
        let mut served = self.0.lock();
        let Some(v) = obj else {
            if let Some((_, id)) = served.remove(name) {
                store.registry.remove_custom(name);
                store.caches.remove(&id);
                tracing::info!(crd = name, "custom resource no longer served");
            }
            return;
        };
        let crd = Crd::parse(v);
        if !crd.is_true(ESTABLISHED) {
            return;
        }
        let fp = fingerprint(v, &crd);
        if served.get(name).is_some_and(|(f, _)| *f == fp) {
            return;
        }
        let Some(state) = CrdState::new(crd) else { return };
        store.caches.register_codec(&state.id, state.fields(), Some(state.decoder()));
        store.registry.set_custom(name, state.strategies());
        served.insert(name.to_string(), (fp, state.id.clone()));
        tracing::info!(crd = name, versions = state.versions.len(), "custom resource served");
    }
}

/// Registers every established CRD (before the API serves, so custom resources are there from
/// the first request).
pub fn sync_all(store: &Arc<Store>, served: &Served) {
    let Some(s) = store.registry.lookup(super::model::GROUP, "v1", "customresourcedefinitions") else { return };
    let cache = store.caches.resource(&s.info().id());
    let (items, _) = cache.snapshot();
    for o in items {
        let v = o.value();
        served.sync(store, &o.name, Some(&v));
    }
}

/// Runs until the process ends.
pub async fn run(ctx: Ctx, served: Arc<Served>) {
    Controller::new("crd-serving", ctx)
        .watches(CRDS, |ch| vec![ch.key()])
        .workers(1)
        .run(move |ctx, key| {
            let served = served.clone();
            async move {
                let obj = ctx.get(CRDS, "", &key.name);
                served.sync(&ctx.store, &key.name, obj.as_deref());
                Ok::<_, ApiError>(Action::Done)
            }
        })
        .await
}
