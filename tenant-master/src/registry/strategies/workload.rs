//! Validation the workload kinds share (apps/validation and batch/validation upstream):
//! label selectors, the selector matching the template's labels, the template rules of
//! replicated pods, IntOrString percentages, and selector immutability. Invalid values are
//! rendered as upstream prints the Go values (`map[string]string{...}`, `v1.LabelSelector{...}`).

use serde_json::Value;

use super::podspec;
use crate::api::gofmt;
use crate::api::selectors::LabelSelector;
use crate::api::status::FieldError;
use crate::validation::{label_value_errors, qualified_name_errors};

/// `ValidateLabelSelector` (strict: label values in expressions are checked too).
pub fn validate_label_selector(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if !sel.is_object() {
        return;
    }
    podspec::validation::validate_labels(&sel["matchLabels"], &format!("{path}.matchLabels"), errs);
    for (i, r) in sel["matchExpressions"].as_array().into_iter().flatten().enumerate() {
        let rp = format!("{path}.matchExpressions[{i}]");
        let values = r["values"].as_array().map(|v| v.len()).unwrap_or(0);
        match r["operator"].as_str().unwrap_or("") {
            "In" | "NotIn" if values == 0 => errs.push(FieldError::required(format!("{rp}.values"), "must be specified when `operator` is 'In' or 'NotIn'")),
            "Exists" | "DoesNotExist" if values > 0 => {
                errs.push(FieldError::forbidden(format!("{rp}.values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(format!("{rp}.operator"), op, "not a valid selector operator")),
        }
        let key = r["key"].as_str().unwrap_or("");
        for e in qualified_name_errors(key) {
            errs.push(FieldError::invalid(format!("{rp}.key"), key, e));
        }
        for (j, v) in r["values"].as_array().into_iter().flatten().enumerate() {
            let v = v.as_str().unwrap_or("");
            for e in label_value_errors(v) {
                errs.push(FieldError::invalid(format!("{rp}.values[{j}]"), v, e));
            }
        }
    }
}

/// `metav1.LabelSelectorAsSelector`: None when the selector cannot be built. A missing selector
/// selects nothing (`labels.Nothing()`), an empty one everything.
pub enum Selector {
    Nothing,
    Built(LabelSelector),
}

impl Selector {
    pub fn of(sel: &Value) -> Option<Selector> {
        if sel.is_null() {
            return Some(Selector::Nothing);
        }
        let built = LabelSelector::from_object(sel)?;
        let exprs_ok = sel["matchExpressions"].as_array().into_iter().flatten().all(|r| {
            let n = r["values"].as_array().map(|v| v.len()).unwrap_or(0);
            let key_ok = qualified_name_errors(r["key"].as_str().unwrap_or("")).is_empty();
            key_ok
                && match r["operator"].as_str().unwrap_or("") {
                    "In" | "NotIn" => n > 0,
                    _ => n == 0,
                }
        });
        exprs_ok.then_some(Selector::Built(built))
    }

    /// `selector.Empty()`: only a built selector without requirements is empty.
    pub fn is_empty(&self) -> bool {
        matches!(self, Selector::Built(s) if s.is_empty())
    }

    pub fn matches(&self, labels: &Value) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Built(s) => s.matches_json(labels),
        }
    }
}

/// The "`selector` does not match template `labels`" error.
pub fn labels_mismatch(template: &Value, path: &str) -> FieldError {
    FieldError::invalid_rendered(format!("{path}.metadata.labels"), gofmt::string_map(&template["metadata"]["labels"]), "`selector` does not match template `labels`")
}

/// A selector that must be given and not empty (`empty selector is invalid for <kind>`).
pub fn required_selector(sel: &Value, path: &str, kind: &str, errs: &mut Vec<FieldError>) {
    if sel.is_null() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    validate_label_selector(sel, path, errs);
    let n = sel["matchLabels"].as_object().map(|m| m.len()).unwrap_or(0) + sel["matchExpressions"].as_array().map(|a| a.len()).unwrap_or(0);
    if n == 0 {
        errs.push(FieldError::invalid_rendered(path, gofmt::label_selector(sel), format!("empty selector is invalid for {kind}")));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` (Deployments and ReplicaSets) and its StatefulSet
/// twin: labels match the selector, the template is valid, restartPolicy Always, no
/// activeDeadlineSeconds (`deadline_kind` names the kind in that message).
pub fn validate_replicated_template(template: &Value, selector: &Selector, path: &str, deadline_kind: &str, errs: &mut Vec<FieldError>) {
    if !template.is_object() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    if !selector.is_empty() && !selector.matches(&template["metadata"]["labels"]) {
        errs.push(labels_mismatch(template, path));
    }
    podspec::validate_template(template, path, errs);
    let rp = &template["spec"]["restartPolicy"];
    if rp.as_str() != Some("Always") {
        errs.push(FieldError::not_supported(format!("{path}.spec.restartPolicy"), rp.clone(), &["Always"]));
    }
    if !template["spec"]["activeDeadlineSeconds"].is_null() {
        errs.push(FieldError::forbidden(format!("{path}.spec.activeDeadlineSeconds"), format!("activeDeadlineSeconds in {deadline_kind} is not Supported")));
    }
}

/// "field is immutable" for a label selector, with the value printed as upstream does.
pub fn immutable_selector(new: &Value, old: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if new != old {
        errs.push(FieldError::invalid_rendered(path, gofmt::label_selector(new), "field is immutable"));
    }
}

/// `%#v` of an `intstr.IntOrString` (its `String` method is on the pointer, so unused).
pub fn go_int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", gofmt::quote(s)),
        other => format!("intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}", other.as_i64().unwrap_or(0)),
    }
}

/// The number of an IntOrString, percent or not.
pub fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.trim_end_matches('%').parse().unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    }
}

