//! core/v1 pods: defaults, Pending status on create, graceful deletion, the READY/STATUS/RESTARTS
//! columns computed as kubectl's pod printer does, and the field selectors the kubelet uses.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::api::table;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Pods;

const INFO: ResourceInfo = ResourceInfo {
    short_names: &["po"],
    categories: &["all"],
    subresources: &["status", "binding", "eviction"],
    ..info("", "v1", "Pod", "pods", "pod", true)
};

const FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in spec["containers"].as_array().into_iter().flatten().chain(spec["initContainers"].as_array().into_iter().flatten()) {
        let req = &c["resources"]["requests"];
        let lim = &c["resources"]["limits"];
        for r in ["cpu", "memory"] {
            let (q, l) = (&req[r], &lim[r]);
            if !q.is_null() || !l.is_null() {
                any = true;
            }
            if l.is_null() || (!q.is_null() && q != l) {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn restart_suffix(last: Option<&str>) -> String {
    match last {
        Some(t) => format!(" ({} ago)", table::since(&json!(t))),
        None => String::new(),
    }
}

/// kubectl's READY, STATUS and RESTARTS cells for a pod.
pub fn status_cells(p: &Value) -> (String, String, String) {
    let spec = &p["spec"];
    let st = &p["status"];
    let total = spec["containers"].as_array().map(|a| a.len()).unwrap_or(0);
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<String> = None;
    let mut reason = st["phase"].as_str().unwrap_or("").to_string();
    if let Some(r) = st["reason"].as_str().filter(|r| !r.is_empty()) {
        reason = r.to_string();
    }
    let mut note_restart = |cs: &Value, restarts: &mut i64| {
        *restarts += cs["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = cs["lastState"]["terminated"]["finishedAt"].as_str() {
            if last_restart.as_deref().map(|l| t > l).unwrap_or(true) {
                last_restart = Some(t.to_string());
            }
        }
    };
    let mut initializing = false;
    let inits = st["initContainerStatuses"].as_array().cloned().unwrap_or_default();
    let n_init = spec["initContainers"].as_array().map(|a| a.len()).unwrap_or(0);
    for (i, c) in inits.iter().enumerate() {
        note_restart(c, &mut restarts);
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        let sidecar = spec["initContainers"][i]["restartPolicy"] == "Always";
        if sidecar && c["started"] == json!(true) {
            continue;
        }
        initializing = true;
        if term.is_object() {
            reason = match term["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => match term["signal"].as_i64().filter(|s| *s != 0) {
                    Some(s) => format!("Init:Signal:{s}"),
                    None => format!("Init:ExitCode:{}", term["exitCode"].as_i64().unwrap_or(0)),
                },
            };
        } else if let Some(r) = c["state"]["waiting"]["reason"].as_str().filter(|r| !r.is_empty() && *r != "PodInitializing") {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{n_init}");
        }
        break;
    }
    if !initializing {
        let mut has_running = false;
        let statuses = st["containerStatuses"].as_array().cloned().unwrap_or_default();
        for c in statuses.iter().rev() {
            note_restart(c, &mut restarts);
            let state = &c["state"];
            if let Some(r) = state["waiting"]["reason"].as_str().filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if state["terminated"].is_object() {
                let t = &state["terminated"];
                reason = match t["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None => match t["signal"].as_i64().filter(|s| *s != 0) {
                        Some(s) => format!("Signal:{s}"),
                        None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
                    },
                };
            } else if c["ready"] == json!(true) && state["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = st["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if pod_ready { "Running".into() } else { "NotReady".into() };
        }
    }
    let phase = st["phase"].as_str().unwrap_or("");
    if crate::meta::is_deleting(p) && st["reason"] == "NodeLost" {
        reason = "Unknown".into();
    } else if crate::meta::is_deleting(p) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }
    (format!("{ready}/{total}"), reason, format!("{restarts}{}", restart_suffix(last_restart.as_deref())))
}

fn validate_containers(list: &Value, path: &str, required: bool, errs: &mut Vec<FieldError>, names: &mut Vec<String>) {
    match list.as_array().filter(|a| !a.is_empty()) {
        None => {
            if required {
                errs.push(FieldError::required(path, ""));
            }
        }
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                let name = c["name"].as_str().unwrap_or("");
                if name.is_empty() {
                    errs.push(FieldError::required(format!("{path}[{i}].name"), ""));
                } else {
                    for e in crate::validation::dns1123_label_errors(name) {
                        errs.push(FieldError::invalid(format!("{path}[{i}].name"), name, e));
                    }
                    if names.iter().any(|n| n == name) {
                        errs.push(FieldError::duplicate(format!("{path}[{i}].name"), name));
                    }
                    names.push(name.to_string());
                }
                if c["image"].as_str().map(|s| s.trim().is_empty()).unwrap_or(true) {
                    errs.push(FieldError::required(format!("{path}[{i}].image"), ""));
                }
                if let Some(p) = c["imagePullPolicy"].as_str() {
                    if !["Always", "IfNotPresent", "Never"].contains(&p) {
                        errs.push(FieldError::not_supported(format!("{path}[{i}].imagePullPolicy"), p, &["Always", "IfNotPresent", "Never"]));
                    }
                }
                for (j, port) in c["ports"].as_array().into_iter().flatten().enumerate() {
                    let n = port["containerPort"].as_i64().unwrap_or(0);
                    if !(1..=65535).contains(&n) {
                        errs.push(FieldError::invalid(format!("{path}[{i}].ports[{j}].containerPort"), port["containerPort"].clone(), "must be between 1 and 65535, inclusive"));
                    }
                }
            }
        }
    }
}

