//! ResourceQuota usage, after upstream's resource quota controller: `status.hard` mirrors
//! `spec.hard` and `status.used` is recomputed from the watch caches for every resource the
//! quota names, with its scopes.
//!
//! When it runs, as upstream: a quota is new or its spec changed (or its status lacks usage);
//! an object a quota may count is deleted (replenishment); a pod stops counting (it finished);
//! a service or claim changed what it costs. Creations need no recomputation: quota admission
//! already charged them. In addition a deleted pod stops counting once its grace period is over
//! (upstream waits for its periodic full resync); the controller requeues for that deadline.
//! There is no periodic resync (upstream: every 5 minutes): an idle tenant never wakes.
//!
//! A recomputation holds the namespace's quota lock and adds the charges admission made for
//! objects the caches do not show yet (`QuotaAdmission::in_flight`), so it never undoes a
//! charge that is about to land.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::runtime::ctx::{PERSISTENTVOLUMECLAIMS, PODS, RESOURCEQUOTAS, SERVICES};
use super::runtime::{Action, Change, Controller, Ctx, ObjKey, Res};
use crate::api::status::ApiError;
use crate::quota::evaluators::Evaluator;
use crate::quota::{self, pods, QuotaView, ResourceList};
use crate::registry::quantity::Quantity;

/// Runs until the process ends. Keys are namespaces (name "").
pub async fn run(ctx: Ctx) {
    let mut c = Controller::new("resourcequota", ctx.clone())
        .watches(RESOURCEQUOTAS, quota_changed)
        .watches(PODS, |ch| replenish(ch, &Evaluator::Pods))
        .watches(SERVICES, |ch| replenish(ch, &Evaluator::Services))
        .watches(PERSISTENTVOLUMECLAIMS, |ch| replenish(ch, &Evaluator::PersistentVolumeClaims));
    for (r, _) in counted_resources(&ctx) {
        if [PODS, SERVICES, PERSISTENTVOLUMECLAIMS, RESOURCEQUOTAS].contains(&r) {
            continue;
        }
        c = c.watches(r, |ch| if ch.object.is_none() { vec![ns_key(ch)] } else { vec![] });
    }
    c.run(|ctx, key| async move { reconcile(&ctx, &key.namespace).await }).await
}

fn ns_key(ch: &Change) -> ObjKey {
    ObjKey::new(ch.latest().namespace.clone(), "")
}

/// Every namespaced resource quota can count, once each, with its evaluator.
fn counted_resources(ctx: &Ctx) -> Vec<(Res, Evaluator)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for s in ctx.store.registry.all() {
        let inf = s.info();
        if !inf.namespaced || !seen.insert(inf.id()) {
            continue;
        }
        if let (Some(ev), Some(r)) = (Evaluator::for_resource(&inf.group, &inf.plural), Res::of(inf)) {
            out.push((r, ev));
        }
    }
    out
}

/// A quota needs a sync when new, when its spec changed, or when its status does not mirror
/// the spec; a deleted quota may free `resourcequotas` of another. Admission's own charges
/// (status.used only) queue nothing.
fn quota_changed(ch: &Change) -> Vec<ObjKey> {
    let (Some(o), Some(p)) = (ch.object, ch.prev) else { return vec![ns_key(ch)] };
    let (v, pv) = (o.value(), p.value());
    let q = QuotaView::parse(&v);
    let stale = v["spec"] != pv["spec"]
        || !quota::equals(&q.spec_hard, &q.hard)
        || q.used.as_ref().map(|u| q.spec_hard.keys().any(|k| !u.contains_key(k))).unwrap_or(true);
    if stale {
        vec![ns_key(ch)]
    } else {
        vec![]
    }
}

