//! Finding and creating a Deployment's new ReplicaSet, scaling (proportionally during a
//! rollout), cleaning up old ReplicaSets past revisionHistoryLimit, and the status, after
//! upstream's `sync.go`.

use serde_json::{json, Value};

use super::history::{self, MAX_REV_HISTORY_CHARS};
use super::util::{self, replicas, HASH_LABEL, PROGRESSING, REVISION};
use super::{DEPLOYMENTS, REPLICASETS};
use crate::api::status::ApiError;
use crate::controllers::podutil;
use crate::controllers::recorder::Recorder;
use crate::controllers::runtime::{controller_of, Ctx, OwnerRef};
use crate::meta;
use crate::registry::store::DeleteOpts;

/// What the deployment controller works with during one sync.
pub struct Dc<'a> {
    pub ctx: &'a Ctx,
    pub rec: &'a Recorder,
}

impl Dc<'_> {
    /// Writes the Deployment's status, then (the status subresource keeps metadata) its
    /// annotations if `d` changed them; `d` becomes what was stored.
    pub async fn update_status(&self, d: &mut Value) -> Result<(), ApiError> {
        let written = self.ctx.update_status(DEPLOYMENTS, d.clone()).await?;
        let want = d["metadata"]["annotations"].clone();
        if written["metadata"]["annotations"] != want
            && !(want.is_null() && written["metadata"]["annotations"].is_null())
        {
            let mut obj = written;
            meta::metadata_mut(&mut obj).insert("annotations".into(), want);
            *d = self.ctx.update(DEPLOYMENTS, obj).await?;
        } else {
            *d = written;
        }
        Ok(())
    }

    /// The new ReplicaSet (None if there is none and `create` is false) and all old ones, with
    /// the new one's and the Deployment's revision brought up to date
    /// (`getAllReplicaSetsAndSyncRevision`).
    ///
    /// `rs_list` is kept current: a new ReplicaSet written here replaces (or joins) its entry.
    pub async fn get_all_replica_sets_and_sync_revision(
        &self,
        d: &mut Value,
        rs_list: &mut Vec<Value>,
        create: bool,
    ) -> Result<(Option<Value>, Vec<Value>), ApiError> {
        let new_idx = util::find_new(d, rs_list);
        let old: Vec<Value> = rs_list
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_idx)
            .map(|(_, r)| r.clone())
            .collect();
        let new = self
            .get_new_replica_set(d, new_idx.map(|i| &rs_list[i]), &old, create)
            .await?;
        match (&new, new_idx) {
            (Some(n), Some(i)) => rs_list[i] = n.clone(),
            (Some(n), None) => rs_list.push(n.clone()),
            _ => {}
        }
        Ok((new, old))
    }

    /// `getNewReplicaSet`: syncs the existing new ReplicaSet's annotations and the Deployment's
    /// revision, or creates the new ReplicaSet `<deployment>-<pod-template-hash>`.
    async fn get_new_replica_set(
        &self,
        d: &mut Value,
        existing: Option<&Value>,
        old: &[Value],
        create: bool,
    ) -> Result<Option<Value>, ApiError> {
        let new_revision = util::max_revision(old) + 1;
        let min_ready = d["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
        if let Some(existing) = existing {
            let mut rs = existing.clone();
            let annotations_changed = history::set_new_rs_annotations(
                d,
                &mut rs,
                new_revision,
                true,
                MAX_REV_HISTORY_CHARS,
            );
            if annotations_changed
                || rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0) != min_ready
            {
                set_min_ready(&mut rs, min_ready);
                return self.ctx.update(REPLICASETS, rs).await.map(Some);
            }
            let rev = rs["metadata"]["annotations"][REVISION]
                .as_str()
                .unwrap_or("")
                .to_string();
            let mut needs_update = history::set_deployment_revision(d, &rev);
            if util::has_progress_deadline(d)
                && util::condition(&d["status"], PROGRESSING).is_none()
            {
                let msg = format!("Found new replica set {:?}", meta::name(&rs));
                util::set_condition(
                    &mut d["status"],
                    util::new_condition(PROGRESSING, "True", util::FOUND_NEW_RS, &msg),
                );
                needs_update = true;
            }
            if needs_update {
                self.update_status(d).await?;
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        let collision_count = d["status"]["collisionCount"].as_i64();
        let mut template = d["spec"]["template"].clone();
        let hash = podutil::compute_hash(&template, collision_count);
        let mut labels = template["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        labels.insert(HASH_LABEL.into(), json!(hash));
        template["metadata"]["labels"] = Value::Object(labels.clone());
        let mut selector = d["spec"]["selector"].clone();
        if !selector["matchLabels"].is_object() {
            selector["matchLabels"] = json!({});
        }
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let name = format!("{}-{hash}", meta::name(d));
        let mut rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": meta::namespace(d), "ownerReferences": [OwnerRef::controller_ref(d)], "labels": labels},
            "spec": {"replicas": 0, "selector": selector, "template": template},
        });
        set_min_ready(&mut rs, min_ready);
        let mut all: Vec<&Value> = old.iter().collect();
        all.push(&rs);
        let count = util::new_rs_new_replicas(d, &all, &rs).map_err(ApiError::internal)?;
        rs["spec"]["replicas"] = json!(count);
        history::set_new_rs_annotations(d, &mut rs, new_revision, false, MAX_REV_HISTORY_CHARS);
        let mut already_exists = false;
        let created = match self.ctx.create(REPLICASETS, meta::namespace(d), rs).await {
            Ok(c) => c,
            Err(e) if e.code == 409 && e.reason == "AlreadyExists" => {
                let Some(found) = self.ctx.get(REPLICASETS, meta::namespace(d), &name) else {
                    return Err(e);
                };
                let ours = controller_of(&found)
                    .map(|c| c.uid == meta::uid(d))
                    .unwrap_or(false);
                if ours
                    && util::equal_ignore_hash(&d["spec"]["template"], &found["spec"]["template"])
                {
                    already_exists = true;
                    (*found).clone()
                } else {
                    // A hash collision: try the next name on the next sync.
                    d["status"]["collisionCount"] = json!(collision_count.unwrap_or(0) + 1);
                    if self.update_status(d).await.is_ok() {
                        tracing::info!(
                            deployment = meta::name(d),
                            "hash collision: collisionCount raised"
                        );
                    }
                    return Err(e);
                }
            }
            Err(e) if is_namespace_terminating(&e) => return Err(e),
            Err(e) => {
                let msg = format!("Failed to create new replica set {name:?}: {}", e.message);
                if util::has_progress_deadline(d) {
                    util::set_condition(
                        &mut d["status"],
                        util::new_condition(PROGRESSING, "False", util::FAILED_RS_CREATE, &msg),
                    );
                    let _ = self.update_status(d).await;
                }
                self.rec.event(d, "Warning", util::FAILED_RS_CREATE, msg);
                return Err(e);
            }
        };
        if !already_exists && count > 0 {
            self.rec.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled up replica set {} to {count}", meta::name(&created)),
            );
        }
        let mut needs_update = history::set_deployment_revision(d, &new_revision.to_string());
        if !already_exists && util::has_progress_deadline(d) {
            let msg = format!("Created new replica set {:?}", meta::name(&created));
            util::set_condition(
                &mut d["status"],
                util::new_condition(PROGRESSING, "True", util::NEW_RS_CREATED, &msg),
            );
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        Ok(Some(created))
    }

    /// Scales proportionally on a scaling event or while paused (`scale`).
    pub async fn scale(
        &self,
        d: &Value,
        new: Option<&Value>,
        old: &[Value],
    ) -> Result<(), ApiError> {
        if let Some(rs) = util::find_active_or_latest(new, old) {
            if replicas(rs) != replicas(d) {
                self.scale_and_record(rs, replicas(d), d).await?;
            }
            return Ok(());
        }
        if util::is_saturated(d, new) {
            for rs in util::active(old) {
                self.scale_and_record(rs, 0, d).await?;
            }
            return Ok(());
        }
        if !util::is_rolling(d) {
            return Ok(());
        }
        let (op, sized) = proportional_sizes(d, util::active(old.iter().chain(new)));
        for (rs, size) in sized {
            self.scale_replica_set(rs, size, d, op).await?;
        }
        Ok(())
    }

    /// Scales a ReplicaSet if its size differs (`scaleReplicaSetAndRecordEvent`).
    pub async fn scale_and_record(
        &self,
        rs: &Value,
        to: i64,
        d: &Value,
    ) -> Result<(bool, Value), ApiError> {
        if replicas(rs) == to {
            return Ok((false, rs.clone()));
        }
        let op = if replicas(rs) < to { "up" } else { "down" };
        self.scale_replica_set(rs, to, d, op).await
    }

    /// Sets a ReplicaSet's size and replica annotations; records a ScalingReplicaSet event when
    /// the size changed (`scaleReplicaSet`).
    pub async fn scale_replica_set(
        &self,
        rs: &Value,
        to: i64,
        d: &Value,
        op: &str,
    ) -> Result<(bool, Value), ApiError> {
        let size_changes = replicas(rs) != to;
        let mut copy = rs.clone();
        let annotations_change = util::set_replicas_annotations(
            &mut copy,
            replicas(d),
            replicas(d) + util::max_surge(d),
        );
        if !size_changes && !annotations_change {
            return Ok((false, rs.clone()));
        }
        copy["spec"]["replicas"] = json!(to);
        let updated = self.ctx.update(REPLICASETS, copy).await?;
        if size_changes {
            let msg = format!(
                "Scaled {op} replica set {} to {to} from {}",
                meta::name(&updated),
                replicas(rs)
            );
            self.rec.event(d, "Normal", "ScalingReplicaSet", msg);
        }
        Ok((size_changes, updated))
    }

    /// Deletes the oldest old ReplicaSets beyond revisionHistoryLimit that have scaled to zero
    /// (`cleanupDeployment`).
    pub async fn cleanup(&self, old: &[Value], d: &Value) -> Result<(), ApiError> {
        if !util::has_revision_history_limit(d) {
            return Ok(());
        }
        let mut cleanable: Vec<&Value> = old.iter().filter(|r| !meta::is_deleting(r)).collect();
        let limit = d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(0);
        let diff = cleanable.len() as i64 - limit;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| util::by_revision(a, b));
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed =
                util::status(rs, "observedGeneration") >= util::int(&rs["metadata"]["generation"]);
            if util::status(rs, "replicas") != 0 || replicas(rs) != 0 || !observed {
                continue;
            }
            self.ctx
                .delete(
                    REPLICASETS,
                    meta::namespace(rs),
                    meta::name(rs),
                    &DeleteOpts::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// Writes the status the ReplicaSets call for, if it changed (`syncDeploymentStatus`).
    pub async fn sync_deployment_status(
        &self,
        all: &[&Value],
        new: Option<&Value>,
        d: &mut Value,
    ) -> Result<(), ApiError> {
        let st = calculate_status(all, new, d);
        if util::normalized_status(&d["status"]) == util::normalized_status(&st) {
            return Ok(());
        }
        d["status"] = st;
        self.update_status(d).await
    }

    /// A scaling event: an active ReplicaSet was sized for another replica count
    /// (`isScalingEvent`).
    pub async fn is_scaling_event(
        &self,
        d: &mut Value,
        rs_list: &mut Vec<Value>,
    ) -> Result<bool, ApiError> {
        let (new, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let scaling = util::active(old.iter().chain(new.as_ref()))
            .into_iter()
            .filter_map(|rs| util::int_annotation(rs, util::DESIRED_REPLICAS))
            .any(|desired| desired != replicas(d));
        Ok(scaling)
    }

    /// Reconciles a scaling event or a paused Deployment (`sync`).
    pub async fn sync(&self, d: &mut Value, rs_list: &mut Vec<Value>) -> Result<(), ApiError> {
        let (new, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        self.scale(d, new.as_ref(), &old).await?;
        if d["spec"]["paused"].as_bool().unwrap_or(false) && history::rollback_to(d).is_none() {
            self.cleanup(&old, d).await?;
        }
        // Sizes changed above are seen on the next sync, as upstream's informer would.
        let all: Vec<&Value> = old.iter().chain(new.as_ref()).collect();
        self.sync_deployment_status(&all, new.as_ref(), d).await
    }

    /// Only the status, for a Deployment being deleted (`syncStatusOnly`).
    pub async fn sync_status_only(
        &self,
        d: &mut Value,
        rs_list: &mut Vec<Value>,
    ) -> Result<(), ApiError> {
        let (new, old) = self
            .get_all_replica_sets_and_sync_revision(d, rs_list, false)
            .await?;
        let all: Vec<&Value> = old.iter().chain(new.as_ref()).collect();
        self.sync_deployment_status(&all, new.as_ref(), d).await
    }

    /// Records pausing and resuming in the Progressing condition, so the time spent paused
    /// does not count against progressDeadlineSeconds (`checkPausedConditions`).
    pub async fn check_paused_conditions(&self, d: &mut Value) -> Result<(), ApiError> {
        if !util::has_progress_deadline(d) {
            return Ok(());
        }
        let reason = util::condition(&d["status"], PROGRESSING)
            .map(|c| c["reason"].as_str().unwrap_or("").to_string());
        if reason.as_deref() == Some(util::TIMED_OUT) {
            return Ok(());
        }
        let paused_cond = reason.as_deref() == Some(util::PAUSED);
        let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
        let cond = if paused && !paused_cond {
            util::new_condition(PROGRESSING, "Unknown", util::PAUSED, "Deployment is paused")
        } else if !paused && paused_cond {
            util::new_condition(
                PROGRESSING,
                "Unknown",
                util::RESUMED,
                "Deployment is resumed",
            )
        } else {
            return Ok(());
        };
        util::set_condition(&mut d["status"], cond);
        self.update_status(d).await
    }
}

/// The sizes of the active ReplicaSets when a rolling Deployment is scaled mid-rollout: the
/// replicas to add (or remove) to reach `replicas + maxSurge` are shared in proportion to each
/// ReplicaSet's size against the max-replicas it was sized for; leftovers go to the first in
/// order (largest, newer first when growing, older first when shrinking). Returns the scaling
/// direction ("up", "down" or "") and each ReplicaSet with its new size, in that order.
pub fn proportional_sizes<'a>(
    d: &Value,
    mut all: Vec<&'a Value>,
) -> (&'static str, Vec<(&'a Value, i64)>) {
    let current = util::sum_replicas(all.iter().copied());
    let allowed = if replicas(d) > 0 {
        replicas(d) + util::max_surge(d)
    } else {
        0
    };
    let to_add = allowed - current;
    let op = match to_add {
        n if n > 0 => {
            all.sort_by(|a, b| util::by_size_newer(a, b));
            "up"
        }
        n if n < 0 => {
            all.sort_by(|a, b| util::by_size_older(a, b));
            "down"
        }
        _ => "",
    };
    let mut added = 0;
    let mut sized: Vec<(&Value, i64)> = Vec::with_capacity(all.len());
    for rs in all {
        let p = if to_add != 0 {
            util::proportion(rs, d, to_add, added)
        } else {
            0
        };
        added += p;
        sized.push((rs, replicas(rs) + p));
    }
    if to_add != 0 {
        if let Some(first) = sized.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    (op, sized)
}

fn set_min_ready(rs: &mut Value, secs: i64) {
    if let Some(spec) = rs["spec"].as_object_mut() {
        if secs == 0 {
            spec.remove("minReadySeconds");
        } else {
            spec.insert("minReadySeconds".into(), json!(secs));
        }
    }
}

fn is_namespace_terminating(e: &ApiError) -> bool {
    e.details
        .as_ref()
        .and_then(|d| d["causes"].as_array())
        .map(|c| c.iter().any(|c| c["reason"] == "NamespaceTerminating"))
        .unwrap_or(false)
}

/// The status the ReplicaSets call for (`calculateStatus`); zero counters are left out as Go's
/// omitempty leaves them out.
pub fn calculate_status(all: &[&Value], new: Option<&Value>, d: &Value) -> Value {
    let available = util::sum_status(all.iter().copied(), "availableReplicas");
    let total = util::sum_replicas(all.iter().copied());
    let unavailable = (total - available).max(0);
    let mut st = json!({
        "observedGeneration": util::int(&d["metadata"]["generation"]),
        "replicas": util::sum_status(all.iter().copied(), "replicas"),
        "updatedReplicas": new.map(|n| util::status(n, "replicas")).unwrap_or(0),
        "readyReplicas": util::sum_status(all.iter().copied(), "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    });
    if let Some(c) = d["status"]["collisionCount"].as_i64() {
        st["collisionCount"] = json!(c);
    }
    if let Some(c) = d["status"]["conditions"].as_array() {
        st["conditions"] = json!(c);
    }
    if available >= replicas(d) - util::max_unavailable(d) {
        util::set_condition(
            &mut st,
            util::new_condition(
                util::AVAILABLE,
                "True",
                util::MIN_AVAILABLE,
                "Deployment has minimum availability.",
            ),
        );
    } else {
        util::set_condition(
            &mut st,
            util::new_condition(
                util::AVAILABLE,
                "False",
                util::MIN_UNAVAILABLE,
                "Deployment does not have minimum availability.",
            ),
        );
    }
    util::normalized_status(&st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(name: &str, created: &str, size: i64, max: &str) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created, "annotations": {util::MAX_REPLICAS: max}}, "spec": {"replicas": size}})
    }

    fn names_sizes(v: &[(&Value, i64)]) -> Vec<(String, i64)> {
        v.iter()
            .map(|(r, n)| (meta::name(r).to_string(), *n))
            .collect()
    }

    #[test]
    fn scaling_mid_rollout_is_proportional() {
        let d = |r: i64| json!({"spec": {"replicas": r, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}}});
        let old = rs("old", "2025-01-01T00:00:00Z", 8, "13");
        let new = rs("new", "2025-01-01T00:01:00Z", 5, "13");
        // 10 -> 20 replicas: 10 more to share (23 - 13): 8*23/13 -> 14, 5*23/13 -> 9.
        let (op, sized) = proportional_sizes(&d(20), vec![&old, &new]);
        assert_eq!(op, "up");
        assert_eq!(names_sizes(&sized), [("old".into(), 14), ("new".into(), 9)]);
        // 10 -> 5: 5 fewer (8 allowed - 13): 8*8/13 -> 5, 5*8/13 -> 3.
        let (op, sized) = proportional_sizes(&d(5), vec![&new, &old]);
        assert_eq!(op, "down");
        assert_eq!(names_sizes(&sized), [("old".into(), 5), ("new".into(), 3)]);
        // Scaled to zero: everything goes.
        let (_, sized) = proportional_sizes(&d(0), vec![&old, &new]);
        assert_eq!(names_sizes(&sized), [("old".into(), 0), ("new".into(), 0)]);
        // Equal sizes grow newer first: 3 to add over two halves of 2 sized for 4 replicas,
        // 2 for the newer, the 1 left for the older.
        let a = rs("a", "2025-01-01T00:00:00Z", 2, "4");
        let b = rs("b", "2025-01-01T00:01:00Z", 2, "4");
        let (_, sized) = proportional_sizes(&d(4), vec![&a, &b]);
        assert_eq!(names_sizes(&sized), [("b".into(), 4), ("a".into(), 3)]);
    }

    #[test]
    fn status_sums_the_replica_sets() {
        let d = json!({"metadata": {"generation": 3}, "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}, "status": {}});
        let old = json!({"spec": {"replicas": 1}, "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}});
        let new = json!({"spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 2, "availableReplicas": 1}});
        let st = calculate_status(&[&old, &new], Some(&new), &d);
        assert_eq!(st["observedGeneration"], 3);
        assert_eq!(
            (
                st["replicas"].clone(),
                st["updatedReplicas"].clone(),
                st["readyReplicas"].clone()
            ),
            (json!(4), json!(3), json!(3))
        );
        assert_eq!(
            (
                st["availableReplicas"].clone(),
                st["unavailableReplicas"].clone()
            ),
            (json!(2), json!(2))
        );
        // 3 replicas with maxUnavailable 25% (0): 2 available is not enough.
        assert_eq!(st["conditions"][0]["reason"], util::MIN_UNAVAILABLE);
        let empty = calculate_status(
            &[],
            None,
            &json!({"metadata": {"generation": 1}, "spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}),
        );
        assert_eq!(empty["conditions"][0]["reason"], util::MIN_AVAILABLE);
        assert!(empty.get("replicas").is_none());
    }
}
