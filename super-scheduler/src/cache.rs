//! Keeps the scheduler's picture of the super cluster current through the standard Kubernetes
//! API: kube watchers on Nodes, Pods and VirtualClusters (tenancy.kplex.io/v1alpha1, read as
//! dynamic objects). A relist (the watcher's Init .. InitDone) replaces the picture: whatever the
//! relist did not see is dropped. Watch errors are logged and retried with the watcher's
//! exponential backoff; nothing polls.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::oneshot;

use crate::policy::TenantPolicy;
use crate::service::Shared;

/// The VirtualCluster resource the tenant policies come from.
pub fn virtual_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tenancy.kplex.io", "v1alpha1", "VirtualCluster"), "virtualclusters")
}

/// What a watcher applies to the shared state.
trait Sink<K>: Send + 'static {
    fn key(obj: &K) -> Option<String>;
    fn apply(shared: &Shared, obj: &K);
    fn delete(shared: &Shared, key: &str);
    fn keys(shared: &Shared) -> Vec<String>;
}

struct Nodes;
impl Sink<Node> for Nodes {
    fn key(n: &Node) -> Option<String> {
        n.metadata.name.clone()
    }
    fn apply(s: &Shared, n: &Node) {
        s.with_state(|st| st.upsert_node(n));
    }
    fn delete(s: &Shared, key: &str) {
        s.with_state(|st| st.remove_node(key));
    }
    fn keys(s: &Shared) -> Vec<String> {
        s.sched.lock().state.node_names()
    }
}

struct Pods;
impl Sink<Pod> for Pods {
    fn key(p: &Pod) -> Option<String> {
        p.metadata.uid.clone()
    }
    fn apply(s: &Shared, p: &Pod) {
        s.with_state(|st| st.upsert_pod(p));
    }
    fn delete(s: &Shared, key: &str) {
        s.with_state(|st| st.remove_super_pod(key));
    }
    fn keys(s: &Shared) -> Vec<String> {
        s.sched.lock().state.super_pod_uids()
    }
}

struct VirtualClusters;
impl Sink<DynamicObject> for VirtualClusters {
    fn key(o: &DynamicObject) -> Option<String> {
        o.metadata.name.clone()
    }
    fn apply(s: &Shared, o: &DynamicObject) {
        let Some(name) = o.metadata.name.clone() else { return };
        let obj = serde_json::json!({"spec": o.data.get("spec").cloned().unwrap_or_default()});
        match TenantPolicy::from_virtual_cluster(&obj) {
            Ok(p) => {
                s.vc_names.lock().insert(name.clone());
                s.with_state(|st| st.set_policy(&name, p));
            }
            Err(e) => tracing::warn!(virtualcluster = %name, "ignoring an unreadable scheduling policy: {e}"),
        }
    }
    fn delete(s: &Shared, key: &str) {
        s.vc_names.lock().remove(key);
        let fallback = s.file_policies.get(key).cloned().unwrap_or_default();
        s.with_state(|st| st.set_policy(key, fallback));
    }
    fn keys(s: &Shared) -> Vec<String> {
        s.vc_names.lock().iter().cloned().collect()
    }
}

/// Runs one watcher for the life of the process; `synced` fires after the first full list (or,
/// with `ready_on_error`, after the first error too: a resource that does not exist yet must not
/// hold the scheduler back).
async fn run<K, S>(api: Api<K>, shared: Arc<Shared>, synced: oneshot::Sender<()>, ready_on_error: bool)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    S: Sink<K>,
{
    let mut synced = Some(synced);
    let mut errors = 0u64;
    let mut seen: Option<HashSet<String>> = None;
    let mut stream = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => seen = Some(HashSet::new()),
            Ok(Event::InitApply(o)) => {
                if let (Some(k), Some(seen)) = (S::key(&o), seen.as_mut()) {
                    seen.insert(k);
                }
                S::apply(&shared, &o);
            }
            Ok(Event::InitDone) => {
                if let Some(seen) = seen.take() {
                    for k in S::keys(&shared) {
                        if !seen.contains(&k) {
                            S::delete(&shared, &k);
                        }
                    }
                }
                if let Some(tx) = synced.take() {
                    let _ = tx.send(());
                }
            }
            Ok(Event::Apply(o)) => S::apply(&shared, &o),
            Ok(Event::Delete(o)) => {
                if let Some(k) = S::key(&o) {
                    S::delete(&shared, &k);
                }
            }
            Err(e) => {
                errors += 1;
                // An optional resource that is missing is retried quietly (with backoff).
                if ready_on_error && errors > 1 {
                    tracing::debug!("super-cluster watch: {e}");
                } else {
                    tracing::warn!("super-cluster watch: {e}");
                }
                if ready_on_error {
                    if let Some(tx) = synced.take() {
                        let _ = tx.send(());
                    }
                }
            }
        }
    }
}

/// Starts the watchers; resolves once Nodes and Pods are listed and VirtualClusters are listed or
/// known to be unavailable.
pub async fn start(client: kube::Client, shared: Arc<Shared>, watch_virtual_clusters: bool) -> anyhow::Result<()> {
    let (ntx, nrx) = oneshot::channel();
    let (ptx, prx) = oneshot::channel();
    tokio::spawn(run::<Node, Nodes>(Api::all(client.clone()), shared.clone(), ntx, false));
    tokio::spawn(run::<Pod, Pods>(Api::all(client.clone()), shared.clone(), ptx, false));
    if watch_virtual_clusters {
        let (vtx, vrx) = oneshot::channel();
        let api: Api<DynamicObject> = Api::all_with(client, &virtual_cluster_resource());
        tokio::spawn(run::<DynamicObject, VirtualClusters>(api, shared, vtx, true));
        vrx.await?;
    }
    nrx.await?;
    prx.await?;
    Ok(())
}

/// Reads tenant policies from a file: a YAML or JSON VirtualCluster, a list of them, or a List
/// with `items` (for platforms without the VirtualCluster resource, and for tests).
pub fn read_policy_file(path: &std::path::Path) -> anyhow::Result<BTreeMap<String, TenantPolicy>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = BTreeMap::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        let items = match &v {
            serde_json::Value::Array(a) => a.clone(),
            serde_json::Value::Object(o) if o.contains_key("items") => o["items"].as_array().cloned().unwrap_or_default(),
            serde_json::Value::Null => Vec::new(),
            _ => vec![v.clone()],
        };
        for item in items {
            let name = item.pointer("/metadata/name").and_then(|n| n.as_str()).ok_or_else(|| anyhow::anyhow!("a policy without metadata.name"))?;
            let p = TenantPolicy::from_virtual_cluster(&item).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            out.insert(name.to_string(), p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files_take_yaml_lists_and_documents() {
        let dir = std::env::temp_dir().join(format!("kplex-sched-policy-{}", std::process::id()));
        std::fs::write(
            &dir,
            "- metadata: {name: a}\n  spec: {quota: {cpu: '2'}}\n---\nmetadata: {name: b}\nspec: {dedicatedNodePool: true}\n---\nitems: [{metadata: {name: c}}]\n",
        )
        .unwrap();
        let p = read_policy_file(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        assert_eq!(p["a"].quota.get("cpu"), Some(&2000));
        assert!(p["b"].dedicated_pool);
    }
}
