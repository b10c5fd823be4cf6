//! The endpointslice mirroring controller, after upstream's: for a Service without a selector
//! whose Endpoints a user (or another controller) writes, EndpointSlices mirroring those
//! Endpoints, labeled `endpointslice.kubernetes.io/managed-by:
//! endpointslicemirroring-controller.k8s.io` and `kubernetes.io/service-name`, owned by the
//! Endpoints. Each subset's addresses (ready ones, then not-ready ones with `ready: false`, at
//! most 1000 per subset) go to one slice per address type and port set. Endpoints labeled
//! `endpointslice.kubernetes.io/skip-mirror: "true"` (such as the `kubernetes` one) or holding
//! a leader-election record are not mirrored; mirrored slices go away when the Endpoints, the
//! Service or its missing selector goes.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::endpointslice::reconciler::{endpoint_key, port_key, same_beyond_key, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use super::endpointslice::{as_stored, util};
use super::runtime::ctx::{ENDPOINTS, ENDPOINTSLICES, SERVICES};
use super::runtime::{Action, Change, Controller, Ctx, ObjKey};
use crate::api::selectors::LabelSelector;
use crate::api::status::ApiError;
use crate::meta;
use crate::registry::store::DeleteOpts;

/// The managed-by value of mirrored slices.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Upstream's default `--mirroring-max-endpoints-per-subset`.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Runs until the process ends. Keys are Endpoints (= Service) names.
pub async fn run(ctx: Ctx) {
    Controller::new("endpointslicemirroring", ctx)
        .watches(ENDPOINTS, endpoints_changed)
        .watches(SERVICES, service_changed)
        .watches(ENDPOINTSLICES, slice_changed)
        .run(|ctx, key| async move { reconcile(&ctx, &key).await })
        .await
}

/// Not skipped by label, and no leader-election record.
fn should_mirror(ep: &Value) -> bool {
    ep["metadata"]["labels"][SKIP_MIRROR] != "true" && ep["metadata"]["annotations"][LEADER_ANNOTATION].is_null()
}

fn endpoints_changed(ch: &Change) -> Vec<ObjKey> {
    let mirror = |o: Option<&crate::storage::cache::CachedObject>| o.map(|o| should_mirror(&o.value())).unwrap_or(false);
    if mirror(ch.object) || mirror(ch.prev) {
        vec![ch.key()]
    } else {
        vec![]
    }
}

fn selectorless(o: Option<&crate::storage::cache::CachedObject>) -> Option<bool> {
    o.map(|o| util::service_selector(&o.value()).is_none())
}

/// A selector-less service appearing or going, or a service gaining or losing its selector.
fn service_changed(ch: &Change) -> Vec<ObjKey> {
    let relevant = match (selectorless(ch.object), selectorless(ch.prev)) {
        (Some(a), Some(b)) => a != b,
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => false,
    };
    if relevant {
        vec![ch.key()]
    } else {
        vec![]
    }
}

/// A mirrored slice changed by someone (this controller's own writes come back as no-ops).
fn slice_changed(ch: &Change) -> Vec<ObjKey> {
    let mut keys = Vec::new();
    for o in [ch.object, ch.prev].into_iter().flatten() {
        if o.labels.get(LABEL_MANAGED_BY).map(|m| m == CONTROLLER_NAME).unwrap_or(false) {
            if let Some(svc) = o.labels.get(LABEL_SERVICE_NAME) {
                let k = ObjKey::new(o.namespace.clone(), svc.clone());
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
    }
    keys
}

/// What mirroring decided for one Endpoints object.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<Value>,
    pub update: Vec<Value>,
    pub delete: Vec<Value>,
    pub invalid: usize,
    pub skipped: usize,
}

/// `addressToEndpoint`: the endpoint and its address type; None for an invalid IP.
fn address_to_endpoint(a: &Value, ready: bool) -> Option<(Value, &'static str)> {
    let ip: std::net::IpAddr = a["ip"].as_str()?.parse().ok()?;
    let t = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let mut ep = json!({"addresses": [ip.to_string()], "conditions": {"ready": ready}});
    if let Some(t) = a.get("targetRef").filter(|t| !t.is_null()) {
        ep["targetRef"] = t.clone();
    }
    if let Some(n) = a.get("nodeName").filter(|n| !n.is_null()) {
        ep["nodeName"] = n.clone();
    }
    if let Some(h) = a["hostname"].as_str().filter(|h| !h.is_empty()) {
        ep["hostname"] = json!(h);
    }
    Some((ep, t))
}

/// `epPortsToEpsPorts`.
fn slice_ports(subset: &Value) -> Vec<Value> {
    subset["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let mut sp = json!({"name": p["name"].as_str().unwrap_or(""), "port": p["port"], "protocol": p["protocol"].as_str().unwrap_or("TCP")});
            if let Some(a) = p.get("appProtocol").filter(|a| !a.is_null()) {
                sp["appProtocol"] = a.clone();
            }
            sp
        })
        .collect()
}

