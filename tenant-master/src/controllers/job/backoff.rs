//! Delays before replacing failed pods, after upstream's `backoff_utils.go`: each Job keeps
//! (in memory, as upstream) how many pods failed since the last success and when the last one
//! failed; the next pod waits 10 s after the first failure, doubled per further failure, at
//! most 10 minutes.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;

use crate::meta;

/// The delay after the first failure (`DefaultJobPodFailureBackOff`).
pub const BASE: Duration = Duration::from_secs(10);
/// The longest delay (`MaxJobPodFailureBackOff`).
pub const MAX: Duration = Duration::from_secs(600);

/// Failures since the last success of one Job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub failures_after_last_success: u32,
    pub last_failure: Option<DateTime<Utc>>,
}

/// The records of all Jobs of a tenant, by `namespace/name`.
#[derive(Default)]
pub struct Store(Mutex<HashMap<String, Record>>);

impl Store {
    pub fn get(&self, key: &str) -> Record {
        self.0.lock().get(key).cloned().unwrap_or_default()
    }
    pub fn set(&self, key: &str, r: Record) {
        self.0.lock().insert(key.to_string(), r);
    }
    pub fn remove(&self, key: &str) {
        self.0.lock().remove(key);
    }
}

/// When a pod finished: the last container's finishedAt, else when it turned not Ready, else
/// its deletion time less the grace period, else its creation.
pub fn finished_time(pod: &Value) -> DateTime<Utc> {
    let ts = |v: &Value| v.as_str().and_then(meta::parse_time);
    let statuses = pod["status"]["containerStatuses"].as_array();
    if let Some(st) = statuses.filter(|s| !s.is_empty()) {
        let times: Option<Vec<DateTime<Utc>>> = st.iter().map(|c| ts(&c["state"]["terminated"]["finishedAt"])).collect();
        if let Some(t) = times.and_then(|t| t.into_iter().max()) {
            return t;
        }
    }
    if let Some(c) = super::super::podutil::condition(pod, "Ready").filter(|c| c["status"] == "False") {
        if let Some(t) = ts(&c["lastTransitionTime"]) {
            return t;
        }
    }
    if let Some(t) = ts(&pod["metadata"]["deletionTimestamp"]) {
        return t - chrono::Duration::seconds(pod["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0));
    }
    ts(&pod["metadata"]["creationTimestamp"]).unwrap_or_else(Utc::now)
}

/// The record after newly finished pods: successes reset it, failures after the last success
/// count up (`newBackoffRecord`).
pub fn next_record(old: &Record, succeeded: &[&Value], failed: &[&Value]) -> Record {
    let mut ok: Vec<DateTime<Utc>> = succeeded.iter().map(|p| finished_time(p)).collect();
    let mut bad: Vec<DateTime<Utc>> = failed.iter().map(|p| finished_time(p)).collect();
    ok.sort();
    bad.sort();
    match (ok.last(), bad.last()) {
        (None, None) => old.clone(),
        (None, Some(last)) => Record { failures_after_last_success: old.failures_after_last_success + bad.len() as u32, last_failure: Some(*last) },
        (Some(_), None) => Record::default(),
        (Some(last_ok), Some(_)) => {
            let after: Vec<&DateTime<Utc>> = bad.iter().filter(|t| *t > last_ok).collect();
            Record { failures_after_last_success: after.len() as u32, last_failure: after.last().map(|t| **t) }
        }
    }
}

/// The delay for `failures` consecutive failures: BASE doubled per failure after the first.
pub fn delay_for(failures: u32) -> Duration {
    let mut d = BASE;
    for _ in 1..failures {
        d *= 2;
        if d >= MAX {
            return MAX;
        }
    }
    d
}

/// How long a replacement pod must still wait at `now` (zero: create it now).
pub fn remaining(r: &Record, now: DateTime<Utc>) -> Duration {
    let (Some(last), n) = (r.last_failure, r.failures_after_last_success) else {
        return Duration::ZERO;
    };
    if n == 0 {
        return Duration::ZERO;
    }
    let elapsed = (now - last).to_std().unwrap_or(Duration::ZERO);
    delay_for(n).saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(finished: &str) -> Value {
        json!({"status": {"containerStatuses": [{"state": {"terminated": {"finishedAt": finished}}}]}})
    }

    #[test]
    fn delays_double_up_to_ten_minutes() {
        assert_eq!(delay_for(1), Duration::from_secs(10));
        assert_eq!(delay_for(2), Duration::from_secs(20));
        assert_eq!(delay_for(3), Duration::from_secs(40));
        assert_eq!(delay_for(7), Duration::from_secs(600));
        assert_eq!(delay_for(60), Duration::from_secs(600));
    }

    #[test]
    fn records_count_failures_since_the_last_success() {
        let t0 = "2024-01-01T00:00:00Z";
        let r = next_record(&Record::default(), &[], &[&pod(t0)]);
        assert_eq!(r.failures_after_last_success, 1);
        let now = meta::parse_time("2024-01-01T00:00:04Z").unwrap();
        assert_eq!(remaining(&r, now), Duration::from_secs(6));
        let r2 = next_record(&r, &[], &[&pod("2024-01-01T00:00:30Z")]);
        assert_eq!(r2.failures_after_last_success, 2);
        assert_eq!(remaining(&r2, meta::parse_time("2024-01-01T00:00:40Z").unwrap()), Duration::from_secs(10));
        assert_eq!(remaining(&r2, meta::parse_time("2024-01-01T00:01:00Z").unwrap()), Duration::ZERO);
        // A success resets; failures after it count again.
        let r3 = next_record(&r2, &[&pod("2024-01-01T00:01:00Z")], &[&pod("2024-01-01T00:00:50Z"), &pod("2024-01-01T00:01:10Z")]);
        assert_eq!(r3.failures_after_last_success, 1);
        assert_eq!(r3.last_failure, meta::parse_time("2024-01-01T00:01:10Z"));
        assert_eq!(next_record(&r3, &[&pod(t0)], &[]), Record::default());
    }
}
