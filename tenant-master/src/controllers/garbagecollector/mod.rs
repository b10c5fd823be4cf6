//! The garbage collector (kube-controller-manager's `garbagecollector`, upstream's
//! `pkg/controller/garbagecollector`): deletes objects whose owners are all gone, and carries out
//! foreground and orphan deletions.
//!
//! - It watches every resource the tenant master serves through the watch caches and keeps an
//!   ownership index ([`graph::Graph`]) up to date from their events; no polling, no lists.
//! - Work is keyed by object UID ([`GcKey`]) across all resources: `attemptToDelete`
//!   ([`decide::decide`] on the owners' states, or finishing a foreground deletion) and
//!   `attemptToOrphan` (strip the owner from its dependents, then drop its `orphan` finalizer).
//! - Owners are looked up in the watch cache (consistent with this server's writes, see
//!   `runtime`), not with a GET per reference as upstream does. Objects are read by parsing
//!   only their metadata from the cached bytes, so the caches keep no decoded copies for it.
//! - Writes go through the generic store as `kube-controller-manager`: deletes carry UID and
//!   resourceVersion preconditions; reference and finalizer removals check the UID.
//!
//! Simplifications: a reference's apiVersion is resolved by group and kind (any served version
//! of the kind matches); a reference to a kind the registry does not know leaves its dependent
//! alone (logged at debug) instead of retrying forever; an owner living in another namespace
//! than its dependent is only reported (`OwnerRefInvalidNamespace`) when the index knows it.

pub mod decide;
pub mod graph;

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::runtime::{Action, Change, Controller, Ctx, Mapper};
use crate::api::status::{ApiError, ApiResult};
use crate::meta;
use crate::registry::store::{DeleteOpts, Part};
use crate::registry::Strategy;
use crate::storage::cache::{CachedObject, ResourceCache};
use decide::{decide, Decision, RefState};
pub use graph::GcKey;
use graph::{describe, Effects, Graph, Ident, InvalidRef, ObjMeta, FOREGROUND, ORPHAN};

/// The controller's name, as kube-controller-manager's.
pub const NAME: &str = "garbagecollector";

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gc = Arc::new(Gc { ctx: ctx.clone(), graph: Mutex::new(Graph::default()), tx });
    let (src_tx, src_rx) = mpsc::unbounded_channel();
    let mut c = Controller::new(NAME, ctx.clone()).keys_from(rx).sources_from(src_rx).workers(8);
    let mut watched = HashMap::new();
    for (cache, map) in new_sources(&gc, &mut watched) {
        c = c.watches_cache(cache, map);
    }
    // Resources added later (custom resources) are watched from when they are served.
    let mut changes = ctx.store.registry.subscribe();
    let gc2 = gc.clone();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            for src in new_sources(&gc2, &mut watched) {
                if src_tx.send(src).is_err() {
                    return;
                }
            }
        }
    });
    c.run(move |_, key| {
        let gc = gc.clone();
        async move { gc.sync(key).await }
    })
    .await
}

/// Mappers for the served resources whose caches are not watched yet (each cache once, as
/// several versions of a resource share it).
fn new_sources(gc: &Arc<Gc>, watched: &mut HashMap<String, Arc<ResourceCache>>) -> Vec<(Arc<ResourceCache>, Mapper<GcKey>)> {
    let mut out = Vec::new();
    let served = gc.ctx.store.registry.all();
    let ids: std::collections::HashSet<String> = served.iter().map(|s| s.info().id()).collect();
    watched.retain(|id, c| !c.is_closed() && ids.contains(id));
    for s in served {
        let inf = s.info();
        let cache = gc.ctx.store.caches.resource(&inf.id());
        if watched.get(&inf.id()).is_some_and(|c| Arc::ptr_eq(c, &cache)) {
            continue;
        }
        watched.insert(inf.id(), cache.clone());
        let (gc, api_version, kind, namespaced) = (gc.clone(), inf.api_version(), inf.kind.to_string(), inf.namespaced);
        let map: Mapper<GcKey> = Box::new(move |ch| gc.on_change(&api_version, &kind, namespaced, ch));
        out.push((cache, map));
    }
    out
}

/// The metadata of a cached object, without decoding the rest.
#[derive(Deserialize)]
struct MetaOnly {
    #[serde(default)]
    metadata: Value,
}

fn meta_of(o: &CachedObject, api_version: &str, kind: &str) -> Option<ObjMeta> {
    let m: MetaOnly = serde_json::from_slice(&o.raw).ok()?;
    ObjMeta::from_metadata(api_version, kind, &m.metadata)
}

