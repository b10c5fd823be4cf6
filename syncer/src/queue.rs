//! The per-tenant weighted fair work queue.
//!
//! Keys are de-duplicated per tenant the way client-go's workqueue does it (a key queued twice
//! is processed once; a key added while it is being processed is processed again afterwards,
//! never by two workers at once). Tenants are served by stride scheduling: each tenant has a
//! virtual "pass"; the worker takes the next key of the non-empty tenant with the smallest pass,
//! which then advances by `STRIDE / weight`. A tenant that becomes active starts at the current
//! virtual time, so a tenant that floods the queue gets its weighted share and no more, and a
//! quiet tenant's key is served within about one round of the active tenants. Failed keys are
//! retried after an exponential backoff (5 ms doubling to 60 s). Memory is bounded: at most
//! `max_per_tenant` queued keys per tenant; keys beyond that are dropped and counted, and the
//! patrol (which re-enqueues everything periodically) brings them back.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

const STRIDE: u64 = 1 << 20;
const BACKOFF_BASE: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

struct TenantQueue<K> {
    weight: u64,
    pass: u64,
    queue: VecDeque<K>,
    queued: HashMap<K, Instant>,
    processing: HashSet<K>,
    /// Keys added while being processed: queued again when done.
    dirty: HashMap<K, Instant>,
    failures: HashMap<K, u32>,
    dropped: u64,
}

impl<K> TenantQueue<K> {
    fn new(weight: u64) -> Self {
        TenantQueue {
            weight: weight.max(1),
            pass: 0,
            queue: VecDeque::new(),
            queued: HashMap::new(),
            processing: HashSet::new(),
            dirty: HashMap::new(),
            failures: HashMap::new(),
            dropped: 0,
        }
    }
}

struct Inner<K> {
    tenants: HashMap<Arc<str>, TenantQueue<K>>,
    /// Non-empty tenants ordered by pass.
    active: BTreeSet<(u64, Arc<str>)>,
    /// Virtual time: the pass of the last tenant served.
    vtime: u64,
    max_per_tenant: usize,
}

/// A key taken from the queue, with the time it was first queued (for latency metrics).
pub struct Item<K> {
    pub tenant: Arc<str>,
    pub key: K,
    pub queued_at: Instant,
}

/// Per-tenant queue statistics.
#[derive(Debug, Clone, Default)]
pub struct Depth {
    pub queued: usize,
    pub processing: usize,
    pub dropped: u64,
}

/// The fair queue. Cheap to share (`Arc`).
pub struct FairQueue<K> {
    inner: Mutex<Inner<K>>,
    notify: Notify,
}

