//! core/v1 services: upstream defaults, ClusterIP and NodePort allocation, the TYPE/CLUSTER-IP/
//! EXTERNAL-IP/PORT(S) columns.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::{common, info};
use crate::api::gofmt;
use crate::api::status::{ApiError, ApiResult, FieldError};
use crate::registry::store::Store;
use crate::registry::{Column, ResourceInfo, Strategy};
use crate::validation::NameRule;

pub struct Services;

static INFO: ResourceInfo = info("", "v1", "Service", "services", "service", true).with_short_names(&["svc"]).with_categories(&["all"]).with_subresources(&["status"]).with_name_rule(NameRule::Label1035);

const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

fn used(store: &Store, skip_uid: &str) -> (HashSet<Ipv4Addr>, HashSet<u16>) {
    let cache = store.caches.resource(&INFO.id());
    let (items, _) = cache.snapshot();
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for o in items {
        let v = o.value();
        if crate::meta::uid(&v) == skip_uid {
            continue;
        }
        for ip in v["spec"]["clusterIPs"].as_array().into_iter().flatten() {
            if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
                ips.insert(ip);
            }
        }
        for p in v["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(np) = p["nodePort"].as_u64() {
                ports.insert(np as u16);
            }
        }
    }
    (ips, ports)
}

fn needs_node_ports(spec: &Value) -> bool {
    let t = spec["type"].as_str().unwrap_or("ClusterIP");
    t == "NodePort" || (t == "LoadBalancer" && spec["allocateLoadBalancerNodePorts"] != json!(false))
}

fn invalid(o: &Value, errs: Vec<FieldError>) -> ApiError {
    ApiError::invalid("", "Service", crate::meta::name(o), &errs)
}

/// Allocates what the service asks for; `old` keeps what an update already holds.
fn allocate(store: &Store, o: &mut Value, old: Option<&Value>) -> ApiResult<()> {
    let t = o["spec"]["type"].as_str().unwrap_or("ClusterIP").to_string();
    let (used_ips, used_ports) = used(store, crate::meta::uid(o));
    let spec = &mut o["spec"];
    if t != "ExternalName" {
        // initIPFamilyFields on this single-stack IPv4 cluster: headless services without a
        // selector default to RequireDualStack, everything else to SingleStack.
        let headless = spec["clusterIP"] == "None";
        let selectorless = spec["selector"].as_object().map(|m| m.is_empty()).unwrap_or(true);
        if spec["ipFamilyPolicy"].is_null() {
            spec["ipFamilyPolicy"] = json!(if headless && selectorless { "RequireDualStack" } else { "SingleStack" });
        }
        if spec["ipFamilies"].as_array().map(|a| a.is_empty()).unwrap_or(true) {
            spec["ipFamilies"] = json!(["IPv4"]);
        }
    }
    if t == "ExternalName" {
        if let Some(m) = spec.as_object_mut() {
            m.remove("clusterIP");
            m.remove("clusterIPs");
        }
        return Ok(());
    }
    if let Some(old) = old {
        // clusterIP is immutable: an update that leaves it out keeps the old one.
        if spec["clusterIP"].as_str().unwrap_or("").is_empty() && old["spec"]["clusterIP"].is_string() {
            spec["clusterIP"] = old["spec"]["clusterIP"].clone();
            spec["clusterIPs"] = old["spec"]["clusterIPs"].clone();
        }
    }
    let requested = spec["clusterIP"].as_str().unwrap_or("").to_string();
    let old_ip = old.and_then(|o| o["spec"]["clusterIP"].as_str()).unwrap_or("").to_string();
    if requested == "None" {
        spec["clusterIPs"] = json!(["None"]);
    } else if requested.is_empty() {
        let ip = store.alloc.allocate_ip(&used_ips).ok_or_else(|| {
            ApiError::internal("failed to allocate a serviceIP: range is full")
        })?;
        spec["clusterIP"] = json!(ip.to_string());
        spec["clusterIPs"] = json!([ip.to_string()]);
    } else if requested != old_ip {
        let ip: Ipv4Addr = requested.parse().map_err(|_| {
            invalid(&json!({"metadata": {"name": ""}}), vec![FieldError::invalid("spec.clusterIPs[0]", requested.as_str(), "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")])
        })?;
        if !store.alloc.contains(ip) && ip != store.alloc.kubernetes_ip() {
            return Err(ApiError::invalid("", "Service", "", &[FieldError::invalid(
                "spec.clusterIPs",
                json!([requested]),
                format!("failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}", store.alloc.range_string()),
            )]));
        }
        if !store.alloc.claim_ip(ip, &used_ips) {
            return Err(ApiError::invalid("", "Service", "", &[FieldError::invalid(
                "spec.clusterIPs",
                json!([requested]),
                format!("failed to allocate IP {requested}: provided IP is already allocated"),
            )]));
        }
        spec["clusterIPs"] = json!([requested]);
    } else {
        spec["clusterIPs"] = json!([requested]);
    }
    if needs_node_ports(spec) {
        let mut taken = used_ports;
        if let Some(ports) = spec["ports"].as_array_mut() {
            for (i, p) in ports.iter_mut().enumerate() {
                match p["nodePort"].as_u64() {
                    Some(np) => {
                        let np = np as u16;
                        let was = old.map(|o| o["spec"]["ports"].as_array().into_iter().flatten().any(|op| op["nodePort"].as_u64() == Some(np as u64))).unwrap_or(false);
                        if !was {
                            if np < store.alloc.node_port_min || np > store.alloc.node_port_max {
                                return Err(ApiError::invalid("", "Service", "", &[FieldError::invalid(
                                    format!("spec.ports[{i}].nodePort"), np, format!("provided port is not in the valid range. The range of valid ports is {}-{}", store.alloc.node_port_min, store.alloc.node_port_max),
                                )]));
                            }
                            if !store.alloc.claim_port(np, &taken) {
                                return Err(ApiError::invalid("", "Service", "", &[FieldError::invalid(
                                    format!("spec.ports[{i}].nodePort"), np, "provided port is already allocated",
                                )]));
                            }
                        }
                        taken.insert(np);
                    }
                    None => {
                        let np = store.alloc.allocate_port(&taken).ok_or_else(|| ApiError::internal("failed to allocate a nodePort: range is full"))?;
                        taken.insert(np);
                        p["nodePort"] = json!(np);
                    }
                }
            }
        }
    }
    Ok(())
}