/// The group of an apiVersion (`apps/v1` -> `apps`, `v1` -> core).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// What an owner lookup found.
enum Found {
    /// The registry does not serve this kind.
    UnknownKind,
    Absent,
    Present(ObjMeta),
}

struct Gc {
    ctx: Ctx,
    graph: Mutex<Graph>,
    /// Keys found while reconciling (an owner's dependents), queued by the runtime.
    tx: mpsc::UnboundedSender<GcKey>,
}

impl Gc {
    fn strategy(&self, api_version: &str, kind: &str) -> Option<Arc<dyn Strategy>> {
        self.ctx.store.registry.by_kind(group_of(api_version), kind)
    }

    /// The object at `name` in `ns` (ignored for cluster-scoped kinds), from the cache.
    fn get(&self, s: &dyn Strategy, ns: &str, name: &str) -> Option<ObjMeta> {
        let inf = s.info();
        let ns = if inf.namespaced { ns } else { "" };
        if inf.namespaced && ns.is_empty() {
            return None;
        }
        let o = self.ctx.store.get_cached(s, ns, name)?;
        meta_of(&o, &inf.api_version(), &inf.kind)
    }

    fn lookup(&self, id: &Ident) -> Found {
        match self.strategy(&id.api_version, &id.kind) {
            None => Found::UnknownKind,
            Some(s) => self.get(s.as_ref(), &id.namespace, &id.name).map_or(Found::Absent, Found::Present),
        }
    }

    fn queue(&self, keys: Vec<GcKey>) {
        for k in keys {
            let _ = self.tx.send(k);
        }
    }

    /// The mapper of every watched resource: updates the index and returns the work due.
    fn on_change(&self, api_version: &str, kind: &str, namespaced: bool, ch: &Change) -> Vec<GcKey> {
        let obj = ch.object.and_then(|o| meta_of(o, api_version, kind));
        let prev = ch.prev.and_then(|o| meta_of(o, api_version, kind));
        let mut fx = Effects::default();
        let mut g = self.graph.lock();
        match (&obj, &prev) {
            (Some(o), p) => g.observe(p.as_ref(), o, &mut fx),
            (None, Some(p)) if ch.object.is_none() => g.observe_deleted(p, &mut fx),
            _ => {}
        }
        // Owners referenced for the first time: seen (the caches are at least as new as this
        // event, as one etcd watch feeds them in order) or confirmed absent right away.
        while let Some(uid) = fx.unresolved.pop() {
            let Some(id) = g.node(&uid).filter(|n| !n.observed).map(|n| n.ident.clone()) else { continue };
            match self.lookup(&id) {
                Found::UnknownKind => {
                    tracing::debug!(controller = NAME, owner = %describe(&id.api_version, &id.kind, &id.namespace, &id.name, &uid),
                        "owner of a kind this server does not serve; leaving its dependents alone");
                }
                Found::Present(m) if m.uid == uid => g.observe(None, &m, &mut fx),
                _ => {
                    let keys = g.confirm_absent(&uid);
                    fx.keys.extend(keys);
                }
            }
        }
        drop(g);
        if let (Some(o), false) = (&obj, namespaced) {
            // A cluster-scoped dependent cannot have a namespaced owner.
            for r in &o.owners {
                let new = prev.as_ref().is_none_or(|p| !p.owners.iter().any(|x| x.uid == r.uid));
                if new && self.strategy(&r.api_version, &r.kind).is_some_and(|s| s.info().namespaced) {
                    fx.invalid.push(InvalidRef { dependent_uid: o.uid.clone(), dependent: o.ident.clone(), owner: r.clone() });
                }
            }
        }
        for inv in &fx.invalid {
            self.report_invalid(inv);
        }
        fx.keys
    }

    /// Upstream's `reportInvalidNamespaceOwnerRef`.
    fn report_invalid(&self, inv: &InvalidRef) {
        let d = &inv.dependent;
        let r = &inv.owner;
        let obj = json!({
            "apiVersion": d.api_version, "kind": d.kind,
            "metadata": {"name": d.name, "namespace": d.namespace, "uid": inv.dependent_uid},
        });
        let msg = format!(
            "ownerRef {} does not exist in namespace {:?}",
            describe(&r.api_version, &r.kind, &d.namespace, &r.name, &r.uid),
            d.namespace
        );
        tracing::debug!(controller = NAME, dependent = %d.name, "{msg}");
        self.ctx.event(&obj, "Warning", "OwnerRefInvalidNamespace", msg);
    }

