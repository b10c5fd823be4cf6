//! storage.k8s.io/v1 storageclasses (cluster-scoped): reclaimPolicy Delete and
//! volumeBindingMode Immediate, provisioner/parameters/reclaimPolicy/volumeBindingMode fixed
//! after creation, the `(default)` marker in the NAME column.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct StorageClasses;

static INFO: ResourceInfo = info("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", false).with_short_names(&["sc"]);

const DEFAULT_ANNOTATIONS: &[&str] = &["storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class"];

fn is_default(o: &Value) -> bool {
    DEFAULT_ANNOTATIONS.iter().any(|a| o["metadata"]["annotations"][*a] == "true")
}

impl Strategy for StorageClasses {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        common::default_field(o, "reclaimPolicy", json!("Delete"));
        common::default_field(o, "volumeBindingMode", json!("Immediate"));
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        match o["provisioner"].as_str().unwrap_or("") {
            "" => errs.push(FieldError::required("provisioner", "")),
            p => {
                for e in crate::validation::qualified_name_errors(&p.to_lowercase()) {
                    errs.push(FieldError::invalid("provisioner", p, e));
                }
            }
        }
        let params = o["parameters"].as_object().cloned().unwrap_or_default();
        let size: usize = params.iter().map(|(k, v)| k.len() + v.as_str().map(|s| s.len()).unwrap_or(0)).sum();
        if params.len() > 512 {
            errs.push(FieldError::invalid("parameters", o["parameters"].clone(), "must have less than 512 parameters"));
        }
        if size > 256 * 1024 {
            errs.push(FieldError::invalid("parameters", "", "must have less than 262144 bytes"));
        }
        if params.keys().any(|k| k.is_empty()) {
            errs.push(FieldError::invalid("parameters", o["parameters"].clone(), "parameter names must be non-empty"));
        }
        common::one_of(&o["reclaimPolicy"], "reclaimPolicy", &["Delete", "Retain"], errs);
        if o["volumeBindingMode"].is_null() {
            errs.push(FieldError::required("volumeBindingMode", ""));
        }
        common::one_of(&o["volumeBindingMode"], "volumeBindingMode", &["Immediate", "WaitForFirstConsumer"], errs);
        for (i, t) in o["allowedTopologies"].as_array().into_iter().flatten().enumerate() {
            let exprs = t["matchLabelExpressions"].as_array().cloned().unwrap_or_default();
            if exprs.is_empty() {
                errs.push(FieldError::required(format!("allowedTopologies[{i}].matchLabelExpressions"), "must have at least one label value requirement"));
            }
            for (j, e) in exprs.iter().enumerate() {
                if e["values"].as_array().map(|v| v.is_empty()).unwrap_or(true) {
                    errs.push(FieldError::required(format!("allowedTopologies[{i}].matchLabelExpressions[{j}].values"), "must specify as least one value"));
                }
            }
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        for f in ["parameters", "provisioner", "reclaimPolicy"] {
            if new[f] != old[f] {
                errs.push(FieldError::forbidden(f, format!("updates to {f} are forbidden.")));
            }
        }
        common::immutable(new, old, "volumeBindingMode", errs);
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Provisioner", "string", 0, "provisioner indicates the type of the provisioner."),
            Column::new("ReclaimPolicy", "string", 0, "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class."),
            Column::new("VolumeBindingMode", "string", 0, "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound."),
            Column::new("AllowVolumeExpansion", "string", 0, "allowVolumeExpansion shows whether the storage class allow volume expand."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let name = crate::meta::name(o);
        let name = if is_default(o) { format!("{name} (default)") } else { name.to_string() };
        vec![
            json!(name),
            json!(o["provisioner"].as_str().unwrap_or("")),
            json!(o["reclaimPolicy"].as_str().unwrap_or("Delete")),
            json!(o["volumeBindingMode"].as_str().unwrap_or("Immediate")),
            json!(o["allowVolumeExpansion"].as_bool().unwrap_or(false)),
            json!(crate::api::table::age(o)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_row_and_immutability() {
        let mut o = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"});
        StorageClasses.default(&mut o);
        assert_eq!((o["reclaimPolicy"].clone(), o["volumeBindingMode"].clone()), (json!("Delete"), json!("Immediate")));
        let mut errs = Vec::new();
        StorageClasses.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        let r = StorageClasses.row(&o);
        assert_eq!(r[..5].to_vec(), vec![json!("standard (default)"), json!("rancher.io/local-path"), json!("Delete"), json!("Immediate"), json!(false)]);
        let mut new = o.clone();
        new["reclaimPolicy"] = json!("Retain");
        StorageClasses.validate_update(&new, &o, &mut errs);
        assert_eq!(errs[0].detail, "updates to reclaimPolicy are forbidden.");
    }
}
