//! `ValidatePodSpec` and the container, volume, port, env, probe and resource checks it runs,
//! in upstream's order and with its messages, for pods and for every embedded pod template.

use std::collections::HashSet;

use serde_json::Value;

use crate::api::status::FieldError;
use crate::registry::quantity::Quantity;
use crate::registry::strategies::common::port_name_errors;
use crate::validation::{dns1123_label_errors, dns1123_subdomain_errors, label_value_errors, qualified_name_errors};

/// `validation.IsValidPortNum`'s message.
pub const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";
/// `apimachineryvalidation.IsNegativeErrorMsg`.
pub const NEGATIVE: &str = "must be greater than or equal to 0";

/// Whether the spec is validated as part of a Pod (`opts.ResourceIsPod`) or of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Pod,
    Template,
}

pub(super) fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub(super) fn arr(v: &Value) -> &[Value] {
    v.as_array().map(|a| a.as_slice()).unwrap_or(&[])
}

pub(super) fn dns_label(v: &str, path: &str, errs: &mut Vec<FieldError>) {
    for e in dns1123_label_errors(v) {
        errs.push(FieldError::invalid(path, v, e));
    }
}

pub(super) fn dns_subdomain(v: &str, path: &str, errs: &mut Vec<FieldError>) {
    for e in dns1123_subdomain_errors(v) {
        errs.push(FieldError::invalid(path, v, e));
    }
}

fn non_negative(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = v.as_i64().filter(|n| *n < 0) {
        errs.push(FieldError::invalid(path, n, NEGATIVE));
    }
}

/// `ValidateLabels` over a map (node selectors, template labels).
pub fn validate_labels(labels: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in labels.as_object().into_iter().flatten() {
        for e in qualified_name_errors(k) {
            errs.push(FieldError::invalid(path, k.as_str(), e));
        }
        for e in label_value_errors(s(v)) {
            errs.push(FieldError::invalid(path, s(v), e));
        }
    }
}

