//! ResourceQuota admission, after upstream's `ResourceQuota` admission plugin
//! (`k8s.io/apiserver/pkg/admission/plugin/resourcequota`): a create (or an update that changes
//! usage, such as a Service changing type or a claim growing) that would take any matching
//! quota of its namespace past `status.hard` is refused with upstream's 403, e.g.
//! `pods "p3" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`.
//!
//! The charge is taken before the object is written: each matching quota's `status.used` is
//! raised by a compare-and-swap on the ResourceQuota (re-checking against the stored quota), so
//! two concurrent creates can never both take the last slot. Charges in one namespace are also
//! serialized by a lock, so concurrent requests here do not fight over the same quota.
//!
//! The store tells the returned [`Charge`] how the write ended: a failed write is refunded at
//! once; a successful one stays "in flight" until the watch cache shows the object. The
//! `resourcequota` controller recomputes usage from the caches under the same namespace lock
//! and adds the in-flight charges ([`QuotaAdmission::in_flight`]), so a recomputation never
//! loses a charge whose object is not in the cache yet.
//!
//! Not modelled: upstream's admission configuration (`limitedResources`), which kube-apiserver
//! has empty by default.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::api::status::{ApiError, ApiResult};
use crate::meta;
use crate::quota::evaluators::{Evaluator, Op};
use crate::quota::{self, QuotaView, ResourceList};
use crate::registry::store::{Part, Store, WriteOpts};
use crate::registry::{ResourceInfo, Strategy};

/// A boxed future: the store and this module call each other (a charge is a store update), so
/// the recursion goes through a box.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The cache id of ResourceQuotas.
const QUOTAS: &str = "core/resourcequotas";

/// The field manager of admission's status writes (upstream's loopback client).
const MANAGER: &str = "kube-apiserver";

/// Quota admission's state in one tenant master.
#[derive(Default)]
pub struct QuotaAdmission {
    /// One lock per namespace with quotas: charges and the controller's recomputations.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Charges whose objects are not (known to be) in the cache yet.
    pending: Mutex<HashMap<u64, Pending>>,
    next: AtomicU64,
    /// The revision of the last ResourceQuota created here: admission waits for the cache to
    /// have it, so a quota created a moment ago is never missed.
    quota_created: AtomicI64,
}

struct Pending {
    namespace: String,
    /// Cache id and key of the object.
    resource: String,
    key: String,
    uid: String,
    /// For updates, the revision the update replaces (the cache still shows it until then).
    old_rv: Option<i64>,
    /// Quota name and what was added to its `status.used`.
    charges: Vec<(String, ResourceList)>,
}

/// What admission charged for one write. The store reports the write's outcome with
/// [`Charge::finish`].
#[must_use]
pub struct Charge {
    id: Option<u64>,
    namespace: String,
    quota_create: bool,
}

impl Charge {
    /// Nothing charged.
    pub fn none() -> Charge {
        Charge { id: None, namespace: String::new(), quota_create: false }
    }

    /// Settles the charge once the write ended (`written`: its revision, None if it failed):
    /// a failed write is refunded; a successful one is dropped from the in-flight charges once
    /// the cache shows it.
    pub fn finish(self, store: &Store, written: Option<i64>) -> BoxFut<'_, ()> {
        Box::pin(async move {
            let qa = &store.quota;
            if self.quota_create {
                if let Some(rev) = written {
                    qa.quota_created.fetch_max(rev, Ordering::SeqCst);
                }
            }
            let Some(id) = self.id else { return };
            match written {
                Some(rev) => {
                    store.caches.wait_for_own(rev, Duration::from_secs(10)).await;
                    qa.pending.lock().remove(&id);
                }
                None => {
                    let lock = qa.namespace_lock(&self.namespace);
                    let _g = lock.lock().await;
                    let charges = qa.pending.lock().get(&id).map(|p| p.charges.clone()).unwrap_or_default();
                    refund(store, &self.namespace, &charges).await;
                    qa.pending.lock().remove(&id);
                }
            }
        })
    }
}

impl QuotaAdmission {
    /// The lock serializing quota charges and recomputations in a namespace.
    pub fn namespace_lock(&self, ns: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().entry(ns.to_string()).or_default().clone()
    }

    /// Charges admitted in `ns` whose objects the caches do not show yet, summed per quota
    /// name. Call with the namespace lock held, after `Store::consistent`.
    pub fn in_flight(&self, store: &Store, ns: &str) -> HashMap<String, ResourceList> {
        let mut out: HashMap<String, ResourceList> = HashMap::new();
        for p in self.pending.lock().values().filter(|p| p.namespace == ns) {
            let cached = store.caches.resource(&p.resource).get(&p.key);
            let visible = match (p.old_rv, cached) {
                (None, Some(o)) => meta::uid(&o.value()) == p.uid,
                (Some(rv), Some(o)) => o.rv != rv,
                (_, None) => false,
            };
            if visible {
                continue;
            }
            for (q, l) in &p.charges {
                let e = out.entry(q.clone()).or_default();
                *e = quota::add(e, l);
            }
        }
        out
    }
}

