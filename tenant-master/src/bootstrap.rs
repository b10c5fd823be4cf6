//! What every new cluster has: the namespaces default, kube-system, kube-public and
//! kube-node-lease, and the `kubernetes` Service (with its Endpoints) in default.

use serde_json::json;

use crate::registry::store::{Part, Store, WriteOpts};

/// Creates the object, or brings the listed top-level fields and the labels of an existing one
/// back to what `obj` says: the `kubernetes` Endpoints and EndpointSlice must name the address
/// this server listens on now (it may have moved since the last start), as kube-apiserver's
/// endpoint reconciler keeps them.
async fn reconcile(store: &Store, group: &str, version: &str, plural: &str, ns: &str, obj: serde_json::Value, fields: &[&str]) -> anyhow::Result<()> {
    let s = store.registry.lookup(group, version, plural).ok_or_else(|| anyhow::anyhow!("no resource {plural}"))?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let Some(cur) = store.get_cached(s.as_ref(), ns, &name) else {
        return ensure(store, group, version, plural, ns, obj).await;
    };
    let cur = cur.value();
    let stale = fields.iter().any(|f| cur[*f] != obj[*f]) || cur["metadata"]["labels"] != obj["metadata"]["labels"];
    if !stale {
        return Ok(());
    }
    let wo = WriteOpts { field_manager: Some("kube-apiserver".into()), ..Default::default() };
    store
        .guaranteed_update(s.as_ref(), ns, &name, Part::Main, &wo, false, |c| {
            let mut v = c.cloned().unwrap_or_else(|| obj.clone());
            for f in fields {
                v[*f] = obj[*f].clone();
            }
            v["metadata"]["labels"] = obj["metadata"]["labels"].clone();
            Ok(v)
        })
        .await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("updating {plural}/{name}: {e}"))
}

async fn ensure(store: &Store, group: &str, version: &str, plural: &str, ns: &str, obj: serde_json::Value) -> anyhow::Result<()> {
    let s = store.registry.lookup(group, version, plural).ok_or_else(|| anyhow::anyhow!("no resource {plural}"))?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if store.get_cached(s.as_ref(), ns, &name).is_some() {
        return Ok(());
    }
    match store.create(s.as_ref(), ns, obj, &WriteOpts { dry_run: false, field_manager: Some("kube-apiserver".into()), ..Default::default() }).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(anyhow::anyhow!("creating {plural}/{name}: {e}")),
    }
}

/// Creates the built-in objects that are missing. `port` is the port the API is served on.
pub async fn run(store: &Store, host: &str, port: u16) -> anyhow::Result<()> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(store, "", "v1", "namespaces", "", json!({"metadata": {"name": ns}})).await?;
    }
    let ip = store.alloc.kubernetes_ip().to_string();
    ensure(
        store,
        "",
        "v1",
        "services",
        "default",
        json!({
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": ip, "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}], "sessionAffinity": "None", "type": "ClusterIP"},
        }),
    )
    .await?;
    reconcile(
        store,
        "",
        "v1",
        "endpoints",
        "default",
        json!({
            "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }),
        &["subsets"],
    )
    .await?;
    reconcile(
        store,
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "default",
        json!({
            "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }),
        &["addressType", "endpoints", "ports"],
    )
    .await?;
    Ok(())
}
