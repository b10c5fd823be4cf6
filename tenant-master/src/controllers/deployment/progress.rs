//! The Progressing condition during a rollout and the progress deadline, after upstream's
//! `progress.go`: NewReplicaSetAvailable once complete, ReplicaSetUpdated while moving,
//! ProgressDeadlineExceeded once nothing moved for progressDeadlineSeconds; the ReplicaSets'
//! ReplicaFailure conditions are lifted into the Deployment.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::sync::{calculate_status, Dc};
use super::util::{self, PROGRESSING, REPLICA_FAILURE};
use crate::api::status::ApiError;
use crate::meta;

impl Dc<'_> {
    /// Writes the rollout's status and conditions if they changed (`syncRolloutStatus`).
    /// Returns when to look again for a progress deadline, if nothing changed and the
    /// rollout may still time out (`requeueStuckDeployment`).
    pub async fn sync_rollout_status(
        &self,
        all: &[&Value],
        new: Option<&Value>,
        d: &mut Value,
    ) -> Result<Option<Duration>, ApiError> {
        let mut st = calculate_status(all, new, d);
        if !util::has_progress_deadline(d) {
            util::remove_condition(&mut st, PROGRESSING);
        }
        let current = util::condition(&d["status"], PROGRESSING).cloned();
        let was_complete = util::int(&st["replicas"]) == util::int(&st["updatedReplicas"])
            && current
                .as_ref()
                .map(|c| c["reason"] == util::NEW_RS_AVAILABLE)
                .unwrap_or(false);
        if util::has_progress_deadline(d) && !was_complete {
            let rs_or_deployment = |what: &str| match new {
                Some(n) => format!("ReplicaSet {:?} {what}", meta::name(n)),
                None => format!("Deployment {:?} {what}", meta::name(d)),
            };
            if util::deployment_complete(d, &st) {
                let msg = rs_or_deployment("has successfully progressed.");
                util::set_condition(
                    &mut st,
                    util::new_condition(PROGRESSING, "True", util::NEW_RS_AVAILABLE, &msg),
                );
            } else if util::deployment_progressing(d, &st) {
                // Progress refreshes lastUpdateTime even with an unchanged reason.
                let mut cond = util::new_condition(
                    PROGRESSING,
                    "True",
                    util::REPLICASET_UPDATED,
                    &rs_or_deployment("is progressing."),
                );
                if let Some(cur) = &current {
                    if cur["status"] == "True" {
                        cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    util::remove_condition(&mut st, PROGRESSING);
                }
                util::set_condition(&mut st, cond);
            } else if util::deployment_timed_out(d, &st, Utc::now()) {
                let msg = rs_or_deployment("has timed out progressing.");
                util::set_condition(
                    &mut st,
                    util::new_condition(PROGRESSING, "False", util::TIMED_OUT, &msg),
                );
            }
        }
        match replica_failure(all, new) {
            Some(c) => util::set_condition(&mut st, c),
            None => util::remove_condition(&mut st, REPLICA_FAILURE),
        }
        let st = util::normalized_status(&st);
        if util::normalized_status(&d["status"]) == st {
            return Ok(requeue_for_deadline(d, &st));
        }
        d["status"] = st;
        self.update_status(d).await?;
        Ok(None)
    }
}

/// The ReplicaFailure condition of the new ReplicaSet, else of any other, as a Deployment
/// condition (`getReplicaFailures`).
fn replica_failure(all: &[&Value], new: Option<&Value>) -> Option<Value> {
    let of = |rs: &Value| util::condition(&rs["status"], REPLICA_FAILURE).cloned();
    let c = new
        .and_then(of)
        .or_else(|| all.iter().find_map(|rs| of(rs)))?;
    Some(json!({
        "type": REPLICA_FAILURE, "status": c["status"], "lastUpdateTime": c["lastTransitionTime"],
        "lastTransitionTime": c["lastTransitionTime"], "reason": c["reason"], "message": c["message"],
    }))
}

/// How long until a rollout that has not completed may have run past its progress deadline
/// (plus a second of slack, as upstream); None if it cannot time out.
fn requeue_for_deadline(d: &Value, st: &Value) -> Option<Duration> {
    if util::deployment_complete(d, st) {
        return None;
    }
    let at = util::progress_deadline(d, &d["status"])?;
    let after = (at - Utc::now()).to_std().unwrap_or_default();
    Some(after + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_rollout_is_looked_at_again_at_its_deadline() {
        let ten_ago = (Utc::now() - chrono::Duration::seconds(10))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let d = json!({"metadata": {"generation": 1}, "spec": {"replicas": 2, "progressDeadlineSeconds": 30},
            "status": {"conditions": [{"type": PROGRESSING, "status": "True", "reason": util::REPLICASET_UPDATED, "lastUpdateTime": ten_ago}]}});
        let st = json!({"replicas": 2, "updatedReplicas": 1, "availableReplicas": 1, "observedGeneration": 1});
        let after = requeue_for_deadline(&d, &st).unwrap();
        assert!(
            after > Duration::from_secs(18) && after <= Duration::from_secs(21),
            "{after:?}"
        );
        let done = json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2, "observedGeneration": 1});
        assert_eq!(requeue_for_deadline(&d, &done), None);
        // Past the deadline it has timed out.
        let mut late = d.clone();
        late["status"]["conditions"][0]["lastUpdateTime"] = json!("2020-01-01T00:00:00Z");
        assert!(util::deployment_timed_out(
            &late,
            &late["status"],
            Utc::now()
        ));
    }

    #[test]
    fn replica_failures_of_the_new_replica_set_win() {
        let cond = |m: &str| json!({"conditions": [{"type": REPLICA_FAILURE, "status": "True", "reason": "FailedCreate", "message": m, "lastTransitionTime": "t"}]});
        let old = json!({"status": cond("old")});
        let new = json!({"status": cond("new")});
        assert_eq!(
            replica_failure(&[&old, &new], Some(&new)).unwrap()["message"],
            "new"
        );
        assert_eq!(replica_failure(&[&old], None).unwrap()["message"], "old");
        assert!(replica_failure(&[], None).is_none());
    }
}
