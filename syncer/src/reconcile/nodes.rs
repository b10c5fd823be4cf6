//! Virtual nodes: a tenant sees a Node for each real node its pods use, with the labels, taints,
//! capacity and readiness the super-scheduler's virtual-node view gives, and no other nodes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use super_scheduler::proto as sp;

use super::{Cx, Error, Result};
use crate::proto::write::Op;

/// A node bound to this recently is not removed even if the mirror shows no pod on it yet (the
/// binding may still be on its way).
const BIND_GRACE: Duration = Duration::from_secs(60);

fn node_object(vn: &sp::VirtualNode) -> Value {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let taints: Vec<Value> = vn.taints.iter().map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect})).collect();
    let (status, reason) = if vn.ready { ("True", "KubeletReady") } else { ("False", "KubeletNotReady") };
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": vn.name, "labels": vn.labels},
        "spec": {"taints": taints, "unschedulable": vn.unschedulable},
        "status": {"capacity": vn.capacity, "allocatable": vn.allocatable,
            "conditions": [{"type": "Ready", "status": status, "reason": reason, "message": "virtual node of kplex",
                "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "nodeInfo": {"kubeletVersion": "v1.33.1-kplex", "kubeProxyVersion": "", "operatingSystem": vn.labels.get("kubernetes.io/os").cloned().unwrap_or_default(),
                "architecture": vn.labels.get("kubernetes.io/arch").cloned().unwrap_or_default(),
                "containerRuntimeVersion": "", "kernelVersion": "", "osImage": "", "machineID": "", "systemUUID": "", "bootID": ""}}})
}

fn same_node(cur: &Value, want: &Value) -> bool {
    let norm = |v: &Value| if v.is_null() { json!({}) } else { v.clone() };
    let taints = |v: &Value| if v.is_null() { json!([]) } else { v.clone() };
    norm(&cur["metadata"]["labels"]) == norm(&want["metadata"]["labels"])
        && taints(&cur["spec"]["taints"]) == taints(&want["spec"]["taints"])
        && cur["spec"]["unschedulable"].as_bool().unwrap_or(false) == want["spec"]["unschedulable"].as_bool().unwrap_or(false)
        && norm(&cur["status"]["capacity"]) == norm(&want["status"]["capacity"])
        && norm(&cur["status"]["allocatable"]) == norm(&want["status"]["allocatable"])
        && ready(cur) == ready(want)
}

fn ready(n: &Value) -> bool {
    n["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Creates (or refreshes) the virtual node before a pod is bound to it.
pub async fn ensure(cx: &Cx<'_>, vn: &sp::VirtualNode) -> Result<()> {
    cx.t.state.write().recently_bound.insert(vn.name.clone(), Instant::now());
    let want = node_object(vn);
    match cx.t.get("nodes", "", &vn.name) {
        None => {
            let r = cx.t.write(Op::Create, "nodes", "", "", &want, "").await?;
            cx.check("creating virtual node", &r, &[409])?;
            if r.code == 409 {
                return Ok(());
            }
            let created: Value = serde_json::from_slice(&r.object).unwrap_or(Value::Null);
            if !ready(&created) && vn.ready {
                let r = cx.t.write(Op::UpdateStatus, "nodes", "", &vn.name, &want, "").await?;
                cx.check("virtual node status", &r, &[])?;
            }
            Ok(())
        }
        Some(cur) if !same_node(&cur, &want) => refresh(cx, &cur, &want).await,
        Some(_) => Ok(()),
    }
}

async fn refresh(cx: &Cx<'_>, cur: &Value, want: &Value) -> Result<()> {
    let name = want["metadata"]["name"].as_str().unwrap_or("");
    let uid = cur["metadata"]["uid"].as_str().unwrap_or("");
    let r = cx.t.write(Op::Update, "nodes", "", name, want, uid).await?;
    cx.check("updating virtual node", &r, &[404, 409])?;
    let r = cx.t.write(Op::UpdateStatus, "nodes", "", name, want, uid).await?;
    cx.check("virtual node status", &r, &[404, 409])
}

/// Removes the tenant's nodes no pod uses; creates or refreshes the used ones.
pub async fn reconcile(cx: &Cx<'_>) -> Result<()> {
    let used: BTreeSet<String> =
        cx.t.list("pods", None).iter().filter_map(|p| p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()).map(String::from)).collect();
    let recent: BTreeSet<String> = {
        let mut st = cx.t.state.write();
        st.recently_bound.retain(|_, at| at.elapsed() < BIND_GRACE);
        st.recently_bound.keys().cloned().collect()
    };
    for n in cx.t.list("nodes", None) {
        let name = n["metadata"]["name"].as_str().unwrap_or("");
        if !used.contains(name) && !recent.contains(name) {
            let r = cx.t.write(Op::Delete, "nodes", "", name, &Value::Null, n["metadata"]["uid"].as_str().unwrap_or("")).await?;
            cx.check("removing unused virtual node", &r, &[404, 409])?;
        }
    }
    if used.is_empty() {
        return Ok(());
    }
    let req = sp::GetVirtualNodesRequest { tenant: cx.tenant().into(), node_names: used.iter().cloned().collect() };
    let nodes = cx.s.scheduler.clone().get_virtual_nodes(req).await.map_err(|e| Error::Scheduler(e.to_string()))?.into_inner().nodes;
    for vn in &nodes {
        match cx.t.get("nodes", "", &vn.name) {
            None => ensure(cx, vn).await?,
            Some(cur) => {
                let want = node_object(vn);
                if !same_node(&cur, &want) {
                    refresh(cx, &cur, &want).await?;
                }
            }
        }
    }
    Ok(())
}