fn validate_ports(ports: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    for (i, p) in arr(ports).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let name = s(&p["name"]);
        if !name.is_empty() {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(format!("{ip}.name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(format!("{ip}.name"), name));
            }
        }
        match p["containerPort"].as_i64().unwrap_or(0) {
            0 => errs.push(FieldError::required(format!("{ip}.containerPort"), "")),
            n if !(1..=65535).contains(&n) => errs.push(FieldError::invalid(format!("{ip}.containerPort"), n, PORT_RANGE)),
            _ => {}
        }
        if let Some(h) = p["hostPort"].as_i64().filter(|h| *h != 0 && !(1..=65535).contains(h)) {
            errs.push(FieldError::invalid(format!("{ip}.hostPort"), h, PORT_RANGE));
        }
        match s(&p["protocol"]) {
            "" => errs.push(FieldError::required(format!("{ip}.protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(format!("{ip}.protocol"), other, &["SCTP", "TCP", "UDP"])),
        }
    }
}

fn validate_env(env: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in arr(env).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let name = s(&e["name"]);
        if name.is_empty() {
            errs.push(FieldError::required(format!("{ip}.name"), ""));
        } else if name.chars().any(|c| !c.is_ascii() || c.is_ascii_control() || c == '=') {
            errs.push(FieldError::invalid(format!("{ip}.name"), name, "a valid environment variable name must consist only of printable ASCII characters other than '='"));
        }
        let from = &e["valueFrom"];
        if from.is_null() {
            continue;
        }
        let vp = format!("{ip}.valueFrom");
        let sources = ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"].iter().filter(|k| !from[**k].is_null()).count();
        if let Some(f) = from["fieldRef"].as_object() {
            if f.get("apiVersion").and_then(|v| v.as_str()).unwrap_or("").is_empty() {
                errs.push(FieldError::required(format!("{vp}.fieldRef.apiVersion"), ""));
            } else if f.get("fieldPath").and_then(|v| v.as_str()).unwrap_or("").is_empty() {
                errs.push(FieldError::required(format!("{vp}.fieldRef.fieldPath"), ""));
            }
        }
        for k in ["configMapKeyRef", "secretKeyRef"] {
            if from[k].is_object() && s(&from[k]["key"]).is_empty() {
                errs.push(FieldError::required(format!("{vp}.{k}.key"), ""));
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !s(&e["value"]).is_empty() {
            errs.push(FieldError::invalid(&vp, "", "may not be specified when `value` is not empty"));
        } else if sources > 1 {
            errs.push(FieldError::invalid(&vp, "", "may not have more than one field specified at a time"));
        }
    }
}

fn validate_env_from(env_from: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in arr(env_from).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let n = ["configMapRef", "secretRef"].iter().filter(|k| !e[**k].is_null()).count();
        for k in ["configMapRef", "secretRef"] {
            if e[k].is_object() {
                let name = s(&e[k]["name"]);
                if name.is_empty() {
                    errs.push(FieldError::required(format!("{ip}.{k}.name"), ""));
                } else {
                    dns_subdomain(name, &format!("{ip}.{k}.name"), errs);
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"));
        } else if n > 1 {
            errs.push(FieldError::invalid(path, "", "may not have more than one field specified at a time"));
        }
    }
}

/// Whether requests may exceed... rather: may differ from limits (cpu, memory, storage).
fn overcommit_allowed(name: &str) -> bool {
    !(name.starts_with("hugepages-") || (name.contains('/') && !name.starts_with("kubernetes.io/") && !name.contains(".kubernetes.io/")))
}

fn standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// `ValidateResourceRequirements` for a container (or a pod's overhead, limits only).
pub fn validate_resources(res: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let limits = &res["limits"];
    let check = |list: &Value, lp: &str, errs: &mut Vec<FieldError>| {
        for (name, q) in list.as_object().into_iter().flatten() {
            let fp = format!("{lp}[{name}]");
            for e in qualified_name_errors(name) {
                errs.push(FieldError::invalid(&fp, name.as_str(), e));
            }
            if !name.contains('/') && !standard_container_resource(name) {
                errs.push(FieldError::invalid(&fp, name.as_str(), "must be a standard resource for containers"));
            }
            match Quantity::from_json(q) {
                None => errs.push(FieldError::invalid(&fp, q.clone(), crate::registry::strategies::persistentvolumeclaims::QUANTITY_FORMAT)),
                Some(qq) if qq.mantissa < 0 => errs.push(FieldError::invalid(&fp, qq.canonical(), NEGATIVE)),
                Some(qq) if !overcommit_allowed(name) || (name.contains('/') && !standard_container_resource(name)) => {
                    if qq.exp < 0 {
                        errs.push(FieldError::invalid(&fp, qq.canonical(), "must be an integer"));
                    }
                }
                _ => {}
            }
        }
    };
    check(limits, &format!("{path}.limits"), errs);
    check(&res["requests"], &format!("{path}.requests"), errs);
    for (name, q) in res["requests"].as_object().into_iter().flatten() {
        let (Some(req), lim) = (Quantity::from_json(q), Quantity::from_json(&limits[name.as_str()])) else { continue };
        match lim {
            Some(lim) => {
                let (a, b) = (value_of(&req), value_of(&lim));
                if a != b && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(format!("{path}.requests"), req.canonical(), format!("must be equal to {name} limit of {}", lim.canonical())));
                } else if a > b {
                    errs.push(FieldError::invalid(format!("{path}.requests"), req.canonical(), format!("must be less than or equal to {name} limit of {}", lim.canonical())));
                }
            }
            None if !overcommit_allowed(name) => errs.push(FieldError::required(format!("{path}.limits"), "Limit must be set for non overcommitable resources")),
            None => {}
        }
    }
}

/// A quantity's value for comparisons (exact enough for the sizes manifests use).
fn value_of(q: &Quantity) -> f64 {
    q.mantissa as f64 * 10f64.powi(q.exp)
}

fn port_num_or_name(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errs.push(FieldError::invalid(path, n, PORT_RANGE));
            }
        }
        Value::String(name) => {
            for m in port_name_errors(name) {
                errs.push(FieldError::invalid(path, name.as_str(), m));
            }
        }
        _ => errs.push(FieldError::invalid(path, 0, PORT_RANGE)),
    }
}

