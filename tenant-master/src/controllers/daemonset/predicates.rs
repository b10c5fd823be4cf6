//! Which nodes a DaemonSet's pod may run on, as upstream's `NodeShouldRunDaemonPod` decides
//! (`spec.nodeName`, `nodeSelector`, required node affinity, taints against tolerations), and
//! how a daemon pod is made to land on its node: upstream's default tolerations and a required
//! node affinity `matchFields metadata.name In [node]` (the scheduler, not the controller,
//! binds the pod).

use serde_json::{json, Value};

use crate::controllers::history::POD_REVISION_LABEL;

/// Label of the template generation, kept for backward compatibility (`DaemonSetTemplateGenerationKey`).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// A toleration `key Exists effect`.
fn exists(key: &str, effect: &str) -> Value {
    json!({"key": key, "operator": "Exists", "effect": effect})
}

/// Same key, operator, value and effect (`Toleration.MatchToleration`).
fn same_toleration(a: &Value, b: &Value) -> bool {
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    ["key", "operator", "value", "effect"].iter().all(|k| s(a, k) == s(b, k))
}

/// Adds a toleration, replacing a matching one (`AddOrUpdateTolerationInPodSpec`).
fn add_or_update_toleration(spec: &mut Value, tol: Value) {
    let mut list: Vec<Value> = spec["tolerations"].as_array().cloned().unwrap_or_default();
    let mut updated = false;
    for t in list.iter_mut() {
        if same_toleration(t, &tol) {
            *t = tol.clone();
            updated = true;
        }
    }
    if !updated {
        list.push(tol);
    }
    spec["tolerations"] = json!(list);
}

/// The tolerations every daemon pod gets (`AddOrUpdateDaemonPodTolerations`): it survives a
/// not-ready or unreachable node, node pressure and cordoning; with hostNetwork also a node
/// whose network is unavailable.
pub fn add_daemon_tolerations(spec: &mut Value) {
    if !spec.is_object() {
        *spec = json!({});
    }
    add_or_update_toleration(spec, exists("node.kubernetes.io/not-ready", "NoExecute"));
    add_or_update_toleration(spec, exists("node.kubernetes.io/unreachable", "NoExecute"));
    for k in ["disk-pressure", "memory-pressure", "pid-pressure", "unschedulable"] {
        add_or_update_toleration(spec, exists(&format!("node.kubernetes.io/{k}"), "NoSchedule"));
    }
    if spec["hostNetwork"] == json!(true) {
        add_or_update_toleration(spec, exists("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
}

/// The template daemon pods are made from (`CreatePodTemplate`): default tolerations, the
/// template-generation label and the revision hash label.
pub fn pod_template(ds: &Value, generation: Option<i64>, hash: &str) -> Value {
    let mut t = ds["spec"]["template"].clone();
    if !t.is_object() {
        t = json!({});
    }
    add_daemon_tolerations(&mut t["spec"]);
    if !t["metadata"]["labels"].is_object() {
        t["metadata"]["labels"] = json!({});
    }
    if let Some(g) = generation {
        t["metadata"]["labels"][TEMPLATE_GENERATION_LABEL] = json!(g.to_string());
    }
    if !hash.is_empty() {
        t["metadata"]["labels"][POD_REVISION_LABEL] = json!(hash);
    }
    t
}

/// Makes the pod's required node affinity select exactly `node` by name
/// (`ReplaceDaemonSetPodNodeNameNodeAffinity`); preferred terms are kept.
pub fn pin_to_node(spec: &mut Value, node: &str) {
    let terms = json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]);
    if !spec["affinity"].is_object() {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]["nodeAffinity"].is_object() {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    let na = &mut spec["affinity"]["nodeAffinity"];
    if !na["requiredDuringSchedulingIgnoredDuringExecution"].is_object() {
        na["requiredDuringSchedulingIgnoredDuringExecution"] = json!({});
    }
    na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] = terms;
}

/// The node a daemon pod is for: `spec.nodeName`, or the single name its required node
/// affinity selects (`GetTargetNodeName`).
pub fn target_node(pod: &Value) -> Option<String> {
    if let Some(n) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Some(n.to_string());
    }
    let terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].as_array()?;
    for t in terms {
        for e in t["matchFields"].as_array().into_iter().flatten() {
            if e["key"] == "metadata.name" && e["operator"] == "In" {
                let vals = e["values"].as_array()?;
                return (vals.len() == 1).then(|| vals[0].as_str().map(String::from)).flatten();
            }
        }
    }
    None
}

