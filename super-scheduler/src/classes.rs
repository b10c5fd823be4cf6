//! Equivalence classes of pods for the parts of scheduling that depend on the node and the pod
//! spec alone: the static filters (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity)
//! and the static scores (intolerable PreferNoSchedule taints, preferred node affinity). Replicas
//! of one workload share a class, so these are computed once per node and class, not once per
//! node and pod (kube-scheduler once had such an equivalence cache). Results are filled in
//! lazily, node by node, as searches reach them; the cache is dropped whenever a node changes.

use std::hash::BuildHasher;

use crate::filters::{static_filters, Failure};
use crate::labels::{Map, NodeSelector, NodeTerm, Selector};
use crate::node::NodeInfo;
use crate::pod::{PodInfo, Toleration};
use crate::scores::{intolerable_prefer_no_schedule, preferred_node_affinity};

/// The parts of a pod spec the static filters and scores read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    node_name: Option<String>,
    node_selector: Option<Selector>,
    required: Option<NodeSelector>,
    preferred: Vec<(i32, NodeTerm)>,
    tolerations: Vec<Toleration>,
}

/// Hashes the signature fields of a pod without copying them.
fn hash_of(pod: &PodInfo) -> u64 {
    foldhash::fast::FixedState::default().hash_one((
        &pod.node_name,
        &pod.node_selector,
        &pod.required_node_affinity,
        &pod.preferred_node_affinity,
        &pod.tolerations,
    ))
}

impl Signature {
    fn is_of(&self, pod: &PodInfo) -> bool {
        self.node_name == pod.node_name
            && self.node_selector == pod.node_selector
            && self.required == pod.required_node_affinity
            && self.preferred == pod.preferred_node_affinity
            && self.tolerations == pod.tolerations
    }

    fn of(pod: &PodInfo) -> Signature {
        Signature {
            node_name: pod.node_name.clone(),
            node_selector: pod.node_selector.clone(),
            required: pod.required_node_affinity.clone(),
            preferred: pod.preferred_node_affinity.clone(),
            tolerations: pod.tolerations.clone(),
        }
    }
}

/// A node's static results for one class.
#[derive(Debug, Clone, Copy)]
struct Entry {
    failure: Option<Failure>,
    /// Raw TaintToleration score (intolerable PreferNoSchedule taints).
    taint: i64,
    /// Raw NodeAffinity score (weights of matching preferred terms).
    preferred: i64,
}

/// The static results of one class, by node slot, filled in as nodes are reached.
#[derive(Debug, Default)]
struct Class {
    entries: Vec<Option<Entry>>,
}

/// The classes seen since the last node change.
#[derive(Debug, Default)]
pub struct ClassCache {
    node_gen: u64,
    index: Map<u64, Vec<(Signature, usize)>>,
    classes: Vec<Class>,
}

/// More classes than this and the cache starts over (bounds memory: a class is a few bytes per
/// node it was evaluated on).
const MAX_CLASSES: usize = 512;

impl ClassCache {
    /// The class of the pod (a handle for `entry`).
    pub fn class_of(&mut self, node_gen: u64, pod: &PodInfo) -> usize {
        if self.node_gen != node_gen || self.classes.len() >= MAX_CLASSES {
            self.index.clear();
            self.classes.clear();
            self.node_gen = node_gen;
        }
        let hash = hash_of(pod);
        if let Some((_, c)) = self.index.get(&hash).and_then(|v| v.iter().find(|(s, _)| s.is_of(pod))) {
            return *c;
        }
        self.classes.push(Class::default());
        let id = self.classes.len() - 1;
        self.index.entry(hash).or_default().push((Signature::of(pod), id));
        id
    }

    fn entry(&mut self, class: usize, idx: usize, node: &NodeInfo, pod: &PodInfo) -> Entry {
        let entries = &mut self.classes[class].entries;
        if entries.len() <= idx {
            entries.resize(idx + 1, None);
        }
        *entries[idx].get_or_insert_with(|| Entry {
            failure: static_filters(node, pod),
            taint: intolerable_prefer_no_schedule(node, pod),
            preferred: if pod.preferred_node_affinity.is_empty() { 0 } else { preferred_node_affinity(node, pod) },
        })
    }

    /// The first static filter the node fails for the class's pods.
    pub fn failure(&mut self, class: usize, idx: usize, node: &NodeInfo, pod: &PodInfo) -> Option<Failure> {
        self.entry(class, idx, node, pod).failure
    }

    /// The raw TaintToleration and NodeAffinity scores of the node for the class's pods.
    pub fn scores(&mut self, class: usize, idx: usize, node: &NodeInfo, pod: &PodInfo) -> (i64, i64) {
        let e = self.entry(class, idx, node, pod);
        (e.taint, e.preferred)
    }
}
