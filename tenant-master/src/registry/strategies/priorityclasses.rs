//! scheduling.k8s.io/v1 priorityclasses (cluster-scoped): preemptionPolicy
//! PreemptLowerPriority, reserved `system-` names, immutable value and preemptionPolicy.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct PriorityClasses;

static INFO: ResourceInfo = info("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", false).with_short_names(&["pc"]);

/// HighestUserDefinablePriority.
pub const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
/// The built-in system classes and their values.
const SYSTEM: &[(&str, i64)] = &[("system-cluster-critical", 2_000_000_000), ("system-node-critical", 2_000_001_000)];

/// IsKnownSystemPriorityClass's verdict on a `system-` class.
fn system_class_error(name: &str, value: i64, global_default: bool) -> Option<String> {
    match SYSTEM.iter().find(|(n, _)| *n == name) {
        None => Some(format!("{name} is not a known system priority class")),
        Some((_, v)) if *v != value => Some(format!("value of {name} PriorityClass must be {v}")),
        Some(_) if global_default => Some(format!("globalDefault of {name} PriorityClass must be false")),
        Some(_) => None,
    }
}

impl Strategy for PriorityClasses {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        common::default_field(o, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let (name, value) = (crate::meta::name(o), o["value"].as_i64().unwrap_or(0));
        if name.starts_with("system-") {
            if let Some(e) = system_class_error(name, value, o["globalDefault"] == json!(true)) {
                errs.push(FieldError::forbidden("metadata.name", format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}")));
            }
        } else if value > HIGHEST_USER_PRIORITY {
            errs.push(FieldError::forbidden("value", format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}")));
        }
        match o["preemptionPolicy"].as_str() {
            None | Some("") => errs.push(FieldError::required("preemptionPolicy", "")),
            Some(_) => common::one_of(&o["preemptionPolicy"], "preemptionPolicy", &["Never", "PreemptLowerPriority"], errs),
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        if new["value"].as_i64().unwrap_or(0) != old["value"].as_i64().unwrap_or(0) {
            errs.push(FieldError::forbidden("value", "may not be changed in an update."));
        }
        common::immutable(new, old, "preemptionPolicy", errs);
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Value", "integer", 0, "value represents the integer value of this priority class."),
            Column::new("Global-Default", "boolean", 0, "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class."),
            Column::age(),
            Column::new("PreemptionPolicy", "string", 0, "preemptionPolicy is the Policy for preempting pods with lower priority."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        vec![
            json!(crate::meta::name(o)),
            json!(o["value"].as_i64().unwrap_or(0)),
            json!(o["globalDefault"].as_bool().unwrap_or(false)),
            json!(crate::api::table::age(o)),
            json!(o["preemptionPolicy"].as_str().unwrap_or("")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validation_and_row() {
        let mut o = json!({"metadata": {"name": "high"}, "value": 1000000});
        PriorityClasses.default(&mut o);
        assert_eq!(o["preemptionPolicy"], "PreemptLowerPriority");
        let mut errs = Vec::new();
        PriorityClasses.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let r = PriorityClasses.row(&o);
        assert_eq!(r[1..3].to_vec(), vec![json!(1000000), json!(false)]);
        assert_eq!(r[4], json!("PreemptLowerPriority"));
        PriorityClasses.validate(&json!({"metadata": {"name": "system-mine"}, "value": 1, "preemptionPolicy": "Never"}), &mut errs);
        assert_eq!(errs[0].field, "metadata.name");
        let mut new = o.clone();
        new["value"] = json!(5);
        errs.clear();
        PriorityClasses.validate_update(&new, &o, &mut errs);
        assert_eq!(errs[0].detail, "may not be changed in an update.");
    }
}
