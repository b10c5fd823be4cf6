//! core/v1 secrets: type default and immutability, base64 data, the 1 MiB size limit.

use base64::Engine;
use serde_json::{json, Value};

use super::{common, configmaps, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Secrets;

static INFO: ResourceInfo = info("", "v1", "Secret", "secrets", "secret", true);

impl Strategy for Secrets {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        common::default_field(o, "type", json!("Opaque"));
    }
    fn prepare_for_create(&self, o: &mut Value) {
        // stringData is write-only: merged into data, base64-encoded.
        if let Some(sd) = o.get("stringData").and_then(|s| s.as_object()).cloned() {
            common::default_field(o, "data", json!({}));
            for (k, v) in sd {
                let enc = base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or("").as_bytes());
                o["data"][k] = json!(enc);
            }
        }
        if let Some(m) = o.as_object_mut() {
            m.remove("stringData");
        }
    }
    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        self.prepare_for_create(new);
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        configmaps::validate_keys(&o["data"], "data", errs);
        let mut total = 0;
        if let Some(m) = o["data"].as_object() {
            for (k, v) in m {
                match v.as_str().map(|s| base64::engine::general_purpose::STANDARD.decode(s)) {
                    Some(Ok(b)) => total += b.len(),
                    _ => errs.push(FieldError::invalid(format!("data[{k}]"), "<secret contents redacted>", "must be base64-encoded bytes")),
                }
            }
        }
        if total > configmaps::MAX_DATA_BYTES {
            errs.push(FieldError::too_long("data", configmaps::MAX_DATA_BYTES));
        }
        if o["type"] == "kubernetes.io/service-account-token"
            && o["metadata"]["annotations"]["kubernetes.io/service-account.name"].as_str().unwrap_or("").is_empty()
        {
            errs.push(FieldError::required("metadata.annotations[kubernetes.io/service-account.name]", ""));
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        if new["type"] != old["type"] {
            errs.push(FieldError::invalid("type", new["type"].clone(), "field is immutable"));
        }
        if old["immutable"] == json!(true) && (new["data"] != old["data"] || new["immutable"] != json!(true)) {
            errs.push(FieldError::forbidden("data", "field is immutable when `immutable` is set"));
        }
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Type", "string", 0, "The type of the secret"),
            Column::new("Data", "integer", 0, "The number of entries in the secret"),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let n = o["data"].as_object().map(|m| m.len()).unwrap_or(0);
        vec![json!(crate::meta::name(o)), json!(o["type"].as_str().unwrap_or("")), json!(n), json!(crate::api::table::age(o))]
    }
    fn field_names(&self) -> &'static [&'static str] {
        &["type"]
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        vec![("type", common::field_string(o, "type"))]
    }
}
