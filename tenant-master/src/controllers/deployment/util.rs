//! What the deployment controller computes from Deployments and ReplicaSets, after upstream's
//! `pkg/controller/deployment/util`: surge and unavailability (fenceposts), revisions, the new
//! and old ReplicaSets of a Deployment, proportional scaling, and the Deployment's conditions.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::meta;

/// The label a Deployment adds to its ReplicaSets' selectors and pods.
pub const HASH_LABEL: &str = "pod-template-hash";
/// The revision of a ReplicaSet (and, copied, of its Deployment).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a ReplicaSet served (set when a rollback reuses it).
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when it last scaled this ReplicaSet.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the Deployment when it last scaled this ReplicaSet.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The legacy rollback request (extensions/v1beta1's `spec.rollbackTo`, kept as annotation).
pub const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// kubectl's client-side apply annotation, never copied between Deployment and ReplicaSets.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const REPLICASET_UPDATED: &str = "ReplicaSetUpdated";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// An int field of an object, 0 when absent.
pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `spec.replicas` of a Deployment or ReplicaSet (defaulted to 1 by the API).
pub fn replicas(o: &Value) -> i64 {
    o["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// `status.<field>` of a ReplicaSet or Deployment.
pub fn status(o: &Value, field: &str) -> i64 {
    int(&o["status"][field])
}

pub fn is_rolling(d: &Value) -> bool {
    d["spec"]["strategy"]["type"] == "RollingUpdate"
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, `"N%"` of `total` rounded up or down.
/// A missing value counts as 0.
pub fn int_or_percent(v: &Value, total: i64, round_up: bool) -> Result<i64, String> {
    match v {
        Value::Null => Ok(0),
        Value::String(s) => {
            let Some(n) = s.strip_suffix('%').and_then(|n| n.parse::<i64>().ok()) else {
                return Err(format!(
                    "invalid value for IntOrString: invalid value {s:?}"
                ));
            };
            let exact = n as f64 * total as f64 / 100.0;
            Ok(if round_up {
                exact.ceil()
            } else {
                exact.floor()
            } as i64)
        }
        other => other
            .as_i64()
            .ok_or_else(|| format!("invalid value for IntOrString: {other}")),
    }
}

/// maxSurge (rounded up) and maxUnavailable (rounded down) for `desired` replicas; when both
/// come out 0, maxUnavailable is 1 so a rollout can always move (`ResolveFenceposts`).
pub fn resolve_fenceposts(
    surge: &Value,
    unavailable: &Value,
    desired: i64,
) -> Result<(i64, i64), String> {
    let s = int_or_percent(surge, desired, true)?;
    let mut u = int_or_percent(unavailable, desired, false)?;
    if s == 0 && u == 0 {
        u = 1;
    }
    Ok((s, u))
}

fn fenceposts(d: &Value) -> (i64, i64) {
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    resolve_fenceposts(&ru["maxSurge"], &ru["maxUnavailable"], replicas(d)).unwrap_or((0, 0))
}

/// The surge a rolling Deployment may take (0 for Recreate).
pub fn max_surge(d: &Value) -> i64 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// The unavailability a rolling Deployment may take, at most its replicas (0 for Recreate).
pub fn max_unavailable(d: &Value) -> i64 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

fn created(o: &Value) -> Option<DateTime<Utc>> {
    o["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(meta::parse_time)
}

/// Older first, then by name (`ReplicaSetsByCreationTimestamp`).
pub fn by_creation(a: &Value, b: &Value) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| meta::name(a).cmp(meta::name(b)))
}

/// Larger first; equal sizes older first (`ReplicaSetsBySizeOlder`).
pub fn by_size_older(a: &Value, b: &Value) -> Ordering {
    replicas(b)
        .cmp(&replicas(a))
        .then_with(|| by_creation(a, b))
}

/// Larger first; equal sizes newer first (`ReplicaSetsBySizeNewer`).
pub fn by_size_newer(a: &Value, b: &Value) -> Ordering {
    replicas(b)
        .cmp(&replicas(a))
        .then_with(|| by_creation(b, a))
}

/// The revision annotation of a ReplicaSet: 0 when absent, an error when not a number.
pub fn revision(o: &Value) -> Result<i64, String> {
    match o["metadata"]["annotations"][REVISION].as_str() {
        None => Ok(0),
        Some(s) => s.parse().map_err(|_| format!("invalid revision {s:?}")),
    }
}

/// Lower revision first, ties and unparsable ones by creation (`ReplicaSetsByRevision`).
pub fn by_revision(a: &Value, b: &Value) -> Ordering {
    match (revision(a), revision(b)) {
        (Ok(x), Ok(y)) if x != y => x.cmp(&y),
        _ => by_creation(a, b),
    }
}

/// The highest revision among ReplicaSets (unparsable ones skipped).
pub fn max_revision<'a>(rss: impl IntoIterator<Item = &'a Value>) -> i64 {
    rss.into_iter()
        .filter_map(|r| revision(r).ok())
        .max()
        .unwrap_or(0)
        .max(0)
}

/// The second highest revision (`LastRevision`): what a rollback without a revision returns to.
pub fn last_revision<'a>(rss: impl IntoIterator<Item = &'a Value>) -> i64 {
    let (mut max, mut second) = (0, 0);
    for v in rss.into_iter().filter_map(|r| revision(r).ok()) {
        if v >= max {
            second = max;
            max = v;
        } else if v > second {
            second = v;
        }
    }
    second
}

/// `value` with null fields, empty maps and empty lists removed at every level, so templates
/// compare as Go's semantic equality does (nil and empty alike).
fn pruned(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), pruned(x)))
                .filter(|(_, x)| {
                    !(x.is_null()
                        || x.as_object().map(|m| m.is_empty()).unwrap_or(false)
                        || x.as_array().map(|a| a.is_empty()).unwrap_or(false))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(pruned).collect()),
        x => x.clone(),
    }
}

