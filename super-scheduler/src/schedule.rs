//! One scheduling decision, as kube-scheduler's `schedulePod` makes it, for one tenant's pod:
//! the tenant's quota (a kplex PreFilter), NodeAffinity's PreFilter (`matchFields` on node
//! names), the filters in upstream order over the nodes the tenant may use (stopping once
//! `numFeasibleNodesToFind` nodes fit, starting where the previous search stopped), the scores
//! with upstream's weights and normalisation, and a deterministic choice among the best. A
//! placed pod is reserved on its node at once. An unschedulable pod gets kube-scheduler's
//! FailedScheduling message.

use std::time::{Duration, Instant};

use crate::classes::ClassCache;
use crate::filters::{fit_filter, ports_filter, Code};
use crate::interpod;
use crate::labels::{Labels, Selector};
use crate::message::{fit_error_message, Diagnosis};
use crate::pod::PodInfo;
use crate::scores::{self, *};
use crate::spread;
use crate::state::ClusterState;

/// Settings of the algorithm.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// `percentageOfNodesToScore`; 0 is upstream's adaptive default (50% minus 1% per 125 nodes,
    /// at least 5%, at least 100 nodes).
    pub percentage_of_nodes_to_score: u32,
    /// How long a reservation waits for its super pod.
    pub reservation_ttl: Duration,
    /// InterPodAffinity's `hardPodAffinityWeight` (default 1).
    pub hard_pod_affinity_weight: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { percentage_of_nodes_to_score: 0, reservation_ttl: Duration::from_secs(300), hard_pod_affinity_weight: 1 }
    }
}

/// A tenant pod to place.
#[derive(Debug, Clone)]
pub struct PodRequest {
    pub tenant: String,
    pub pod: PodInfo,
    /// The tenant's namespaces and their labels (for namespace selectors).
    pub namespaces: Vec<(String, Labels)>,
    /// The selector for system default spreading (None: no default spreading).
    pub default_spread_selector: Option<Selector>,
}

/// What became of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Reserved on (or already on) a node.
    Placed { node: String, existing: bool },
    /// No node: the PodScheduled reason and the FailedScheduling message.
    Unschedulable { reason: &'static str, message: String, quota: bool },
}

/// The scheduler: the cluster state and the algorithm over it.
#[derive(Debug)]
pub struct Scheduler {
    pub state: ClusterState,
    pub config: SchedulerConfig,
    next_start: usize,
    classes: ClassCache,
}

/// `numFeasibleNodesToFind`.
pub fn num_feasible_nodes_to_find(percentage: u32, n: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if n < MIN_FEASIBLE {
        return n;
    }
    let pct = if percentage == 0 { (50 - (n / 125) as i64).max(5) as usize } else { percentage.min(100) as usize };
    (n * pct / 100).max(MIN_FEASIBLE)
}

impl Scheduler {
    pub fn new(state: ClusterState, config: SchedulerConfig) -> Scheduler {
        Scheduler { state, config, next_start: 0, classes: ClassCache::default() }
    }

    /// Decides where a tenant pod goes and reserves it there.
    pub fn schedule(&mut self, req: &PodRequest, now: Instant) -> Outcome {
        let tenant = req.tenant.as_str();
        if let Some((node, _)) = self.state.placement_of(tenant, &req.pod.uid) {
            if let Some(n) = self.state.nodes[node].info.as_ref() {
                return Outcome::Placed { node: n.name.clone(), existing: true };
            }
        }
        // Namespace selectors in the pod's terms are resolved against the tenant's namespaces.
        let pod = if interpod::has_namespace_selectors(&req.pod) {
            let mut p = req.pod.clone();
            interpod::resolve_namespaces(&mut p, &req.namespaces);
            std::borrow::Cow::Owned(p)
        } else {
            std::borrow::Cow::Borrowed(&req.pod)
        };
        let pod: &PodInfo = &pod;
        let nodes = self.state.visible_nodes(tenant);
        if nodes.is_empty() {
            return Outcome::Unschedulable { reason: "Unschedulable", message: "no nodes available to schedule pods".into(), quota: false };
        }
        let n_all = nodes.len();
        let unschedulable = |diag: Diagnosis, st: &ClusterState, quota: bool| Outcome::Unschedulable {
            reason: "Unschedulable",
            message: fit_error_message(st, pod, n_all, &diag),
            quota,
        };

        // PreFilter: the tenant's quota, then NodeAffinity's node-name narrowing.
        if let Some(t) = self.state.tenant(tenant) {
            if let Some(msg) = t.policy.check_quota(tenant, &pod.requests, &t.used, t.pod_count) {
                let diag = Diagnosis { prefilter: Some((msg, Code::UnschedulableAndUnresolvable)), ..Default::default() };
                return unschedulable(diag, &self.state, true);
            }
        }
        let mut diag = Diagnosis::default();
        let mut candidates = std::borrow::Cow::Borrowed(&nodes[..]);
        if let Some(names) = node_name_prefilter(pod) {
            match names {
                None => {
                    diag.prefilter = Some(("pod affinity terms conflict".into(), Code::UnschedulableAndUnresolvable));
                    return unschedulable(diag, &self.state, false);
                }
                Some(names) => {
                    candidates = std::borrow::Cow::Owned(nodes.iter().copied().filter(|&i| names.iter().any(|n| *n == self.state.node(i).name)).collect());
                    diag.absent = Some(("node(s) didn't satisfy plugin(s) [NodeAffinity]".into(), Code::UnschedulableAndUnresolvable));
                }
            }
        }
        let ns_labels = req.namespaces.iter().find(|(n, _)| *n == pod.namespace).map(|(_, l)| l.clone()).unwrap_or_default();
        let class = self.classes.class_of(self.state.node_generation(), pod);
        let spread_state = spread::FilterState::new(&self.state, tenant, pod, &nodes);
        let interpod_state = interpod::FilterState::new(&self.state, tenant, pod, &ns_labels);

        // Filter, from where the last search stopped, until enough nodes fit.
        let want = num_feasible_nodes_to_find(self.config.percentage_of_nodes_to_score, candidates.len());
        let mut feasible = Vec::new();
        let mut processed = 0;
        let len = candidates.len();
        for k in 0..len {
            if feasible.len() >= want {
                break;
            }
            processed += 1;
            let idx = candidates[(self.next_start + k) % len];
            let slot = &self.state.nodes[idx];
            let node = slot.info.as_ref().expect("visible nodes have info");
            let failure = self
                .classes
                .failure(class, idx, node, pod)
                .or_else(|| ports_filter(slot, pod))
                .or_else(|| fit_filter(node, slot, pod))
                .or_else(|| spread_state.as_ref().and_then(|s| s.filter(pod, &node.vlabels)))
                .or_else(|| interpod_state.as_ref().and_then(|s| s.filter(pod, &node.vlabels)));
            match failure {
                None => feasible.push(idx),
                Some(f) => diag.failures.push((idx, f)),
            }
        }
        if len > 0 {
            self.next_start = (self.next_start + processed) % len;
        }
        if feasible.is_empty() {
            return unschedulable(diag, &self.state, false);
        }
        let chosen = if feasible.len() == 1 {
            feasible[0]
        } else {
            let scored = Scoring { tenant, pod, class, default_sel: req.default_spread_selector.as_ref(), all: &nodes, ns_labels: &ns_labels };
            pick(&self.state, &self.config, &mut self.classes, &scored, &feasible)
        };
        let name = self.state.node(chosen).name.clone();
        let expires = now + self.config.reservation_ttl;
        self.state.reserve(tenant, req.pod.clone(), chosen, expires);
        Outcome::Placed { node: name, existing: false }
    }

