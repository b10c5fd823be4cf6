//! The gRPC service the syncer calls (`kplex.scheduler.v1.SuperScheduler`), over the shared
//! scheduler state. Decisions are made one pod at a time under one lock, each reserving its node
//! before the next, so concurrent calls never overcommit a node; the lock is taken per pod, so
//! watch events interleave with a long batch. Pods are parsed outside the lock.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::Stream;
use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tonic::{Request, Response, Status};

use crate::labels::{Labels, Selector};
use crate::node::VirtualNode;
use crate::pod::PodInfo;
use crate::policy::TenantPolicy;
use crate::proto::{self, super_scheduler_server::SuperScheduler};
use crate::schedule::{Outcome, PodRequest, Scheduler};
use crate::state::ClusterState;

/// State shared by the watchers, the service and the reservation expiry.
pub struct Shared {
    pub sched: Mutex<Scheduler>,
    /// The cluster generation, for WatchChanges.
    pub changes: watch::Sender<u64>,
    /// Wakes the expiry task when reservations were made.
    pub reserved: Notify,
    /// Policies from `--policy-file` (VirtualClusters override them).
    pub file_policies: BTreeMap<String, TenantPolicy>,
    /// The VirtualClusters that set a policy.
    pub vc_names: Mutex<std::collections::BTreeSet<String>>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Shared {
    pub fn new(sched: Scheduler, file_policies: BTreeMap<String, TenantPolicy>) -> Shared {
        let mut sched = sched;
        for (name, p) in &file_policies {
            sched.state.set_policy(name, p.clone());
        }
        let (changes, _) = watch::channel(sched.state.generation);
        Shared { sched: Mutex::new(sched), changes, reserved: Notify::new(), file_policies, vc_names: Default::default(), metrics: None }
    }

    /// Changes the state and tells watchers if the generation moved.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut ClusterState) -> R) -> R {
        let (r, gen, counts) = {
            let mut s = self.sched.lock();
            let r = f(&mut s.state);
            (r, s.state.generation, s.state.counts())
        };
        self.changes.send_if_modified(|g| std::mem::replace(g, gen) != gen);
        gauges(counts);
        r
    }
}

fn gauges((nodes, placed, reserved): (usize, usize, usize)) {
    {
        metrics::gauge!("kplex_scheduler_nodes").set(nodes as f64);
        metrics::gauge!("kplex_scheduler_placed_pods").set(placed as f64);
        metrics::gauge!("kplex_scheduler_reservations").set(reserved as f64);
    }
}

impl Shared {
    /// Drops lapsed reservations for the life of the process, sleeping until the next one lapses.
    pub async fn expire_reservations(self: Arc<Self>) {
        loop {
            let next = self.sched.lock().state.next_expiry();
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {
                    let n = self.with_state(|st| st.expire(Instant::now()));
                    if n > 0 {
                        tracing::info!("{n} reservation(s) lapsed without a super pod");
                    }
                }
                _ = self.reserved.notified() => {}
            }
        }
    }
}

fn virtual_node_proto(v: VirtualNode) -> proto::VirtualNode {
    proto::VirtualNode {
        name: v.name,
        labels: v.labels.into_iter().collect(),
        taints: v.taints.into_iter().map(|t| proto::Taint { key: t.key, value: t.value, effect: t.effect }).collect(),
        capacity: v.capacity.into_iter().collect(),
        allocatable: v.allocatable.into_iter().collect(),
        unschedulable: v.unschedulable,
        ready: v.ready,
    }
}

