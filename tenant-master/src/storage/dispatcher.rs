//! One etcd watch per tenant feeding every resource's watch cache.
//!
//! A thousand tenants times forty resources must not become forty thousand etcd watches, so the
//! dispatcher lists the tenant's whole prefix once, watches it from the next revision, and routes
//! each event by its key (`/registry/<group>/<resource>/[<ns>/]<name>`) to that resource's cache.
//! If the watch breaks (etcd restarted, history compacted), it lists again and replays the
//! difference as events, so caches and watchers stay exact.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType as EtcdEventType, WatchOptions};
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::watch;

use super::cache::{CachedObject, DecodeFn, FieldFn, ResourceCache};
use super::etcd::{Etcd, StorageError};

/// Routes etcd keys to resource caches and tracks the revision every cache has reached.
pub struct Caches {
    etcd: Etcd,
    resources: RwLock<HashMap<String, Arc<ResourceCache>>>,
    field_fns: RwLock<HashMap<String, FieldFn>>,
    decoders: RwLock<HashMap<String, Option<DecodeFn>>>,
    /// The revision up to which every event of the prefix has been applied (advanced by events,
    /// lists and etcd's progress notifications).
    rev: watch::Sender<i64>,
    /// The highest revision this tenant's caches have applied from their own events or lists,
    /// never from a progress notification. Waiting for one's own write uses this: etcd 3.4
    /// before 3.4.24 (Debian ships 3.4.23) can answer a progress request with a revision whose
    /// events it has not sent yet (etcd issue 15220), and a write must never look applied
    /// before its event is in the cache.
    own: watch::Sender<i64>,
    /// Asks the watch loop to request a progress notification from etcd (on demand only, so
    /// an idle tenant sends etcd nothing).
    progress_wanted: tokio::sync::Notify,
}

/// Splits `/registry/<group>/<resource>/<rest>` into (`<group>/<resource>`, `<rest>`).
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("/registry/")?;
    let first = rest.find('/')?;
    let second = rest[first + 1..].find('/')? + first + 1;
    Some((&rest[..second], &rest[second + 1..]))
}

fn metadata_fields() -> FieldFn {
    Arc::new(|_v: &Value| Vec::new())
}

impl Caches {
    /// Lists the prefix, fills the caches and starts the watch. Returns once caches are synced.
    pub async fn start(etcd: Etcd, field_fns: HashMap<String, FieldFn>) -> Result<Arc<Caches>, StorageError> {
        let caches = Arc::new(Caches {
            etcd,
            resources: RwLock::new(HashMap::new()),
            field_fns: RwLock::new(field_fns),
            decoders: RwLock::new(HashMap::new()),
            rev: watch::channel(0).0,
            own: watch::channel(0).0,
            progress_wanted: tokio::sync::Notify::new(),
        });
        let rev = caches.initial_load().await?;
        // Start-up (loading, then bootstrapping) is a burst of its own: trim once it settles.
        super::trim::start();
        super::trim::note(super::trim::BURST as usize);
        let c = caches.clone();
        tokio::spawn(async move { c.run(rev).await });
        Ok(caches)
    }

    /// Registers how a resource added after start (a custom resource) is decoded: its
    /// selectable fields and the adjustment of each object read (schema defaults). Objects
    /// already cached are decoded again.
    pub fn register_codec(&self, resource_id: &str, fields: FieldFn, decode: Option<DecodeFn>) {
        self.field_fns.write().insert(resource_id.to_string(), fields.clone());
        self.decoders.write().insert(resource_id.to_string(), decode.clone());
        self.resource(resource_id).set_codec(fields, decode);
    }

    /// Forgets a resource that is no longer served (its CustomResourceDefinition is gone):
    /// its cache is closed (watchers end, controllers drop it) and freed once unused; objects
    /// that appear under its keys later get a fresh cache.
    pub fn remove(&self, resource_id: &str) {
        self.field_fns.write().remove(resource_id);
        self.decoders.write().remove(resource_id);
        if let Some(c) = self.resources.write().remove(resource_id) {
            c.close();
        }
    }

