//! core/v1 resourcequotas: status reset on create, quota resource names and scopes, the
//! REQUEST/LIMIT columns built from status.hard and status.used.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct ResourceQuotas;

static INFO: ResourceInfo = info("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", true).with_short_names(&["quota"]).with_subresources(&["status"]);

const STANDARD: &[&str] = &[
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "services", "replicationcontrollers", "resourcequotas",
    "secrets", "persistentvolumeclaims", "configmaps", "services.nodeports", "services.loadbalancers",
];

const SCOPES: &[&str] = &[
    "Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity", "VolumeAttributesClass",
];

fn validate_hard(hard: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in hard.as_object().into_iter().flatten() {
        let p = format!("{path}[{k}]");
        for e in crate::validation::qualified_name_errors(k) {
            errs.push(FieldError::invalid(&p, k.as_str(), e));
        }
        if !k.contains('/') && !STANDARD.contains(&k.as_str()) && !k.starts_with("requests.hugepages-") {
            errs.push(FieldError::invalid(&p, k.as_str(), "must be a standard resource for quota"));
        }
        match common::quantity(v) {
            None => errs.push(FieldError::invalid(&p, v.clone(), super::persistentvolumeclaims::QUANTITY_FORMAT)),
            Some(q) if q < 0.0 => errs.push(FieldError::invalid(&p, common::intstr(v), "must be greater than or equal to 0")),
            _ => {}
        }
    }
}

/// `name: used/hard, ...` for the resources of status.hard whose names do (limits) or do not
/// start with `limits.`, sorted by name.
fn usage(o: &Value, limits: bool) -> String {
    let hard = o["status"]["hard"].as_object().cloned().unwrap_or_default();
    let mut names: Vec<&String> = hard.keys().filter(|k| (k.split('.').count() > 1 && k.starts_with("limits.")) == limits).collect();
    names.sort();
    names
        .iter()
        .map(|k| {
            let used = &o["status"]["used"][k.as_str()];
            let used = if used.is_null() { "0".to_string() } else { common::intstr(used) };
            format!("{k}: {used}/{}", common::intstr(&hard[k.as_str()]))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Strategy for ResourceQuotas {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        // SetObjectDefaults_ResourceQuota: every resource list rounded and canonical.
        for ptr in ["/spec/hard", "/status/hard", "/status/used"] {
            if let Some(l) = o.pointer_mut(ptr) {
                crate::registry::quantity::default_resource_list(l);
            }
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_hard(&o["spec"]["hard"], "spec.hard", errs);
        let scopes: Vec<&str> = o["spec"]["scopes"].as_array().into_iter().flatten().filter_map(|s| s.as_str()).collect();
        if scopes.iter().any(|s| !SCOPES.contains(s)) {
            errs.push(FieldError::invalid("spec.scopes", o["spec"]["scopes"].clone(), "unsupported scope"));
        }
        let has = |s: &str| scopes.contains(&s);
        if (has("Terminating") && has("NotTerminating")) || (has("BestEffort") && has("NotBestEffort")) {
            errs.push(FieldError::invalid("spec.scopes", o["spec"]["scopes"].clone(), "conflicting scopes"));
        }
        for (i, e) in o["spec"]["scopeSelector"]["matchExpressions"].as_array().into_iter().flatten().enumerate() {
            let p = format!("spec.scopeSelector.matchExpressions[{i}]");
            common::one_of(&e["scopeName"], &format!("{p}.scopeName"), SCOPES, errs);
            common::one_of(&e["operator"], &format!("{p}.operator"), &["In", "NotIn", "Exists", "DoesNotExist"], errs);
        }
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Request", "string", 0, "Request represents a minimum amount of cpu/memory that a container may consume."),
            Column::new("Limit", "string", 0, "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        vec![json!(crate::meta::name(o)), json!(usage(o, false)), json!(usage(o, true)), json!(crate::api::table::age(o))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_limit_cells() {
        let o = json!({"metadata": {"name": "q"}, "status": {
            "hard": {"pods": "10", "limits.memory": "2Gi", "requests.cpu": "1", "limits.cpu": "2"},
            "used": {"pods": "3", "limits.cpu": "500m"}}});
        let r = ResourceQuotas.row(&o);
        assert_eq!(r[1], json!("pods: 3/10, requests.cpu: 0/1"));
        assert_eq!(r[2], json!("limits.cpu: 500m/2, limits.memory: 0/2Gi"));
    }

    #[test]
    fn validation() {
        let o = json!({"spec": {"hard": {"pods": "-1", "widgets": "1", "count/deployments.apps": "2"}, "scopes": ["BestEffort", "NotBestEffort"]}});
        let mut errs = Vec::new();
        ResourceQuotas.validate(&o, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.hard[pods]", "spec.hard[widgets]", "spec.scopes"]);
    }
}
