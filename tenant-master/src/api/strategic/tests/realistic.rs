//! Realistic patches on a Deployment, as `kubectl patch`, `kubectl set image` and
//! `kubectl apply` send them.

use serde_json::{json, Value};

use super::names;
use crate::api::strategic::strategic_merge_patch;

fn web() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25",
                         "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]}
                    ],
                    "volumes": [{"name": "conf", "configMap": {"name": "web-conf", "defaultMode": 420}}]
                }
            }
        }
    })
}

fn patch(p: Value) -> Value {
    strategic_merge_patch(&web(), &p, "apps/v1", "Deployment").unwrap()
}

fn pod_spec(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]
}

#[test]
fn strategic_deployment_container_image_by_name() {
    let out = patch(json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1.37"}]}}}}));
    let mut want = web();
    want["spec"]["template"]["spec"]["containers"][1]["image"] = json!("busybox:1.37");
    assert_eq!(out, want);
}

#[test]
fn strategic_deployment_set_image_as_kubectl_sends_it() {
    let out = patch(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
        "containers": [{"image": "nginx:1.27", "name": "nginx"}]}}}}));
    let mut want = web();
    want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    assert_eq!(out, want);
    // The order alone reorders.
    let out = patch(json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}}}}));
    assert_eq!(names(&pod_spec(&out)["containers"]), ["sidecar", "nginx"]);
}

#[test]
fn strategic_deployment_add_env_var() {
    // As kubectl computes it: the new variable goes last.
    let out = patch(json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
        "containers": [{"name": "nginx", "$setElementOrder/env": [{"name": "A"}, {"name": "B"}, {"name": "C"}],
                        "env": [{"name": "C", "value": "3"}]}]}}}}));
    assert_eq!(pod_spec(&out)["containers"][0]["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]));
    // Without an order upstream puts it first; the others keep their values.
    let out = patch(json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "C", "value": "3"}]}]}}}}));
    assert_eq!(names(&pod_spec(&out)["containers"][0]["env"]), ["C", "A", "B"]);
    assert_eq!(names(&pod_spec(&out)["containers"]), ["nginx", "sidecar"]);
}

#[test]
fn strategic_deployment_delete_container_port() {
    let out = patch(json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "ports": [{"containerPort": 443, "$patch": "delete"}]}]}}}}));
    assert_eq!(pod_spec(&out)["containers"][0]["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    assert_eq!(pod_spec(&out)["containers"][0]["env"], pod_spec(&web())["containers"][0]["env"]);
}

#[test]
fn strategic_deployment_strategy_rolling_update_to_recreate() {
    // kubectl apply sends $retainKeys for the retainKeys strategy field.
    let out = patch(json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}));
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    // A plain merge without the directive would keep rollingUpdate.
    let out = patch(json!({"spec": {"strategy": {"type": "Recreate"}}}));
    assert_eq!(out["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
}

#[test]
fn strategic_deployment_volume_source_type_change() {
    let out = patch(json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "conf"}],
        "volumes": [{"$retainKeys": ["name", "secret"], "name": "conf", "secret": {"secretName": "web-secret"}}]}}}}));
    assert_eq!(pod_spec(&out)["volumes"], json!([{"name": "conf", "secret": {"secretName": "web-secret"}}]));
}

#[test]
fn strategic_deployment_three_way_apply_removals() {
    // What kubectl apply sends when the manifest drops label `tier`, env var B and port 443.
    let out = patch(json!({
        "metadata": {"labels": {"tier": null}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}],
                "$setElementOrder/ports": [{"containerPort": 80}],
                "env": [{"$patch": "delete", "name": "B"}],
                "name": "nginx",
                "ports": [{"$patch": "delete", "containerPort": 443}]
            }]
        }}}
    }));
    let mut want = web();
    want["metadata"]["labels"] = json!({"app": "web"});
    let c = &mut want["spec"]["template"]["spec"]["containers"][0];
    c["env"] = json!([{"name": "A", "value": "1"}]);
    c["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    assert_eq!(out, want);
}
