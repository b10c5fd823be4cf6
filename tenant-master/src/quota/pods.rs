//! What a pod costs in quota, after upstream's pod evaluator (`PodUsageFunc`,
//! `podComputeUsageHelper`, `resourcehelper.PodRequests/PodLimits`) and its scopes.
//!
//! Simplified: requests and limits come from the spec only (upstream 1.33 also takes the max
//! with resized values in status, which no kplex component reports), and pod-level
//! `spec.resources` (the alpha PodLevelResources feature, off by default in 1.33) is ignored.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{add, ResourceList, ScopeSelector};
use crate::registry::quantity::Quantity;

/// Resources the pod evaluator tracks besides prefixed and extended ones.
pub const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// Quota names a pod must declare per container when a quota limits them (a historical
/// requirement upstream keeps for cpu and memory only).
const VALIDATION_SET: &[&str] = &["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

/// `helper.IsNativeResource`: no domain, or a `kubernetes.io/` one.
pub fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `helper.IsExtendedResourceName`: a domain-qualified, non-native name that makes a valid
/// `requests.<name>` quota name.
pub fn is_extended_resource(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    crate::validation::qualified_name_errors(&format!("requests.{name}")).is_empty()
}

/// Quota names the pod evaluator matches: its fixed list, hugepages, and `requests.<extended>`.
pub fn matches_resource(name: &str) -> bool {
    POD_RESOURCES.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
        || (!is_native_resource(name) && name.starts_with("requests."))
}

fn list(v: &Value) -> ResourceList {
    super::parse_list(v)
}

/// Sets every entry of `b` in `a` to the larger of the two.
fn max_into(a: &mut ResourceList, b: &ResourceList) {
    for (k, q) in b {
        match a.get(k) {
            Some(cur) if cur.cmp_value(q).is_ge() => {}
            _ => {
                a.insert(k.clone(), *q);
            }
        }
    }
}

/// Requests or limits of all containers as the scheduler counts them: containers summed,
/// restartable init containers (sidecars) added, and the peak of the init phase (each init
/// container plus the sidecars started before it) taken if larger.
fn aggregate(pod: &Value, field: &str) -> ResourceList {
    let spec = &pod["spec"];
    let mut result = ResourceList::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        result = add(&result, &list(&c["resources"][field]));
    }
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        let own = list(&c["resources"][field]);
        let during = if c["restartPolicy"] == "Always" {
            result = add(&result, &own);
            sidecars = add(&sidecars, &own);
            sidecars.clone()
        } else {
            add(&own, &sidecars)
        };
        max_into(&mut init_peak, &during);
    }
    max_into(&mut result, &init_peak);
    result
}

/// `PodRequests`: aggregated container requests plus `spec.overhead`.
pub fn pod_requests(pod: &Value) -> ResourceList {
    add(&aggregate(pod, "requests"), &list(&pod["spec"]["overhead"]))
}

/// `PodLimits`: aggregated container limits, overhead added to the non-zero ones.
pub fn pod_limits(pod: &Value) -> ResourceList {
    let mut limits = aggregate(pod, "limits");
    for (k, o) in list(&pod["spec"]["overhead"]) {
        if let Some(v) = limits.get_mut(&k) {
            if !v.is_zero() {
                *v = v.add(&o);
            }
        }
    }
    limits
}

/// `podComputeUsageHelper`: quota names charged for requests and limits.
pub fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut r = ResourceList::new();
    r.insert("pods".into(), Quantity::from_i64(1));
    for res in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(res) {
            r.insert(res.into(), *q);
            r.insert(format!("requests.{res}"), *q);
        }
        if let Some(q) = limits.get(res) {
            r.insert(format!("limits.{res}"), *q);
        }
    }
    for (k, q) in requests {
        if k.starts_with("hugepages-") {
            r.insert(k.clone(), *q);
            r.insert(format!("requests.{k}"), *q);
        }
        if is_extended_resource(k) {
            r.insert(format!("requests.{k}"), *q);
        }
    }
    r
}

/// `QuotaV1Pod`: a pod counts unless terminal, or deleted and past its grace period.
pub fn counts(pod: &Value, now: DateTime<Utc>) -> bool {
    !matches!(pod["status"]["phase"].as_str(), Some("Failed") | Some("Succeeded")) && charge_ends(pod).map(|t| now <= t).unwrap_or(true)
}