    async fn sync(&self, key: GcKey) -> ApiResult<Action> {
        match key {
            GcKey::Delete(uid) => self.attempt_to_delete(&uid).await,
            GcKey::Orphan(uid) => self.attempt_to_orphan(&uid).await,
        }
    }

    /// Upstream's `attemptToDeleteItem`.
    async fn attempt_to_delete(&self, uid: &str) -> ApiResult<Action> {
        let Some(id) = self.graph.lock().node(uid).map(|n| n.ident.clone()) else { return Ok(Action::Done) };
        let Some(s) = self.strategy(&id.api_version, &id.kind) else { return Ok(Action::Done) };
        let latest = match self.get(s.as_ref(), &id.namespace, &id.name) {
            Some(m) if m.uid == uid => m,
            _ => {
                let keys = self.graph.lock().confirm_absent(uid);
                self.queue(keys);
                return Ok(Action::Done);
            }
        };
        if latest.deleting_dependents() {
            return self.process_deleting_dependents(s.as_ref(), &latest).await;
        }
        if latest.deleting || latest.owners.is_empty() {
            // Being deleted is a one-way trip: its dependents are looked at once it is gone.
            return Ok(Action::Done);
        }
        let mut refs = Vec::with_capacity(latest.owners.len());
        for r in &latest.owners {
            let Some(os) = self.strategy(&r.api_version, &r.kind) else {
                tracing::debug!(controller = NAME, item = %latest.ident.name, owner = %r.name, kind = %r.kind,
                    "owner of a kind this server does not serve; leaving the object alone");
                return Ok(Action::Done);
            };
            if os.info().namespaced && latest.ident.namespace.is_empty() {
                tracing::debug!(controller = NAME, item = %latest.ident.name, owner = %r.name,
                    "cluster-scoped object refers to a namespaced owner; leaving it alone");
                return Ok(Action::Done);
            }
            let state = match self.get(os.as_ref(), &latest.ident.namespace, &r.name) {
                Some(o) if o.uid == r.uid && o.deleting_dependents() => RefState::Waiting,
                Some(o) if o.uid == r.uid => RefState::Solid,
                _ => RefState::Dangling,
            };
            refs.push((r.uid.clone(), state));
        }
        let (has_deps, dep_deleting) = self.graph.lock().dependents_state(uid);
        match decide(&refs, has_deps, dep_deleting, &latest.finalizers) {
            Decision::Keep => Ok(Action::Done),
            Decision::RemoveRefs(owners) => {
                tracing::debug!(controller = NAME, item = %latest.ident.name, ?owners, "removing dangling owner references");
                self.remove_owner_refs(s.as_ref(), &latest.ident, &latest.uid, &owners).await
            }
            Decision::DeleteForeground { unblock } => {
                let rv = if unblock { self.unblock_owner_refs(s.as_ref(), &latest).await? } else { latest.resource_version.clone() };
                self.delete(s.as_ref(), &latest, rv, "Foreground").await
            }
            Decision::Delete(policy) => self.delete(s.as_ref(), &latest, latest.resource_version.clone(), policy).await,
        }
    }

    /// Upstream's `processDeletingDependentsItem`: once no blocking dependent is left, drop the
    /// `foregroundDeletion` finalizer; until then make sure each one is being deleted.
    async fn process_deleting_dependents(&self, s: &dyn Strategy, owner: &ObjMeta) -> ApiResult<Action> {
        let blocking = self.graph.lock().blocking_dependents(&owner.uid);
        if blocking.is_empty() {
            return self.remove_finalizer(s, owner, FOREGROUND).await;
        }
        self.queue(blocking.into_iter().filter(|(_, deleting)| !deleting).map(|(d, _)| GcKey::Delete(d)).collect());
        Ok(Action::Done)
    }

    /// Upstream's `attemptToOrphanWorker`.
    async fn attempt_to_orphan(&self, uid: &str) -> ApiResult<Action> {
        let (id, deps) = {
            let g = self.graph.lock();
            let Some(n) = g.node(uid) else { return Ok(Action::Done) };
            (n.ident.clone(), g.dependents(uid))
        };
        let Some(s) = self.strategy(&id.api_version, &id.kind) else { return Ok(Action::Done) };
        let Some(owner) = self.get(s.as_ref(), &id.namespace, &id.name).filter(|o| o.uid == uid) else {
            return Ok(Action::Done);
        };
        let owner_uid = std::slice::from_ref(&owner.uid);
        let strip = deps.into_iter().map(|(dep_uid, dep)| async move {
            let Some(ds) = self.strategy(&dep.api_version, &dep.kind) else { return Ok(Action::Done) };
            self.remove_owner_refs(ds.as_ref(), &dep, &dep_uid, owner_uid).await
        });
        let results: Vec<ApiResult<Action>> = futures::stream::iter(strip).buffer_unordered(16).collect().await;
        if let Some(e) = results.into_iter().find_map(|r| r.err()) {
            return Err(e);
        }
        self.remove_finalizer(s.as_ref(), &owner, ORPHAN).await
    }

