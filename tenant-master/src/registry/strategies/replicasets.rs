//! apps/v1 replicasets: replicas 1, template defaults, ValidateReplicaSetSpec, the immutable
//! selector, the DESIRED/CURRENT/READY columns shared with ReplicationControllers.

use serde_json::{json, Value};

use super::{common, deployments, info, podspec, workload};
use crate::api::status::FieldError;
use crate::registry::scale::ScalePaths;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct ReplicaSets;

static INFO: ResourceInfo = info("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true).with_short_names(&["rs"]).with_categories(&["all"]).with_subresources(&["status", "scale"]);

/// DESIRED/CURRENT/READY plus the wide columns, shared with ReplicationControllers.
pub fn replica_columns() -> Vec<Column> {
    vec![
        Column::name(),
        Column::new("Desired", "integer", 0, "Replicas is the number of desired replicas."),
        Column::new("Current", "integer", 0, "Replicas is the most recently observed number of replicas."),
        Column::new("Ready", "integer", 0, "The number of ready replicas for this replica set."),
        Column::age(),
        Column::new("Containers", "string", 1, "Names of each container in the template."),
        Column::new("Images", "string", 1, "Images referenced by each container in the template."),
        Column::new("Selector", "string", 1, "Selector is a label query over pods that should match the replica count."),
    ]
}

pub fn replica_row(o: &Value) -> Vec<Value> {
    let (c, i) = common::containers_and_images(&o["spec"]["template"]);
    vec![
        json!(crate::meta::name(o)),
        json!(common::int(&o["spec"]["replicas"])),
        json!(common::int(&o["status"]["replicas"])),
        json!(common::int(&o["status"]["readyReplicas"])),
        json!(crate::api::table::age(o)),
        json!(c),
        json!(i),
        json!(crate::api::table::selector_cell(&o["spec"]["selector"])),
    ]
}

impl Strategy for ReplicaSets {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        if o["spec"].is_object() {
            common::default_field(&mut o["spec"], "replicas", json!(1));
            podspec::default_pod_template(&mut o["spec"]["template"]);
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"replicas": 0});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        deployments::validate_replicas_selector_template(o, true, errs);
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
        replica_columns()
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        replica_row(o)
    }
    fn field_names(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        vec![("status.replicas", common::int(&o["status"]["replicas"]).to_string())]
    }
}
