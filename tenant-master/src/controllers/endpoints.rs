//! The endpoints controller, after upstream's: for every Service with a selector (and not of
//! type ExternalName) an Endpoints object of the same name listing the matching pods: ready
//! ones in `addresses`, unready ones in `notReadyAddresses` (all ready with
//! `publishNotReadyAddresses`), terminating ones left out (unless `publishNotReadyAddresses`,
//! as upstream), finished ones and ones without an IP always; each with ip, nodeName, targetRef and
//! hostname (for the service's subdomain); ports resolved from `targetPort`, subsets repacked
//! into the canonical layout ([`repack`]); the service's labels copied (plus
//! `service.kubernetes.io/headless` for headless services) and the
//! `endpoints.kubernetes.io/last-change-trigger-time` annotation set; more than 1000
//! addresses truncated with `endpoints.kubernetes.io/over-capacity: truncated`. The Endpoints
//! object is deleted with its Service. Endpoints of selector-less services (such as the
//! `kubernetes` Service, kept by bootstrap) are never written.
//!
//! Simplified: upstream orders subsets and ports by an MD5 of Go's `spew` dump of each; kplex
//! sorts them by their canonical JSON instead (equally stable, not byte-identical).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::endpointslice::util::{self, TriggerTimeTracker, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME};
use super::podutil;
use super::runtime::ctx::{ENDPOINTS, PODS, SERVICES};
use super::runtime::{Action, Controller, Ctx, ObjKey};
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::DeleteOpts;

/// Addresses an Endpoints object holds at most.
pub const MAX_CAPACITY: usize = 1000;
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Endpoints holding a leader-election record are never treated as leftovers.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

/// Runs until the process ends. Keys are services.
pub async fn run(ctx: Ctx) {
    let tracker = Arc::new(TriggerTimeTracker::default());
    delete_leftovers(&ctx).await;
    let c = ctx.clone();
    Controller::new("endpoint", ctx)
        .watches(SERVICES, |ch| vec![ch.key()])
        .watches(PODS, move |ch| util::services_for_pod_change(&c, ch))
        .watches(ENDPOINTS, |ch| if ch.object.is_none() { vec![ch.key()] } else { vec![] })
        .run(move |ctx, key| {
            let t = tracker.clone();
            async move { reconcile(&ctx, &key, &t).await }
        })
        .await
}

/// At start, deletes Endpoints whose Service is gone, as upstream's `checkLeftoverEndpoints`
/// (deletions missed while the controller was not running).
async fn delete_leftovers(ctx: &Ctx) {
    if let Err(e) = ctx.store.consistent().await {
        tracing::warn!(error = %e.message, "endpoint controller: skipping the leftover check");
        return;
    }
    let leftovers: Vec<ObjKey> = ctx
        .list(ENDPOINTS, "")
        .iter()
        .filter(|e| e.value()["metadata"]["annotations"][LEADER_ANNOTATION].is_null())
        .filter(|e| ctx.get(SERVICES, &e.namespace, &e.name).is_none())
        .map(|e| ObjKey::new(e.namespace.clone(), e.name.clone()))
        .collect();
    for k in leftovers {
        if let Err(e) = ctx.delete(ENDPOINTS, &k.namespace, &k.name, &DeleteOpts::default()).await {
            tracing::warn!(endpoints = %k, error = %e.message, "deleting leftover endpoints");
        }
    }
}

/// The address of a pod for a service (`podToEndpointAddressForService`): the pod IP of the
/// service's (first) IP family.
fn address(svc: &Value, pod: &Value) -> Option<Value> {
    let want_v6 = match svc["spec"]["ipFamilies"][0].as_str() {
        Some(f) => f == "IPv6",
        None if util::is_service_ip_set(svc) => util::is_ipv6(svc["spec"]["clusterIP"].as_str().unwrap_or("")),
        None => util::is_ipv6(pod["status"]["podIP"].as_str().unwrap_or("")),
    };
    let ip = util::pod_ips(pod).into_iter().find(|ip| util::is_ipv6(ip) == want_v6)?;
    let mut a = json!({
        "ip": ip,
        "nodeName": pod["spec"]["nodeName"].as_str().unwrap_or(""),
        "targetRef": {"kind": "Pod", "namespace": meta::namespace(pod), "name": meta::name(pod), "uid": meta::uid(pod)},
    });
    if util::should_set_hostname(pod, svc) {
        a["hostname"] = pod["spec"]["hostname"].clone();
    }
    Some(a)
}

