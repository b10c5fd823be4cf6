//! The CronJob controller (kube-controller-manager's `cronjob`, upstream's ControllerV2):
//! creates a Job for each activation of a CronJob's schedule, named
//! `<cronjob>-<scheduled time in minutes since the epoch>`, honours concurrencyPolicy,
//! startingDeadlineSeconds, suspend and spec.timeZone, keeps `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`, and prunes finished Jobs beyond the history
//! limits. Between activations a CronJob costs nothing: its key is queued again for the next
//! activation only ([`times::until_next`]).
//!
//! Simplified against upstream: where upstream re-reads a CronJob or Job from the API server
//! to rule out a stale informer, this reads the watch cache, which the runtime has brought up
//! to this server's last write. Without `spec.timeZone` schedules run in UTC (upstream: the
//! controller manager's local zone, UTC in the usual containers).

pub mod history;
pub mod schedule;
pub mod times;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::runtime::ctx::{CRONJOBS, JOBS};
use super::runtime::{controller_of, owner_keys, Action, Controller, Ctx, ObjKey, OwnerRef};
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::DeleteOpts;
use schedule::Schedule;
use times::{History, Missed};

/// The annotation with a Job's scheduled time (RFC 3339, in the CronJob's zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    Controller::new("cronjob", ctx)
        .watches(CRONJOBS, |ch| vec![ch.key()])
        .watches(JOBS, owner_keys("CronJob"))
        .run(|ctx, key| async move { sync(&ctx, &key).await })
        .await
}

/// The Jobs a CronJob controls.
fn jobs_of(ctx: &Ctx, cj: &Value) -> Vec<Value> {
    let name = meta::name(cj);
    ctx.list(JOBS, meta::namespace(cj))
        .iter()
        .map(|o| (*o.value()).clone())
        .filter(|j| controller_of(j).map(|c| c.kind == "CronJob" && c.name == name).unwrap_or(false))
        .collect()
}

