//! Reconcilers: one per kind of work item. Each reads the tenant's mirror and the super
//! cluster's picture and writes the difference (downward into the super cluster, upward into the
//! tenant). They are level-triggered and idempotent: the same key may be processed any number
//! of times, after any crash, with the same end state. A super object whose ownership marks are
//! not exactly the tenant's is never changed or deleted.

mod nodes;
mod objects;
mod pods;

use std::sync::Arc;

use serde_json::{json, Value};

use crate::naming::{self, Owner};
use crate::tenants::{Key, Tenant};
use crate::Syncer;

pub use pods::pod_refs;

/// Why a reconcile must be retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Super(Box<crate::supercache::SuperError>),
    #[error(transparent)]
    Tenant(#[from] crate::tenants::WriteError),
    #[error("tenant write {what}: {code} {message}")]
    TenantApi { what: String, code: i32, message: String },
    #[error("super-scheduler: {0}")]
    Scheduler(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<crate::supercache::SuperError> for Error {
    fn from(e: crate::supercache::SuperError) -> Error {
        Error::Super(Box::new(e))
    }
}

/// What one reconcile works with.
pub struct Cx<'a> {
    pub s: &'a Syncer,
    pub t: &'a Arc<Tenant>,
    pub paused: bool,
}

impl Cx<'_> {
    pub fn tenant(&self) -> &str {
        &self.t.name
    }

    /// The super namespace of tenant namespace `ns`.
    pub fn sns(&self, ns: &str) -> String {
        naming::super_namespace(&self.t.name, &self.t.uid, ns)
    }

    pub fn owner<'b>(&'b self, ns: &'b str, name: &'b str) -> Owner<'b> {
        Owner { tenant: &self.t.name, tenant_uid: &self.t.uid, namespace: ns, name }
    }

    /// A super object for tenant object `tobj`: labels and annotations copied (without the
    /// provider's keys and kubectl's last-applied copy), ownership marked.
    pub fn super_object(&self, tobj: &Value, api_version: &str, kind: &str, ns: &str, name: &str) -> Value {
        let md = &tobj["metadata"];
        let mut labels = if md["labels"].is_object() { md["labels"].clone() } else { json!({}) };
        naming::strip_provider_keys(&mut labels);
        let mut ann = if md["annotations"].is_object() { md["annotations"].clone() } else { json!({}) };
        naming::strip_provider_keys(&mut ann);
        if let Some(a) = ann.as_object_mut() {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        let mut o = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": self.sns(ns), "labels": labels, "annotations": ann}});
        naming::mark(&mut o, &self.owner(ns, name), md["uid"].as_str().unwrap_or(""));
        o
    }

    /// Makes sure the super namespace of `ns` exists and is ours.
    pub async fn ensure_namespace(&self, ns: &str) -> Result<String> {
        let sns = self.sns(ns);
        if let Some(existing) = self.s.supers.get("namespaces", "", &sns) {
            if !naming::owned_by(&existing, &self.owner(ns, ns)) {
                return Err(Error::Other(format!("super namespace {sns} exists and is not tenant {}'s", self.tenant())));
            }
            if existing["metadata"]["deletionTimestamp"].is_string() {
                return Err(Error::Other(format!("super namespace {sns} is being deleted")));
            }
            return Ok(sns);
        }
        let tuid = self.t.get("namespaces", "", ns).and_then(|n| n["metadata"]["uid"].as_str().map(String::from)).unwrap_or_default();
        let mut o = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": sns}});
        naming::mark(&mut o, &self.owner(ns, ns), &tuid);
        self.s.supers.create("namespaces", "", &o).await?;
        Ok(sns)
    }

    /// Checks a tenant write's answer: 2xx is success; `ok_codes` lists further acceptable codes.
    pub fn check(&self, what: &str, r: &crate::proto::WriteResult, ok_codes: &[i32]) -> Result<()> {
        if (200..300).contains(&r.code) || ok_codes.contains(&r.code) {
            Ok(())
        } else {
            Err(Error::TenantApi { what: format!("{what} in tenant {}", self.tenant()), code: r.code, message: r.message.clone() })
        }
    }
}

