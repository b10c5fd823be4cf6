//! core/v1 serviceaccounts: secret references reduced to names (`cleanSecretReferences`), the
//! SECRETS column, and the `token` subresource (served by `serviceaccount::token`).

use serde_json::{json, Value};

use super::info;
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct ServiceAccounts;

static INFO: ResourceInfo = info("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true).with_short_names(&["sa"]).with_subresources(&["token"]);

/// Keeps only the name of each entry of `secrets`, as upstream's strategy does.
fn clean_secret_references(o: &mut Value) {
    if let Some(secrets) = o.get_mut("secrets").and_then(|s| s.as_array_mut()) {
        for s in secrets {
            let name = s["name"].clone();
            *s = if name.is_null() { json!({}) } else { json!({"name": name}) };
        }
    }
}

impl Strategy for ServiceAccounts {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn prepare_for_create(&self, o: &mut Value) {
        clean_secret_references(o);
    }
    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        clean_secret_references(new);
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Secrets", "string", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
            Column::age(),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let n = o["secrets"].as_array().map(|a| a.len()).unwrap_or(0);
        vec![json!(crate::meta::name(o)), json!(n), json!(crate::api::table::age(o))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_names_only_and_counted() {
        let mut o = json!({"metadata": {"name": "sa"}, "secrets": [{"name": "a", "namespace": "x", "uid": "u"}, {"name": "b"}]});
        ServiceAccounts.prepare_for_create(&mut o);
        assert_eq!(o["secrets"], json!([{"name": "a"}, {"name": "b"}]));
        assert_eq!(ServiceAccounts.row(&o)[1], json!(2));
    }
}
