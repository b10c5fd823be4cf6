//! The simulator's event loop: one task owns every node and pod, fed by two watches (pods bound
//! to any node, nodes) and one timer queue; API writes run concurrently (at most
//! `--max-concurrent-writes`), at most one per object at a time, and a change made while an
//! object's write is queued or in flight is folded into its next write (so a backlog coalesces
//! a pod's ContainerCreating and Running reports into one).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use tokio::task::JoinSet;
use tokio_util::time::DelayQueue;

use crate::api::{self, Outcome};
use crate::hooks::NodeMode;
use crate::node::{PodRef, SimNode};
use crate::pod::{NodeId, SimPod, Stage, Step};
use crate::util::now;
use crate::Settings;

/// A write the loop owes the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Work {
    PodStatus(PodRef),
    PodDelete(PodRef),
    Lease(NodeId),
    NodeStatus(NodeId),
    NodeTaints(NodeId),
    /// The kubelet came back: list its pods again.
    NodeResync(NodeId),
}

impl Work {
    fn node(&self) -> Option<NodeId> {
        match self {
            Work::Lease(n) | Work::NodeStatus(n) | Work::NodeTaints(n) | Work::NodeResync(n) => Some(*n),
            _ => None,
        }
    }
}

/// Something due later.
#[derive(Debug, Clone, Copy)]
pub enum Timer {
    Pod(PodRef, Step),
    Lease(NodeId),
    Report(NodeId),
    Retry(Work),
}

/// All the simulator's state; see the module docs.
pub struct Sim {
    pub(crate) s: Arc<Settings>,
    pub(crate) client: Client,
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) node_idx: HashMap<String, NodeId>,
    pub(crate) pods: Vec<Option<SimPod>>,
    pub(crate) gens: Vec<u32>,
    pub(crate) free: Vec<u32>,
    pub(crate) pod_idx: HashMap<String, u32>,
    pub(crate) timers: DelayQueue<Timer>,
    queue: VecDeque<Work>,
    queued: HashSet<Work>,
    busy: HashSet<Work>,
    again: HashSet<Work>,
    retries: HashMap<Work, u32>,
    inflight: JoinSet<(Work, Outcome)>,
    /// Pods listed since the last watch restart (to find those deleted while disconnected).
    pub(crate) relist: Option<HashSet<String>>,
}

impl Sim {
    pub fn new(s: Arc<Settings>, client: Client, nodes: Vec<SimNode>) -> Sim {
        let node_idx = nodes.iter().enumerate().map(|(i, n)| (n.name().to_string(), i as NodeId)).collect();
        Sim {
            s,
            client,
            nodes,
            node_idx,
            pods: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            pod_idx: HashMap::new(),
            timers: DelayQueue::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            busy: HashSet::new(),
            again: HashSet::new(),
            retries: HashMap::new(),
            inflight: JoinSet::new(),
            relist: None,
        }
    }

