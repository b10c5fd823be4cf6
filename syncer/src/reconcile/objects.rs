//! Everything but pods and nodes: ConfigMaps and Secrets that pods reference (only those),
//! service-account token Secrets, namespaces, services, endpoints of selector-less services,
//! PVCs, and events upward.

use base64::Engine;
use serde_json::{json, Value};

use super::pods::{pod_refs, token_secret_name};
use super::{Cx, Result};
use crate::naming;
use crate::proto::write::Op;
use crate::tenants::Key;

/// Token lifetime requested for mounted service-account tokens (a year, like a legacy token's
/// reach but expiring); renewed when less than a quarter is left.
const TOKEN_SECONDS: i64 = 365 * 24 * 3600;

fn uid(o: &Value) -> &str {
    o["metadata"]["uid"].as_str().unwrap_or("")
}

/// Reconciles a dependency of a pod about to be created (the pod's own reconcile calls this so
/// they exist first).
pub async fn ensure(cx: &Cx<'_>, key: &Key) -> Result<()> {
    match key {
        Key::ConfigMap(ns, n) => data_object_with(cx, "configmaps", ns, n, true).await,
        Key::Secret(ns, n) => data_object_with(cx, "secrets", ns, n, true).await,
        Key::Pvc(ns, n) => pvc(cx, ns, n).await,
        Key::SaToken(ns, sa) => sa_token_with(cx, ns, sa, true).await,
        _ => Ok(()),
    }
}

/// Pods of `ns` that run or will run in the super cluster (bound, not finished).
fn live_pods(cx: &Cx<'_>, ns: &str) -> Vec<std::sync::Arc<Value>> {
    cx.t.list("pods", Some(ns))
        .into_iter()
        .filter(|p| p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()))
        .filter(|p| !matches!(p["status"]["phase"].as_str(), Some("Succeeded") | Some("Failed")))
        .collect()
}

/// A tenant ConfigMap or Secret exists in the super namespace exactly while a live pod
/// references it.
pub async fn data_object(cx: &Cx<'_>, plural: &'static str, ns: &str, name: &str) -> Result<()> {
    data_object_with(cx, plural, ns, name, false).await
}

/// `referenced`: the caller knows a live pod references the object (no scan of the namespace's
/// pods, which would make a burst of pods quadratic).
async fn data_object_with(cx: &Cx<'_>, plural: &'static str, ns: &str, name: &str, referenced: bool) -> Result<()> {
    let sns = cx.sns(ns);
    let sobj = cx.s.supers.get(plural, &sns, name);
    if sobj.as_ref().is_some_and(|s| !naming::owned_by(s, &cx.owner(ns, name)) || s["metadata"]["annotations"][naming::SA_TOKEN].is_string()) {
        return Ok(()); // not ours
    }
    let is_referenced = || {
        referenced
            || live_pods(cx, ns).iter().any(|p| {
                let r = pod_refs(p);
                if plural == "configmaps" {
                    r.configmaps.contains(name)
                } else {
                    r.secrets.contains(name)
                }
            })
    };
    let want = cx.t.get(plural, ns, name).filter(|_| !cx.paused && is_referenced());
    match (want, sobj) {
        (None, None) => Ok(()),
        (None, Some(s)) => Ok(cx.s.supers.delete(plural, &sns, name, uid(&s), None).await?),
        (Some(t), None) => {
            cx.ensure_namespace(ns).await?;
            let kind = if plural == "configmaps" { "ConfigMap" } else { "Secret" };
            let mut o = cx.super_object(&t, "v1", kind, ns, name);
            for f in ["data", "binaryData", "type", "immutable"] {
                if !t[f].is_null() {
                    o[f] = t[f].clone();
                }
            }
            Ok(cx.s.supers.create(plural, &sns, &o).await?)
        }
        (Some(t), Some(s)) => {
            let same = ["data", "binaryData"].iter().all(|f| t[*f] == s[*f] || (t[*f].is_null() && s[*f].as_object().is_some_and(|m| m.is_empty())))
                && naming::recorded_uid(&s) == uid(&t);
            if same {
                return Ok(());
            }
            let immutable = s["immutable"].as_bool().unwrap_or(false) || t["type"] != s["type"] && plural == "secrets";
            if immutable || naming::recorded_uid(&s) != uid(&t) {
                // Replaced by deleting; the watch brings the key back to create the new one.
                return Ok(cx.s.supers.delete(plural, &sns, name, uid(&s), None).await?);
            }
            let mut o = (*s).clone();
            o["data"] = t["data"].clone();
            o["binaryData"] = t["binaryData"].clone();
            Ok(cx.s.supers.replace(plural, &sns, &o).await?)
        }
    }
}