impl<K: Clone + Eq + Hash + Send + 'static> FairQueue<K> {
    pub fn new(max_per_tenant: usize) -> Arc<Self> {
        Arc::new(FairQueue { inner: Mutex::new(Inner { tenants: HashMap::new(), active: BTreeSet::new(), vtime: 0, max_per_tenant }), notify: Notify::new() })
    }

    /// Sets a tenant's weight (VirtualCluster spec.syncWeight; at least 1).
    pub fn set_weight(&self, tenant: &Arc<str>, weight: u64) {
        let mut g = self.inner.lock();
        g.tenants.entry(tenant.clone()).or_insert_with(|| TenantQueue::new(weight)).weight = weight.max(1);
    }

    /// Forgets a tenant (its queued keys are dropped).
    pub fn remove_tenant(&self, tenant: &str) {
        let mut g = self.inner.lock();
        if let Some(t) = g.tenants.remove(tenant) {
            g.active.remove(&(t.pass, Arc::from(tenant)));
        }
    }

    /// Queues a key unless it is queued already.
    pub fn add(&self, tenant: &Arc<str>, key: K) {
        let now = Instant::now();
        let mut g = self.inner.lock();
        if Self::add_locked(&mut g, tenant, key, now) {
            drop(g);
            self.notify.notify_one();
        }
    }

    fn add_locked(g: &mut Inner<K>, tenant: &Arc<str>, key: K, at: Instant) -> bool {
        let vtime = g.vtime;
        let max = g.max_per_tenant;
        let t = g.tenants.entry(tenant.clone()).or_insert_with(|| TenantQueue::new(1));
        if t.queued.contains_key(&key) {
            return false;
        }
        if t.processing.contains(&key) {
            t.dirty.entry(key).or_insert(at);
            return false;
        }
        if t.queue.len() >= max {
            t.dropped += 1;
            return false;
        }
        let was_empty = t.queue.is_empty();
        t.queued.insert(key.clone(), at);
        t.queue.push_back(key);
        if was_empty {
            t.pass = t.pass.max(vtime);
            let pass = t.pass;
            g.active.insert((pass, tenant.clone()));
        }
        true
    }

    /// Takes the next key (fair across tenants), waiting until there is one.
    pub async fn pop(&self) -> Item<K> {
        loop {
            let notified = self.notify.notified();
            if let Some(it) = self.try_pop() {
                return it;
            }
            notified.await;
        }
    }

    fn try_pop(&self) -> Option<Item<K>> {
        let mut g = self.inner.lock();
        let (pass, tenant) = g.active.pop_first()?;
        g.vtime = pass;
        let t = g.tenants.get_mut(&tenant)?;
        let key = t.queue.pop_front()?;
        let queued_at = t.queued.remove(&key).unwrap_or_else(Instant::now);
        t.processing.insert(key.clone());
        t.pass = pass + STRIDE / t.weight;
        let (more, next) = (!t.queue.is_empty(), t.pass);
        if more {
            g.active.insert((next, tenant.clone()));
        }
        drop(g);
        if more {
            // Another worker may take the next key.
            self.notify.notify_one();
        }
        Some(Item { tenant, key, queued_at })
    }

    /// Marks a key done. A failed key is retried after its backoff; a key added meanwhile is
    /// queued again.
    pub fn done(self: &Arc<Self>, item: &Item<K>, ok: bool) {
        let mut g = self.inner.lock();
        let Some(t) = g.tenants.get_mut(&item.tenant) else { return };
        t.processing.remove(&item.key);
        let dirty = t.dirty.remove(&item.key);
        let retry = if ok {
            t.failures.remove(&item.key);
            None
        } else {
            let n = t.failures.entry(item.key.clone()).or_insert(0);
            *n += 1;
            Some(backoff(*n))
        };
        if let Some(at) = dirty {
            if Self::add_locked(&mut g, &item.tenant, item.key.clone(), at) {
                self.notify.notify_one();
            }
        }
        drop(g);
        if let Some(delay) = retry {
            let (q, tenant, key) = (self.clone(), item.tenant.clone(), item.key.clone());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                q.add(&tenant, key);
            });
        }
    }

    /// Queue depth per tenant.
    pub fn depths(&self) -> Vec<(Arc<str>, Depth)> {
        let g = self.inner.lock();
        g.tenants.iter().map(|(n, t)| (n.clone(), Depth { queued: t.queue.len(), processing: t.processing.len(), dropped: t.dropped })).collect()
    }

    /// Keys queued or being processed, over all tenants.
    pub fn len(&self) -> usize {
        let g = self.inner.lock();
        g.tenants.values().map(|t| t.queue.len() + t.processing.len()).sum()
    }

    /// True when nothing is queued or being processed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// 5 ms doubling per failure, at most 60 s.
pub fn backoff(failures: u32) -> Duration {
    let d = BACKOFF_BASE.saturating_mul(1u32.checked_shl(failures.saturating_sub(1).min(20)).unwrap_or(u32::MAX));
    d.min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[tokio::test]
    async fn dedupes_and_requeues_keys_added_while_processing() {
        let q = FairQueue::<u32>::new(100);
        let a = t("a");
        q.add(&a, 1);
        q.add(&a, 1);
        let it = q.pop().await;
        assert_eq!(it.key, 1);
        assert!(q.try_pop().is_none(), "deduplicated");
        q.add(&a, 1); // while processing
        assert!(q.try_pop().is_none(), "never two workers on one key");
        q.done(&it, true);
        assert_eq!(q.try_pop().map(|i| i.key), Some(1));
    }

    #[tokio::test]
    async fn a_flooding_tenant_gets_its_weighted_share() {
        let q = FairQueue::<u32>::new(100_000);
        let (a, b, c) = (t("a"), t("b"), t("c"));
        q.set_weight(&c, 2);
        for i in 0..10_000 {
            q.add(&a, i);
        }
        for i in 0..10 {
            q.add(&b, i);
            q.add(&c, i);
        }
        let mut order = Vec::new();
        for _ in 0..40 {
            let it = q.try_pop().unwrap();
            order.push(it.tenant.to_string());
            q.done(&it, true);
        }
        let count = |n: &str| order.iter().filter(|x| *x == n).count();
        // b: 1 share, c: 2 shares, a: 1 share until b and c run dry.
        assert_eq!(count("b"), 10);
        assert_eq!(count("c"), 10);
        assert!(order[..20].iter().filter(|x| *x == "a").count() <= 6, "{order:?}");
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let q = FairQueue::<u32>::new(10);
        let a = t("a");
        for i in 0..100 {
            q.add(&a, i);
        }
        let d = q.depths();
        assert_eq!(d[0].1.queued, 10);
        assert_eq!(d[0].1.dropped, 90);
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(5));
        assert_eq!(backoff(2), Duration::from_millis(10));
        assert_eq!(backoff(100), BACKOFF_MAX);
    }
}
