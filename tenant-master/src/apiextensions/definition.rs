//! The `customresourcedefinitions` resource (`apiextensions.k8s.io/v1`, cluster-scoped, with a
//! status subresource), after upstream's `registry/customresourcedefinition` strategy:
//! defaulting, a fresh status with the storage version recorded on create, the storage
//! version added to `status.storedVersions` on update, validation ([`super::validation`]), and
//! the default Table (NAME, CREATED AT) `kubectl get crd` prints.
//!
//! Deleting a CRD first marks it with the `customresourcecleanup.apiextensions.k8s.io`
//! finalizer and a Terminating condition (upstream's REST `Delete` does the same); the
//! finalizer controller ([`super::finalizer`]) then deletes its custom resources and lets it go.

use serde_json::{json, Value};

use super::model::{set_condition, CLEANUP_FINALIZER, GROUP, TERMINATING};
use crate::api::status::FieldError;
use crate::registry::strategies::info;
use crate::registry::{Column, ResourceInfo, Strategy};

/// The CustomResourceDefinition strategy.
pub struct CustomResourceDefinitions;

static INFO: ResourceInfo = info(GROUP, "v1", "CustomResourceDefinition", "customresourcedefinitions", "customresourcedefinition", false)
    .with_short_names(&["crd", "crds"])
    .with_categories(&["api-extensions"])
    .with_subresources(&["status"]);

/// Adds the storage version to `status.storedVersions` if it is not there yet.
fn record_storage_version(obj: &mut Value) {
    let storage = obj["spec"]["versions"].as_array().and_then(|vs| vs.iter().find(|v| v["storage"] == true)).and_then(|v| v["name"].as_str()).map(String::from);
    let Some(storage) = storage else { return };
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    let stored = &mut obj["status"]["storedVersions"];
    if !stored.is_array() {
        *stored = json!([]);
    }
    if let Some(a) = stored.as_array_mut() {
        if !a.iter().any(|v| v == storage.as_str()) {
            a.push(json!(storage));
        }
    }
}

impl Strategy for CustomResourceDefinitions {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }

    /// v1 defaults: singular from the kind, listKind `<Kind>List`, conversion strategy None,
    /// webhook service port 443.
    fn default(&self, o: &mut Value) {
        let spec = &mut o["spec"];
        if !spec.is_object() {
            return;
        }
        if spec["names"].is_object() {
            let kind = spec["names"]["kind"].as_str().unwrap_or("").to_string();
            if spec["names"]["singular"].as_str().unwrap_or("").is_empty() {
                spec["names"]["singular"] = json!(kind.to_lowercase());
            }
            if spec["names"]["listKind"].as_str().unwrap_or("").is_empty() && !kind.is_empty() {
                spec["names"]["listKind"] = json!(format!("{kind}List"));
            }
        }
        if spec["conversion"].is_null() {
            spec["conversion"] = json!({"strategy": "None"});
        }
        if let Some(svc) = spec.pointer_mut("/conversion/webhook/clientConfig/service").filter(|s| s.is_object()) {
            if svc["port"].is_null() {
                svc["port"] = json!(443);
            }
        }
    }

    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"acceptedNames": {"plural": "", "kind": ""}});
        record_storage_version(o);
    }

    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        record_storage_version(new);
    }

    fn validate_create(&self, o: &Value, errs: &mut Vec<FieldError>) {
        super::validation::validate_create(o, errs);
    }

    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        super::validation::validate_update(new, old, errs);
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn columns(&self) -> Vec<Column> {
        crate::api::table::default_columns()
    }

    fn row(&self, o: &Value) -> Vec<Value> {
        crate::api::table::default_row(o)
    }

    fn prepare_for_delete(&self, o: &mut Value) {
        let md = crate::meta::metadata_mut(o);
        let fins = md.entry("finalizers").or_insert_with(|| json!([]));
        if !fins.is_array() {
            *fins = json!([]);
        }
        if let Some(a) = fins.as_array_mut() {
            if !a.iter().any(|f| f == CLEANUP_FINALIZER) {
                a.push(json!(CLEANUP_FINALIZER));
            }
        }
        set_condition(
            o,
            TERMINATING,
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_stored_versions() {
        let mut o = json!({"spec": {"names": {"kind": "Widget", "plural": "widgets"}, "versions": [{"name": "v1", "storage": false}, {"name": "v2", "storage": true}],
            "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"service": {"name": "s", "namespace": "n"}}}}}});
        CustomResourceDefinitions.default(&mut o);
        assert_eq!(o["spec"]["names"]["singular"], "widget");
        assert_eq!(o["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(o["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"], 443);
        CustomResourceDefinitions.prepare_for_create(&mut o);
        assert_eq!(o["status"], json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v2"]}));
        o["spec"]["versions"][0]["storage"] = json!(true);
        o["spec"]["versions"][1]["storage"] = json!(false);
        CustomResourceDefinitions.prepare_for_update(&mut o, &Value::Null);
        assert_eq!(o["status"]["storedVersions"], json!(["v2", "v1"]));
        let mut none = json!({"spec": {"names": {"kind": "A"}}});
        CustomResourceDefinitions.default(&mut none);
        assert_eq!(none["spec"]["conversion"], json!({"strategy": "None"}));
    }

    #[test]
    fn deletion_adds_the_cleanup_finalizer_once() {
        let mut o = json!({"metadata": {"name": "w", "finalizers": ["x"]}});
        CustomResourceDefinitions.prepare_for_delete(&mut o);
        CustomResourceDefinitions.prepare_for_delete(&mut o);
        assert_eq!(o["metadata"]["finalizers"], json!(["x", CLEANUP_FINALIZER]));
        assert_eq!(o["status"]["conditions"][0]["reason"], "InstanceDeletionPending");
    }
}
