//! Pods: placement through the super-scheduler, binding to a virtual node, the super pod
//! (rewritten to see its tenant's API), status upward, deletion both ways, pause.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use super_scheduler::proto as sp;

use super::{objects, Cx, Error, Result};
use crate::naming;
use crate::proto::write::Op;
use crate::tenants::Key;

/// What a pod references that must exist in its super namespace.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PodRefs {
    pub configmaps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    pub pvcs: BTreeSet<String>,
    /// The service account whose token the pod mounts (projected serviceAccountToken).
    pub token_sa: Option<String>,
}

impl PodRefs {
    /// The keys of everything referenced.
    pub fn into_keys(self, ns: &str) -> Vec<Key> {
        let mut k: Vec<Key> = self.configmaps.into_iter().map(|n| Key::ConfigMap(ns.into(), n)).collect();
        k.extend(self.secrets.into_iter().map(|n| Key::Secret(ns.into(), n)));
        k.extend(self.pvcs.into_iter().map(|n| Key::Pvc(ns.into(), n)));
        k.extend(self.token_sa.map(|sa| Key::SaToken(ns.into(), sa)));
        k
    }
}

fn is_token_volume(v: &Value) -> bool {
    v["projected"]["sources"].as_array().is_some_and(|s| s.iter().any(|x| x["serviceAccountToken"].is_object()))
}

/// The ConfigMaps, Secrets, PVCs and service-account token a pod references (volumes, env,
/// envFrom, image pull secrets). The kube-root-ca.crt of a token volume is not a reference: the
/// syncer's token Secret carries the tenant's CA.
pub fn pod_refs(pod: &Value) -> PodRefs {
    let mut r = PodRefs::default();
    let spec = &pod["spec"];
    let s = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    for v in spec["volumes"].as_array().into_iter().flatten() {
        r.configmaps.extend(s(&v["configMap"]["name"]));
        r.secrets.extend(s(&v["secret"]["secretName"]));
        r.pvcs.extend(s(&v["persistentVolumeClaim"]["claimName"]));
        let token = is_token_volume(v);
        if token {
            r.token_sa = Some(spec["serviceAccountName"].as_str().filter(|s| !s.is_empty()).unwrap_or("default").to_string());
        }
        for src in v["projected"]["sources"].as_array().into_iter().flatten() {
            if !(token && src["configMap"]["name"] == "kube-root-ca.crt") {
                r.configmaps.extend(s(&src["configMap"]["name"]));
            }
            r.secrets.extend(s(&src["secret"]["name"]));
        }
    }
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        for c in spec[field].as_array().into_iter().flatten() {
            for e in c["env"].as_array().into_iter().flatten() {
                r.configmaps.extend(s(&e["valueFrom"]["configMapKeyRef"]["name"]));
                r.secrets.extend(s(&e["valueFrom"]["secretKeyRef"]["name"]));
            }
            for e in c["envFrom"].as_array().into_iter().flatten() {
                r.configmaps.extend(s(&e["configMapRef"]["name"]));
                r.secrets.extend(s(&e["secretRef"]["name"]));
            }
        }
    }
    for ips in spec["imagePullSecrets"].as_array().into_iter().flatten() {
        r.secrets.extend(s(&ips["name"]));
    }
    r
}

fn deleting(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
}

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

/// The pod's status fields the super cluster owns.
const UPWARD_FIELDS: &[&str] = &[
    "phase",
    "podIP",
    "podIPs",
    "hostIP",
    "hostIPs",
    "startTime",
    "containerStatuses",
    "initContainerStatuses",
    "ephemeralContainerStatuses",
    "qosClass",
    "reason",
    "message",
];

