//! core/v1 namespaces: Active/Terminating phase, the `kubernetes` finalizer, the
//! `kubernetes.io/metadata.name` label.

use serde_json::{json, Value};

use super::{common, info};
use crate::registry::{Column, ResourceInfo, Strategy};
use crate::validation::NameRule;

pub struct Namespaces;

static INFO: ResourceInfo = info("", "v1", "Namespace", "namespaces", "namespace", false).with_short_names(&["ns"]).with_subresources(&["status", "finalize"]).with_name_rule(NameRule::Label);

fn set_name_label(obj: &mut Value) {
    let name = crate::meta::name(obj).to_string();
    if name.is_empty() {
        return;
    }
    let md = crate::meta::metadata_mut(obj);
    let labels = md.entry("labels").or_insert_with(|| json!({}));
    if labels.is_object() {
        labels["kubernetes.io/metadata.name"] = json!(name);
    }
}

impl Strategy for Namespaces {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    /// The NamespaceLifecycle admission plugin's immortal namespaces.
    fn admit_delete(&self, _store: &crate::registry::store::Store, obj: &Value) -> crate::api::status::ApiResult<()> {
        let name = crate::meta::name(obj);
        if ["default", "kube-system", "kube-public"].contains(&name) {
            let mut e = crate::api::status::ApiError::forbidden(format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            ));
            e.details = Some(json!({"name": name, "kind": "namespaces"}));
            return Err(e);
        }
        Ok(())
    }
    fn default(&self, obj: &mut Value) {
        common::default_field(obj, "spec", json!({}));
        common::default_field(&mut obj["spec"], "finalizers", json!(["kubernetes"]));
        set_name_label(obj);
    }
    fn prepare_for_create(&self, obj: &mut Value) {
        obj["status"] = json!({"phase": "Active"});
    }
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // spec.finalizers changes only through /finalize.
        new["spec"]["finalizers"] = old["spec"]["finalizers"].clone();
        set_name_label(new);
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Status", "string", 0, "The status of the namespace"),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        vec![json!(crate::meta::name(o)), json!(o["status"]["phase"].as_str().unwrap_or("")), json!(crate::api::table::age(o))]
    }
    fn field_names(&self) -> &'static [&'static str] {
        &["status.phase"]
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        vec![("status.phase", common::field_string(o, "status.phase"))]
    }
}