    /// Read-modify-write of the object `id` if it still has UID `uid`; a missing object is done
    /// with.
    async fn modify_item<F>(&self, s: &dyn Strategy, id: &Ident, uid: &str, mut f: F) -> ApiResult<Option<Value>>
    where
        F: FnMut(&mut Value),
    {
        let inf = s.info();
        let res = self
            .ctx
            .modify_with(s, &id.namespace, &id.name, Part::Main, |v| {
                if meta::uid(v) != uid {
                    // Another object by that name: the one meant is gone.
                    return Err(ApiError::not_found(&inf.group, &inf.plural, &id.name));
                }
                f(v);
                Ok(())
            })
            .await;
        match res {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Drops the references to the owners `uids` from the object `id` with UID `uid`.
    async fn remove_owner_refs(&self, s: &dyn Strategy, id: &Ident, uid: &str, uids: &[String]) -> ApiResult<Action> {
        self.modify_item(s, id, uid, |v| {
            let md = meta::metadata_mut(v);
            let Some(refs) = md.get_mut("ownerReferences").and_then(|r| r.as_array_mut()) else { return };
            refs.retain(|r| !r["uid"].as_str().is_some_and(|u| uids.iter().any(|x| x == u)));
            if refs.is_empty() {
                md.remove("ownerReferences");
            }
        })
        .await?;
        Ok(Action::Done)
    }

    /// Makes every reference of `item` non-blocking; returns the new resourceVersion.
    async fn unblock_owner_refs(&self, s: &dyn Strategy, item: &ObjMeta) -> ApiResult<String> {
        let v = self
            .modify_item(s, &item.ident, &item.uid, |v| {
                for r in v["metadata"]["ownerReferences"].as_array_mut().into_iter().flatten() {
                    if r["blockOwnerDeletion"] == true {
                        r["blockOwnerDeletion"] = json!(false);
                    }
                }
            })
            .await?;
        Ok(v.map(|v| meta::resource_version(&v).to_string()).unwrap_or_else(|| item.resource_version.clone()))
    }

    async fn remove_finalizer(&self, s: &dyn Strategy, item: &ObjMeta, fin: &str) -> ApiResult<Action> {
        tracing::debug!(controller = NAME, item = %item.ident.name, finalizer = fin, "removing finalizer");
        self.modify_item(s, &item.ident, &item.uid, |v| {
            let md = meta::metadata_mut(v);
            let Some(fins) = md.get_mut("finalizers").and_then(|f| f.as_array_mut()) else { return };
            fins.retain(|f| f != fin);
            if fins.is_empty() {
                md.remove("finalizers");
            }
        })
        .await?;
        Ok(Action::Done)
    }

    /// Deletes `item` with UID and resourceVersion preconditions; when only the
    /// resourceVersion is stale and the owner references are as decided on, deletes with the
    /// UID precondition alone (as upstream's `deleteObject`).
    async fn delete(&self, s: &dyn Strategy, item: &ObjMeta, rv: String, policy: &str) -> ApiResult<Action> {
        tracing::debug!(controller = NAME, kind = %item.ident.kind, namespace = %item.ident.namespace, name = %item.ident.name, policy, "deleting");
        let mut o = DeleteOpts {
            propagation: Some(policy.to_string()),
            precondition_uid: Some(item.uid.clone()),
            precondition_rv: Some(rv),
            ..Default::default()
        };
        let (ns, name) = (&item.ident.namespace, &item.ident.name);
        match self.ctx.store.delete(s, ns, name, &o).await {
            Ok(_) => Ok(Action::Done),
            Err(e) if e.code == 404 => Ok(Action::Done),
            Err(e) if e.code == 409 => {
                self.ctx.store.consistent().await?;
                match self.get(s, ns, name) {
                    Some(cur) if cur.uid == item.uid && cur.owners == item.owners => {
                        o.precondition_rv = None;
                        match self.ctx.store.delete(s, ns, name, &o).await {
                            Ok(_) => Ok(Action::Done),
                            Err(e) if e.code == 404 => Ok(Action::Done),
                            Err(e) => Err(e),
                        }
                    }
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}