/// `validateHandler`: exactly one of exec, httpGet, tcpSocket, grpc (probes) or sleep (hooks).
fn validate_handler(h: &Value, path: &str, grace: i64, errs: &mut Vec<FieldError>) {
    let mut n = 0;
    for kind in ["exec", "httpGet", "tcpSocket", "grpc", "sleep"] {
        let x = &h[kind];
        if x.is_null() {
            continue;
        }
        let kp = format!("{path}.{kind}");
        if n > 0 {
            errs.push(FieldError::forbidden(kp, "may not specify more than 1 handler type"));
            continue;
        }
        n += 1;
        match kind {
            "exec" if arr(&x["command"]).is_empty() => errs.push(FieldError::required(format!("{kp}.command"), "")),
            "httpGet" => {
                if s(&x["path"]).is_empty() {
                    errs.push(FieldError::required(format!("{kp}.path"), ""));
                }
                port_num_or_name(&x["port"], &format!("{kp}.port"), errs);
                if !["HTTP", "HTTPS"].contains(&s(&x["scheme"])) {
                    errs.push(FieldError::not_supported(format!("{kp}.scheme"), s(&x["scheme"]), &["HTTP", "HTTPS"]));
                }
            }
            "tcpSocket" | "grpc" => port_num_or_name(&x["port"], &format!("{kp}.port"), errs),
            "sleep" => {
                let secs = x["seconds"].as_i64().unwrap_or(0);
                if secs <= 0 || secs > grace {
                    errs.push(FieldError::invalid(kp, secs, format!("must be greater than 0 and less than terminationGracePeriodSeconds ({grace})")));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn validate_probe(p: &Value, path: &str, grace: i64, kind: &str, errs: &mut Vec<FieldError>) {
    if !p.is_object() {
        return;
    }
    validate_handler(p, path, grace, errs);
    for f in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        non_negative(&p[f], &format!("{path}.{f}"), errs);
    }
    if let Some(t) = p["terminationGracePeriodSeconds"].as_i64().filter(|t| *t <= 0) {
        errs.push(FieldError::invalid(format!("{path}.terminationGracePeriodSeconds"), t, "must be greater than 0"));
    }
    match kind {
        "livenessProbe" | "startupProbe" => {
            if let Some(st) = p["successThreshold"].as_i64().filter(|t| *t != 1) {
                errs.push(FieldError::invalid(format!("{path}.successThreshold"), st, "must be 1"));
            }
        }
        _ => {
            if !p["terminationGracePeriodSeconds"].is_null() {
                errs.push(FieldError::invalid(format!("{path}.terminationGracePeriodSeconds"), p["terminationGracePeriodSeconds"].clone(), "must not be set for readinessProbes"));
            }
        }
    }
}

fn validate_lifecycle(l: &Value, path: &str, grace: i64, errs: &mut Vec<FieldError>) {
    for hook in ["postStart", "preStop"] {
        if l[hook].is_object() {
            validate_handler(&l[hook], &format!("{path}.{hook}"), grace, errs);
        }
    }
}

/// `validateContainerCommon`.
fn validate_container_common(c: &Value, volumes: &HashSet<String>, path: &str, errs: &mut Vec<FieldError>) {
    let name = s(&c["name"]);
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        dns_label(name, &format!("{path}.name"), errs);
    }
    if s(&c["image"]).is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    }
    match s(&c["terminationMessagePolicy"]) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(format!("{path}.terminationMessagePolicy"), "")),
        p => errs.push(FieldError::not_supported(format!("{path}.terminationMessagePolicy"), p, &["File", "FallbackToLogsOnError"])),
    }
    validate_ports(&c["ports"], &format!("{path}.ports"), errs);
    validate_env(&c["env"], &format!("{path}.env"), errs);
    validate_env_from(&c["envFrom"], &format!("{path}.envFrom"), errs);
    super::volumes::validate_mounts(&c["volumeMounts"], volumes, &format!("{path}.volumeMounts"), errs);
    match s(&c["imagePullPolicy"]) {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(format!("{path}.imagePullPolicy"), "")),
        p => errs.push(FieldError::not_supported(format!("{path}.imagePullPolicy"), p, &["Always", "IfNotPresent", "Never"])),
    }
    validate_resources(&c["resources"], &format!("{path}.resources"), errs);
}