/// `pods "p3" is forbidden: <msg>` as `admission.NewForbidden` words it.
fn forbidden(inf: &ResourceInfo, name: &str, msg: String) -> ApiError {
    let mut e = ApiError::forbidden(format!("{} \"{name}\" is forbidden: {msg}", inf.group_resource()));
    let mut d = json!({"name": name, "kind": inf.plural});
    if !inf.group.is_empty() {
        d["group"] = json!(inf.group);
    }
    e.details = Some(d);
    e
}

/// The name an error names: the object's, or its generateName before one is generated.
fn display_name(obj: &Value) -> &str {
    let n = meta::name(obj);
    if n.is_empty() {
        obj["metadata"]["generateName"].as_str().unwrap_or("")
    } else {
        n
    }
}

/// What a request costs each quota it matches (`CheckRequest`): the indices of the quotas to
/// charge with the amounts, or upstream's 403 when the object must not be admitted. Quotas
/// are judged by their `status` (hard and used).
#[allow(clippy::too_many_arguments)]
pub fn check_request(
    quotas: &[QuotaView],
    ev: &Evaluator,
    op: Op,
    subresource: &str,
    obj: &Value,
    old: Option<&Value>,
    now: DateTime<Utc>,
    inf: &ResourceInfo,
) -> ApiResult<Vec<(usize, ResourceList)>> {
    let name = display_name(obj);
    let mut interesting = Vec::new();
    for (i, q) in quotas.iter().enumerate() {
        if !ev.matches_quota(q, obj) {
            continue;
        }
        let restricted = ev.matching_resources(q.hard.keys());
        if let Err(m) = ev.constraints(&restricted, obj) {
            return Err(forbidden(inf, name, format!("failed quota: {}: {m}", q.name)));
        }
        let has_stats = restricted.iter().all(|r| q.used.as_ref().map(|u| u.contains_key(r)).unwrap_or(false));
        if !has_stats {
            let mut r = restricted.clone();
            r.sort();
            return Err(forbidden(inf, name, format!("status unknown for quota: {}, resources: {}", q.name, r.join(","))));
        }
        interesting.push(i);
    }
    if interesting.is_empty() {
        return Ok(Vec::new());
    }
    let input = ev.usage(obj, now);
    let neg = quota::negative(&input);
    if !neg.is_empty() {
        return Err(forbidden(inf, name, format!("quota usage is negative for resource(s): {}", neg.join(","))));
    }
    let mut deltas: Vec<(usize, ResourceList)> = interesting.iter().map(|i| (*i, input.clone())).collect();
    if let (Op::Update, Some(old)) = (op, old) {
        // Charge only the growth, for quotas that already counted the old object.
        let delta = quota::sub_non_negative(&input, &ev.usage(old, now));
        for (i, d) in deltas.iter_mut() {
            if ev.matches_quota(&quotas[*i], old) {
                *d = delta.clone();
            }
        }
    }
    let mut out = Vec::new();
    for (i, d) in deltas {
        let d = quota::remove_zeros(&d);
        if d.is_empty() {
            continue;
        }
        let q = &quotas[i];
        let requested = quota::mask(&d, q.hard.keys());
        if requested.is_empty() {
            continue;
        }
        let used = q.used.clone().unwrap_or_default();
        if subresource != "status" {
            check_fits(q, &used, &requested, inf, name)?;
        }
        out.push((i, requested));
    }
    Ok(out)
}

/// Refuses when `used + requested` exceeds the quota's hard limits.
fn check_fits(q: &QuotaView, used: &ResourceList, requested: &ResourceList, inf: &ResourceInfo, name: &str) -> ApiResult<()> {
    let new_used = quota::add(used, requested);
    let (ok, exceeded) = quota::less_or_equal(&quota::mask(&new_used, requested.keys()), &q.hard);
    if ok {
        return Ok(());
    }
    Err(forbidden(
        inf,
        name,
        format!(
            "exceeded quota: {}, requested: {}, used: {}, limited: {}",
            q.name,
            quota::pretty(&quota::mask(requested, &exceeded)),
            quota::pretty(&quota::mask(used, &exceeded)),
            quota::pretty(&quota::mask(&q.hard, &exceeded)),
        ),
    ))
}

fn quota_strategy(store: &Store) -> Arc<dyn Strategy> {
    store.registry.lookup("", "v1", "resourcequotas").expect("resourcequotas are registered")
}

