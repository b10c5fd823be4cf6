//! Counting finished pods exactly, after upstream's `trackJobStatusAndRemoveFinalizers`: a
//! finished pod is first listed in `status.uncountedTerminatedPods` (written), then its
//! `batch.kubernetes.io/job-tracking` finalizer is removed, then it moves from the list into
//! `succeeded`/`failed` (written). A pod deleted at any point is counted once, never twice
//! and never lost. The terminal condition (Complete or Failed) follows its interim
//! (SuccessCriteriaMet or FailureTarget) once nothing is left uncounted or terminating.

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::{json, Value};

use super::indexes;
use super::pods;
use super::policy::Action as PolicyAction;
use super::spec;
use super::sync::{set_int, JobCtx};
use super::State;
use crate::api::status::ApiError;
use crate::controllers::podutil;
use crate::controllers::runtime::ctx::JOBS;
use crate::controllers::runtime::Ctx;
use crate::meta;

/// Bounds `status.uncountedTerminatedPods` (about 20 KB of UIDs), as upstream.
const MAX_UNCOUNTED: usize = 500;

fn uids(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|u| u.as_str().map(String::from)).collect()
}

fn set_uids(st: &mut Value, f: &str, list: Vec<String>) {
    let u = &mut st["uncountedTerminatedPods"];
    if !u.is_object() {
        *u = json!({});
    }
    let o = u.as_object_mut().expect("object");
    if list.is_empty() {
        o.remove(f);
    } else {
        o.insert(f.into(), json!(list));
    }
}

/// Moves uncounted pods whose finalizer is gone into the counters; true when anything moved.
fn count_uncounted(st: &mut Value, with_finalizer: &HashSet<String>) -> bool {
    let mut changed = false;
    for (list, counter) in [("succeeded", "succeeded"), ("failed", "failed")] {
        let all = uids(&st["uncountedTerminatedPods"][list]);
        let keep: Vec<String> = all.iter().filter(|u| with_finalizer.contains(*u)).cloned().collect();
        if keep.len() != all.len() {
            changed = true;
            let n = st[counter].as_i64().unwrap_or(0) + (all.len() - keep.len()) as i64;
            set_int(st, counter, n, true);
            set_uids(st, list, keep);
        }
    }
    changed
}

/// Whether a tracked pod's finalizer may go now.
fn can_remove_finalizer(jc: &JobCtx, pod: &Value, considered_failed: bool) -> bool {
    if meta::is_deleting(&jc.job) || jc.finished.is_some() || podutil::phase(pod) == "Succeeded" {
        return true;
    }
    if !considered_failed {
        return false;
    }
    if jc.spec.backoff_limit_per_index.is_some() {
        if let Some(ix) = indexes::completion_index(pod) {
            if jc.delayed_deletion.get(&ix).map(|p| meta::uid(p) == meta::uid(pod)).unwrap_or(false) {
                return false;
            }
        }
    }
    true
}

fn is_type(c: &Option<Value>, typ: &str) -> bool {
    c.as_ref().map(|c| c["type"] == typ).unwrap_or(false)
}

/// Writes the status when it changed since `stored`; keeps `jc.job` current.
async fn flush(ctx: &Ctx, jc: &mut JobCtx, stored: &mut Value) -> Result<(), ApiError> {
    if jc.job["status"] == *stored {
        return Ok(());
    }
    let written = ctx.update_status(JOBS, jc.job.clone()).await?;
    meta::set_resource_version(&mut jc.job, meta::resource_version(&written).parse().unwrap_or(0));
    *stored = jc.job["status"].clone();
    Ok(())
}