/// Host ports must not collide (protocol/hostIP/port) within one list of containers.
fn host_port_conflicts(cs: &[&Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (ci, c) in cs.iter().enumerate() {
        for (pi, p) in arr(&c["ports"]).iter().enumerate() {
            let port = p["hostPort"].as_i64().unwrap_or(0);
            if port == 0 {
                continue;
            }
            let key = format!("{}/{}/{port}", s(&p["protocol"]), s(&p["hostIP"]));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(format!("{path}[{ci}].ports[{pi}].hostPort"), key));
            }
        }
    }
}

/// `validateContainers` for the regular containers.
fn validate_containers(list: &Value, volumes: &HashSet<String>, grace: i64, path: &str, errs: &mut Vec<FieldError>) {
    let cs = arr(list);
    if cs.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let mut names = HashSet::new();
    for (i, c) in cs.iter().enumerate() {
        let ip = format!("{path}[{i}]");
        validate_container_common(c, volumes, &ip, errs);
        let name = s(&c["name"]);
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{ip}.name"), name));
        }
        if c["lifecycle"].is_object() {
            validate_lifecycle(&c["lifecycle"], &format!("{ip}.lifecycle"), grace, errs);
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            validate_probe(&c[probe], &format!("{ip}.{probe}"), grace, probe, errs);
        }
        if !c["restartPolicy"].is_null() {
            errs.push(FieldError::forbidden(format!("{ip}.restartPolicy"), "may not be set for non-init containers"));
        }
    }
    host_port_conflicts(&cs.iter().collect::<Vec<_>>(), path, errs);
}

