//! apps/v1 deployments: upstream defaults (RollingUpdate 25%/25%, revisionHistoryLimit 10,
//! progressDeadlineSeconds 600), selector checks, status and scale subresources.

use serde_json::{json, Value};

use super::{common, info, pods};
use crate::api::selectors::LabelSelector;
use crate::api::status::FieldError;
use crate::registry::scale::ScalePaths;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Deployments;

const INFO: ResourceInfo = ResourceInfo {
    short_names: &["deploy"],
    categories: &["all"],
    subresources: &["status", "scale"],
    ..info("apps", "v1", "Deployment", "deployments", "deployment", true)
};

/// Validates a workload's selector against its pod template (shared by apps kinds and jobs).
pub fn validate_selector_and_template(o: &Value, errs: &mut Vec<FieldError>, selector_required: bool) {
    let sel = &o["spec"]["selector"];
    let tpl_labels = &o["spec"]["template"]["metadata"]["labels"];
    if sel.is_null() {
        if selector_required {
            errs.push(FieldError::required("spec.selector", ""));
        }
    } else {
        match LabelSelector::from_object(sel) {
            None => errs.push(FieldError::invalid("spec.selector", sel.clone(), "invalid label selector")),
            Some(s) if s.is_empty() => errs.push(FieldError::invalid("spec.selector", sel.clone(), "empty selector is invalid for deployment")),
            Some(s) => {
                if !s.matches_json(tpl_labels) {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        tpl_labels.clone(),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    pods::validate_pod_spec(&o["spec"]["template"]["spec"], "spec.template.spec", errs);
    if let Some(r) = o["spec"]["replicas"].as_i64() {
        if r < 0 {
            errs.push(FieldError::invalid("spec.replicas", r, "must be greater than or equal to 0"));
        }
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
        common::default_field(&mut spec["strategy"], "type", json!("RollingUpdate"));
        if spec["strategy"]["type"] == "RollingUpdate" {
            common::default_field(&mut spec["strategy"], "rollingUpdate", json!({}));
            common::default_field(&mut spec["strategy"]["rollingUpdate"], "maxUnavailable", json!("25%"));
            common::default_field(&mut spec["strategy"]["rollingUpdate"], "maxSurge", json!("25%"));
        }
        common::default_field(spec, "revisionHistoryLimit", json!(10));
        common::default_field(spec, "progressDeadlineSeconds", json!(600));
        common::default_pod_template(&mut spec["template"]);
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_selector_and_template(o, errs, true);
        let t = o["spec"]["strategy"]["type"].as_str().unwrap_or("RollingUpdate");
        if !["RollingUpdate", "Recreate"].contains(&t) {
            errs.push(FieldError::not_supported("spec.strategy.type", t, &["Recreate", "RollingUpdate"]));
        }
        if o["spec"]["template"]["spec"]["restartPolicy"].as_str().map(|r| r != "Always").unwrap_or(false) {
            errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", o["spec"]["template"]["spec"]["restartPolicy"].clone(), &["Always"]));
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        if new["spec"]["selector"] != old["spec"]["selector"] {
            errs.push(FieldError::invalid("spec.selector", new["spec"]["selector"].clone(), "field is immutable"));
        }
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
