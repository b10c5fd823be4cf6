//! Per-node decisions of the DaemonSet controller (`manage`, `podsShouldBeOnNode`,
//! `updateDaemonSetStatus` of upstream's `daemon_controller.go`), as pure functions: which
//! nodes need a daemon pod, which pods must go, and the status counts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::predicates::{should_run, target_node, TEMPLATE_GENERATION_LABEL};
use crate::controllers::history::POD_REVISION_LABEL;
use crate::controllers::podutil;
use crate::meta;

/// Daemon pods by the node they are for.
pub type NodePods = BTreeMap<String, Vec<Value>>;

/// Groups the set's pods by target node (`getNodesToDaemonPods`); terminal pods being deleted
/// are left out unless `include_deleted_terminal`.
pub fn by_node(pods: &[Value], include_deleted_terminal: bool) -> NodePods {
    let mut m = NodePods::new();
    for p in pods {
        if !include_deleted_terminal && podutil::is_terminal(p) && meta::is_deleting(p) {
            continue;
        }
        if let Some(n) = target_node(p) {
            m.entry(n).or_default().push(p.clone());
        }
    }
    m
}

/// Bound pods first, then oldest, then by name (`podByCreationTimestampAndPhase`).
pub fn sort_pods(pods: &mut [Value]) {
    let bound = |p: &Value| p["spec"]["nodeName"].as_str().map(|n| !n.is_empty()).unwrap_or(false);
    let created = |p: &Value| p["metadata"]["creationTimestamp"].as_str().and_then(meta::parse_time);
    pods.sort_by(|a, b| bound(b).cmp(&bound(a)).then_with(|| created(a).cmp(&created(b))).then_with(|| meta::name(a).cmp(meta::name(b))));
}

/// The `deprecated.daemonset.template.generation` annotation.
pub fn template_generation(ds: &Value) -> Option<i64> {
    ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"].as_str().and_then(|s| s.parse().ok())
}

/// The pod carries the current hash or template generation (`IsPodUpdated`).
pub fn is_updated(pod: &Value, hash: &str, generation: Option<i64>) -> bool {
    let labels = &pod["metadata"]["labels"];
    let by_gen = generation.map(|g| labels[TEMPLATE_GENERATION_LABEL].as_str() == Some(g.to_string().as_str())).unwrap_or(false);
    let by_hash = !hash.is_empty() && labels[POD_REVISION_LABEL].as_str() == Some(hash);
    by_hash || by_gen
}

/// An integer or percentage of `total`, percentages rounded up (`GetScaledValueFromIntOrPercent`
/// with roundUp); None when malformed.
pub fn scaled(v: &Value, total: i64) -> Option<i64> {
    match v {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let p: i64 = s.strip_suffix('%')?.parse().ok()?;
            Some((p * total + 99) / 100)
        }
        _ => None,
    }
}