/// Processes one key of one tenant.
pub async fn reconcile(s: &Syncer, tenant: &str, key: &Key) -> Result<()> {
    let Some(t) = s.tenants.get(tenant) else { return Ok(()) };
    // Until the tenant's snapshot is complete its state is unknown: it is re-queued whole once
    // it is (see Syncer::apply_changes).
    if !t.ready() {
        return Ok(());
    }
    if !s.supers.ready() {
        return Err(Error::Other("super-cluster caches not listed yet".into()));
    }
    let Some(vc) = s.supers.virtual_cluster(tenant) else { return Ok(()) };
    if vc["metadata"]["uid"].as_str() != Some(t.uid.as_str()) {
        return Ok(());
    }
    // A VirtualCluster being deleted: the tenant manager is removing every super object of the
    // tenant; creating anything now (a namespace it already deleted) would leave an orphan
    // behind once the VirtualCluster is gone.
    if vc["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    let cx = Cx { s, t: &t, paused: vc["spec"]["paused"].as_bool().unwrap_or(false) };
    match key {
        Key::Pod(ns, name) => pods::reconcile(&cx, ns, name).await,
        Key::ConfigMap(ns, name) => objects::data_object(&cx, "configmaps", ns, name).await,
        Key::Secret(ns, name) => objects::data_object(&cx, "secrets", ns, name).await,
        Key::SaToken(ns, sa) => objects::sa_token(&cx, ns, sa).await,
        Key::Namespace(ns) => objects::namespace(&cx, ns).await,
        Key::Service(ns, name) => objects::service(&cx, ns, name).await,
        Key::Endpoints(ns, name) => objects::endpoints(&cx, ns, name).await,
        Key::Pvc(ns, name) => objects::pvc(&cx, ns, name).await,
        Key::Event(ns, name) => objects::event(&cx, ns, name).await,
        Key::VirtualNodes => nodes::reconcile(&cx).await,
    }
}

/// The tenant keys a tenant object's change concerns.
pub fn keys_for_tenant_object(resource: &str, obj: &Value, deleted: bool) -> Vec<Key> {
    let (ns, name) = crate::tenants::ns_name(obj);
    match resource {
        "pods" => {
            let mut keys = vec![Key::Pod(ns.clone(), name)];
            if deleted || obj["metadata"]["deletionTimestamp"].is_string() {
                keys.push(Key::VirtualNodes);
                keys.extend(pod_refs(obj).into_keys(&ns));
            }
            keys
        }
        "configmaps" => vec![Key::ConfigMap(ns, name)],
        "secrets" => vec![Key::Secret(ns, name)],
        "services" => vec![Key::Service(ns.clone(), name.clone()), Key::Endpoints(ns, name)],
        "endpoints" => vec![Key::Endpoints(ns, name)],
        "persistentvolumeclaims" => vec![Key::Pvc(ns, name)],
        "namespaces" => vec![Key::Namespace(name)],
        "nodes" => vec![Key::VirtualNodes],
        _ => Vec::new(),
    }
}

/// The tenant and key a super object's change concerns (None: not a tenant object).
pub fn key_for_super_object(s: &Syncer, resource: &str, obj: &Value) -> Option<(String, Key)> {
    let md = &obj["metadata"];
    if resource == "events" {
        // Events carry no marks: they belong to the tenant owning their namespace.
        let sns = md["namespace"].as_str()?;
        let nsobj = s.supers.get("namespaces", "", sns)?;
        let tenant = nsobj["metadata"]["labels"][naming::TENANT_LABEL].as_str()?;
        let tns = nsobj["metadata"]["annotations"][naming::NAMESPACE].as_str()?;
        return Some((tenant.to_string(), Key::Event(tns.to_string(), md["name"].as_str()?.to_string())));
    }
    if resource == "virtualclusters" {
        return None;
    }
    let tenant = md["labels"][naming::TENANT_LABEL].as_str()?.to_string();
    let ns = md["annotations"][naming::NAMESPACE].as_str()?.to_string();
    let name = md["annotations"][naming::NAME].as_str()?.to_string();
    let key = match resource {
        "namespaces" => Key::Namespace(ns),
        "pods" => Key::Pod(ns, name),
        "configmaps" => Key::ConfigMap(ns, name),
        "secrets" => match md["annotations"][naming::SA_TOKEN].as_str() {
            Some(sa) => Key::SaToken(ns, sa.to_string()),
            None => Key::Secret(ns, name),
        },
        "services" => Key::Service(ns, name),
        "endpoints" => Key::Endpoints(ns, name),
        "persistentvolumeclaims" => Key::Pvc(ns, name),
        _ => return None,
    };
    Some((tenant, key))
}

/// Every key of a tenant (its mirror plus its objects in the super cluster): what the patrol
/// and a tenant becoming ready queue.
pub fn all_keys(s: &Syncer, t: &Tenant) -> Vec<Key> {
    let mut keys = vec![Key::VirtualNodes];
    for r in crate::tenants::RESOURCES {
        for o in t.list(r, None) {
            keys.extend(keys_for_tenant_object(r, &o, false));
        }
    }
    for (r, _, _, _) in crate::supercache::SUPER_RESOURCES {
        for o in s.supers.list(r) {
            if let Some((tenant, k)) = key_for_super_object(s, r, &o) {
                if tenant == *t.name {
                    keys.push(k);
                }
            }
        }
    }
    // Pods first: their dependencies are reconciled inline.
    keys.sort_by_key(|k| !matches!(k, Key::Pod(..)));
    keys.dedup();
    keys
}
