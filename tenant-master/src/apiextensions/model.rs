//! A read-only view of an `apiextensions.k8s.io/v1` CustomResourceDefinition, as stored (JSON),
//! with what serving its custom resources needs; and the condition helpers upstream's
//! `apihelpers` package has (`SetCRDCondition`, `IsCRDConditionTrue`).
//!
//! The view is lenient: it is built from objects validation already accepted, and anything
//! unexpected reads as absent.

use serde_json::{json, Value};

use crate::registry::scale::CustomScale;

/// The API group of CustomResourceDefinitions.
pub const GROUP: &str = "apiextensions.k8s.io";

/// The finalizer a CRD carries from its deletion until its custom resources are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Condition types.
pub const ESTABLISHED: &str = "Established";
pub const NAMES_ACCEPTED: &str = "NamesAccepted";
pub const TERMINATING: &str = "Terminating";

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
}

/// `spec.names` or `status.acceptedNames`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

impl Names {
    pub fn parse(v: &Value) -> Names {
        Names {
            plural: str_of(&v["plural"]),
            singular: str_of(&v["singular"]),
            kind: str_of(&v["kind"]),
            list_kind: str_of(&v["listKind"]),
            short_names: strings(&v["shortNames"]),
            categories: strings(&v["categories"]),
        }
    }

    /// The JSON form, fields in upstream's order (`plural` and `kind` always present).
    pub fn to_json(&self) -> Value {
        let mut o = json!({"plural": self.plural});
        if !self.singular.is_empty() {
            o["singular"] = json!(self.singular);
        }
        if !self.short_names.is_empty() {
            o["shortNames"] = json!(self.short_names);
        }
        o["kind"] = json!(self.kind);
        if !self.list_kind.is_empty() {
            o["listKind"] = json!(self.list_kind);
        }
        if !self.categories.is_empty() {
            o["categories"] = json!(self.categories);
        }
        o
    }
}

/// One of `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    pub typ: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

/// One of `spec.versions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    pub deprecated: bool,
    pub deprecation_warning: Option<String>,
    /// `schema.openAPIV3Schema`.
    pub schema: Option<Value>,
    /// `subresources.status` is set.
    pub status: bool,
    pub scale: Option<CustomScale>,
    pub columns: Vec<PrinterColumn>,
    /// `selectableFields[].jsonPath`, as `.spec.color`.
    pub selectable: Vec<String>,
}

/// `.spec.replicas` as `["spec", "replicas"]`.
pub fn split_path(p: &str) -> Vec<String> {
    p.trim_start_matches('.').split('.').filter(|s| !s.is_empty()).map(String::from).collect()
}

impl Version {
    fn parse(v: &Value) -> Version {
        let scale = v["subresources"]["scale"].as_object().map(|s| CustomScale {
            spec_replicas: split_path(s.get("specReplicasPath").and_then(|x| x.as_str()).unwrap_or("")),
            status_replicas: split_path(s.get("statusReplicasPath").and_then(|x| x.as_str()).unwrap_or("")),
            label_selector: s.get("labelSelectorPath").and_then(|x| x.as_str()).filter(|p| !p.is_empty()).map(split_path),
        });
        let columns = v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: str_of(&c["name"]),
                typ: str_of(&c["type"]),
                format: str_of(&c["format"]),
                description: str_of(&c["description"]),
                priority: c["priority"].as_i64().unwrap_or(0) as i32,
                json_path: str_of(&c["jsonPath"]),
            })
            .collect();
        Version {
            name: str_of(&v["name"]),
            served: v["served"].as_bool().unwrap_or(false),
            storage: v["storage"].as_bool().unwrap_or(false),
            deprecated: v["deprecated"].as_bool().unwrap_or(false),
            deprecation_warning: v["deprecationWarning"].as_str().map(String::from),
            schema: v["schema"].get("openAPIV3Schema").filter(|s| s.is_object()).cloned(),
            status: v["subresources"].get("status").is_some_and(|s| !s.is_null()),
            scale,
            columns,
            selectable: v["selectableFields"].as_array().into_iter().flatten().map(|f| str_of(&f["jsonPath"])).collect(),
        }
    }
}