    /// Drops a reservation (the syncer will not use it).
    pub fn release(&mut self, tenant: &str, uid: &str) -> bool {
        self.state.release(tenant, uid)
    }
}

/// What the scores need besides the state.
struct Scoring<'a> {
    tenant: &'a str,
    pod: &'a PodInfo,
    class: usize,
    default_sel: Option<&'a Selector>,
    all: &'a [usize],
    ns_labels: &'a Labels,
}

/// Scores the feasible nodes and picks the best (ties: the smallest stable hash).
fn pick(st: &ClusterState, config: &SchedulerConfig, classes: &mut ClassCache, s: &Scoring, feasible: &[usize]) -> usize {
    let Scoring { tenant, pod, class, default_sel, all, ns_labels } = *s;
    let n = feasible.len();
    let mut total = vec![0i64; n];
    let mut add = |scores: &[i64], weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    let (mut taint, mut aff): (Vec<i64>, Vec<i64>) = feasible.iter().map(|&i| classes.scores(class, i, st.node(i), pod)).unzip();
    default_normalize(&mut taint, true);
    add(&taint, WEIGHT_TAINT);
    if !pod.preferred_node_affinity.is_empty() {
        default_normalize(&mut aff, false);
        add(&aff, WEIGHT_NODE_AFFINITY);
    }
    let fit: Vec<i64> = feasible.iter().map(|&i| least_allocated(st.node(i), &st.nodes[i], pod)).collect();
    add(&fit, WEIGHT_FIT);
    if let Some(sp) = spread::ScoreState::new(st, tenant, pod, default_sel, all, feasible) {
        let raw: Vec<Option<i64>> = feasible.iter().map(|&i| sp.score(i, &st.node(i).vlabels)).collect();
        add(&spread::normalize(&raw), WEIGHT_SPREAD);
    }
    if let Some(ip) = interpod::ScoreState::new(st, tenant, pod, ns_labels, config.hard_pod_affinity_weight) {
        let mut raw: Vec<i64> = feasible.iter().map(|&i| ip.score(&st.node(i).vlabels)).collect();
        interpod::normalize(&mut raw);
        add(&raw, WEIGHT_INTERPOD);
    }
    let balanced: Option<Vec<i64>> = feasible.iter().map(|&i| balanced_allocation(st.node(i), &st.nodes[i], pod)).collect();
    if let Some(b) = balanced {
        add(&b, WEIGHT_BALANCED);
    }
    let mut best = 0;
    let mut best_hash = scores::tie_break(&pod.uid, &st.node(feasible[0]).name);
    for k in 1..n {
        if total[k] < total[best] {
            continue;
        }
        let h = scores::tie_break(&pod.uid, &st.node(feasible[k]).name);
        if total[k] > total[best] || h < best_hash {
            best = k;
            best_hash = h;
        }
    }
    feasible[best]
}

/// NodeAffinity's PreFilter: when every required term names nodes by `metadata.name In`, the
/// union of those names (None inside: the terms conflict); None when any node may do.
fn node_name_prefilter(pod: &PodInfo) -> Option<Option<Vec<String>>> {
    let terms = &pod.required_node_affinity.as_ref()?.terms;
    if terms.is_empty() {
        return None;
    }
    let mut all: Vec<String> = Vec::new();
    for t in terms {
        let mut names: Option<Vec<String>> = None;
        for (is_in, v) in &t.fields {
            if *is_in && !v.starts_with('\0') {
                names = Some(match names {
                    None => vec![v.clone()],
                    Some(prev) => prev.into_iter().filter(|x| x == v).collect(),
                });
            }
        }
        // A term without a name requirement admits every node: no narrowing.
        let names = names?;
        for n in names {
            if !all.contains(&n) {
                all.push(n);
            }
        }
    }
    Some(if all.is_empty() { None } else { Some(all) })
}