/// Counts finished pods, removes their finalizers, writes the status, and finishes the Job
/// when its terminal condition is due.
pub async fn track_and_remove_finalizers(ctx: &Ctx, state: &State, jc: &mut JobCtx) -> Result<(), ApiError> {
    let completions = jc.spec.completions_usize();
    let mut stored = ctx.get(JOBS, meta::namespace(&jc.job), meta::name(&jc.job)).map(|j| j["status"].clone()).unwrap_or(Value::Null);
    if jc.spec.indexed {
        jc.pods.sort_by_key(|p| indexes::completion_index(p).map(|i| i as i64).unwrap_or(-1));
    }
    let mut with_finalizer: HashSet<String> = jc.pods.iter().filter(|p| pods::has_tracking_finalizer(p)).map(|p| meta::uid(p).to_string()).collect();
    count_uncounted(&mut jc.job["status"], &with_finalizer);

    let mut to_remove: Vec<Value> = Vec::new();
    let mut new_indexes: Vec<usize> = Vec::new();
    let mut unc_succeeded = uids(&jc.job["status"]["uncountedTerminatedPods"]["succeeded"]);
    let mut unc_failed = uids(&jc.job["status"]["uncountedTerminatedPods"]["failed"]);
    let mut reached_max = false;
    let success_interim = is_type(&jc.finished, spec::SUCCESS_CRITERIA_MET);
    for pod in jc.pods.iter().filter(|p| pods::has_tracking_finalizer(p)) {
        let uid = meta::uid(pod).to_string();
        let considered_failed = jc.spec.is_pod_failed(pod);
        if !can_remove_finalizer(jc, pod, considered_failed) {
            continue;
        }
        to_remove.push(pod.clone());
        if podutil::phase(pod) == "Succeeded" && !jc.uncounted_failed.contains(&uid) {
            if jc.spec.indexed {
                if let Some(ix) = indexes::valid_index(pod, completions) {
                    if !jc.prev_succeeded_indexes.has(ix) {
                        new_indexes.push(ix);
                    }
                }
            } else if !unc_succeeded.contains(&uid) {
                unc_succeeded.push(uid);
            }
        } else if considered_failed || (jc.finished.is_some() && !success_interim) {
            let valid = !jc.spec.indexed || indexes::valid_index(pod, completions).is_some();
            if !unc_failed.contains(&uid) && !jc.uncounted_failed.contains(&uid) && valid && PolicyAction::counts(&jc.spec.failure_action(pod)) {
                unc_failed.push(uid);
            }
        }
        if new_indexes.len() + unc_succeeded.len() + unc_failed.len() >= MAX_UNCOUNTED {
            reached_max = true;
            break;
        }
    }
    set_uids(&mut jc.job["status"], "succeeded", unc_succeeded);
    set_uids(&mut jc.job["status"], "failed", unc_failed);
    if jc.spec.indexed {
        jc.succeeded_indexes = jc.succeeded_indexes.with_indexes(new_indexes);
        let st = &mut jc.job["status"];
        set_int(st, "succeeded", jc.succeeded_indexes.total() as i64, true);
        let s = jc.succeeded_indexes.to_string();
        if s.is_empty() {
            if let Some(o) = st.as_object_mut() {
                o.remove("completedIndexes");
            }
        } else {
            st["completedIndexes"] = json!(s);
        }
        if let Some(f) = &jc.failed_indexes {
            st["failedIndexes"] = json!(f.to_string());
        }
    }
    // Interim conditions are recorded before any finalizer goes; the final one follows later.
    if let Some(c) = jc.finished.clone() {
        let (r, m) = (c["reason"].as_str().unwrap_or("").to_string(), c["message"].as_str().unwrap_or("").to_string());
        if c["type"] == spec::FAILURE_TARGET {
            push_condition(&mut jc.job["status"], c);
            jc.finished = Some(spec::condition(spec::FAILED, "True", &r, &m, jc.now));
        } else if c["type"] == spec::SUCCESS_CRITERIA_MET {
            if spec::true_condition(&jc.job, spec::SUCCESS_CRITERIA_MET).is_none() {
                push_condition(&mut jc.job["status"], c);
            }
            jc.finished = Some(spec::condition(spec::COMPLETE, "True", &r, &m, jc.now));
        }
    }
    let had_changes = jc.job["status"] != stored;
    flush(ctx, jc, &mut stored).await?;
    if had_changes {
        state.backoff.set(&jc.key, jc.new_backoff.clone());
    }

    let results = join_all(to_remove.iter().map(|p| pods::remove_tracking_finalizer(ctx, p))).await;
    let mut rm_err = None;
    for (p, r) in to_remove.iter().zip(results) {
        match r {
            Ok(()) => {
                with_finalizer.remove(meta::uid(p));
            }
            Err(e) => rm_err = Some(e),
        }
    }
    count_uncounted(&mut jc.job["status"], &with_finalizer);
    if let Some(e) = rm_err {
        flush(ctx, jc, &mut stored).await?;
        return Err(e);
    }

    let finished = !reached_max && enact_finished(jc);
    flush(ctx, jc, &mut stored).await?;
    if finished {
        record_finished(ctx, jc);
    }
    Ok(())
}

fn push_condition(st: &mut Value, c: Value) {
    if !st["conditions"].is_array() {
        st["conditions"] = json!([]);
    }
    st["conditions"].as_array_mut().expect("array").push(c);
}

/// Sets Complete or Failed once nothing is uncounted or terminating.
fn enact_finished(jc: &mut JobCtx) -> bool {
    let Some(c) = jc.finished.clone() else {
        return false;
    };
    let u = &jc.job["status"]["uncountedTerminatedPods"];
    if !uids(&u["succeeded"]).is_empty() || !uids(&u["failed"]).is_empty() {
        return false;
    }
    if jc.terminating > 0 {
        return false;
    }
    let (t, r, m) = (c["type"].as_str().unwrap_or(""), c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or(""));
    spec::ensure_condition(&mut jc.job["status"], t, "True", r, m, jc.now);
    if t == spec::COMPLETE {
        jc.job["status"]["completionTime"] = c["lastTransitionTime"].clone();
    }
    true
}

fn record_finished(ctx: &Ctx, jc: &JobCtx) {
    let Some(c) = &jc.finished else { return };
    if c["type"] == spec::COMPLETE {
        let succeeded = jc.job["status"]["succeeded"].as_i64().unwrap_or(0);
        if jc.spec.completions.map(|n| succeeded > n).unwrap_or(false) {
            ctx.event(&jc.job, "Warning", "TooManySucceededPods", "Too many succeeded pods running after completion count reached");
        }
        ctx.event(&jc.job, "Normal", "Completed", "Job completed");
    } else {
        ctx.event(&jc.job, "Warning", c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or("").to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncounted_pods_move_into_counters_once_their_finalizer_is_gone() {
        let mut st = json!({"succeeded": 2, "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]}});
        let with: HashSet<String> = ["b".to_string()].into();
        assert!(count_uncounted(&mut st, &with));
        assert_eq!(st, json!({"succeeded": 3, "failed": 1, "uncountedTerminatedPods": {"succeeded": ["b"]}}));
        assert!(!count_uncounted(&mut st, &with));
        assert!(count_uncounted(&mut st, &HashSet::new()));
        assert_eq!(st, json!({"succeeded": 4, "failed": 1, "uncountedTerminatedPods": {}}));
    }
}
