//! One reconcile of a Job, after upstream's `syncJob`: count its pods, decide whether it has
//! failed (backoff limit, deadline, pod failure policy, failed indexes) or succeeded
//! (completions, success policy), otherwise create or delete pods to reach
//! `min(parallelism, remaining completions)`, then record what happened in the status
//! ([`super::status`]).

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::{json, Value};

use super::backoff::{self, Record};
use super::indexes::{self, Intervals};
use super::pods;
use super::policy::{self, Action as PolicyAction};
use super::spec::{self, JobSpec};
use super::State;
use crate::api::status::ApiError;
use crate::controllers::podutil;
use crate::controllers::runtime::ctx::{JOBS, PODS};
use crate::controllers::runtime::{Action, Ctx, ObjKey};
use crate::meta;

/// At most this many pods are created or deleted in one reconcile (`MaxPodCreateDeletePerSync`).
const MAX_CREATE_DELETE: usize = 500;
/// A delayed reconcile waits at least this long (`syncJobBatchPeriod`).
const MIN_DELAY: Duration = Duration::from_secs(1);

/// Everything one reconcile learns about a Job and its pods.
pub struct JobCtx {
    pub key: String,
    pub job: Value,
    pub spec: JobSpec,
    pub pods: Vec<Value>,
    pub now: DateTime<Utc>,
    /// Pod UIDs in `status.uncountedTerminatedPods` when the reconcile started.
    pub uncounted_succeeded: HashSet<String>,
    pub uncounted_failed: HashSet<String>,
    pub succeeded: i64,
    pub failed: i64,
    pub ready: i64,
    pub terminating: i64,
    pub prev_succeeded_indexes: Intervals,
    pub succeeded_indexes: Intervals,
    pub failed_indexes: Option<Intervals>,
    /// Per index, the last failed pod kept until its replacement exists (backoffLimitPerIndex).
    pub delayed_deletion: std::collections::BTreeMap<usize, Value>,
    pub new_backoff: Record,
    /// The condition the Job is heading for: an interim one (FailureTarget,
    /// SuccessCriteriaMet) or, once that is recorded, the final one.
    pub finished: Option<Value>,
    pub requeue: Option<Duration>,
}

impl JobCtx {
    fn requeue_after(&mut self, d: Duration) {
        let d = d.max(MIN_DELAY);
        self.requeue = Some(self.requeue.map(|r| r.min(d)).unwrap_or(d));
    }
}

fn uid_set(v: &Value) -> HashSet<String> {
    v.as_array().into_iter().flatten().filter_map(|u| u.as_str().map(String::from)).collect()
}