/// A request pod read into the core's terms, or the reason it could not be.
fn parse(p: &proto::PodToSchedule) -> (proto::PodRef, Result<PodRequest, String>) {
    let pod: Result<Pod, String> = serde_json::from_slice(&p.pod).map_err(|e| format!("the pod is not a valid Pod object: {e}"));
    let meta = pod.as_ref().ok().map(|p| p.metadata.clone()).unwrap_or_default();
    let r = proto::PodRef {
        tenant: p.tenant.clone(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
    };
    let req = pod.and_then(|pod| {
        if p.tenant.is_empty() {
            return Err("the request names no tenant".into());
        }
        if r.uid.is_empty() {
            return Err("the pod has no metadata.uid".into());
        }
        let info = PodInfo::from_pod(&pod, None)?;
        let default_spread_selector = if p.default_spread_selector.is_empty() {
            None
        } else {
            let ls = serde_json::from_str(&p.default_spread_selector).map_err(|e| format!("default_spread_selector: {e}"))?;
            Some(Selector::from_label_selector(Some(&ls)).ok_or("default_spread_selector does not parse")?)
        };
        let namespaces = p.namespaces.iter().map(|n| (n.name.clone(), n.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<Labels>())).collect();
        Ok(PodRequest { tenant: p.tenant.clone(), pod: info, namespaces, default_spread_selector })
    });
    (r, req)
}

/// Decides a batch, one pod at a time (blocking: run it off the async runtime).
pub fn decide(shared: &Shared, pods: &[proto::PodToSchedule]) -> (Vec<proto::Decision>, u64) {
    let parsed: Vec<_> = pods.iter().map(parse).collect();
    let mut out = Vec::with_capacity(parsed.len());
    let mut gen = 0;
    let mut placed_any = false;
    for (pod_ref, req) in parsed {
        let start = Instant::now();
        let tenant = pod_ref.tenant.clone();
        let result = match req {
            Err(message) => {
                metrics::counter!("kplex_scheduler_unschedulable_total", "tenant" => tenant.clone(), "cause" => "error").increment(1);
                proto::decision::Result::Unschedulable(proto::Unschedulable { reason: "SchedulerError".into(), message })
            }
            Ok(req) => {
                let mut s = shared.sched.lock();
                let outcome = s.schedule(&req, start);
                gen = s.state.generation;
                match outcome {
                    Outcome::Placed { node, existing } => {
                        placed_any |= !existing;
                        let idx = s.state.node_index(&node).expect("placed on a known node");
                        let vnode = virtual_node_proto(VirtualNode::from(s.state.node(idx)));
                        proto::decision::Result::Placed(proto::Placement { node_name: node, virtual_node: Some(vnode), existing })
                    }
                    Outcome::Unschedulable { reason, message, quota } => {
                        let cause = if quota { "quota" } else { "filters" };
                        metrics::counter!("kplex_scheduler_unschedulable_total", "tenant" => tenant.clone(), "cause" => cause).increment(1);
                        proto::decision::Result::Unschedulable(proto::Unschedulable { reason: reason.into(), message })
                    }
                }
            }
        };
        let label = if matches!(result, proto::decision::Result::Placed(_)) { "scheduled" } else { "unschedulable" };
        metrics::counter!("kplex_scheduler_decisions_total", "result" => label).increment(1);
        metrics::histogram!("kplex_scheduler_decision_duration_seconds").record(start.elapsed().as_secs_f64());
        out.push(proto::Decision { pod: Some(pod_ref), result: Some(result) });
    }
    if placed_any {
        shared.reserved.notify_one();
    }
    gauges(shared.sched.lock().state.counts());
    if let Some(h) = &shared.metrics {
        h.run_upkeep();
    }
    (out, gen)
}

/// The tonic service.
#[derive(Clone)]
pub struct Service(pub Arc<Shared>);

#[tonic::async_trait]
impl SuperScheduler for Service {
    async fn schedule(&self, req: Request<proto::ScheduleRequest>) -> Result<Response<proto::ScheduleResponse>, Status> {
        let pods = req.into_inner().pods;
        metrics::histogram!("kplex_scheduler_batch_size").record(pods.len() as f64);
        let shared = self.0.clone();
        let (decisions, generation) =
            tokio::task::spawn_blocking(move || decide(&shared, &pods)).await.map_err(|e| Status::internal(format!("scheduling failed: {e}")))?;
        Ok(Response::new(proto::ScheduleResponse { decisions, generation }))
    }

    async fn release(&self, req: Request<proto::ReleaseRequest>) -> Result<Response<proto::ReleaseResponse>, Status> {
        let pods = req.into_inner().pods;
        let released = self.0.with_state(|st| pods.iter().filter(|p| st.release(&p.tenant, &p.uid)).count());
        Ok(Response::new(proto::ReleaseResponse { released: released as u32 }))
    }

    async fn get_virtual_nodes(&self, req: Request<proto::GetVirtualNodesRequest>) -> Result<Response<proto::GetVirtualNodesResponse>, Status> {
        let req = req.into_inner();
        let s = self.0.sched.lock();
        let nodes = req
            .node_names
            .iter()
            .filter_map(|n| s.state.node_index(n))
            .map(|i| s.state.node(i))
            .filter(|n| s.state.tenant(&req.tenant).map(|t| t.policy.clone()).unwrap_or_default().admits(&req.tenant, n))
            .map(|n| virtual_node_proto(VirtualNode::from(n)))
            .collect();
        Ok(Response::new(proto::GetVirtualNodesResponse { nodes }))
    }

    type WatchChangesStream = Pin<Box<dyn Stream<Item = Result<proto::ClusterChange, Status>> + Send>>;

    async fn watch_changes(&self, _req: Request<proto::WatchChangesRequest>) -> Result<Response<Self::WatchChangesStream>, Status> {
        let mut rx = self.0.changes.subscribe();
        let stream = async_stream(move |tx| async move {
            loop {
                let generation = *rx.borrow_and_update();
                if tx.send(Ok(proto::ClusterChange { generation })).await.is_err() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// A stream fed by a task through a small channel (a slow reader makes changes coalesce).
fn async_stream<T, F, Fut>(f: F) -> impl Stream<Item = T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::VirtualNodePolicy;
    use crate::SchedulerConfig;
    use serde_json::json;

    #[test]
    fn concurrent_batches_never_overcommit_a_node() {
        let mut st = ClusterState::new(VirtualNodePolicy::default());
        for i in 0..5 {
            st.upsert_node(
                &serde_json::from_value(json!({"metadata": {"name": format!("n{i}"), "labels": {"topology.kubernetes.io/zone": "a"}},
                    "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}, "conditions": [{"type": "Ready", "status": "True"}]}}))
                .unwrap(),
            );
        }
        let shared = Arc::new(Shared::new(Scheduler::new(st, SchedulerConfig::default()), Default::default()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let pods: Vec<proto::PodToSchedule> = (0..10)
                        .map(|i| {
                            let pod = json!({"metadata": {"name": format!("p{t}-{i}"), "namespace": "ns", "uid": format!("u{t}-{i}")},
                                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "700m"}}}]}});
                            proto::PodToSchedule { tenant: format!("t{}", t % 2), pod: serde_json::to_vec(&pod).unwrap(), ..Default::default() }
                        })
                        .collect();
                    decide(&shared, &pods).0
                })
            })
            .collect();
        let decisions: Vec<proto::Decision> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let mut per_node: BTreeMap<String, i64> = BTreeMap::new();
        for d in &decisions {
            if let Some(proto::decision::Result::Placed(p)) = &d.result {
                *per_node.entry(p.node_name.clone()).or_default() += 700;
            }
        }
        // Five nodes of 2 cpu hold two 700m pods each: ten of the forty, never a third on a node.
        assert_eq!(per_node.values().sum::<i64>(), 10 * 700, "{per_node:?}");
        assert!(per_node.values().all(|&m| m <= 2000), "{per_node:?}");
        let s = shared.sched.lock();
        assert!(s.state.nodes.iter().all(|n| n.requested.milli_cpu <= 2000));
    }

    #[test]
    fn unreadable_pods_get_a_scheduler_error() {
        let shared = Shared::new(Scheduler::new(ClusterState::default(), SchedulerConfig::default()), Default::default());
        let bad = proto::PodToSchedule { tenant: "t".into(), pod: b"{not json".to_vec(), ..Default::default() };
        let no_uid = proto::PodToSchedule { tenant: "t".into(), pod: br#"{"metadata": {"name": "p"}}"#.to_vec(), ..Default::default() };
        let (d, _) = decide(&shared, &[bad, no_uid]);
        for d in d {
            let Some(proto::decision::Result::Unschedulable(u)) = d.result else { panic!("{d:?}") };
            assert_eq!(u.reason, "SchedulerError");
        }
    }
}