/// Two pod templates are equal but for the `pod-template-hash` label (`EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(l) = t["metadata"]["labels"].as_object_mut() {
            l.remove(HASH_LABEL);
        }
        pruned(&t)
    };
    strip(a) == strip(b)
}

/// The index of the Deployment's new ReplicaSet (the oldest with its template) in `rss`.
pub fn find_new(d: &Value, rss: &[Value]) -> Option<usize> {
    let mut idx: Vec<usize> = (0..rss.len()).collect();
    idx.sort_by(|a, b| by_creation(&rss[*a], &rss[*b]));
    idx.into_iter()
        .find(|i| equal_ignore_hash(&rss[*i]["spec"]["template"], &d["spec"]["template"]))
}

/// ReplicaSets with `spec.replicas` > 0 (`FilterActiveReplicaSets`).
pub fn active<'a>(rss: impl IntoIterator<Item = &'a Value>) -> Vec<&'a Value> {
    rss.into_iter().filter(|r| replicas(r) > 0).collect()
}

/// Sum of `spec.replicas`.
pub fn sum_replicas<'a>(rss: impl IntoIterator<Item = &'a Value>) -> i64 {
    rss.into_iter().map(replicas).sum()
}

/// Sum of a status field.
pub fn sum_status<'a>(rss: impl IntoIterator<Item = &'a Value>, field: &str) -> i64 {
    rss.into_iter().map(|r| status(r, field)).sum()
}

/// An int annotation of a ReplicaSet.
pub fn int_annotation(rs: &Value, key: &str) -> Option<i64> {
    rs["metadata"]["annotations"][key]
        .as_str()
        .and_then(|s| s.parse().ok())
}

/// Sets desired-replicas and max-replicas; true if either changed (`SetReplicasAnnotations`).
pub fn set_replicas_annotations(rs: &mut Value, desired: i64, max: i64) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let s = v.to_string();
        if rs["metadata"]["annotations"][k].as_str() != Some(s.as_str()) {
            set_annotation(rs, k, &s);
            changed = true;
        }
    }
    changed
}

/// Sets one annotation, creating the map when needed.
pub fn set_annotation(o: &mut Value, key: &str, value: &str) {
    let md = meta::metadata_mut(o);
    let a = md.entry("annotations").or_insert_with(|| json!({}));
    if !a.is_object() {
        *a = json!({});
    }
    a[key] = json!(value);
}