/// When a deleted pod stops counting (deletionTimestamp plus its grace period), if deleted.
pub fn charge_ends(pod: &Value) -> Option<DateTime<Utc>> {
    let md = &pod["metadata"];
    let at = md["deletionTimestamp"].as_str().and_then(crate::meta::parse_time)?;
    let grace = md["deletionGracePeriodSeconds"].as_i64()?;
    Some(at + chrono::Duration::seconds(grace))
}

/// `PodUsageFunc`: `count/pods` always; compute resources while the pod [`counts`].
pub fn usage(pod: &Value, now: DateTime<Utc>) -> ResourceList {
    let mut r = ResourceList::new();
    r.insert("count/pods".into(), Quantity::from_i64(1));
    if !counts(pod, now) {
        return r;
    }
    add(&r, &compute_usage(&pod_requests(pod), &pod_limits(pod)))
}

/// The pod's QoS class is BestEffort: from status when set, else no container asks for or
/// limits cpu or memory (`qos.GetPodQOS`).
pub fn is_best_effort(pod: &Value) -> bool {
    if let Some(q) = pod["status"]["qosClass"].as_str().filter(|q| !q.is_empty()) {
        return q == "BestEffort";
    }
    let spec = &pod["spec"];
    let containers = spec["containers"].as_array().into_iter().flatten().chain(spec["initContainers"].as_array().into_iter().flatten());
    for c in containers {
        for f in ["requests", "limits"] {
            for (k, q) in list(&c["resources"][f]) {
                if (k == "cpu" || k == "memory") && q.signum() > 0 {
                    return false;
                }
            }
        }
    }
    true
}

fn is_terminating(pod: &Value) -> bool {
    pod["spec"]["activeDeadlineSeconds"].as_i64().map(|d| d >= 0).unwrap_or(false)
}

fn cross_namespace_affinity(pod: &Value) -> bool {
    let cross = |t: &Value| {
        t["namespaces"].as_array().map(|a| !a.is_empty()).unwrap_or(false)
            || (!t["namespaceSelector"].is_null() && t.get("namespaceSelector").is_some())
    };
    let aff = &pod["spec"]["affinity"];
    for kind in ["podAffinity", "podAntiAffinity"] {
        let a = &aff[kind];
        if a["requiredDuringSchedulingIgnoredDuringExecution"].as_array().into_iter().flatten().any(cross) {
            return true;
        }
        if a["preferredDuringSchedulingIgnoredDuringExecution"].as_array().into_iter().flatten().any(|w| cross(&w["podAffinityTerm"])) {
            return true;
        }
    }
    false
}

/// `podMatchesScopeFunc`.
pub fn matches_scope(sel: &ScopeSelector, pod: &Value) -> bool {
    match sel.scope.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let pc = pod["spec"]["priorityClassName"].as_str().filter(|s| !s.is_empty());
            if sel.operator == "Exists" {
                return pc.is_some();
            }
            sel.matches_value(pc)
        }
        "CrossNamespacePodAffinity" => cross_namespace_affinity(pod),
        _ => false,
    }
}