/// `validateInitContainers`: names unique across both lists; hooks and probes only for
/// restartable (sidecar) init containers.
fn validate_init_containers(list: &Value, regular: &Value, volumes: &HashSet<String>, grace: i64, path: &str, errs: &mut Vec<FieldError>) {
    let mut names: HashSet<&str> = arr(regular).iter().map(|c| s(&c["name"])).collect();
    for (i, c) in arr(list).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        validate_container_common(c, volumes, &ip, errs);
        let always = match &c["restartPolicy"] {
            Value::Null => false,
            Value::String(p) if p == "Always" => true,
            other => {
                errs.push(FieldError::not_supported(format!("{ip}.restartPolicy"), other.clone(), &["Always"]));
                false
            }
        };
        let name = s(&c["name"]);
        if names.contains(name) {
            errs.push(FieldError::duplicate(format!("{ip}.name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        host_port_conflicts(&[c], path, errs);
        if always {
            if c["lifecycle"].is_object() {
                validate_lifecycle(&c["lifecycle"], &format!("{ip}.lifecycle"), grace, errs);
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                validate_probe(&c[probe], &format!("{ip}.{probe}"), grace, probe, errs);
            }
        } else {
            for f in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
                if !c[f].is_null() {
                    errs.push(FieldError::forbidden(format!("{ip}.{f}"), "may not be set for init containers without restartPolicy=Always"));
                }
            }
        }
        if !arr(&c["resizePolicy"]).is_empty() {
            errs.push(FieldError::invalid(format!("{ip}.resizePolicy"), c["resizePolicy"].clone(), "must not be set for init containers"));
        }
    }
}

fn validate_tolerations(tols: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, t) in arr(tols).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let key = s(&t["key"]);
        if !key.is_empty() {
            for e in qualified_name_errors(key) {
                errs.push(FieldError::invalid(format!("{ip}.key"), key, e));
            }
        }
        let op = s(&t["operator"]);
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(format!("{ip}.operator"), op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
        }
        if !t["tolerationSeconds"].is_null() && s(&t["effect"]) != "NoExecute" {
            errs.push(FieldError::invalid(format!("{ip}.effect"), s(&t["effect"]), "effect must be 'NoExecute' when `tolerationSeconds` is set"));
        }
        match op {
            "" | "Equal" => {
                let e = label_value_errors(s(&t["value"]));
                if !e.is_empty() {
                    errs.push(FieldError::invalid(format!("{ip}.operator"), s(&t["value"]), e.join(";")));
                }
            }
            "Exists" => {
                if !s(&t["value"]).is_empty() {
                    errs.push(FieldError::invalid(format!("{ip}.operator"), t.clone(), "value must be empty when `operator` is 'Exists'"));
                }
            }
            other => errs.push(FieldError::not_supported(format!("{ip}.operator"), other, &["Equal", "Exists"])),
        }
        let effect = s(&t["effect"]);
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            errs.push(FieldError::not_supported(format!("{ip}.effect"), effect, &["NoSchedule", "PreferNoSchedule", "NoExecute"]));
        }
    }
}

