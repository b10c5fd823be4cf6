//! apps/v1 controllerrevisions: mandatory immutable data, non-negative revision, the
//! CONTROLLER/REVISION columns.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct ControllerRevisions;

static INFO: ResourceInfo = info("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", true);

/// `kind.group/name` of the controlling owner, lower-cased kind and group (`formatResourceName`).
pub fn controller_cell(o: &Value) -> String {
    let Some(owner) = o["metadata"]["ownerReferences"].as_array().into_iter().flatten().find(|r| r["controller"] == json!(true)) else {
        return "<none>".into();
    };
    let kind = owner["kind"].as_str().unwrap_or("");
    let group = owner["apiVersion"].as_str().unwrap_or("").rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    let name = owner["name"].as_str().unwrap_or("");
    match (kind, group) {
        ("", "") => name.to_string(),
        (k, "") => format!("{}/{name}", k.to_lowercase()),
        (k, g) => format!("{}.{}/{name}", k.to_lowercase(), g.to_lowercase()),
    }
}

impl Strategy for ControllerRevisions {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        if o["data"].is_null() {
            errs.push(FieldError::required("data", "data is mandatory"));
        }
        common::non_negative(&o["revision"], "revision", errs);
    }
    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        common::immutable(new, old, "data", errs);
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Controller", "string", 0, "Controller of the object"),
            Column::new("Revision", "string", 0, "Revision indicates the revision of the state represented by Data."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        vec![json!(crate::meta::name(o)), json!(controller_cell(o)), json!(common::int(&o["revision"])), json!(crate::api::table::age(o))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_cell_names_the_owner() {
        let o = json!({"metadata": {"name": "web-7d4", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "x"},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]}, "revision": 2, "data": {}});
        let r = ControllerRevisions.row(&o);
        assert_eq!((r[1].clone(), r[2].clone()), (json!("statefulset.apps/web"), json!(2)));
        assert_eq!(controller_cell(&json!({"metadata": {}})), "<none>");
        let mut errs = Vec::new();
        ControllerRevisions.validate(&json!({"revision": -1}), &mut errs);
        assert_eq!(errs.len(), 2);
    }
}