    /// The cache of `<group>/<resource>`, created empty on first use.
    pub fn resource(&self, id: &str) -> Arc<ResourceCache> {
        if let Some(c) = self.resources.read().get(id) {
            return c.clone();
        }
        let f = self.field_fns.read().get(id).cloned().unwrap_or_else(metadata_fields);
        let d = self.decoders.read().get(id).cloned().flatten();
        let start = *self.rev.borrow();
        self.resources
            .write()
            .entry(id.to_string())
            .or_insert_with(|| {
                let c = ResourceCache::new(f, start);
                if d.is_some() {
                    c.set_codec(c.fields(), d);
                }
                Arc::new(c)
            })
            .clone()
    }

    /// The revision every cache has caught up with.
    pub fn revision(&self) -> i64 {
        *self.rev.borrow()
    }

    /// Waits until the caches have applied every event up to `rv`; false on timeout.
    pub async fn wait_for(&self, rv: i64, timeout: Duration) -> bool {
        if *self.rev.borrow() >= rv {
            return true;
        }
        let mut rx = self.rev.subscribe();
        // The revision may belong to another tenant's write in a shared etcd; a progress
        // notification moves this tenant's revision past it.
        self.request_progress();
        let ok = matches!(tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rv)).await, Ok(Ok(_)));
        ok
    }

    /// Waits until the caches hold this tenant's own write at revision `rv` (and everything
    /// before it); false on timeout. Unlike [`Caches::wait_for`] it trusts only events and
    /// lists, never a progress notification, so it cannot return before the write's event.
    pub async fn wait_for_own(&self, rv: i64, timeout: Duration) -> bool {
        if *self.own.borrow() >= rv {
            return true;
        }
        let mut rx = self.own.subscribe();
        let ok = matches!(tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rv)).await, Ok(Ok(_)));
        ok
    }

    /// Asks etcd where this tenant's watch stands, so the revision advances past other
    /// tenants' writes (for bookmarks and `resourceVersion=N` reads).
    pub fn request_progress(&self) {
        self.progress_wanted.notify_one();
    }

    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    fn decode(&self, id: &str, rest: &str, value: &[u8], rv: i64) -> Option<CachedObject> {
        let v: Value = serde_json::from_slice(value).ok()?;
        Some(self.resource(id).make(rest.to_string(), v, rv))
    }

    async fn list_all(&self) -> Result<(HashMap<String, Vec<CachedObject>>, i64), StorageError> {
        let mut by_res: HashMap<String, Vec<CachedObject>> = HashMap::new();
        let mut rev = 0;
        let mut start: Option<String> = None;
        loop {
            let (items, r, more, _) = self.etcd.range("/registry/", start.as_deref(), rev, 1000).await?;
            rev = r;
            let last = items.last().map(|s| s.key.clone());
            for s in items {
                let Some((id, rest)) = split_key(&s.key) else { continue };
                if let Some(o) = self.decode(id, rest, &s.value, s.mod_revision) {
                    by_res.entry(id.to_string()).or_default().push(o);
                }
            }
            match (more, last) {
                (true, Some(l)) => start = Some(format!("{l}\0")),
                _ => break,
            }
        }
        Ok((by_res, rev))
    }

    async fn initial_load(&self) -> Result<i64, StorageError> {
        let (by_res, rev) = self.list_all().await?;
        self.rev.send_replace(rev);
        self.own.send_replace(rev);
        for (id, objs) in by_res {
            self.resource(&id).load(objs, rev);
        }
        // Caches created before the load (none yet) or later start at `rev`.
        for c in self.resources.read().values() {
            if c.is_empty() {
                c.load(Vec::new(), rev);
            }
        }
        Ok(rev)
    }

    /// After a broken watch: list again and replay the difference as events at the new revision.
    async fn resync(&self) -> Result<i64, StorageError> {
        let (by_res, rev) = self.list_all().await?;
        let ids: Vec<String> = self.resources.read().keys().cloned().collect();
        let mut fresh = by_res;
        for id in ids {
            let cache = self.resource(&id);
            let (current, _) = cache.snapshot();
            let mut new_objs: HashMap<String, CachedObject> =
                fresh.remove(&id).unwrap_or_default().into_iter().map(|o| (o.key.clone(), o)).collect();
            for old in current {
                match new_objs.remove(&old.key) {
                    Some(n) if n.rv == old.rv => {}
                    Some(n) => {
                        let rv = n.rv;
                        cache.apply(&old.key.clone(), Some(n), rv);
                    }
                    None => {
                        cache.apply(&old.key, None, rev);
                    }
                }
            }
            for (k, n) in new_objs {
                let rv = n.rv;
                cache.apply(&k, Some(n), rv);
            }
        }
        for (id, objs) in fresh {
            let cache = self.resource(&id);
            for n in objs {
                let rv = n.rv;
                cache.apply(&n.key.clone(), Some(n), rv);
            }
        }
        self.rev.send_replace(rev);
        self.own.send_replace(rev);
        Ok(rev)
    }

    async fn run(self: Arc<Self>, mut rev: i64) {
        loop {
            if let Err((r, e)) = self.watch_from(rev).await {
                tracing::warn!(error = %e, rev = r, "etcd watch broke; relisting");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            loop {
                match self.resync().await {
                    Ok(r) => {
                        rev = r;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "relist failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    /// Watches from `rev + 1` until the watch ends; the error carries the revision reached.
    async fn watch_from(&self, mut rev: i64) -> Result<(), (i64, String)> {
        let prefix = self.etcd.full("/registry/");
        let strip = self.etcd.prefix().len();
        let mut own = *self.own.borrow();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_progress_notify()
            .with_start_revision(rev + 1);
        let mut stream = self.etcd.client().watch_client().watch(prefix, Some(opts)).await.map_err(|e| (rev, e.to_string()))?;
        loop {
            let msg = tokio::select! {
                m = stream.message() => m,
                _ = self.progress_wanted.notified() => {
                    // Someone waits for a revision this tenant's own events do not reach.
                    let _ = stream.request_progress().await;
                    continue;
                }
            };
            let resp = match msg {
                Ok(Some(r)) => r,
                Ok(None) => return Err((rev, "watch stream closed".into())),
                Err(e) => return Err((rev, e.to_string())),
            };
            if resp.canceled() || resp.compact_revision() != 0 {
                return Err((rev, format!("watch canceled: {} (compacted {})", resp.cancel_reason(), resp.compact_revision())));
            }
            super::trim::note(resp.events().len());
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let key = String::from_utf8_lossy(&kv.key()[strip.min(kv.key().len())..]).into_owned();
                let Some((id, rest)) = split_key(&key) else { continue };
                let mrv = kv.mod_revision();
                match ev.event_type() {
                    EtcdEventType::Put => {
                        if let Some(o) = self.decode(id, rest, kv.value(), mrv) {
                            self.resource(id).apply(rest, Some(o), mrv);
                        }
                    }
                    EtcdEventType::Delete => {
                        self.resource(id).apply(rest, None, mrv);
                    }
                }
                if mrv > rev {
                    rev = mrv;
                }
                if mrv > own {
                    own = mrv;
                }
            }
            if resp.events().is_empty() && !resp.created() {
                // A progress notification: everything up to its revision has been delivered, so
                // bookmarks and consistent reads advance even when this tenant is quiet.
                if let Some(h) = resp.header() {
                    rev = rev.max(h.revision());
                }
            }
            self.rev.send_replace(rev);
            self.own.send_replace(own);
        }
    }
}