/// Reconciles one Job.
pub async fn sync(ctx: &Ctx, state: &State, key: &ObjKey) -> Result<Action, ApiError> {
    let key_s = key.to_string();
    let Some(shared) = ctx.get(JOBS, &key.namespace, &key.name) else {
        state.backoff.remove(&key_s);
        return Ok(Action::Done);
    };
    let mut job = (*shared).clone();
    if let Some(m) = job["spec"]["managedBy"].as_str() {
        if m != spec::MANAGED_BY_DEFAULT {
            return Ok(Action::Done);
        }
    }
    if spec::is_finished(&job) {
        state.backoff.remove(&key_s);
        return Ok(Action::Done);
    }
    match job["spec"]["completionMode"].as_str() {
        None | Some("NonIndexed") | Some("Indexed") => {}
        Some(_) => {
            ctx.event(&job, "Warning", "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown");
            return Ok(Action::Done);
        }
    }
    if !job["status"].is_object() {
        job["status"] = json!({});
    }
    if !job["status"]["uncountedTerminatedPods"].is_object() {
        job["status"]["uncountedTerminatedPods"] = json!({});
    }
    let js = JobSpec::of(&job);
    let uncounted = &job["status"]["uncountedTerminatedPods"];
    let (uncounted_succeeded, uncounted_failed) = (uid_set(&uncounted["succeeded"]), uid_set(&uncounted["failed"]));
    let pods = pods::pods_for_job(ctx, &job).await?;
    let now = Utc::now();
    let mut jc = JobCtx {
        key: key_s,
        spec: js,
        now,
        uncounted_succeeded,
        uncounted_failed,
        succeeded: 0,
        failed: 0,
        ready: 0,
        terminating: pods.iter().filter(|p| meta::is_deleting(p) && !podutil::is_terminal(p)).count() as i64,
        prev_succeeded_indexes: Intervals::default(),
        succeeded_indexes: Intervals::default(),
        failed_indexes: None,
        delayed_deletion: Default::default(),
        new_backoff: Record::default(),
        finished: None,
        requeue: None,
        pods,
        job,
    };
    let active_pods: Vec<Value> = jc.pods.iter().filter(|p| podutil::is_active(p)).cloned().collect();
    jc.ready = active_pods.iter().filter(|p| podutil::is_ready(p)).count() as i64;
    let (n_succeeded, counted_failures, record) = {
        let (new_succeeded, new_failed) = new_finished_pods(&jc);
        let counted = new_failed.iter().filter(|p| PolicyAction::counts(&jc.spec.failure_action(p))).count();
        (new_succeeded.len(), counted, backoff::next_record(&state.backoff.get(&jc.key), &new_succeeded, &new_failed))
    };
    jc.new_backoff = record;
    let st = &jc.job["status"];
    jc.succeeded = st["succeeded"].as_i64().unwrap_or(0) + n_succeeded as i64 + jc.uncounted_succeeded.len() as i64;
    jc.failed = st["failed"].as_i64().unwrap_or(0) + counted_failures as i64 + jc.uncounted_failed.len() as i64;
    if jc.job["status"]["startTime"].is_null() && !jc.spec.suspend {
        jc.job["status"]["startTime"] = json!(meta::now_rfc3339());
    }

    decide_failure(&mut jc);
    if jc.spec.indexed {
        decide_indexes(&mut jc);
    }

    let mut active = active_pods.len() as i64;
    let mut manage_err = None;
    if jc.finished.is_some() {
        // Failing or succeeding early: the remaining active pods go (their finalizers stay
        // until they are counted).
        let results = join_all(active_pods.iter().map(|p| pods::delete_pod(ctx, &jc.job, p))).await;
        let mut deleted = 0;
        for (p, r) in active_pods.iter().zip(results) {
            match r {
                Ok(()) => {
                    deleted += 1;
                    if podutil::is_ready(p) {
                        jc.ready -= 1;
                    }
                }
                Err(e) => manage_err = Some(e),
            }
        }
        if deleted != active {
            jc.finished = None;
        }
        active -= deleted;
        jc.terminating += deleted;
    } else {
        let mut manage_called = false;
        if !meta::is_deleting(&jc.job) {
            let (a, err) = manage_job(ctx, &mut jc, &active_pods).await;
            active = a;
            manage_err = err;
            manage_called = true;
        }
        let complete = match jc.spec.completions {
            None => jc.succeeded > 0 && active == 0,
            Some(c) => jc.succeeded >= c && active == 0,
        };
        if complete {
            let c = spec::condition(spec::SUCCESS_CRITERIA_MET, "True", "CompletionsReached", "Reached expected number of succeeded pods", now);
            jc.finished = Some(c);
        } else if manage_called {
            let st = &mut jc.job["status"];
            if jc.spec.suspend {
                if spec::ensure_condition(st, spec::SUSPENDED, "True", "JobSuspended", "Job suspended", now) {
                    ctx.event(&jc.job, "Normal", "Suspended", "Job suspended");
                }
            } else if spec::ensure_condition(st, spec::SUSPENDED, "False", "JobResumed", "Job resumed", now) {
                ctx.event(&jc.job, "Normal", "Resumed", "Job resumed");
                // activeDeadlineSeconds counts the time continuously active.
                jc.job["status"]["startTime"] = json!(meta::now_rfc3339());
            }
        }
    }
    let st = &mut jc.job["status"];
    set_int(st, "active", active, true);
    st["ready"] = json!(jc.ready.max(0));
    st["terminating"] = json!(jc.terminating.max(0));
    super::status::track_and_remove_finalizers(ctx, state, &mut jc).await?;
    if let Some(e) = manage_err {
        return Err(e);
    }
    Ok(match jc.requeue {
        Some(d) => Action::RequeueAfter(d),
        None => Action::Done,
    })
}

/// Sets an int32 status field; `omit_zero` for the `omitempty` ones.
pub fn set_int(st: &mut Value, f: &str, v: i64, omit_zero: bool) {
    if v == 0 && omit_zero {
        if let Some(o) = st.as_object_mut() {
            o.remove(f);
        }
    } else {
        st[f] = json!(v);
    }
}

