//! The EndpointSlice reconciler, after upstream's `k8s.io/endpointslice` `Reconciler`: from a
//! service, its pods and its existing slices, decides which slices to create, update and
//! delete. Endpoints are grouped by address type and by the set of ports they serve; existing
//! slices are updated in place where they can be (endpoints kept, changed ones rewritten,
//! gone ones dropped), leftover endpoints fill the fullest updated slices first, then the
//! unchanged slice closest to full, then new slices of at most `max_per_slice` endpoints; a
//! slice that would be deleted while another is created is reused instead. A service without
//! endpoints keeps one empty placeholder slice per address type.
//!
//! Pure planning: no I/O, so it is unit-tested directly. Upstream picks endpoints out of Go
//! maps in random order; here they are taken in a stable order. Topology hints and traffic
//! distribution are not implemented.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::util::{self, HEADLESS_LABEL};
use crate::controllers::podutil;
use crate::meta;

/// `kubernetes.io/service-name`.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// `endpointslice.kubernetes.io/managed-by`.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of the managed-by label.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// What the reconciler decided.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<Value>,
    pub update: Vec<Value>,
    pub delete: Vec<Value>,
    /// Pods left out because their node is missing (the service is synced again later).
    pub missing_nodes: Vec<String>,
}

/// The inputs of one reconciliation.
pub struct Input<'a> {
    pub service: &'a Value,
    pub pods: &'a [Arc<Value>],
    /// The service's slices managed by this controller and not being deleted.
    pub existing: Vec<Value>,
    /// A node's zone label (`Some(None)`: the node has none; None: no such node).
    pub node_zone: &'a dyn Fn(&str) -> Option<Option<String>>,
    pub max_per_slice: usize,
}

/// Address types a service needs (`getAddressTypesForService`): from `ipFamilies`, else from
/// its ClusterIP, else both.
pub fn address_types(svc: &Value) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for f in svc["spec"]["ipFamilies"].as_array().into_iter().flatten() {
        match f.as_str() {
            Some("IPv4") => {
                out.insert("IPv4");
            }
            Some("IPv6") => {
                out.insert("IPv6");
            }
            _ => {}
        }
    }
    if !out.is_empty() {
        return out;
    }
    if util::is_service_ip_set(svc) {
        out.insert(if util::is_ipv6(svc["spec"]["clusterIP"].as_str().unwrap_or("")) { "IPv6" } else { "IPv4" });
        return out;
    }
    ["IPv4", "IPv6"].into_iter().collect()
}

/// The endpoint ports a pod serves for a service (`getEndpointPorts`).
pub fn endpoint_ports(svc: &Value, pod: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for sp in svc["spec"]["ports"].as_array().into_iter().flatten() {
        let Some(port) = util::find_port(pod, sp) else { continue };
        let mut p = json!({"name": sp["name"].as_str().unwrap_or(""), "port": port, "protocol": sp["protocol"].as_str().unwrap_or("TCP")});
        if let Some(a) = sp.get("appProtocol").filter(|a| !a.is_null()) {
            p["appProtocol"] = a.clone();
        }
        out.push(p);
    }
    out
}

/// `NewPortMapKey`: identifies a set of ports whatever their order.
pub(crate) fn port_key(ports: &[Value]) -> String {
    let mut keys: Vec<String> = ports.iter().map(podutil::canonical_json).collect();
    keys.sort();
    keys.join("|")
}

fn slice_ports(slice: &Value) -> Vec<Value> {
    slice["ports"].as_array().cloned().unwrap_or_default()
}

fn slice_endpoints(slice: &Value) -> Vec<Value> {
    slice["endpoints"].as_array().cloned().unwrap_or_default()
}

