//! The ReplicaSet and ReplicationController controllers (kube-controller-manager's
//! `replicaset` and `replicationcontroller`), one implementation for both as upstream's
//! `pkg/controller/replicaset` (which runs ReplicationControllers through the same code): keep
//! `spec.replicas` active pods matching the selector, adopting orphans and releasing pods that
//! no longer match; create missing pods from the template in slow-start batches; delete surplus
//! pods in [`ranking`]'s order; report replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas, observedGeneration and a ReplicaFailure condition in the status.
//!
//! Differences from upstream: no expectations (the runtime's consistent reads make them
//! unnecessary, see `runtime`); a ReplicaSet whose pods will become available after
//! minReadySeconds is requeued for exactly that moment instead of after minReadySeconds.

pub mod facts;
pub mod ranking;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::podutil;
use super::recorder::Recorder;
use super::runtime::ctx::{PODS, REPLICASETS, REPLICATIONCONTROLLERS};
use super::runtime::{controller_of, owner_keys, Action, Change, Controller, Ctx, ObjKey, Res};
use crate::api::selectors::LabelSelector;
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::{DeleteOpts, Part};
use crate::storage::cache::CachedObject;
use facts::{FactCache, Owner};

/// Pods created or deleted per sync at most (`BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// The first slow-start batch (`SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// What tells ReplicaSets and ReplicationControllers apart.
#[derive(Debug)]
pub struct Flavor {
    pub res: Res,
    pub kind: &'static str,
    /// The controller's name in kube-controller-manager.
    pub name: &'static str,
    /// `source.component` of its Events.
    pub component: &'static str,
    /// `spec.selector` is a plain label map (ReplicationController), not a LabelSelector.
    pub map_selector: bool,
}

pub static REPLICA_SET: Flavor = Flavor {
    res: REPLICASETS,
    kind: "ReplicaSet",
    name: "replicaset",
    component: "replicaset-controller",
    map_selector: false,
};
pub static REPLICATION_CONTROLLER: Flavor = Flavor {
    res: REPLICATIONCONTROLLERS,
    kind: "ReplicationController",
    name: "replicationcontroller",
    component: "replication-controller",
    map_selector: true,
};

impl Flavor {
    /// The object's pod selector; None when missing, empty or invalid (such objects are
    /// refused by validation; the controller leaves them alone).
    pub fn selector(&self, obj: &Value) -> Option<LabelSelector> {
        if self.map_selector {
            podutil::map_selector(&obj["spec"]["selector"])
        } else {
            podutil::selector(obj)
        }
    }
}

/// Runs the ReplicaSet controller until the process ends.
pub async fn run_replicasets(ctx: Ctx) {
    run(ctx, &REPLICA_SET).await
}

/// Runs the ReplicationController controller until the process ends.
pub async fn run_replication_controllers(ctx: Ctx) {
    run(ctx, &REPLICATION_CONTROLLER).await
}

async fn run(ctx: Ctx, f: &'static Flavor) {
    let rec = Recorder::new(ctx.clone(), f.component);
    let facts = Arc::new(Mutex::new(FactCache::default()));
    let lookup = ctx.clone();
    let owners = owner_keys(f.kind);
    Controller::new(f.name, ctx)
        .watches(f.res, |ch| {
            if status_only(ch) {
                Vec::new()
            } else {
                vec![ch.key()]
            }
        })
        .watches(PODS, move |ch| {
            let mut keys = owners(ch);
            for k in orphan_keys(&lookup, f, ch) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            keys
        })
        .workers(5)
        .run(move |ctx, key| {
            let (rec, facts) = (rec.clone(), facts.clone());
            async move { reconcile(&ctx, f, &rec, &facts, &key).await }
        })
        .await
}

/// A change of nothing but the status (typically this controller's own status write): nothing
/// to do, as the status follows from the pods (upstream syncs anyway, finding nothing to do).
fn status_only(ch: &Change) -> bool {
    let (Some(now), Some(prev)) = (ch.object, ch.prev) else {
        return false;
    };
    let (a, b) = (now.value(), prev.value());
    let meta_eq = |k: &str| a["metadata"].get(k) == b["metadata"].get(k);
    a.get("spec") == b.get("spec")
        && [
            "labels",
            "annotations",
            "ownerReferences",
            "deletionTimestamp",
            "finalizers",
            "generation",
        ]
        .iter()
        .all(|k| meta_eq(k))
}

