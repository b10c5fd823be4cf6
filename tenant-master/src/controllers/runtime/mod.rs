//! The pieces every built-in controller is made of, after kube-runtime and client-go:
//!
//! - [`Ctx`]: reads from the shared watch cache and writes through the generic store, as the
//!   `kube-controller-manager` field manager.
//! - [`Controller`]: watches one or more resources' caches, maps each change to the keys it
//!   concerns, queues them in a [`WorkQueue`] and runs a reconcile function per key.
//!
//! A controller is one tokio task. While nothing changes it sleeps on the caches' change
//! notifications and on its queue's next due time: an idle tenant costs no CPU.
//!
//! Before each reconcile the controller waits until the cache holds every write this tenant
//! master has made (`Store::consistent`, instant in the common case). The tenant master is the
//! only writer of its prefix, so a controller always sees its own previous writes and needs no
//! client-go-style "expectations" to avoid creating a pod twice.
//!
//! ```ignore
//! Controller::new("replicaset", ctx.clone())
//!     .watches(REPLICASETS, |ev| vec![ev.key()])
//!     .watches(PODS, owner_keys("ReplicaSet"))
//!     .run(|ctx, key| async move { reconcile(&ctx, key).await })
//!     .await;
//! ```

pub mod ctx;
pub mod owners;
pub mod queue;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::WatchStream;

pub use ctx::{Ctx, Res};
pub use owners::{controller_of, owner_keys, OwnerRef};
pub use queue::{ObjKey, QueueKey, WorkQueue};

use crate::api::status::ApiError;
use crate::storage::cache::{CachedObject, ResourceCache, Since};

/// What a reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the object (or something mapped to it) changes.
    Done,
    /// Look again after this long (a deadline, a grace period, a cron schedule).
    RequeueAfter(Duration),
}

/// One change a controller sees: the object now (`None` once deleted) and before.
pub struct Change<'a> {
    pub object: Option<&'a CachedObject>,
    pub prev: Option<&'a CachedObject>,
}

impl Change<'_> {
    /// The current object, or the last known state of a deleted one.
    pub fn latest(&self) -> &CachedObject {
        self.object.or(self.prev).expect("a change has an object or a previous one")
    }

    /// The key of the changed object itself.
    pub fn key(&self) -> ObjKey {
        let o = self.latest();
        ObjKey::new(o.namespace.clone(), o.name.clone())
    }
}

/// Maps one change of a watched resource to the keys of the controller's primary objects.
pub type Mapper<K = ObjKey> = Box<dyn Fn(&Change) -> Vec<K> + Send + Sync>;

struct Source<K> {
    cache: Arc<ResourceCache>,
    last: i64,
    map: Mapper<K>,
}

impl<K: QueueKey> Source<K> {
    /// Queues the keys of every change since the last look; on a gap in history (should not
    /// happen: controllers keep up), treats every current object as changed.
    fn drain(&mut self, q: &mut WorkQueue<K>) {
        match self.cache.since(self.last) {
            Since::Events(evs) => {
                for ev in evs {
                    let deleted = ev.typ == crate::storage::cache::EventType::Deleted;
                    let ch = Change { object: (!deleted).then_some(&*ev.object), prev: ev.prev.as_deref() };
                    for k in (self.map)(&ch) {
                        q.add(k);
                    }
                    self.last = self.last.max(ev.rv);
                }
            }
            Since::TooOld { .. } => self.resync(q),
        }
    }

    fn resync(&mut self, q: &mut WorkQueue<K>) {
        let (items, rv) = self.cache.snapshot();
        for o in &items {
            for k in (self.map)(&Change { object: Some(o), prev: None }) {
                q.add(k);
            }
        }
        self.last = rv;
    }
}

type Reconcile<K> = Arc<dyn Fn(Ctx, K) -> Pin<Box<dyn Future<Output = Result<Action, ApiError>> + Send>> + Send + Sync>;

/// A controller under construction: its name, what it watches and how wide it works.
///
/// Keys are [`ObjKey`]s of one primary resource by default; a controller may use any
/// [`QueueKey`] instead (the garbage collector keys by object UID across all resources).
pub struct Controller<K = ObjKey> {
    name: &'static str,
    ctx: Ctx,
    sources: Vec<Source<K>>,
    extra: Option<mpsc::UnboundedReceiver<K>>,
    added: Option<mpsc::UnboundedReceiver<(Arc<ResourceCache>, Mapper<K>)>>,
    workers: usize,
    resync: Option<Duration>,
}

impl<K: QueueKey> Controller<K> {
    pub fn new(name: &'static str, ctx: Ctx) -> Controller<K> {
        Controller { name, ctx, sources: Vec::new(), extra: None, added: None, workers: 4, resync: None }
    }

    /// Watches a resource; `map` names the primary objects each change concerns. Every object
    /// present at start is passed to `map` once as a creation.
    pub fn watches(mut self, r: Res, map: impl Fn(&Change) -> Vec<K> + Send + Sync + 'static) -> Controller<K> {
        let cache = self.ctx.cache(r);
        self.sources.push(Source { cache, last: 0, map: Box::new(map) });
        self
    }

