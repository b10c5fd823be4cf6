//! Reading a Job (`batch/v1`) from its JSON: the spec fields the controller works with, with
//! the API's defaults where a field is absent, and the conditions of its status.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::indexes;
use super::policy::{self, Action};
use crate::meta;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const SUSPENDED: &str = "Suspended";

/// The value of `spec.managedBy` that means this controller.
pub const MANAGED_BY_DEFAULT: &str = "kubernetes.io/job-controller";

/// The spec fields of one Job.
pub struct JobSpec {
    pub completions: Option<i64>,
    pub parallelism: i64,
    pub backoff_limit: i64,
    pub backoff_limit_per_index: Option<i64>,
    pub max_failed_indexes: Option<i64>,
    pub indexed: bool,
    pub suspend: bool,
    pub active_deadline: Option<i64>,
    pub pod_failure_policy: Value,
    pub success_policy: Value,
    pub only_replace_failed: bool,
    pub restart_on_failure: bool,
}

impl JobSpec {
    pub fn of(job: &Value) -> JobSpec {
        let s = &job["spec"];
        let pfp = s["podFailurePolicy"].clone();
        JobSpec {
            completions: s["completions"].as_i64(),
            parallelism: s["parallelism"].as_i64().unwrap_or(1).max(0),
            backoff_limit: s["backoffLimit"].as_i64().unwrap_or(6),
            backoff_limit_per_index: s["backoffLimitPerIndex"].as_i64(),
            max_failed_indexes: s["maxFailedIndexes"].as_i64(),
            indexed: s["completionMode"] == "Indexed",
            suspend: s["suspend"] == json!(true),
            active_deadline: s["activeDeadlineSeconds"].as_i64(),
            only_replace_failed: s["podReplacementPolicy"] == "Failed" || !pfp.is_null(),
            pod_failure_policy: pfp,
            success_policy: s["successPolicy"].clone(),
            restart_on_failure: s["template"]["spec"]["restartPolicy"] == "OnFailure",
        }
    }

    /// The number of completions as an index bound (0 when unset).
    pub fn completions_usize(&self) -> usize {
        self.completions.unwrap_or(0).max(0) as usize
    }

    /// Failed, or (unless only failed pods are replaced) being deleted without having succeeded.
    pub fn is_pod_failed(&self, pod: &Value) -> bool {
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        if phase == "Failed" {
            return true;
        }
        !self.only_replace_failed && meta::is_deleting(pod) && phase != "Succeeded"
    }

    /// The pod failure policy's verdict on a failed pod (None: counts as usual).
    pub fn failure_action(&self, pod: &Value) -> Option<Action> {
        if self.pod_failure_policy.is_null() {
            return None;
        }
        policy::match_pod_failure_policy(&self.pod_failure_policy, pod)
    }

    /// Whether an index's pod exhausted its backoffLimitPerIndex (or a FailIndex rule hit).
    pub fn is_index_failed(&self, pod: &Value) -> bool {
        let Some(limit) = self.backoff_limit_per_index else {
            return false;
        };
        if !self.is_pod_failed(pod) {
            return false;
        }
        let action = self.failure_action(pod);
        if action == Some(Action::FailIndex) {
            return true;
        }
        Action::counts(&action) && indexes::count_annotation(pod, indexes::INDEX_FAILURE_COUNT) >= limit
    }
}

/// A condition with a True status, by type.
pub fn true_condition<'a>(job: &'a Value, typ: &str) -> Option<&'a Value> {
    job["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == typ && c["status"] == "True")
}

/// Complete or Failed.
pub fn is_finished(job: &Value) -> bool {
    true_condition(job, COMPLETE).is_some() || true_condition(job, FAILED).is_some()
}

/// A Job condition as upstream writes it (reason and message omitted when empty).
pub fn condition(typ: &str, status: &str, reason: &str, message: &str, now: DateTime<Utc>) -> Value {
    let t = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut c = json!({"type": typ, "status": status, "lastProbeTime": t, "lastTransitionTime": t});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// `ensureJobConditionStatus`: replaces the condition of that type when status, reason or
/// message differ; appends it unless it would be a new False one. True when changed.
pub fn ensure_condition(status: &mut Value, typ: &str, st: &str, reason: &str, message: &str, now: DateTime<Utc>) -> bool {
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conds = status["conditions"].as_array_mut().expect("array");
    if let Some(c) = conds.iter_mut().find(|c| c["type"] == typ) {
        let same = c["status"] == st && c["reason"].as_str().unwrap_or("") == reason && c["message"].as_str().unwrap_or("") == message;
        if same {
            return false;
        }
        *c = condition(typ, st, reason, message, now);
        return true;
    }
    if st == "False" {
        return false;
    }
    conds.push(condition(typ, st, reason, message, now));
    true
}

/// The time a finished Job finished: its completionTime, else the Complete or Failed
/// condition's transition.
pub fn finish_time(job: &Value) -> Option<DateTime<Utc>> {
    if let Some(t) = job["status"]["completionTime"].as_str().and_then(meta::parse_time) {
        return Some(t);
    }
    [COMPLETE, FAILED].iter().filter_map(|t| true_condition(job, t)).find_map(|c| c["lastTransitionTime"].as_str().and_then(meta::parse_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_replaced_not_duplicated() {
        let now = Utc::now();
        let mut st = json!({});
        assert!(!ensure_condition(&mut st, SUSPENDED, "False", "JobResumed", "Job resumed", now));
        assert!(ensure_condition(&mut st, SUSPENDED, "True", "JobSuspended", "Job suspended", now));
        assert!(!ensure_condition(&mut st, SUSPENDED, "True", "JobSuspended", "Job suspended", now));
        assert!(ensure_condition(&mut st, SUSPENDED, "False", "JobResumed", "Job resumed", now));
        assert_eq!(st["conditions"].as_array().unwrap().len(), 1);
        assert_eq!(st["conditions"][0]["reason"], "JobResumed");
    }

    #[test]
    fn defaults_and_failures() {
        let job = json!({"spec": {"completions": 3, "template": {"spec": {"restartPolicy": "Never"}}}});
        let s = JobSpec::of(&job);
        assert_eq!((s.completions, s.parallelism, s.backoff_limit, s.indexed), (Some(3), 1, 6, false));
        let deleting = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert!(s.is_pod_failed(&deleting));
        let only_failed = JobSpec::of(&json!({"spec": {"podReplacementPolicy": "Failed"}}));
        assert!(!only_failed.is_pod_failed(&deleting));
    }
}
