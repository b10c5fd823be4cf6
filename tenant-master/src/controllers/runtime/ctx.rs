//! [`Ctx`]: what a controller reads and writes through. Reads come from the watch cache (the
//! shared informer of every controller); writes go through the generic store with all of the
//! API server's defaulting, validation and admission, as field manager `kube-controller-manager`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::api::selectors::LabelSelector;
use crate::api::status::{ApiError, ApiResult};
use crate::meta;
use crate::registry::store::{DeleteOpts, Deleted, Part, Store, WriteOpts};
use crate::registry::Strategy;
use crate::storage::cache::{CachedObject, ResourceCache};

/// A built-in resource by group, version and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Res {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

impl Res {
    pub const fn new(group: &'static str, version: &'static str, plural: &'static str) -> Res {
        Res { group, version, plural }
    }

    /// The built-in resource a registered strategy serves; None for custom resources, whose
    /// names are not static (controllers reach those through [`Ctx::cache_of`] and the
    /// strategy itself).
    pub fn of(info: &crate::registry::ResourceInfo) -> Option<Res> {
        use std::borrow::Cow::Borrowed;
        match (&info.group, &info.version, &info.plural) {
            (Borrowed(group), Borrowed(version), Borrowed(plural)) => Some(Res { group, version, plural }),
            _ => None,
        }
    }
}

pub const PODS: Res = Res::new("", "v1", "pods");
pub const NAMESPACES: Res = Res::new("", "v1", "namespaces");
pub const NODES: Res = Res::new("", "v1", "nodes");
pub const SERVICES: Res = Res::new("", "v1", "services");
pub const ENDPOINTS: Res = Res::new("", "v1", "endpoints");
pub const EVENTS: Res = Res::new("", "v1", "events");
pub const CONFIGMAPS: Res = Res::new("", "v1", "configmaps");
pub const SECRETS: Res = Res::new("", "v1", "secrets");
pub const SERVICEACCOUNTS: Res = Res::new("", "v1", "serviceaccounts");
pub const PERSISTENTVOLUMECLAIMS: Res = Res::new("", "v1", "persistentvolumeclaims");
pub const REPLICATIONCONTROLLERS: Res = Res::new("", "v1", "replicationcontrollers");
pub const RESOURCEQUOTAS: Res = Res::new("", "v1", "resourcequotas");
pub const DEPLOYMENTS: Res = Res::new("apps", "v1", "deployments");
pub const REPLICASETS: Res = Res::new("apps", "v1", "replicasets");
pub const STATEFULSETS: Res = Res::new("apps", "v1", "statefulsets");
pub const DAEMONSETS: Res = Res::new("apps", "v1", "daemonsets");
pub const CONTROLLERREVISIONS: Res = Res::new("apps", "v1", "controllerrevisions");
pub const JOBS: Res = Res::new("batch", "v1", "jobs");
pub const CRONJOBS: Res = Res::new("batch", "v1", "cronjobs");
pub const ENDPOINTSLICES: Res = Res::new("discovery.k8s.io", "v1", "endpointslices");

/// The field manager upstream's controllers write as.
pub const MANAGER: &str = "kube-controller-manager";

/// Tunables of the built-in controllers, as kube-controller-manager's flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--terminated-pod-gc-threshold`: terminated pods kept before the pod garbage collector
    /// deletes the oldest (0 disables that part).
    pub terminated_pod_gc_threshold: usize,
    /// How long the pod garbage collector waits for a missing node to come back before it
    /// deletes the node's pods (upstream's fixed 40 s quarantine; shorter only in tests).
    pub pod_gc_quarantine: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { terminated_pod_gc_threshold: 12500, pod_gc_quarantine: Duration::from_secs(40) }
    }
}

/// Reads and writes of one tenant's objects for controllers. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub store: Arc<Store>,
    pub settings: Arc<Settings>,
    /// The event recorder of the controller this context belongs to (see [`Ctx::for_component`]).
    recorder: Option<Arc<crate::controllers::recorder::Recorder>>,
}

impl Ctx {
    pub fn new(store: Arc<Store>) -> Ctx {
        Ctx::with_settings(store, Settings::default())
    }

    pub fn with_settings(store: Arc<Store>, settings: Settings) -> Ctx {
        Ctx { store, settings: Arc::new(settings), recorder: None }
    }

    /// This context for one controller: its Events name `component` as their source and go
    /// through one event correlator (aggregation, deduplication, spam filter) per controller.
    pub fn for_component(&self, component: &'static str) -> Ctx {
        let base = Ctx { recorder: None, ..self.clone() };
        let rec = crate::controllers::recorder::Recorder::new(base.clone(), component);
        Ctx { recorder: Some(Arc::new(rec)), ..base }
    }

    /// The strategy of a built-in resource (all of [`Res`]'s constants are registered).
    pub fn strategy(&self, r: Res) -> Arc<dyn Strategy> {
        self.store
            .registry
            .lookup(r.group, r.version, r.plural)
            .unwrap_or_else(|| panic!("resource {}/{} is not registered", r.group, r.plural))
    }

    /// The watch cache of a resource.
    pub fn cache(&self, r: Res) -> Arc<ResourceCache> {
        self.store.caches.resource(&self.strategy(r).info().id())
    }