/// `podToEndpoint`.
pub fn pod_to_endpoint(pod: &Value, zone: Option<&str>, svc: &Value, address_type: &str) -> Value {
    let serving = podutil::is_ready(pod);
    let terminating = meta::is_deleting(pod);
    let ready = svc["spec"]["publishNotReadyAddresses"] == true || (serving && !terminating);
    let addresses: Vec<String> = util::pod_ips(pod).into_iter().filter(|ip| util::is_ipv6(ip) == (address_type == "IPv6")).collect();
    let mut ep = json!({
        "addresses": addresses,
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": meta::namespace(pod), "name": meta::name(pod), "uid": meta::uid(pod)},
    });
    if util::should_set_hostname(pod, svc) {
        ep["hostname"] = pod["spec"]["hostname"].clone();
    }
    if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        ep["nodeName"] = json!(n);
    }
    if let Some(z) = zone.filter(|z| !z.is_empty()) {
        ep["zone"] = json!(z);
    }
    ep
}

/// The identity of an endpoint across syncs (`hashEndpoint`): its sorted addresses, hostname
/// and pod. Other attributes may change in place.
pub(crate) fn endpoint_key(ep: &Value) -> String {
    let mut addrs: Vec<&str> = ep["addresses"].as_array().into_iter().flatten().filter_map(|a| a.as_str()).collect();
    addrs.sort();
    let t = &ep["targetRef"];
    format!(
        "{}|{}|{}/{}",
        addrs.join(","),
        ep["hostname"].as_str().unwrap_or(""),
        t["namespace"].as_str().unwrap_or(""),
        t["name"].as_str().unwrap_or("")
    )
}

/// `EndpointsEqualBeyondHash`: node, zone, conditions and pod reference (ignoring its
/// resourceVersion) unchanged.
pub(crate) fn same_beyond_key(a: &Value, b: &Value) -> bool {
    let target = |e: &Value| {
        let mut t = e["targetRef"].clone();
        if let Some(o) = t.as_object_mut() {
            o.remove("resourceVersion");
        }
        t
    };
    let cond = |e: &Value, c: &str| e["conditions"][c].clone();
    a["nodeName"] == b["nodeName"]
        && a["zone"] == b["zone"]
        && ["ready", "serving", "terminating"].iter().all(|c| cond(a, c) == cond(b, c))
        && target(a) == target(b)
}

fn is_reserved_label(k: &str) -> bool {
    k == LABEL_SERVICE_NAME || k == LABEL_MANAGED_BY || k == HEADLESS_LABEL
}

/// `setEndpointSliceLabels`: the service's labels (reserved ones skipped) plus the reserved
/// ones this controller sets; and whether the non-reserved labels differ from the slice's.
fn slice_labels(slice: &Value, svc: &Value) -> (Map<String, Value>, bool) {
    let own: Map<String, Value> = slice["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut want: Map<String, Value> = svc["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let changed = own != want;
    if !util::is_service_ip_set(svc) {
        want.insert(HEADLESS_LABEL.into(), json!(""));
    }
    want.insert(LABEL_SERVICE_NAME.into(), json!(meta::name(svc)));
    want.insert(LABEL_MANAGED_BY.into(), json!(CONTROLLER_NAME));
    (want, changed)
}

/// `ownedBy`: the slice has an owner reference to this very service.
pub fn owned_by(slice: &Value, svc: &Value) -> bool {
    slice["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["uid"] == meta::uid(svc) && o["kind"] == "Service" && o["apiVersion"] == "v1")
}

/// `newEndpointSlice`: an empty slice of the service (generateName `<service>-`).
fn new_slice(svc: &Value, ports: &[Value], address_type: &str) -> Value {
    let mut s = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": format!("{}-", meta::name(svc)),
            "namespace": meta::namespace(svc),
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta::name(svc), "uid": meta::uid(svc), "controller": true, "blockOwnerDeletion": true}],
        },
        "addressType": address_type,
        "endpoints": [],
        "ports": ports,
    });
    let (labels, _) = slice_labels(&s, svc);
    s["metadata"]["labels"] = Value::Object(labels);
    s
}

/// Whether an existing slice is exactly the placeholder this service would get.
fn is_placeholder(slice: &Value, placeholder: &Value) -> bool {
    slice["metadata"]["labels"] == placeholder["metadata"]["labels"]
        && slice["addressType"] == placeholder["addressType"]
        && slice_endpoints(slice).is_empty()
        && slice_ports(slice).is_empty()
}

