//! What the endpoints and endpointslice controllers share, after upstream's
//! `k8s.io/endpointslice/util`: which pods belong in endpoints, target port resolution, which
//! services a pod change concerns, and the last-change trigger time.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;

use crate::api::selectors::LabelSelector;
use crate::controllers::podutil;
use crate::controllers::runtime::ctx::SERVICES;
use crate::controllers::runtime::{Change, Ctx, ObjKey};
use crate::meta;

/// The annotation carrying when the change behind an Endpoints or EndpointSlice write happened.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The label marking endpoints of headless services.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// A service's pod selector; None for selector-less services (an empty selector counts as
/// none, as upstream's storage round trip makes it nil).
pub fn service_selector(svc: &Value) -> Option<LabelSelector> {
    podutil::map_selector(&svc["spec"]["selector"])
}

/// Services whose endpoints this controller maintains: with a selector, not ExternalName.
pub fn managed_selector(svc: &Value) -> Option<LabelSelector> {
    if svc["spec"]["type"] == "ExternalName" {
        return None;
    }
    service_selector(svc)
}

/// `ShouldPodBeInEndpoints`: not finished, has an IP, and not terminating unless asked.
pub fn should_pod_be_in_endpoints(pod: &Value, include_terminating: bool) -> bool {
    if podutil::is_terminal(pod) {
        return false;
    }
    let has_ip = pod["status"]["podIP"].as_str().map(|s| !s.is_empty()).unwrap_or(false)
        || pod["status"]["podIPs"].as_array().map(|a| !a.is_empty()).unwrap_or(false);
    has_ip && (include_terminating || !meta::is_deleting(pod))
}

/// `ShouldSetHostname`: the pod has a hostname and the service is its subdomain.
pub fn should_set_hostname(pod: &Value, svc: &Value) -> bool {
    let hostname = pod["spec"]["hostname"].as_str().unwrap_or("");
    !hostname.is_empty() && pod["spec"]["subdomain"].as_str() == Some(meta::name(svc)) && meta::namespace(pod) == meta::namespace(svc)
}

/// `isServiceIPSet`: a ClusterIP other than None.
pub fn is_service_ip_set(svc: &Value) -> bool {
    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("");
    !ip.is_empty() && ip != "None"
}

fn protocol(v: &Value) -> &str {
    v["protocol"].as_str().unwrap_or("TCP")
}

/// `FindPort`: a numeric targetPort as is; a named one looked up among the containers' ports
/// (and sidecars', restartable init containers) with the service port's protocol.
pub fn find_port(pod: &Value, svc_port: &Value) -> Option<i64> {
    let target = match svc_port.get("targetPort") {
        Some(t) if !t.is_null() => t,
        _ => &svc_port["port"],
    };
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let name = target.as_str()?;
    if let Ok(n) = name.parse::<i64>() {
        return Some(n);
    }
    let spec = &pod["spec"];
    let sidecars = spec["initContainers"].as_array().into_iter().flatten().filter(|c| c["restartPolicy"] == "Always");
    for c in spec["containers"].as_array().into_iter().flatten().chain(sidecars) {
        for p in c["ports"].as_array().into_iter().flatten() {
            if p["name"] == name && protocol(p) == protocol(svc_port) {
                return p["containerPort"].as_i64();
            }
        }
    }
    None
}

/// The pod's IPs (`status.podIPs`, or `status.podIP`).
pub fn pod_ips(pod: &Value) -> Vec<String> {
    let ips: Vec<String> = pod["status"]["podIPs"].as_array().into_iter().flatten().filter_map(|i| i["ip"].as_str().map(String::from)).collect();
    if !ips.is_empty() {
        return ips;
    }
    pod["status"]["podIP"].as_str().filter(|s| !s.is_empty()).map(|s| vec![s.to_string()]).unwrap_or_default()
}

pub fn is_ipv6(ip: &str) -> bool {
    ip.parse::<std::net::Ipv6Addr>().is_ok()
}

fn services_matching(ctx: &Ctx, ns: &str, labels: &std::collections::BTreeMap<String, String>) -> BTreeSet<ObjKey> {
    ctx.list(SERVICES, ns)
        .iter()
        .filter(|s| service_selector(&s.value()).map(|sel| sel.matches(labels)).unwrap_or(false))
        .map(|s| ObjKey::new(s.namespace.clone(), s.name.clone()))
        .collect()
}

/// `podEndpointsChanged`: (the pod changed in a way endpoints show, its labels or
/// hostname/subdomain changed).
fn pod_endpoints_changed(old: &Value, new: &Value) -> (bool, bool) {
    let labels_changed = old["metadata"]["labels"] != new["metadata"]["labels"]
        || old["spec"]["hostname"] != new["spec"]["hostname"]
        || old["spec"]["subdomain"] != new["spec"]["subdomain"];
    let changed = old["metadata"]["deletionTimestamp"] != new["metadata"]["deletionTimestamp"]
        || podutil::is_ready(old) != podutil::is_ready(new)
        || pod_ips(old) != pod_ips(new)
        // Not in upstream's list: a pod finishing leaves the endpoints (upstream catches that
        // with its readiness change, which a finished pod always has).
        || podutil::is_terminal(old) != podutil::is_terminal(new);
    (changed, labels_changed)
}