    /// One object from the cache.
    pub fn get(&self, r: Res, ns: &str, name: &str) -> Option<Arc<Value>> {
        let s = self.strategy(r);
        self.store.get_cached(s.as_ref(), ns, name).map(|o| o.value())
    }

    /// The cached objects of a namespace ("" for all namespaces or a cluster-scoped resource).
    pub fn list(&self, r: Res, ns: &str) -> Vec<Arc<CachedObject>> {
        let cache = self.cache(r);
        let prefix = (!ns.is_empty()).then(|| format!("{ns}/"));
        cache.list_filtered(None, prefix.as_deref(), 0, &|_| true).0
    }

    /// The cached objects of a namespace whose labels match a selector.
    pub fn list_selected(&self, r: Res, ns: &str, sel: &LabelSelector) -> Vec<Arc<CachedObject>> {
        let cache = self.cache(r);
        let prefix = (!ns.is_empty()).then(|| format!("{ns}/"));
        cache.list_filtered(None, prefix.as_deref(), 0, &|o| sel.matches(&o.labels)).0
    }

    fn opts() -> WriteOpts {
        WriteOpts { field_manager: Some(MANAGER.into()), ..Default::default() }
    }

    /// Creates an object (generateName honoured).
    pub async fn create(&self, r: Res, ns: &str, obj: Value) -> ApiResult<Value> {
        let s = self.strategy(r);
        self.store.create(s.as_ref(), ns, obj, &Ctx::opts()).await
    }

    /// Replaces an object; fails with 409 if `obj`'s resourceVersion is stale.
    pub async fn update(&self, r: Res, obj: Value) -> ApiResult<Value> {
        let s = self.strategy(r);
        let (ns, name) = (meta::namespace(&obj).to_string(), meta::name(&obj).to_string());
        self.store.update(s.as_ref(), &ns, &name, obj, Part::Main, &Ctx::opts()).await.map(|(v, _)| v)
    }

    /// Replaces an object's status; fails with 409 if `obj`'s resourceVersion is stale.
    pub async fn update_status(&self, r: Res, obj: Value) -> ApiResult<Value> {
        let s = self.strategy(r);
        let (ns, name) = (meta::namespace(&obj).to_string(), meta::name(&obj).to_string());
        self.store.update(s.as_ref(), &ns, &name, obj, Part::Status, &Ctx::opts()).await.map(|(v, _)| v)
    }

    /// Read-modify-write of the current object from storage, retried on conflicts. `f` may
    /// run several times; returning the object unchanged writes nothing.
    pub async fn modify<F>(&self, r: Res, ns: &str, name: &str, part: Part, f: F) -> ApiResult<Value>
    where
        F: FnMut(&mut Value) -> ApiResult<()>,
    {
        let s = self.strategy(r);
        self.modify_with(s.as_ref(), ns, name, part, f).await
    }

    /// As [`Ctx::modify`], for any served resource by its strategy (custom resources too).
    pub async fn modify_with<F>(&self, s: &dyn Strategy, ns: &str, name: &str, part: Part, mut f: F) -> ApiResult<Value>
    where
        F: FnMut(&mut Value) -> ApiResult<()>,
    {
        let inf = s.info();
        self.store
            .guaranteed_update(s, ns, name, part, &Ctx::opts(), false, |cur| {
                let Some(cur) = cur else { return Err(ApiError::not_found(&inf.group, &inf.plural, name)) };
                let mut v = cur.clone();
                f(&mut v)?;
                Ok(v)
            })
            .await
    }

    /// Deletes an object; a missing object is not an error.
    pub async fn delete(&self, r: Res, ns: &str, name: &str, o: &DeleteOpts) -> ApiResult<Option<Deleted>> {
        let s = self.strategy(r);
        match self.store.delete(s.as_ref(), ns, name, o).await {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records an Event about `obj` as upstream's event recorder does: through this controller's
    /// recorder when it has one, else as-is with source `kplex-controllers`. Written in the
    /// background; a failure is only logged.
    pub fn event(&self, obj: &Value, typ: &str, reason: &str, message: impl Into<String>) {
        if let Some(rec) = &self.recorder {
            rec.event(obj, typ, reason, message);
            return;
        }
        let md = &obj["metadata"];
        let ns = match md["namespace"].as_str() {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => "default".to_string(),
        };
        let now = chrono::Utc::now();
        let name = format!("{}.{:x}", md["name"].as_str().unwrap_or(""), now.timestamp_nanos_opt().unwrap_or(0));
        let ts = meta::now_rfc3339();
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": {
                "kind": obj["kind"], "namespace": md["namespace"], "name": md["name"], "uid": md["uid"],
                "apiVersion": obj["apiVersion"], "resourceVersion": md["resourceVersion"],
            },
            "reason": reason,
            "message": message.into(),
            "source": {"component": "kplex-controllers"},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": typ,
            "eventTime": null,
            "reportingComponent": "kplex-controllers",
            "reportingInstance": "",
        });
        let ctx = self.clone();
        tokio::spawn(async move {
            if let Err(e) = ctx.create(EVENTS, &ns, ev).await {
                tracing::debug!(error = %e.message, "recording an event");
            }
        });
    }
}