/// Pods that finished since the last count: tracked (finalizer), not yet uncounted, with a
/// valid index for Indexed Jobs.
fn new_finished_pods(jc: &JobCtx) -> (Vec<&Value>, Vec<&Value>) {
    let valid = |p: &Value| -> bool {
        if !pods::has_tracking_finalizer(p) {
            return false;
        }
        !jc.spec.indexed || indexes::valid_index(p, jc.spec.completions_usize()).is_some()
    };
    let succ = jc.pods.iter().filter(|p| valid(p) && !jc.uncounted_succeeded.contains(meta::uid(p)) && podutil::phase(p) == "Succeeded").collect();
    let failed = jc.pods.iter().filter(|p| valid(p) && !jc.uncounted_failed.contains(meta::uid(p)) && jc.spec.is_pod_failed(p)).collect();
    (succ, failed)
}

/// Restarts of still running pods reached the backoff limit (restartPolicy OnFailure).
fn past_backoff_limit_on_failure(jc: &JobCtx) -> bool {
    if !jc.spec.restart_on_failure {
        return false;
    }
    let restarts: i64 = jc
        .pods
        .iter()
        .filter(|p| matches!(podutil::phase(p), "Running" | "Pending"))
        .flat_map(|p| ["initContainerStatuses", "containerStatuses"].map(|l| p["status"][l].clone()))
        .flat_map(|l| l.as_array().cloned().unwrap_or_default())
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    if jc.spec.backoff_limit == 0 {
        restarts > 0
    } else {
        restarts >= jc.spec.backoff_limit
    }
}

fn start_time(job: &Value) -> Option<DateTime<Utc>> {
    job["status"]["startTime"].as_str().and_then(meta::parse_time)
}

