//! Super mode (`kplex tenant-master --super`): the same API server serves the local super
//! cluster. It differs from a tenant's in two things only: its default etcd prefix
//! ([`ETCD_PREFIX`]) and the VirtualCluster CustomResourceDefinition, installed (or brought up
//! to date) on every start, so the tenant manager, the super-scheduler and the CLI find it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::registry::store::{Part, Store, WriteOpts};

/// The super cluster's etcd key prefix. Tenants live under `/kplex/tenants/<name>`, so no tenant
/// name can collide with it.
pub const ETCD_PREFIX: &str = "/kplex/super";

/// The VirtualCluster CRD (tenancy.kplex.io/v1alpha1), as shipped in deploy/crds.
pub const VIRTUAL_CLUSTER_CRD: &str = include_str!("../../deploy/crds/tenancy.kplex.io_virtualclusters.yaml");

/// Annotation recording which embedded CRD text the stored CRD was last written from: a start
/// with the same binary writes nothing.
const HASH_ANNOTATION: &str = "tenancy.kplex.io/crd-source-hash";

fn crd_object() -> anyhow::Result<Value> {
    let mut v: Value = serde_yaml_ng::from_str(VIRTUAL_CLUSTER_CRD)?;
    let hash = hex(&ring::digest::digest(&ring::digest::SHA256, VIRTUAL_CLUSTER_CRD.as_bytes()).as_ref()[..8]);
    v["metadata"]["annotations"] = serde_json::json!({ HASH_ANNOTATION: hash });
    Ok(v)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Creates the VirtualCluster CRD, or replaces its spec when this binary ships a different one.
pub async fn bootstrap(store: &Store) -> anyhow::Result<()> {
    let want = crd_object()?;
    let s = store
        .registry
        .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .ok_or_else(|| anyhow::anyhow!("no customresourcedefinitions resource"))?;
    let name = want["metadata"]["name"].as_str().unwrap_or_default().to_string();
    if let Some(cur) = store.get_cached(s.as_ref(), "", &name) {
        if cur.value()["metadata"]["annotations"][HASH_ANNOTATION] == want["metadata"]["annotations"][HASH_ANNOTATION] {
            return Ok(());
        }
    }
    let wo = WriteOpts { field_manager: Some("kube-apiserver".into()), ..Default::default() };
    store
        .guaranteed_update(s.as_ref(), "", &name, Part::Main, &wo, false, |cur| {
            let Some(cur) = cur else { return Ok(want.clone()) };
            let mut v = cur.clone();
            v["spec"] = want["spec"].clone();
            v["metadata"]["annotations"][HASH_ANNOTATION] = want["metadata"]["annotations"][HASH_ANNOTATION].clone();
            Ok(v)
        })
        .await
        .map_err(|e| anyhow::anyhow!("installing the VirtualCluster CRD: {e}"))?;
    Ok(())
}

/// Waits (at most 10 s, at start only) until the CRD controllers serve virtualclusters, so that
/// "ready" means clients can use them.
pub async fn wait_established(store: &Store) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.registry.lookup("tenancy.kplex.io", "v1alpha1", "virtualclusters").is_none() {
        if Instant::now() > deadline {
            anyhow::bail!("the VirtualCluster CRD was not established within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_crd_parses() {
        let v = super::crd_object().unwrap();
        assert_eq!(v["spec"]["names"]["kind"], "VirtualCluster");
        assert_eq!(v["spec"]["scope"], "Cluster");
    }
}
