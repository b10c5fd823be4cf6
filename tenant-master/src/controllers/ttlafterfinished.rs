//! The TTL-after-finished controller (kube-controller-manager's `ttl-after-finished`):
//! deletes a finished Job `spec.ttlSecondsAfterFinished` seconds after its Complete or Failed
//! condition, with Foreground propagation (its pods go first, through the garbage collector)
//! and a UID precondition. A Job not yet due is queued again for exactly its expiry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::runtime::ctx::JOBS;
use super::runtime::{Action, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::DeleteOpts;

/// Runs until the process ends.
pub async fn run(ctx: Ctx) {
    Controller::new("ttl-after-finished", ctx)
        .watches(JOBS, |ch| match ch.object {
            Some(o) if needs_cleanup(&o.value()) => vec![ch.key()],
            _ => vec![],
        })
        .run(|ctx, key| async move { reconcile(&ctx, &key).await })
        .await
}

/// When the Job finished: the transition of its True Complete or Failed condition.
fn finish_time(job: &Value) -> Option<DateTime<Utc>> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(meta::parse_time)
}

/// A finished Job with a TTL that is not being deleted yet.
fn needs_cleanup(job: &Value) -> bool {
    !job["spec"]["ttlSecondsAfterFinished"].is_null() && !meta::is_deleting(job) && finish_time(job).is_some()
}

/// How long until the Job expires (zero: now); None when it needs no cleanup.
pub fn time_left(job: &Value, now: DateTime<Utc>) -> Option<Duration> {
    if !needs_cleanup(job) {
        return None;
    }
    let ttl = job["spec"]["ttlSecondsAfterFinished"].as_i64()?;
    let finished = finish_time(job)?;
    if finished > now {
        tracing::info!(job = meta::name(job), "found a Job finished in the future (clock skew?); its cleanup is deferred");
    }
    let expire = finished + chrono::Duration::seconds(ttl);
    Some((expire - now).to_std().unwrap_or(Duration::ZERO))
}

async fn reconcile(ctx: &Ctx, key: &ObjKey) -> Result<Action, ApiError> {
    let Some(job) = ctx.get(JOBS, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    match time_left(&job, Utc::now()) {
        None => return Ok(Action::Done),
        Some(d) if !d.is_zero() => return Ok(Action::RequeueAfter(d)),
        Some(_) => {}
    }
    let o = DeleteOpts { propagation: Some("Foreground".into()), precondition_uid: Some(meta::uid(&job).to_string()), ..Default::default() };
    match ctx.delete(JOBS, &key.namespace, &key.name, &o).await {
        Ok(_) => Ok(Action::Done),
        // Replaced by another Job of the same name meanwhile: that one is judged on its own.
        Err(e) if e.code == 409 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_counts_from_the_finish() {
        let job = |ttl: Value, deleting: bool| {
            let mut j = json!({"metadata": {"name": "j"}, "spec": {"ttlSecondsAfterFinished": ttl},
                "status": {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
            if deleting {
                j["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:05Z");
            }
            j
        };
        let now = meta::parse_time("2024-01-01T00:00:40Z").unwrap();
        assert_eq!(time_left(&job(json!(100), false), now), Some(Duration::from_secs(60)));
        assert_eq!(time_left(&job(json!(10), false), now), Some(Duration::ZERO));
        assert_eq!(time_left(&job(json!(0), false), now), Some(Duration::ZERO));
        assert_eq!(time_left(&job(Value::Null, false), now), None);
        assert_eq!(time_left(&job(json!(0), true), now), None);
        let running = json!({"spec": {"ttlSecondsAfterFinished": 0}, "status": {}});
        assert_eq!(time_left(&running, now), None);
    }
}
