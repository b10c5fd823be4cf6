//! Which pods a ReplicaSet deletes first when it has too many (`getPodsToDelete` with
//! `controller.ActivePodsWithRanks`, LogarithmicScaleDown and PodDeletionCost on, as in v1.33):
//!
//! 1. unassigned (no `spec.nodeName`) before assigned;
//! 2. Pending before Unknown before Running;
//! 3. not ready before ready;
//! 4. lower `controller.kubernetes.io/pod-deletion-cost` first;
//! 5. more pods of the same family on its node (doubled up) first;
//! 6. both ready: ready for a shorter time first, times compared on a log2 scale, ties within a
//!    scale step broken by UID (a pseudo-random but stable choice);
//! 7. more container restarts (the maximum over containers) first;
//! 8. created more recently first, on the same log2 scale, ties broken by UID.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::controllers::podutil;
use crate::meta;

/// The annotation ranking pods of equal standing (`controller.kubernetes.io/pod-deletion-cost`).
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The `diff` pods of `pods` to delete first; `related` are the pods of the ReplicaSet's whole
/// family (the ReplicaSets with the same controller), used to spot pods doubled up on a node.
pub fn pods_to_delete(
    mut pods: Vec<Arc<Value>>,
    related: &[Arc<Value>],
    diff: usize,
    now: DateTime<Utc>,
) -> Vec<Arc<Value>> {
    if diff < pods.len() {
        let mut on_node: HashMap<&str, usize> = HashMap::new();
        for p in related.iter().filter(|p| podutil::is_active(p)) {
            *on_node.entry(node(p)).or_default() += 1;
        }
        let mut ranked: Vec<Ranked> = pods
            .iter()
            .map(|p| Ranked::new(p.clone(), on_node.get(node(p)).copied().unwrap_or(0), now))
            .collect();
        merge_sort_by(&mut ranked, &|a, b| a.less(b));
        pods = ranked.into_iter().map(|r| r.pod).collect();
    }
    pods.truncate(diff);
    pods
}

fn node(p: &Value) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or("")
}

/// One pod with everything the ordering looks at, extracted once.
struct Ranked {
    pod: Arc<Value>,
    assigned: bool,
    phase: u8,
    ready: bool,
    cost: i32,
    rank: usize,
    /// When the pod became ready (None: not ready, or no time recorded: Go's zero time).
    ready_since: Option<DateTime<Utc>>,
    restarts: i64,
    created: Option<DateTime<Utc>>,
    uid: String,
    now: DateTime<Utc>,
}