/// For a pod without a controller that appeared, changed labels or lost its controller: every
/// object of this flavor in its namespace whose selector matches it (one of them may adopt it).
fn orphan_keys(ctx: &Ctx, f: &Flavor, ch: &Change) -> Vec<ObjKey> {
    let Some(now) = ch.object else {
        return Vec::new();
    };
    let v = now.value();
    if controller_of(&v).is_some() || meta::is_deleting(&v) {
        return Vec::new();
    }
    if let Some(prev) = ch.prev {
        if prev.labels == now.labels && controller_of(&prev.value()).is_none() {
            return Vec::new();
        }
    }
    ctx.list(f.res, &now.namespace)
        .into_iter()
        .filter(|o| {
            f.selector(&o.value())
                .map(|s| s.matches(&now.labels))
                .unwrap_or(false)
        })
        .map(|o| ObjKey::new(o.namespace.clone(), o.name.clone()))
        .collect()
}

/// `spec.replicas` (defaulted to 1 by the API).
pub fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// `spec.minReadySeconds`.
pub fn min_ready_seconds(obj: &Value) -> i64 {
    obj["spec"]["minReadySeconds"].as_i64().unwrap_or(0)
}

/// Counts of a ReplicaSet's pods, for its status.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counts {
    pub replicas: i64,
    pub fully_labeled: i64,
    pub ready: i64,
    pub available: i64,
    /// The earliest moment a ready pod becomes available (minReadySeconds), if ahead.
    pub next_available: Option<DateTime<Utc>>,
}

impl Counts {
    fn add(
        &mut self,
        ready: bool,
        available: bool,
        fully_labeled: bool,
        available_at: Option<DateTime<Utc>>,
    ) {
        self.replicas += 1;
        self.fully_labeled += fully_labeled as i64;
        self.ready += ready as i64;
        self.available += available as i64;
        if !available {
            if let Some(at) = available_at {
                self.next_available = Some(self.next_available.map_or(at, |n| n.min(at)));
            }
        }
    }

    /// Counts a pod given as a whole object (one just adopted).
    fn add_value(
        &mut self,
        p: &Value,
        template_labels: Option<&serde_json::Map<String, Value>>,
        min_ready: i64,
        now: DateTime<Utc>,
    ) {
        let labels = &p["metadata"]["labels"];
        let full = template_labels
            .map(|t| t.iter().all(|(k, v)| labels[k.as_str()] == *v))
            .unwrap_or(true);
        let ready = podutil::is_ready(p);
        let available = podutil::is_available(p, min_ready, now);
        self.add(ready, available, full, podutil::available_at(p, min_ready));
    }
}

