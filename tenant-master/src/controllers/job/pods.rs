//! A Job's pods: which pods it owns (claiming matching orphans, as upstream adds the tracking
//! finalizer when adopting), how a pod is made from the template, which active pods go first
//! when there are too many, and the tracking finalizer's removal.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use super::indexes::{self, COMPLETION_INDEX};
use crate::api::status::ApiResult;
use crate::controllers::podutil;
use crate::controllers::runtime::ctx::PODS;
use crate::controllers::runtime::{controller_of, Ctx};
use crate::meta;
use crate::registry::store::{DeleteOpts, Part};

/// The finalizer that keeps a finished pod until the Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The environment variable holding an Indexed Job pod's index.
const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Longest generateName prefix kept (`names.MaxGeneratedNameLength`).
const MAX_GENERATED_NAME: usize = 58;

pub fn has_tracking_finalizer(pod: &Value) -> bool {
    pod["metadata"]["finalizers"].as_array().map(|f| f.iter().any(|x| x == TRACKING_FINALIZER)).unwrap_or(false)
}

/// The pods a Job controls after claiming: matching orphans are adopted (and get the tracking
/// finalizer), owned pods that no longer match are released.
pub async fn pods_for_job(ctx: &Ctx, job: &Value) -> ApiResult<Vec<Value>> {
    let Some(sel) = podutil::selector(job) else {
        return Ok(Vec::new());
    };
    let ns = meta::namespace(job);
    let uid = meta::uid(job).to_string();
    let candidates: Vec<Arc<Value>> = ctx.list(PODS, ns).iter().map(|o| o.value()).collect();
    let owned_before: std::collections::HashSet<String> =
        candidates.iter().filter(|p| controller_of(p).map(|c| c.uid == uid).unwrap_or(false)).map(|p| meta::uid(p).to_string()).collect();
    let mut pods = podutil::claim(ctx, PODS, job, &sel, candidates).await?;
    for p in pods.iter_mut() {
        if owned_before.contains(meta::uid(p)) || has_tracking_finalizer(p) {
            continue;
        }
        let res = ctx
            .modify(PODS, ns, meta::name(p), Part::Main, |cur| {
                let fins = meta::metadata_mut(cur).entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = fins.as_array_mut() {
                    if !a.iter().any(|f| f == TRACKING_FINALIZER) {
                        a.push(json!(TRACKING_FINALIZER));
                    }
                }
                Ok(())
            })
            .await;
        match res {
            Ok(v) => *p = v,
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pods)
}

/// The `generateName` of a Job's pods: `<job>-`, or `<job>-<index>-` for an Indexed Job,
/// shortened as upstream's name generator would.
pub fn generate_name(job_name: &str, index: Option<usize>) -> String {
    match index {
        None => {
            let p = format!("{job_name}-");
            p.chars().take(MAX_GENERATED_NAME).collect()
        }
        Some(i) => {
            let suffix = format!("-{i}-");
            let prefix = format!("{job_name}{suffix}");
            if prefix.len() > MAX_GENERATED_NAME {
                format!("{}{suffix}", &job_name[..MAX_GENERATED_NAME.saturating_sub(suffix.len()).min(job_name.len())])
            } else {
                prefix
            }
        }
    }
}

/// A new pod for `job` (with the tracking finalizer; for an Indexed Job with its index as
/// annotation, label, hostname and `JOB_COMPLETION_INDEX`).
pub fn new_pod(job: &Value, index: Option<usize>, failure_counts: Option<(i64, i64)>) -> Value {
    let mut template = job["spec"]["template"].clone();
    if index.is_some() {
        let spec = &mut template["spec"];
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array_mut().into_iter().flatten() {
                let has = c["env"].as_array().map(|e| e.iter().any(|v| v["name"] == INDEX_ENV)).unwrap_or(false);
                if has {
                    continue;
                }
                if !c["env"].is_array() {
                    c["env"] = json!([]);
                }
                let path = format!("metadata.labels['{COMPLETION_INDEX}']");
                c["env"].as_array_mut().expect("array").push(json!({"name": INDEX_ENV, "valueFrom": {"fieldRef": {"fieldPath": path}}}));
            }
        }
    }
    let fins = &mut template["metadata"]["finalizers"];
    if !fins.is_array() {
        *fins = json!([]);
    }
    let arr = fins.as_array_mut().expect("array");
    if !arr.iter().any(|f| f == TRACKING_FINALIZER) {
        arr.push(json!(TRACKING_FINALIZER));
    }
    let job_name = meta::name(job);
    if let Some(i) = index {
        let md = &mut template["metadata"];
        for f in ["annotations", "labels"] {
            if !md[f].is_object() {
                md[f] = json!({});
            }
            md[f][COMPLETION_INDEX] = json!(i.to_string());
        }
        if let Some((failed, ignored)) = failure_counts {
            md["annotations"][indexes::INDEX_FAILURE_COUNT] = json!(failed.to_string());
            if ignored > 0 {
                md["annotations"][indexes::INDEX_IGNORED_FAILURE_COUNT] = json!(ignored.to_string());
            }
        }
        template["spec"]["hostname"] = json!(format!("{job_name}-{i}"));
    }
    let mut owner = job.clone();
    owner["apiVersion"] = json!("batch/v1");
    owner["kind"] = json!("Job");
    podutil::pod_from_template(&template, &owner, &generate_name(job_name, index))
}