/// The services to sync after a pod change (`GetServicesToUpdateOnPodChange`): those matching
/// it on creation or deletion; on an update that matters, those matching before or after (only
/// the ones whose membership changed, if nothing else did).
pub fn services_for_pod_change(ctx: &Ctx, ch: &Change) -> Vec<ObjKey> {
    let o = ch.latest();
    let (new, old) = match (ch.object, ch.prev) {
        (Some(n), Some(p)) => (n, p),
        _ => return services_matching(ctx, &o.namespace, &o.labels).into_iter().collect(),
    };
    if new.rv == old.rv {
        return vec![];
    }
    let (changed, labels_changed) = pod_endpoints_changed(&old.value(), &new.value());
    if !changed && !labels_changed {
        return vec![];
    }
    let now = services_matching(ctx, &new.namespace, &new.labels);
    if !labels_changed {
        return now.into_iter().collect();
    }
    let before = services_matching(ctx, &old.namespace, &old.labels);
    if changed {
        now.union(&before).cloned().collect()
    } else {
        now.symmetric_difference(&before).cloned().collect()
    }
}

/// `TriggerTimeTracker`: when the change that an endpoints write reflects happened, the
/// earliest of the pod readiness transitions and service creation seen since the last sync
/// (the service's creation for its first sync).
#[derive(Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<(String, String), ServiceState>>,
}

#[derive(Default, Clone)]
struct ServiceState {
    service: Option<DateTime<Utc>>,
    pods: HashMap<String, DateTime<Utc>>,
}

fn ready_transition(pod: &Value) -> Option<DateTime<Utc>> {
    podutil::condition(pod, "Ready")?["lastTransitionTime"].as_str().and_then(meta::parse_time)
}

impl TriggerTimeTracker {
    /// Computes the trigger time for a sync of `svc` with these pods and remembers them.
    pub fn compute(&self, svc: &Value, pods: &[std::sync::Arc<Value>]) -> Option<DateTime<Utc>> {
        let key = (meta::namespace(svc).to_string(), meta::name(svc).to_string());
        let mut states = self.states.lock();
        let known = states.contains_key(&key);
        let state = states.entry(key).or_default();
        let mut min: Option<DateTime<Utc>> = None;
        let mut pod_times = HashMap::new();
        for p in pods {
            if let Some(t) = ready_transition(p) {
                let name = meta::name(p).to_string();
                if state.pods.get(&name).map(|old| t > *old).unwrap_or(true) {
                    min = Some(min.map_or(t, |m| m.min(t)));
                }
                pod_times.insert(name, t);
            }
        }
        let created = svc["metadata"]["creationTimestamp"].as_str().and_then(meta::parse_time);
        if let Some(c) = created {
            if state.service.map(|old| c > old).unwrap_or(true) {
                min = Some(min.map_or(c, |m| m.min(c)));
            }
        }
        state.pods = pod_times;
        state.service = created;
        if !known {
            return created;
        }
        min
    }

    /// Forgets a deleted service.
    pub fn delete(&self, ns: &str, name: &str) {
        self.states.lock().remove(&(ns.to_string(), name.to_string()));
    }
}

/// A trigger time as the annotation carries it (RFC 3339 with nanoseconds when non-zero).
pub fn format_trigger_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ports_resolve_by_number_or_name() {
        let pod = json!({"spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                                                         {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
                                  "initContainers": [{"name": "side", "restartPolicy": "Always", "ports": [{"name": "metrics", "containerPort": 9090}]}]}});
        assert_eq!(find_port(&pod, &json!({"port": 80, "targetPort": "http", "protocol": "TCP"})), Some(8080));
        assert_eq!(find_port(&pod, &json!({"port": 80, "targetPort": "http", "protocol": "UDP"})), None);
        assert_eq!(find_port(&pod, &json!({"port": 53, "targetPort": "dns", "protocol": "UDP"})), Some(53));
        assert_eq!(find_port(&pod, &json!({"port": 9, "targetPort": "metrics"})), Some(9090));
        assert_eq!(find_port(&pod, &json!({"port": 80, "targetPort": 9376})), Some(9376));
        assert_eq!(find_port(&pod, &json!({"port": 80})), Some(80));
    }

    #[test]
    fn which_pods_belong() {
        let running = json!({"status": {"phase": "Running", "podIP": "10.0.0.1"}});
        assert!(should_pod_be_in_endpoints(&running, false));
        let no_ip = json!({"status": {"phase": "Pending"}});
        assert!(!should_pod_be_in_endpoints(&no_ip, true));
        let done = json!({"status": {"phase": "Succeeded", "podIP": "10.0.0.1"}});
        assert!(!should_pod_be_in_endpoints(&done, true));
        let leaving = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}});
        assert!(!should_pod_be_in_endpoints(&leaving, false));
        assert!(should_pod_be_in_endpoints(&leaving, true));
    }

    #[test]
    fn trigger_times() {
        let t = TriggerTimeTracker::default();
        let svc = json!({"metadata": {"name": "s", "namespace": "n", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let pod = |ts: &str| {
            std::sync::Arc::new(
                json!({"metadata": {"name": "p"}, "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ts}]}}),
            )
        };
        assert_eq!(t.compute(&svc, &[pod("2024-01-01T00:00:05Z")]).map(format_trigger_time).as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(t.compute(&svc, &[pod("2024-01-01T00:00:05Z")]), None, "nothing changed");
        assert_eq!(t.compute(&svc, &[pod("2024-01-01T00:00:09Z")]).map(format_trigger_time).as_deref(), Some("2024-01-01T00:00:09Z"));
    }
}