/// One `NodeSelectorRequirement` against a value (None: the key is absent); None when the
/// requirement is malformed.
fn requirement(req: &Value, value: Option<&str>) -> Option<bool> {
    let values: Vec<&str> = req["values"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    let int = |s: &str| s.parse::<i64>().ok();
    Some(match req["operator"].as_str()? {
        "In" => value.map(|v| values.contains(&v)).unwrap_or(false),
        "NotIn" => value.map(|v| !values.contains(&v)).unwrap_or(true),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let bound = int(values.first()?)?;
            match value.and_then(int) {
                Some(v) if req["operator"] == "Gt" => v > bound,
                Some(v) => v < bound,
                None => false,
            }
        }
        _ => return None,
    })
}

/// One `NodeSelectorTerm`: all label expressions and all field expressions hold; an empty or
/// malformed term matches nothing.
fn term_matches(term: &Value, node: &Value) -> bool {
    let exprs = term["matchExpressions"].as_array().map(|a| a.as_slice()).unwrap_or(&[]);
    let fields = term["matchFields"].as_array().map(|a| a.as_slice()).unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = &node["metadata"]["labels"];
    let label_ok = exprs.iter().all(|e| {
        let key = e["key"].as_str().unwrap_or("");
        requirement(e, labels[key].as_str()).unwrap_or(false)
    });
    let field_ok = fields.iter().all(|e| {
        if e["key"] != "metadata.name" || !matches!(e["operator"].as_str(), Some("In" | "NotIn")) {
            return false;
        }
        requirement(e, node["metadata"]["name"].as_str()).unwrap_or(false)
    });
    label_ok && field_ok
}

/// `nodeSelector` and the required node affinity both admit the node
/// (`GetRequiredNodeAffinity(pod).Match(node)`).
pub fn affinity_matches(spec: &Value, node: &Value) -> bool {
    if let Some(sel) = spec["nodeSelector"].as_object() {
        if !sel.iter().all(|(k, v)| node["metadata"]["labels"][k] == *v) {
            return false;
        }
    }
    let req = &spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"];
    if req.is_object() {
        let terms = req["nodeSelectorTerms"].as_array().map(|a| a.as_slice()).unwrap_or(&[]);
        return terms.iter().any(|t| term_matches(t, node));
    }
    true
}

/// A toleration tolerates a taint (`Toleration.ToleratesTaint`).
pub fn tolerates(tol: &Value, taint: &Value) -> bool {
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    if !s(tol, "effect").is_empty() && s(tol, "effect") != s(taint, "effect") {
        return false;
    }
    if !s(tol, "key").is_empty() && s(tol, "key") != s(taint, "key") {
        return false;
    }
    match s(tol, "operator").as_str() {
        "" | "Equal" => s(tol, "value") == s(taint, "value"),
        "Exists" => true,
        _ => false,
    }
}

/// Some taint with one of `effects` is not tolerated (`FindMatchingUntoleratedTaint`).
pub fn untolerated(node: &Value, tolerations: &Value, effects: &[&str]) -> bool {
    let tols = tolerations.as_array().map(|a| a.as_slice()).unwrap_or(&[]);
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| effects.iter().any(|e| t["effect"] == *e))
        .any(|t| !tols.iter().any(|tol| tolerates(tol, t)))
}

