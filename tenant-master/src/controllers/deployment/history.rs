//! Revision bookkeeping and rollbacks: which annotations travel between a Deployment and its
//! ReplicaSets, how a ReplicaSet's revision (and revision history, when a rollback reuses it)
//! is kept, and the legacy `deprecated.deployment.rollback.to` request (what extensions/v1beta1's
//! rollback subresource left behind; kubectl 1.33 rolls back client-side instead, by patching the
//! Deployment's template from the chosen ReplicaSet).

use serde_json::Value;

use super::sync::Dc;
use super::util::{self, LAST_APPLIED, REVISION, REVISION_HISTORY};
use crate::api::status::ApiError;
use crate::meta;

/// Annotations kept apart: never copied from a Deployment to its ReplicaSets nor back.
const SKIPPED: &[&str] = &[
    LAST_APPLIED,
    REVISION,
    REVISION_HISTORY,
    util::DESIRED_REPLICAS,
    util::MAX_REPLICAS,
    util::ROLLBACK_TO,
];

/// Longest revision-history annotation kept, in characters.
pub const MAX_REV_HISTORY_CHARS: usize = 2000;

fn annotations(o: &Value) -> serde_json::Map<String, Value> {
    o["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// Copies the Deployment's annotations (but the skipped ones) to the ReplicaSet; true if any
/// changed (`copyDeploymentAnnotationsToReplicaSet`).
fn copy_annotations_to_rs(d: &Value, rs: &mut Value) -> bool {
    let mut changed = false;
    for (k, v) in annotations(d) {
        if SKIPPED.contains(&k.as_str()) || rs["metadata"]["annotations"][&k] == v {
            continue;
        }
        util::set_annotation(rs, &k, v.as_str().unwrap_or(""));
        changed = true;
    }
    changed
}

/// Brings the new ReplicaSet's annotations up to date: the Deployment's annotations, the
/// revision (raised to `new_revision` if lower, the old one moving into the revision history,
/// capped at `max_chars`), and for a ReplicaSet about to be created the replica annotations.
/// True if anything changed (`SetNewReplicaSetAnnotations`).
pub fn set_new_rs_annotations(
    d: &Value,
    rs: &mut Value,
    new_revision: i64,
    exists: bool,
    max_chars: usize,
) -> bool {
    let mut changed = copy_annotations_to_rs(d, rs);
    let old = rs["metadata"]["annotations"][REVISION]
        .as_str()
        .map(String::from);
    let old_rev = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(v) => v,
            Err(_) => return false,
        },
    };
    if old_rev < new_revision {
        util::set_annotation(rs, REVISION, &new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = rs["metadata"]["annotations"][REVISION_HISTORY]
                .as_str()
                .unwrap_or("")
                .to_string();
            if history.is_empty() {
                util::set_annotation(rs, REVISION_HISTORY, &old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > max_chars && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= max_chars {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    util::set_annotation(rs, REVISION_HISTORY, &parts.join(","));
                }
            }
        }
    }
    if !exists
        && util::set_replicas_annotations(
            rs,
            util::replicas(d),
            util::replicas(d) + util::max_surge(d),
        )
    {
        changed = true;
    }
    changed
}

/// Sets the Deployment's revision annotation; true if it changed (`SetDeploymentRevision`).
pub fn set_deployment_revision(d: &mut Value, revision: &str) -> bool {
    if d["metadata"]["annotations"][REVISION].as_str() == Some(revision) {
        return false;
    }
    util::set_annotation(d, REVISION, revision);
    true
}

/// Replaces the Deployment's annotations (but the skipped ones) with the ReplicaSet's
/// (`SetDeploymentAnnotationsTo`), for a rollback to it.
fn set_deployment_annotations_to(d: &mut Value, rs: &Value) {
    let mut out: serde_json::Map<String, Value> = annotations(d)
        .into_iter()
        .filter(|(k, _)| SKIPPED.contains(&k.as_str()))
        .collect();
    for (k, v) in annotations(rs) {
        if !SKIPPED.contains(&k.as_str()) {
            out.insert(k, v);
        }
    }
    meta::metadata_mut(d).insert("annotations".into(), Value::Object(out));
}

/// The revision a legacy rollback asks for, if any (`getRollbackTo`).
pub fn rollback_to(d: &Value) -> Option<i64> {
    let s = d["metadata"]["annotations"][util::ROLLBACK_TO].as_str()?;
    // An unparsable revision is no request (upstream logs it and carries on).
    s.parse().ok()
}

/// Rolls the Deployment back to the revision its legacy annotation names (`rollback`): copies
/// that ReplicaSet's template and annotations, or explains in an event why not, then clears
/// the request.
pub async fn rollback(
    dc: &Dc<'_>,
    d: &mut Value,
    rs_list: &mut Vec<Value>,
) -> Result<(), ApiError> {
    let (new_rs, old) = dc
        .get_all_replica_sets_and_sync_revision(d, rs_list, true)
        .await?;
    let mut all: Vec<&Value> = old.iter().collect();
    all.extend(new_rs.as_ref());
    let mut to = rollback_to(d).unwrap_or(0);
    if to == 0 {
        to = util::last_revision(all.iter().copied());
        if to == 0 {
            dc.rec.event(
                d,
                "Warning",
                "DeploymentRollbackRevisionNotFound",
                "Unable to find last revision.",
            );
            return update_and_clear_rollback_to(dc, d).await;
        }
    }
    for rs in &all {
        if util::revision(rs).ok() != Some(to) {
            continue;
        }
        let template = &rs["spec"]["template"];
        if util::equal_ignore_hash(&d["spec"]["template"], template) {
            let msg = format!(
                "The rollback revision contains the same template as current deployment {:?}",
                meta::name(d)
            );
            dc.rec
                .event(d, "Warning", "DeploymentRollbackTemplateUnchanged", msg);
        } else {
            let mut t = template.clone();
            if let Some(l) = t["metadata"]["labels"].as_object_mut() {
                l.remove(util::HASH_LABEL);
            }
            d["spec"]["template"] = t;
            set_deployment_annotations_to(d, rs);
            dc.rec.event(
                d,
                "Normal",
                "DeploymentRollback",
                format!(
                    "Rolled back deployment {:?} to revision {to}",
                    meta::name(d)
                ),
            );
        }
        return update_and_clear_rollback_to(dc, d).await;
    }
    dc.rec.event(
        d,
        "Warning",
        "DeploymentRollbackRevisionNotFound",
        "Unable to find the revision to rollback to.",
    );
    update_and_clear_rollback_to(dc, d).await
}

async fn update_and_clear_rollback_to(dc: &Dc<'_>, d: &mut Value) -> Result<(), ApiError> {
    if let Some(a) = d["metadata"]["annotations"].as_object_mut() {
        a.remove(util::ROLLBACK_TO);
    }
    *d = dc.ctx.update(super::DEPLOYMENTS, d.clone()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d() -> Value {
        json!({"metadata": {"annotations": {"team": "a", LAST_APPLIED: "{}", REVISION: "4"}},
               "spec": {"replicas": 3, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}})
    }

    #[test]
    fn a_new_replica_set_gets_revision_and_replica_annotations() {
        let mut rs = json!({"metadata": {}});
        assert!(set_new_rs_annotations(
            &d(),
            &mut rs,
            1,
            false,
            MAX_REV_HISTORY_CHARS
        ));
        assert_eq!(
            rs["metadata"]["annotations"],
            json!({"team": "a", REVISION: "1", util::DESIRED_REPLICAS: "3", util::MAX_REPLICAS: "4"})
        );
        assert!(!set_new_rs_annotations(
            &d(),
            &mut rs,
            1,
            true,
            MAX_REV_HISTORY_CHARS
        ));
    }

    #[test]
    fn a_reused_replica_set_keeps_its_old_revisions() {
        let mut rs = json!({"metadata": {"annotations": {REVISION: "1"}}});
        assert!(set_new_rs_annotations(
            &d(),
            &mut rs,
            3,
            true,
            MAX_REV_HISTORY_CHARS
        ));
        assert!(set_new_rs_annotations(
            &d(),
            &mut rs,
            5,
            true,
            MAX_REV_HISTORY_CHARS
        ));
        assert_eq!(rs["metadata"]["annotations"][REVISION], "5");
        assert_eq!(rs["metadata"]["annotations"][REVISION_HISTORY], "1,3");
        // A lower revision never replaces a higher one.
        assert!(!set_new_rs_annotations(
            &d(),
            &mut rs,
            2,
            true,
            MAX_REV_HISTORY_CHARS
        ));
        // The history is capped, dropping its oldest entries.
        assert!(set_new_rs_annotations(&d(), &mut rs, 6, true, 4));
        assert_eq!(rs["metadata"]["annotations"][REVISION_HISTORY], "3,5");
    }

    #[test]
    fn rollback_takes_the_replica_sets_annotations_but_keeps_the_skipped_ones() {
        let mut dep = d();
        let rs = json!({"metadata": {"annotations": {"team": "b", REVISION: "2", "kubernetes.io/change-cause": "v1"}}});
        set_deployment_annotations_to(&mut dep, &rs);
        assert_eq!(
            dep["metadata"]["annotations"],
            json!({LAST_APPLIED: "{}", REVISION: "4", "team": "b", "kubernetes.io/change-cause": "v1"})
        );
        assert!(set_deployment_revision(&mut dep, "5"));
        assert!(!set_deployment_revision(&mut dep, "5"));
    }
}
