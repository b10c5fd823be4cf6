//! Equivalence classes of pods for the parts of scheduling that depend on the node and the pod
//! spec alone: the static filters (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity)
//! and the static scores (intolerable PreferNoSchedule taints, preferred node affinity). Replicas
//! of one workload share a class, so these are computed once per node and class, not once per
//! node and pod (kube-scheduler once had such an equivalence cache). A class holds its results
//! for every node; the cache is dropped whenever a node changes.

use std::hash::BuildHasher;
use std::sync::Arc;

use crate::filters::{static_filters, Failure};
use crate::labels::{Map, NodeSelector, NodeTerm, Selector};
use crate::pod::{PodInfo, Toleration};
use crate::scores::{intolerable_prefer_no_schedule, preferred_node_affinity};
use crate::state::ClusterState;

/// The parts of a pod spec the static filters and scores read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Signature {
    node_name: Option<String>,
    node_selector: Option<Selector>,
    required: Option<NodeSelector>,
    preferred: Vec<(i32, NodeTerm)>,
    tolerations: Vec<Toleration>,
}

/// Hashes the signature fields of a pod without copying them (the same hash as `Signature`'s).
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

/// The static results of one class, indexed by node slot.
#[derive(Debug)]
pub struct Class {
    pub failures: Vec<Option<Failure>>,
    /// Raw TaintToleration score (intolerable PreferNoSchedule taints).
    pub taint: Vec<i64>,
    /// Raw NodeAffinity score (weights of matching preferred terms).
    pub preferred: Vec<i64>,
}

/// The classes seen since the last node change.
#[derive(Debug, Default)]
pub struct ClassCache {
    node_gen: u64,
    classes: Map<u64, Vec<(Signature, Arc<Class>)>>,
    len: usize,
}

/// More classes than this and the cache starts over (bounds memory: a class is a few bytes per
/// node).
const MAX_CLASSES: usize = 512;

impl ClassCache {
    /// The class of the pod, computed over every node if new.
    pub fn get(&mut self, st: &ClusterState, pod: &PodInfo) -> Arc<Class> {
        if self.node_gen != st.node_generation() || self.len >= MAX_CLASSES {
            self.classes.clear();
            self.len = 0;
            self.node_gen = st.node_generation();
        }
        let hash = hash_of(pod);
        if let Some((_, c)) = self.classes.get(&hash).and_then(|v| v.iter().find(|(s, _)| s.is_of(pod))) {
            return c.clone();
        }
        let n = st.nodes.len();
        let mut class = Class { failures: vec![None; n], taint: vec![0; n], preferred: vec![0; n] };
        for (i, slot) in st.nodes.iter().enumerate() {
            if let Some(node) = &slot.info {
                class.failures[i] = static_filters(node, pod);
                class.taint[i] = intolerable_prefer_no_schedule(node, pod);
                if !pod.preferred_node_affinity.is_empty() {
                    class.preferred[i] = preferred_node_affinity(node, pod);
                }
            }
        }
        let class = Arc::new(class);
        self.classes.entry(hash).or_default().push((Signature::of(pod), class.clone()));
        self.len += 1;
        class
    }
}
