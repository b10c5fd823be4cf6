//! Connected tenants: the syncer's in-memory mirror of each tenant's objects (fed by the tenant
//! master's stream, rebuilt from a snapshot after a syncer restart) and the write channel back
//! into the tenant (over the same stream).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::proto::{self, write::Op, SyncerMessage};

/// The tenant resources the syncer mirrors (the tenant master streams exactly these).
pub const RESOURCES: &[&str] = &["namespaces", "pods", "configmaps", "secrets", "services", "endpoints", "persistentvolumeclaims", "nodes"];

/// One resource of one tenant as the syncer holds it.
#[derive(Default)]
pub struct Mirror {
    /// The resourceVersion of the last change applied.
    pub rv: i64,
    /// A snapshot has been applied since the syncer started.
    pub synced: bool,
    pub objects: HashMap<(String, String), Arc<Value>>,
}

/// A work item of the fair queue: one object (or a tenant-wide task) of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Namespace(String),
    Pod(String, String),
    ConfigMap(String, String),
    Secret(String, String),
    Service(String, String),
    Endpoints(String, String),
    Pvc(String, String),
    /// The token Secret for service account (namespace, name).
    SaToken(String, String),
    /// An Event in the super cluster (super namespace's tenant namespace, event name).
    Event(String, String),
    /// The tenant's virtual nodes: create used ones, refresh them, remove unused ones.
    VirtualNodes,
}

/// Why a write into a tenant did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("tenant {0} is not connected")]
    NotConnected(String),
    #[error("tenant {0} did not answer in time")]
    Timeout(String),
}

/// The live stream of a tenant master.
pub struct Conn {
    pub id: u64,
    tx: mpsc::Sender<Result<SyncerMessage, tonic::Status>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<proto::WriteResult>>>,
    next: AtomicU64,
}

impl Conn {
    pub fn new(id: u64, tx: mpsc::Sender<Result<SyncerMessage, tonic::Status>>) -> Conn {
        Conn { id, tx, pending: Mutex::new(HashMap::new()), next: AtomicU64::new(1) }
    }

    /// Completes a pending write.
    pub fn complete(&self, r: proto::WriteResult) {
        if let Some(tx) = self.pending.lock().remove(&r.id) {
            let _ = tx.send(r);
        }
    }

    pub async fn send(&self, m: SyncerMessage) -> bool {
        self.tx.send(Ok(m)).await.is_ok()
    }
}

/// Mutable state of a tenant.
#[derive(Default)]
pub struct State {
    pub mirrors: HashMap<&'static str, Mirror>,
    pub api_endpoint: String,
    pub conn: Option<Arc<Conn>>,
    /// Pods left unschedulable, retried when the super-scheduler announces a change.
    pub unschedulable: HashSet<(String, String)>,
    /// The last FailedScheduling message written per pod uid (no event spam on retries).
    pub last_failed: HashMap<String, String>,
    /// Virtual nodes a pod was bound to lately (not removed while the binding travels).
    pub recently_bound: HashMap<String, std::time::Instant>,
}

/// A tenant known to the syncer (it connected at least once since the syncer started).
pub struct Tenant {
    pub name: Arc<str>,
    pub uid: String,
    pub state: RwLock<State>,
}

impl Tenant {
    pub fn new(name: &str, uid: &str) -> Tenant {
        Tenant { name: Arc::from(name), uid: uid.to_string(), state: RwLock::new(State::default()) }
    }

    /// Every mirrored resource got its snapshot: the tenant's state is known.
    pub fn ready(&self) -> bool {
        let st = self.state.read();
        RESOURCES.iter().all(|r| st.mirrors.get(r).is_some_and(|m| m.synced))
    }

    /// One object of the mirror.
    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.state.read().mirrors.get(resource)?.objects.get(&(ns.to_string(), name.to_string())).cloned()
    }

    /// The objects of a resource (in a namespace, or all with `None`).
    pub fn list(&self, resource: &str, ns: Option<&str>) -> Vec<Arc<Value>> {
        let st = self.state.read();
        let Some(m) = st.mirrors.get(resource) else { return Vec::new() };
        m.objects.iter().filter(|((n, _), _)| ns.is_none_or(|x| x == n)).map(|(_, v)| v.clone()).collect()
    }

    /// The resourceVersion to resume each synced resource from.
    pub fn resume_points(&self) -> HashMap<String, i64> {
        let st = self.state.read();
        st.mirrors.iter().filter(|(_, m)| m.synced).map(|(r, m)| (r.to_string(), m.rv)).collect()
    }

    /// Writes into the tenant over its stream and waits (30 s at most) for the answer.
    pub async fn write(&self, op: Op, resource: &str, ns: &str, name: &str, obj: &Value, precondition_uid: &str) -> Result<proto::WriteResult, WriteError> {
        self.write_with_grace(op, resource, ns, name, obj, precondition_uid, -1).await
    }

    /// [`Tenant::write`] with a grace period for deletes.
    #[allow(clippy::too_many_arguments)]
    pub async fn write_with_grace(
        &self,
        op: Op,
        resource: &str,
        ns: &str,
        name: &str,
        obj: &Value,
        precondition_uid: &str,
        grace: i64,
    ) -> Result<proto::WriteResult, WriteError> {
        let conn = self.state.read().conn.clone().ok_or_else(|| WriteError::NotConnected(self.name.to_string()))?;
        let id = conn.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().insert(id, tx);
        let w = proto::Write {
            id,
            op: op as i32,
            resource: resource.into(),
            namespace: ns.into(),
            name: name.into(),
            object: if obj.is_null() { Vec::new() } else { serde_json::to_vec(obj).unwrap_or_default() },
            precondition_uid: precondition_uid.into(),
            grace_period_seconds: grace,
        };
        crate::metrics::tenant_write(&self.name, op);
        if !conn.send(SyncerMessage { msg: Some(proto::syncer_message::Msg::Write(w)) }).await {
            conn.pending.lock().remove(&id);
            return Err(WriteError::NotConnected(self.name.to_string()));
        }
        match tokio::time::timeout(Duration::from_secs(30), rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(WriteError::NotConnected(self.name.to_string())),
            Err(_) => {
                conn.pending.lock().remove(&id);
                Err(WriteError::Timeout(self.name.to_string()))
            }
        }
    }
}

/// Every tenant the syncer knows, by name.
#[derive(Default)]
pub struct Tenants {
    map: RwLock<HashMap<String, Arc<Tenant>>>,
}

impl Tenants {
    pub fn get(&self, name: &str) -> Option<Arc<Tenant>> {
        self.map.read().get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Tenant>> {
        self.map.read().values().cloned().collect()
    }

    /// The tenant `name` with uid `uid`; a tenant of the same name with another uid (a
    /// VirtualCluster deleted and created again) is replaced, its mirror dropped.
    pub fn get_or_insert(&self, name: &str, uid: &str) -> Arc<Tenant> {
        let mut m = self.map.write();
        match m.get(name) {
            Some(t) if t.uid == uid => t.clone(),
            _ => {
                let t = Arc::new(Tenant::new(name, uid));
                m.insert(name.to_string(), t.clone());
                t
            }
        }
    }

    pub fn remove(&self, name: &str) {
        self.map.write().remove(name);
    }
}

/// (namespace, name) of an object.
pub fn ns_name(o: &Value) -> (String, String) {
    let md = &o["metadata"];
    (md["namespace"].as_str().unwrap_or("").to_string(), md["name"].as_str().unwrap_or("").to_string())
}
