//! core/v1 pods: defaults, Pending status on create, graceful deletion, the READY/STATUS/RESTARTS
//! columns computed as kubectl's pod printer does, and the field selectors the kubelet uses.

use serde_json::{json, Value};

use super::{common, info, podspec};
use crate::api::status::FieldError;
use crate::api::table;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Pods;

static INFO: ResourceInfo = info("", "v1", "Pod", "pods", "pod", true).with_short_names(&["po"]).with_categories(&["all"]).with_subresources(&["status", "binding", "eviction"]);

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

impl Strategy for Pods {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        if !o["spec"].is_object() {
            o["spec"] = json!({});
        }
        let spec = &mut o["spec"];
        podspec::default_pod_only(spec);
        podspec::default_pod_spec(spec);
        // v1 conversion: the deprecated serviceAccount mirrors serviceAccountName.
        if spec["serviceAccountName"].as_str().unwrap_or("").is_empty() {
            if let Some(sa) = spec["serviceAccount"].as_str().filter(|s| !s.is_empty()).map(String::from) {
                spec["serviceAccountName"] = json!(sa);
            }
        }
        match spec["serviceAccountName"].as_str().filter(|s| !s.is_empty()).map(String::from) {
            Some(sa) => spec["serviceAccount"] = json!(sa),
            None => {
                if let Some(m) = spec.as_object_mut() {
                    m.remove("serviceAccount");
                }
            }
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        // What the default admission plugins add on create: the Priority plugin's priority
        // and policy, DefaultTolerationSeconds' 300s. (The ServiceAccount plugin is
        // `serviceaccount::admission`, run by the store.)
        let spec = &mut o["spec"];
        common::default_field(spec, "priority", json!(0));
        common::default_field(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        let mut tols = spec.get("tolerations").and_then(|t| t.as_array()).cloned().unwrap_or_default();
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            let has = tols.iter().any(|t| (t["key"] == key || t["key"].is_null() && t["operator"] == "Exists") && (t["effect"] == "NoExecute" || t["effect"].is_null()));
            if !has {
                tols.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
        spec["tolerations"] = json!(tols);
        let qos = qos_class(&o["spec"]);
        o["status"] = json!({"phase": "Pending", "qosClass": qos});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        podspec::validate_pod_spec(&o["spec"], "spec", podspec::Owner::Pod, errs);
    }
    fn validate_create(&self, o: &Value, errs: &mut Vec<FieldError>) {
        podspec::validation::validate_pod_create(&o["spec"], errs);
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        podspec::update::validate_pod_update(new, old, errs);
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
