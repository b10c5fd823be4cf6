//! core/v1 replicationcontrollers: replicas 1 and selector/labels from the template labels
//! (SetDefaults_ReplicationController), the map selector, status and scale subresources.

use serde_json::{json, Value};

use super::{common, info, podspec, replicasets, workload};
use crate::api::status::FieldError;
use crate::registry::scale::ScalePaths;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct ReplicationControllers;

static INFO: ResourceInfo = info("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller", true).with_short_names(&["rc"]).with_categories(&["all"]).with_subresources(&["status", "scale"]);

fn empty_map(v: &Value) -> bool {
    v.as_object().map(|m| m.is_empty()).unwrap_or(true)
}

impl Strategy for ReplicationControllers {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        if !o["spec"].is_object() {
            return;
        }
        let labels = o["spec"]["template"]["metadata"]["labels"].clone();
        if labels.is_object() {
            if empty_map(&o["spec"]["selector"]) {
                o["spec"]["selector"] = labels.clone();
            }
            if empty_map(&o["metadata"]["labels"]) {
                o["metadata"]["labels"] = labels;
            }
        }
        common::default_field(&mut o["spec"], "replicas", json!(1));
        // The template is a pointer here: only a given one is defaulted.
        if o["spec"]["template"].is_object() {
            podspec::default_pod_template(&mut o["spec"]["template"]);
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"replicas": 0});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        common::non_negative(&spec["minReadySeconds"], "spec.minReadySeconds", errs);
        let sel = &spec["selector"];
        if empty_map(sel) {
            errs.push(FieldError::required("spec.selector", ""));
        }
        for (k, v) in sel.as_object().into_iter().flatten() {
            for e in crate::validation::qualified_name_errors(k) {
                errs.push(FieldError::invalid("spec.selector", k.as_str(), e));
            }
            for e in crate::validation::label_value_errors(v.as_str().unwrap_or("")) {
                errs.push(FieldError::invalid("spec.selector", v.clone(), e));
            }
        }
        common::non_negative(&spec["replicas"], "spec.replicas", errs);
        let t = &spec["template"];
        if !t.is_object() {
            errs.push(FieldError::required("spec.template", ""));
            return;
        }
        let labels = &t["metadata"]["labels"];
        let matches = sel.as_object().into_iter().flatten().all(|(k, v)| labels[k.as_str()] == *v);
        if !empty_map(sel) && !matches {
            errs.push(workload::labels_mismatch(t, "spec.template"));
        }
        podspec::validate_template(t, "spec.template", errs);
        if t["spec"]["restartPolicy"].as_str() != Some("Always") {
            errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", t["spec"]["restartPolicy"].clone(), &["Always"]));
        }
        if t["spec"]["activeDeadlineSeconds"].is_number() {
            errs.push(FieldError::forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicationController is not Supported"));
        }
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn scale(&self) -> Option<ScalePaths> {
        Some(ScalePaths { map_selector: true })
    }
    fn columns(&self) -> Vec<Column> {
        replicasets::replica_columns()
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let mut r = replicasets::replica_row(o);
        r[7] = json!(crate::api::table::labels_cell(&o["spec"]["selector"]));
        r
    }
    fn field_names(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        vec![("status.replicas", common::int(&o["status"]["replicas"]).to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}})
    }

    #[test]
    fn selector_labels_and_replicas_default_from_template() {
        let mut o = rc();
        ReplicationControllers.default(&mut o);
        assert_eq!(o["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(o["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(o["spec"]["replicas"], 1);
        assert_eq!(o["spec"]["template"]["spec"]["restartPolicy"], "Always");
        let mut errs = Vec::new();
        ReplicationControllers.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let r = ReplicationControllers.row(&o);
        assert_eq!((r[1].clone(), r[2].clone(), r[7].clone()), (json!(1), json!(0), json!("app=web")));
    }

    #[test]
    fn mismatched_selector_is_rejected() {
        let mut o = rc();
        o["spec"]["selector"] = json!({"app": "other"});
        ReplicationControllers.default(&mut o);
        let mut errs = Vec::new();
        ReplicationControllers.validate(&o, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.template.metadata.labels");
    }
}