/// `newEndpointSlice` of the mirroring controller: the Endpoints' labels and annotations (but
/// the trigger time and kubectl's last-applied configuration), owned by the Endpoints.
fn new_slice(ep: &Value, ports: &[Value], address_type: &str, name: Option<&str>) -> Value {
    let mut labels: Map<String, Value> = ep["metadata"]["labels"].as_object().cloned().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.into(), json!(meta::name(ep)));
    labels.insert(LABEL_MANAGED_BY.into(), json!(CONTROLLER_NAME));
    let annotations: Map<String, Value> = ep["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != util::LAST_CHANGE_TRIGGER_TIME && *k != "kubectl.kubernetes.io/last-applied-configuration")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut md = json!({
        "namespace": meta::namespace(ep),
        "labels": labels,
        "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": meta::name(ep), "uid": meta::uid(ep), "controller": true, "blockOwnerDeletion": true}],
    });
    if !annotations.is_empty() {
        md["annotations"] = Value::Object(annotations);
    }
    match name {
        Some(n) => md["name"] = json!(n),
        None => md["generateName"] = json!(format!("{}-", meta::name(ep))),
    }
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": md, "addressType": address_type, "endpoints": [], "ports": ports})
}

/// The slice wanted for one address type and port set: its ports, address type and
/// endpoints by identity.
type Desired = (Vec<Value>, &'static str, BTreeMap<String, Value>);

fn slice_key(ports: &[Value], address_type: &str) -> String {
    format!("{address_type}/{}", port_key(ports))
}

/// Plans the mirrored slices of an Endpoints object (`reconciler.reconcile`).
pub fn plan(ep: &Value, existing: &[Value], max: usize) -> Plan {
    let mut p = Plan::default();
    // Desired endpoints by address type and ports; every subset's keys exist even when empty.
    let mut desired: BTreeMap<String, Desired> = BTreeMap::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        let ports = slice_ports(subset);
        for t in ["IPv4", "IPv6"] {
            desired.entry(slice_key(&ports, t)).or_insert_with(|| (ports.clone(), t, BTreeMap::new()));
        }
        let all: Vec<(&Value, bool)> = subset["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (a, true))
            .chain(subset["notReadyAddresses"].as_array().into_iter().flatten().map(|a| (a, false)))
            .collect();
        let mut added = 0;
        for (a, ready) in &all {
            if added >= max {
                break;
            }
            match address_to_endpoint(a, *ready) {
                Some((e, t)) => {
                    desired.get_mut(&slice_key(&ports, t)).expect("initialized").2.insert(endpoint_key(&e), e);
                    added += 1;
                }
                None => p.invalid += 1,
            }
        }
        p.skipped += all.len() - added;
    }
    let mut existing_by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in existing {
        let ports = s["ports"].as_array().cloned().unwrap_or_default();
        existing_by_key.entry(slice_key(&ports, s["addressType"].as_str().unwrap_or(""))).or_default().push(s.clone());
    }
    for (k, (ports, t, eps)) in desired {
        let ex = existing_by_key.remove(&k).unwrap_or_default();
        if eps.is_empty() {
            p.delete.extend(ex);
            continue;
        }
        if let Some(first) = ex.first() {
            p.delete.extend(ex[1..].iter().cloned());
            let have: Vec<Value> = first["endpoints"].as_array().cloned().unwrap_or_default();
            let unchanged = have.len() == eps.len()
                && have.iter().all(|e| eps.get(&endpoint_key(e)).map(|w| same_beyond_key(w, e) && w["hostname"] == e["hostname"]).unwrap_or(false));
            if unchanged {
                continue;
            }
        }
        let mut s = new_slice(ep, &ports, t, ex.first().map(meta::name));
        s["endpoints"] = Value::Array(eps.into_values().take(max).collect());
        if ex.is_empty() {
            p.create.push(s);
        } else {
            p.update.push(s);
        }
    }
    for (_, ex) in existing_by_key {
        p.delete.extend(ex);
    }
    // Reuse slices about to be deleted for creations of the same address type.
    let mut i = 0;
    while i < p.create.len() {
        let t = p.create[i]["addressType"].clone();
        match p.delete.iter().position(|d| d["addressType"] == t) {
            Some(j) => {
                let old = p.delete.remove(j);
                let mut s = p.create.remove(i);
                let md = meta::metadata_mut(&mut s);
                md.remove("generateName");
                md.insert("name".into(), json!(meta::name(&old)));
                p.update.push(s);
            }
            None => i += 1,
        }
    }
    p
}

async fn delete_all(ctx: &Ctx, ns: &str, slices: &[Value]) -> Result<Action, ApiError> {
    for s in slices {
        ctx.delete(ENDPOINTSLICES, ns, meta::name(s), &DeleteOpts::default()).await?;
    }
    Ok(Action::Done)
}

async fn reconcile(ctx: &Ctx, key: &ObjKey) -> Result<Action, ApiError> {
    let (ns, name) = (key.namespace.as_str(), key.name.as_str());
    let sel = LabelSelector::parse(&format!("{LABEL_SERVICE_NAME}={name},{LABEL_MANAGED_BY}={CONTROLLER_NAME}"))?;
    let mirrored: Vec<Value> = ctx.list_selected(ENDPOINTSLICES, ns, &sel).iter().map(|o| (*o.value()).clone()).collect();
    let Some(ep) = ctx.get(ENDPOINTS, ns, name).filter(|e| should_mirror(e)) else { return delete_all(ctx, ns, &mirrored).await };
    match ctx.get(SERVICES, ns, name) {
        Some(svc) if util::service_selector(&svc).is_none() => {}
        _ => return delete_all(ctx, ns, &mirrored).await,
    }
    let p = plan(&ep, &mirrored, MAX_ENDPOINTS_PER_SUBSET);
    if p.invalid > 0 {
        ctx.event(&ep, "Warning", "InvalidIPAddress", format!("Skipped {} invalid IP addresses when mirroring to EndpointSlices", p.invalid));
    }
    if p.skipped > p.invalid {
        ctx.event(
            &ep,
            "Warning",
            "TooManyAddressesToMirror",
            format!(
                "A max of {MAX_ENDPOINTS_PER_SUBSET} addresses can be mirrored to EndpointSlices per Endpoints subset. {} addresses were skipped",
                p.skipped
            ),
        );
    }
    if !meta::is_deleting(&ep) {
        for s in p.create {
            match ctx.create(ENDPOINTSLICES, ns, as_stored(s)).await {
                Ok(_) => {}
                Err(e) if super::endpoints::is_namespace_terminating(&e) => return Ok(Action::Done),
                Err(e) => return Err(e),
            }
        }
    }
    for s in p.update {
        ctx.update(ENDPOINTSLICES, as_stored(s)).await?;
    }
    delete_all(ctx, ns, &p.delete).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(subsets: Value) -> Value {
        json!({"metadata": {"name": "ext", "namespace": "n", "uid": "ep-uid", "labels": {"team": "a"},
                            "annotations": {"note": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
               "subsets": subsets})
    }

    #[test]
    fn mirrors_subsets_per_address_type_and_ports() {
        let ep = endpoints(json!([
            {"addresses": [{"ip": "10.1.0.1", "nodeName": "n1"}, {"ip": "fd00::1"}], "notReadyAddresses": [{"ip": "10.1.0.2"}],
             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
            {"addresses": [{"ip": "bogus"}, {"ip": "10.2.0.1"}], "ports": [{"port": 53, "protocol": "UDP"}]},
        ]));
        let p = plan(&ep, &[], 1000);
        assert_eq!((p.create.len(), p.invalid, p.skipped), (3, 1, 1));
        let v4http = p.create.iter().find(|s| s["addressType"] == "IPv4" && s["ports"][0]["port"] == 80).unwrap();
        assert_eq!(v4http["metadata"]["generateName"], "ext-");
        assert_eq!(v4http["metadata"]["labels"], json!({"team": "a", LABEL_SERVICE_NAME: "ext", LABEL_MANAGED_BY: CONTROLLER_NAME}));
        assert_eq!(v4http["metadata"]["annotations"], json!({"note": "x"}));
        assert_eq!(v4http["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
        assert_eq!(v4http["ports"], json!([{"name": "http", "port": 80, "protocol": "TCP"}]));
        let eps = v4http["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 2);
        let nr = eps.iter().find(|e| e["addresses"][0] == "10.1.0.2").unwrap();
        assert_eq!(nr["conditions"]["ready"], false);
        assert!(p.create.iter().any(|s| s["addressType"] == "IPv6"));

        // Mirrored as is: nothing to do; an address gone: the slice is rewritten in place.
        let named: Vec<Value> = p
            .create
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut s = s.clone();
                s["metadata"]["name"] = json!(format!("ext-{i}"));
                s
            })
            .collect();
        let again = plan(&ep, &named, 1000);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty(), "{again:?}");
        let mut fewer = ep.clone();
        fewer["subsets"][0]["notReadyAddresses"] = json!([]);
        let p = plan(&fewer, &named, 1000);
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
        // No subsets: everything goes.
        let p = plan(&endpoints(json!([])), &named, 1000);
        assert_eq!(p.delete.len(), 3);
    }

    #[test]
    fn caps_addresses_per_subset() {
        let addrs: Vec<Value> = (0..5).map(|i| json!({"ip": format!("10.0.0.{i}")})).collect();
        let p = plan(&endpoints(json!([{"addresses": addrs, "ports": [{"port": 80}]}])), &[], 3);
        assert_eq!(p.skipped, 2);
        assert_eq!(p.create[0]["endpoints"].as_array().unwrap().len(), 3);
        assert!(!should_mirror(&json!({"metadata": {"labels": {SKIP_MIRROR: "true"}}})));
    }
}