/// The only active ReplicaSet, or the newest when none is active; None with several active
/// (`FindActiveOrLatest`).
pub fn find_active_or_latest<'a>(new: Option<&'a Value>, old: &'a [Value]) -> Option<&'a Value> {
    let mut olds: Vec<&Value> = old.iter().collect();
    olds.sort_by(|a, b| by_creation(b, a));
    let mut all: Vec<&Value> = olds.clone();
    all.extend(new);
    let act = active(all);
    match act.len() {
        0 => new.or_else(|| olds.first().copied()),
        1 => Some(act[0]),
        _ => None,
    }
}

/// The new ReplicaSet holds all of the Deployment's replicas, all available (`IsSaturated`).
pub fn is_saturated(d: &Value, rs: Option<&Value>) -> bool {
    let Some(rs) = rs else { return false };
    let Some(desired) = int_annotation(rs, DESIRED_REPLICAS) else {
        return false;
    };
    replicas(rs) == replicas(d)
        && desired == replicas(d)
        && status(rs, "availableReplicas") == replicas(d)
}

/// How many replicas the new ReplicaSet should have now (`NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Value, all: &[&Value], new: &Value) -> Result<i64, String> {
    match d["spec"]["strategy"]["type"].as_str() {
        Some("RollingUpdate") => {
            let surge = int_or_percent(
                &d["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
                replicas(d),
                true,
            )?;
            let current = sum_replicas(all.iter().copied());
            let max_total = replicas(d) + surge;
            if current >= max_total {
                return Ok(replicas(new));
            }
            let up = (max_total - current).min(replicas(d) - replicas(new));
            Ok(replicas(new) + up)
        }
        Some("Recreate") => Ok(replicas(d)),
        other => Err(format!(
            "deployment type {} isn't supported",
            other.unwrap_or("")
        )),
    }
}

