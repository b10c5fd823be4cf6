//! apps/v1 deployments: upstream defaults (RollingUpdate 25%/25%, revisionHistoryLimit 10,
//! progressDeadlineSeconds 600), ValidateDeploymentSpec, the immutable selector, status and
//! scale subresources.

use serde_json::{json, Value};

use super::{common, info, podspec, workload};
use crate::api::gofmt;
use crate::api::status::FieldError;
use crate::registry::scale::ScalePaths;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Deployments;

static INFO: ResourceInfo = info("apps", "v1", "Deployment", "deployments", "deployment", true).with_short_names(&["deploy"]).with_categories(&["all"]).with_subresources(&["status", "scale"]);

/// `ValidateDeploymentSpec`'s replicas, selector and template part, shared with ReplicaSets
/// (which say "deployment" in the empty-selector message too, as upstream does). ReplicaSets
/// check minReadySeconds right after replicas (`min_ready_first`), Deployments later.
pub fn validate_replicas_selector_template(o: &Value, min_ready_first: bool, errs: &mut Vec<FieldError>) {
    let spec = &o["spec"];
    common::non_negative(&spec["replicas"], "spec.replicas", errs);
    if min_ready_first {
        common::non_negative(&spec["minReadySeconds"], "spec.minReadySeconds", errs);
    }
    workload::required_selector(&spec["selector"], "spec.selector", "deployment", errs);
    match workload::Selector::of(&spec["selector"]) {
        None => errs.push(FieldError::invalid_rendered("spec.selector", gofmt::label_selector(&spec["selector"]), "invalid label selector")),
        Some(sel) => workload::validate_replicated_template(&spec["template"], &sel, "spec.template", "ReplicaSet", errs),
    }
}

/// `ValidateDeploymentStrategy` with `ValidateRollingUpdateDeployment`.
fn validate_strategy(st: &Value, errs: &mut Vec<FieldError>) {
    match st["type"].as_str().unwrap_or("") {
        "Recreate" => {
            if !st["rollingUpdate"].is_null() {
                errs.push(FieldError::forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"));
            }
        }
        "RollingUpdate" => {
            let ru = &st["rollingUpdate"];
            if ru.is_null() {
                errs.push(FieldError::required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"));
                return;
            }
            let (mu, ms) = (&ru["maxUnavailable"], &ru["maxSurge"]);
            workload::validate_int_or_percent(mu, "spec.strategy.rollingUpdate.maxUnavailable", false, errs);
            workload::validate_int_or_percent(ms, "spec.strategy.rollingUpdate.maxSurge", false, errs);
            if workload::int_or_percent_value(mu) == 0 && workload::int_or_percent_value(ms) == 0 {
                errs.push(FieldError::invalid_rendered("spec.strategy.rollingUpdate.maxUnavailable", workload::go_int_or_string(mu), "may not be 0 when `maxSurge` is 0"));
            }
            workload::not_more_than_100_percent(mu, "spec.strategy.rollingUpdate.maxUnavailable", errs);
        }
        _ => errs.push(FieldError::not_supported("spec.strategy", st.clone(), &["Recreate", "RollingUpdate"])),
    }
}

/// The READY/UP-TO-DATE/AVAILABLE style integer cell.
fn n(v: &Value) -> i64 {
    common::int(v)
}

impl Strategy for Deployments {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        common::default_field(spec, "replicas", json!(1));
        common::default_field(spec, "strategy", json!({}));
        if spec["strategy"]["type"].as_str().unwrap_or("").is_empty() {
            spec["strategy"]["type"] = json!("RollingUpdate");
        }
        if spec["strategy"]["type"] == "RollingUpdate" {
            common::default_field(&mut spec["strategy"], "rollingUpdate", json!({}));
            common::default_field(&mut spec["strategy"]["rollingUpdate"], "maxUnavailable", json!("25%"));
            common::default_field(&mut spec["strategy"]["rollingUpdate"], "maxSurge", json!("25%"));
        }
        common::default_field(spec, "revisionHistoryLimit", json!(10));
        common::default_field(spec, "progressDeadlineSeconds", json!(600));
        podspec::default_pod_template(&mut spec["template"]);
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        validate_replicas_selector_template(o, false, errs);
        validate_strategy(&spec["strategy"], errs);
        common::non_negative(&spec["minReadySeconds"], "spec.minReadySeconds", errs);
        common::non_negative(&spec["revisionHistoryLimit"], "spec.revisionHistoryLimit", errs);
        if let Some(p) = spec["progressDeadlineSeconds"].as_i64() {
            common::non_negative(&spec["progressDeadlineSeconds"], "spec.progressDeadlineSeconds", errs);
            if p <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
                errs.push(FieldError::invalid("spec.progressDeadlineSeconds", p, "must be greater than minReadySeconds"));
            }
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        workload::immutable_selector(&new["spec"]["selector"], &old["spec"]["selector"], "spec.selector", errs);
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn scale(&self) -> Option<ScalePaths> {
        Some(ScalePaths { map_selector: false })
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Ready", "string", 0, "Number of the pod with ready state"),
            Column::new("Up-to-date", "integer", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            Column::new("Available", "integer", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            Column::age(),
            Column::new("Containers", "string", 1, "Names of each container in the template."),
            Column::new("Images", "string", 1, "Images referenced by each container in the template."),
            Column::new("Selector", "string", 1, "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let (c, i) = common::containers_and_images(&o["spec"]["template"]);
        vec![
            json!(crate::meta::name(o)),
            json!(format!("{}/{}", n(&o["status"]["readyReplicas"]), n(&o["spec"]["replicas"]))),
            json!(n(&o["status"]["updatedReplicas"])),
            json!(n(&o["status"]["availableReplicas"])),
            json!(crate::api::table::age(o)),
            json!(c),
            json!(i),
            json!(crate::api::table::selector_cell(&o["spec"]["selector"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(o: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        Deployments.validate(o, &mut errs);
        errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect()
    }

    #[test]
    fn validation_follows_validate_deployment_spec() {
        let mut o = json!({"metadata": {"name": "web"}, "spec": {"template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        Deployments.default(&mut o);
        assert_eq!(errors(&o), [
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
        ]);
        o["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
        assert!(errors(&o).is_empty());
        o["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": "0%"});
        o["spec"]["progressDeadlineSeconds"] = json!(5);
        o["spec"]["minReadySeconds"] = json!(10);
        assert_eq!(errors(&o), [
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
            "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
        ]);
        let mut new = o.clone();
        new["spec"]["selector"]["matchLabels"]["app"] = json!("api");
        let mut errs = Vec::new();
        Deployments.validate_update(&new, &o, &mut errs);
        assert_eq!(errs[0].body(), "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"api\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable");
    }
}
