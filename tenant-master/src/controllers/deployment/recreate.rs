//! The Recreate strategy (`recreate.go`): scale every old ReplicaSet to zero, wait until none
//! of their pods runs any more, then create and scale up the new one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::sync::Dc;
use super::util::{self, replicas};
use crate::api::status::ApiError;
use crate::controllers::podutil;
use crate::meta;

/// Pods by the UID of the ReplicaSet controlling them.
pub type PodMap = HashMap<String, Vec<Arc<Value>>>;

impl Dc<'_> {
    /// One step of a Recreate rollout (`rolloutRecreate`).
    pub async fn rollout_recreate(
        &self,
        d: &mut Value,
        rs_list: &mut Vec<Value>,
        pods: &PodMap,
    ) -> Result<Option<Duration>, ApiError> {
        let (mut new, mut old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let mut scaled_down = false;
        for rs in old.iter_mut() {
            if replicas(rs) == 0 {
                continue;
            }
            let (scaled, updated) = self.scale_and_record(rs, 0, d).await?;
            *rs = updated;
            scaled_down |= scaled;
        }
        if scaled_down || old_pods_running(new.as_ref(), &old, pods) {
            let all: Vec<&Value> = old.iter().chain(new.as_ref()).collect();
            return self.sync_rollout_status(&all, new.as_ref(), d).await;
        }
        if new.is_none() {
            let (n, o) = self
                .get_all_replica_sets_and_sync_revision(d, rs_list, true)
                .await?;
            new = n;
            old = o;
        }
        if let Some(rs) = &new {
            let (_, updated) = self.scale_and_record(rs, replicas(d), d).await?;
            new = Some(updated);
        }
        if util::deployment_complete(d, &d["status"]) {
            self.cleanup(&old, d).await?;
        }
        let all: Vec<&Value> = old.iter().chain(new.as_ref()).collect();
        self.sync_rollout_status(&all, new.as_ref(), d).await
    }
}

/// Some old ReplicaSet still reports pods, or a pod of one is not finished (`oldPodsRunning`).
fn old_pods_running(new: Option<&Value>, old: &[Value], pods: &PodMap) -> bool {
    if util::sum_status(old.iter(), "replicas") > 0 {
        return true;
    }
    let new_uid = new.map(meta::uid);
    pods.iter()
        .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
        .flat_map(|(_, p)| p.iter())
        .any(|p| !podutil::is_terminal(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn old_pods_count_until_they_are_finished() {
        let new = json!({"metadata": {"uid": "n"}});
        let old = vec![json!({"metadata": {"uid": "o"}, "status": {"replicas": 0}})];
        let mut pods = PodMap::new();
        pods.insert(
            "n".into(),
            vec![Arc::new(json!({"status": {"phase": "Running"}}))],
        );
        assert!(!old_pods_running(Some(&new), &old, &pods));
        pods.insert(
            "o".into(),
            vec![Arc::new(json!({"status": {"phase": "Succeeded"}}))],
        );
        assert!(!old_pods_running(Some(&new), &old, &pods));
        pods.get_mut("o").unwrap().push(Arc::new(
            json!({"metadata": {"deletionTimestamp": "t"}, "status": {"phase": "Running"}}),
        ));
        assert!(old_pods_running(Some(&new), &old, &pods));
        let busy = vec![json!({"status": {"replicas": 1}})];
        assert!(old_pods_running(Some(&new), &busy, &PodMap::new()));
    }
}