/// This ReplicaSet's share of `to_add` replicas still to distribute (`GetProportion`).
pub fn proportion(rs: &Value, d: &Value, to_add: i64, added: i64) -> i64 {
    if replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = rs_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn rs_fraction(rs: &Value, d: &Value) -> i64 {
    if replicas(d) == 0 {
        return -replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = int_annotation(rs, MAX_REPLICAS).unwrap_or_else(|| status(d, "replicas"));
    if annotated == 0 {
        return 0;
    }
    let size = (replicas(rs) * deployment_replicas) as f64 / annotated as f64;
    size.round() as i64 - replicas(rs)
}

/// A progressDeadlineSeconds is set (and not "never": MaxInt32).
pub fn has_progress_deadline(d: &Value) -> bool {
    d["spec"]["progressDeadlineSeconds"]
        .as_i64()
        .map(|p| p != i32::MAX as i64)
        .unwrap_or(false)
}

/// A revisionHistoryLimit is set (and not "keep all": MaxInt32).
pub fn has_revision_history_limit(d: &Value) -> bool {
    d["spec"]["revisionHistoryLimit"]
        .as_i64()
        .map(|p| p != i32::MAX as i64)
        .unwrap_or(false)
}

/// All desired replicas are updated and available, and no old ones run (`DeploymentComplete`).
pub fn deployment_complete(d: &Value, st: &Value) -> bool {
    let want = replicas(d);
    int(&st["updatedReplicas"]) == want
        && int(&st["replicas"]) == want
        && int(&st["availableReplicas"]) == want
        && int(&st["observedGeneration"]) >= int(&d["metadata"]["generation"])
}

/// The new status shows progress over the stored one (`DeploymentProgressing`).
pub fn deployment_progressing(d: &Value, new: &Value) -> bool {
    let old = &d["status"];
    let old_old = int(&old["replicas"]) - int(&old["updatedReplicas"]);
    let new_old = int(&new["replicas"]) - int(&new["updatedReplicas"]);
    int(&new["updatedReplicas"]) > int(&old["updatedReplicas"])
        || new_old < old_old
        || int(&new["readyReplicas"]) > int(&old["readyReplicas"])
        || int(&new["availableReplicas"]) > int(&old["availableReplicas"])
}

/// When the Progressing condition of `st` runs past the deadline (None: it cannot time out).
pub fn progress_deadline(d: &Value, st: &Value) -> Option<DateTime<Utc>> {
    if !has_progress_deadline(d) {
        return None;
    }
    let c = condition(st, PROGRESSING)?;
    if c["reason"] == NEW_RS_AVAILABLE || c["reason"] == TIMED_OUT {
        return None;
    }
    let from = c["lastUpdateTime"].as_str().and_then(meta::parse_time)?;
    Some(from + chrono::Duration::seconds(int(&d["spec"]["progressDeadlineSeconds"])))
}

/// The rollout has made no progress for progressDeadlineSeconds (`DeploymentTimedOut`).
pub fn deployment_timed_out(d: &Value, st: &Value, now: DateTime<Utc>) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    match condition(st, PROGRESSING) {
        None => false,
        Some(c) if c["reason"] == TIMED_OUT => true,
        Some(_) => progress_deadline(d, st).map(|at| at < now).unwrap_or(false),
    }
}

/// A Deployment condition stamped now.
pub fn new_condition(typ: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = meta::now_rfc3339();
    json!({"type": typ, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// A condition of a status by type.
pub fn condition<'a>(st: &'a Value, typ: &str) -> Option<&'a Value> {
    st["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == typ)
}

/// Sets a condition unless one with the same status and reason is there; keeps the transition
/// time when only the reason changes; the condition moves to the end (`SetDeploymentCondition`).
pub fn set_condition(st: &mut Value, mut cond: Value) {
    if let Some(cur) = condition(st, cond["type"].as_str().unwrap_or("")) {
        if cur["status"] == cond["status"] && cur["reason"] == cond["reason"] {
            return;
        }
        if cur["status"] == cond["status"] {
            cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    remove_condition(st, cond["type"].as_str().unwrap_or(""));
    if !st["conditions"].is_array() {
        st["conditions"] = json!([]);
    }
    st["conditions"].as_array_mut().expect("array").push(cond);
}

/// Removes a condition by type (and the list once empty).
pub fn remove_condition(st: &mut Value, typ: &str) {
    if let Some(c) = st["conditions"].as_array_mut() {
        c.retain(|c| c["type"] != typ);
        if c.is_empty() {
            if let Some(m) = st.as_object_mut() {
                m.remove("conditions");
            }
        }
    }
}

/// A status with zero counters, empty lists and nulls dropped (Go's omitempty), for comparing.
pub fn normalized_status(st: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in st.as_object().into_iter().flatten() {
        let zero = v.is_null()
            || v.as_i64() == Some(0) && k != "collisionCount"
            || v.as_array().map(|a| a.is_empty()).unwrap_or(false);
        if !zero {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailability_down() {
        assert_eq!(int_or_percent(&json!("25%"), 10, true), Ok(3));
        assert_eq!(int_or_percent(&json!("25%"), 10, false), Ok(2));
        assert_eq!(int_or_percent(&json!(4), 10, false), Ok(4));
        assert_eq!(int_or_percent(&Value::Null, 10, true), Ok(0));
        assert!(int_or_percent(&json!("25"), 10, true).is_err());
        // The defaults on 3 replicas: surge 1, unavailable 0.
        assert_eq!(
            resolve_fenceposts(&json!("25%"), &json!("25%"), 3),
            Ok((1, 0))
        );
        // Both zero after rounding: one may be unavailable.
        assert_eq!(
            resolve_fenceposts(&json!("0%"), &json!("10%"), 3),
            Ok((0, 1))
        );
        let d = |r: i64, s: Value, u: Value| json!({"spec": {"replicas": r, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": s, "maxUnavailable": u}}}});
        assert_eq!(
            (
                max_surge(&d(10, json!("30%"), json!(20))),
                max_unavailable(&d(10, json!("30%"), json!(20)))
            ),
            (3, 10)
        );
        assert_eq!(max_unavailable(&d(0, json!(1), json!(1))), 0);
        assert_eq!(
            max_surge(&json!({"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}})),
            0
        );
    }

    fn rs(name: &str, rev: Option<&str>, created: &str, replicas: i64) -> Value {
        let mut r = json!({"metadata": {"name": name, "creationTimestamp": created, "annotations": {}}, "spec": {"replicas": replicas}});
        if let Some(v) = rev {
            r["metadata"]["annotations"][REVISION] = json!(v);
        }
        r
    }

    #[test]
    fn revisions_and_orderings() {
        let rss = [
            rs("a", Some("3"), "2025-01-01T00:00:03Z", 0),
            rs("b", Some("1"), "2025-01-01T00:00:01Z", 2),
            rs("c", Some("x"), "2025-01-01T00:00:02Z", 2),
        ];
        assert_eq!(max_revision(&rss), 3);
        assert_eq!(last_revision(&rss), 1);
        let mut v = rss.to_vec();
        v.sort_by(by_revision);
        assert_eq!(
            v.iter().map(meta::name).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
        v.sort_by(by_size_newer);
        assert_eq!(
            v.iter().map(meta::name).collect::<Vec<_>>(),
            ["c", "b", "a"]
        );
        v.sort_by(by_size_older);
        assert_eq!(
            v.iter().map(meta::name).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
    }

    #[test]
    fn proportional_scaling_follows_max_replicas() {
        let d = json!({"spec": {"replicas": 20, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 0}}}, "status": {"replicas": 13}});
        let mut a = rs("a", None, "2025-01-01T00:00:00Z", 8);
        a["metadata"]["annotations"][MAX_REPLICAS] = json!("13");
        // 8 * 23 / 13 = 14.15 -> 14: 6 more, capped by what is left to add.
        assert_eq!(proportion(&a, &d, 10, 0), 6);
        assert_eq!(proportion(&a, &d, 10, 7), 3);
        let down = json!({"spec": {"replicas": 0, "strategy": {"type": "RollingUpdate"}}});
        assert_eq!(proportion(&a, &down, -8, 0), -8);
    }

    #[test]
    fn templates_compare_without_the_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "web", HASH_LABEL: "abc"}, "creationTimestamp": null}, "spec": {"containers": [{"name": "c", "image": "i", "env": []}]}});
        let b = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        assert!(equal_ignore_hash(&a, &b));
        let c = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "j"}]}});
        assert!(!equal_ignore_hash(&a, &c));
    }

    #[test]
    fn conditions_keep_transition_times_and_ignore_same_reason() {
        let mut st = json!({});
        set_condition(
            &mut st,
            json!({"type": PROGRESSING, "status": "True", "reason": NEW_RS_CREATED, "message": "a", "lastTransitionTime": "t1"}),
        );
        set_condition(
            &mut st,
            json!({"type": AVAILABLE, "status": "False", "reason": MIN_UNAVAILABLE, "message": "", "lastTransitionTime": "t1"}),
        );
        set_condition(
            &mut st,
            json!({"type": PROGRESSING, "status": "True", "reason": NEW_RS_CREATED, "message": "b", "lastTransitionTime": "t2"}),
        );
        assert_eq!(condition(&st, PROGRESSING).unwrap()["message"], "a");
        set_condition(
            &mut st,
            json!({"type": PROGRESSING, "status": "True", "reason": NEW_RS_AVAILABLE, "message": "c", "lastTransitionTime": "t3"}),
        );
        let c = &st["conditions"];
        assert_eq!(
            (
                c[0]["type"].clone(),
                c[1]["reason"].clone(),
                c[1]["lastTransitionTime"].clone()
            ),
            (json!(AVAILABLE), json!(NEW_RS_AVAILABLE), json!("t1"))
        );
        remove_condition(&mut st, PROGRESSING);
        remove_condition(&mut st, AVAILABLE);
        assert_eq!(st, json!({}));
    }

    #[test]
    fn new_replica_set_grows_within_the_surge() {
        let d = json!({"spec": {"replicas": 10, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "20%", "maxUnavailable": 1}}}});
        let old = rs("old", None, "2025-01-01T00:00:00Z", 10);
        let new = rs("new", None, "2025-01-01T00:00:01Z", 0);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), Ok(2));
        let old9 = rs("old", None, "2025-01-01T00:00:00Z", 9);
        let new2 = rs("new", None, "2025-01-01T00:00:01Z", 2);
        assert_eq!(new_rs_new_replicas(&d, &[&old9, &new2], &new2), Ok(3));
        assert_eq!(
            new_rs_new_replicas(
                &json!({"spec": {"replicas": 4, "strategy": {"type": "Recreate"}}}),
                &[],
                &new
            ),
            Ok(4)
        );
    }
}