/// The tenant pod's status with the super pod's status laid over it.
fn merged_status(tp: &Value, sp: &Value) -> Value {
    let mut st = if tp["status"].is_object() { tp["status"].clone() } else { json!({}) };
    for f in UPWARD_FIELDS {
        match sp["status"].get(*f) {
            Some(v) if !v.is_null() => st[*f] = v.clone(),
            _ => {
                if let Some(m) = st.as_object_mut() {
                    m.remove(*f);
                }
            }
        }
    }
    let sconds: Vec<Value> = sp["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let mut conds = sconds.clone();
    for c in tp["status"]["conditions"].as_array().into_iter().flatten() {
        if !sconds.iter().any(|x| x["type"] == c["type"]) {
            conds.push(c.clone());
        }
    }
    st["conditions"] = json!(conds);
    st
}

pub async fn reconcile(cx: &Cx<'_>, ns: &str, name: &str) -> Result<()> {
    let sns = cx.sns(ns);
    let owner = cx.owner(ns, name);
    let tp = cx.t.get("pods", ns, name);
    let spod = cx.s.supers.get("pods", &sns, name);
    if let Some(sp) = &spod {
        if !naming::owned_by(sp, &owner) {
            tracing::warn!(tenant = cx.tenant(), ns = sns, name, "super pod is not ours: left alone");
            return Ok(());
        }
    }
    // A super pod of a tenant pod that is gone (or of an earlier pod with the same name).
    if let Some(sp) = &spod {
        if tp.as_ref().is_none_or(|tp| naming::recorded_uid(sp) != uid(tp)) {
            if !deleting(sp) {
                cx.s.supers.delete("pods", &sns, name, uid(sp), None).await?;
            }
            return Ok(());
        }
    }
    let Some(tp) = tp else {
        let mut st = cx.t.state.write();
        st.unschedulable.remove(&(ns.to_string(), name.to_string()));
        return Ok(());
    };
    if deleting(&tp) {
        cx.t.state.write().unschedulable.remove(&(ns.to_string(), name.to_string()));
        if let Some(sp) = &spod {
            if !deleting(sp) {
                let grace = tp["metadata"]["deletionGracePeriodSeconds"].as_u64().map(|g| g as u32);
                cx.s.supers.delete("pods", &sns, name, uid(sp), grace).await?;
            }
            return Ok(());
        }
        // The super pod is gone: the pod has stopped; finish the tenant's deletion as a kubelet
        // would.
        release(cx, &tp).await;
        let r = cx.t.write_with_grace(Op::Delete, "pods", ns, name, &Value::Null, uid(&tp), 0).await?;
        return cx.check("deleting pod", &r, &[404, 409]);
    }
    let node = tp["spec"]["nodeName"].as_str().unwrap_or("").to_string();
    if cx.paused {
        if let Some(sp) = &spod {
            if !deleting(sp) {
                cx.s.supers.delete("pods", &sns, name, uid(sp), Some(0)).await?;
            }
        }
        return Ok(());
    }
    if node.is_empty() {
        if tp["spec"]["schedulingGates"].as_array().is_some_and(|g| !g.is_empty()) {
            return Ok(());
        }
        return schedule(cx, &tp, ns, name).await;
    }
    match spod {
        None => {
            let phase = tp["status"]["phase"].as_str().unwrap_or("");
            if phase == "Succeeded" || phase == "Failed" {
                return Ok(()); // finished: never started again
            }
            for k in pod_refs(&tp).into_keys(ns) {
                objects::ensure(cx, &k).await?;
            }
            let sns = cx.ensure_namespace(ns).await?;
            let pod = super_pod(cx, &tp, &sns, &node);
            let t0 = std::time::Instant::now();
            cx.s.supers.create("pods", &sns, &pod).await?;
            crate::metrics::super_create(cx.tenant(), t0.elapsed());
            Ok(())
        }
        Some(sp) => {
            if deleting(&sp) {
                // Deleted behind the tenant's back (by hand, an eviction, a pause): its final
                // status (stopped containers) is not the tenant pod's fate. It is created again
                // once gone.
                return Ok(());
            }
            let want = merged_status(&tp, &sp);
            if want != tp["status"] {
                let r = cx.t.write(Op::UpdateStatus, "pods", ns, name, &json!({"status": want}), uid(&tp)).await?;
                cx.check("pod status", &r, &[404, 409])?;
            }
            Ok(())
        }
    }
}

async fn release(cx: &Cx<'_>, tp: &Value) {
    let (ns, name) = crate::tenants::ns_name(tp);
    let req = sp::ReleaseRequest { pods: vec![sp::PodRef { tenant: cx.tenant().into(), namespace: ns, name, uid: uid(tp).into() }] };
    if let Err(e) = cx.s.scheduler.clone().release(req).await {
        tracing::debug!(error = %e, "release failed (the reservation lapses by itself)");
    }
}

async fn schedule(cx: &Cx<'_>, tp: &Value, ns: &str, name: &str) -> Result<()> {
    let req = sp::ScheduleRequest {
        pods: vec![sp::PodToSchedule { tenant: cx.tenant().into(), pod: serde_json::to_vec(tp).unwrap_or_default(), ..Default::default() }],
    };
    let resp = cx.s.scheduler.clone().schedule(req).await.map_err(|e| Error::Scheduler(e.to_string()))?.into_inner();
    let Some(d) = resp.decisions.into_iter().next() else { return Err(Error::Scheduler("empty answer".into())) };
    match d.result {
        Some(sp::decision::Result::Placed(p)) => {
            cx.t.state.write().unschedulable.remove(&(ns.to_string(), name.to_string()));
            if let Some(vn) = &p.virtual_node {
                super::nodes::ensure(cx, vn).await?;
            }
            let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": p.node_name}});
            let r = cx.t.write(Op::Bind, "pods", ns, name, &binding, uid(tp)).await?;
            if !(200..300).contains(&r.code) {
                release(cx, tp).await;
            }
            // 409: bound meanwhile, or being deleted; 404: gone. The pod's next change decides.
            cx.check("binding pod", &r, &[404, 409])
        }
        Some(sp::decision::Result::Unschedulable(u)) => {
            cx.t.state.write().unschedulable.insert((ns.to_string(), name.to_string()));
            unschedulable(cx, tp, ns, name, &u.reason, &u.message).await
        }
        None => Err(Error::Scheduler("decision without result".into())),
    }
}

/// PodScheduled=False and a FailedScheduling event, as kube-scheduler writes them (once per
/// distinct message).
async fn unschedulable(cx: &Cx<'_>, tp: &Value, ns: &str, name: &str, reason: &str, message: &str) -> Result<()> {
    let cur = tp["status"]["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled")).cloned();
    let same = cur.as_ref().is_some_and(|c| c["status"] == "False" && c["message"] == message);
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    if !same {
        let mut st = if tp["status"].is_object() { tp["status"].clone() } else { json!({"phase": "Pending"}) };
        let mut conds: Vec<Value> = st["conditions"].as_array().cloned().unwrap_or_default();
        conds.retain(|c| c["type"] != "PodScheduled");
        conds.push(json!({"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
            "lastProbeTime": null, "lastTransitionTime": now}));
        st["conditions"] = json!(conds);
        let r = cx.t.write(Op::UpdateStatus, "pods", ns, name, &json!({"status": st}), uid(tp)).await?;
        cx.check("pod status", &r, &[404, 409])?;
    }
    let pod_uid = uid(tp).to_string();
    let already = cx.t.state.read().last_failed.get(&pod_uid).is_some_and(|m| m == message);
    if already {
        return Ok(());
    }
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let ev = json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name, "uid": pod_uid,
                           "resourceVersion": tp["metadata"]["resourceVersion"]},
        "reason": "FailedScheduling", "message": message, "type": "Warning", "count": 1,
        "source": {"component": "default-scheduler"}, "reportingComponent": "default-scheduler", "reportingInstance": "kplex-syncer",
        "firstTimestamp": now, "lastTimestamp": now});
    let r = cx.t.write(Op::Create, "events", ns, "", &ev, "").await?;
    cx.check("FailedScheduling event", &r, &[404])?;
    let mut st = cx.t.state.write();
    if st.last_failed.len() > 100_000 {
        st.last_failed.clear();
    }
    st.last_failed.insert(pod_uid, message.to_string());
    Ok(())
}