/// Decides failure by pod failure policy, backoff limit or deadline; schedules a look at
/// the deadline otherwise.
fn decide_failure(jc: &mut JobCtx) {
    let now = jc.now;
    if let Some(c) = spec::true_condition(&jc.job, spec::SUCCESS_CRITERIA_MET) {
        jc.finished = Some(c.clone());
        return;
    }
    if let Some(c) = spec::true_condition(&jc.job, spec::FAILURE_TARGET) {
        let (r, m) = (c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or(""));
        jc.finished = Some(spec::condition(spec::FAILED, "True", r, m, now));
        return;
    }
    let fail_msg = jc.pods.iter().filter(|p| jc.spec.is_pod_failed(p)).find_map(|p| match jc.spec.failure_action(p) {
        Some(PolicyAction::FailJob(m)) => Some(m),
        _ => None,
    });
    if let Some(m) = fail_msg {
        jc.finished = Some(spec::condition(spec::FAILURE_TARGET, "True", "PodFailurePolicy", &m, now));
        return;
    }
    if jc.failed > jc.spec.backoff_limit || past_backoff_limit_on_failure(jc) {
        jc.finished = Some(spec::condition(spec::FAILURE_TARGET, "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now));
        return;
    }
    if let (Some(ads), Some(start), false) = (jc.spec.active_deadline, start_time(&jc.job), jc.spec.suspend) {
        let elapsed = (now - start).to_std().unwrap_or(Duration::ZERO);
        let allowed = Duration::from_secs(ads.max(0) as u64);
        if elapsed >= allowed {
            jc.finished = Some(spec::condition(spec::FAILURE_TARGET, "True", "DeadlineExceeded", "Job was active longer than specified deadline", now));
        } else {
            jc.requeue_after(allowed - elapsed);
        }
    }
}

/// Succeeded and failed indexes of an Indexed Job, and the verdicts that follow from them.
fn decide_indexes(jc: &mut JobCtx) {
    let completions = jc.spec.completions_usize();
    let now = jc.now;
    jc.prev_succeeded_indexes = Intervals::parse(jc.job["status"]["completedIndexes"].as_str().unwrap_or(""), completions);
    let newly: Vec<usize> = jc
        .pods
        .iter()
        .filter(|p| podutil::phase(p) == "Succeeded" && pods::has_tracking_finalizer(p))
        .filter_map(|p| indexes::valid_index(p, completions))
        .collect();
    jc.succeeded_indexes = jc.prev_succeeded_indexes.with_indexes(newly);
    jc.succeeded = jc.succeeded_indexes.total() as i64;
    if jc.spec.backoff_limit_per_index.is_some() {
        let prev = jc.job["status"]["failedIndexes"].as_str().map(|s| Intervals::parse(s, completions)).unwrap_or_default();
        let newly: Vec<usize> = jc
            .pods
            .iter()
            .filter(|p| pods::has_tracking_finalizer(p) && jc.spec.is_index_failed(p))
            .filter_map(|p| indexes::valid_index(p, completions))
            .collect();
        let failed = prev.with_indexes(newly);
        if jc.finished.is_none() {
            if jc.spec.max_failed_indexes.map(|m| failed.total() as i64 > m).unwrap_or(false) {
                let c = spec::condition(
                    spec::FAILURE_TARGET,
                    "True",
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes",
                    now,
                );
                jc.finished = Some(c);
            } else if failed.total() > 0 && failed.total() + jc.succeeded_indexes.total() >= completions {
                jc.finished = Some(spec::condition(spec::FAILURE_TARGET, "True", "FailedIndexes", "Job has failed indexes", now));
            }
        }
        jc.failed_indexes = Some(failed);
        jc.delayed_deletion = delayed_deletion(jc);
    }
    if jc.finished.is_none() && !jc.spec.success_policy.is_null() {
        if let Some(msg) = policy::match_success_policy(&jc.spec.success_policy, completions, &jc.succeeded_indexes) {
            jc.finished = Some(spec::condition(spec::SUCCESS_CRITERIA_MET, "True", "SuccessPolicy", &msg, now));
        }
    }
}

fn absolute_failures(p: &Value) -> i64 {
    indexes::count_annotation(p, indexes::INDEX_FAILURE_COUNT) + indexes::count_annotation(p, indexes::INDEX_IGNORED_FAILURE_COUNT)
}

/// Per index without an active, succeeded or failed outcome, the latest failed pod: its
/// finalizer stays until the replacement carries its failure count forward.
fn delayed_deletion(jc: &JobCtx) -> std::collections::BTreeMap<usize, Value> {
    let completions = jc.spec.completions_usize();
    let active = indexes::indexes_of(jc.pods.iter().filter(|p| podutil::is_active(p)));
    let failed = jc.failed_indexes.clone().unwrap_or_default();
    let mut out: std::collections::BTreeMap<usize, Value> = Default::default();
    for p in jc.pods.iter().filter(|p| pods::has_tracking_finalizer(p) && jc.spec.is_pod_failed(p)) {
        let Some(ix) = indexes::valid_index(p, completions) else {
            continue;
        };
        if jc.succeeded_indexes.has(ix) || failed.has(ix) || active.contains(&ix) {
            continue;
        }
        let replace = match out.get(&ix) {
            Some(last) => absolute_failures(last) <= absolute_failures(p) && backoff::finished_time(p) >= backoff::finished_time(last),
            None => true,
        };
        if replace {
            out.insert(ix, p.clone());
        }
    }
    out
}

/// Creates or deletes pods towards the wanted number of active pods; returns the number of
/// active pods afterwards and the first error.
async fn manage_job(ctx: &Ctx, jc: &mut JobCtx, active_pods: &[Value]) -> (i64, Option<ApiError>) {
    let mut active = active_pods.len() as i64;
    let refs: Vec<&Value> = active_pods.iter().collect();
    if jc.spec.suspend {
        let (removed, ready, err) = delete_job_pods(ctx, &jc.job, &refs).await;
        jc.ready -= ready;
        jc.terminating += removed;
        return (active - removed, err);
    }
    let want = match jc.spec.completions {
        None => {
            if jc.succeeded > 0 {
                active
            } else {
                jc.spec.parallelism
            }
        }
        Some(c) => (c - jc.succeeded).min(jc.spec.parallelism).max(0),
    };
    let rm_at_least = (active - want).max(0) as usize;
    let mut to_delete = pods::active_pods_for_removal(&refs, jc.spec.indexed, jc.spec.completions_usize(), rm_at_least);
    to_delete.truncate(MAX_CREATE_DELETE);
    if !to_delete.is_empty() {
        let (removed, ready, err) = delete_job_pods(ctx, &jc.job, &to_delete).await;
        jc.ready -= ready;
        jc.terminating += removed;
        return (active - removed, err);
    }
    let terminating = if jc.spec.only_replace_failed { jc.terminating } else { 0 };
    let diff = want - terminating - active;
    if diff <= 0 {
        return (active, None);
    }
    if jc.spec.backoff_limit_per_index.is_none() {
        let wait = backoff::remaining(&jc.new_backoff, jc.now);
        if !wait.is_zero() {
            jc.requeue_after(wait);
            return (active, None);
        }
    }
    let diff = (diff as usize).min(MAX_CREATE_DELETE);
    // What to create: plain pods, or the lowest pending indexes.
    let mut to_create: Vec<Option<usize>> = vec![None; diff];
    if jc.spec.indexed {
        let mut taken = jc.succeeded_indexes.with_indexes(indexes::indexes_of(refs.iter().copied()));
        if jc.spec.only_replace_failed {
            taken = taken.with_indexes(indexes::indexes_of(jc.pods.iter().filter(|p| meta::is_deleting(p) && !podutil::is_terminal(p))));
        }
        if let Some(f) = &jc.failed_indexes {
            taken = taken.merge(f);
        }
        let mut idx = taken.first_missing(diff, jc.spec.completions_usize());
        if jc.spec.backoff_limit_per_index.is_some() {
            let mut ready_now = Vec::new();
            let mut min_wait: Option<Duration> = None;
            for i in idx {
                let wait = match jc.delayed_deletion.get(&i) {
                    None => Duration::ZERO,
                    Some(last) => {
                        let r = Record { failures_after_last_success: absolute_failures(last) as u32 + 1, last_failure: Some(backoff::finished_time(last)) };
                        backoff::remaining(&r, jc.now)
                    }
                };
                if wait.is_zero() {
                    ready_now.push(i);
                } else {
                    min_wait = Some(min_wait.map(|m| m.min(wait)).unwrap_or(wait));
                }
            }
            if ready_now.is_empty() {
                if let Some(w) = min_wait {
                    jc.requeue_after(w);
                }
                return (active, None);
            }
            idx = ready_now;
        }
        to_create = idx.into_iter().map(Some).collect();
    }
    let (created, err) = create_pods(ctx, jc, &to_create).await;
    active += created as i64;
    (active, err)
}

/// Creates pods in slow-start batches (1, 2, 4, ...), stopping at the first failed batch.
async fn create_pods(ctx: &Ctx, jc: &JobCtx, want: &[Option<usize>]) -> (usize, Option<ApiError>) {
    let mut created = 0;
    let mut rest = want;
    let mut batch = 1;
    while !rest.is_empty() {
        let n = batch.min(rest.len());
        let (now, later) = rest.split_at(n);
        rest = later;
        let futs = now.iter().map(|ix| {
            let counts = ix.and_then(|i| {
                jc.spec.backoff_limit_per_index.map(|_| match jc.delayed_deletion.get(&i) {
                    None => (0, 0),
                    Some(prev) => {
                        let (f, ig) = (
                            indexes::count_annotation(prev, indexes::INDEX_FAILURE_COUNT),
                            indexes::count_annotation(prev, indexes::INDEX_IGNORED_FAILURE_COUNT),
                        );
                        if PolicyAction::counts(&jc.spec.failure_action(prev)) {
                            (f + 1, ig)
                        } else {
                            (f, ig + 1)
                        }
                    }
                })
            });
            let pod = pods::new_pod(&jc.job, *ix, counts);
            async move { ctx.create(PODS, meta::namespace(&jc.job), pod).await }
        });
        let mut failed = None;
        for r in join_all(futs).await {
            match r {
                Ok(p) => {
                    created += 1;
                    ctx.event(&jc.job, "Normal", "SuccessfulCreate", format!("Created pod: {}", meta::name(&p)));
                }
                Err(e) => {
                    let terminating_ns = e.details.as_ref().map(|d| d.to_string().contains("NamespaceTerminating")).unwrap_or(false);
                    if !terminating_ns {
                        ctx.event(&jc.job, "Warning", "FailedCreate", format!("Error creating: {}", e.message));
                        failed = Some(e);
                    }
                }
            }
        }
        if failed.is_some() {
            return (created, failed);
        }
        batch *= 2;
    }
    (created, None)
}

/// Removes the tracking finalizer and deletes each pod (pods removed on purpose are not
/// counted as failures); returns how many went, how many of them were ready, the first error.
async fn delete_job_pods(ctx: &Ctx, job: &Value, victims: &[&Value]) -> (i64, i64, Option<ApiError>) {
    let results = join_all(victims.iter().map(|p| async move {
        pods::remove_tracking_finalizer(ctx, p).await?;
        pods::delete_pod(ctx, job, p).await
    }))
    .await;
    let (mut removed, mut ready, mut err) = (0, 0, None);
    for (p, r) in victims.iter().zip(results) {
        match r {
            Ok(()) => {
                removed += 1;
                if podutil::is_ready(p) {
                    ready += 1;
                }
            }
            Err(e) => err = Some(e),
        }
    }
    (removed, ready, err)
}