/// (shouldRun, shouldContinueRunning) of a daemon set on a node (`NodeShouldRunDaemonPod`): a
/// new pod should start there; an existing pod may stay (a NoSchedule taint keeps new pods
/// away but does not evict; a NoExecute one does).
pub fn should_run(node: &Value, ds: &Value) -> (bool, bool) {
    let mut spec = ds["spec"]["template"]["spec"].clone();
    let node_name = node["metadata"]["name"].as_str().unwrap_or("");
    match spec["nodeName"].as_str() {
        Some(n) if !n.is_empty() && n != node_name => return (false, false),
        _ => {}
    }
    add_daemon_tolerations(&mut spec);
    if !affinity_matches(&spec, node) {
        return (false, false);
    }
    if untolerated(node, &spec["tolerations"], &["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(node, &spec["tolerations"], &["NoExecute"]));
    }
    (true, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    fn ds(spec: Value) -> Value {
        json!({"metadata": {"name": "agent"}, "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": spec}}})
    }

    #[test]
    fn taints_and_tolerations() {
        let plain = node("n1", json!({}), json!([]));
        let tainted = node("n2", json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]));
        let evicting = node("n3", json!({}), json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]));
        let soft = node("n4", json!({}), json!([{"key": "x", "effect": "PreferNoSchedule"}]));
        let d = ds(json!({"containers": []}));
        assert_eq!(should_run(&plain, &d), (true, true));
        assert_eq!(should_run(&tainted, &d), (false, true));
        assert_eq!(should_run(&evicting, &d), (false, false));
        assert_eq!(should_run(&soft, &d), (true, true));
        let tol = ds(json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db"}]}));
        assert_eq!(should_run(&tainted, &tol), (true, true));
        assert_eq!(should_run(&evicting, &tol), (true, true));
        let wrong = ds(json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}]}));
        assert_eq!(should_run(&tainted, &wrong), (false, true));
        let all = ds(json!({"tolerations": [{"operator": "Exists"}]}));
        assert_eq!(should_run(&evicting, &all), (true, true));
        // Cordoned and not-ready nodes keep their daemons (default tolerations).
        let cordoned = node(
            "n5",
            json!({}),
            json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                                                    {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
        );
        assert_eq!(should_run(&cordoned, &d), (true, true));
        let net = node("n6", json!({}), json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]));
        assert_eq!(should_run(&net, &d), (false, true));
        assert_eq!(should_run(&net, &ds(json!({"hostNetwork": true}))), (true, true));
    }

    #[test]
    fn node_selector_affinity_and_node_name() {
        let linux = node("n1", json!({"os": "linux", "cpus": "8"}), json!([]));
        let win = node("n2", json!({"os": "windows"}), json!([]));
        let d = ds(json!({"nodeSelector": {"os": "linux"}}));
        assert_eq!((should_run(&linux, &d).0, should_run(&win, &d).0), (true, false));
        let aff = |req: Value| ds(json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": req}}}}));
        let d = aff(json!([{"matchExpressions": [{"key": "os", "operator": "NotIn", "values": ["windows"]}]}]));
        assert_eq!((should_run(&linux, &d).0, should_run(&win, &d).0), (true, false));
        let d = aff(
            json!([{"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}]}, {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]),
        );
        assert_eq!((should_run(&linux, &d).0, should_run(&win, &d).0), (true, true));
        let d = aff(json!([{}]));
        assert!(!should_run(&linux, &d).0);
        let d = aff(json!([{"matchExpressions": [{"key": "os", "operator": "Bogus"}]}]));
        assert!(!should_run(&linux, &d).0);
        let d = ds(json!({"nodeName": "n2"}));
        assert_eq!((should_run(&linux, &d), should_run(&win, &d)), ((false, false), (true, true)));
    }

    #[test]
    fn daemon_pods_are_pinned_and_tolerant() {
        let mut d = ds(json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}],
                              "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "os", "operator": "Exists"}]}]},
                                                            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]}}}));
        d["metadata"]["annotations"] = json!({"deprecated.daemonset.template.generation": "3"});
        let mut t = pod_template(&d, Some(3), "abc");
        assert_eq!(t["metadata"]["labels"][POD_REVISION_LABEL], "abc");
        assert_eq!(t["metadata"]["labels"][TEMPLATE_GENERATION_LABEL], "3");
        let tols = t["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tols.len(), 6);
        assert!(tols[0].get("tolerationSeconds").is_none(), "the user's matching toleration is replaced");
        pin_to_node(&mut t["spec"], "n7");
        let pod = json!({"spec": t["spec"]});
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        let na = &t["spec"]["affinity"]["nodeAffinity"];
        assert_eq!(na["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].as_array().unwrap().len(), 1);
        assert!(na["preferredDuringSchedulingIgnoredDuringExecution"].is_array());
        assert_eq!(target_node(&json!({"spec": {"nodeName": "n1"}})).as_deref(), Some("n1"));
        assert_eq!(target_node(&json!({"spec": {}})), None);
    }
}