fn phase_rank(p: &Value) -> u8 {
    match podutil::phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn ready_since(p: &Value) -> Option<String> {
    podutil::condition(p, "Ready").and_then(|c| c["lastTransitionTime"].as_str()).map(String::from)
}

fn max_restarts(p: &Value) -> i64 {
    p["status"]["containerStatuses"].as_array().into_iter().flatten().map(|c| c["restartCount"].as_i64().unwrap_or(0)).max().unwrap_or(0)
}

/// `controller.ActivePods` order: the pods to delete first come first (unscheduled, pending,
/// not ready, ready the shortest time, most restarts, newest).
pub fn removal_order(a: &Value, b: &Value) -> Ordering {
    let node = |p: &Value| p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
    let (na, nb) = (node(a), node(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() { Ordering::Less } else { Ordering::Greater };
    }
    let (pa, pb) = (phase_rank(a), phase_rank(b));
    if pa != pb {
        return pa.cmp(&pb);
    }
    let (ra, rb) = (podutil::is_ready(a), podutil::is_ready(b));
    if ra != rb {
        return if !ra { Ordering::Less } else { Ordering::Greater };
    }
    if ra && rb {
        // The later ready time (or none) first.
        let (ta, tb) = (ready_since(a), ready_since(b));
        if ta != tb {
            return match (ta, tb) {
                (None, _) => Ordering::Less,
                (_, None) => Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(&x),
            };
        }
    }
    let (xa, xb) = (max_restarts(a), max_restarts(b));
    if xa != xb {
        return xb.cmp(&xa);
    }
    let ct = |p: &Value| p["metadata"]["creationTimestamp"].as_str().unwrap_or("").to_string();
    let (ca, cb) = (ct(a), ct(b));
    match (ca.is_empty(), cb.is_empty()) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => cb.cmp(&ca),
    }
}

/// The active pods to remove: for Indexed Jobs every pod without a valid index and all but one
/// pod per repeated index; then, while fewer than `at_least`, the first by [`removal_order`].
pub fn active_pods_for_removal<'a>(active: &[&'a Value], indexed: bool, completions: usize, at_least: usize) -> Vec<&'a Value> {
    let mut rm: Vec<&Value> = Vec::new();
    let mut left: Vec<&Value> = Vec::new();
    if indexed {
        let mut by_index: std::collections::BTreeMap<usize, Vec<&Value>> = Default::default();
        for p in active {
            match indexes::valid_index(p, completions) {
                Some(i) => by_index.entry(i).or_default().push(p),
                None => rm.push(p),
            }
        }
        for (_, mut ps) in by_index {
            ps.sort_by(|a, b| removal_order(a, b));
            let keep = ps.pop().expect("non-empty");
            rm.extend(ps);
            left.push(keep);
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        left.sort_by(|a, b| removal_order(a, b));
        let n = (at_least - rm.len()).min(left.len());
        rm.extend(left.into_iter().take(n));
    }
    rm
}

