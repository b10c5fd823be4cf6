//! core/v1 persistentvolumeclaims: volumeMode Filesystem, Pending on create, spec validation and
//! the rule that only a bound claim's storage request may change.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct PersistentVolumeClaims;

static INFO: ResourceInfo = info("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", true).with_short_names(&["pvc"]).with_subresources(&["status"]);

pub const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
pub const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
pub const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
pub const QUANTITY_FORMAT: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// SetDefaults_PersistentVolumeClaim(Spec) with its resource lists, shared with StatefulSet
/// volumeClaimTemplates. The spec is a struct upstream, so it is written even when left out.
pub fn default_claim(pvc: &mut Value) {
    common::default_field(pvc, "spec", json!({}));
    super::podspec::defaults::default_claim_spec(&mut pvc["spec"]);
    for list in ["capacity", "allocatedResources"] {
        crate::registry::quantity::canonicalize_list(&mut pvc["status"][list]);
        if pvc["status"][list].is_null() {
            if let Some(st) = pvc["status"].as_object_mut() {
                st.remove(list);
            }
        }
    }
    if pvc["status"]["phase"].as_str().unwrap_or("").is_empty() {
        pvc["status"]["phase"] = json!("Pending");
    }
}

/// Access modes shared by claims and volumes; `required` is the message when none is given.
pub fn validate_access_modes(modes: &Value, path: &str, required: &str, errs: &mut Vec<FieldError>) {
    let list: Vec<&Value> = modes.as_array().into_iter().flatten().collect();
    if list.is_empty() {
        errs.push(FieldError::required(path, required));
    }
    for m in &list {
        if !m.as_str().map(|m| ACCESS_MODES.contains(&m)).unwrap_or(false) {
            errs.push(FieldError::not_supported(path, (*m).clone(), ACCESS_MODES));
        }
    }
    if list.len() > 1 && list.iter().any(|m| *m == "ReadWriteOncePod") {
        errs.push(FieldError::forbidden(path, "may not use ReadWriteOncePod with other access modes"));
    }
}

/// The storage class name rule (a DNS subdomain).
pub fn validate_class_name(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(c) = v.as_str().filter(|c| !c.is_empty()) {
        for e in crate::validation::dns1123_subdomain_errors(c) {
            errs.push(FieldError::invalid(path, c, e));
        }
    }
}

/// ValidatePersistentVolumeClaimSpec in short form.
pub fn validate_claim_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    validate_access_modes(&spec["accessModes"], &format!("{path}.accessModes"), "at least 1 access mode is required", errs);
    let storage = &spec["resources"]["requests"]["storage"];
    let spath = format!("{path}.resources[storage]");
    if storage.is_null() {
        errs.push(FieldError::required(spath, ""));
    } else {
        match common::quantity(storage) {
            None => errs.push(FieldError::invalid(spath, storage.clone(), QUANTITY_FORMAT)),
            Some(q) if q <= 0.0 => errs.push(FieldError::invalid(spath, common::intstr(storage), "must be greater than zero")),
            _ => {}
        }
    }
    common::one_of(&spec["volumeMode"], &format!("{path}.volumeMode"), VOLUME_MODES, errs);
    validate_class_name(&spec["storageClassName"], &format!("{path}.storageClassName"), errs);
}