impl Ranked {
    fn new(pod: Arc<Value>, rank: usize, now: DateTime<Utc>) -> Ranked {
        let ready = podutil::is_ready(&pod);
        let ready_since = if ready {
            podutil::condition(&pod, "Ready")
                .and_then(|c| c["lastTransitionTime"].as_str())
                .and_then(meta::parse_time)
        } else {
            None
        };
        Ranked {
            assigned: !node(&pod).is_empty(),
            phase: match podutil::phase(&pod) {
                "Unknown" => 1,
                "Running" => 2,
                _ => 0,
            },
            ready,
            cost: deletion_cost(&pod),
            rank,
            ready_since,
            restarts: max_restarts(&pod),
            created: pod["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(meta::parse_time),
            uid: meta::uid(&pod).to_string(),
            pod,
            now,
        }
    }

    /// True if `self` should be deleted before `o` (`ActivePodsWithRanks.Less`).
    fn less(&self, o: &Ranked) -> bool {
        if self.assigned != o.assigned {
            return !self.assigned;
        }
        if self.phase != o.phase {
            return self.phase < o.phase;
        }
        if self.ready != o.ready {
            return !self.ready;
        }
        if self.cost != o.cost {
            return self.cost < o.cost;
        }
        if self.rank != o.rank {
            return self.rank > o.rank;
        }
        if self.ready && o.ready && self.ready_since != o.ready_since {
            return self.newer(self.ready_since, o.ready_since, o);
        }
        if self.restarts != o.restarts {
            return self.restarts > o.restarts;
        }
        if self.created != o.created {
            return self.newer(self.created, o.created, o);
        }
        false
    }

    /// Whether time `a` (of self) counts as later than `b` (of o): a missing time comes first,
    /// then a log2 comparison of the ages, ties broken by UID.
    fn newer(&self, a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>, o: &Ranked) -> bool {
        let (Some(a), Some(b)) = (a, b) else {
            return a.is_none();
        };
        let diff = log_rank(self.now, a) - log_rank(self.now, b);
        if diff == 0 {
            return self.uid < o.uid;
        }
        diff < 0
    }
}

/// floor(log2(age in nanoseconds)), -1 for no or negative age (`logarithmicRankDiff`).
fn log_rank(now: DateTime<Utc>, t: DateTime<Utc>) -> i64 {
    let d = (now - t).num_nanoseconds().unwrap_or(i64::MAX);
    if d > 0 {
        (d as f64).log2() as i64
    } else {
        -1
    }
}

/// The deletion cost annotation as an int32; missing or invalid counts as 0.
fn deletion_cost(p: &Value) -> i32 {
    p["metadata"]["annotations"][DELETION_COST]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// The highest restart count of the pod's containers.
fn max_restarts(p: &Value) -> i64 {
    p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

/// A stable merge sort driven by a "less" function. Unlike `slice::sort_by` it cannot panic on an
/// ordering that is not total (upstream's is not quite, e.g. across log-scale buckets).
pub fn merge_sort_by<T>(v: &mut Vec<T>, less: &dyn Fn(&T, &T) -> bool) {
    if v.len() < 2 {
        return;
    }
    let right = v.split_off(v.len() / 2);
    let mut left = std::mem::take(v);
    let mut right = right;
    merge_sort_by(&mut left, less);
    merge_sort_by(&mut right, less);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => {
                if less(b, a) {
                    out.push(r.next().expect("peeked"));
                } else {
                    out.push(l.next().expect("peeked"));
                }
            }
            (Some(_), None) => out.push(l.next().expect("peeked")),
            (None, Some(_)) => out.push(r.next().expect("peeked")),
            (None, None) => break,
        }
    }
    *v = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(
        name: &str,
        node: &str,
        phase: &str,
        ready: Option<&str>,
        restarts: i64,
        created: &str,
    ) -> Arc<Value> {
        let mut conds = vec![];
        if let Some(t) = ready {
            conds.push(json!({"type": "Ready", "status": "True", "lastTransitionTime": t}));
        }
        Arc::new(json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "creationTimestamp": created},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conds, "containerStatuses": [{"restartCount": restarts}]},
        }))
    }

    fn names(v: &[Arc<Value>]) -> Vec<&str> {
        v.iter().map(|p| meta::name(p)).collect()
    }

    #[test]
    fn ranks_pods_as_upstream() {
        let now = meta::parse_time("2025-01-01T12:00:00Z").unwrap();
        let pods = vec![
            pod(
                "running-ready-old",
                "n1",
                "Running",
                Some("2025-01-01T08:00:00Z"),
                0,
                "2025-01-01T07:00:00Z",
            ),
            pod(
                "running-ready-new",
                "n1",
                "Running",
                Some("2025-01-01T11:59:58Z"),
                0,
                "2025-01-01T11:59:00Z",
            ),
            pod(
                "running-notready",
                "n1",
                "Running",
                None,
                0,
                "2025-01-01T07:00:00Z",
            ),
            pod(
                "pending-assigned",
                "n1",
                "Pending",
                None,
                0,
                "2025-01-01T07:00:00Z",
            ),
            pod("unassigned", "", "Pending", None, 0, "2025-01-01T07:00:00Z"),
            pod("restarts", "n1", "Running", None, 5, "2025-01-01T07:00:00Z"),
        ];
        let out = pods_to_delete(pods.clone(), &pods, 5, now);
        assert_eq!(
            names(&out),
            [
                "unassigned",
                "pending-assigned",
                "restarts",
                "running-notready",
                "running-ready-new"
            ]
        );
    }

    #[test]
    fn deletion_cost_and_doubling_up_come_before_age() {
        let now = meta::parse_time("2025-01-01T12:00:00Z").unwrap();
        let mut cheap = (*pod(
            "cheap",
            "n1",
            "Running",
            Some("2025-01-01T08:00:00Z"),
            0,
            "2025-01-01T07:00:00Z",
        ))
        .clone();
        cheap["metadata"]["annotations"] = json!({DELETION_COST: "-10"});
        let pods = vec![
            pod(
                "alone",
                "n2",
                "Running",
                Some("2025-01-01T11:59:59Z"),
                0,
                "2025-01-01T11:59:00Z",
            ),
            pod(
                "doubled",
                "n1",
                "Running",
                Some("2025-01-01T08:00:00Z"),
                0,
                "2025-01-01T07:00:00Z",
            ),
            Arc::new(cheap),
        ];
        let out = pods_to_delete(pods.clone(), &pods, 2, now);
        assert_eq!(names(&out), ["cheap", "doubled"]);
        // Deleting all of them needs no order.
        assert_eq!(pods_to_delete(pods.clone(), &pods, 3, now).len(), 3);
    }

    #[test]
    fn merge_sort_is_stable() {
        let mut v = vec![(1, 'a'), (0, 'b'), (1, 'c'), (0, 'd')];
        merge_sort_by(&mut v, &|a, b| a.0 < b.0);
        assert_eq!(v, [(0, 'b'), (0, 'd'), (1, 'a'), (1, 'c')]);
    }
}
