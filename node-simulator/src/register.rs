//! Node registration at start, idempotent: a node of the layout that already exists is adopted
//! (its UID, podCIDR and InternalIP kept, the labels the kubelet owns reconciled, its status
//! reported again), a missing one is created with a free podCIDR, and nodes a previous run of
//! this simulator (same `--name-prefix`) created that are no longer in the layout are deleted,
//! as a cloud's node controller deletes the Node of an instance that is gone.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::api::{self, Outcome};
use crate::hooks::NodeMode;
use crate::layout::NodePlan;
use crate::net::Cidr;
use crate::node::{SimNode, OWNER_ANNOTATION};
use crate::util::now;
use crate::Settings;

/// Registers or adopts every planned node; returns them in plan order.
pub async fn register(client: &Client, s: &Settings, plan: Vec<NodePlan>) -> anyhow::Result<Vec<SimNode>> {
    let base = Cidr::parse(&s.pod_cidr_base).map_err(|e| anyhow::anyhow!("--pod-cidr-base: {e}"))?;
    if s.node_cidr_mask_size < base.bits || s.node_cidr_mask_size > 30 {
        anyhow::bail!("--node-cidr-mask-size {} does not fit --pod-cidr-base {base}", s.node_cidr_mask_size);
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let existing: HashMap<String, Node> =
        nodes.list(&ListParams::default()).await?.items.into_iter().map(|n| (n.metadata.name.clone().unwrap_or_default(), n)).collect();
    let wanted: HashSet<&str> = plan.iter().map(|p| p.name.as_str()).collect();

    // Nodes from an earlier run with a larger layout.
    for (name, n) in &existing {
        let ours = n.metadata.annotations.as_ref().and_then(|a| a.get(OWNER_ANNOTATION)) == Some(&s.name_prefix);
        if ours && !wanted.contains(name.as_str()) {
            tracing::info!(node = %name, "deleting a node no longer in the layout");
            if let Outcome::Failed(e) = api::node_delete(client, name).await {
                tracing::warn!(node = %name, error = %e, "deleting a stale node");
            }
        }
    }

    // podCIDRs in use by any node, ours or not.
    let mut taken: HashSet<u64> =
        existing.values().filter_map(|n| n.spec.as_ref()?.pod_cidr.as_deref()).filter_map(|c| Cidr::parse(c).ok()).filter_map(|c| base.index_of(&c)).collect();
    let mut next = 0u64;
    let t = now();
    let mut out = Vec::with_capacity(plan.len());
    let mut to_create = Vec::new();
    for p in plan {
        if let Some(n) = existing.get(&p.name) {
            out.push(adopt(client, s, &base, p, n).await);
            continue;
        }
        while taken.contains(&next) {
            next += 1;
        }
        let cidr = base
            .subnet(s.node_cidr_mask_size, next)
            .ok_or_else(|| anyhow::anyhow!("--pod-cidr-base {base} has no room for another /{} podCIDR (node {})", s.node_cidr_mask_size, p.name))?;
        taken.insert(next);
        to_create.push(out.len());
        out.push(SimNode::new(p, String::new(), cidr, next, t));
    }

    // Create the missing nodes, a few at a time.
    let bodies: Vec<(usize, serde_json::Value)> = to_create.iter().map(|&i| (i, out[i].object(&s.name_prefix, t))).collect();
    let created: Vec<(usize, String)> = futures::stream::iter(bodies)
        .map(|(i, body)| {
            let nodes = nodes.clone();
            async move {
                let node: Node = serde_json::from_value(body)?;
                let name = node.metadata.name.clone().unwrap_or_default();
                let created = match nodes.create(&PostParams::default(), &node).await {
                    Ok(n) => n,
                    // Registered by someone else in between: adopt it.
                    Err(kube::Error::Api(e)) if e.code == 409 => nodes.get(&name).await?,
                    Err(e) => return Err(anyhow::anyhow!("creating node {name}: {e}")),
                };
                Ok::<_, anyhow::Error>((i, created.metadata.uid.unwrap_or_default()))
            }
        })
        .buffer_unordered(s.max_concurrent_writes.max(1))
        .try_collect()
        .await?;
    for (i, uid) in created {
        out[i].uid = uid;
    }
    tracing::info!(nodes = out.len(), created = to_create.len(), "nodes registered");
    Ok(out)
}

/// Takes over an existing node (a restart of the simulator, or a kubelet taking its name).
async fn adopt(client: &Client, s: &Settings, base: &Cidr, p: NodePlan, n: &Node) -> SimNode {
    let name = p.name.clone();
    let spec = n.spec.clone().unwrap_or_default();
    let cidr = spec.pod_cidr.as_deref().and_then(|c| Cidr::parse(c).ok());
    // The InternalIP is derived from the podCIDR's index; a node without one in our range
    // gets an index of its own above any we hand out (unless it reports an address).
    let index = cidr
        .as_ref()
        .and_then(|c| base.index_of(c))
        .unwrap_or_else(|| 0x80000 + u64::from_str_radix(&crate::util::hex64(&[&name])[..5], 16).unwrap_or(0) % 0x40000);
    let cidr = cidr.unwrap_or_else(|| {
        tracing::warn!(node = %name, "adopted node has no podCIDR; pods get addresses from a range of their own");
        Cidr { base: u32::from(std::net::Ipv4Addr::new(10, 255, 0, 0)), bits: 24 }
    });
    let labels = p.labels();
    let mut sn = SimNode::new(p, n.metadata.uid.clone().unwrap_or_default(), cidr, index, now());
    if let Some(ip) =
        n.status.as_ref().and_then(|st| st.addresses.as_ref()).and_then(|a| a.iter().find(|a| a.type_ == "InternalIP")).and_then(|a| a.address.parse().ok())
    {
        sn.ip = ip;
    }
    sn.adopt_conditions(n);
    sn.set_mode(NodeMode::of(n.metadata.annotations.as_ref()), now());
    sn.adopt_conditions(n);
    // The labels the kubelet (and the cloud's node controller) own, and our ownership mark.
    let have_labels = n.metadata.labels.clone().unwrap_or_default();
    let labels_ok = labels.as_object().map(|m| m.iter().all(|(k, v)| have_labels.get(k).map(|h| v == h).unwrap_or(false))).unwrap_or(true);
    let owner_ok = n.metadata.annotations.as_ref().and_then(|a| a.get(OWNER_ANNOTATION)) == Some(&s.name_prefix);
    if !labels_ok || !owner_ok {
        let patch = json!({"metadata": {"labels": labels, "annotations": {OWNER_ANNOTATION: s.name_prefix}}});
        if let Outcome::Failed(e) = api::node_patch(client, &name, &patch).await {
            tracing::warn!(node = %name, error = %e, "reconciling node labels");
        }
    }
    sn
}