async fn sync(ctx: &Ctx, key: &ObjKey) -> Result<Action, ApiError> {
    let Some(cj) = ctx.get(CRONJOBS, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let mut cj = (*cj).clone();
    let before = cj["status"].clone();
    let jobs = jobs_of(ctx, &cj);
    cleanup_finished(ctx, &mut cj, &jobs).await;
    let (requeue, err) = sync_cronjob(ctx, &mut cj, &jobs, Utc::now()).await;
    if cj["status"] != before {
        ctx.update_status(CRONJOBS, cj).await?;
    }
    match (requeue, err) {
        (Some(d), _) => Ok(Action::RequeueAfter(d)),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(Action::Done),
    }
}

fn active_refs(cj: &Value) -> Vec<Value> {
    cj["status"]["active"].as_array().cloned().unwrap_or_default()
}

fn set_active(cj: &mut Value, refs: Vec<Value>) {
    if !cj["status"].is_object() {
        cj["status"] = json!({});
    }
    let st = cj["status"].as_object_mut().expect("object");
    if refs.is_empty() {
        st.remove("active");
    } else {
        st.insert("active".into(), json!(refs));
    }
}

fn in_active(cj: &Value, uid: &str) -> bool {
    active_refs(cj).iter().any(|r| r["uid"] == uid)
}

fn remove_active(cj: &mut Value, uid: &str) {
    let refs = active_refs(cj).into_iter().filter(|r| r["uid"] != uid).collect();
    set_active(cj, refs);
}

/// Deletes a Job of the CronJob (background propagation) and forgets it.
async fn delete_job(ctx: &Ctx, cj: &mut Value, job: &Value) -> bool {
    let o = DeleteOpts { propagation: Some("Background".into()), ..Default::default() };
    match ctx.delete(JOBS, meta::namespace(job), meta::name(job), &o).await {
        Ok(_) => {
            remove_active(cj, meta::uid(job));
            ctx.event(cj, "Normal", "SuccessfulDelete", format!("Deleted job {}", meta::name(job)));
            true
        }
        Err(e) => {
            ctx.event(cj, "Warning", "FailedDelete", format!("Deleted job: {}", e.message));
            false
        }
    }
}

/// Deletes the oldest finished Jobs beyond the history limits.
async fn cleanup_finished(ctx: &Ctx, cj: &mut Value, jobs: &[Value]) {
    let (ok, failed) = (cj["spec"]["successfulJobsHistoryLimit"].as_i64(), cj["spec"]["failedJobsHistoryLimit"].as_i64());
    let refs: Vec<&Value> = jobs.iter().collect();
    for job in history::to_prune(&refs, ok, failed) {
        delete_job(ctx, cj, job).await;
    }
}

/// The schedule string as upstream hands it to the parser: `TZ=<zone> ` prepended when
/// `spec.timeZone` is set (and valid) and the schedule names no zone itself.
fn format_schedule(ctx: &Ctx, cj: &Value) -> String {
    let s = cj["spec"]["schedule"].as_str().unwrap_or("");
    if s.contains("TZ") {
        let msg = format!("CRON_TZ or TZ used in schedule {s:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details");
        ctx.event(cj, "Warning", "UnsupportedSchedule", msg);
        return s.to_string();
    }
    match cj["spec"]["timeZone"].as_str() {
        Some(tz) if tz.parse::<Tz>().is_ok() => format!("TZ={tz} {s}"),
        _ => s.to_string(),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The Job for one activation (`getJobFromTemplate2`).
pub fn job_from_template(cj: &Value, scheduled: DateTime<Utc>) -> Value {
    let tpl = &cj["spec"]["jobTemplate"];
    let mut annotations = tpl["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    let tz: Tz = cj["spec"]["timeZone"].as_str().and_then(|t| t.parse().ok()).unwrap_or(Tz::UTC);
    let at = scheduled.with_timezone(&tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    annotations.insert(SCHEDULED_TIMESTAMP.into(), json!(at));
    let mut owner = cj.clone();
    owner["apiVersion"] = json!("batch/v1");
    owner["kind"] = json!("CronJob");
    let mut md = json!({
        "name": format!("{}-{}", meta::name(cj), scheduled.timestamp().div_euclid(60)),
        "namespace": meta::namespace(cj),
        "annotations": annotations,
        "ownerReferences": [OwnerRef::controller_ref(&owner)],
    });
    if let Some(l) = tpl["metadata"]["labels"].as_object().filter(|l| !l.is_empty()) {
        md["labels"] = json!(l);
    }
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": md, "spec": tpl["spec"].clone()})
}

fn object_ref(job: &Value) -> Value {
    json!({"kind": "Job", "namespace": meta::namespace(job), "name": meta::name(job), "uid": meta::uid(job),
           "apiVersion": "batch/v1", "resourceVersion": meta::resource_version(job)})
}

/// One pass of `syncCronJob`: bookkeeping of active and finished Jobs, then possibly a new
/// Job; returns when to look again and the error to retry with.
async fn sync_cronjob(ctx: &Ctx, cj: &mut Value, jobs: &[Value], now: DateTime<Utc>) -> (Option<Duration>, Option<ApiError>) {
    for j in jobs {
        let uid = meta::uid(j);
        let found = in_active(cj, uid);
        let finished = history::finished_status(j);
        match (found, finished) {
            (false, None) => {
                ctx.event(cj, "Warning", "UnexpectedJob", format!("Saw a job that the controller did not create or forgot: {}", meta::name(j)));
            }
            (true, Some(status)) => {
                remove_active(cj, uid);
                ctx.event(cj, "Normal", "SawCompletedJob", format!("Saw completed job: {}, status: {status}", meta::name(j)));
            }
            (_, Some("Complete")) => {
                let done = j["status"]["completionTime"].as_str().and_then(meta::parse_time);
                let last = cj["status"]["lastSuccessfulTime"].as_str().and_then(meta::parse_time);
                if let Some(done) = done {
                    if last.map(|l| done > l).unwrap_or(true) {
                        cj["status"]["lastSuccessfulTime"] = json!(rfc3339(done));
                    }
                }
            }
            _ => {}
        }
    }
    // Active Jobs that no longer exist.
    for r in active_refs(cj) {
        let uid = r["uid"].as_str().unwrap_or("");
        if jobs.iter().any(|j| meta::uid(j) == uid) {
            continue;
        }
        let exists = ctx.get(JOBS, r["namespace"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or("")).map(|j| meta::uid(&j) == uid).unwrap_or(false);
        if !exists {
            ctx.event(cj, "Normal", "MissingJob", format!("Active job went missing: {}", r["name"].as_str().unwrap_or("")));
            remove_active(cj, uid);
        }
    }
    if meta::is_deleting(cj) {
        return (None, None);
    }
    if let Some(tz) = cj["spec"]["timeZone"].as_str() {
        if tz.parse::<Tz>().is_err() {
            ctx.event(cj, "Warning", "UnknownTimeZone", format!("invalid timeZone: {tz:?}: unknown time zone {tz}"));
            return (None, None);
        }
    }
    if cj["spec"]["suspend"] == json!(true) {
        return (None, None);
    }
    let spec_str = format_schedule(ctx, cj);
    let sched = match Schedule::parse(&spec_str, Tz::UTC) {
        Ok(s) => s,
        Err(e) => {
            let s = cj["spec"]["schedule"].as_str().unwrap_or("").to_string();
            ctx.event(cj, "Warning", "UnparseableSchedule", format!("unparseable schedule: {s:?} : {e}"));
            return (None, None);
        }
    };
    let hist = || History {
        created: cj["metadata"]["creationTimestamp"].as_str().and_then(meta::parse_time).unwrap_or(now),
        last_schedule: cj["status"]["lastScheduleTime"].as_str().and_then(meta::parse_time),
        starting_deadline: cj["spec"]["startingDeadlineSeconds"].as_i64(),
    };
    let scheduled = match times::next_schedule_time(&hist(), now, &sched) {
        Ok((t, missed)) => {
            if missed == Missed::Many {
                ctx.event(
                    cj,
                    "Warning",
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                );
            }
            t
        }
        Err(e) => {
            let s = cj["spec"]["schedule"].as_str().unwrap_or("").to_string();
            ctx.event(cj, "Warning", "InvalidSchedule", format!("invalid schedule: {s} : {e}"));
            return (None, None);
        }
    };
    let next = |cj: &Value| {
        let h = History {
            created: cj["metadata"]["creationTimestamp"].as_str().and_then(meta::parse_time).unwrap_or(now),
            last_schedule: cj["status"]["lastScheduleTime"].as_str().and_then(meta::parse_time),
            starting_deadline: cj["spec"]["startingDeadlineSeconds"].as_i64(),
        };
        Some(times::until_next(&h, now, &sched))
    };
    let Some(scheduled) = scheduled else {
        return (next(cj), None);
    };
    if let Some(sds) = cj["spec"]["startingDeadlineSeconds"].as_i64() {
        if scheduled + chrono::Duration::seconds(sds) < now {
            let at = scheduled.format("%a, %d %b %Y %H:%M:%S %z");
            ctx.event(cj, "Warning", "MissSchedule", format!("Missed scheduled time to start a job: {at}"));
            return (next(cj), None);
        }
    }
    let mut job = job_from_template(cj, scheduled);
    let job_name = meta::name(&job).to_string();
    let already = active_refs(cj).iter().any(|r| r["name"] == job_name.as_str() && r["namespace"] == meta::namespace(cj));
    if already || hist().last_schedule == Some(scheduled) {
        return (next(cj), None);
    }
    let policy = cj["spec"]["concurrencyPolicy"].as_str().unwrap_or("Allow");
    if policy == "Forbid" && !active_refs(cj).is_empty() {
        ctx.event(cj, "Normal", "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid");
        return (next(cj), None);
    }
    if policy == "Replace" {
        for r in active_refs(cj) {
            let (ns, name) = (r["namespace"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""));
            match ctx.get(JOBS, ns, name) {
                Some(j) => {
                    if !delete_job(ctx, cj, &j).await {
                        return (None, Some(ApiError::internal(format!("could not replace job {ns}/{name}"))));
                    }
                }
                None => remove_active(cj, r["uid"].as_str().unwrap_or("")),
            }
        }
    }
    let ns = meta::namespace(cj).to_string();
    match ctx.create(JOBS, &ns, job.clone()).await {
        Ok(created) => {
            ctx.event(cj, "Normal", "SuccessfulCreate", format!("Created job {}", meta::name(&created)));
            job = created;
        }
        Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {
            let Some(existing) = ctx.get(JOBS, &ns, &job_name) else {
                return (None, Some(e));
            };
            let ours = controller_of(&existing).map(|c| c.uid == meta::uid(cj)).unwrap_or(false);
            if !ours || in_active(cj, meta::uid(&existing)) {
                return (next(cj), None);
            }
            job = (*existing).clone();
        }
        Err(e) => {
            let terminating = e.details.as_ref().map(|d| d.to_string().contains("NamespaceTerminating")).unwrap_or(false);
            if !terminating {
                ctx.event(cj, "Warning", "FailedCreate", format!("Error creating job: {}", e.message));
            }
            return (None, Some(e));
        }
    }
    let mut refs = active_refs(cj);
    refs.push(object_ref(&job));
    set_active(cj, refs);
    cj["status"]["lastScheduleTime"] = json!(rfc3339(scheduled));
    (next(cj), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_named_by_their_minute_and_annotated_in_the_zone() {
        let cj = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": "ns", "uid": "u1"},
            "spec": {"schedule": "*/1 * * * *", "timeZone": "Europe/Berlin", "jobTemplate": {"metadata": {"labels": {"a": "b"}},
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i"}]}}}}}});
        let at = crate::meta::parse_time("2024-05-01T10:01:00Z").unwrap();
        let j = job_from_template(&cj, at);
        assert_eq!(j["metadata"]["name"], format!("hello-{}", at.timestamp() / 60));
        assert_eq!(j["metadata"]["annotations"][SCHEDULED_TIMESTAMP], "2024-05-01T12:01:00+02:00");
        assert_eq!(j["metadata"]["labels"]["a"], "b");
        assert_eq!(j["metadata"]["ownerReferences"][0]["kind"], "CronJob");
        assert_eq!(j["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "OnFailure");
    }
}