/// Plans the service's slices (`Reconciler.Reconcile`).
pub fn reconcile(input: Input) -> Plan {
    let svc = input.service;
    let types = address_types(svc);
    let mut plan = Plan::default();
    let mut by_type: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in input.existing.iter() {
        let t = s["addressType"].as_str().unwrap_or("");
        if types.contains(t) {
            by_type.entry(t.to_string()).or_default().push(s.clone());
        } else {
            plan.delete.push(s.clone());
        }
    }
    for t in types {
        let existing = by_type.remove(t).unwrap_or_default();
        by_address_type(&input, existing, t, &mut plan);
    }
    plan
}

/// `reconcileByAddressType`.
fn by_address_type(input: &Input, existing: Vec<Value>, address_type: &str, plan: &mut Plan) {
    let svc = input.service;
    let mut to_create = Vec::new();
    let mut to_update = Vec::new();
    let mut to_delete = Vec::new();
    let mut existing_by_ports: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in &existing {
        if owned_by(s, svc) {
            existing_by_ports.entry(port_key(&slice_ports(s))).or_default().push(s.clone());
        } else {
            to_delete.push(s.clone());
        }
    }
    // Desired endpoints grouped by the ports they serve.
    let mut desired: BTreeMap<String, (Vec<Value>, BTreeMap<String, Value>)> = BTreeMap::new();
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    for pod in input.pods {
        if !util::should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let node = pod["spec"]["nodeName"].as_str().unwrap_or("");
        let zone = match (input.node_zone)(node) {
            Some(z) => z,
            None => {
                // The pod garbage collector will remove it; until then leave it out (unless
                // the user asked for all addresses) and look again later.
                if !publish {
                    plan.missing_nodes.push(node.to_string());
                    continue;
                }
                None
            }
        };
        let ep = pod_to_endpoint(pod, zone.as_deref(), svc, address_type);
        if ep["addresses"].as_array().map(|a| a.is_empty()).unwrap_or(true) {
            continue;
        }
        let entry = desired.entry(port_key(&ports)).or_insert_with(|| (ports, BTreeMap::new()));
        entry.1.insert(endpoint_key(&ep), ep);
    }
    for (pk, (ports, eps)) in desired.iter_mut() {
        let existing = existing_by_ports.remove(pk).unwrap_or_default();
        let (c, u, d) = by_port_mapping(svc, existing, std::mem::take(eps), ports, address_type, input.max_per_slice);
        to_create.extend(c);
        to_update.extend(u);
        to_delete.extend(d);
    }
    // Port sets no longer wanted.
    for (_, slices) in existing_by_ports {
        to_delete.extend(slices);
    }
    // An empty service keeps one placeholder slice.
    if existing.len() == to_delete.len() && to_create.is_empty() {
        let placeholder = new_slice(svc, &[], address_type);
        if to_delete.len() == 1 && is_placeholder(&to_delete[0], &placeholder) {
            to_delete.clear();
        } else {
            to_create.push(placeholder);
        }
    }
    // Reuse slices about to be deleted instead of creating new ones (`finalize`).
    let mut i = 0;
    while i < to_delete.len() && !to_create.is_empty() {
        if to_delete[i]["addressType"] == address_type && owned_by(&to_delete[i], svc) {
            let mut s = to_create.pop().expect("not empty");
            let old = to_delete.remove(i);
            s["metadata"] = old["metadata"].clone();
            let (labels, _) = slice_labels(&s, svc);
            s["metadata"]["labels"] = Value::Object(labels);
            to_update.push(s);
        } else {
            i += 1;
        }
    }
    plan.create.extend(to_create);
    plan.update.extend(to_update);
    plan.delete.extend(to_delete);
}

