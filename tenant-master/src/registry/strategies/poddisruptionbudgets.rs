//! policy/v1 poddisruptionbudgets: no defaults, status reset on create, minAvailable /
//! maxUnavailable checks, the MIN AVAILABLE/MAX UNAVAILABLE/ALLOWED DISRUPTIONS columns.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::selectors::LabelSelector;
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct PodDisruptionBudgets;

static INFO: ResourceInfo = info("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", true).with_short_names(&["pdb"]).with_subresources(&["status"]);

/// ValidatePositiveIntOrPercent and IsNotMoreThan100Percent.
pub fn validate_int_or_percent(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Value::Number(n) => common::non_negative(&json!(n.as_i64().unwrap_or(0)), path, errs),
        Value::String(s) => match s.strip_suffix('%').and_then(|n| n.parse::<u64>().ok().filter(|_| n.bytes().all(|b| b.is_ascii_digit()))) {
            None => errs.push(FieldError::invalid(
                path,
                s.as_str(),
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )),
            Some(p) if p > 100 => errs.push(FieldError::invalid(path, s.as_str(), "must not be greater than 100%")),
            _ => {}
        },
        _ => {}
    }
}

fn cell(v: &Value) -> String {
    if v.is_null() { "N/A".into() } else { common::intstr(v) }
}

impl Strategy for PodDisruptionBudgets {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
            errs.push(FieldError::invalid("spec", spec.clone(), "minAvailable and maxUnavailable cannot be both set"));
        }
        validate_int_or_percent(&spec["minAvailable"], "spec.minAvailable", errs);
        validate_int_or_percent(&spec["maxUnavailable"], "spec.maxUnavailable", errs);
        if !spec["selector"].is_null() && LabelSelector::from_object(&spec["selector"]).is_none() {
            errs.push(FieldError::invalid("spec.selector", spec["selector"].clone(), "invalid label selector"));
        }
        common::one_of(&spec["unhealthyPodEvictionPolicy"], "spec.unhealthyPodEvictionPolicy", &["AlwaysAllow", "IfHealthyBudget"], errs);
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Min Available", "string", 0, "The minimum number of pods that must be available."),
            Column::new("Max Unavailable", "string", 0, "The maximum number of pods that may be unavailable."),
            Column::new("Allowed Disruptions", "integer", 0, "Calculated number of pods that may be disrupted at this time."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        vec![
            json!(crate::meta::name(o)),
            json!(cell(&o["spec"]["minAvailable"])),
            json!(cell(&o["spec"]["maxUnavailable"])),
            json!(common::int(&o["status"]["disruptionsAllowed"])),
            json!(crate::api::table::age(o)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_validation() {
        let mut o = json!({"metadata": {"name": "zk"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "zk"}}}});
        PodDisruptionBudgets.prepare_for_create(&mut o);
        let r = PodDisruptionBudgets.row(&o);
        assert_eq!(r[1..4].to_vec(), vec![json!("2"), json!("N/A"), json!(0)]);
        let mut errs = Vec::new();
        PodDisruptionBudgets.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        o["spec"]["maxUnavailable"] = json!("150%");
        PodDisruptionBudgets.validate(&o, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec", "spec.maxUnavailable"]);
        errs.clear();
        validate_int_or_percent(&json!("x%"), "p", &mut errs);
        assert_eq!(errs.len(), 1);
    }
}
