//! What a StatefulSet's pods need next, decided as upstream's `updateStatefulSet` decides
//! (`stateful_set_control.go`), but as a pure function: [`plan`] returns the status to record
//! and the steps to take, which [`super::pods`] then performs.
//!
//! - OrderedReady ("monotonic"): ordinals are created one at a time in increasing order, each
//!   only once every lower one is Running, Ready and available; nothing else happens while a
//!   pod is terminating or unready; scale-down deletes the highest ordinal first, one at a time.
//! - Parallel ("burst"): every missing pod is created and every condemned pod deleted at once.
//! - RollingUpdate: after scaling is done, the highest ordinal at or above the partition whose
//!   revision is not the update revision is deleted (and recreated at the new revision by the
//!   next pass); one pod at a time, waiting for each to be available again.
//! - OnDelete: pods are replaced at the new revision only when someone deletes them.
//!
//! Simplification: the MaxUnavailableStatefulSet feature (alpha, off by default in v1.33) is not
//! implemented; a rolling update replaces one pod at a time.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::claims;
use super::identity::*;
use crate::meta;

/// One action on the set's pods or claims.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Delete a pod that Failed or Succeeded so that the next pass makes it again.
    Recreate(Value),
    /// Create the pod's claims, then the pod.
    Create(Value),
    /// Create the missing claims of a Pending pod.
    CreateClaims(Value),
    /// Bring an existing pod's identity, volumes and claim ownership in line with the set.
    Update(Value),
    /// Set a condemned pod's claim ownership for the retention policy before it goes.
    FixClaims(Value),
    /// Delete a pod: scale-down or rolling update.
    Delete(Value),
}

/// The steps of one pass, in stages run in order; in burst mode every step of a stage is tried
/// even if one fails, in monotonic mode the pass stops at the first failure.
#[derive(Debug, Default)]
pub struct Plan {
    pub status: Value,
    pub stages: Vec<Vec<Step>>,
    pub monotonic: bool,
}

/// What [`plan`] decides from.
pub struct Inputs<'a> {
    pub set: &'a Value,
    pub current_set: &'a Value,
    pub update_set: &'a Value,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    pub collision_count: i64,
    /// The pods the set owns.
    pub pods: &'a [Value],
    /// A claim by name, from the cache.
    pub claim: &'a dyn Fn(&str) -> Option<Value>,
    pub now: DateTime<Utc>,
}

#[derive(Default)]
struct Counts {
    replicas: i64,
    ready: i64,
    available: i64,
    current: i64,
    updated: i64,
}

fn count<'a>(pods: impl Iterator<Item = &'a Value>, inp: &Inputs) -> Counts {
    let min_ready = min_ready_seconds(inp.set);
    let mut c = Counts::default();
    for p in pods {
        if is_created(p) {
            c.replicas += 1;
        }
        if is_running_and_ready(p) {
            c.ready += 1;
            if is_running_and_available(p, min_ready, inp.now) {
                c.available += 1;
            }
        }
        if is_created(p) && !is_terminating(p) {
            let r = pod_revision(p);
            if r == inp.current_revision {
                c.current += 1;
            }
            if r == inp.update_revision {
                c.updated += 1;
            }
        }
    }
    c
}

/// A `StatefulSetStatus` as upstream serializes it (zero values of omitempty fields left out).
fn status_json(inp: &Inputs, c: &Counts) -> Value {
    let mut st = json!({"replicas": c.replicas, "availableReplicas": c.available, "collisionCount": inp.collision_count});
    let gen = inp.set["metadata"]["generation"].as_i64().unwrap_or(0);
    for (k, v) in [("observedGeneration", gen), ("readyReplicas", c.ready), ("currentReplicas", c.current), ("updatedReplicas", c.updated)] {
        if v != 0 {
            st[k] = json!(v);
        }
    }
    for (k, v) in [("currentRevision", inp.current_revision), ("updateRevision", inp.update_revision)] {
        if !v.is_empty() {
            st[k] = json!(v);
        }
    }
    st
}

/// Every claim of `pod` exists; a claim being deleted counts as present (creating it fails).
fn claims_present(inp: &Inputs, pod: &Value) -> bool {
    claims(inp.set, ordinal(pod)).iter().all(|(_, c)| (inp.claim)(meta::name(c)).is_some())
}

/// The claims of `pod` that exist are owned as the retention policy says (missing ones are
/// picked up later) (`ClaimsMatchRetentionPolicy`).
pub fn claims_match_policy(set: &Value, pod: &Value, claim: &dyn Fn(&str) -> Option<Value>) -> bool {
    super::identity::claims(set, ordinal(pod)).iter().all(|(_, c)| claim(meta::name(c)).map(|c| claims::owner_up_to_date(&c, set, pod)).unwrap_or(true))
}

