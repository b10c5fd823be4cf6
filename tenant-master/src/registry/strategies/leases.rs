//! coordination.k8s.io/v1 leases: duration and transition checks, the HOLDER column.

use serde_json::{json, Value};

use super::{common, info};
use crate::api::status::FieldError;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Leases;

static INFO: ResourceInfo = info("coordination.k8s.io", "v1", "Lease", "leases", "lease", true);

impl Strategy for Leases {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn validate(&self, o: &Value, errs: &mut Vec<FieldError>) {
        let spec = &o["spec"];
        if let Some(d) = spec["leaseDurationSeconds"].as_i64().filter(|d| *d <= 0) {
            errs.push(FieldError::invalid("spec.leaseDurationSeconds", d, "must be greater than 0"));
        }
        common::non_negative(&spec["leaseTransitions"], "spec.leaseTransitions", errs);
        common::one_of(&spec["strategy"], "spec.strategy", &["OldestEmulationVersion"], errs);
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Holder", "string", 0, "holderIdentity contains the identity of the holder of a current lease."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        vec![json!(crate::meta::name(o)), json!(o["spec"]["holderIdentity"].as_str().unwrap_or("")), json!(crate::api::table::age(o))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_cell_and_duration_check() {
        let o = json!({"metadata": {"name": "kube-scheduler"}, "spec": {"holderIdentity": "node-1_abc", "leaseDurationSeconds": 0}});
        assert_eq!(Leases.row(&o)[1], json!("node-1_abc"));
        assert_eq!(Leases.row(&json!({"metadata": {"name": "x"}}))[1], json!(""));
        let mut errs = Vec::new();
        Leases.validate(&o, &mut errs);
        assert_eq!(errs[0].field, "spec.leaseDurationSeconds");
    }
}