/// Removes the tracking finalizer; a pod already gone counts as done.
pub async fn remove_tracking_finalizer(ctx: &Ctx, pod: &Value) -> ApiResult<()> {
    if !has_tracking_finalizer(pod) {
        return Ok(());
    }
    let uid = meta::uid(pod).to_string();
    let res = ctx
        .modify(PODS, meta::namespace(pod), meta::name(pod), Part::Main, |cur| {
            if meta::uid(cur) != uid {
                return Ok(());
            }
            if let Some(f) = cur["metadata"]["finalizers"].as_array_mut() {
                f.retain(|x| x != TRACKING_FINALIZER);
            }
            Ok(())
        })
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes a pod (gracefully, as the pod's own grace period says) and records the event.
pub async fn delete_pod(ctx: &Ctx, job: &Value, pod: &Value) -> ApiResult<()> {
    let o = DeleteOpts { precondition_uid: Some(meta::uid(pod).to_string()), ..Default::default() };
    match ctx.delete(PODS, meta::namespace(pod), meta::name(pod), &o).await {
        Ok(_) => {
            ctx.event(job, "Normal", "SuccessfulDelete", format!("Deleted pod: {}", meta::name(pod)));
            Ok(())
        }
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => {
            ctx.event(job, "Warning", "FailedDelete", format!("Error deleting: {}", e.message));
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_from_the_template() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "ns", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"job-name": "pi"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let p = new_pod(&job, None, None);
        assert_eq!(p["metadata"]["generateName"], "pi-");
        assert_eq!(p["metadata"]["finalizers"], json!([TRACKING_FINALIZER]));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
        let p = new_pod(&job, Some(2), Some((1, 0)));
        assert_eq!(p["metadata"]["generateName"], "pi-2-");
        assert_eq!(p["metadata"]["labels"][COMPLETION_INDEX], "2");
        assert_eq!(p["metadata"]["annotations"][COMPLETION_INDEX], "2");
        assert_eq!(p["metadata"]["annotations"][indexes::INDEX_FAILURE_COUNT], "1");
        assert_eq!(p["spec"]["hostname"], "pi-2");
        assert_eq!(p["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], format!("metadata.labels['{COMPLETION_INDEX}']"));
        assert_eq!(generate_name(&"x".repeat(60), Some(12)).len(), 58);
    }

    #[test]
    fn removal_prefers_pending_then_newest() {
        let pod = |name: &str, phase: &str, node: &str, created: &str| {
            json!({"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node}, "status": {"phase": phase}})
        };
        let (a, b, c) = (
            pod("a", "Running", "n", "2024-01-01T00:00:00Z"),
            pod("b", "Pending", "", "2024-01-01T00:00:00Z"),
            pod("c", "Running", "n", "2024-01-02T00:00:00Z"),
        );
        let rm = active_pods_for_removal(&[&a, &b, &c], false, 0, 2);
        let names: Vec<&str> = rm.iter().map(|p| meta::name(p)).collect();
        assert_eq!(names, vec!["b", "c"]);
        let ix = |name: &str, i: &str| json!({"metadata": {"name": name, "annotations": {COMPLETION_INDEX: i}}, "status": {"phase": "Running"}});
        let (x, y, z, w) = (ix("x", "0"), ix("y", "0"), ix("z", "5"), ix("w", "1"));
        let rm = active_pods_for_removal(&[&x, &y, &z, &w], true, 3, 0);
        assert_eq!(rm.len(), 2, "one duplicate of index 0 and the out-of-range index 5");
    }
}