/// `processReplica`: the steps for replica `pod`, and whether a monotonic pass must stop here.
fn process_replica(inp: &Inputs, monotonic: bool, pod: &Value, steps: &mut Vec<Step>) -> bool {
    let min_ready = min_ready_seconds(inp.set);
    if is_failed(pod) || is_succeeded(pod) {
        if !is_terminating(pod) {
            steps.push(Step::Recreate(pod.clone()));
        }
        return true;
    }
    if !is_created(pod) {
        let stale = super::identity::claims(inp.set, ordinal(pod))
            .iter()
            .any(|(_, c)| (inp.claim)(meta::name(c)).map(|c| claims::is_stale_for(&c, inp.set, pod)).unwrap_or(false));
        if stale {
            return true;
        }
        steps.push(Step::Create(pod.clone()));
        if monotonic {
            return true;
        }
    }
    if is_pending(pod) && !claims_present(inp, pod) {
        steps.push(Step::CreateClaims(pod.clone()));
    }
    if monotonic && (is_terminating(pod) || !is_running_and_ready(pod) || !is_running_and_available(pod, min_ready, inp.now)) {
        return true;
    }
    let retention_ok = !is_created(pod) || claims_match_policy(inp.update_set, pod, inp.claim);
    if identity_matches(inp.set, pod) && storage_matches(inp.set, pod) && retention_ok {
        return false;
    }
    steps.push(Step::Update(pod.clone()));
    false
}

/// Decides the next steps for a set and its pods (`updateStatefulSet`).
pub fn plan(inp: &Inputs) -> Plan {
    let set = inp.set;
    let min_ready = min_ready_seconds(set);
    let monotonic = set["spec"]["podManagementPolicy"].as_str() != Some("Parallel");
    let (start, end) = (start_ordinal(set), end_ordinal(set));
    let mut replicas: Vec<Option<Value>> = vec![None; replicas(set) as usize];
    let mut condemned: Vec<Value> = Vec::new();
    for p in inp.pods {
        let o = ordinal(p);
        if in_ordinal_range(p, set) {
            replicas[(o - start) as usize] = Some(p.clone());
        } else if o >= 0 {
            condemned.push(p.clone());
        }
    }
    let replicas: Vec<Value> = (start..=end)
        .zip(replicas)
        .map(|(ord, p)| p.unwrap_or_else(|| versioned_pod(inp.current_set, inp.update_set, inp.current_revision, inp.update_revision, ord)))
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
    let first_unavailable = replicas
        .iter()
        .find(|p| is_unavailable(p, min_ready, inp.now))
        .or_else(|| condemned.iter().rev().find(|p| is_unavailable(p, min_ready, inp.now)))
        .map(|p| meta::name(p).to_string());

    let mut plan = Plan { monotonic, ..Default::default() };
    let counts = count(replicas.iter().chain(condemned.iter()), inp);
    plan.status = status_json(inp, &counts);
    if meta::is_deleting(set) {
        plan.status = status_json(inp, &count(inp.pods.iter(), inp));
        return plan;
    }

    // The replicas, in ordinal order.
    let mut steps = Vec::new();
    let mut stop = false;
    for p in &replicas {
        if process_replica(inp, monotonic, p, &mut steps) && monotonic {
            stop = true;
            break;
        }
    }
    plan.stages.push(steps);
    if stop {
        return plan;
    }

    // Claims of condemned pods get the ownership the retention policy wants before they go.
    let fixes: Vec<Step> = condemned.iter().filter(|p| !claims_match_policy(inp.update_set, p, inp.claim)).map(|p| Step::FixClaims(p.clone())).collect();
    plan.stages.push(fixes);

    // Scale down, highest ordinal first.
    let mut steps = Vec::new();
    for p in &condemned {
        if is_terminating(p) {
            if monotonic {
                stop = true;
                break;
            }
            continue;
        }
        let first = first_unavailable.as_deref() == Some(meta::name(p));
        if monotonic && !first && (!is_running_and_ready(p) || !is_running_and_available(p, min_ready, inp.now)) {
            stop = true;
            break;
        }
        steps.push(Step::Delete(p.clone()));
        if monotonic {
            stop = true;
            break;
        }
    }
    plan.stages.push(steps);
    if stop || strategy(set) == "OnDelete" {
        return plan;
    }

    // Rolling update: the highest ordinal not at the update revision, one at a time.
    let update_min = partition(set).unwrap_or(0).max(0) as usize;
    let mut steps = Vec::new();
    for target in (update_min..replicas.len()).rev() {
        let p = &replicas[target];
        if pod_revision(p) != inp.update_revision && !is_terminating(p) {
            steps.push(Step::Delete(p.clone()));
            let cur = plan.status["currentReplicas"].as_i64().unwrap_or(0) - 1;
            plan.status["currentReplicas"] = json!(cur);
            break;
        }
        if is_unavailable(p, min_ready, inp.now) {
            break;
        }
    }
    plan.stages.push(steps);
    plan
}

/// Ends a rolling update once every replica is updated and ready (`completeRollingUpdate`).
pub fn complete_rolling_update(set: &Value, status: &mut Value) {
    let n = replicas(set);
    let get = |k: &str| status[k].as_i64().unwrap_or(0);
    if strategy(set) == "RollingUpdate" && get("updatedReplicas") == n && get("readyReplicas") == n && get("replicas") == n {
        status["currentReplicas"] = status["updatedReplicas"].clone();
        status["currentRevision"] = status["updateRevision"].clone();
    }
}

/// Whether the new status differs from the recorded one in what upstream compares
/// (`inconsistentStatus`).
pub fn inconsistent(set: &Value, status: &Value) -> bool {
    let old = &set["status"];
    let int = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    int(status, "observedGeneration") > int(old, "observedGeneration")
        || ["replicas", "currentReplicas", "readyReplicas", "updatedReplicas", "availableReplicas"].iter().any(|k| int(status, k) != int(old, k))
        || ["currentRevision", "updateRevision"].iter().any(|k| s(status, k) != s(old, k))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