/// The Secret holding a service account's token (from the tenant's TokenRequest API), the
/// tenant's CA and the tenant namespace, for pods that mount the account's token.
pub async fn sa_token(cx: &Cx<'_>, ns: &str, sa: &str) -> Result<()> {
    sa_token_with(cx, ns, sa, false).await
}

async fn sa_token_with(cx: &Cx<'_>, ns: &str, sa: &str, referenced: bool) -> Result<()> {
    let sns = cx.sns(ns);
    let name = token_secret_name(sa);
    let owner = cx.owner(ns, &name);
    let sobj = cx.s.supers.get("secrets", &sns, &name);
    if sobj.as_ref().is_some_and(|s| !naming::owned_by(s, &owner) || s["metadata"]["annotations"][naming::SA_TOKEN] != sa) {
        return Ok(());
    }
    let needed = !cx.paused && (referenced || live_pods(cx, ns).iter().any(|p| pod_refs(p).token_sa.as_deref() == Some(sa)));
    let ca = cx.t.get("configmaps", ns, "kube-root-ca.crt").and_then(|c| c["data"]["ca.crt"].as_str().map(String::from)).unwrap_or_default();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    match (needed, sobj) {
        (false, None) => Ok(()),
        (false, Some(s)) => Ok(cx.s.supers.delete("secrets", &sns, &name, uid(&s), None).await?),
        (true, cur) => {
            if let Some(s) = &cur {
                let expires = s["metadata"]["annotations"][naming::TOKEN_EXPIRES].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                let fresh = expires.is_some_and(|e| (e.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds() > TOKEN_SECONDS / 4);
                if fresh && s["data"]["ca.crt"].as_str() == Some(b64(&ca).as_str()) {
                    return Ok(());
                }
            }
            let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": TOKEN_SECONDS}});
            let r = cx.t.write(Op::Token, "serviceaccounts", ns, sa, &req, "").await?;
            cx.check("token request", &r, &[])?;
            let answer: Value = serde_json::from_slice(&r.object).unwrap_or(Value::Null);
            let token = answer["status"]["token"].as_str().unwrap_or("").to_string();
            let exp = answer["status"]["expirationTimestamp"].as_str().unwrap_or("").to_string();
            let mut o = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "namespace": sns, "annotations": {naming::SA_TOKEN: sa, naming::TOKEN_EXPIRES: exp}},
                "data": {"token": b64(&token), "ca.crt": b64(&ca), "namespace": b64(ns)}});
            naming::mark(&mut o, &owner, "");
            cx.ensure_namespace(ns).await?;
            match cur {
                None => Ok(cx.s.supers.create("secrets", &sns, &o).await?),
                Some(s) => {
                    o["metadata"]["resourceVersion"] = s["metadata"]["resourceVersion"].clone();
                    Ok(cx.s.supers.replace("secrets", &sns, &o).await?)
                }
            }
        }
    }
}

/// A super namespace whose tenant namespace is gone is deleted (created on demand by the
/// objects that need it).
pub async fn namespace(cx: &Cx<'_>, ns: &str) -> Result<()> {
    let sns = cx.sns(ns);
    let Some(s) = cx.s.supers.get("namespaces", "", &sns) else { return Ok(()) };
    if !naming::owned_by(&s, &cx.owner(ns, ns)) || cx.t.get("namespaces", "", ns).is_some() || s["metadata"]["deletionTimestamp"].is_string() {
        return Ok(());
    }
    Ok(cx.s.supers.delete("namespaces", "", &sns, uid(&s), None).await?)
}

