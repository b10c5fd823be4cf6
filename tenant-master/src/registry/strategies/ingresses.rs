//! networking.k8s.io/v1 ingresses: rules or a default backend, required pathType and path
//! rules, service backends, status reset on create, the CLASS/HOSTS/ADDRESS/PORTS columns.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Ingresses;

static INFO: ResourceInfo = info("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true).with_short_names(&["ing"]).with_subresources(&["status"]);

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];

fn validate_backend(b: &Value, p: &str, errs: &mut Vec<FieldError>) {
    let (svc, res) = (&b["service"], &b["resource"]);
    match (svc.is_null(), res.is_null()) {
        (false, false) => errs.push(FieldError::invalid(p, "", "cannot set both resource and service backends")),
        (true, false) => {
            for f in ["kind", "name"] {
                if res[f].as_str().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(format!("{p}.resource.{f}"), ""));
                }
            }
        }
        (false, true) => {
            match svc["name"].as_str().unwrap_or("") {
                "" => errs.push(FieldError::required(format!("{p}.service.name"), "")),
                n => {
                    for e in crate::validation::dns1035_label_errors(n) {
                        errs.push(FieldError::invalid(format!("{p}.service.name"), n, e));
                    }
                }
            }
            let name = svc["port"]["name"].as_str().unwrap_or("");
            let number = svc["port"]["number"].as_i64().unwrap_or(0);
            match (name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(p, "", "cannot set both port name & port number")),
                (false, true) => {
                    for e in common::port_name_errors(name) {
                        errs.push(FieldError::invalid(format!("{p}.service.port.name"), name, e));
                    }
                }
                (true, false) if !(1..=65535).contains(&number) => {
                    errs.push(FieldError::invalid(format!("{p}.service.port.number"), number, "must be between 1 and 65535, inclusive"))
                }
                (true, false) => {}
                (true, true) => errs.push(FieldError::required(p, "port name or number is required")),
            }
        }
        (true, true) => errs.push(FieldError::invalid(p, "", "resource or service backend is required")),
    }
}

fn validate_path(path: &Value, p: &str, errs: &mut Vec<FieldError>) {
    let Some(t) = path["pathType"].as_str() else {
        errs.push(FieldError::required(format!("{p}.pathType"), "pathType must be specified"));
        return;
    };
    let s = path["path"].as_str().unwrap_or("");
    match t {
        "Exact" | "Prefix" => {
            if !s.starts_with('/') {
                errs.push(FieldError::invalid(format!("{p}.path"), s, "must be an absolute path"));
            }
            for seq in ["//", "/./", "/../", "%2f", "%2F"].iter().filter(|q| s.contains(**q)) {
                errs.push(FieldError::invalid(format!("{p}.path"), s, format!("must not contain '{seq}'")));
            }
            for suf in ["/..", "/."].iter().filter(|q| s.ends_with(**q)) {
                errs.push(FieldError::invalid(format!("{p}.path"), s, format!("cannot end with '{suf}'")));
            }
        }
        "ImplementationSpecific" => {
            if !s.is_empty() && !s.starts_with('/') {
                errs.push(FieldError::invalid(format!("{p}.path"), s, "must be an absolute path"));
            }
        }
        _ => errs.push(FieldError::not_supported(format!("{p}.pathType"), t, PATH_TYPES)),
    }
    validate_backend(&path["backend"], &format!("{p}.backend"), errs);
}

fn validate_host(host: &str, p: String, errs: &mut Vec<FieldError>) {
    if host.parse::<std::net::IpAddr>().is_ok() {
        errs.push(FieldError::invalid(p.clone(), host, "must be a DNS name, not an IP address"));
    }
    let rest = host.strip_prefix("*.").unwrap_or(host);
    for e in crate::validation::dns1123_subdomain_errors(rest) {
        errs.push(FieldError::invalid(p.clone(), host, e));
    }
}

/// formatHosts: up to three hosts, `*` when none.
fn hosts_cell(rules: &[Value]) -> String {
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if list.len() == 3 {
            more = true;
        }
        match r["host"].as_str().filter(|h| !h.is_empty()) {
            Some(h) if !more => list.push(h),
            _ => {}
        }
    }
    match (list.is_empty(), more) {
        (true, _) => "*".into(),
        (false, true) => format!("{} + {} more...", list.join(","), rules.len() - 3),
        (false, false) => list.join(","),
    }
}