/// Replenishment: a deletion, a pod that stopped counting (or started terminating, which sets
/// when it stops), a service or claim whose cost changed.
fn replenish(ch: &Change, ev: &Evaluator) -> Vec<ObjKey> {
    let (Some(o), Some(p)) = (ch.object, ch.prev) else {
        return if ch.object.is_none() { vec![ns_key(ch)] } else { vec![] };
    };
    let (v, pv) = (o.value(), p.value());
    let changed = match ev {
        Evaluator::Pods => {
            let now = Utc::now();
            (pods::counts(&pv, now) && !pods::counts(&v, now)) || v["metadata"]["deletionTimestamp"] != pv["metadata"]["deletionTimestamp"]
        }
        _ => {
            let now = Utc::now();
            !quota::equals(&ev.usage(&v, now), &ev.usage(&pv, now))
        }
    };
    if changed {
        vec![ns_key(ch)]
    } else {
        vec![]
    }
}

/// Usage of one quota from the caches (`quota.CalculateUsage`): for each evaluator measuring
/// something the quota limits, the sum over the namespace's objects in the quota's scopes.
/// `next` learns when a terminating pod will stop counting.
fn calculate_usage(
    ctx: &Ctx,
    ns: &str,
    q: &QuotaView,
    evaluators: &[(Res, Evaluator)],
    now: DateTime<Utc>,
    next: &mut Option<DateTime<Utc>>,
) -> ResourceList {
    let names: Vec<String> = q.spec_hard.keys().cloned().collect();
    let mut used = ResourceList::new();
    for (r, ev) in evaluators {
        let matched = ev.matching_resources(&names);
        if matched.is_empty() {
            continue;
        }
        let mut stats: ResourceList = matched.iter().map(|n| (n.clone(), Quantity::zero())).collect();
        for o in ctx.list(*r, ns) {
            let v = o.value();
            if !q.selectors.iter().all(|s| ev.matches_scope(s, &v)) {
                continue;
            }
            stats = quota::add(&stats, &ev.usage(&v, now));
            if *ev == Evaluator::Pods {
                if let Some(end) = pods::charge_ends(&v).filter(|t| *t >= now) {
                    *next = Some(next.map_or(end, |n| n.min(end)));
                }
            }
        }
        used = quota::add(&used, &stats);
    }
    quota::mask(&used, &names)
}

async fn reconcile(ctx: &Ctx, ns: &str) -> Result<Action, ApiError> {
    if ctx.list(RESOURCEQUOTAS, ns).is_empty() {
        return Ok(Action::Done);
    }
    let qa = &ctx.store.quota;
    let lock = qa.namespace_lock(ns);
    let _g = lock.lock().await;
    ctx.store.consistent().await?;
    let evaluators = counted_resources(ctx);
    let in_flight = qa.in_flight(&ctx.store, ns);
    let now = Utc::now();
    let mut next = None;
    for o in ctx.list(RESOURCEQUOTAS, ns) {
        let v = o.value();
        let q = QuotaView::parse(&v);
        let mut computed = calculate_usage(ctx, ns, &q, &evaluators, now, &mut next);
        if let Some(extra) = in_flight.get(&q.name) {
            computed = quota::add(&computed, &quota::mask(extra, q.spec_hard.keys()));
        }
        // Keep earlier observations of names no evaluator measures; drop what is not limited.
        let mut used = q.used.clone().unwrap_or_default();
        used.extend(computed);
        let used = quota::mask(&used, q.spec_hard.keys());
        let dirty = v["status"]["hard"].is_null()
            || !quota::equals(&q.spec_hard, &q.hard)
            || q.used.as_ref().map(|u| !quota::equals(u, &used)).unwrap_or(true);
        if !dirty {
            continue;
        }
        let mut n = (*v).clone();
        n["status"] = json!({"hard": quota::list_to_json(&q.spec_hard), "used": quota::list_to_json(&used)});
        ctx.update_status(RESOURCEQUOTAS, n).await?;
    }
    Ok(match next {
        Some(t) => Action::RequeueAfter((t - now).to_std().unwrap_or_default() + Duration::from_millis(100)),
        None => Action::Done,
    })
}