/// Validates a PodSpec under `path` (shared with workload templates).
pub fn validate_pod_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if !spec.is_object() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let mut names = Vec::new();
    validate_containers(&spec["containers"], &format!("{path}.containers"), true, errs, &mut names);
    validate_containers(&spec["initContainers"], &format!("{path}.initContainers"), false, errs, &mut names);
    if let Some(rp) = spec["restartPolicy"].as_str() {
        if !["Always", "OnFailure", "Never"].contains(&rp) {
            errs.push(FieldError::not_supported(format!("{path}.restartPolicy"), rp, &["Always", "OnFailure", "Never"]));
        }
    }
    if let Some(dp) = spec["dnsPolicy"].as_str() {
        if !["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"].contains(&dp) {
            errs.push(FieldError::not_supported(format!("{path}.dnsPolicy"), dp, &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]));
        }
    }
    if let Some(g) = spec["terminationGracePeriodSeconds"].as_i64() {
        if g < 0 {
            errs.push(FieldError::invalid(format!("{path}.terminationGracePeriodSeconds"), g, "must be greater than or equal to 0"));
        }
    }
}

impl Strategy for Pods {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        if o["spec"].is_object() {
            let spec = &mut o["spec"];
            common::default_pod_spec(spec);
            common::default_field(spec, "enableServiceLinks", json!(true));
            common::default_field(spec, "priority", json!(0));
            common::default_field(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
            if spec["serviceAccountName"].as_str().unwrap_or("").is_empty() {
                spec["serviceAccountName"] = json!("default");
            }
            common::default_field(spec, "serviceAccount", spec["serviceAccountName"].clone());
            // DefaultTolerationSeconds admission: tolerate not-ready/unreachable nodes for 300s.
            let tols = spec.get("tolerations").and_then(|t| t.as_array()).cloned().unwrap_or_default();
            let mut tols = tols;
            for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
                let has = tols.iter().any(|t| (t["key"] == key || t["key"].is_null() && t["operator"] == "Exists") && (t["effect"] == "NoExecute" || t["effect"].is_null()));
                if !has {
                    tols.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                }
            }
            spec["tolerations"] = json!(tols);
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        let qos = qos_class(&o["spec"]);
        o["status"] = json!({"phase": "Pending", "qosClass": qos});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_pod_spec(&o["spec"], "spec", errs);
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        // Only images, activeDeadlineSeconds, tolerations (additions) and the grace period may change.
        let mask = |v: &Value| {
            let mut s = v["spec"].clone();
            for list in ["containers", "initContainers"] {
                if let Some(cs) = s[list].as_array_mut() {
                    for c in cs {
                        c["image"] = Value::Null;
                    }
                }
            }
            if let Some(m) = s.as_object_mut() {
                for f in ["activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"] {
                    m.remove(f);
                }
            }
            s
        };
        if mask(new) != mask(old) {
            errs.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
    }
    fn grace_period(&self, o: &Value, requested: Option<i64>) -> i64 {
        let phase = o["status"]["phase"].as_str().unwrap_or("");
        if o["spec"]["nodeName"].as_str().unwrap_or("").is_empty() || phase == "Succeeded" || phase == "Failed" {
            return 0;
        }
        requested.unwrap_or_else(|| o["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30)).max(0)
    }
    fn return_deleted_object(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
            Column::new("Status", "string", 0, "The aggregate status of the containers in this pod."),
            Column::new("Restarts", "string", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            Column::age(),
            Column::new("IP", "string", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            Column::new("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
            Column::new("Nominated Node", "string", 1, "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods."),
            Column::new("Readiness Gates", "string", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let (ready, status, restarts) = status_cells(o);
        let gates = match o["spec"]["readinessGates"].as_array() {
            Some(g) if !g.is_empty() => {
                let conds = o["status"]["conditions"].as_array().cloned().unwrap_or_default();
                let ok = g.iter().filter(|gate| conds.iter().any(|c| c["type"] == gate["conditionType"] && c["status"] == "True")).count();
                format!("{ok}/{}", g.len())
            }
            _ => "<none>".into(),
        };
        vec![
            json!(crate::meta::name(o)),
            json!(ready),
            json!(status),
            json!(restarts),
            json!(table::age(o)),
            json!(common::string_or_none(&o["status"]["podIP"])),
            json!(common::string_or_none(&o["spec"]["nodeName"])),
            json!(common::string_or_none(&o["status"]["nominatedNodeName"])),
            json!(gates),
        ]
    }
    fn field_names(&self) -> &'static [&'static str] {
        FIELDS
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        FIELDS
            .iter()
            .map(|f| {
                let v = match *f {
                    "spec.hostNetwork" => (o["spec"]["hostNetwork"] == json!(true)).to_string(),
                    "status.podIPs" => o["status"]["podIPs"][0]["ip"].as_str().unwrap_or("").to_string(),
                    _ => common::field_string(o, f),
                };
                (*f, v)
            })
            .collect()
    }
}