/// An EndpointPort from a service port and the resolved number (name and protocol omitted when
/// empty, as Go's JSON does).
fn endpoint_port(sp: &Value, port: i64) -> Value {
    let mut p = Map::new();
    if let Some(n) = sp["name"].as_str().filter(|n| !n.is_empty()) {
        p.insert("name".into(), json!(n));
    }
    p.insert("port".into(), json!(port));
    p.insert("protocol".into(), json!(sp["protocol"].as_str().unwrap_or("TCP")));
    if let Some(a) = sp.get("appProtocol").filter(|a| !a.is_null()) {
        p.insert("appProtocol".into(), a.clone());
    }
    Value::Object(p)
}

/// The subsets for a service and its selected pods, repacked.
pub fn subsets_for(svc: &Value, pods: &[Arc<Value>]) -> Vec<Value> {
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let svc_ports: Vec<&Value> = svc["spec"]["ports"].as_array().into_iter().flatten().collect();
    let headless = svc["spec"]["clusterIP"] == "None";
    let mut subsets = Vec::new();
    for pod in pods {
        if !util::should_pod_be_in_endpoints(pod, publish) {
            continue;
        }
        let Some(addr) = address(svc, pod) else { continue };
        let field = if publish || podutil::is_ready(pod) { "addresses" } else { "notReadyAddresses" };
        if svc_ports.is_empty() {
            if headless {
                subsets.push(json!({field: [addr]}));
            }
            continue;
        }
        for sp in &svc_ports {
            if let Some(port) = util::find_port(pod, sp) {
                subsets.push(json!({field: [addr.clone()], "ports": [endpoint_port(sp, port)]}));
            }
        }
    }
    repack(&subsets)
}

type AddrKey = (String, String);

fn addr_key(a: &Value) -> AddrKey {
    (a["ip"].as_str().unwrap_or("").to_string(), a["targetRef"]["uid"].as_str().unwrap_or("").to_string())
}

/// `RepackSubsets`: expands subsets to (address, port, ready) triples and packs them again so
/// every subset holds the addresses that offer exactly the same ports. An address both ready
/// and not ready for a port is not ready; addresses without ports are kept. Addresses are
/// sorted by IP and pod UID, ports and subsets by their canonical JSON.
pub fn repack(subsets: &[Value]) -> Vec<Value> {
    let mut addrs: BTreeMap<AddrKey, Value> = BTreeMap::new();
    // Port (canonical JSON, "" for the no-port sentinel) -> (port, address -> ready).
    let mut by_port: BTreeMap<String, (Option<Value>, BTreeMap<AddrKey, bool>)> = BTreeMap::new();
    for ss in subsets {
        let ports: Vec<Option<&Value>> = match ss["ports"].as_array().filter(|p| !p.is_empty()) {
            Some(p) => p.iter().map(Some).collect(),
            None => vec![None],
        };
        for port in ports {
            let pk = port.map(podutil::canonical_json).unwrap_or_default();
            let entry = by_port.entry(pk).or_insert_with(|| (port.cloned(), BTreeMap::new()));
            for (list, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for a in ss[list].as_array().into_iter().flatten() {
                    let k = addr_key(a);
                    addrs.entry(k.clone()).or_insert_with(|| a.clone());
                    let cur = entry.1.entry(k).or_insert(ready);
                    // Not ready wins.
                    *cur = *cur && ready;
                }
            }
        }
    }
    // Ports offered by exactly the same addresses (with the same readiness) share a subset.
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Vec<Option<Value>>> = BTreeMap::new();
    for (_, (port, set)) in by_port {
        if set.is_empty() {
            continue;
        }
        groups.entry(set.into_iter().collect()).or_default().push(port);
    }
    let mut out: Vec<Value> = Vec::new();
    for (set, ports) in groups {
        let mut ss = Map::new();
        let ready: Vec<Value> = set.iter().filter(|(_, r)| *r).map(|(k, _)| addrs[k].clone()).collect();
        let not_ready: Vec<Value> = set.iter().filter(|(_, r)| !*r).map(|(k, _)| addrs[k].clone()).collect();
        if !ready.is_empty() {
            ss.insert("addresses".into(), Value::Array(ready));
        }
        if !not_ready.is_empty() {
            ss.insert("notReadyAddresses".into(), Value::Array(not_ready));
        }
        let mut ports: Vec<Value> = ports.into_iter().flatten().collect();
        if !ports.is_empty() {
            ports.sort_by_key(podutil::canonical_json);
            ss.insert("ports".into(), Value::Array(ports));
        }
        out.push(Value::Object(ss));
    }
    out.sort_by_key(podutil::canonical_json);
    out
}