/// (maxSurge, maxUnavailable) of a RollingUpdate for `desired` nodes; unavailability 1 when
/// both come out 0 (`updatedDesiredNodeCounts`). (0, 0) for OnDelete.
pub fn surge_and_unavailable(ds: &Value, desired: i64) -> (i64, i64) {
    let us = &ds["spec"]["updateStrategy"];
    if us["type"].as_str().unwrap_or("RollingUpdate") != "RollingUpdate" || !us["rollingUpdate"].is_object() {
        return (0, 0);
    }
    let ru = &us["rollingUpdate"];
    let surge = scaled(&ru["maxSurge"], desired).unwrap_or(0);
    let mut unavailable = scaled(&ru["maxUnavailable"], desired).unwrap_or(0);
    if desired > 0 && surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// The set allows two pods on a node during an update (`AllowsSurge`).
pub fn allows_surge(ds: &Value) -> bool {
    surge_and_unavailable(ds, 1).0 > 0
}

/// An event for the set.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub typ: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// Failed-pod backoff per set and node, as upstream's `failedPodsBackoff` (1 s doubling to
/// 15 min), so a pod that keeps failing is not deleted and recreated in a hot loop.
#[derive(Default)]
pub struct Backoff {
    entries: HashMap<String, (Instant, Duration)>,
}

const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

impl Backoff {
    /// The remaining delay if `key` failed too recently (`IsInBackOffSinceUpdate`).
    pub fn in_backoff(&self, key: &str, now: Instant) -> Option<Duration> {
        let (at, d) = self.entries.get(key)?;
        let since = now.saturating_duration_since(*at);
        (since <= BACKOFF_MAX * 2 && since < *d).then(|| *d - since)
    }

    /// Records a failure (`Next`).
    pub fn next(&mut self, key: &str, now: Instant) {
        let e = self.entries.entry(key.to_string()).or_insert((now, Duration::ZERO));
        let expired = now.saturating_duration_since(e.0) > BACKOFF_MAX * 2;
        e.1 = if e.1.is_zero() || expired { BACKOFF_INITIAL } else { (e.1 * 2).min(BACKOFF_MAX) };
        e.0 = now;
    }

    /// Forgets entries long expired.
    pub fn gc(&mut self, now: Instant) {
        self.entries.retain(|_, (at, _)| now.saturating_duration_since(*at) <= BACKOFF_MAX * 2);
    }
}

/// What one node needs (`podsShouldBeOnNode`).
#[derive(Debug, Default)]
pub struct NodeWork {
    pub create: bool,
    pub delete: Vec<Value>,
    pub events: Vec<Event>,
    pub requeue: Option<Duration>,
}

/// Decides for one node: start a daemon pod, delete failed, succeeded or surplus ones, or
/// delete all where the set may no longer run.
pub fn on_node(node: &Value, pods: Option<&Vec<Value>>, ds: &Value, hash: &str, now: DateTime<Utc>, backoff: &mut Backoff) -> NodeWork {
    let mut w = NodeWork::default();
    let (run, keep) = should_run(node, ds);
    let node_name = meta::name(node);
    let (ns, ds_uid) = (meta::namespace(ds), meta::uid(ds));
    let gen = ds["status"]["observedGeneration"].as_i64().unwrap_or(0);
    match pods {
        None if run => w.create = true,
        Some(pods) if keep => {
            let mut running = Vec::new();
            for p in pods {
                if meta::is_deleting(p) {
                    continue;
                }
                match podutil::phase(p) {
                    "Failed" => {
                        let key = format!("{ds_uid}/{gen}/{node_name}");
                        let t = Instant::now();
                        if let Some(d) = backoff.in_backoff(&key, t) {
                            w.requeue = Some(w.requeue.map_or(d, |r| r.min(d)));
                            continue;
                        }
                        backoff.next(&key, t);
                        w.events.push(Event {
                            typ: "Warning",
                            reason: "FailedDaemonPod",
                            message: format!("Found failed daemon pod {ns}/{} on node {node_name}, will try to kill it", meta::name(p)),
                        });
                        w.delete.push(p.clone());
                    }
                    "Succeeded" => {
                        w.events.push(Event {
                            typ: "Normal",
                            reason: "SucceededDaemonPod",
                            message: format!("Found succeeded daemon pod {ns}/{} on node {node_name}, will try to delete it", meta::name(p)),
                        });
                        w.delete.push(p.clone());
                    }
                    _ => running.push(p.clone()),
                }
            }
            sort_pods(&mut running);
            if !allows_surge(ds) {
                // One pod per node: keep the oldest.
                w.delete.extend(running.into_iter().skip(1));
                return w;
            }
            if running.len() <= 1 {
                if running.is_empty() && run {
                    w.create = true;
                }
                return w;
            }
            // Surging: keep the oldest new pod and the oldest old pod while the new one is not
            // yet available and the old one still ready.
            let (mut oldest_new, mut oldest_old) = (None, None);
            for p in running {
                let slot = if p["metadata"]["labels"][POD_REVISION_LABEL].as_str() == Some(hash) { &mut oldest_new } else { &mut oldest_old };
                if slot.is_none() {
                    *slot = Some(p);
                } else {
                    w.delete.push(p);
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
                let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
                if !podutil::is_ready(&old) || podutil::is_available(&new, min_ready, now) {
                    w.delete.push(old);
                }
            }
        }
        Some(pods) if !keep => {
            w.delete.extend(pods.iter().filter(|p| !meta::is_deleting(p)).cloned());
        }
        _ => {}
    }
    w
}

/// The status counts (`updateDaemonSetStatus`), as a JSON patch of `status` fields.
pub fn status(ds: &Value, nodes: &[Value], by_node: &NodePods, hash: &str, now: DateTime<Utc>) -> Value {
    let (mut desired, mut current, mut mis, mut ready, mut updated, mut available) = (0, 0, 0, 0, 0, 0);
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let gen = template_generation(ds);
    for n in nodes {
        let (run, _) = should_run(n, ds);
        let pods = by_node.get(meta::name(n)).filter(|p| !p.is_empty());
        match (run, pods) {
            (true, None) => desired += 1,
            (true, Some(pods)) => {
                desired += 1;
                current += 1;
                let mut pods = pods.clone();
                sort_pods(&mut pods);
                let p = &pods[0];
                if podutil::is_ready(p) {
                    ready += 1;
                    if podutil::is_available(p, min_ready, now) {
                        available += 1;
                    }
                }
                if is_updated(p, hash, gen) {
                    updated += 1;
                }
            }
            (false, Some(_)) => mis += 1,
            (false, None) => {}
        }
    }
    json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": mis,
        "numberReady": ready,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(strategy: Value) -> Value {
        json!({"metadata": {"name": "agent", "namespace": "ns", "uid": "u", "annotations": {"deprecated.daemonset.template.generation": "2"}},
               "spec": {"updateStrategy": strategy, "template": {"metadata": {"labels": {"app": "a"}}, "spec": {}}}})
    }

    fn node(name: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {}})
    }

    fn pod(name: &str, node: &str, hash: &str, phase: &str, ready: bool, created: &str) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created, "labels": {POD_REVISION_LABEL: hash}},
               "spec": {"nodeName": node},
               "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2020-01-01T00:00:00Z"}]}})
    }

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(meta::name).collect()
    }

    #[test]
    fn nodes_get_one_pod_each() {
        let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
        let mut b = Backoff::default();
        let now = Utc::now();
        assert!(on_node(&node("n1"), None, &d, "h", now, &mut b).create);
        let two = vec![pod("b", "n1", "h", "Running", true, "2020-01-02T00:00:00Z"), pod("a", "n1", "h", "Running", true, "2020-01-01T00:00:00Z")];
        let w = on_node(&node("n1"), Some(&two), &d, "h", now, &mut b);
        assert_eq!((w.create, names(&w.delete)), (false, vec!["b"]));
        // A tainted node loses its pods only for NoExecute.
        let mut tainted = node("n1");
        tainted["spec"]["taints"] = json!([{"key": "k", "effect": "NoExecute"}]);
        assert_eq!(names(&on_node(&tainted, Some(&two), &d, "h", now, &mut b).delete), vec!["b", "a"]);
        tainted["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        assert!(on_node(&tainted, None, &d, "h", now, &mut b).delete.is_empty());
        assert!(!on_node(&tainted, None, &d, "h", now, &mut b).create);
    }

    #[test]
    fn failed_pods_are_replaced_with_backoff() {
        let d = ds(json!({"type": "OnDelete"}));
        let mut b = Backoff::default();
        let failed = vec![pod("a", "n1", "h", "Failed", false, "2020-01-01T00:00:00Z")];
        let w = on_node(&node("n1"), Some(&failed), &d, "h", Utc::now(), &mut b);
        assert_eq!((names(&w.delete), w.events[0].reason), (vec!["a"], "FailedDaemonPod"));
        // Failing again at once: wait.
        let w = on_node(&node("n1"), Some(&failed), &d, "h", Utc::now(), &mut b);
        assert!(w.delete.is_empty() && w.requeue.is_some());
    }

    #[test]
    fn surge_keeps_old_until_new_is_available() {
        let d = ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}));
        let mut b = Backoff::default();
        let old = pod("old", "n1", "h1", "Running", true, "2020-01-01T00:00:00Z");
        let new = pod("new", "n1", "h2", "Running", false, "2020-01-02T00:00:00Z");
        let w = on_node(&node("n1"), Some(&vec![old.clone(), new.clone()]), &d, "h2", Utc::now(), &mut b);
        assert!(w.delete.is_empty());
        let new = pod("new", "n1", "h2", "Running", true, "2020-01-02T00:00:00Z");
        let w = on_node(&node("n1"), Some(&vec![old, new]), &d, "h2", Utc::now(), &mut b);
        assert_eq!(names(&w.delete), vec!["old"]);
    }

    #[test]
    fn status_counts() {
        let d = ds(json!({"type": "OnDelete"}));
        let mut tainted = node("n3");
        tainted["spec"]["taints"] = json!([{"key": "k", "effect": "NoSchedule"}]);
        let nodes = vec![node("n1"), node("n2"), tainted];
        let pods = vec![pod("a", "n1", "h", "Running", true, "2020-01-01T00:00:00Z"), pod("b", "n3", "old", "Running", false, "2020-01-01T00:00:00Z")];
        let st = status(&d, &nodes, &by_node(&pods, false), "h", Utc::now());
        assert_eq!(
            st,
            json!({"desiredNumberScheduled": 2, "currentNumberScheduled": 1, "numberMisscheduled": 1, "numberReady": 1,
                              "updatedNumberScheduled": 1, "numberAvailable": 1, "numberUnavailable": 1})
        );
        assert_eq!(scaled(&json!("25%"), 3), Some(1));
        assert_eq!(scaled(&json!("50%"), 3), Some(2));
        assert_eq!(surge_and_unavailable(&ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "0%", "maxSurge": 0}})), 4), (0, 1));
    }
}