impl Strategy for Ingresses {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"loadBalancer": {}});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        let rules = spec["rules"].as_array().cloned().unwrap_or_default();
        if rules.is_empty() && spec["defaultBackend"].is_null() {
            errs.push(FieldError::invalid("spec", spec["rules"].clone(), "either `defaultBackend` or `rules` must be specified"));
        }
        if !spec["defaultBackend"].is_null() {
            validate_backend(&spec["defaultBackend"], "spec.defaultBackend", errs);
        }
        for (i, r) in rules.iter().enumerate() {
            if let Some(h) = r["host"].as_str().filter(|h| !h.is_empty()) {
                validate_host(h, format!("spec.rules[{i}].host"), errs);
            }
            if r["http"].is_object() {
                let paths = r["http"]["paths"].as_array().cloned().unwrap_or_default();
                if paths.is_empty() {
                    errs.push(FieldError::required(format!("spec.rules[{i}].http.paths"), ""));
                }
                for (j, path) in paths.iter().enumerate() {
                    validate_path(path, &format!("spec.rules[{i}].http.paths[{j}]"), errs);
                }
            }
        }
        for (i, tls) in spec["tls"].as_array().into_iter().flatten().enumerate() {
            for (j, h) in tls["hosts"].as_array().into_iter().flatten().enumerate() {
                validate_host(h.as_str().unwrap_or(""), format!("spec.tls[{i}].hosts[{j}]"), errs);
            }
        }
        if let Some(c) = spec["ingressClassName"].as_str() {
            for e in crate::validation::dns1123_subdomain_errors(c) {
                errs.push(FieldError::invalid("spec.ingressClassName", c, e));
            }
        }
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Class", "string", 0, "The name of the IngressClass resource that should be used for additional configuration"),
            Column::new("Hosts", "string", 0, "Hosts that incoming requests are matched against before the ingress rule"),
            Column::new("Address", "string", 0, "Address is a list containing ingress points for the load-balancer"),
            Column::new("Ports", "string", 0, "Ports of TLS configurations that open"),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let spec = &o["spec"];
        let mut addrs: Vec<String> = o["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["ip"].as_str().filter(|s| !s.is_empty()).or(i["hostname"].as_str()).filter(|s| !s.is_empty()).map(String::from))
            .collect();
        addrs.sort();
        addrs.dedup();
        let tls = spec["tls"].as_array().map(|t| !t.is_empty()).unwrap_or(false);
        vec![
            json!(crate::meta::name(o)),
            json!(spec["ingressClassName"].as_str().unwrap_or("<none>")),
            json!(hosts_cell(spec["rules"].as_array().map(|r| r.as_slice()).unwrap_or(&[]))),
            json!(addrs.join(",")),
            json!(if tls { "80, 443" } else { "80" }),
            json!(crate::api::table::age(o)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ing() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    }

    #[test]
    fn validation() {
        let mut errs = Vec::new();
        Ingresses.validate(&ing(), &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let mut o = ing();
        o["spec"]["rules"][0]["http"]["paths"][0] = json!({"path": "a//b", "backend": {"service": {"name": "web"}}});
        Ingresses.validate(&o, &mut errs);
        assert_eq!((errs[0].field.as_str(), errs[0].detail.as_str()), ("spec.rules[0].http.paths[0].pathType", "pathType must be specified"));
        errs.clear();
        o["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = json!("Prefix");
        Ingresses.validate(&o, &mut errs);
        let details: Vec<&str> = errs.iter().map(|e| e.detail.as_str()).collect();
        assert_eq!(details, vec!["must be an absolute path", "must not contain '//'", "port name or number is required"]);
    }

    #[test]
    fn cells() {
        let mut o = ing();
        o["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}, {"hostname": "lb.example.com"}]}});
        o["spec"]["tls"] = json!([{"hosts": ["a.example.com"]}]);
        let r = Ingresses.row(&o);
        assert_eq!(r[1..5].to_vec(), vec![json!("nginx"), json!("a.example.com"), json!("10.0.0.9,lb.example.com"), json!("80, 443")]);
        let rules: Vec<Value> = ["a", "", "c", "d", "e"].iter().map(|h| json!({"host": h})).collect();
        assert_eq!(hosts_cell(&rules), "a,c,d + 2 more...");
        assert_eq!(hosts_cell(&[json!({})]), "*");
    }
}
