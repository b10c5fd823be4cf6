//! core/v1 persistentvolumes (cluster-scoped): reclaim policy Retain, volumeMode Filesystem,
//! Pending with a phase transition time on create, one volume source, immutable source.

use serde_json::{json, Value};

use super::persistentvolumeclaims::{access_modes, class_of, unset_or, validate_access_modes, validate_class_name, VOLUME_MODES};
use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct PersistentVolumes;

static INFO: ResourceInfo = info("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false).with_short_names(&["pv"]).with_subresources(&["status"]);

/// The members of PersistentVolumeSource, in the order upstream checks them.
const SOURCES: &[&str] = &[
    "gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "flocker", "nfs", "rbd", "quobyte", "cephfs", "iscsi",
    "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume", "azureDisk", "scaleIO",
    "local", "storageos", "csi",
];

const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];

fn source(spec: &Value) -> Value {
    let mut m = serde_json::Map::new();
    for s in SOURCES {
        if let Some(v) = spec.get(*s).filter(|v| !v.is_null()) {
            m.insert(s.to_string(), v.clone());
        }
    }
    Value::Object(m)
}

impl Strategy for PersistentVolumes {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn default(&self, o: &mut Value) {
        if let Some(spec) = o.get_mut("spec").filter(|s| s.is_object()) {
            common::default_field(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            common::default_field(spec, "volumeMode", json!("Filesystem"));
            if spec["hostPath"].is_object() {
                common::default_field(&mut spec["hostPath"], "type", json!(""));
            }
            if spec["capacity"].is_object() {
                crate::registry::quantity::default_resource_list(&mut spec["capacity"]);
            }
        }
        if o["status"]["phase"].as_str().unwrap_or("").is_empty() {
            o["status"]["phase"] = json!("Pending");
        }
    }
    fn prepare_for_create(&self, o: &mut Value) {
        o["status"] = json!({"phase": "Pending", "lastPhaseTransitionTime": crate::meta::now_rfc3339()});
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        validate_access_modes(&spec["accessModes"], "spec.accessModes", "must specify at least 1 access mode", errs);
        match spec["capacity"].as_object() {
            None => errs.push(FieldError::required("spec.capacity", "")),
            Some(c) if c.is_empty() => errs.push(FieldError::required("spec.capacity", "")),
            Some(c) => {
                if c.len() > 1 || !c.contains_key("storage") {
                    errs.push(FieldError::not_supported("spec.capacity", spec["capacity"].clone(), &["storage"]));
                }
                if let Some(q) = c.get("storage") {
                    match common::quantity(q) {
                        None => errs.push(FieldError::invalid("spec.capacity[storage]", q.clone(), super::persistentvolumeclaims::QUANTITY_FORMAT)),
                        Some(v) if v <= 0.0 => errs.push(FieldError::invalid("spec.capacity[storage]", q.clone(), "must be greater than zero")),
                        _ => {}
                    }
                }
            }
        }
        common::one_of(&spec["persistentVolumeReclaimPolicy"], "spec.persistentVolumeReclaimPolicy", RECLAIM_POLICIES, errs);
        common::one_of(&spec["volumeMode"], "spec.volumeMode", VOLUME_MODES, errs);
        validate_class_name(&spec["storageClassName"], "spec.storageClassName", errs);
        let present: Vec<&str> = SOURCES.iter().copied().filter(|s| !spec[*s].is_null()).collect();
        match present.as_slice() {
            [] => errs.push(FieldError::required("spec", "must specify a volume type")),
            [_] => {}
            [_, rest @ ..] => {
                for s in rest {
                    errs.push(FieldError::forbidden(format!("spec.{s}"), "may not specify more than 1 volume type"));
                }
            }
        }
        if spec["hostPath"].is_object() && spec["hostPath"]["path"].as_str().unwrap_or("").is_empty() {
            errs.push(FieldError::required("spec.hostPath.path", ""));
        }
        if spec["nfs"].is_object() {
            if spec["nfs"]["server"].as_str().unwrap_or("").is_empty() {
                errs.push(FieldError::required("spec.nfs.server", ""));
            }
            if !spec["nfs"]["path"].as_str().unwrap_or("").starts_with('/') {
                errs.push(FieldError::invalid("spec.nfs.path", spec["nfs"]["path"].clone(), "must be an absolute path"));
            }
        }
        if spec["local"].is_object() {
            if spec["local"]["path"].as_str().unwrap_or("").is_empty() {
                errs.push(FieldError::required("spec.local.path", ""));
            }
            if spec["nodeAffinity"].is_null() {
                errs.push(FieldError::required("spec.nodeAffinity", "Local volume requires node affinity"));
            }
        }
        if spec["csi"].is_object() {
            for f in ["driver", "volumeHandle"] {
                if spec["csi"][f].as_str().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(format!("spec.csi.{f}"), ""));
                }
            }
        }
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        if source(&new["spec"]) != source(&old["spec"]) {
            errs.push(FieldError::forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after creation"));
        }
        if new["spec"]["volumeMode"] != old["spec"]["volumeMode"] {
            errs.push(FieldError::invalid("volumeMode", new["spec"]["volumeMode"].clone(), "field is immutable"));
        }
        if !old["spec"]["nodeAffinity"].is_null() && new["spec"]["nodeAffinity"] != old["spec"]["nodeAffinity"] {
            errs.push(FieldError::invalid("nodeAffinity", new["spec"]["nodeAffinity"].clone(), "field is immutable"));
        }
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Capacity", "string", 0, "capacity is the description of the persistent volume's resources and capacity."),
            Column::new("Access Modes", "string", 0, "accessModes contains all ways the volume can be mounted."),
            Column::new("Reclaim Policy", "string", 0, "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
            Column::new("Status", "string", 0, "phase indicates if a volume is available, bound to a claim, or released by a claim."),
            Column::new("Claim", "string", 0, "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
            Column::new("StorageClass", "string", 0, "StorageClass of the pv"),
            Column::new("VolumeAttributesClass", "string", 0, "VolumeAttributesClass of the pv"),
            Column::new("Reason", "string", 0, "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
            Column::age(),
            Column::new("VolumeMode", "string", 1, "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let spec = &o["spec"];
        let claim = if spec["claimRef"].is_object() {
            format!("{}/{}", spec["claimRef"]["namespace"].as_str().unwrap_or(""), spec["claimRef"]["name"].as_str().unwrap_or(""))
        } else {
            String::new()
        };
        let phase = if crate::meta::is_deleting(o) { "Terminating" } else { o["status"]["phase"].as_str().unwrap_or("") };
        let capacity = if spec["capacity"]["storage"].is_null() { "0".to_string() } else { common::intstr(&spec["capacity"]["storage"]) };
        vec![
            json!(crate::meta::name(o)),
            json!(capacity),
            json!(access_modes(&spec["accessModes"])),
            json!(spec["persistentVolumeReclaimPolicy"].as_str().unwrap_or("")),
            json!(phase),
            json!(claim),
            json!(class_of(o)),
            json!(unset_or(&spec["volumeAttributesClassName"])),
            json!(o["status"]["reason"].as_str().unwrap_or("")),
            json!(crate::api::table::age(o)),
            json!(unset_or(&spec["volumeMode"])),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv() -> Value {
        json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "hostPath": {"path": "/data"}}})
    }

    #[test]
    fn defaults_validation_and_row() {
        let mut o = pv();
        PersistentVolumes.default(&mut o);
        PersistentVolumes.prepare_for_create(&mut o);
        assert_eq!(o["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(o["spec"]["volumeMode"], "Filesystem");
        assert_eq!(o["spec"]["hostPath"]["type"], "");
        assert_eq!(o["status"]["phase"], "Pending");
        let mut errs = Vec::new();
        PersistentVolumes.validate(&o, &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        o["spec"]["claimRef"] = json!({"namespace": "default", "name": "data"});
        let r = PersistentVolumes.row(&o);
        assert_eq!(r[1..6].to_vec(), vec![json!("5Gi"), json!("RWO,ROX"), json!("Retain"), json!("Pending"), json!("default/data")]);
        assert_eq!(r[7], json!("<unset>"));
    }

    #[test]
    fn one_source_and_immutable_source() {
        let mut o = pv();
        o["spec"]["nfs"] = json!({"server": "s", "path": "/x"});
        let mut errs = Vec::new();
        PersistentVolumes.validate(&o, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.nfs");
        errs.clear();
        let mut new = pv();
        new["spec"]["hostPath"]["path"] = json!("/other");
        PersistentVolumes.validate_update(&new, &pv(), &mut errs);
        assert_eq!(errs[0].field, "spec.persistentvolumesource");
    }
}
