//! discovery.k8s.io/v1 endpointslices: port name "" and protocol TCP defaults, address type and
//! address checks, generation bumped on any change but metadata (labels count), the
//! ADDRESSTYPE/PORTS/ENDPOINTS columns.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::api::table;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct EndpointSlices;

static INFO: ResourceInfo = info("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true);

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];

fn validate_address(t: &str, a: &str, path: String, errs: &mut Vec<FieldError>) {
    match t {
        "IPv4" if a.parse::<Ipv4Addr>().is_err() => errs.push(FieldError::invalid(path, a, "must be a valid IPv4 address")),
        "IPv6" if a.parse::<Ipv6Addr>().is_err() => errs.push(FieldError::invalid(path, a, "must be a valid IPv6 address")),
        "FQDN" => {
            for e in crate::validation::dns1123_subdomain_errors(a) {
                errs.push(FieldError::invalid(path.clone(), a, e));
            }
        }
        _ => {}
    }
}

impl Strategy for EndpointSlices {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        for p in o.get_mut("ports").and_then(|p| p.as_array_mut()).into_iter().flatten().filter(|p| p.is_object()) {
            common::default_field(p, "name", json!(""));
            common::default_field(p, "protocol", json!("TCP"));
        }
    }
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let strip = |v: &Value| {
            let mut v = v.clone();
            common::remove_path(&mut v, "metadata");
            v
        };
        if strip(new) != strip(old) || new["metadata"]["labels"] != old["metadata"]["labels"] {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            new["metadata"]["generation"] = json!(g);
        }
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let t = o["addressType"].as_str().unwrap_or("");
        if t.is_empty() {
            errs.push(FieldError::required("addressType", ""));
        } else if !ADDRESS_TYPES.contains(&t) {
            errs.push(FieldError::not_supported("addressType", t, ADDRESS_TYPES));
        }
        for (i, ep) in o["endpoints"].as_array().into_iter().flatten().enumerate() {
            let addrs = ep["addresses"].as_array().cloned().unwrap_or_default();
            if addrs.is_empty() {
                errs.push(FieldError::required(format!("endpoints[{i}].addresses"), "must contain at least 1 address"));
            }
            for (j, a) in addrs.iter().enumerate() {
                validate_address(t, a.as_str().unwrap_or(""), format!("endpoints[{i}].addresses[{j}]"), errs);
            }
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, p) in o["ports"].as_array().into_iter().flatten().enumerate() {
            let name = p["name"].as_str().unwrap_or("");
            if !name.is_empty() {
                for e in crate::validation::dns1123_label_errors(name) {
                    errs.push(FieldError::invalid(format!("ports[{i}].name"), name, e));
                }
            }
            if names.contains(&name) {
                errs.push(FieldError::duplicate(format!("ports[{i}].name"), name));
            }
            names.push(name);
            common::one_of(&p["protocol"], &format!("ports[{i}].protocol"), &["SCTP", "TCP", "UDP"], errs);
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        common::immutable(new, old, "addressType", errs);
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("AddressType", "string", 0, "addressType specifies the type of address carried by this EndpointSlice."),
            Column::new("Ports", "string", 0, "ports specifies the list of network ports exposed by each endpoint in this slice."),
            Column::new("Endpoints", "string", 0, "endpoints is a list of unique endpoints in this slice."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let ports: Vec<String> = o["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| match (p["port"].as_i64(), p["name"].as_str()) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                _ => "*".to_string(),
            })
            .collect();
        let addrs: Vec<String> = o["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        vec![
            json!(crate::meta::name(o)),
            json!(o["addressType"].as_str().unwrap_or("")),
            json!(table::list_with_more(&ports, 3)),
            json!(table::list_with_more(&addrs, 3)),
            json!(table::age(o)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cells_and_generation() {
        let mut o = json!({"metadata": {"name": "web-abc", "generation": 1}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "metrics"}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]});
        EndpointSlices.default(&mut o);
        assert_eq!(o["ports"][0], json!({"port": 80, "name": "", "protocol": "TCP"}));
        let r = EndpointSlices.row(&o);
        assert_eq!(r[1..4].to_vec(), vec![json!("IPv4"), json!("80,metrics"), json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")]);
        assert_eq!(EndpointSlices.row(&json!({"addressType": "IPv4"}))[2], json!("<unset>"));
        let mut errs = Vec::new();
        EndpointSlices.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let mut new = o.clone();
        new["endpoints"][0]["addresses"] = json!(["bogus"]);
        EndpointSlices.prepare_for_update(&mut new, &o);
        assert_eq!(new["metadata"]["generation"], 2);
        EndpointSlices.validate(&new, &mut errs);
        assert_eq!(errs[0].detail, "must be a valid IPv4 address");
    }
}