fn count(subsets: &[Value], field: &str) -> usize {
    subsets.iter().map(|s| s[field].as_array().map(|a| a.len()).unwrap_or(0)).sum()
}

/// `truncateEndpoints`: keeps at most [`MAX_CAPACITY`] addresses, ready ones first, spread over
/// the subsets in proportion to their sizes. True if anything was cut.
pub fn truncate(subsets: &mut [Value]) -> bool {
    let (ready, not_ready) = (count(subsets, "addresses"), count(subsets, "notReadyAddresses"));
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total, field) =
        if truncate_ready { (MAX_CAPACITY, ready, "addresses") } else { (MAX_CAPACITY - ready, not_ready, "notReadyAddresses") };
    let mut can_add = max;
    for ss in subsets.iter_mut() {
        let n = ss[field].as_array().map(|a| a.len()).unwrap_or(0);
        let share = ((n as f64 / total as f64) * max as f64).ceil() as usize;
        let keep = share.min(can_add);
        if let Some(a) = ss[field].as_array_mut() {
            a.truncate(keep);
            can_add -= a.len();
        }
        if truncate_ready {
            ss["notReadyAddresses"] = json!([]);
        }
        for f in ["addresses", "notReadyAddresses"] {
            if ss[f].as_array().map(|a| a.is_empty()).unwrap_or(false) {
                ss.as_object_mut().map(|o| o.remove(f));
            }
        }
    }
    true
}

fn labels_of(v: &Value) -> Map<String, Value> {
    v["metadata"]["labels"].as_object().cloned().unwrap_or_default()
}

