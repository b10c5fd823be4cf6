//! Interplay with client-side apply's `kubectl.kubernetes.io/last-applied-configuration`
//! annotation, for the manager `kubectl` only (upstream lastAppliedManager and
//! lastAppliedUpdater): conflicts on fields that the annotation shows kubectl applied before are
//! allowed (so `kubectl apply --server-side` takes over objects created by `kubectl apply`), and
//! the annotation, when present, is rewritten to the newly applied configuration.

use serde_json::{json, Value};

use super::fieldset::Set;
use super::merge::{compare, to_field_set};
use super::typed::{validate, TypeRef};

/// The annotation client-side apply keeps.
pub const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn annotation(obj: &Value) -> Option<&str> {
    obj["metadata"]["annotations"][ANNOTATION].as_str().filter(|s| !s.is_empty())
}

/// The fields the annotation claims that still hold the live values: conflicts on them are
/// allowed. None when there is no usable annotation.
pub fn allowed_conflicts(live: &Value, api_version: &str, tr: TypeRef) -> Option<Set> {
    let last: Value = serde_json::from_str(annotation(live)?).ok()?;
    if last["apiVersion"].as_str() != Some(api_version) {
        return None;
    }
    let mut errs = Vec::new();
    validate(&last, tr, &mut Vec::new(), &mut errs);
    if !errs.is_empty() {
        return None;
    }
    let set = to_field_set(&last, tr);
    let c = compare(&last, live, tr);
    Some(set.difference(&c.modified).difference(&c.added).difference(&c.removed))
}

/// Rewrites the annotation of `result` to `config` (without the annotation itself), if
/// `result` has one: compact JSON with sorted keys and a final newline, as kubectl writes it.
pub fn sync(result: &mut Value, config: &Value) {
    if annotation(result).is_none() {
        return;
    }
    let mut c = config.clone();
    if let Some(a) = c["metadata"]["annotations"].as_object_mut() {
        a.remove(ANNOTATION);
    }
    let mut s = String::new();
    super::fieldset::go_json(&c, &mut s);
    s.push('\n');
    result["metadata"]["annotations"][ANNOTATION] = json!(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::apply::fieldset::PathElement;
    use crate::api::apply::typed::for_kind;

    #[test]
    fn annotation_allows_what_kubectl_applied() {
        let last = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 2, "paused": false}});
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "annotations": {ANNOTATION: last.to_string()}}, "spec": {"replicas": 2, "paused": true}});
        let tr = for_kind("apps/v1", "Deployment");
        let allowed = allowed_conflicts(&live, "apps/v1", tr).unwrap();
        let f = |s: &str| PathElement::Field(s.into());
        assert!(allowed.has(&[f("spec"), f("replicas")]));
        assert!(!allowed.has(&[f("spec"), f("paused")]), "changed since: not kubectl's any more");
        assert!(allowed_conflicts(&live, "apps/v2", tr).is_none());

        let mut result = live.clone();
        let cfg = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d", "annotations": {ANNOTATION: "x", "a": "<b>"}}});
        sync(&mut result, &cfg);
        assert_eq!(
            result["metadata"]["annotations"][ANNOTATION],
            "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"annotations\":{\"a\":\"\\u003cb\\u003e\"},\"name\":\"d\"}}\n"
        );
        let mut plain = json!({"metadata": {}});
        sync(&mut plain, &cfg);
        assert_eq!(plain, json!({"metadata": {}}));
    }
}