/// The tenant's own API service is not synced: pods reach the tenant master directly.
fn is_api_service(ns: &str, name: &str) -> bool {
    ns == "default" && name == "kubernetes"
}

fn service_spec(t: &Value) -> Value {
    let mut spec = t["spec"].clone();
    if let Some(m) = spec.as_object_mut() {
        let headless = m.get("clusterIP").and_then(|v| v.as_str()) == Some("None");
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort"] {
            m.remove(f);
        }
        if headless {
            m.insert("clusterIP".into(), json!("None"));
        }
    }
    for p in spec["ports"].as_array_mut().into_iter().flatten() {
        if let Some(m) = p.as_object_mut() {
            m.remove("nodePort");
        }
    }
    spec
}

fn comparable_service_spec(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(m) = s.as_object_mut() {
        for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort", "internalTrafficPolicy"] {
            m.remove(f);
        }
    }
    for p in s["ports"].as_array_mut().into_iter().flatten() {
        if let Some(m) = p.as_object_mut() {
            m.remove("nodePort");
        }
    }
    s
}

/// Services downward (the super cluster allocates its own ClusterIP and node ports); the
/// load-balancer status upward.
pub async fn service(cx: &Cx<'_>, ns: &str, name: &str) -> Result<()> {
    if is_api_service(ns, name) {
        return Ok(());
    }
    let sns = cx.sns(ns);
    let sobj = cx.s.supers.get("services", &sns, name);
    if sobj.as_ref().is_some_and(|s| !naming::owned_by(s, &cx.owner(ns, name))) {
        return Ok(());
    }
    let t = cx.t.get("services", ns, name).filter(|t| !t["metadata"]["deletionTimestamp"].is_string());
    match (t, sobj) {
        (None, None) => Ok(()),
        (None, Some(s)) => Ok(cx.s.supers.delete("services", &sns, name, uid(&s), None).await?),
        (Some(t), None) => {
            cx.ensure_namespace(ns).await?;
            let mut o = cx.super_object(&t, "v1", "Service", ns, name);
            o["spec"] = service_spec(&t);
            Ok(cx.s.supers.create("services", &sns, &o).await?)
        }
        (Some(t), Some(s)) => {
            if naming::recorded_uid(&s) != uid(&t) {
                return Ok(cx.s.supers.delete("services", &sns, name, uid(&s), None).await?);
            }
            let want = service_spec(&t);
            if comparable_service_spec(&want) != comparable_service_spec(&s["spec"]) {
                let mut o = (*s).clone();
                let mut spec = want;
                for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                    spec[f] = s["spec"][f].clone();
                }
                o["spec"] = spec;
                cx.s.supers.replace("services", &sns, &o).await?;
            }
            let lb = &s["status"]["loadBalancer"];
            let tlb = &t["status"]["loadBalancer"];
            let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(|m| m.is_empty());
            if lb != tlb && !(empty(lb) && empty(tlb)) {
                let mut st = if t["status"].is_object() { t["status"].clone() } else { json!({}) };
                st["loadBalancer"] = if lb.is_null() { json!({}) } else { lb.clone() };
                let r = cx.t.write(Op::UpdateStatus, "services", ns, name, &json!({"status": st}), uid(&t)).await?;
                cx.check("service status", &r, &[404, 409])?;
            }
            Ok(())
        }
    }
}

/// Endpoints of selector-less services downward (services with a selector get theirs from the
/// super cluster's endpoints controller).
pub async fn endpoints(cx: &Cx<'_>, ns: &str, name: &str) -> Result<()> {
    if is_api_service(ns, name) {
        return Ok(());
    }
    let sns = cx.sns(ns);
    let sobj = cx.s.supers.get("endpoints", &sns, name);
    if sobj.as_ref().is_some_and(|s| !naming::owned_by(s, &cx.owner(ns, name))) {
        return Ok(());
    }
    let selectorless = cx.t.get("services", ns, name).is_some_and(|s| s["spec"]["selector"].as_object().is_none_or(|m| m.is_empty()));
    let t = cx.t.get("endpoints", ns, name).filter(|_| selectorless);
    match (t, sobj) {
        (None, None) => Ok(()),
        (None, Some(s)) => Ok(cx.s.supers.delete("endpoints", &sns, name, uid(&s), None).await?),
        (Some(t), None) => {
            cx.ensure_namespace(ns).await?;
            let mut o = cx.super_object(&t, "v1", "Endpoints", ns, name);
            o["subsets"] = t["subsets"].clone();
            Ok(cx.s.supers.create("endpoints", &sns, &o).await?)
        }
        (Some(t), Some(s)) => {
            let norm = |v: &Value| if v.is_null() { json!([]) } else { v.clone() };
            if norm(&t["subsets"]) == norm(&s["subsets"]) {
                return Ok(());
            }
            let mut o = (*s).clone();
            o["subsets"] = t["subsets"].clone();
            Ok(cx.s.supers.replace("endpoints", &sns, &o).await?)
        }
    }
}