/// `reconcileByPortMapping`: (create, update, delete) for the slices of one port set.
fn by_port_mapping(
    svc: &Value,
    existing: Vec<Value>,
    mut desired: BTreeMap<String, Value>,
    ports: &[Value],
    address_type: &str,
    max: usize,
) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();
    // 1. Keep desired endpoints where they are, rewrite changed ones, drop the rest.
    for s in existing {
        let name = meta::name(&s).to_string();
        let old_eps = slice_endpoints(&s);
        let mut kept = Vec::new();
        let mut changed = false;
        for ep in &old_eps {
            if let Some(want) = desired.remove(&endpoint_key(ep)) {
                changed |= !same_beyond_key(&want, ep);
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(&s, svc);
        if changed || kept.len() != old_eps.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
                by_name.insert(name, s);
            } else {
                let mut n = s.clone();
                n["endpoints"] = Value::Array(kept);
                n["metadata"]["labels"] = Value::Object(labels);
                to_update.insert(name.clone());
                by_name.insert(name, n);
            }
        } else if labels_changed {
            let mut n = s.clone();
            n["metadata"]["labels"] = Value::Object(labels);
            to_update.insert(name.clone());
            by_name.insert(name, n);
        } else {
            unchanged.insert(name.clone());
            by_name.insert(name, s);
        }
    }
    let pop = |d: &mut BTreeMap<String, Value>| d.pop_first().map(|(_, v)| v);
    // 2. Fill the slices being updated anyway, fullest first.
    if !desired.is_empty() && !to_update.is_empty() {
        let mut names: Vec<String> = to_update.iter().cloned().collect();
        names.sort_by_key(|n| std::cmp::Reverse(slice_endpoints(&by_name[n]).len()));
        for n in names {
            let s = by_name.get_mut(&n).expect("known slice");
            let mut eps = slice_endpoints(s);
            while eps.len() < max {
                let Some(ep) = pop(&mut desired) else { break };
                eps.push(ep);
            }
            s["endpoints"] = Value::Array(eps);
        }
    }
    // 3. The rest into the unchanged slice closest to full that takes them all, or new slices.
    let mut to_create = Vec::new();
    while !desired.is_empty() {
        let mut target: Option<String> = None;
        if desired.len() < max {
            let mut best = max;
            for n in &unchanged {
                let have = slice_endpoints(&by_name[n]).len();
                if have + desired.len() <= max && max - (have + desired.len()) < best {
                    best = max - (have + desired.len());
                    target = Some(n.clone());
                }
            }
        }
        let mut s = match &target {
            Some(n) => by_name[n].clone(),
            None => new_slice(svc, ports, address_type),
        };
        let mut eps = slice_endpoints(&s);
        while eps.len() < max {
            let Some(ep) = pop(&mut desired) else { break };
            eps.push(ep);
        }
        s["endpoints"] = Value::Array(eps);
        match target {
            Some(n) => {
                unchanged.remove(&n);
                to_update.insert(n.clone());
                by_name.insert(n, s);
            }
            None => to_create.push(s),
        }
    }
    let update = to_update.iter().map(|n| by_name[n].clone()).collect();
    let delete = to_delete.iter().map(|n| by_name[n].clone()).collect();
    (to_create, update, delete)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "n", "uid": "svc-uid", "labels": {"app": "web"}},
               "spec": {"clusterIP": "10.96.0.10", "ipFamilies": ["IPv4"], "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}})
    }

    fn pod(i: usize, ready: bool) -> Arc<Value> {
        let ip = format!("10.244.{}.{}", i / 200, i % 200 + 2);
        Arc::new(json!({"metadata": {"name": format!("p{i}"), "namespace": "n", "uid": format!("u{i}")},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c"}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
    }

    fn zone(n: &str) -> Option<Option<String>> {
        (n == "node-1").then(|| Some("zone-a".to_string()))
    }

    fn plan(pods: &[Arc<Value>], existing: Vec<Value>, max: usize) -> Plan {
        reconcile(Input { service: &svc(), pods, existing, node_zone: &zone, max_per_slice: max })
    }

    /// Gives created slices names, as the API would.
    fn created(p: &Plan) -> Vec<Value> {
        p.create
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut s = s.clone();
                s["metadata"]["name"] = json!(format!("web-{i}"));
                s
            })
            .collect()
    }

    #[test]
    fn new_slices_hold_at_most_max_endpoints() {
        let pods: Vec<_> = (0..7).map(|i| pod(i, i != 3)).collect();
        let p = plan(&pods, vec![], 3);
        assert_eq!(p.create.len(), 3);
        assert!(p.update.is_empty() && p.delete.is_empty());
        let s = &p.create[0];
        assert_eq!(s["metadata"]["generateName"], "web-");
        assert_eq!(s["metadata"]["labels"], json!({"app": "web", LABEL_SERVICE_NAME: "web", LABEL_MANAGED_BY: CONTROLLER_NAME}));
        assert_eq!(s["metadata"]["ownerReferences"][0]["uid"], "svc-uid");
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(s["ports"], json!([{"name": "http", "port": 8080, "protocol": "TCP"}]));
        let all: Vec<&Value> = p.create.iter().flat_map(|s| s["endpoints"].as_array().unwrap().iter()).collect();
        assert_eq!(all.len(), 7);
        let p3 = all.iter().find(|e| e["targetRef"]["name"] == "p3").unwrap();
        assert_eq!(p3["conditions"], json!({"ready": false, "serving": false, "terminating": false}));
        assert_eq!(p3["zone"], "zone-a");
        assert_eq!(p3["nodeName"], "node-1");
    }

    #[test]
    fn changes_are_made_in_place() {
        let pods: Vec<_> = (0..5).map(|i| pod(i, true)).collect();
        let first = created(&plan(&pods, vec![], 3));
        // Nothing changed: nothing to do.
        let p = plan(&pods, first.clone(), 3);
        assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty(), "{p:?}");
        // One pod unready: only its slice is rewritten.
        let mut pods2 = pods.clone();
        pods2[0] = pod(0, false);
        let p = plan(&pods2, first.clone(), 3);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        let ep = p.update[0]["endpoints"].as_array().unwrap().iter().find(|e| e["targetRef"]["name"] == "p0").unwrap().clone();
        assert_eq!(ep["conditions"]["ready"], false);
        // A new pod goes into the slice with room (the one with 2 of 3).
        let mut pods3 = pods.clone();
        pods3.push(pod(5, true));
        let p = plan(&pods3, first.clone(), 3);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0]["endpoints"].as_array().unwrap().len(), 3);
        // All pods gone: slices deleted but one reused as the placeholder.
        let p = plan(&[], first.clone(), 3);
        assert_eq!(p.delete.len(), 1);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0]["endpoints"], json!([]));
        assert_eq!(p.update[0]["ports"], json!([]));
        // The placeholder is kept as it is.
        let p2 = plan(&[], vec![p.update[0].clone()], 3);
        assert!(p2.create.is_empty() && p2.update.is_empty() && p2.delete.is_empty(), "{p2:?}");
    }

    #[test]
    fn pods_on_missing_nodes_are_left_out_and_others_are_deleted() {
        let mut lost = (*pod(9, true)).clone();
        lost["spec"]["nodeName"] = json!("gone");
        let p = plan(&[pod(1, true), Arc::new(lost)], vec![], 100);
        assert_eq!(p.missing_nodes, vec!["gone".to_string()]);
        assert_eq!(p.create[0]["endpoints"].as_array().unwrap().len(), 1);
        // A slice not owned by this service object (an old one of the same name) goes away.
        let mut foreign = created(&p)[0].clone();
        foreign["metadata"]["ownerReferences"][0]["uid"] = json!("old");
        foreign["metadata"]["name"] = json!("web-old");
        let p = plan(&[pod(1, true)], vec![foreign], 100);
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.delete.len(), 1);
    }

    #[test]
    fn terminating_pods_stay_as_not_ready_and_serving() {
        let mut t = (*pod(1, true)).clone();
        t["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let p = plan(&[Arc::new(t)], vec![], 100);
        assert_eq!(p.create[0]["endpoints"][0]["conditions"], json!({"ready": false, "serving": true, "terminating": true}));
    }
}