/// What the tenant master reads from a CustomResourceDefinition.
#[derive(Debug, Clone)]
pub struct Crd {
    pub name: String,
    pub uid: String,
    pub generation: i64,
    pub group: String,
    pub namespaced: bool,
    pub names: Names,
    pub accepted: Names,
    pub versions: Vec<Version>,
    pub stored_versions: Vec<String>,
    pub conditions: Vec<Value>,
    pub deleting: bool,
}

impl Crd {
    pub fn parse(v: &Value) -> Crd {
        let spec = &v["spec"];
        Crd {
            name: str_of(&v["metadata"]["name"]),
            uid: str_of(&v["metadata"]["uid"]),
            generation: v["metadata"]["generation"].as_i64().unwrap_or(0),
            group: str_of(&spec["group"]),
            namespaced: spec["scope"] == "Namespaced",
            names: Names::parse(&spec["names"]),
            accepted: Names::parse(&v["status"]["acceptedNames"]),
            versions: spec["versions"].as_array().into_iter().flatten().map(Version::parse).collect(),
            stored_versions: strings(&v["status"]["storedVersions"]),
            conditions: v["status"]["conditions"].as_array().cloned().unwrap_or_default(),
            deleting: crate::meta::is_deleting(v),
        }
    }

    /// The condition of a type.
    pub fn condition(&self, typ: &str) -> Option<&Value> {
        self.conditions.iter().find(|c| c["type"] == typ)
    }

    /// Whether the condition of a type is True (`IsCRDConditionTrue`).
    pub fn is_true(&self, typ: &str) -> bool {
        self.condition(typ).is_some_and(|c| c["status"] == "True")
    }

    /// The version marked `storage`.
    pub fn storage_version(&self) -> Option<&Version> {
        self.versions.iter().find(|v| v.storage)
    }
}

/// Sets a condition of a CRD object as upstream's `SetCRDCondition`: the transition time moves
/// only when the status changes. Returns whether anything changed.
pub fn set_condition(crd: &mut Value, typ: &str, status: &str, reason: &str, message: &str) -> bool {
    if !crd["status"].is_object() {
        crd["status"] = json!({});
    }
    if !crd["status"]["conditions"].is_array() {
        crd["status"]["conditions"] = json!([]);
    }
    let Some(conds) = crd["status"]["conditions"].as_array_mut() else { return false };
    let now = crate::meta::now_rfc3339();
    match conds.iter_mut().find(|c| c["type"] == typ) {
        None => {
            conds.push(json!({"type": typ, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}));
            true
        }
        Some(c) => {
            let same = c["status"] == status && c["reason"] == reason && c["message"] == message;
            if same {
                return false;
            }
            if c["status"] != status || c["lastTransitionTime"].as_str().unwrap_or("").is_empty() {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_serving_needs() {
        let v = json!({
            "metadata": {"name": "widgets.example.com", "uid": "u", "generation": 2},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"], "categories": ["all"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size", "priority": 1}],
                    "selectableFields": [{"jsonPath": ".spec.color"}]}]},
            "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"}, "storedVersions": ["v1"],
                "conditions": [{"type": "Established", "status": "True"}]}
        });
        let c = Crd::parse(&v);
        assert!(c.namespaced && c.is_true(ESTABLISHED) && !c.is_true(TERMINATING));
        assert_eq!(c.names.short_names, ["wd"]);
        let ver = c.storage_version().unwrap();
        assert!(ver.status && ver.served);
        assert_eq!(ver.scale.as_ref().unwrap().spec_replicas, ["spec", "replicas"]);
        assert_eq!(ver.scale.as_ref().unwrap().label_selector, None);
        assert_eq!(ver.columns[0].priority, 1);
        assert_eq!(ver.selectable, [".spec.color"]);
    }

    #[test]
    fn conditions_move_their_time_only_on_status_changes() {
        let mut v = json!({"status": {}});
        assert!(set_condition(&mut v, "NamesAccepted", "True", "NoConflicts", "no conflicts found"));
        assert!(!set_condition(&mut v, "NamesAccepted", "True", "NoConflicts", "no conflicts found"));
        v["status"]["conditions"][0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        assert!(set_condition(&mut v, "NamesAccepted", "True", "Other", "m"));
        assert_eq!(v["status"]["conditions"][0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert!(set_condition(&mut v, "NamesAccepted", "False", "Other", "m"));
        assert_ne!(v["status"]["conditions"][0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
    }
}