/// `IsNotMoreThan100Percent`: only a valid percentage above 100 is refused.
pub fn not_more_than_100_percent(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let valid_percent = v.as_str().and_then(|s| s.strip_suffix('%')).map(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).unwrap_or(false);
    if valid_percent && int_or_percent_value(v) > 100 {
        errs.push(FieldError::invalid_rendered(path, go_int_or_string(v), "must not be greater than 100%"));
    }
}

/// `ValidatePositiveIntOrPercent` then, when `max_100`, `IsNotMoreThan100Percent`.
pub fn validate_int_or_percent(v: &Value, path: &str, max_100: bool, errs: &mut Vec<FieldError>) {
    match v {
        Value::Null => {}
        Value::String(s) => {
            let ok = s.strip_suffix('%').map(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).unwrap_or(false);
            if !ok {
                errs.push(FieldError::invalid_rendered(path, go_int_or_string(v), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
            } else if max_100 && int_or_percent_value(v) > 100 {
                errs.push(FieldError::invalid_rendered(path, go_int_or_string(v), "must not be greater than 100%"));
            }
        }
        other => {
            if let Some(n) = other.as_i64().filter(|n| *n < 0) {
                errs.push(FieldError::invalid(path, n, podspec::validation::NEGATIVE));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_and_percentages() {
        let mut errs = Vec::new();
        required_selector(&json!({}), "spec.selector", "deployment", &mut errs);
        validate_label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Near"}]}), "spec.selector", &mut errs);
        validate_int_or_percent(&json!("110%"), "x", true, &mut errs);
        validate_int_or_percent(&json!("ten"), "y", true, &mut errs);
        let got: Vec<String> = errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect();
        assert_eq!(got, [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment",
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            "spec.selector.matchExpressions[1].operator: Invalid value: \"Near\": not a valid selector operator",
            "x: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"110%\"}: must not be greater than 100%",
            "y: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"ten\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        ]);
        assert!(Selector::of(&json!({"matchExpressions": [{"key": "b", "operator": "Near"}]})).is_none());
        assert!(!Selector::of(&Value::Null).unwrap().matches(&json!({"a": "b"})));
        assert!(Selector::of(&json!({})).unwrap().is_empty());
    }
}
