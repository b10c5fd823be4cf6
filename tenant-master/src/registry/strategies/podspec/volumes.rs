//! `ValidateVolumes` and `ValidateVolumeMounts`: one source per volume with that source's own
//! checks, unique DNS-label names, and mounts that refer to a volume that passed.

use std::collections::HashSet;

use serde_json::Value;

use super::validation::{arr, dns_label, s};
use crate::api::status::FieldError;
use crate::registry::quantity::Quantity;

const FILE_MODE: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// Volume sources in the order `validateVolumeSource` looks at them.
pub const VOLUME_SOURCES: &[&str] = &[
    "hostPath", "emptyDir", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi", "glusterfs",
    "flexVolume", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi",
    "ephemeral", "image",
];

const HOST_PATH_TYPES: &[&str] = &["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"];

fn file_mode(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(m) = v.as_i64() {
        if !(0..=0o777).contains(&m) {
            errs.push(FieldError::invalid(path, m, FILE_MODE));
        }
    }
}

/// `validateLocalDescendingPath`: relative, no `..` element.
fn local_descending_path(p: &str, path: &str, errs: &mut Vec<FieldError>) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split('/').any(|e| e == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

fn key_to_path_items(items: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, it) in arr(items).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        if s(&it["key"]).is_empty() {
            errs.push(FieldError::required(format!("{ip}.key"), ""));
        }
        if s(&it["path"]).is_empty() {
            errs.push(FieldError::required(format!("{ip}.path"), ""));
        } else {
            local_descending_path(s(&it["path"]), &format!("{ip}.path"), errs);
        }
        file_mode(&it["mode"], &format!("{ip}.mode"), errs);
    }
}

/// `validateVolumeSource`: exactly one source, and that source's own checks.
fn validate_volume_source(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut n = 0;
    for src in VOLUME_SOURCES {
        if v[*src].is_null() {
            continue;
        }
        if n > 0 {
            errs.push(FieldError::forbidden(format!("{path}.{src}"), "may not specify more than 1 volume type"));
            continue;
        }
        n += 1;
        let sp = format!("{path}.{src}");
        let x = &v[*src];
        match *src {
            "hostPath" => {
                if s(&x["path"]).is_empty() {
                    errs.push(FieldError::required(format!("{sp}.path"), ""));
                } else if s(&x["path"]).split('/').any(|e| e == "..") {
                    errs.push(FieldError::invalid(format!("{sp}.path"), s(&x["path"]), "must not contain '..'"));
                }
                if let Some(t) = x["type"].as_str().filter(|t| !HOST_PATH_TYPES.contains(t)) {
                    errs.push(FieldError::not_supported(format!("{sp}.type"), t, HOST_PATH_TYPES));
                }
            }
            "emptyDir" => {
                let m = s(&x["medium"]);
                if !(m.is_empty() || m == "Memory" || m.starts_with("HugePages")) {
                    errs.push(FieldError::not_supported(format!("{sp}.medium"), m, &["", "Memory", "HugePages"]));
                }
                if let Some(q) = Quantity::from_json(&x["sizeLimit"]) {
                    if q.mantissa <= 0 {
                        errs.push(FieldError::forbidden(format!("{sp}.sizeLimit"), "SizeLimit field must be a valid resource quantity"));
                    }
                }
            }
            "secret" => {
                if s(&x["secretName"]).is_empty() {
                    errs.push(FieldError::required(format!("{sp}.secretName"), ""));
                }
                file_mode(&x["defaultMode"], &format!("{sp}.defaultMode"), errs);
                key_to_path_items(&x["items"], &format!("{sp}.items"), errs);
            }
            "configMap" => {
                if s(&x["name"]).is_empty() {
                    errs.push(FieldError::required(format!("{sp}.name"), ""));
                }
                file_mode(&x["defaultMode"], &format!("{sp}.defaultMode"), errs);
                key_to_path_items(&x["items"], &format!("{sp}.items"), errs);
            }
            "persistentVolumeClaim" => {
                if s(&x["claimName"]).is_empty() {
                    errs.push(FieldError::required(format!("{sp}.claimName"), ""));
                }
            }
            "nfs" => {
                if s(&x["server"]).is_empty() {
                    errs.push(FieldError::required(format!("{sp}.server"), ""));
                }
                if s(&x["path"]).is_empty() {
                    errs.push(FieldError::required(format!("{sp}.path"), ""));
                } else if !s(&x["path"]).starts_with('/') {
                    errs.push(FieldError::invalid(format!("{sp}.path"), s(&x["path"]), "must be an absolute path"));
                }
            }
            "downwardAPI" | "projected" => file_mode(&x["defaultMode"], &format!("{sp}.defaultMode"), errs),
            "csi" => {
                if s(&x["driver"]).is_empty() {
                    errs.push(FieldError::required(format!("{sp}.driver"), ""));
                }
            }
            "ephemeral" => {
                if !x["volumeClaimTemplate"].is_object() {
                    errs.push(FieldError::required(format!("{sp}.volumeClaimTemplate"), ""));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
}

/// `ValidateVolumes`: returns the names of the volumes that passed, for mounts to refer to.
pub(super) fn validate_volumes(vols: &Value, path: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in arr(vols).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let mut el = Vec::new();
        validate_volume_source(v, &ip, &mut el);
        let name = s(&v["name"]);
        if name.is_empty() {
            el.push(FieldError::required(format!("{ip}.name"), ""));
        } else {
            dns_label(name, &format!("{ip}.name"), &mut el);
        }
        if names.contains(name) {
            el.push(FieldError::duplicate(format!("{ip}.name"), name));
        }
        if el.is_empty() {
            names.insert(name.to_string());
        }
        errs.extend(el);
    }
    names
}

pub(super) fn validate_mounts(mounts: &Value, volumes: &HashSet<String>, path: &str, errs: &mut Vec<FieldError>) {
    let mut points = HashSet::new();
    for (i, m) in arr(mounts).iter().enumerate() {
        let ip = format!("{path}[{i}]");
        let name = s(&m["name"]);
        if name.is_empty() {
            errs.push(FieldError::required(format!("{ip}.name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(FieldError::not_found(format!("{ip}.name"), name));
        }
        let mp = s(&m["mountPath"]);
        if mp.is_empty() {
            errs.push(FieldError::required(format!("{ip}.mountPath"), ""));
        }
        if !points.insert(mp) {
            errs.push(FieldError::invalid(format!("{ip}.mountPath"), mp, "must be unique"));
        }
        if !s(&m["subPath"]).is_empty() {
            local_descending_path(s(&m["subPath"]), &format!("{path}.subPath"), errs);
        }
        if !s(&m["subPathExpr"]).is_empty() && !s(&m["subPath"]).is_empty() {
            errs.push(FieldError::invalid(format!("{ip}.subPathExpr"), s(&m["subPathExpr"]), "subPathExpr and subPath are mutually exclusive"));
        }
    }
}