/// `ValidatePodSpec` (plus, for pods, `validatePodMetadataAndSpec`'s and `ValidatePodCreate`'s
/// pod-only checks when `owner` is [`Owner::Pod`]).
pub fn validate_pod_spec(spec: &Value, path: &str, owner: Owner, errs: &mut Vec<FieldError>) {
    if !spec.is_object() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    if spec["terminationGracePeriodSeconds"].is_null() {
        errs.push(FieldError::required(format!("{path}.terminationGracePeriodSeconds"), ""));
    }
    let grace = spec["terminationGracePeriodSeconds"].as_i64().unwrap_or(30);
    let volumes = super::volumes::validate_volumes(&spec["volumes"], &format!("{path}.volumes"), errs);
    validate_containers(&spec["containers"], &volumes, grace, &format!("{path}.containers"), errs);
    validate_init_containers(&spec["initContainers"], &spec["containers"], &volumes, grace, &format!("{path}.initContainers"), errs);
    if spec["hostNetwork"] == Value::Bool(true) {
        for (i, c) in arr(&spec["containers"]).iter().enumerate() {
            for (j, p) in arr(&c["ports"]).iter().enumerate() {
                let (hp, cp) = (p["hostPort"].as_i64().unwrap_or(0), p["containerPort"].as_i64().unwrap_or(0));
                if (owner == Owner::Pod || hp != 0) && hp != cp {
                    errs.push(FieldError::invalid(format!("{path}.containers[{i}].ports[{j}].hostPort"), hp, "must match `containerPort` when `hostNetwork` is true"));
                }
            }
        }
    }
    match s(&spec["restartPolicy"]) {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(format!("{path}.restartPolicy"), "")),
        p => errs.push(FieldError::not_supported(format!("{path}.restartPolicy"), p, &["Always", "OnFailure", "Never"])),
    }
    match s(&spec["dnsPolicy"]) {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(format!("{path}.dnsPolicy"), "")),
        p => errs.push(FieldError::not_supported(format!("{path}.dnsPolicy"), p, &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"])),
    }
    validate_labels(&spec["nodeSelector"], &format!("{path}.nodeSelector"), errs);
    let sc = &spec["securityContext"];
    for f in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(id) = sc[f].as_i64().filter(|id| !(0..=2147483647).contains(id)) {
            errs.push(FieldError::invalid(format!("{path}.securityContext.{f}"), id, "must be between 0 and 2147483647, inclusive"));
        }
    }
    for (i, p) in arr(&spec["imagePullSecrets"]).iter().enumerate() {
        if p.as_object().map(|m| m.keys().any(|k| k != "name")).unwrap_or(false) {
            errs.push(FieldError::invalid(format!("{path}.imagePullSecrets[{i}]"), p.clone(), "only name may be set"));
        }
    }
    if s(&spec["dnsPolicy"]) == "None" {
        if spec["dnsConfig"].is_null() {
            errs.push(FieldError::required(format!("{path}.dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"));
        } else if arr(&spec["dnsConfig"]["nameservers"]).is_empty() {
            errs.push(FieldError::required(format!("{path}.dnsConfig.nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"));
        }
    }
    for (i, g) in arr(&spec["readinessGates"]).iter().enumerate() {
        let t = s(&g["conditionType"]);
        for e in qualified_name_errors(t) {
            errs.push(FieldError::invalid(format!("{path}.readinessGates[{i}].conditionType"), t, e));
        }
    }
    let mut gates = HashSet::new();
    for (i, g) in arr(&spec["schedulingGates"]).iter().enumerate() {
        let n = s(&g["name"]);
        for e in qualified_name_errors(n) {
            errs.push(FieldError::invalid(format!("{path}.schedulingGates[{i}]"), n, e));
        }
        if !gates.insert(n) {
            errs.push(FieldError::duplicate(format!("{path}.schedulingGates[{i}]"), n));
        }
    }
    if let Some(sa) = spec["serviceAccountName"].as_str().filter(|x| !x.is_empty()) {
        dns_subdomain(sa, &format!("{path}.serviceAccountName"), errs);
    }
    if let Some(n) = spec["nodeName"].as_str().filter(|x| !x.is_empty()) {
        dns_subdomain(n, &format!("{path}.nodeName"), errs);
    }
    if let Some(d) = spec["activeDeadlineSeconds"].as_i64() {
        if !(1..=i32::MAX as i64).contains(&d) {
            errs.push(FieldError::invalid(format!("{path}.activeDeadlineSeconds"), d, "must be between 1 and 2147483647, inclusive"));
        }
    }
    for f in ["hostname", "subdomain"] {
        if let Some(h) = spec[f].as_str().filter(|x| !x.is_empty()) {
            dns_label(h, &format!("{path}.{f}"), errs);
        }
    }
    validate_tolerations(&spec["tolerations"], &format!("{path}.tolerations"), errs);
    if let Some(p) = spec["priorityClassName"].as_str().filter(|x| !x.is_empty()) {
        dns_subdomain(p, &format!("{path}.priorityClassName"), errs);
    }
    match spec["preemptionPolicy"].as_str() {
        None | Some("PreemptLowerPriority") | Some("Never") => {}
        Some("") => errs.push(FieldError::required(format!("{path}.preemptionPolicy"), "")),
        Some(p) => errs.push(FieldError::not_supported(format!("{path}.preemptionPolicy"), p, &["PreemptLowerPriority", "Never"])),
    }
    if spec["overhead"].is_object() {
        validate_resources(&serde_json::json!({"limits": spec["overhead"].clone()}), &format!("{path}.overhead"), errs);
    }
    if owner == Owner::Pod {
        for list in ["containers", "initContainers"] {
            for (i, c) in arr(&spec[list]).iter().enumerate() {
                let img = s(&c["image"]);
                if img.len() != img.trim().len() {
                    errs.push(FieldError::invalid(format!("{path}.{list}[{i}].image"), img, "must not have leading or trailing whitespace"));
                }
            }
        }
    }
}

/// `ValidatePodCreate`'s additions: no ephemeral containers, no node while gated.
pub fn validate_pod_create(spec: &Value, errs: &mut Vec<FieldError>) {
    if !arr(&spec["ephemeralContainers"]).is_empty() {
        errs.push(FieldError::forbidden("spec.ephemeralContainers", "cannot be set on create"));
    }
    if !s(&spec["nodeName"]).is_empty() && !arr(&spec["schedulingGates"]).is_empty() {
        errs.push(FieldError::forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"));
    }
}

/// `ValidatePodTemplateSpec`: template labels and annotations, the spec, and no ephemeral
/// containers.
pub fn validate_template(t: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if !t.is_object() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    validate_labels(&t["metadata"]["labels"], &format!("{path}.labels"), errs);
    for k in t["metadata"]["annotations"].as_object().into_iter().flatten().map(|(k, _)| k) {
        for e in qualified_name_errors(&k.to_lowercase()) {
            errs.push(FieldError::invalid(format!("{path}.annotations"), k.as_str(), e));
        }
    }
    validate_pod_spec(&t["spec"], &format!("{path}.spec"), Owner::Template, errs);
    if !arr(&t["spec"]["ephemeralContainers"]).is_empty() {
        errs.push(FieldError::forbidden(format!("{path}.spec.ephemeralContainers"), "ephemeral containers not allowed in pod template"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategies::podspec::defaults::default_pod_template;
    use serde_json::json;

    fn errors(t: Value) -> Vec<String> {
        let mut t = t;
        default_pod_template(&mut t);
        let mut errs = Vec::new();
        validate_template(&t, "spec.template", &mut errs);
        errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect()
    }

    #[test]
    fn a_defaulted_minimal_template_is_valid() {
        assert!(errors(json!({"spec": {"containers": [{"name": "web", "image": "nginx"}]}})).is_empty());
    }

    #[test]
    fn containers_ports_volumes_and_env_get_upstream_messages() {
        let got = errors(json!({"spec": {
            "volumes": [{"name": "data"}, {"name": "data", "configMap": {"name": "x"}, "secret": {"secretName": "y"}}],
            "containers": [
                {"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 70000}],
                 "volumeMounts": [{"name": "nope", "mountPath": "/a"}], "env": [{"name": "A=B", "value": "x"}]},
                {"name": "web", "image": "", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}}));
        let want = [
            "spec.template.spec.volumes[1].configMap: Forbidden: may not specify more than 1 volume type",
            "spec.template.spec.volumes[1].name: Duplicate value: \"data\"",
            "spec.template.spec.containers[0].ports[1].name: Duplicate value: \"http\"",
            "spec.template.spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.template.spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"nope\"",
            "spec.template.spec.containers[1].image: Required value",
            "spec.template.spec.containers[1].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.template.spec.containers[1].name: Duplicate value: \"web\"",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn probes_policies_and_pod_only_rules() {
        let got = errors(json!({"spec": {"restartPolicy": "Sometimes", "containers": [{"name": "c", "image": "x",
            "livenessProbe": {"successThreshold": 2}, "readinessProbe": {"tcpSocket": {"port": "http"}, "exec": {"command": ["true"]}}}]}}));
        assert_eq!(got, [
            "spec.template.spec.containers[0].livenessProbe: Required value: must specify a handler type",
            "spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.template.spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
            "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
        ]);
        let mut spec = json!({"containers": [{"name": "c", "image": " x"}], "ephemeralContainers": [{"name": "e", "image": "y"}]});
        let mut t = json!({"spec": spec.clone()});
        default_pod_template(&mut t);
        spec = t["spec"].clone();
        let mut errs = Vec::new();
        validate_pod_spec(&spec, "spec", Owner::Pod, &mut errs);
        validate_pod_create(&spec, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.containers[0].image", "spec.ephemeralContainers"]);
    }
}
