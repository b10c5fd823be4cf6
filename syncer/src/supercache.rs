//! The syncer's picture of the super cluster, through the standard API only (kube watchers):
//! the objects carrying the `tenancy.kplex.io/tenant` label (namespaces, pods, configmaps,
//! secrets, services, endpoints, PVCs), Events in tenants' super namespaces, and the
//! VirtualClusters. Every change calls back so the matching tenant key is queued. A relist
//! replaces a resource's picture; objects the relist no longer shows are reported as gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use parking_lot::RwLock;
use serde_json::Value;

use crate::naming::TENANT_LABEL;

/// Called with (resource, object, deleted) on every change.
pub type OnChange = Arc<dyn Fn(&'static str, &Value, bool) + Send + Sync>;

/// The super resources the syncer writes (plural name, apiVersion, kind, namespaced).
pub const SUPER_RESOURCES: &[(&str, &str, &str, bool)] = &[
    ("namespaces", "v1", "Namespace", false),
    ("pods", "v1", "Pod", true),
    ("configmaps", "v1", "ConfigMap", true),
    ("secrets", "v1", "Secret", true),
    ("services", "v1", "Service", true),
    ("endpoints", "v1", "Endpoints", true),
    ("persistentvolumeclaims", "v1", "PersistentVolumeClaim", true),
];

/// The VirtualCluster resource (tenancy.kplex.io/v1alpha1).
pub fn virtual_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tenancy.kplex.io", "v1alpha1", "VirtualCluster"), "virtualclusters")
}

fn api_resource(plural: &str) -> ApiResource {
    if plural == "virtualclusters" {
        return virtual_cluster_resource();
    }
    if plural == "events" {
        return ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Event"), "events");
    }
    let (_, v, k, _) = SUPER_RESOURCES.iter().find(|r| r.0 == plural).expect("known resource");
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", v, k), plural)
}

type Objects = HashMap<(String, String), Arc<Value>>;

/// One watched resource.
pub struct Watched {
    pub plural: &'static str,
    pub objects: RwLock<Objects>,
    pub ready: AtomicBool,
}

/// What the syncer knows of the super cluster.
pub struct SuperCache {
    pub client: kube::Client,
    res: HashMap<&'static str, Arc<Watched>>,
}

/// A super-cluster write failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {plural} {ns}/{name} in the super cluster: {source}")]
pub struct SuperError {
    op: &'static str,
    plural: &'static str,
    ns: String,
    name: String,
    source: kube::Error,
}