/// `Constraints`: with a quota limiting cpu or memory, every container must state them;
/// `must specify limits.cpu for: a,b; requests.memory for: c` otherwise.
pub fn constraints(required: &[String], pod: &Value) -> Result<(), String> {
    let required: Vec<&str> = required.iter().map(|s| s.as_str()).filter(|r| VALIDATION_SET.contains(r)).collect();
    if required.is_empty() {
        return Ok(());
    }
    let mut missing: std::collections::BTreeMap<&str, std::collections::BTreeSet<String>> = Default::default();
    let spec = &pod["spec"];
    let containers = spec["containers"].as_array().into_iter().flatten().chain(spec["initContainers"].as_array().into_iter().flatten());
    for c in containers {
        let have = compute_usage(&list(&c["resources"]["requests"]), &list(&c["resources"]["limits"]));
        for r in &required {
            if !have.contains_key(*r) {
                missing.entry(r).or_default().insert(c["name"].as_str().unwrap_or("").to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing.iter().map(|(r, names)| format!("{r} for: {}", names.iter().cloned().collect::<Vec<_>>().join(","))).collect();
    Err(format!("must specify {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::pretty;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn usage_sums_containers_and_takes_the_init_peak() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}},
            ],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}],
            "overhead": {"cpu": "10m", "memory": "1Mi"},
        }});
        let u = usage(&pod, now());
        assert_eq!(
            pretty(&u),
            "count/pods=1,cpu=1010m,limits.cpu=210m,limits.memory=65Mi,memory=129Mi,pods=1,requests.cpu=1010m,requests.memory=129Mi,requests.nvidia.com/gpu=1"
        );
    }

    #[test]
    fn sidecars_add_to_the_containers_and_to_later_init_containers() {
        let pod = json!({"spec": {
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m"}}},
                {"name": "init", "resources": {"requests": {"cpu": "250m"}}},
            ],
        }});
        // Containers + sidecar = 300m; init phase peak = 250m + 200m = 450m.
        assert_eq!(pretty(&pod_requests(&pod)), "cpu=450m");
    }

    #[test]
    fn finished_and_expired_pods_only_count_as_objects() {
        let done = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}, "status": {"phase": "Succeeded"}});
        assert_eq!(pretty(&usage(&done, now())), "count/pods=1");
        let past = (now() - chrono::Duration::seconds(100)).to_rfc3339();
        let gone = json!({"metadata": {"deletionTimestamp": past, "deletionGracePeriodSeconds": 30}, "spec": {"containers": []}});
        assert_eq!(pretty(&usage(&gone, now())), "count/pods=1");
        let future = (now() + chrono::Duration::seconds(100)).to_rfc3339();
        let leaving = json!({"metadata": {"deletionTimestamp": future, "deletionGracePeriodSeconds": 30}, "spec": {"containers": []}});
        assert_eq!(pretty(&usage(&leaving, now())), "count/pods=1,pods=1");
    }

    #[test]
    fn scopes() {
        let be = json!({"spec": {"containers": [{"name": "a"}], "activeDeadlineSeconds": 10, "priorityClassName": "high"}});
        let burst = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"memory": "1Mi"}}}],
            "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "k", "namespaces": ["x"]}]}}}});
        let s = |scope: &str, op: &str, vals: &[&str]| ScopeSelector {
            scope: scope.into(),
            operator: op.into(),
            values: vals.iter().map(|v| v.to_string()).collect(),
        };
        assert!(matches_scope(&s("BestEffort", "Exists", &[]), &be));
        assert!(!matches_scope(&s("BestEffort", "Exists", &[]), &burst));
        assert!(matches_scope(&s("NotBestEffort", "Exists", &[]), &burst));
        assert!(matches_scope(&s("Terminating", "Exists", &[]), &be));
        assert!(matches_scope(&s("NotTerminating", "Exists", &[]), &burst));
        assert!(matches_scope(&s("PriorityClass", "In", &["high"]), &be));
        assert!(!matches_scope(&s("PriorityClass", "In", &["high"]), &burst));
        assert!(matches_scope(&s("PriorityClass", "Exists", &[]), &be));
        assert!(matches_scope(&s("CrossNamespacePodAffinity", "Exists", &[]), &burst));
        assert!(!matches_scope(&s("CrossNamespacePodAffinity", "Exists", &[]), &be));
    }

    #[test]
    fn constraints_name_the_containers_missing_values() {
        let pod = json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}, {"name": "b"}]}});
        let req = vec!["limits.cpu".to_string(), "requests.cpu".to_string(), "pods".to_string()];
        assert_eq!(constraints(&req, &pod).unwrap_err(), "must specify limits.cpu for: b,c; requests.cpu for: b");
        assert!(constraints(&["pods".to_string()], &pod).is_ok());
    }

    #[test]
    fn resource_names() {
        assert!(matches_resource("requests.nvidia.com/gpu"));
        assert!(matches_resource("requests.hugepages-2Mi"));
        assert!(!matches_resource("services"));
        assert!(is_extended_resource("nvidia.com/gpu"));
        assert!(!is_extended_resource("cpu") && !is_extended_resource("kubernetes.io/x"));
    }
}
