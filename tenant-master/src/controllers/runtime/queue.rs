//! The work queue of one controller, modelled on client-go's rate-limited delaying queue: a key
//! is queued at most once, never handed to two workers at the same time (a key that changes
//! while it is being reconciled is queued again when the worker finishes), and failed keys come
//! back after an exponential backoff.
//!
//! The queue belongs to the controller's single task, so it needs no locks.
//!
//! Keys are [`ObjKey`]s (namespace and name of the controller's primary resource) unless a
//! controller needs another kind of key (the garbage collector keys work by object UID across
//! all resources): any type that is [`QueueKey`] will do.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Display;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// Identifies one object: namespace ("" for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ObjKey {
        ObjKey { namespace: namespace.into(), name: name.into() }
    }
}

impl std::fmt::Display for ObjKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// What a work queue can hold: cheap to clone, comparable, printable in logs.
pub trait QueueKey: Clone + Eq + Hash + Display + Send + Sync + 'static {}

impl<T: Clone + Eq + Hash + Display + Send + Sync + 'static> QueueKey for T {}

/// First retry delay after a failure; doubled per further failure up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Keys waiting to be reconciled, keys being reconciled, and keys due later.
pub struct WorkQueue<K = ObjKey> {
    ready: VecDeque<K>,
    queued: HashSet<K>,
    processing: HashSet<K>,
    /// Keys added while being processed: queued again once done.
    dirty: HashSet<K>,
    delayed: BTreeMap<(Instant, u64), K>,
    /// The earliest due time of each delayed key (a later add_after of the same key is moot).
    due: HashMap<K, Instant>,
    failures: HashMap<K, u32>,
    seq: u64,
}

impl<K> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            processing: HashSet::new(),
            dirty: HashSet::new(),
            delayed: BTreeMap::new(),
            due: HashMap::new(),
            failures: HashMap::new(),
            seq: 0,
        }
    }
}

impl<K: QueueKey> WorkQueue<K> {
    pub fn new() -> WorkQueue<K> {
        WorkQueue::default()
    }

    /// Queues a key now.
    pub fn add(&mut self, k: K) {
        if self.processing.contains(&k) {
            self.dirty.insert(k);
            return;
        }
        if self.queued.insert(k.clone()) {
            self.ready.push_back(k);
        }
    }

    /// Queues a key once `after` has passed.
    pub fn add_after(&mut self, k: K, after: Duration) {
        if after.is_zero() {
            return self.add(k);
        }
        let at = Instant::now() + after;
        if let Some(cur) = self.due.get(&k) {
            if *cur <= at {
                return;
            }
        }
        self.due.insert(k.clone(), at);
        self.seq += 1;
        self.delayed.insert((at, self.seq), k);
    }

    /// Queues a key again after a failure, waiting longer each time it fails in a row.
    pub fn add_rate_limited(&mut self, k: K) {
        let n = self.failures.entry(k.clone()).or_insert(0);
        let d = BASE_BACKOFF.saturating_mul(1u32 << (*n).min(20)).min(MAX_BACKOFF);
        *n += 1;
        self.add_after(k, d);
    }

    /// Clears the failure count of a key (it reconciled fine).
    pub fn forget(&mut self, k: &K) {
        self.failures.remove(k);
    }

    /// Moves due delayed keys into the ready queue.
    fn promote(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, _), k) = entry.remove_entry();
            if self.due.get(&k) == Some(&at) {
                self.due.remove(&k);
                self.add(k);
            }
        }
    }

    /// The next key to work on, marked as processing.
    pub fn pop(&mut self) -> Option<K> {
        self.promote();
        let k = self.ready.pop_front()?;
        self.queued.remove(&k);
        self.processing.insert(k.clone());
        Some(k)
    }

    /// Marks a key as no longer processing; queues it again if it changed meanwhile.
    pub fn done(&mut self, k: &K) {
        self.processing.remove(k);
        if self.dirty.remove(k) {
            self.add(k.clone());
        }
    }

    /// When the earliest delayed key falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.delayed.first_key_value().map(|((at, _), _)| *at)
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ready.len() + self.delayed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn dedups_and_requeues_dirty_keys() {
        let mut q = WorkQueue::new();
        let a = ObjKey::new("ns", "a");
        q.add(a.clone());
        q.add(a.clone());
        assert_eq!(q.pop(), Some(a.clone()));
        assert_eq!(q.pop(), None);
        q.add(a.clone()); // changed while processing
        assert_eq!(q.pop(), None, "never handed out twice at once");
        q.done(&a);
        assert_eq!(q.pop(), Some(a.clone()));
        q.done(&a);
        assert_eq!(q.pop(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn delays_and_backs_off() {
        let mut q = WorkQueue::new();
        let a = ObjKey::new("", "a");
        q.add_after(a.clone(), Duration::from_secs(10));
        q.add_after(a.clone(), Duration::from_secs(20));
        assert_eq!(q.pop(), None);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(q.pop(), Some(a.clone()));
        q.done(&a);
        assert!(q.next_due().is_none(), "the later add_after was folded into the earlier one");
        q.add_rate_limited(a.clone());
        q.add_rate_limited(a.clone());
        let first = q.next_due().unwrap();
        assert!(first - Instant::now() <= BASE_BACKOFF);
        q.forget(&a);
        assert!(q.failures.is_empty());
    }
}