/// PVCs downward (without the tenant's volumeName); phase, capacity and access modes upward.
pub async fn pvc(cx: &Cx<'_>, ns: &str, name: &str) -> Result<()> {
    let sns = cx.sns(ns);
    let sobj = cx.s.supers.get("persistentvolumeclaims", &sns, name);
    if sobj.as_ref().is_some_and(|s| !naming::owned_by(s, &cx.owner(ns, name))) {
        return Ok(());
    }
    let t = cx.t.get("persistentvolumeclaims", ns, name).filter(|t| !t["metadata"]["deletionTimestamp"].is_string());
    match (t, sobj) {
        (None, None) => Ok(()),
        (None, Some(s)) => Ok(cx.s.supers.delete("persistentvolumeclaims", &sns, name, uid(&s), None).await?),
        (Some(t), None) => {
            cx.ensure_namespace(ns).await?;
            let mut o = cx.super_object(&t, "v1", "PersistentVolumeClaim", ns, name);
            let mut spec = t["spec"].clone();
            if let Some(m) = spec.as_object_mut() {
                m.remove("volumeName");
            }
            o["spec"] = spec;
            Ok(cx.s.supers.create("persistentvolumeclaims", &sns, &o).await?)
        }
        (Some(t), Some(s)) => {
            let mut st = if t["status"].is_object() { t["status"].clone() } else { json!({}) };
            let mut changed = false;
            for f in ["phase", "capacity", "accessModes"] {
                if !s["status"][f].is_null() && s["status"][f] != t["status"][f] {
                    st[f] = s["status"][f].clone();
                    changed = true;
                }
            }
            if changed {
                let r = cx.t.write(Op::UpdateStatus, "persistentvolumeclaims", ns, name, &json!({"status": st}), uid(&t)).await?;
                cx.check("PVC status", &r, &[404, 409])?;
            }
            Ok(())
        }
    }
}

/// An Event in a tenant's super namespace about one of the tenant's pods goes up to the tenant,
/// about the tenant's pod (created once; later count updates are not copied).
pub async fn event(cx: &Cx<'_>, ns: &str, name: &str) -> Result<()> {
    let sns = cx.sns(ns);
    let Some(ev) = cx.s.supers.get("events", &sns, name) else { return Ok(()) };
    let io = &ev["involvedObject"];
    if io["kind"] != "Pod" {
        return Ok(());
    }
    let Some(pname) = io["name"].as_str() else { return Ok(()) };
    let Some(sp) = cx.s.supers.get("pods", &sns, pname) else { return Ok(()) };
    if !naming::owned_by(&sp, &cx.owner(ns, pname)) || sp["metadata"]["uid"] != io["uid"] {
        return Ok(());
    }
    let Some(tp) = cx.t.get("pods", ns, pname) else { return Ok(()) };
    if uid(&tp) != naming::recorded_uid(&sp) {
        return Ok(());
    }
    let mut o = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": pname, "uid": uid(&tp), "fieldPath": io["fieldPath"]}});
    for f in
        ["reason", "message", "type", "count", "firstTimestamp", "lastTimestamp", "eventTime", "source", "reportingComponent", "reportingInstance", "action"]
    {
        if !ev[f].is_null() {
            o[f] = ev[f].clone();
        }
    }
    let r = cx.t.write(Op::Create, "events", ns, "", &o, "").await?;
    cx.check("event", &r, &[404, 409])
}
