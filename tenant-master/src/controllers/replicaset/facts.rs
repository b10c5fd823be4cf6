//! What a ReplicaSet sync needs to know about each pod, extracted once per pod version.
//!
//! A ReplicaSet with 1,000 pods is synced on every change of any of them, and each sync looks
//! at all of them (as upstream's does). Walking 1,000 JSON trees per sync is memory-bound and
//! dominated the controller's CPU; so the facts of each pod version (active, ready since
//! when, controller UID, and the last selector/template-label check) are kept here, keyed by
//! the address of the cached object. The cache holds a reference to each object it describes,
//! so an address cannot be reused while its entry exists; entries whose object the watch
//! cache no longer holds are dropped from time to time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::selectors::LabelSelector;
use crate::controllers::podutil;
use crate::meta;
use crate::storage::cache::CachedObject;

/// The facts of one pod version.
pub struct Facts {
    obj: Arc<CachedObject>,
    pub active: bool,
    pub ready: bool,
    /// When the Ready condition last turned True (None if not ready or not recorded).
    pub ready_since: Option<DateTime<Utc>>,
    pub controller_uid: Option<Box<str>>,
    /// The last check against an owner: (owner key, selected, fully labeled).
    checked: Option<(u64, bool, bool)>,
}

impl Facts {
    fn of(obj: Arc<CachedObject>) -> Facts {
        let v = obj.value();
        let ready = podutil::is_ready(&v);
        let ready_since = if ready {
            podutil::condition(&v, "Ready")
                .and_then(|c| c["lastTransitionTime"].as_str())
                .and_then(meta::parse_time)
        } else {
            None
        };
        Facts {
            active: podutil::is_active(&v),
            ready,
            ready_since,
            controller_uid: controller_uid(&v).map(Into::into),
            checked: None,
            obj,
        }
    }

    /// Available: ready for at least `min_ready` seconds by `now` (`IsPodAvailable`).
    pub fn available(&self, min_ready: i64, now: DateTime<Utc>) -> bool {
        if !self.ready {
            return false;
        }
        if min_ready <= 0 {
            return true;
        }
        self.ready_since
            .map(|t| t + chrono::Duration::seconds(min_ready) <= now)
            .unwrap_or(false)
    }

    /// When a ready pod becomes available, if that is still ahead.
    pub fn available_at(&self, min_ready: i64) -> Option<DateTime<Utc>> {
        (self.ready && min_ready > 0)
            .then(|| {
                self.ready_since
                    .map(|t| t + chrono::Duration::seconds(min_ready))
            })
            .flatten()
    }

    pub fn object(&self) -> &Arc<CachedObject> {
        &self.obj
    }
}

/// The UID in an object's controller reference, without copying anything.
pub fn controller_uid(v: &Value) -> Option<&str> {
    v.get("metadata")?
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

/// An owner as far as label checks go: its selector and template labels, identified by a key
/// that changes with its UID and generation.
pub struct Owner<'a> {
    pub key: u64,
    pub selector: &'a LabelSelector,
    pub template_labels: Option<&'a serde_json::Map<String, Value>>,
}

impl Owner<'_> {
    /// The key of an owner version.
    pub fn key_of(uid: &str, generation: i64) -> u64 {
        use std::hash::Hash;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (uid, generation).hash(&mut h);
        h.finish()
    }
}

/// Hashes an address: already unique, just spread.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E3779B97F4A7C15).rotate_left(29);
    }
}

/// Facts by the address of the cached pod object.
#[derive(Default)]
pub struct FactCache {
    map: HashMap<usize, Facts, BuildHasherDefault<AddrHasher>>,
    /// Entries after the last pruning.
    kept: usize,
}

impl FactCache {
    /// The facts of a pod version, extracted on first sight.
    pub fn get(&mut self, obj: &Arc<CachedObject>) -> &mut Facts {
        self.maybe_prune();
        let addr = Arc::as_ptr(obj) as usize;
        self.map
            .entry(addr)
            .or_insert_with(|| Facts::of(obj.clone()))
    }

    /// Whether the pod is selected by the owner and carries all its template labels, checked
    /// once per pod version and owner version.
    pub fn check(&mut self, obj: &Arc<CachedObject>, owner: &Owner) -> (&Facts, bool, bool) {
        let f = self.get(obj);
        let (selected, full) = match f.checked {
            Some((k, sel, full)) if k == owner.key => (sel, full),
            _ => {
                let labels = &f.obj.labels;
                let selected = owner.selector.matches(labels);
                let full = owner
                    .template_labels
                    .map(|t| {
                        t.iter().all(|(k, v)| {
                            labels
                                .get(k)
                                .map(|l| Some(l.as_str()) == v.as_str())
                                .unwrap_or(false)
                        })
                    })
                    .unwrap_or(true);
                f.checked = Some((owner.key, selected, full));
                (selected, full)
            }
        };
        (f, selected, full)
    }

    /// Drops the entries of pod versions the watch cache no longer holds, once the map has
    /// doubled since the last time.
    fn maybe_prune(&mut self) {
        if self.map.len() <= 2 * self.kept.max(512) {
            return;
        }
        self.map.retain(|_, f| Arc::strong_count(&f.obj) > 1);
        self.kept = self.map.len();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cached(v: Value) -> Arc<CachedObject> {
        let fields: crate::storage::cache::FieldFn = Arc::new(|_| Vec::new());
        Arc::new(CachedObject::new("ns/p".into(), v, 1, &fields))
    }

    #[test]
    fn facts_are_extracted_once_and_pruned_when_dropped() {
        let t = "2025-01-01T00:00:00Z";
        let pod = cached(
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "a", "tier": "x"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": t}]}}),
        );
        let mut c = FactCache::default();
        let f = c.get(&pod);
        assert!(f.active && f.ready);
        assert_eq!(f.controller_uid.as_deref(), Some("u1"));
        let now = meta::parse_time("2025-01-01T00:00:05Z").unwrap();
        assert!(f.available(5, now) && !f.available(6, now));
        assert_eq!(f.available_at(6), meta::parse_time("2025-01-01T00:00:06Z"));
        let sel = LabelSelector::from_object(&json!({"matchLabels": {"app": "a"}})).unwrap();
        let tl = json!({"app": "a", "tier": "y"});
        let owner = Owner {
            key: Owner::key_of("u1", 1),
            selector: &sel,
            template_labels: tl.as_object(),
        };
        let (_, sel_ok, full) = c.check(&pod, &owner);
        assert_eq!((sel_ok, full), (true, false));
        assert_eq!(c.len(), 1);
        // Once the watch cache lets go of the object, pruning drops it.
        drop(pod);
        c.kept = 0;
        for i in 0..1100 {
            let p = cached(json!({"metadata": {"name": format!("p{i}")}}));
            c.get(&p);
        }
        assert!(c.len() < 1100, "{}", c.len());
    }
}