impl Strategy for Services {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        // SetDefaults_Service.
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        if spec["sessionAffinity"].as_str().unwrap_or("").is_empty() {
            spec["sessionAffinity"] = json!("None");
        }
        match spec["sessionAffinity"].as_str().unwrap_or("") {
            "None" => {
                if let Some(m) = spec.as_object_mut() {
                    m.remove("sessionAffinityConfig");
                }
            }
            "ClientIP" if spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].is_null() => {
                spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
            }
            _ => {}
        }
        if spec["type"].as_str().unwrap_or("").is_empty() {
            spec["type"] = json!("ClusterIP");
        }
        let t = spec["type"].as_str().unwrap_or("").to_string();
        if let Some(ports) = spec["ports"].as_array_mut() {
            for p in ports.iter_mut().filter(|p| p.is_object()) {
                if p["protocol"].as_str().unwrap_or("").is_empty() {
                    p["protocol"] = json!("TCP");
                }
                if p["targetPort"].is_null() || p["targetPort"] == json!(0) || p["targetPort"] == json!("") {
                    p["targetPort"] = p["port"].clone();
                }
            }
        }
        let has_external_ips = spec["externalIPs"].as_array().map(|a| !a.is_empty()).unwrap_or(false);
        let externally_accessible = t == "NodePort" || t == "LoadBalancer" || (t == "ClusterIP" && has_external_ips);
        if externally_accessible && spec["externalTrafficPolicy"].as_str().unwrap_or("").is_empty() {
            spec["externalTrafficPolicy"] = json!("Cluster");
        }
        if ["NodePort", "LoadBalancer", "ClusterIP"].contains(&t.as_str()) {
            common::default_field(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if t == "LoadBalancer" {
            common::default_field(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        if o["status"].is_null() {
            o["status"] = json!({"loadBalancer": {}});
        }
    }
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // patchAllocatedValues and normalizeClusterIPs: what the client left out of an update
        // keeps its allocated value, and clusterIP and clusterIPs stay in step.
        let needs_ip = |v: &Value| v["spec"]["type"].as_str().unwrap_or("ClusterIP") != "ExternalName";
        if needs_ip(old) && needs_ip(new) {
            if new["spec"]["clusterIP"].as_str().unwrap_or("").is_empty() && !old["spec"]["clusterIP"].is_null() {
                new["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
            }
            if new["spec"]["clusterIPs"].as_array().map(|a| a.is_empty()).unwrap_or(true) && old["spec"]["clusterIPs"].is_array() {
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
        }
        let (oip, nip) = (old["spec"]["clusterIP"].as_str().unwrap_or("").to_string(), new["spec"]["clusterIP"].as_str().unwrap_or("").to_string());
        if oip != nip && !nip.is_empty() {
            let ips = new["spec"]["clusterIPs"].as_array().cloned().unwrap_or_default();
            if ips.is_empty() {
                new["spec"]["clusterIPs"] = json!([nip]);
            } else if ips[0] == json!(oip) {
                new["spec"]["clusterIPs"][0] = json!(nip);
            }
        }
        if needs_node_ports(&old["spec"]) && needs_node_ports(&new["spec"]) {
            let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
            for p in new["spec"]["ports"].as_array_mut().into_iter().flatten().filter(|p| p["nodePort"].is_null()) {
                if let Some(op) = old_ports.iter().find(|op| op["port"] == p["port"] && op["protocol"] == p["protocol"]) {
                    if !op["nodePort"].is_null() {
                        p["nodePort"] = op["nodePort"].clone();
                    }
                }
            }
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"loadBalancer": {}});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        let t = spec["type"].as_str().unwrap_or("ClusterIP");
        if !TYPES.contains(&t) {
            errs.push(FieldError::not_supported("spec.type", t, TYPES));
        }
        let ports = spec["ports"].as_array().cloned().unwrap_or_default();
        let headless = spec["clusterIP"] == "None";
        if ports.is_empty() && t != "ExternalName" && !headless {
            errs.push(FieldError::required("spec.ports", ""));
        }
        if t == "ExternalName" && spec["externalName"].as_str().unwrap_or("").is_empty() {
            errs.push(FieldError::required("spec.externalName", ""));
        }
        // validateServicePort, port by port.
        let mut names = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let pp = format!("spec.ports[{i}]");
            let name = p["name"].as_str().unwrap_or("");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(format!("{pp}.name"), ""));
            } else if !name.is_empty() {
                for e in crate::validation::dns1123_label_errors(name) {
                    errs.push(FieldError::invalid(format!("{pp}.name"), name, e));
                }
                if names.contains(&name) {
                    errs.push(FieldError::duplicate(format!("{pp}.name"), name));
                } else {
                    names.push(name);
                }
            }
            let port = p["port"].as_i64().unwrap_or(0);
            if !(1..=65535).contains(&port) {
                errs.push(FieldError::invalid(format!("{pp}.port"), port, "must be between 1 and 65535, inclusive"));
            }
            match p["protocol"].as_str().unwrap_or("") {
                "" => errs.push(FieldError::required(format!("{pp}.protocol"), "")),
                "TCP" | "UDP" | "SCTP" => {}
                proto => errs.push(FieldError::not_supported(format!("{pp}.protocol"), proto, &["SCTP", "TCP", "UDP"])),
            }
            match &p["targetPort"] {
                Value::String(n) => {
                    for e in common::port_name_errors(n) {
                        errs.push(FieldError::invalid(format!("{pp}.targetPort"), n.as_str(), e));
                    }
                }
                t => {
                    let n = t.as_i64().unwrap_or(0);
                    if !(1..=65535).contains(&n) {
                        errs.push(FieldError::invalid(format!("{pp}.targetPort"), n, "must be between 1 and 65535, inclusive"));
                    }
                }
            }
            if p["nodePort"].is_number() && !needs_node_ports(spec) {
                errs.push(FieldError::forbidden(format!("{pp}.nodePort"), "may not be used when `type` is 'ClusterIP'"));
            }
        }
        if let Some(sel) = spec["selector"].as_object() {
            for (k, v) in sel {
                for e in crate::validation::qualified_name_errors(k) {
                    errs.push(FieldError::invalid("spec.selector", k.as_str(), e));
                }
                for e in crate::validation::label_value_errors(v.as_str().unwrap_or("")) {
                    errs.push(FieldError::invalid("spec.selector", v.clone(), e));
                }
            }
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        // validateUpgradeDowngradeClusterIPs: an allocated IP never changes (ExternalName aside).
        let external = |v: &Value| v["spec"]["type"] == "ExternalName";
        let headless = |v: &Value| v["spec"]["clusterIP"] == "None";
        if external(new) || external(old) || (headless(new) && headless(old)) {
            return;
        }
        let (n, o) = (new["spec"]["clusterIPs"].as_array().cloned().unwrap_or_default(), old["spec"]["clusterIPs"].as_array().cloned().unwrap_or_default());
        let ips = gofmt::string_slice(&new["spec"]["clusterIPs"]);
        if n.len() == o.len() {
            for (i, ip) in o.iter().enumerate() {
                if *ip != n[i] {
                    errs.push(FieldError::invalid_rendered(format!("spec.clusterIPs[{i}]"), ips.clone(), "may not change once set"));
                }
            }
        } else if n.is_empty() {
            errs.push(FieldError::invalid_rendered("spec.clusterIPs[0]", ips, "primary clusterIP can not be unset"));
        } else if !o.is_empty() && n[0] != o[0] {
            errs.push(FieldError::invalid_rendered("spec.clusterIPs[0]", ips, "may not change once set"));
        }
    }
    fn admit_create(&self, store: &Store, o: &mut Value) -> ApiResult<()> {
        allocate(store, o, None)
    }
    fn admit_update(&self, store: &Store, new: &mut Value, old: &Value) -> ApiResult<()> {
        allocate(store, new, Some(old))
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Type", "string", 0, "The type of the service."),
            Column::new("Cluster-IP", "string", 0, "The cluster IP of the service."),
            Column::new("External-IP", "string", 0, "The external IP of the service."),
            Column::new("Port(s)", "string", 0, "The ports of the service."),
            Column::age(),
            Column::new("Selector", "string", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let spec = &o["spec"];
        let t = spec["type"].as_str().unwrap_or("ClusterIP");
        let ext_ips: Vec<String> = spec["externalIPs"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect();
        let external = match t {
            "ClusterIP" | "NodePort" => if ext_ips.is_empty() { "<none>".to_string() } else { ext_ips.join(",") },
            "ExternalName" => spec["externalName"].as_str().unwrap_or("").to_string(),
            _ => {
                let mut lb: Vec<String> = o["status"]["loadBalancer"]["ingress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()).map(String::from))
                    .collect();
                lb.extend(ext_ips);
                if lb.is_empty() { "<pending>".into() } else { lb.join(",") }
            }
        };
        let ports: Vec<String> = spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let proto = p["protocol"].as_str().unwrap_or("TCP");
                match p["nodePort"].as_i64() {
                    Some(np) if np > 0 => format!("{}:{np}/{proto}", p["port"]),
                    _ => format!("{}/{proto}", p["port"]),
                }
            })
            .collect();
        let mut sel: Vec<String> = spec["selector"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
        sel.sort();
        let cluster_ip = match spec["clusterIP"].as_str() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => "<none>".into(),
        };
        vec![
            json!(crate::meta::name(o)),
            json!(t),
            json!(cluster_ip),
            json!(external),
            json!(if ports.is_empty() { "<none>".to_string() } else { ports.join(",") }),
            json!(crate::api::table::age(o)),
            json!(if sel.is_empty() { "<none>".to_string() } else { sel.join(",") }),
        ]
    }
    fn field_names(&self) -> &'static [&'static str] {
        &["spec.clusterIP", "spec.type"]
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        vec![
            ("spec.clusterIP", common::field_string(o, "spec.clusterIP")),
            ("spec.type", common::field_string(o, "spec.type")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults_follow_set_defaults_service() {
        let mut o = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort", "sessionAffinity": "ClientIP",
            "ports": [{"port": 80, "targetPort": ""}, {"name": "b", "port": 81, "targetPort": "http"}]}});
        Services.default(&mut o);
        let s = &o["spec"];
        assert_eq!(s["sessionAffinityConfig"], json!({"clientIP": {"timeoutSeconds": 10800}}));
        assert_eq!((s["ports"][0]["targetPort"].clone(), s["ports"][1]["targetPort"].clone()), (json!(80), json!("http")));
        assert_eq!((s["externalTrafficPolicy"].clone(), s["internalTrafficPolicy"].clone()), (json!("Cluster"), json!("Cluster")));
        let mut o = json!({"spec": {"type": "ExternalName", "externalName": "x.example.com", "sessionAffinityConfig": {"clientIP": {}}}});
        Services.default(&mut o);
        assert!(o["spec"].get("internalTrafficPolicy").is_none() && o["spec"].get("externalTrafficPolicy").is_none());
        assert!(o["spec"].get("sessionAffinityConfig").is_none());
    }

    #[test]
    fn ports_are_validated_as_validate_service_port() {
        let mut o = json!({"spec": {"selector": {"app": "a"}, "ports": [{"name": "web", "port": 80}, {"name": "web", "port": 70000, "targetPort": "Bad"}, {"port": 81}]}});
        Services.default(&mut o);
        let mut errs = Vec::new();
        Services.validate(&o, &mut errs);
        let got: Vec<String> = errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect();
        assert_eq!(got, [
            "spec.ports[1].name: Duplicate value: \"web\"",
            "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[1].targetPort: Invalid value: \"Bad\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.ports[2].name: Required value",
        ]);
    }

    #[test]
    fn updates_keep_allocated_ips_and_refuse_changes() {
        let old = json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 80, "protocol": "TCP"}]}});
        let mut new = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]}});
        Services.prepare_for_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.10"]));
        let mut errs = Vec::new();
        Services.validate_update(&new, &old, &mut errs);
        assert!(errs.is_empty());
        let mut moved = old.clone();
        moved["spec"]["clusterIP"] = json!("10.96.0.11");
        Services.prepare_for_update(&mut moved, &old);
        Services.validate_update(&moved, &old, &mut errs);
        assert_eq!(format!("{}: {}", errs[0].field, errs[0].body()), "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.11\"}: may not change once set");
    }
}