fn status_opts() -> WriteOpts {
    WriteOpts { field_manager: Some(MANAGER.into()), ..Default::default() }
}

/// Adds `requested` to one quota's `status.used` by compare-and-swap, checking again against
/// the stored quota. Ok(false) when the quota is gone.
async fn charge(
    store: &Store,
    ns: &str,
    qname: &str,
    requested: &ResourceList,
    subresource: &str,
    inf: &ResourceInfo,
    name: &str,
) -> ApiResult<bool> {
    let s = quota_strategy(store);
    let res = store
        .guaranteed_update(s.as_ref(), ns, qname, Part::Status, &status_opts(), false, |cur| {
            let Some(cur) = cur else { return Err(ApiError::not_found("", "resourcequotas", qname)) };
            let q = QuotaView::parse(cur);
            let Some(used) = q.used.clone() else {
                return Err(forbidden(inf, name, format!("status unknown for quota: {qname}")));
            };
            if subresource != "status" {
                check_fits(&q, &used, requested, inf, name)?;
            }
            let mut n = cur.clone();
            n["status"]["used"] = quota::list_to_json(&quota::add(&used, requested));
            Ok(n)
        })
        .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes charges back from the quotas (a write failed after admission).
async fn refund(store: &Store, ns: &str, charges: &[(String, ResourceList)]) {
    let s = quota_strategy(store);
    for (qname, amount) in charges {
        let res = store
            .guaranteed_update(s.as_ref(), ns, qname, Part::Status, &status_opts(), false, |cur| {
                let Some(cur) = cur else { return Err(ApiError::not_found("", "resourcequotas", qname)) };
                let used = quota::parse_list(&cur["status"]["used"]);
                let mut n = cur.clone();
                n["status"]["used"] = quota::list_to_json(&quota::sub_non_negative(&used, amount));
                Ok(n)
            })
            .await;
        if let Err(e) = res {
            if e.code != 404 {
                // The controller recomputes the quota on its next sync.
                tracing::warn!(namespace = ns, quota = %qname, error = %e.message, "refunding a quota charge");
            }
        }
    }
}

/// The quota admission step of a write, run by the store right before it writes `obj` (with
/// `old`, the stored object, on updates). `subresource` is "" for the main resource. Refuses
/// with upstream's 403, or charges the matching quotas (not for dry runs) and returns the
/// [`Charge`] the store must finish.
pub fn admit<'a>(
    store: &'a Store,
    s: &'a dyn Strategy,
    obj: &'a Value,
    old: Option<&'a Value>,
    subresource: &'a str,
    dry_run: bool,
) -> BoxFut<'a, ApiResult<Charge>> {
    Box::pin(async move {
        let inf = s.info();
        if !inf.namespaced {
            return Ok(Charge::none());
        }
        let Some(ev) = Evaluator::for_resource(&inf.group, &inf.plural) else { return Ok(Charge::none()) };
        let ns = meta::namespace(obj).to_string();
        let op = if old.is_some() { Op::Update } else { Op::Create };
        let quota_create = inf.group.is_empty() && inf.plural == "resourcequotas" && op == Op::Create && !dry_run;
        let none = Charge { id: None, namespace: ns.clone(), quota_create };
        if !ev.handles(op, subresource, obj, old) {
            return Ok(none);
        }
        let qa = &store.quota;
        let created = qa.quota_created.load(Ordering::SeqCst);
        if created > 0 {
            store.caches.wait_for_own(created, Duration::from_secs(10)).await;
        }
        let cache = store.caches.resource(QUOTAS);
        let prefix = format!("{ns}/");
        if cache.list_filtered(None, Some(&prefix), 1, &|_| true).0.is_empty() {
            return Ok(none);
        }
        let lock = qa.namespace_lock(&ns);
        let _g = lock.lock().await;
        // Judge by quotas holding every charge made here so far (the compare-and-swap below
        // re-checks against storage anyway; this avoids refusals on a stale view).
        store.consistent().await?;
        let quotas: Vec<QuotaView> = cache.list_filtered(None, Some(&prefix), 0, &|_| true).0.iter().map(|o| QuotaView::parse(&o.value())).collect();
        let deltas = check_request(&quotas, &ev, op, subresource, obj, old, Utc::now(), inf)?;
        if deltas.is_empty() || dry_run {
            return Ok(none);
        }
        let mut charged: Vec<(String, ResourceList)> = Vec::new();
        for (i, requested) in deltas {
            let q = &quotas[i];
            match charge(store, &ns, &q.name, &requested, subresource, inf, display_name(obj)).await {
                Ok(true) => charged.push((q.name.clone(), requested)),
                Ok(false) => {}
                Err(e) => {
                    refund(store, &ns, &charged).await;
                    return Err(e);
                }
            }
        }
        if charged.is_empty() {
            return Ok(none);
        }
        let id = qa.next.fetch_add(1, Ordering::SeqCst);
        let old_rv = old.map(|o| meta::resource_version(o).parse().unwrap_or(0));
        qa.pending.lock().insert(
            id,
            Pending {
                namespace: ns.clone(),
                resource: inf.id(),
                key: inf.cache_key(&ns, meta::name(obj)),
                uid: meta::uid(obj).to_string(),
                old_rv,
                charges: charged,
            },
        );
        Ok(Charge { id: Some(id), namespace: ns, quota_create })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    fn quota(name: &str, hard: Value, used: Value, scopes: Value) -> QuotaView {
        QuotaView::parse(&json!({"metadata": {"name": name, "namespace": "n"}, "spec": {"hard": hard, "scopes": scopes},
            "status": {"hard": hard, "used": used}}))
    }

    fn pods_info() -> ResourceInfo {
        Registry::builtin().lookup("", "v1", "pods").unwrap().info().clone()
    }

    #[test]
    fn refuses_with_upstreams_messages() {
        let inf = pods_info();
        let pod = json!({"metadata": {"name": "p3", "namespace": "n"}, "spec": {"containers": [{"name": "c"}]}});
        let q = vec![quota("q", json!({"pods": "2"}), json!({"pods": "2"}), json!([]))];
        let e = check_request(&q, &Evaluator::Pods, Op::Create, "", &pod, None, Utc::now(), &inf).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(e.message, "pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2");
        assert_eq!(e.details.as_ref().unwrap()["kind"], "pods");

        let q = vec![quota("q", json!({"limits.cpu": "2", "pods": "5"}), json!({"limits.cpu": "0", "pods": "0"}), json!([]))];
        let e = check_request(&q, &Evaluator::Pods, Op::Create, "", &pod, None, Utc::now(), &inf).unwrap_err();
        assert_eq!(e.message, "pods \"p3\" is forbidden: failed quota: q: must specify limits.cpu for: c");

        let q = vec![quota("fresh", json!({"pods": "5"}), json!(null), json!([]))];
        let e = check_request(&q, &Evaluator::Pods, Op::Create, "", &pod, None, Utc::now(), &inf).unwrap_err();
        assert_eq!(e.message, "pods \"p3\" is forbidden: status unknown for quota: fresh, resources: pods");
    }

    #[test]
    fn charges_what_fits_and_skips_other_scopes() {
        let inf = pods_info();
        let pod = json!({"metadata": {"generateName": "web-", "namespace": "n"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m"}}}]}});
        let q = vec![
            quota(
                "compute",
                json!({"requests.cpu": "1", "limits.cpu": "2", "pods": "10"}),
                json!({"requests.cpu": "500m", "limits.cpu": "1", "pods": "2"}),
                json!([]),
            ),
            quota("besteffort", json!({"pods": "1"}), json!({"pods": "1"}), json!(["BestEffort"])),
        ];
        let d = check_request(&q, &Evaluator::Pods, Op::Create, "", &pod, None, Utc::now(), &inf).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, 0);
        assert_eq!(quota::pretty(&d[0].1), "limits.cpu=500m,pods=1,requests.cpu=250m");

        let big = json!({"metadata": {"generateName": "web-", "namespace": "n"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "600m"}, "limits": {"cpu": "600m"}}}]}});
        let e = check_request(&q, &Evaluator::Pods, Op::Create, "", &big, None, Utc::now(), &inf).unwrap_err();
        assert_eq!(
            e.message,
            "pods \"web-\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"
        );
    }

    #[test]
    fn updates_charge_only_the_growth() {
        let inf = Registry::builtin().lookup("", "v1", "services").unwrap().info().clone();
        let q = vec![quota("q", json!({"services.nodeports": "1", "services": "5"}), json!({"services.nodeports": "0", "services": "1"}), json!([]))];
        let old = json!({"metadata": {"name": "s", "namespace": "n"}, "spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        let new = json!({"metadata": {"name": "s", "namespace": "n"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let d = check_request(&q, &Evaluator::Services, Op::Update, "", &new, Some(&old), Utc::now(), &inf).unwrap();
        assert_eq!(quota::pretty(&d[0].1), "services.nodeports=1");
        let two = json!({"metadata": {"name": "s", "namespace": "n"}, "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}});
        let e = check_request(&q, &Evaluator::Services, Op::Update, "", &two, Some(&old), Utc::now(), &inf).unwrap_err();
        assert_eq!(e.message, "services \"s\" is forbidden: exceeded quota: q, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1");
        // An unchanged service costs nothing.
        assert!(check_request(&q, &Evaluator::Services, Op::Update, "", &old, Some(&old), Utc::now(), &inf).unwrap().is_empty());
    }
}