fn code_of(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

impl SuperCache {
    /// Starts the watchers (labelled resources, events, virtual clusters).
    pub fn start(client: kube::Client, on_change: OnChange) -> Arc<SuperCache> {
        let mut res = HashMap::new();
        let mut plurals: Vec<&'static str> = SUPER_RESOURCES.iter().map(|r| r.0).collect();
        plurals.extend(["events", "virtualclusters"]);
        for p in plurals {
            res.insert(p, Arc::new(Watched { plural: p, objects: RwLock::new(HashMap::new()), ready: AtomicBool::new(false) }));
        }
        let cache = Arc::new(SuperCache { client: client.clone(), res });
        for w in cache.res.values() {
            let ar = api_resource(w.plural);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let cfg = match w.plural {
                "events" | "virtualclusters" => watcher::Config::default(),
                _ => watcher::Config::default().labels(TENANT_LABEL),
            };
            tokio::spawn(run(api, cfg, w.clone(), on_change.clone()));
        }
        cache
    }

    /// Every watcher has listed once.
    pub fn ready(&self) -> bool {
        self.res.values().all(|w| w.ready.load(Ordering::Acquire))
    }

    pub fn watched(&self, plural: &str) -> &Arc<Watched> {
        &self.res[plural]
    }

    pub fn get(&self, plural: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.res.get(plural)?.objects.read().get(&(ns.to_string(), name.to_string())).cloned()
    }

    pub fn list(&self, plural: &str) -> Vec<Arc<Value>> {
        self.res.get(plural).map(|w| w.objects.read().values().cloned().collect()).unwrap_or_default()
    }

    /// The VirtualCluster named `tenant`.
    pub fn virtual_cluster(&self, tenant: &str) -> Option<Arc<Value>> {
        self.get("virtualclusters", "", tenant)
    }

    fn api(&self, plural: &str, ns: &str) -> Api<DynamicObject> {
        let ar = api_resource(plural);
        if ns.is_empty() {
            Api::all_with(self.client.clone(), &ar)
        } else {
            Api::namespaced_with(self.client.clone(), ns, &ar)
        }
    }

    /// Creates an object; one that exists already is fine (the next reconcile judges it).
    pub async fn create(&self, plural: &'static str, ns: &str, obj: &Value) -> Result<(), SuperError> {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let d: DynamicObject = match serde_json::from_value(obj.clone()) {
            Ok(d) => d,
            Err(e) => return Err(SuperError { op: "create", plural, ns: ns.into(), name, source: kube::Error::SerdeError(e) }),
        };
        match self.api(plural, ns).create(&PostParams::default(), &d).await {
            Ok(created) => {
                self.remember(plural, &created);
                Ok(())
            }
            Err(e) if code_of(&e) == Some(409) => Ok(()),
            Err(e) => Err(SuperError { op: "create", plural, ns: ns.into(), name, source: e }),
        }
    }

    /// Replaces an object (the resourceVersion in `obj` guards against lost updates).
    pub async fn replace(&self, plural: &'static str, ns: &str, obj: &Value) -> Result<(), SuperError> {
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let d: DynamicObject = serde_json::from_value(obj.clone()).map_err(|e| SuperError {
            op: "replace",
            plural,
            ns: ns.into(),
            name: name.clone(),
            source: kube::Error::SerdeError(e),
        })?;
        match self.api(plural, ns).replace(&name, &PostParams::default(), &d).await {
            Ok(o) => {
                self.remember(plural, &o);
                Ok(())
            }
            Err(e) => Err(SuperError { op: "replace", plural, ns: ns.into(), name, source: e }),
        }
    }

    /// Deletes the object with this uid; already gone (or replaced by another uid) is fine.
    pub async fn delete(&self, plural: &'static str, ns: &str, name: &str, uid: &str, grace: Option<u32>) -> Result<(), SuperError> {
        let dp = DeleteParams {
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            grace_period_seconds: grace,
            ..Default::default()
        };
        match self.api(plural, ns).delete(name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(code_of(&e), Some(404) | Some(409)) => Ok(()),
            Err(e) => Err(SuperError { op: "delete", plural, ns: ns.into(), name: name.into(), source: e }),
        }
    }

    /// Puts a written object into the picture at once (the watch confirms it later), so the
    /// next reconcile does not write it again.
    fn remember(&self, plural: &str, o: &DynamicObject) {
        if let (Some(w), Ok(v)) = (self.res.get(plural), serde_json::to_value(o)) {
            let k = key(&v);
            let mut g = w.objects.write();
            let newer = g.get(&k).is_none_or(|cur| rv(cur) <= rv(&v));
            if newer {
                g.insert(k, Arc::new(v));
            }
        }
    }
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn key(v: &Value) -> (String, String) {
    let md = &v["metadata"];
    (md["namespace"].as_str().unwrap_or("").to_string(), md["name"].as_str().unwrap_or("").to_string())
}

async fn run(api: Api<DynamicObject>, cfg: watcher::Config, w: Arc<Watched>, on_change: OnChange) {
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut relist: Option<Objects> = None;
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(resource = w.plural, error = %e, "super-cluster watch failed; retrying");
                continue;
            }
        };
        match ev {
            Event::Init => relist = Some(HashMap::new()),
            Event::InitApply(o) => {
                if let (Some(r), Ok(v)) = (relist.as_mut(), serde_json::to_value(&o)) {
                    r.insert(key(&v), Arc::new(v));
                }
            }
            Event::InitDone => {
                let new = relist.take().unwrap_or_default();
                let old = std::mem::replace(&mut *w.objects.write(), new.clone());
                w.ready.store(true, Ordering::Release);
                for (k, v) in &old {
                    if !new.contains_key(k) {
                        on_change(w.plural, v, true);
                    }
                }
                for v in new.values() {
                    on_change(w.plural, v, false);
                }
            }
            Event::Apply(o) => {
                if let Ok(v) = serde_json::to_value(&o) {
                    let v = Arc::new(v);
                    w.objects.write().insert(key(&v), v.clone());
                    on_change(w.plural, &v, false);
                }
            }
            Event::Delete(o) => {
                if let Ok(v) = serde_json::to_value(&o) {
                    w.objects.write().remove(&key(&v));
                    on_change(w.plural, &v, true);
                }
            }
        }
    }
}
