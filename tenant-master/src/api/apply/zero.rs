//! The empty object a create is compared against.
//!
//! kube-apiserver records a create as an Update from a freshly allocated Go object, whose JSON
//! form is not `{}`: value (non-pointer) struct fields are there as `{}`, and `json:"x"` fields
//! without omitempty as zero values or null. That decides which containers of a created object
//! count as added (and so carry `".": {}` in managedFields) and which were already there. The
//! schema cannot tell a Go value struct from a pointer, so the value structs of the served kinds
//! are listed here, from the Go types of k8s.io/api.

use serde_json::{json, Map, Value};

use crate::schema::{Ty, SCHEMA};

/// Value struct fields below the top level (every kind's metadata, spec and status are values).
const VALUE_STRUCTS: &[(&str, &[&str])] = &[
    ("apps.v1.DeploymentSpec", &["template", "strategy"]),
    ("apps.v1.ReplicaSetSpec", &["template"]),
    ("apps.v1.StatefulSetSpec", &["template", "updateStrategy"]),
    ("apps.v1.DaemonSetSpec", &["template", "updateStrategy"]),
    ("batch.v1.JobSpec", &["template"]),
    ("batch.v1.CronJobSpec", &["jobTemplate"]),
    ("batch.v1.JobTemplateSpec", &["metadata", "spec"]),
    ("core.v1.PodTemplateSpec", &["metadata", "spec"]),
    ("core.v1.PersistentVolumeClaimSpec", &["resources"]),
    ("core.v1.ServiceStatus", &["loadBalancer"]),
    ("core.v1.NodeStatus", &["daemonEndpoints", "nodeInfo"]),
    ("core.v1.NodeDaemonEndpoints", &["kubeletEndpoint"]),
    ("core.v1.Event", &["involvedObject", "source"]),
    ("events.v1.Event", &["regarding", "deprecatedSource"]),
    ("networking.v1.IngressStatus", &["loadBalancer"]),
    ("networking.v1.NetworkPolicySpec", &["podSelector"]),
    ("autoscaling.v1.HorizontalPodAutoscalerSpec", &["scaleTargetRef"]),
    ("autoscaling.v2.HorizontalPodAutoscalerSpec", &["scaleTargetRef"]),
    ("rbac.v1.RoleBinding", &["roleRef"]),
    ("rbac.v1.ClusterRoleBinding", &["roleRef"]),
];

/// Lists and maps without omitempty: null in the empty object.
const NULL_FIELDS: &[(&str, &[&str])] = &[
    ("core.v1.PodSpec", &["containers"]),
    ("rbac.v1.Role", &["rules"]),
    ("rbac.v1.ClusterRole", &["rules"]),
    ("discovery.v1.EndpointSlice", &["endpoints"]),
];

fn listed(table: &[(&str, &[&str])], msg: &str, field: &str) -> bool {
    table.iter().any(|(m, fs)| *m == msg && fs.contains(&field))
}

fn zero_message(m: usize, top: bool) -> Value {
    let msg = &SCHEMA.messages[m];
    let mut out = Map::new();
    if msg.name == "meta.v1.ObjectMeta" {
        out.insert("creationTimestamp".into(), Value::Null);
    }
    for f in SCHEMA.json_fields(m) {
        let Ty::Message(fm) = f.ty else { continue };
        let value_struct = (top && matches!(f.name.as_str(), "metadata" | "spec" | "status")) || listed(VALUE_STRUCTS, &msg.name, &f.name);
        if value_struct && SCHEMA.messages[fm].special == crate::schema::Special::None {
            out.insert(f.name.clone(), zero_message(fm, false));
        } else if listed(NULL_FIELDS, &msg.name, &f.name) {
            out.insert(f.name.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

/// The JSON form of a new, empty object of a kind (`{}` plus apiVersion and kind for kinds
/// without a schema).
pub fn zero_object(api_version: &str, kind: &str) -> Value {
    let mut v = match SCHEMA.kind(api_version, kind) {
        Some(m) => zero_message(m, true),
        None => json!({"metadata": {"creationTimestamp": null}}),
    };
    v["apiVersion"] = json!(api_version);
    v["kind"] = json!(kind);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_has_a_schema() {
        for s in crate::registry::Registry::builtin().all() {
            let inf = s.info();
            assert!(SCHEMA.kind(&inf.api_version(), &inf.kind).is_some(), "{} {}", inf.api_version(), inf.kind);
            assert!(zero_object(&inf.api_version(), &inf.kind)["metadata"].is_object());
        }
    }

    #[test]
    fn deployment_zero_value() {
        let z = zero_object("apps/v1", "Deployment");
        assert_eq!(z["metadata"], json!({"creationTimestamp": null}));
        assert_eq!(z["spec"]["strategy"], json!({}));
        assert_eq!(z["spec"]["template"]["metadata"], json!({"creationTimestamp": null}));
        assert_eq!(z["spec"]["template"]["spec"], json!({"containers": null}));
        assert!(z["spec"].get("selector").is_none());
        assert_eq!(z["status"], json!({}));
        assert_eq!(zero_object("v1", "ConfigMap"), json!({"metadata": {"creationTimestamp": null}, "apiVersion": "v1", "kind": "ConfigMap"}));
    }
}