    /// Runs until `shutdown` resolves. `ready` is sent once the first pod list is processed.
    pub async fn run(mut self, ready: tokio::sync::oneshot::Sender<()>, shutdown: impl std::future::Future<Output = ()>) {
        let pods_api: Api<Pod> = Api::all(self.client.clone());
        let nodes_api: Api<Node> = Api::all(self.client.clone());
        let mut pods = watcher(pods_api, watcher::Config::default().fields("spec.nodeName!=")).default_backoff().boxed();
        let mut nodes = watcher(nodes_api, watcher::Config::default()).default_backoff().boxed();
        let mut ready = Some(ready);
        self.start_heartbeats();
        tokio::pin!(shutdown);
        let mut upkeep = tokio::time::interval(Duration::from_secs(10));
        loop {
            self.dispatch();
            tokio::select! {
                ev = pods.next() => match ev {
                    Some(Ok(ev)) => {
                        let done = matches!(ev, Event::InitDone);
                        self.pod_event(ev);
                        if done {
                            if let Some(r) = ready.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch"),
                    None => return,
                },
                ev = nodes.next() => match ev {
                    Some(Ok(ev)) => self.node_event(ev),
                    Some(Err(e)) => tracing::warn!(error = %e, "node watch"),
                    None => return,
                },
                Some(t) = self.timers.next(), if !self.timers.is_empty() => self.timer(t.into_inner()),
                Some(r) = self.inflight.join_next(), if !self.inflight.is_empty() => match r {
                    Ok((w, out)) => self.completed(w, out),
                    Err(e) => tracing::error!(error = %e, "write task failed"),
                },
                _ = upkeep.tick() => self.gauges(),
                _ = &mut shutdown => return,
            }
        }
    }

    fn gauges(&self) {
        let mut modes = [0u32; 3];
        for n in &self.nodes {
            modes[n.mode as usize] += 1;
        }
        for (m, c) in [NodeMode::Ready, NodeMode::NotReady, NodeMode::Lost].iter().zip(modes) {
            metrics::gauge!("kplex_nodesim_nodes", "state" => m.label()).set(c as f64);
        }
        let mut by_stage: HashMap<&'static str, u32> = HashMap::new();
        for p in self.pods.iter().flatten() {
            let s = match p.stage {
                Stage::Creating | Stage::Init(_) => "pending",
                Stage::Running => "running",
                Stage::Stopping => "terminating",
                Stage::Terminal | Stage::Rejected | Stage::Gone => "finished",
            };
            *by_stage.entry(s).or_default() += 1;
        }
        for s in ["pending", "running", "terminating", "finished"] {
            metrics::gauge!("kplex_nodesim_pods", "state" => s).set(*by_stage.get(s).unwrap_or(&0) as f64);
        }
        metrics::gauge!("kplex_nodesim_write_queue").set(self.queue.len() as f64);
        metrics::gauge!("kplex_nodesim_writes_in_flight").set(self.inflight.len() as f64);
    }

    /// Lease renewals and status reports, each node at its own offset within the period so
    /// that a thousand nodes do not renew in the same instant.
    fn start_heartbeats(&mut self) {
        let renew = self.s.lease_renew_interval();
        for i in 0..self.nodes.len() as NodeId {
            let frac = spread(i);
            self.timers.insert(Timer::Lease(i), renew.mul_f64(frac));
            self.timers.insert(Timer::Report(i), self.s.status_report_frequency.mul_f64(frac));
            if self.nodes[i as usize].full_status_due {
                self.dirty(Work::NodeStatus(i));
            }
        }
    }

    // ---- the write queue ----

    /// Asks for a write; folded into one already queued or redone after the one in flight.
    pub(crate) fn dirty(&mut self, w: Work) {
        if self.busy.contains(&w) {
            self.again.insert(w);
        } else if self.queued.insert(w) {
            self.queue.push_back(w);
        }
    }

    fn dispatch(&mut self) {
        while self.inflight.len() < self.s.max_concurrent_writes {
            let Some(w) = self.queue.pop_front() else { break };
            self.queued.remove(&w);
            if let Some(fut) = self.render(w) {
                self.busy.insert(w);
                self.inflight.spawn(fut.map(move |o| (w, o)));
            }
        }
    }

    /// The request for a write, from the state as it is now (None: nothing to do any more).
    fn render(&mut self, w: Work) -> Option<BoxFuture<'static, Outcome>> {
        let c = self.client.clone();
        let t = now();
        if let Some(n) = w.node() {
            let node = &self.nodes[n as usize];
            if node.deleted {
                return None;
            }
            let name = node.name().to_string();
            return match w {
                Work::Lease(_) => node.kubelet_up().then(|| api::lease_renew(c, node.lease(self.s.lease_duration.as_secs(), t)).boxed()),
                Work::NodeStatus(_) => {
                    let patch = node.status_patch(t);
                    let node = &mut self.nodes[n as usize];
                    if node.kubelet_up() {
                        node.heartbeat = t;
                    }
                    Some(async move { api::node_status(c, &name, patch).await }.boxed())
                }
                Work::NodeTaints(_) => {
                    let taints = node.lifecycle_taints(t);
                    Some(async move { api::node_taints(c, &name, taints).await }.boxed())
                }
                Work::NodeResync(_) => Some(async move { api::node_pods(c, &name).await }.boxed()),
                _ => None,
            };
        }
        let (Work::PodStatus(r) | Work::PodDelete(r)) = w else { return None };
        let p = self.pod(r)?;
        let (ns, name, uid) = (p.ns.to_string(), p.name.to_string(), p.uid.to_string());
        match w {
            Work::PodStatus(_) if p.stage == Stage::Gone => None,
            Work::PodStatus(_) => {
                let patch = p.status_patch(self.nodes[p.node as usize].ip);
                Some(async move { api::pod_status(c, &ns, &name, patch).await }.boxed())
            }
            _ => Some(async move { api::pod_delete(c, &ns, &name, &uid).await }.boxed()),
        }
    }

    fn completed(&mut self, w: Work, out: Outcome) {
        self.busy.remove(&w);
        let failed = match out {
            Outcome::Failed(ref e) => {
                let n = self.retries.get(&w).copied().unwrap_or(0);
                if n == 4 {
                    tracing::warn!(?w, error = %e, "write keeps failing; retrying with back-off");
                } else {
                    tracing::debug!(?w, error = %e, "write failed");
                }
                true
            }
            Outcome::Conflict => matches!(w, Work::NodeTaints(_) | Work::PodStatus(_)),
            _ => false,
        };
        if failed {
            let n = self.retries.entry(w).or_default();
            *n += 1;
            let wait = Duration::from_millis(200 * (1u64 << (*n).min(7))).min(Duration::from_secs(30));
            self.again.remove(&w);
            self.timers.insert(Timer::Retry(w), wait);
            return;
        }
        self.retries.remove(&w);
        if matches!(w, Work::PodStatus(_)) && self.again.remove(&w) {
            // A newer state is waiting: write that before acting on this one.
            self.dirty(w);
            return;
        }
        match (w, out) {
            (Work::NodeStatus(n), Outcome::Ok) => self.nodes[n as usize].full_status_due = false,
            (Work::NodeStatus(n) | Work::Lease(n) | Work::NodeTaints(n), Outcome::NotFound) => {
                tracing::warn!(node = self.nodes[n as usize].name(), "node is gone; its kubelet stops until the simulator restarts");
                self.nodes[n as usize].deleted = true;
            }
            (Work::NodeResync(n), Outcome::Pods(list)) => self.resync(n, list),
            (Work::PodStatus(r), out) => self.pod_written(r, matches!(out, Outcome::NotFound)),
            (Work::PodDelete(r), _) => {
                if let Some(p) = self.pod_mut(r) {
                    p.delete_sent = true;
                }
                metrics::counter!("kplex_nodesim_pod_deletions_confirmed_total").increment(1);
            }
            _ => {}
        }
        if self.again.remove(&w) {
            self.dirty(w);
        }
    }

    fn timer(&mut self, t: Timer) {
        match t {
            Timer::Lease(n) => {
                self.timers.insert(Timer::Lease(n), self.s.lease_renew_interval());
                if self.nodes[n as usize].kubelet_up() {
                    self.dirty(Work::Lease(n));
                }
            }
            Timer::Report(n) => {
                self.timers.insert(Timer::Report(n), self.s.status_report_frequency);
                if self.nodes[n as usize].kubelet_up() {
                    self.dirty(Work::NodeStatus(n));
                }
            }
            Timer::Retry(w) => self.dirty(w),
            Timer::Pod(r, step) => self.pod_step(r, step),
        }
    }

    // ---- nodes ----

    fn node_event(&mut self, ev: Event<Node>) {
        match ev {
            Event::Apply(n) | Event::InitApply(n) => {
                let Some(&i) = n.metadata.name.as_ref().and_then(|name| self.node_idx.get(name)) else { return };
                let node = &self.nodes[i as usize];
                if node.deleted || n.metadata.uid.as_deref() != Some(node.uid.as_str()) {
                    return;
                }
                let mode = NodeMode::of(n.metadata.annotations.as_ref());
                self.set_node_mode(i, mode);
            }
            Event::Delete(n) => {
                if let Some(&i) = n.metadata.name.as_ref().and_then(|name| self.node_idx.get(name)) {
                    if n.metadata.uid.as_deref() == Some(self.nodes[i as usize].uid.as_str()) && !self.nodes[i as usize].deleted {
                        tracing::warn!(node = %self.nodes[i as usize].name(), "node deleted; its kubelet stops until the simulator restarts");
                        self.nodes[i as usize].deleted = true;
                    }
                }
            }
            Event::Init | Event::InitDone => {}
        }
    }

    /// A hook changed the node's health. The kubelet reports NotReady itself; a lost node's
    /// conditions, the lifecycle taints and its pods' Ready condition are what the node
    /// lifecycle controller would write once the node-monitor grace period passed (here at
    /// once).
    fn set_node_mode(&mut self, i: NodeId, mode: NodeMode) {
        let t = now();
        let was = self.nodes[i as usize].mode;
        if !self.nodes[i as usize].set_mode(mode, t) {
            return;
        }
        tracing::info!(node = %self.nodes[i as usize].name(), from = was.label(), to = mode.label(), "node health changed");
        self.dirty(Work::NodeStatus(i));
        self.dirty(Work::NodeTaints(i));
        let pods: Vec<PodRef> = self.nodes[i as usize].pods.iter().copied().collect();
        if mode == NodeMode::Lost {
            // MarkPodsNotReady: the lifecycle controller's only pod write.
            for r in pods {
                if let Some(p) = self.pod_mut(r) {
                    p.node_lost = true;
                    if p.refresh_conditions(t) {
                        self.dirty(Work::PodStatus(r));
                    }
                }
            }
            return;
        }
        if was == NodeMode::Lost {
            // The kubelet is back: renew at once, report its pods again, catch up on what
            // happened while it was away.
            self.dirty(Work::Lease(i));
            for r in pods {
                if let Some(p) = self.pod_mut(r) {
                    p.node_lost = false;
                    p.refresh_conditions(t);
                    self.dirty(Work::PodStatus(r));
                }
            }
            self.dirty(Work::NodeResync(i));
        }
        if mode != NodeMode::Lost {
            // Steps held back while the kubelet was away (or the network down) run now; a
            // sandbox on a still NotReady node parks again.
            for (r, step) in std::mem::take(&mut self.nodes[i as usize].parked) {
                self.timers.insert(Timer::Pod(r, step), Duration::ZERO);
            }
        }
    }

    /// The pods listed for a node whose kubelet came back: pods deleted meanwhile are dropped,
    /// the rest processed as if just seen.
    fn resync(&mut self, n: NodeId, list: Vec<Pod>) {
        let listed: HashSet<String> =
            list.iter().map(|p| format!("{}/{}", p.metadata.namespace.as_deref().unwrap_or(""), p.metadata.name.as_deref().unwrap_or(""))).collect();
        let gone: Vec<PodRef> =
            self.nodes[n as usize].pods.iter().copied().filter(|r| self.pod(*r).map(|p| !listed.contains(&p.key())).unwrap_or(false)).collect();
        for r in gone {
            self.remove_pod(r.slot);
        }
        for p in list {
            self.apply_pod(p);
        }
    }

    // ---- pod slots ----

    pub(crate) fn pod(&self, r: PodRef) -> Option<&SimPod> {
        if self.gens.get(r.slot as usize) != Some(&r.gen) {
            return None;
        }
        self.pods[r.slot as usize].as_ref()
    }

    pub(crate) fn pod_mut(&mut self, r: PodRef) -> Option<&mut SimPod> {
        if self.gens.get(r.slot as usize) != Some(&r.gen) {
            return None;
        }
        self.pods[r.slot as usize].as_mut()
    }

    pub(crate) fn pod_ref(&self, slot: u32) -> PodRef {
        PodRef { slot, gen: self.gens[slot as usize] }
    }

    pub(crate) fn insert_pod(&mut self, p: SimPod) -> PodRef {
        let key = p.key();
        let node = p.node;
        let slot = match self.free.pop() {
            Some(s) => {
                self.pods[s as usize] = Some(p);
                s
            }
            None => {
                self.pods.push(Some(p));
                self.gens.push(0);
                (self.pods.len() - 1) as u32
            }
        };
        self.pod_idx.insert(key, slot);
        let r = self.pod_ref(slot);
        self.nodes[node as usize].pods.insert(r);
        r
    }

    /// Forgets a pod: its IP and resources go back to the node.
    pub(crate) fn remove_pod(&mut self, slot: u32) {
        let r = self.pod_ref(slot);
        let Some(mut p) = self.pods[slot as usize].take() else { return };
        self.gens[slot as usize] = self.gens[slot as usize].wrapping_add(1);
        self.free.push(slot);
        if self.pod_idx.get(&p.key()) == Some(&slot) {
            self.pod_idx.remove(&p.key());
        }
        let node = &mut self.nodes[p.node as usize];
        node.pods.remove(&r);
        release(node, &mut p);
    }
}

/// Gives a pod's IP and resources back to its node, if it still holds them.
pub(crate) fn release(node: &mut SimNode, p: &mut SimPod) {
    if p.holding {
        p.holding = false;
        node.give_back(&p.shape.requests);
        if let (Some(ip), true) = (p.ip, p.ip_held) {
            node.ips.release(ip);
        }
    }
}

/// A node's offset within a period, in [0, 1): spread evenly, not clustered by index.
fn spread(i: u32) -> f64 {
    // The golden ratio sequence fills the interval evenly for any count.
    (i as f64 * 0.618_033_988_749_895).fract()
}

/// A watcher over the API (re-exported for the pod handler).
fn watcher<K>(api: Api<K>, cfg: watcher::Config) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, cfg)
}