/// `syncReplicaSet`: claim the pods, create or delete some, write the status.
async fn reconcile(
    ctx: &Ctx,
    f: &'static Flavor,
    rec: &Recorder,
    facts: &Mutex<FactCache>,
    key: &ObjKey,
) -> Result<Action, ApiError> {
    let Some(rs) = ctx.get(f.res, &key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let Some(sel) = f.selector(&rs) else {
        return Ok(Action::Done);
    };
    let uid = meta::uid(&rs);
    let rs_deleting = meta::is_deleting(&rs);
    let template_labels = rs["spec"]["template"]["metadata"]["labels"].as_object();
    let owner = Owner {
        key: Owner::key_of(uid, util_int(&rs["metadata"]["generation"])),
        selector: &sel,
        template_labels,
    };
    let min_ready = min_ready_seconds(&rs);
    let now = Utc::now();
    // Active pods it owns and still selects are counted as they are; orphans it selects and
    // owned pods it no longer selects go through claim (adopt, release).
    let mut owned: Vec<Arc<CachedObject>> = Vec::new();
    let mut to_claim: Vec<Arc<Value>> = Vec::new();
    let mut counts = Counts::default();
    {
        let mut fc = facts.lock();
        for o in ctx.list(PODS, &key.namespace) {
            let fact = fc.get(&o);
            if !fact.active {
                continue;
            }
            let mine = match fact.controller_uid.as_deref() {
                Some(c) if c == uid => true,
                Some(_) => continue,
                None => false,
            };
            let (fact, selected, full) = fc.check(&o, &owner);
            if mine && (selected || rs_deleting) {
                counts.add(
                    fact.ready,
                    fact.available(min_ready, now),
                    full,
                    fact.available_at(min_ready),
                );
                owned.push(o);
            } else if selected || mine {
                to_claim.push(o.value());
            }
        }
    }
    let mut adopted = Vec::new();
    if !to_claim.is_empty() {
        adopted = podutil::claim_shared(ctx, f.res, &rs, &sel, to_claim).await?;
        for p in &adopted {
            counts.add_value(p, template_labels, min_ready, now);
        }
    }
    let manage_err = if rs_deleting {
        None
    } else {
        manage_replicas(ctx, f, rec, &rs, counts.replicas, || {
            owned
                .iter()
                .map(|o| o.value())
                .chain(adopted.iter().cloned())
                .collect()
        })
        .await
        .err()
    };
    let status = calculate_status(&rs, &counts, manage_err.as_ref());
    update_status(ctx, f, &rs, status).await?;
    if let Some(e) = manage_err {
        return Err(e);
    }
    // Pods that are ready but not yet available change the status later, unprompted.
    Ok(match counts.next_available {
        Some(at) => Action::RequeueAfter(
            (at - now).to_std().unwrap_or_default() + Duration::from_millis(20),
        ),
        None => Action::Done,
    })
}

fn util_int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Creates or deletes pods so that `spec.replicas` are active (`manageReplicas`).
async fn manage_replicas(
    ctx: &Ctx,
    f: &Flavor,
    rec: &Recorder,
    rs: &Arc<Value>,
    active: i64,
    pods: impl FnOnce() -> Vec<Arc<Value>>,
) -> Result<(), ApiError> {
    let diff = active - replicas(rs);
    if diff < 0 {
        let n = ((-diff) as usize).min(BURST_REPLICAS);
        let template = Arc::new(rs["spec"]["template"].clone());
        if !template.is_object() {
            return Ok(());
        }
        let prefix = pods_prefix(meta::name(rs));
        let (_, err) = slow_start(n, SLOW_START_INITIAL_BATCH, || {
            let (ctx, rec, rs, template, prefix) = (
                ctx.clone(),
                rec.clone(),
                rs.clone(),
                template.clone(),
                prefix.clone(),
            );
            async move {
                tokio::spawn(async move { create_pod(&ctx, &rec, &rs, &template, &prefix).await })
                    .await
                    .unwrap_or_else(|e| Err(ApiError::internal(format!("creating a pod: {e}"))))
            }
        })
        .await;
        return err.map_or(Ok(()), Err);
    }
    if diff > 0 {
        let n = (diff as usize).min(BURST_REPLICAS);
        let related = related_pods(ctx, f, rs);
        let victims = ranking::pods_to_delete(pods(), &related, n, Utc::now());
        let tasks: Vec<_> = victims
            .into_iter()
            .map(|p| {
                let (ctx, rec, rs) = (ctx.clone(), rec.clone(), rs.clone());
                tokio::spawn(async move { delete_pod(&ctx, &rec, &rs, meta::name(&p)).await })
            })
            .collect();
        let mut first = None;
        for t in tasks {
            if let Err(e) = t
                .await
                .unwrap_or_else(|e| Err(ApiError::internal(format!("deleting a pod: {e}"))))
            {
                first.get_or_insert(e);
            }
        }
        return first.map_or(Ok(()), Err);
    }
    Ok(())
}

/// `generateName` of the pods: `<name>-` (`getPodsPrefix`).
fn pods_prefix(name: &str) -> String {
    let prefix = format!("{name}-");
    if prefix.len() > 253 {
        name.to_string()
    } else {
        prefix
    }
}

/// Calls `f` `count` times, in batches of 1, 2, 4, ... whose calls run concurrently; stops after
/// the first batch with a failure (`slowStartBatch`). Returns the successes and that failure.
pub async fn slow_start<F, Fut>(count: usize, initial: usize, mut f: F) -> (usize, Option<ApiError>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(initial.max(1));
    while batch > 0 {
        let results = futures::future::join_all((0..batch).map(|_| f())).await;
        let mut errs = results.into_iter().filter_map(|r| r.err());
        let first = errs.next();
        let failed = first.is_some() as usize + errs.count();
        successes += batch - failed;
        if first.is_some() {
            return (successes, first);
        }
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    (successes, None)
}

fn namespace_terminating(e: &ApiError) -> bool {
    e.details
        .as_ref()
        .and_then(|d| d["causes"].as_array().cloned())
        .map(|c| c.iter().any(|c| c["reason"] == "NamespaceTerminating"))
        .unwrap_or(false)
}

/// Creates one pod from the template (`RealPodControl.CreatePods`).
async fn create_pod(
    ctx: &Ctx,
    rec: &Recorder,
    owner: &Value,
    template: &Value,
    prefix: &str,
) -> Result<(), ApiError> {
    let pod = podutil::pod_from_template(template, owner, prefix);
    if pod["metadata"]["labels"]
        .as_object()
        .map(|l| l.is_empty())
        .unwrap_or(true)
    {
        return Err(ApiError::internal("unable to create pods, no labels"));
    }
    match ctx.create(PODS, meta::namespace(owner), pod).await {
        Ok(created) => {
            rec.event(
                owner,
                "Normal",
                "SuccessfulCreate",
                format!("Created pod: {}", meta::name(&created)),
            );
            Ok(())
        }
        // Nothing can be created in a terminating namespace: not worth an error.
        Err(e) if namespace_terminating(&e) => Ok(()),
        Err(e) => {
            rec.event(
                owner,
                "Warning",
                "FailedCreate",
                format!("Error creating: {}", e.message),
            );
            Err(e)
        }
    }
}

/// Deletes one pod (`RealPodControl.DeletePod`); a pod already gone is fine.
async fn delete_pod(ctx: &Ctx, rec: &Recorder, owner: &Value, name: &str) -> Result<(), ApiError> {
    match ctx
        .delete(PODS, meta::namespace(owner), name, &DeleteOpts::default())
        .await
    {
        Ok(Some(_)) => {
            rec.event(
                owner,
                "Normal",
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => {
            rec.event(
                owner,
                "Warning",
                "FailedDelete",
                format!("Error deleting: {}", e.message),
            );
            let mut e = e;
            e.message = format!("unable to delete pods: {}", e.message);
            Err(e)
        }
    }
}

/// The pods of every object of this flavor with the same controller as `rs` (its siblings in
/// a Deployment), for spotting pods doubled up on a node (`getIndirectlyRelatedPods`).
fn related_pods(ctx: &Ctx, f: &Flavor, rs: &Value) -> Vec<Arc<Value>> {
    let Some(owner) = controller_of(rs) else {
        return Vec::new();
    };
    let ns = meta::namespace(rs);
    let selectors: Vec<LabelSelector> = ctx
        .list(f.res, ns)
        .into_iter()
        .filter_map(|o| {
            let v = o.value();
            controller_of(&v)
                .filter(|c| c.uid == owner.uid)
                .and_then(|_| f.selector(&v))
        })
        .collect();
    ctx.list(PODS, ns)
        .into_iter()
        .filter(|p| selectors.iter().any(|s| s.matches(&p.labels)))
        .map(|p| p.value())
        .collect()
}

/// The status the pods call for (`calculateStatus`), observedGeneration left to the writer.
pub fn calculate_status(rs: &Value, counts: &Counts, manage_err: Option<&ApiError>) -> Value {
    let mut st = rs["status"].clone();
    if !st.is_object() {
        st = json!({});
    }
    let has_failure = st["conditions"]
        .as_array()
        .map(|c| c.iter().any(|c| c["type"] == "ReplicaFailure"))
        .unwrap_or(false);
    match manage_err {
        Some(e) if !has_failure => {
            let diff = counts.replicas - replicas(rs);
            let reason = if diff < 0 {
                "FailedCreate"
            } else if diff > 0 {
                "FailedDelete"
            } else {
                ""
            };
            let cond = json!({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": meta::now_rfc3339(), "reason": reason, "message": e.message});
            let mut conds: Vec<Value> = st["conditions"].as_array().cloned().unwrap_or_default();
            conds.push(cond);
            st["conditions"] = json!(conds);
        }
        None if has_failure => {
            let conds: Vec<Value> = st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["type"] != "ReplicaFailure")
                .cloned()
                .collect();
            set_or_remove(&mut st, "conditions", json!(conds), conds.is_empty());
        }
        _ => {}
    }
    st["replicas"] = json!(counts.replicas);
    let c = counts;
    set_or_remove(
        &mut st,
        "fullyLabeledReplicas",
        json!(c.fully_labeled),
        c.fully_labeled == 0,
    );
    set_or_remove(&mut st, "readyReplicas", json!(c.ready), c.ready == 0);
    set_or_remove(
        &mut st,
        "availableReplicas",
        json!(c.available),
        c.available == 0,
    );
    st
}

/// Sets a status field, or removes it when it holds its zero value (Go's omitempty).
fn set_or_remove(st: &mut Value, field: &str, v: Value, zero: bool) {
    if let Some(m) = st.as_object_mut() {
        if zero {
            m.remove(field);
        } else {
            m.insert(field.into(), v);
        }
    }
}

/// Whether two statuses say the same (zero and absent count alike).
fn same_status(a: &Value, b: &Value) -> bool {
    let int = |v: &Value, f: &str| v[f].as_i64().unwrap_or(0);
    [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|f| int(a, f) == int(b, f))
        && a["conditions"]
            .as_array()
            .map(|c| c.as_slice())
            .unwrap_or(&[])
            == b["conditions"]
                .as_array()
                .map(|c| c.as_slice())
                .unwrap_or(&[])
}

/// Writes the status when it changed, recording the generation acted on
/// (`updateReplicaSetStatus`); on a conflict once more on the stored object.
async fn update_status(
    ctx: &Ctx,
    f: &Flavor,
    rs: &Value,
    mut status: Value,
) -> Result<(), ApiError> {
    let generation = rs["metadata"]["generation"].as_i64().unwrap_or(0);
    set_or_remove(
        &mut status,
        "observedGeneration",
        json!(generation),
        generation == 0,
    );
    if same_status(&rs["status"], &status) {
        return Ok(());
    }
    let mut obj = rs.clone();
    obj["status"] = status.clone();
    match ctx.update_status(f.res, obj).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => {
            ctx.modify(
                f.res,
                meta::namespace(rs),
                meta::name(rs),
                Part::Status,
                |cur| {
                    cur["status"] = status.clone();
                    Ok(())
                },
            )
            .await?;
            Ok(())
        }
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_at_a_failure() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start(10, 1, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await;
        assert_eq!(
            (ok, err.is_none(), calls.load(Ordering::SeqCst)),
            (10, true, 10)
        );
        // Batches 1, 2, 4: the 5th call fails, so the batch of 4 completes and nothing more runs.
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start(100, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 4 {
                    Err(ApiError::forbidden("quota"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!((ok, calls.load(Ordering::SeqCst)), (6, 7));
        assert_eq!(err.unwrap().message, "quota");
    }

    fn rs() -> Value {
        json!({"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": 3, "minReadySeconds": 10,
            "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}}}, "status": {"replicas": 0}})
    }

    #[test]
    fn status_counts_labels_readiness_and_availability() {
        let now = Utc::now();
        let secs = chrono::SecondsFormat::Secs;
        let long_ago = (now - chrono::Duration::seconds(60)).to_rfc3339_opts(secs, true);
        let just_now = now.to_rfc3339_opts(secs, true);
        let ready = |t: &str| json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        let pods = [
            json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}, "status": {"conditions": ready(&long_ago)}}),
            json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}, "status": {"conditions": ready(&just_now)}}),
            json!({"metadata": {"labels": {"app": "web"}}, "status": {}}),
        ];
        let rs = rs();
        let tl = rs["spec"]["template"]["metadata"]["labels"].as_object();
        let mut counts = Counts::default();
        for p in &pods {
            counts.add_value(p, tl, 10, now);
        }
        assert_eq!(
            (
                counts.replicas,
                counts.fully_labeled,
                counts.ready,
                counts.available
            ),
            (3, 2, 2, 1)
        );
        let at = meta::parse_time(&just_now).unwrap() + chrono::Duration::seconds(10);
        assert_eq!(
            counts.next_available,
            Some(at),
            "the second pod becomes available in 10 s"
        );
        let st = calculate_status(&rs, &counts, None);
        assert_eq!(
            st,
            json!({"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1})
        );
        let one = Counts {
            replicas: 1,
            ..Default::default()
        };
        let failed = calculate_status(&rs, &one, Some(&ApiError::forbidden("exceeded quota")));
        assert_eq!(failed["conditions"][0]["reason"], "FailedCreate");
        assert_eq!(failed["conditions"][0]["message"], "exceeded quota");
        let mut healed = rs.clone();
        healed["status"] = failed;
        let st = calculate_status(&healed, &one, None);
        assert!(st.get("conditions").is_none(), "{st}");
        assert!(same_status(
            &json!({"replicas": 0, "readyReplicas": 0}),
            &json!({"replicas": 0})
        ));
    }
}
