//! The RollingUpdate strategy (`rolling.go`): grow the new ReplicaSet within maxSurge, shrink
//! the old ones within maxUnavailable (unhealthy replicas first), one step per sync.

use std::time::Duration;

use serde_json::Value;

use super::sync::Dc;
use super::util::{self, replicas};
use crate::api::status::ApiError;

impl Dc<'_> {
    /// One step of a rolling update (`rolloutRolling`).
    pub async fn rollout_rolling(
        &self,
        d: &mut Value,
        rs_list: &mut Vec<Value>,
    ) -> Result<Option<Duration>, ApiError> {
        let (new, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, true)
            .await?;
        let Some(mut new) = new else { return Ok(None) };
        let all: Vec<&Value> = old.iter().chain(std::iter::once(&new)).collect();
        if let Some(updated) = self.reconcile_new_replica_set(&all, &new, d).await? {
            new = updated;
            let all: Vec<&Value> = old.iter().chain(std::iter::once(&new)).collect();
            return self.sync_rollout_status(&all, Some(&new), d).await;
        }
        if self.reconcile_old_replica_sets(&mut old, &new, d).await? {
            let all: Vec<&Value> = old.iter().chain(std::iter::once(&new)).collect();
            return self.sync_rollout_status(&all, Some(&new), d).await;
        }
        if util::deployment_complete(d, &d["status"]) {
            self.cleanup(&old, d).await?;
        }
        let all: Vec<&Value> = old.iter().chain(std::iter::once(&new)).collect();
        self.sync_rollout_status(&all, Some(&new), d).await
    }

    /// Scales the new ReplicaSet towards the Deployment's size within the surge; the scaled
    /// ReplicaSet if it changed size (`reconcileNewReplicaSet`).
    async fn reconcile_new_replica_set(
        &self,
        all: &[&Value],
        new: &Value,
        d: &Value,
    ) -> Result<Option<Value>, ApiError> {
        let want = replicas(d);
        if replicas(new) == want {
            return Ok(None);
        }
        let to = if replicas(new) > want {
            want
        } else {
            util::new_rs_new_replicas(d, all, new).map_err(ApiError::internal)?
        };
        let (scaled, rs) = self.scale_and_record(new, to, d).await?;
        Ok(scaled.then_some(rs))
    }

    /// Scales old ReplicaSets down as far as availability allows (`reconcileOldReplicaSets`).
    /// `old` is updated with what was written; true if anything shrank.
    async fn reconcile_old_replica_sets(
        &self,
        old: &mut [Value],
        new: &Value,
        d: &Value,
    ) -> Result<bool, ApiError> {
        let old_pods = util::sum_replicas(util::active(old.iter()));
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods = util::sum_replicas(old.iter().chain(std::iter::once(new)));
        let min_available = replicas(d) - util::max_unavailable(d);
        let new_unavailable = replicas(new) - util::status(new, "availableReplicas");
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Unhealthy replicas go first: removing them costs no availability.
        let cleaned = match self
            .cleanup_unhealthy_replicas(old, d, max_scaled_down)
            .await
        {
            Ok(n) => n,
            Err(_) => return Ok(false),
        };
        let scaled = match self.scale_down_old_for_rolling_update(old, new, d).await {
            Ok(n) => n,
            Err(_) => return Ok(false),
        };
        Ok(cleaned + scaled > 0)
    }

    /// Scales old ReplicaSets down by their unavailable replicas, oldest first, at most
    /// `max_cleanup` in all (`cleanupUnhealthyReplicas`).
    async fn cleanup_unhealthy_replicas(
        &self,
        old: &mut [Value],
        d: &Value,
        max_cleanup: i64,
    ) -> Result<i64, ApiError> {
        old.sort_by(util::by_creation);
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let (size, available) = (replicas(rs), util::status(rs, "availableReplicas"));
            if size == 0 || size == available {
                continue;
            }
            let down = (max_cleanup - total).min(size - available);
            let (_, updated) = self.scale_replica_set(rs, size - down, d, "down").await?;
            *rs = updated;
            total += down;
        }
        Ok(total)
    }

    /// Scales old ReplicaSets down, oldest first, by what exceeds the minimum availability
    /// (`scaleDownOldReplicaSetsForRollingUpdate`).
    async fn scale_down_old_for_rolling_update(
        &self,
        old: &mut [Value],
        new: &Value,
        d: &Value,
    ) -> Result<i64, ApiError> {
        let min_available = replicas(d) - util::max_unavailable(d);
        let available =
            util::sum_status(old.iter().chain(std::iter::once(new)), "availableReplicas");
        if available <= min_available {
            return Ok(0);
        }
        old.sort_by(util::by_creation);
        let budget = available - min_available;
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= budget {
                break;
            }
            if replicas(rs) == 0 {
                continue;
            }
            let down = replicas(rs).min(budget - total);
            let (_, updated) = self
                .scale_replica_set(rs, replicas(rs) - down, d, "down")
                .await?;
            *rs = updated;
            total += down;
        }
        Ok(total)
    }
}