/// `RWO,ROX,RWX,RWOP` of a list of access modes, in upstream's fixed order.
pub fn access_modes(v: &Value) -> String {
    let modes: Vec<&str> = v.as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
    [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
        .iter()
        .filter(|(m, _)| modes.contains(m))
        .map(|(_, s)| *s)
        .collect::<Vec<_>>()
        .join(",")
}


/// The storage class of a claim or volume: the beta annotation first, then the spec field.
pub fn class_of(o: &Value) -> String {
    match o["metadata"]["annotations"][BETA_CLASS_ANNOTATION].as_str() {
        Some(c) => c.to_string(),
        None => o["spec"]["storageClassName"].as_str().unwrap_or("").to_string(),
    }
}

/// The VOLUMEATTRIBUTESCLASS and VOLUMEMODE cells (`<unset>` when absent).
pub fn unset_or(v: &Value) -> String {
    v.as_str().unwrap_or("<unset>").to_string()
}

impl Strategy for PersistentVolumeClaims {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        default_claim(o);
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"phase": "Pending"});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        validate_claim_spec(&o["spec"], "spec", errs);
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        let (mut n, mut o) = (new["spec"].clone(), old["spec"].clone());
        // volumeName may be set once.
        if o["volumeName"].as_str().unwrap_or("").is_empty() {
            common::copy_path(&mut o, &n, "volumeName");
        }
        if old["status"]["phase"] == "Bound" {
            common::copy_path(&mut o, &n, "resources.requests.storage");
            let (ns, os) = (common::quantity(&new["spec"]["resources"]["requests"]["storage"]), common::quantity(&old["spec"]["resources"]["requests"]["storage"]));
            let cap = common::quantity(&old["status"]["capacity"]["storage"]);
            if let (Some(ns), Some(os)) = (ns, os) {
                if ns < os && cap.map(|c| ns <= c).unwrap_or(true) {
                    errs.push(FieldError::forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"));
                }
            }
        }
        for spec in [&mut n, &mut o] {
            common::remove_path(spec, "volumeAttributesClassName");
        }
        if n != o {
            errs.push(FieldError::forbidden("spec", "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"));
        }
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Status", "string", 0, "phase represents the current phase of PersistentVolumeClaim."),
            Column::new("Volume", "string", 0, "volumeName is the binding reference to the PersistentVolume backing this claim."),
            Column::new("Capacity", "string", 0, "capacity represents the actual resources of the underlying volume."),
            Column::new("Access Modes", "string", 0, "accessModes contains the actual access modes the volume backing the PVC has."),
            Column::new("StorageClass", "string", 0, "StorageClass of the pvc"),
            Column::new("VolumeAttributesClass", "string", 0, "VolumeAttributesClass of the pvc"),
            Column::age(),
            Column::new("VolumeMode", "string", 1, "volumeMode defines what type of volume is required by the claim."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let phase = if crate::meta::is_deleting(o) { "Terminating" } else { o["status"]["phase"].as_str().unwrap_or("") };
        let volume = o["spec"]["volumeName"].as_str().unwrap_or("");
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (common::intstr(&o["status"]["capacity"]["storage"]), access_modes(&o["status"]["accessModes"]))
        };
        vec![
            json!(crate::meta::name(o)),
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(class_of(o)),
            json!(unset_or(&o["spec"]["volumeAttributesClassName"])),
            json!(crate::api::table::age(o)),
            json!(unset_or(&o["spec"]["volumeMode"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvc() -> Value {
        json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    }

    #[test]
    fn defaults_and_validation() {
        let mut o = pvc();
        PersistentVolumeClaims.default(&mut o);
        assert_eq!(o["spec"]["volumeMode"], "Filesystem");
        assert_eq!(o["status"]["phase"], "Pending");
        let mut errs = Vec::new();
        PersistentVolumeClaims.validate(&o, &mut errs);
        assert!(errs.is_empty());
        let bad = json!({"spec": {"accessModes": ["ReadWriteOncePod", "Nope"], "resources": {"requests": {"storage": "0"}}}});
        PersistentVolumeClaims.validate(&bad, &mut errs);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.accessModes", "spec.accessModes", "spec.resources[storage]"]);
    }

    #[test]
    fn only_bound_claims_grow() {
        let mut old = pvc();
        let mut new = pvc();
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        let mut errs = Vec::new();
        PersistentVolumeClaims.validate_update(&new, &old, &mut errs);
        assert_eq!(errs.len(), 1);
        old["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        errs.clear();
        PersistentVolumeClaims.validate_update(&new, &old, &mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn row_shows_capacity_only_when_bound() {
        let mut o = pvc();
        PersistentVolumeClaims.default(&mut o);
        let r = PersistentVolumeClaims.row(&o);
        assert_eq!((r[1].clone(), r[3].clone(), r[5].clone(), r[6].clone()), (json!("Pending"), json!(""), json!(""), json!("<unset>")));
        o["spec"]["volumeName"] = json!("pv-1");
        o["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]});
        let r = PersistentVolumeClaims.row(&o);
        assert_eq!((r[3].clone(), r[4].clone(), r[8].clone()), (json!("1Gi"), json!("RWO"), json!("Filesystem")));
    }
}
