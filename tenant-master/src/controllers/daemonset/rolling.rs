//! A DaemonSet's rolling update (`rollingUpdate` of upstream's `update.go`), as a pure
//! function: without surge, delete old pods while no more than maxUnavailable nodes lack an
//! available up-to-date pod (the manage pass then creates the new ones); with surge, start a new
//! pod beside an old one on up to maxSurge nodes and delete the old one once the new one is
//! available.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::nodes::{is_updated, surge_and_unavailable, template_generation, NodePods};
use super::predicates::should_run;
use crate::controllers::podutil;
use crate::meta;

/// Pods to delete and nodes to start a pod on.
#[derive(Debug, Default, PartialEq)]
pub struct Rollout {
    pub delete: Vec<Value>,
    pub create_on: Vec<String>,
}

/// The one new and one old pod on a node, ignoring deleted ones; None with more of either
/// (`findUpdatedPodsOnNode`: the manage pass prunes those first).
fn new_and_old<'a>(pods: &'a [Value], hash: &str, gen: Option<i64>) -> Option<(Option<&'a Value>, Option<&'a Value>)> {
    let (mut new, mut old) = (None, None);
    for p in pods.iter().filter(|p| !meta::is_deleting(p)) {
        let slot = if is_updated(p, hash, gen) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p);
    }
    Some((new, old))
}

/// Decides the next step of a rolling update.
pub fn plan(ds: &Value, nodes: &[Value], by_node: &NodePods, hash: &str, now: DateTime<Utc>) -> Rollout {
    let mut by_node = by_node.clone();
    let mut desired = 0;
    for n in nodes {
        if should_run(n, ds).0 {
            desired += 1;
            by_node.entry(meta::name(n).to_string()).or_default();
        }
    }
    let (max_surge, max_unavailable) = surge_and_unavailable(ds, desired);
    let min_ready = ds["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let available = |p: &Value| podutil::is_available(p, min_ready, now);
    let gen = template_generation(ds);
    let node_runs = |name: &str| nodes.iter().find(|n| meta::name(n) == name).map(|n| should_run(n, ds).0).unwrap_or(false);
    let mut out = Rollout::default();

    if max_surge == 0 {
        let mut unavailable = 0;
        let mut replace = Vec::new();
        let mut candidates = Vec::new();
        for pods in by_node.values() {
            let Some((new, old)) = new_and_old(pods, hash, gen) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !available(new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(old) {
                        replace.push(old.clone());
                        unavailable += 1;
                    } else if unavailable < max_unavailable {
                        candidates.push(old.clone());
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
        out.delete = replace;
        out.delete.extend(candidates.into_iter().take(room));
        return out;
    }

    let (mut surge, mut avail) = (0, 0);
    let mut allowed_new = Vec::new();
    let mut candidate_new = Vec::new();
    let mut not_running_old = Vec::new();
    for (node, pods) in &by_node {
        let Some((new, old)) = new_and_old(pods, hash, gen) else {
            surge += 1;
            continue;
        };
        if let Some(p) = old.or(new) {
            if available(p) {
                avail += 1;
            }
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(old) {
                    if !node_runs(node) {
                        out.delete.push(old.clone());
                        continue;
                    }
                    allowed_new.push(node.clone());
                } else {
                    if !node_runs(node) {
                        not_running_old.push(old.clone());
                        continue;
                    }
                    if surge >= max_surge {
                        continue;
                    }
                    candidate_new.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if !available(new) {
                    surge += 1;
                    continue;
                }
                out.delete.push(old.clone());
            }
        }
    }
    // Old pods on nodes the set left go only while enough pods elsewhere are available.
    let deletable = (avail - desired).clamp(0, not_running_old.len() as i64) as usize;
    out.delete.extend(not_running_old.into_iter().take(deletable));
    let room = (max_surge - surge).clamp(0, candidate_new.len() as i64) as usize;
    out.create_on = allowed_new;
    out.create_on.extend(candidate_new.into_iter().take(room));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::history::POD_REVISION_LABEL;
    use serde_json::json;

    fn ds(ru: Value) -> Value {
        json!({"metadata": {"name": "agent", "uid": "u"},
               "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": ru}, "template": {"spec": {}}}})
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name, "labels": {POD_REVISION_LABEL: hash}}, "spec": {"nodeName": node},
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": "2020-01-01T00:00:00Z"}]}})
    }

    fn setup(pods: &[Value]) -> (Vec<Value>, NodePods) {
        let nodes: Vec<Value> = (1..=3).map(|i| json!({"metadata": {"name": format!("n{i}")}, "spec": {}})).collect();
        (nodes, super::super::nodes::by_node(pods, false))
    }

    fn names(v: &[Value]) -> Vec<&str> {
        v.iter().map(meta::name).collect()
    }

    #[test]
    fn max_unavailable_bounds_deletions() {
        let d = ds(json!({"maxUnavailable": 1, "maxSurge": 0}));
        let pods = vec![pod("a", "n1", "old", true), pod("b", "n2", "old", true), pod("c", "n3", "old", true)];
        let (nodes, bn) = setup(&pods);
        let r = plan(&d, &nodes, &bn, "new", Utc::now());
        assert_eq!(names(&r.delete), vec!["a"]);
        // n1 now has a new pod that is not ready yet: nothing more.
        let pods = vec![pod("a2", "n1", "new", false), pod("b", "n2", "old", true), pod("c", "n3", "old", true)];
        let (nodes, bn) = setup(&pods);
        assert!(plan(&d, &nodes, &bn, "new", Utc::now()).delete.is_empty());
        // An unavailable old pod is always replaced.
        let pods = vec![pod("a2", "n1", "new", false), pod("b", "n2", "old", false), pod("c", "n3", "old", true)];
        let (nodes, bn) = setup(&pods);
        assert_eq!(names(&plan(&d, &nodes, &bn, "new", Utc::now()).delete), vec!["b"]);
        let d = ds(json!({"maxUnavailable": "100%", "maxSurge": 0}));
        let pods = vec![pod("a", "n1", "old", true), pod("b", "n2", "old", true), pod("c", "n3", "old", true)];
        let (nodes, bn) = setup(&pods);
        assert_eq!(plan(&d, &nodes, &bn, "new", Utc::now()).delete.len(), 3);
    }

    #[test]
    fn max_surge_starts_new_pods_beside_old_ones() {
        let d = ds(json!({"maxUnavailable": 0, "maxSurge": 1}));
        let pods = vec![pod("a", "n1", "old", true), pod("b", "n2", "old", true), pod("c", "n3", "old", true)];
        let (nodes, bn) = setup(&pods);
        let r = plan(&d, &nodes, &bn, "new", Utc::now());
        assert_eq!((r.delete.len(), r.create_on.clone()), (0, vec!["n1".to_string()]));
        let pods = vec![pod("a", "n1", "old", true), pod("a2", "n1", "new", true), pod("b", "n2", "old", true), pod("c", "n3", "old", true)];
        let (nodes, bn) = setup(&pods);
        let r = plan(&d, &nodes, &bn, "new", Utc::now());
        assert_eq!((names(&r.delete), r.create_on.clone()), (vec!["a"], vec!["n2".to_string()]));
    }
}
