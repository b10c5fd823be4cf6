//! networking.k8s.io/v1 ingressclasses (cluster-scoped): parameters scope Cluster by default,
//! a domain-prefixed immutable controller, the CONTROLLER/PARAMETERS columns.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct IngressClasses;

static INFO: ResourceInfo = info("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", false);

/// `validation.IsDomainPrefixedPath`.
fn validate_controller(c: &str, errs: &mut Vec<FieldError>) {
    let p = "spec.controller";
    if c.is_empty() {
        errs.push(FieldError::required(p, ""));
        return;
    }
    if c.len() > 250 {
        errs.push(FieldError::too_long(p, 250));
    }
    match c.split_once('/') {
        Some((host, path)) if !path.is_empty() => {
            for e in crate::validation::dns1123_subdomain_errors(host) {
                errs.push(FieldError::invalid(p, host, e));
            }
            if !path.chars().all(|ch| ch.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=:/".contains(ch)) {
                errs.push(FieldError::invalid(p, path, "segment must contain only valid HTTP path characters"));
            }
        }
        _ => errs.push(FieldError::invalid(p, c, "must be a domain-prefixed path (such as \"acme.io/foo\")")),
    }
}

impl Strategy for IngressClasses {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        if let Some(params) = o.pointer_mut("/spec/parameters").filter(|p| p.is_object()) {
            common::default_field(params, "scope", json!("Cluster"));
        }
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_controller(o["spec"]["controller"].as_str().unwrap_or(""), errs);
        let params = &o["spec"]["parameters"];
        if !params.is_object() {
            return;
        }
        for f in ["kind", "name"] {
            if params[f].as_str().unwrap_or("").is_empty() {
                errs.push(FieldError::required(format!("spec.parameters.{f}"), ""));
            }
        }
        match params["scope"].as_str() {
            None => errs.push(FieldError::required("spec.parameters.scope", "")),
            Some("Namespace") => {
                if params["namespace"].is_null() {
                    errs.push(FieldError::required("spec.parameters.namespace", "`parameters.scope` is set to 'Namespace'"));
                }
            }
            Some("Cluster") => {
                if !params["namespace"].is_null() {
                    errs.push(FieldError::forbidden("spec.parameters.namespace", "`parameters.scope` is set to 'Cluster'"));
                }
            }
            Some(s) => errs.push(FieldError::not_supported("spec.parameters.scope", s, &["Cluster", "Namespace"])),
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        common::immutable(new, old, "spec.controller", errs);
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Controller", "string", 0, "Controller that is responsible for handling this class"),
            Column::new("Parameters", "string", 0, "A reference to a resource with additional parameters"),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let p = &o["spec"]["parameters"];
        let params = if p.is_object() {
            let kind = match p["apiGroup"].as_str() {
                Some(g) => format!("{}.{g}", p["kind"].as_str().unwrap_or("")),
                None => p["kind"].as_str().unwrap_or("").to_string(),
            };
            format!("{kind}/{}", p["name"].as_str().unwrap_or(""))
        } else {
            "<none>".to_string()
        };
        vec![json!(crate::meta::name(o)), json!(o["spec"]["controller"].as_str().unwrap_or("")), json!(params), json!(crate::api::table::age(o))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validation_and_row() {
        let mut o = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        IngressClasses.default(&mut o);
        assert_eq!(o["spec"]["parameters"]["scope"], "Cluster");
        let mut errs = Vec::new();
        IngressClasses.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let r = IngressClasses.row(&o);
        assert_eq!(r[1..3].to_vec(), vec![json!("k8s.io/ingress-nginx"), json!("IngressParameters.k8s.example.com/external-lb")]);
        IngressClasses.validate(&json!({"spec": {"controller": "nginx"}}), &mut errs);
        assert_eq!(errs[0].detail, "must be a domain-prefixed path (such as \"acme.io/foo\")");
    }
}
