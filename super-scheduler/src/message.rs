//! The FailedScheduling message, built as kube-scheduler 1.33 builds it (`FitError.Error()` plus
//! DefaultPreemption's PostFilter message):
//!
//! `0/6 nodes are available: 2 Insufficient cpu, 4 node(s) didn't match Pod's node
//! affinity/selector. preemption: 0/6 nodes are available: 2 No preemption victims found for
//! incoming pod, 4 Preemption is not helpful for scheduling.`
//!
//! Reasons are counted over nodes and each "count reason" string is sorted as text (so
//! "10 ..." sorts before "2 ..."), exactly as upstream's `sortReasonsHistogram`. kplex never
//! preempts (one tenant's pods never evict another's), so the preemption part is what upstream
//! prints when it finds no victim: nodes rejected for a reason preemption could change get "No
//! preemption victims found for incoming pod", the others "Preemption is not helpful for
//! scheduling"; a pod with `preemptionPolicy: Never` gets "not eligible due to
//! preemptionPolicy=Never.".

use std::collections::BTreeMap;

use crate::filters::{Code, Failure};
use crate::pod::PodInfo;
use crate::state::ClusterState;

/// What the filters found (`framework.Diagnosis`).
#[derive(Debug, Default)]
pub struct Diagnosis {
    /// A PreFilter rejected the pod for every node: its message and code.
    pub prefilter: Option<(String, Code)>,
    /// The status of nodes a PreFilter left out (NodeAffinity's node-name narrowing).
    pub absent: Option<(String, Code)>,
    /// The first failing filter of each rejected node.
    pub failures: Vec<(usize, Failure)>,
}

fn histogram(counts: BTreeMap<String, usize>) -> String {
    let mut v: Vec<String> = counts.into_iter().map(|(r, c)| format!("{c} {r}")).collect();
    v.sort();
    v.join(", ")
}

/// The message for a pod no node fits; `n_all` is the number of nodes the tenant may use.
pub fn fit_error_message(st: &ClusterState, pod: &PodInfo, n_all: usize, diag: &Diagnosis) -> String {
    let mut msg = format!("0/{n_all} nodes are available:");
    let absent = n_all.saturating_sub(diag.failures.len());
    let absent_status = diag.prefilter.as_ref().or(diag.absent.as_ref());
    if let Some((m, _)) = &diag.prefilter {
        msg.push_str(&format!(" {m}."));
    } else {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (idx, f) in &diag.failures {
            if let Some(node) = st.nodes[*idx].info.as_ref() {
                for r in f.reasons(node, pod) {
                    *counts.entry(r).or_default() += 1;
                }
            }
        }
        if let (Some((reason, _)), true) = (&diag.absent, absent > 0) {
            *counts.entry(reason.clone()).or_default() += absent;
        }
        if !counts.is_empty() {
            msg.push_str(&format!(" {}.", histogram(counts)));
        }
    }
    if pod.preempt_never {
        msg.push_str(" preemption: not eligible due to preemptionPolicy=Never.");
        return msg;
    }
    let mut codes: Vec<Code> = diag.failures.iter().map(|(_, f)| f.code()).collect();
    if let Some((_, code)) = absent_status {
        codes.extend(std::iter::repeat_n(*code, absent));
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in codes {
        let r = match c {
            Code::UnschedulableAndUnresolvable => "Preemption is not helpful for scheduling",
            Code::Unschedulable => "No preemption victims found for incoming pod",
        };
        *counts.entry(r.to_string()).or_default() += 1;
    }
    msg.push_str(&format!(" preemption: 0/{n_all} nodes are available: {}.", histogram(counts)));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_sorts_as_text() {
        let counts: BTreeMap<String, usize> = [("node(s) were unschedulable".to_string(), 2), ("Insufficient cpu".to_string(), 10)].into_iter().collect();
        assert_eq!(histogram(counts), "10 Insufficient cpu, 2 node(s) were unschedulable");
    }
}
