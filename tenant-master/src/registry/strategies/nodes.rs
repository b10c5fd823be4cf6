//! core/v1 nodes (cluster-scoped): STATUS/ROLES/VERSION columns as kubectl prints them.

use serde_json::{json, Value};

use super::{common, info};
use crate::registry::{Column, ResourceInfo, Strategy};

pub struct Nodes;

static INFO: ResourceInfo = info("", "v1", "Node", "nodes", "node", false).with_short_names(&["no"]).with_subresources(&["status"]);

fn address(o: &Value, typ: &str) -> String {
    o["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["type"] == typ)
        .and_then(|a| a["address"].as_str())
        .unwrap_or("<none>")
        .to_string()
}

impl Strategy for Nodes {
    fn info(&self) -> &ResourceInfo {
        &INFO
    }
    fn columns(&self) -> Vec<Column> {
        vec![
            Column::name(),
            Column::new("Status", "string", 0, "The status of the node"),
            Column::new("Roles", "string", 0, "The roles of the node"),
            Column::age(),
            Column::new("Version", "string", 0, "Kubelet Version reported by the node."),
            Column::new("Internal-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
            Column::new("External-IP", "string", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
            Column::new("OS-Image", "string", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            Column::new("Kernel-Version", "string", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            Column::new("Container-Runtime", "string", 1, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ]
    }
    fn row(&self, o: &Value) -> Vec<Value> {
        let ready = o["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
        let mut status = match ready {
            Some(c) if c["status"] == "True" => "Ready".to_string(),
            Some(_) => "NotReady".to_string(),
            None => "Unknown".to_string(),
        };
        if o["spec"]["unschedulable"] == json!(true) {
            status.push_str(",SchedulingDisabled");
        }
        let mut roles: Vec<String> = o["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
                    Some(r.to_string())
                } else if k == "kubernetes.io/role" {
                    v.as_str().map(String::from)
                } else {
                    None
                }
            })
            .filter(|r| !r.is_empty())
            .collect();
        roles.sort();
        let info = &o["status"]["nodeInfo"];
        vec![
            json!(crate::meta::name(o)),
            json!(status),
            json!(if roles.is_empty() { "<none>".to_string() } else { roles.join(",") }),
            json!(crate::api::table::age(o)),
            json!(info["kubeletVersion"].as_str().unwrap_or("")),
            json!(address(o, "InternalIP")),
            json!(address(o, "ExternalIP")),
            json!(common::string_or_none(&info["osImage"]).replace("<none>", "<unknown>")),
            json!(common::string_or_none(&info["kernelVersion"]).replace("<none>", "<unknown>")),
            json!(common::string_or_none(&info["containerRuntimeVersion"]).replace("<none>", "<unknown>")),
        ]
    }
    fn field_names(&self) -> &'static [&'static str] {
        &["spec.unschedulable"]
    }
    fn fields(&self, o: &Value) -> Vec<(&'static str, String)> {
        vec![("spec.unschedulable", (o["spec"]["unschedulable"] == json!(true)).to_string())]
    }
}