async fn reconcile(ctx: &Ctx, key: &ObjKey, tracker: &TriggerTimeTracker) -> Result<Action, ApiError> {
    let (ns, name) = (key.namespace.as_str(), key.name.as_str());
    let Some(svc) = ctx.get(SERVICES, ns, name) else {
        ctx.delete(ENDPOINTS, ns, name, &DeleteOpts::default()).await?;
        tracker.delete(ns, name);
        return Ok(Action::Done);
    };
    let Some(sel) = util::managed_selector(&svc) else { return Ok(Action::Done) };
    let pods: Vec<Arc<Value>> = ctx.list_selected(PODS, ns, &sel).iter().map(|o| o.value()).collect();
    let trigger = tracker.compute(&svc, &pods);
    let subsets = subsets_for(&svc, &pods);

    let current = ctx.get(ENDPOINTS, ns, name);
    let mut want_labels = labels_of(&svc);
    if util::is_service_ip_set(&svc) {
        want_labels.remove(HEADLESS_LABEL);
    } else {
        want_labels.insert(HEADLESS_LABEL.into(), json!(""));
    }
    if let Some(cur) = &current {
        let cur_subsets: Vec<Value> = cur["subsets"].as_array().cloned().unwrap_or_default();
        let over = count(&cur_subsets, "addresses") + count(&cur_subsets, "notReadyAddresses") > MAX_CAPACITY;
        let capacity_ok = !over && cur["metadata"]["annotations"][OVER_CAPACITY].is_null();
        if cur_subsets == subsets && labels_of(cur) == want_labels && capacity_ok {
            return Ok(Action::Done);
        }
    }
    let mut ep = match &current {
        Some(c) => (**c).clone(),
        None => json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}}),
    };
    let mut subsets = subsets;
    let truncated = truncate(&mut subsets);
    {
        let md = meta::metadata_mut(&mut ep);
        if want_labels.is_empty() {
            md.remove("labels");
        } else {
            md.insert("labels".into(), Value::Object(want_labels));
        }
        let ann = md.entry("annotations").or_insert_with(|| json!({}));
        if !ann.is_object() {
            *ann = json!({});
        }
        let ann = ann.as_object_mut().expect("object");
        match trigger {
            Some(t) => ann.insert(LAST_CHANGE_TRIGGER_TIME.into(), json!(util::format_trigger_time(t))),
            None => ann.remove(LAST_CHANGE_TRIGGER_TIME),
        };
        if truncated {
            ann.insert(OVER_CAPACITY.into(), json!("truncated"));
        } else {
            ann.remove(OVER_CAPACITY);
        }
        if ann.is_empty() {
            md.remove("annotations");
        }
    }
    if subsets.is_empty() {
        ep.as_object_mut().map(|o| o.remove("subsets"));
    } else {
        ep["subsets"] = Value::Array(subsets);
    }
    let res = match current {
        None => ctx.create(ENDPOINTS, ns, ep.clone()).await.map(|_| ()),
        Some(_) => ctx.update(ENDPOINTS, ep.clone()).await.map(|_| ()),
    };
    match res {
        Ok(()) => Ok(Action::Done),
        Err(e) if is_namespace_terminating(&e) => Ok(Action::Done),
        Err(e) => {
            if e.code != 409 {
                let (reason, what) = if current_is_new(&ep) {
                    ("FailedToCreateEndpoint", "create endpoint for service")
                } else {
                    ("FailedToUpdateEndpoint", "update endpoint")
                };
                ctx.event(&ep, "Warning", reason, format!("Failed to {what} {ns}/{name}: {}", e.message));
            }
            Err(e)
        }
    }
}

fn current_is_new(ep: &Value) -> bool {
    meta::resource_version(ep).is_empty()
}

