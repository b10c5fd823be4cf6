//! networking.k8s.io/v1 networkpolicies: policyTypes Ingress (plus Egress with egress rules) and
//! port protocol TCP defaults, port and peer checks, the POD-SELECTOR column.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::selectors::LabelSelector;
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct NetworkPolicies;

static INFO: ResourceInfo = info("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true).with_short_names(&["netpol"]);

fn validate_selector(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if !sel.is_null() && LabelSelector::from_object(sel).is_none() {
        errs.push(FieldError::invalid(path, sel.clone(), "invalid label selector"));
    }
}

fn validate_port(port: &Value, p: &str, errs: &mut Vec<FieldError>) {
    common::one_of(&port["protocol"], &format!("{p}.protocol"), &["TCP", "UDP", "SCTP"], errs);
    let end = &port["endPort"];
    match &port["port"] {
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errs.push(FieldError::invalid(format!("{p}.port"), n, "must be between 1 and 65535, inclusive"));
            }
            if let Some(e) = end.as_i64() {
                if e < n {
                    errs.push(FieldError::invalid(format!("{p}.endPort"), n, "must be greater than or equal to `port`"));
                }
                if !(1..=65535).contains(&e) {
                    errs.push(FieldError::invalid(format!("{p}.endPort"), e, "must be between 1 and 65535, inclusive"));
                }
            }
        }
        Value::String(s) => {
            if !end.is_null() {
                errs.push(FieldError::invalid(format!("{p}.endPort"), end.clone(), "may not be specified when `port` is non-numeric"));
            }
            for e in common::port_name_errors(s) {
                errs.push(FieldError::invalid(format!("{p}.port"), s.as_str(), e));
            }
        }
        _ => {
            if !end.is_null() {
                errs.push(FieldError::invalid(format!("{p}.endPort"), end.clone(), "may not be specified when `port` is not specified"));
            }
        }
    }
}

fn validate_peer(peer: &Value, p: &str, errs: &mut Vec<FieldError>) {
    validate_selector(&peer["podSelector"], &format!("{p}.podSelector"), errs);
    validate_selector(&peer["namespaceSelector"], &format!("{p}.namespaceSelector"), errs);
    let n = ["podSelector", "namespaceSelector", "ipBlock"].iter().filter(|f| !peer[**f].is_null()).count();
    if n == 0 {
        errs.push(FieldError::required(p, "must specify a peer"));
    } else if n > 1 && !peer["ipBlock"].is_null() {
        errs.push(FieldError::forbidden(p, "may not specify both ipBlock and another peer"));
    }
    let block = &peer["ipBlock"];
    if block.is_object() {
        match block["cidr"].as_str().unwrap_or("") {
            "" => errs.push(FieldError::required(format!("{p}.ipBlock.cidr"), "")),
            c if !valid_cidr(c) => errs.push(FieldError::invalid(format!("{p}.ipBlock.cidr"), c, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")),
            _ => {}
        }
        for (i, e) in block["except"].as_array().into_iter().flatten().enumerate() {
            let e = e.as_str().unwrap_or("");
            if !valid_cidr(e) {
                errs.push(FieldError::invalid(format!("{p}.ipBlock.except[{i}]"), e, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"));
            }
        }
    }
}

fn valid_cidr(c: &str) -> bool {
    let Some((ip, bits)) = c.split_once('/') else { return false };
    match (ip.parse::<std::net::IpAddr>(), bits.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128,
        _ => false,
    }
}

impl Strategy for NetworkPolicies {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let Some(spec) = o.get_mut("spec").filter(|s| s.is_object()) else { return };
        for dir in ["ingress", "egress"] {
            for rule in spec.get_mut(dir).and_then(|r| r.as_array_mut()).into_iter().flatten() {
                for port in rule.get_mut("ports").and_then(|p| p.as_array_mut()).into_iter().flatten().filter(|p| p.is_object()) {
                    common::default_field(port, "protocol", json!("TCP"));
                }
            }
        }
        if spec["policyTypes"].as_array().map(|a| a.is_empty()).unwrap_or(true) {
            let egress = spec["egress"].as_array().map(|a| !a.is_empty()).unwrap_or(false);
            spec["policyTypes"] = if egress { json!(["Ingress", "Egress"]) } else { json!(["Ingress"]) };
        }
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        validate_selector(&spec["podSelector"], "spec.podSelector", errs);
        for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
            for (i, rule) in spec[dir].as_array().into_iter().flatten().enumerate() {
                for (j, port) in rule["ports"].as_array().into_iter().flatten().enumerate() {
                    validate_port(port, &format!("spec.{dir}[{i}].ports[{j}]"), errs);
                }
                for (j, peer) in rule[peers].as_array().into_iter().flatten().enumerate() {
                    validate_peer(peer, &format!("spec.{dir}[{i}].{peers}[{j}]"), errs);
                }
            }
        }
        let types = spec["policyTypes"].as_array().cloned().unwrap_or_default();
        if types.len() > 2 {
            errs.push(FieldError::invalid("spec.policyTypes", spec["policyTypes"].clone(), "may not specify more than two policyTypes"));
            return;
        }
        for (i, t) in types.iter().enumerate() {
            common::one_of(t, &format!("spec.policyTypes[{i}]"), &["Ingress", "Egress"], errs);
        }
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Pod-Selector", "string", 0, "Selects the pods to which this NetworkPolicy object applies."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let sel = &o["spec"]["podSelector"];
        let cell = if sel.is_object() { crate::api::table::selector_cell(sel) } else { "<none>".to_string() };
        vec![json!(crate::meta::name(o)), json!(cell), json!(crate::api::table::age(o))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validation_and_row() {
        let mut o = json!({"metadata": {"name": "db"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": "172.17.0.0/16"}}], "ports": [{"port": 6379}]}],
            "egress": [{"to": [{}], "ports": [{"port": "dns", "endPort": 60}]}]}});
        NetworkPolicies.default(&mut o);
        assert_eq!(o["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(o["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
        let mut errs = Vec::new();
        NetworkPolicies.validate(&o, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.egress[0].ports[0].endPort", "spec.egress[0].to[0]"]);
        assert_eq!(NetworkPolicies.row(&o)[1], json!("role=db"));
        assert_eq!(NetworkPolicies.row(&json!({"spec": {"podSelector": {}}}))[1], json!("<none>"));
    }
}