    /// Watches a resource by its cache (custom resources, which have no static [`Res`]).
    pub fn watches_cache(mut self, cache: Arc<ResourceCache>, map: impl Fn(&Change) -> Vec<K> + Send + Sync + 'static) -> Controller<K> {
        self.sources.push(Source { cache, last: 0, map: Box::new(map) });
        self
    }

    /// Starts watching every resource sent on `rx` while running (resources added at runtime,
    /// as custom resources are); each is treated as [`Controller::watches`] treats resources at
    /// start. A watched resource whose cache is closed is dropped.
    pub fn sources_from(mut self, rx: mpsc::UnboundedReceiver<(Arc<ResourceCache>, Mapper<K>)>) -> Controller<K> {
        self.added = Some(rx);
        self
    }

    /// Also queues every key sent on `rx`: for reconciles that find other keys to look at
    /// (the garbage collector queues an owner's dependents). The sender side belongs to the
    /// controller's own code; sending never blocks.
    pub fn keys_from(mut self, rx: mpsc::UnboundedReceiver<K>) -> Controller<K> {
        self.extra = Some(rx);
        self
    }

    /// How many keys may be reconciled at the same time (default 4).
    pub fn workers(mut self, n: usize) -> Controller<K> {
        self.workers = n.max(1);
        self
    }

    /// Re-queues every object of the first watched resource this often (off by default: an
    /// idle tenant must not wake up).
    pub fn resync_every(mut self, d: Duration) -> Controller<K> {
        self.resync = Some(d);
        self
    }

    /// Runs until the process ends.
    pub async fn run<F, Fut>(mut self, reconcile: F)
    where
        F: Fn(Ctx, K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, ApiError>> + Send + 'static,
    {
        let reconcile: Reconcile<K> = Arc::new(move |c, k| Box::pin(reconcile(c, k)));
        let mut wake = futures::stream::select_all(self.sources.iter().map(|s| WatchStream::from_changes(s.cache.subscribe())));
        let mut extra = self.extra.take();
        let mut added = self.added.take();
        let mut q = WorkQueue::new();
        for s in &mut self.sources {
            s.resync(&mut q);
        }
        let mut running = FuturesUnordered::new();
        let mut next_resync = self.resync.map(|d| tokio::time::Instant::now() + d);
        let name = self.name;
        loop {
            while running.len() < self.workers {
                let Some(k) = q.pop() else { break };
                let (ctx, f) = (self.ctx.clone(), reconcile.clone());
                running.push(async move {
                    let res = match ctx.store.consistent().await {
                        Ok(_) => f(ctx, k.clone()).await,
                        Err(e) => Err(e),
                    };
                    (k, res)
                });
            }
            let due = [q.next_due(), next_resync].into_iter().flatten().min();
            tokio::select! {
                Some((k, res)) = running.next(), if !running.is_empty() => {
                    match res {
                        Ok(Action::Done) => q.forget(&k),
                        Ok(Action::RequeueAfter(d)) => {
                            q.forget(&k);
                            q.add_after(k.clone(), d);
                        }
                        Err(e) => {
                            if e.code == 409 {
                                tracing::debug!(controller = name, key = %k, error = %e.message, "conflict; retrying");
                            } else {
                                tracing::warn!(controller = name, key = %k, code = e.code, error = %e.message, "reconcile failed");
                            }
                            q.add_rate_limited(k.clone());
                        }
                    }
                    q.done(&k);
                }
                w = wake.next(), if !wake.is_empty() => {
                    if w.is_none() && added.is_none() {
                        return;
                    }
                    for s in &mut self.sources {
                        s.drain(&mut q);
                    }
                    // Resources no longer served: their caches go when nothing holds them.
                    self.sources.retain(|s| !s.cache.is_closed());
                }
                src = recv(&mut added) => {
                    match src {
                        Some((cache, map)) => {
                            wake.push(WatchStream::from_changes(cache.subscribe()));
                            let mut s = Source { cache, last: 0, map };
                            s.resync(&mut q);
                            self.sources.push(s);
                        }
                        None => added = None,
                    }
                }
                k = recv(&mut extra) => {
                    match k {
                        Some(k) => {
                            q.add(k);
                            while let Some(Ok(k)) = extra.as_mut().map(|rx| rx.try_recv()) {
                                q.add(k);
                            }
                        }
                        None => extra = None,
                    }
                }
                _ = sleep_until(due), if due.is_some() => {
                    if let (Some(at), Some(every)) = (next_resync, self.resync) {
                        if at <= tokio::time::Instant::now() {
                            if let Some(s) = self.sources.first_mut() {
                                s.resync(&mut q);
                            }
                            next_resync = Some(at + every);
                        }
                    }
                }
            }
        }
    }
}

/// The next key from an optional channel; pending forever without one.
async fn recv<K>(rx: &mut Option<mpsc::UnboundedReceiver<K>>) -> Option<K> {
    match rx {
        Some(rx) => rx.recv().await,
        None => futures::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}