/// Name of the Secret carrying service account `sa`'s token (and the tenant's CA).
pub fn token_secret_name(sa: &str) -> String {
    format!("kplex-token-{sa}")
}

/// The super pod of tenant pod `tp`: same name and labels in the super namespace, ownership
/// marked, bound to `node`, and rewritten so its containers reach the tenant's API server (the
/// kubernetes service environment, the tenant's service-account token and CA).
fn super_pod(cx: &Cx<'_>, tp: &Value, _sns: &str, node: &str) -> Value {
    let (ns, name) = crate::tenants::ns_name(tp);
    let mut pod = cx.super_object(tp, "v1", "Pod", &ns, &name);
    let mut spec = tp["spec"].clone();
    let sa = spec["serviceAccountName"].as_str().filter(|s| !s.is_empty()).unwrap_or("default").to_string();
    if let Some(m) = spec.as_object_mut() {
        // The tenant's priorities, scheduler and service accounts mean nothing in the super
        // cluster; the placement is decided.
        for f in ["priorityClassName", "priority", "preemptionPolicy", "schedulerName", "serviceAccountName", "serviceAccount", "nodeName"] {
            m.remove(f);
        }
    }
    spec["nodeName"] = json!(node);
    spec["automountServiceAccountToken"] = json!(false);
    let secret = token_secret_name(&sa);
    for v in spec["volumes"].as_array_mut().into_iter().flatten() {
        if !is_token_volume(v) {
            continue;
        }
        let mut sources = Vec::new();
        for src in v["projected"]["sources"].as_array().cloned().unwrap_or_default() {
            if src["serviceAccountToken"].is_object() {
                let path = src["serviceAccountToken"]["path"].as_str().unwrap_or("token");
                sources.push(json!({"secret": {"name": secret, "items": [{"key": "token", "path": path}]}}));
            } else if src["configMap"]["name"] == "kube-root-ca.crt" {
                let items: Vec<Value> = src["configMap"]["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| vec![json!({"key": "ca.crt", "path": "ca.crt"})])
                    .into_iter()
                    .map(|i| json!({"key": "ca.crt", "path": i["path"]}))
                    .collect();
                sources.push(json!({"secret": {"name": secret, "items": items}}));
            } else if src["downwardAPI"].is_object() {
                let mut items = Vec::new();
                let mut ns_paths = Vec::new();
                for it in src["downwardAPI"]["items"].as_array().cloned().unwrap_or_default() {
                    if it["fieldRef"]["fieldPath"] == "metadata.namespace" {
                        ns_paths.push(json!({"key": "namespace", "path": it["path"]}));
                    } else {
                        items.push(it);
                    }
                }
                if !items.is_empty() {
                    sources.push(json!({"downwardAPI": {"items": items}}));
                }
                if !ns_paths.is_empty() {
                    sources.push(json!({"secret": {"name": secret, "items": ns_paths}}));
                }
            } else {
                sources.push(src);
            }
        }
        v["projected"]["sources"] = json!(sources);
    }
    let endpoint = cx.t.state.read().api_endpoint.clone();
    if let Some((host, port)) = endpoint.rsplit_once(':') {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let env = [
            ("KUBERNETES_SERVICE_HOST", host.to_string()),
            ("KUBERNETES_SERVICE_PORT", port.to_string()),
            ("KUBERNETES_SERVICE_PORT_HTTPS", port.to_string()),
            ("KUBERNETES_PORT", format!("tcp://{endpoint}")),
            ("KUBERNETES_PORT_443_TCP", format!("tcp://{endpoint}")),
            ("KUBERNETES_PORT_443_TCP_PROTO", "tcp".to_string()),
            ("KUBERNETES_PORT_443_TCP_ADDR", host.to_string()),
            ("KUBERNETES_PORT_443_TCP_PORT", port.to_string()),
        ];
        for field in ["containers", "initContainers"] {
            for c in spec[field].as_array_mut().into_iter().flatten() {
                let mut list: Vec<Value> = c["env"].as_array().cloned().unwrap_or_default();
                for (k, v) in env.iter().rev() {
                    if !list.iter().any(|e| e["name"] == *k) {
                        list.insert(0, json!({"name": k, "value": v}));
                    }
                }
                c["env"] = json!(list);
            }
        }
    }
    pod["spec"] = spec;
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_of_a_pod() {
        let pod = json!({"spec": {"serviceAccountName": "robot", "containers": [{"name": "a",
            "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}}],
            "envFrom": [{"secretRef": {"name": "s-env"}}]}],
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [{"name": "c", "configMap": {"name": "cm-vol"}}, {"name": "p", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt"}}, {"downwardAPI": {"items": []}}]}}]}});
        let r = pod_refs(&pod);
        assert_eq!(r.configmaps.into_iter().collect::<Vec<_>>(), vec!["cm-env", "cm-vol"]);
        assert_eq!(r.secrets.into_iter().collect::<Vec<_>>(), vec!["pull", "s-env"]);
        assert_eq!(r.pvcs.into_iter().collect::<Vec<_>>(), vec!["data"]);
        assert_eq!(r.token_sa.as_deref(), Some("robot"));
    }

    #[test]
    fn status_goes_up_keeping_tenant_only_conditions() {
        let tp = json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}});
        let sp = json!({"status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}});
        let st = merged_status(&tp, &sp);
        assert_eq!(st["phase"], "Running");
        assert_eq!(st["podIP"], "10.0.0.1");
        assert_eq!(st["conditions"].as_array().unwrap().len(), 2);
    }
}
