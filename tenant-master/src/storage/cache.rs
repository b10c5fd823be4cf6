//! The watch cache: every object of a tenant held in memory, one cache per resource, all fed by a
//! single etcd watch on the tenant's prefix (see [`super::dispatcher`]).
//!
//! Each [`ResourceCache`] keeps the current objects in key order and a bounded history of recent
//! events. Watchers do not get a channel of their own: they remember the revision they have
//! reached and read newer events out of the shared history when woken, so an idle tenant costs
//! a few empty maps and a thousand watchers cost a thousand small futures.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::watch;

/// Extracts the selectable fields (`spec.nodeName`, `status.phase`, ...) of one object. Names
/// are static for built-in resources and owned for custom resources' `selectableFields`.
pub type FieldFn = Arc<dyn Fn(&Value) -> Vec<(Cow<'static, str>, String)> + Send + Sync>;

/// Adjusts an object as read from storage before it is cached (custom resources: the
/// defaults of their schema, applied on every read as upstream's storage decoder does).
pub type DecodeFn = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// One object as held by the cache: its serialized form plus what selectors need.
#[derive(Debug)]
pub struct CachedObject {
    /// `ns/name` for namespaced resources, `name` otherwise.
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub rv: i64,
    /// JSON with `metadata.resourceVersion` set: what LIST and WATCH send.
    pub raw: Bytes,
    pub labels: BTreeMap<String, String>,
    pub fields: Vec<(Cow<'static, str>, String)>,
    /// The decoded form, kept while the object is current (controllers read it again and
    /// again); dropped once a newer version supersedes it, so the history holds only bytes.
    value: Mutex<Option<Arc<Value>>>,
    /// Set once a newer version replaced this one: decoding no longer keeps the result.
    retired: AtomicBool,
}

impl CachedObject {
    /// Builds a cached object from a decoded value (its resourceVersion is set here).
    pub fn new(key: String, mut value: Value, rv: i64, fields: &FieldFn) -> CachedObject {
        crate::meta::set_resource_version(&mut value, rv);
        let md = &value["metadata"];
        let namespace = md["namespace"].as_str().unwrap_or("").to_string();
        let name = md["name"].as_str().unwrap_or("").to_string();
        let labels = md["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
            .unwrap_or_default();
        let fields = fields(&value);
        let raw = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        CachedObject { key, namespace, name, rv, raw, labels, fields, value: Mutex::new(Some(Arc::new(value))), retired: AtomicBool::new(false) }
    }

    /// The decoded object (parsed once, on first use, and kept).
    pub fn value(&self) -> Arc<Value> {
        let decode = || Arc::new(serde_json::from_slice(&self.raw).unwrap_or(Value::Null));
        if self.retired.load(Ordering::Relaxed) {
            return decode();
        }
        self.value.lock().get_or_insert_with(decode).clone()
    }

    /// Marks a version as superseded and drops its decoded form: the history keeps old
    /// versions as bytes only.
    fn retire(&self) {
        self.retired.store(true, Ordering::Relaxed);
        self.forget_value();
    }

    /// Drops the decoded form of a shared object (it is parsed again if anyone still asks).
    fn forget_value(&self) {
        self.value.lock().take();
    }

    /// Drops the decoded form to save memory; it is parsed again when needed.
    fn shrink(self) -> Self {
        self.forget_value();
        self
    }

    /// The same object as seen at a later revision (used for deletions, whose resourceVersion
    /// is the revision of the delete).
    pub fn at_revision(&self, rv: i64, fields: &FieldFn) -> CachedObject {
        CachedObject::new(self.key.clone(), (*self.value()).clone(), rv, fields).shrink()
    }
}

/// The kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, as recorded in a resource's history.
#[derive(Debug)]
pub struct CacheEvent {
    pub typ: EventType,
    pub rv: i64,
    pub object: Arc<CachedObject>,
    /// The object before the change (for selector transitions and DELETED events).
    pub prev: Option<Arc<CachedObject>>,
    pub at: Instant,
}

/// Upper bound on events a resource's history keeps.
const HISTORY_MAX: usize = 10_000;
/// Events younger than this are never dropped while under the bound.
const HISTORY_MIN_AGE: Duration = Duration::from_secs(150);

struct State {
    items: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Watches may start from any revision >= this one.
    history_start: i64,
    /// Revision of the last event applied to this resource.
    last_rv: i64,
}

/// What a watcher gets when it asks for events after a revision.
pub enum Since {
    Events(Vec<Arc<CacheEvent>>),
    /// The revision lies before what the history still holds: 410 Gone.
    TooOld { oldest: i64 },
}

/// How a resource's objects are decoded into the cache: the selectable fields and an optional
/// adjustment of each object as read.
struct Codec {
    fields: FieldFn,
    decode: Option<DecodeFn>,
}

/// The in-memory copy of one resource.
pub struct ResourceCache {
    state: RwLock<State>,
    notify: watch::Sender<i64>,
    codec: RwLock<Codec>,
    /// Set once the resource is no longer served (its CustomResourceDefinition is gone):
    /// watchers end and controllers drop it.
    closed: AtomicBool,
}

impl ResourceCache {
    pub fn new(fields: FieldFn, start_rv: i64) -> ResourceCache {
        ResourceCache {
            state: RwLock::new(State {
                items: BTreeMap::new(),
                history: VecDeque::new(),
                history_start: start_rv,
                last_rv: start_rv,
            }),
            notify: watch::channel(start_rv).0,
            codec: RwLock::new(Codec { fields, decode: None }),
            closed: AtomicBool::new(false),
        }
    }

    /// The selectable-field extractor of this resource.
    pub fn fields(&self) -> FieldFn {
        self.codec.read().fields.clone()
    }

    /// A cached object from a value read from storage: decoded and its fields extracted.
    pub fn make(&self, key: String, mut value: Value, rv: i64) -> CachedObject {
        let (decode, fields) = {
            let c = self.codec.read();
            (c.decode.clone(), c.fields.clone())
        };
        if let Some(d) = decode {
            d(&mut value);
        }
        CachedObject::new(key, value, rv, &fields)
    }

    /// Changes how objects are decoded (a CustomResourceDefinition was added or changed) and
    /// decodes the current objects again. History keeps the events as they were.
    pub fn set_codec(&self, fields: FieldFn, decode: Option<DecodeFn>) {
        *self.codec.write() = Codec { fields: fields.clone(), decode: decode.clone() };
        let mut st = self.state.write();
        let keys: Vec<String> = st.items.keys().cloned().collect();
        for k in keys {
            let Some(old) = st.items.get(&k).cloned() else { continue };
            let mut v = (*old.value()).clone();
            if let Some(d) = &decode {
                d(&mut v);
            }
            let o = CachedObject::new(k.clone(), v, old.rv, &fields).shrink();
            st.items.insert(k, Arc::new(o));
        }
    }

    /// Marks the resource as no longer served and wakes everyone watching it.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let rv = *self.notify.borrow();
        self.notify.send_replace(rv);
    }

    /// Whether [`ResourceCache::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Loads the initial state without recording history.
    pub fn load(&self, objs: Vec<CachedObject>, rv: i64) {
        let mut st = self.state.write();
        for o in objs {
            st.items.insert(o.key.clone(), Arc::new(o.shrink()));
        }
        st.history_start = rv;
        st.last_rv = rv;
    }

    /// Applies one change; `object` is `None` for a deletion. Returns the recorded event.
    pub fn apply(&self, key: &str, object: Option<CachedObject>, rv: i64) -> Option<Arc<CacheEvent>> {
        let mut st = self.state.write();
        let prev = st.items.get(key).cloned();
        let ev = match object {
            Some(o) => {
                let o = Arc::new(o.shrink());
                st.items.insert(key.to_string(), o.clone());
                let typ = if prev.is_some() { EventType::Modified } else { EventType::Added };
                CacheEvent { typ, rv, object: o, prev, at: Instant::now() }
            }
            None => {
                let prev = st.items.remove(key)?;
                let object = Arc::new(prev.at_revision(rv, &self.fields()));
                object.retire();
                CacheEvent { typ: EventType::Deleted, rv, object, prev: Some(prev), at: Instant::now() }
            }
        };
        if let Some(p) = &ev.prev {
            p.retire();
        }
        let ev = Arc::new(ev);
        st.history.push_back(ev.clone());
        st.last_rv = rv;
        while st.history.len() > HISTORY_MAX
            || (st.history.len() > 100
                && st.history.front().map(|e| e.at.elapsed() > HISTORY_MIN_AGE).unwrap_or(false))
        {
            if let Some(e) = st.history.pop_front() {
                st.history_start = e.rv;
            }
        }
        drop(st);
        self.notify.send_replace(rv);
        Some(ev)
    }

    /// A snapshot of the current objects and the last revision applied to this resource.
    pub fn snapshot(&self) -> (Vec<Arc<CachedObject>>, i64) {
        let st = self.state.read();
        (st.items.values().cloned().collect(), st.last_rv)
    }

    /// Objects with keys in `[from, ..)` in key order, filtered, at most `limit` (0: all).
    /// Returns the objects, the number of matching objects left after them and the revision.
    pub fn list_filtered(
        &self,
        from: Option<&str>,
        prefix: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&CachedObject) -> bool,
    ) -> (Vec<Arc<CachedObject>>, usize, i64) {
        let st = self.state.read();
        let lower = match (from, prefix) {
            (Some(f), _) => std::ops::Bound::Excluded(f.to_string()),
            (None, Some(p)) => std::ops::Bound::Included(p.to_string()),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut remaining = 0;
        for (k, o) in st.items.range((lower, std::ops::Bound::Unbounded)) {
            if let Some(p) = prefix {
                if !k.starts_with(p) {
                    break;
                }
            }
            if !keep(o) {
                continue;
            }
            if limit > 0 && out.len() >= limit {
                remaining += 1;
                continue;
            }
            out.push(o.clone());
        }
        (out, remaining, st.last_rv)
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.state.read().items.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.state.read().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events with revision greater than `rv`.
    pub fn since(&self, rv: i64) -> Since {
        let st = self.state.read();
        if rv < st.history_start {
            return Since::TooOld { oldest: st.history_start };
        }
        // History is ordered by revision: find the first event newer than rv.
        let idx = st.history.partition_point(|e| e.rv <= rv);
        Since::Events(st.history.iter().skip(idx).cloned().collect())
    }

    /// Revision of the last event applied here.
    pub fn last_rv(&self) -> i64 {
        self.state.read().last_rv
    }

    /// A receiver woken on every applied event.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.notify.subscribe()
    }
}