/// A create refused because the namespace is being deleted (retrying cannot help).
pub fn is_namespace_terminating(e: &ApiError) -> bool {
    e.code == 403
        && e.details.as_ref().map(|d| d["causes"].as_array().into_iter().flatten().any(|c| c["reason"] == "NamespaceTerminating")).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str, uid: &str) -> Value {
        json!({"ip": ip, "targetRef": {"kind": "Pod", "uid": uid}})
    }

    #[test]
    fn repack_groups_addresses_by_the_ports_they_offer() {
        let p80 = json!({"name": "http", "port": 80, "protocol": "TCP"});
        let p443 = json!({"name": "https", "port": 443, "protocol": "TCP"});
        let subsets = vec![
            json!({"addresses": [addr("10.0.0.2", "b")], "ports": [p80.clone()]}),
            json!({"addresses": [addr("10.0.0.1", "a")], "ports": [p80.clone()]}),
            json!({"addresses": [addr("10.0.0.1", "a")], "ports": [p443.clone()]}),
            json!({"notReadyAddresses": [addr("10.0.0.3", "c")], "ports": [p80.clone()]}),
            // The same address ready on one subset, not ready on another: not ready wins.
            json!({"addresses": [addr("10.0.0.2", "b")], "ports": [p443.clone()]}),
            json!({"notReadyAddresses": [addr("10.0.0.2", "b")], "ports": [p443.clone()]}),
        ];
        let r = repack(&subsets);
        assert_eq!(r.len(), 2, "{r:#?}");
        let by80 = r.iter().find(|s| s["ports"][0] == p80).unwrap();
        assert_eq!(by80["addresses"], json!([addr("10.0.0.1", "a"), addr("10.0.0.2", "b")]));
        assert_eq!(by80["notReadyAddresses"], json!([addr("10.0.0.3", "c")]));
        let by443 = r.iter().find(|s| s["ports"][0] == p443).unwrap();
        assert_eq!(by443["addresses"], json!([addr("10.0.0.1", "a")]));
        assert_eq!(by443["notReadyAddresses"], json!([addr("10.0.0.2", "b")]));
        // Same addresses for both ports: one subset with both ports.
        let both = repack(&[json!({"addresses": [addr("10.0.0.1", "a")], "ports": [p443.clone(), p80.clone()]})]);
        assert_eq!(both.len(), 1);
        assert_eq!(both[0]["ports"].as_array().unwrap().len(), 2);
        // Headless services without ports keep their addresses.
        let bare = repack(&[json!({"addresses": [addr("10.0.0.1", "a")]}), json!({"notReadyAddresses": [addr("10.0.0.2", "b")]})]);
        assert_eq!(bare, vec![json!({"addresses": [addr("10.0.0.1", "a")], "notReadyAddresses": [addr("10.0.0.2", "b")]})]);
        assert!(repack(&[]).is_empty());
    }

    #[test]
    fn subsets_follow_readiness_and_named_ports() {
        let svc = json!({"metadata": {"name": "web", "namespace": "n"}, "spec": {"clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]}});
        let pod = |name: &str, ip: &str, ready: &str, port: i64| {
            Arc::new(json!({"metadata": {"name": name, "namespace": "n", "uid": name},
                "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": [{"name": "web", "containerPort": port, "protocol": "TCP"}]}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [{"type": "Ready", "status": ready}]}}))
        };
        let pods = vec![pod("a", "10.244.0.5", "True", 8080), pod("b", "10.244.0.6", "False", 8080), pod("c", "10.244.0.7", "True", 9090)];
        let s = subsets_for(&svc, &pods);
        assert_eq!(s.len(), 2);
        let s8080 = s.iter().find(|s| s["ports"][0]["port"] == 8080).unwrap();
        assert_eq!(s8080["addresses"][0]["ip"], "10.244.0.5");
        assert_eq!(s8080["addresses"][0]["nodeName"], "node-1");
        assert_eq!(s8080["addresses"][0]["targetRef"], json!({"kind": "Pod", "namespace": "n", "name": "a", "uid": "a"}));
        assert_eq!(s8080["notReadyAddresses"][0]["ip"], "10.244.0.6");
        assert_eq!(s8080["ports"][0], json!({"name": "http", "port": 8080, "protocol": "TCP"}));
        let mut publish = svc.clone();
        publish["spec"]["publishNotReadyAddresses"] = json!(true);
        let s = subsets_for(&publish, &pods);
        assert_eq!(count(&s, "notReadyAddresses"), 0);
        assert_eq!(count(&s, "addresses"), 3);
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let many = |n: usize, base: usize| {
            (0..n).map(|i| addr(&format!("10.1.{}.{}", (base + i) / 250, (base + i) % 250), &format!("u{}", base + i))).collect::<Vec<_>>()
        };
        let mut s = vec![json!({"addresses": many(900, 0), "notReadyAddresses": many(300, 1000), "ports": [{"port": 80}]})];
        assert!(truncate(&mut s));
        assert_eq!(count(&s, "addresses"), 900);
        assert_eq!(count(&s, "notReadyAddresses"), 100);
        let mut s = vec![json!({"addresses": many(700, 0)}), json!({"addresses": many(700, 2000), "notReadyAddresses": many(5, 5000)})];
        assert!(truncate(&mut s));
        assert_eq!(count(&s, "addresses"), 1000);
        assert_eq!(count(&s, "notReadyAddresses"), 0);
        assert!(s[1].get("notReadyAddresses").is_none());
        let mut small = vec![json!({"addresses": many(3, 0)})];
        assert!(!truncate(&mut small));
    }
}
