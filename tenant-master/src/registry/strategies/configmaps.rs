//! core/v1 configmaps: key validation, the 1 MiB size limit, `immutable`.

use serde_json::{json, Value};

use super::info;
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct ConfigMaps;

static INFO: ResourceInfo = info("", "v1", "ConfigMap", "configmaps", "configmap", true).with_short_names(&["cm"]);

/// Upstream's MaxSecretSize / ConfigMap limit.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// Validates the keys of a data map (`[-._a-zA-Z0-9]+`, max 253, not `.` or `..`).
pub fn validate_keys(map: &Value, path: &str, errs: &mut Vec<FieldError>) -> usize {
    let mut total = 0;
    if let Some(m) = map.as_object() {
        for (k, v) in m {
            total += v.as_str().map(|s| s.len()).unwrap_or(0);
            let ok = !k.is_empty()
                && k.len() <= 253
                && k != "."
                && k != ".."
                && !k.starts_with("..")
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
            if !ok {
                errs.push(FieldError::invalid(
                    format!("{path}[{k}]"),
                    k.as_str(),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
            if !v.is_string() {
                errs.push(FieldError::invalid(format!("{path}[{k}]"), v.clone(), "must be a string"));
            }
        }
    } else if !map.is_null() {
        errs.push(FieldError::invalid(path, map.clone(), "must be a map of strings"));
    }
    total
}

impl Strategy for ConfigMaps {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let mut total = validate_keys(&o["data"], "data", errs);
        total += validate_keys(&o["binaryData"], "binaryData", errs);
        if let (Some(d), Some(b)) = (o["data"].as_object(), o["binaryData"].as_object()) {
            for k in d.keys().filter(|k| b.contains_key(*k)) {
                errs.push(FieldError::invalid(format!("data[{k}]"), k.as_str(), "duplicate of key present in binaryData"));
            }
        }
        if total > MAX_DATA_BYTES {
            errs.push(FieldError::too_long("[]", MAX_DATA_BYTES));
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        if old["immutable"] == json!(true) {
            if new["immutable"] != json!(true) {
                errs.push(FieldError::forbidden("immutable", "field is immutable when `immutable` is set"));
            }
            if new["data"] != old["data"] || new["binaryData"] != old["binaryData"] {
                errs.push(FieldError::forbidden("data", "field is immutable when `immutable` is set"));
            }
        }
    }
    fn columns(&self) -> Vec<Column> {
        vec![Column::name(), Column::new("Data", "integer", 0, "Data contains the configuration data."), Column::age()]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let n = o["data"].as_object().map(|m| m.len()).unwrap_or(0) + o["binaryData"].as_object().map(|m| m.len()).unwrap_or(0);
        vec![json!(crate::meta::name(o)), json!(n), json!(crate::api::table::age(o))]
    }
}
