//! The simulator's writes to the API server, each a plain Kubernetes API call (the kubelet's
//! own: patch pods/status and nodes/status, delete pods with a UID precondition, renew the node
//! Lease). Responses are not decoded; every call is counted and timed in the metrics.

use std::time::{Duration, Instant};

use kube::Client;
use serde_json::Value;

/// What a write came to.
#[derive(Debug)]
pub enum Outcome {
    Ok,
    NotFound,
    Conflict,
    /// Any other failure (retried with back-off).
    Failed(String),
    /// A node's pods, listed when its kubelet comes back.
    Pods(Vec<k8s_openapi::api::core::v1::Pod>),
}

const TIMEOUT: Duration = Duration::from_secs(30);

/// Sends a request with a JSON body, returning the outcome.
async fn send(client: &Client, kind: &'static str, method: http::Method, path: &str, ctype: &str, body: Vec<u8>) -> Outcome {
    let t0 = Instant::now();
    let req = match http::Request::builder().method(method).uri(path).header("content-type", ctype).body(body) {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let out = match tokio::time::timeout(TIMEOUT, client.request_text(req)).await {
        Err(_) => Outcome::Failed("timed out".into()),
        Ok(Ok(_)) => Outcome::Ok,
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Outcome::NotFound,
        Ok(Err(kube::Error::Api(s))) if s.code == 409 => Outcome::Conflict,
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
    };
    let result = match &out {
        Outcome::Ok | Outcome::Pods(_) => "ok",
        Outcome::NotFound => "not_found",
        Outcome::Conflict => "conflict",
        Outcome::Failed(_) => "error",
    };
    metrics::counter!("kplex_nodesim_api_requests_total", "kind" => kind, "result" => result).increment(1);
    metrics::histogram!("kplex_nodesim_api_request_duration_seconds", "kind" => kind).record(t0.elapsed().as_secs_f64());
    out
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

const SMP: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
const JSON: &str = "application/json";

/// PATCH pods/status (strategic merge).
pub async fn pod_status(client: Client, ns: &str, name: &str, patch: Value) -> Outcome {
    send(&client, "pod_status", http::Method::PATCH, &format!("/api/v1/namespaces/{ns}/pods/{name}/status"), SMP, bytes(&patch)).await
}

/// DELETE a pod with grace period 0 and a UID precondition: the kubelet's confirmation that
/// its containers are gone.
pub async fn pod_delete(client: Client, ns: &str, name: &str, uid: &str) -> Outcome {
    let body = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}});
    send(&client, "pod_delete", http::Method::DELETE, &format!("/api/v1/namespaces/{ns}/pods/{name}"), JSON, bytes(&body)).await
}

/// Renews a node's Lease (creating it when missing, as the kubelet does).
pub async fn lease_renew(client: Client, lease: Value) -> Outcome {
    let name = lease["metadata"]["name"].as_str().unwrap_or("").to_string();
    let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}");
    let patch = serde_json::json!({"spec": lease["spec"]});
    match send(&client, "lease", http::Method::PATCH, &path, MERGE, bytes(&patch)).await {
        Outcome::NotFound => {
            let out =
                send(&client, "lease_create", http::Method::POST, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", JSON, bytes(&lease)).await;
            match out {
                // Created by someone else in between: renewed next time.
                Outcome::Conflict => Outcome::Ok,
                o => o,
            }
        }
        o => o,
    }
}

/// PATCH nodes/status (strategic merge).
pub async fn node_status(client: Client, name: &str, patch: Value) -> Outcome {
    send(&client, "node_status", http::Method::PATCH, &format!("/api/v1/nodes/{name}/status"), SMP, bytes(&patch)).await
}

/// POST a Node.
pub async fn node_create(client: &Client, node: &Value) -> Outcome {
    send(client, "node_create", http::Method::POST, "/api/v1/nodes", JSON, bytes(node)).await
}

/// DELETE a Node.
pub async fn node_delete(client: &Client, name: &str) -> Outcome {
    send(client, "node_delete", http::Method::DELETE, &format!("/api/v1/nodes/{name}"), JSON, Vec::new()).await
}

/// JSON merge patch of a Node (labels the kubelet reconciles on restart).
pub async fn node_patch(client: &Client, name: &str, patch: &Value) -> Outcome {
    send(client, "node_patch", http::Method::PATCH, &format!("/api/v1/nodes/{name}"), MERGE, bytes(patch)).await
}

/// Sets the node lifecycle taints: read, replace the not-ready/unreachable taints, write back
/// with the read resourceVersion (retried on conflict), as the node lifecycle controller does.
pub async fn node_taints(client: Client, name: &str, wanted: Vec<Value>) -> Outcome {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    for _ in 0..5 {
        let node = match nodes.get_opt(name).await {
            Ok(Some(n)) => n,
            Ok(None) => return Outcome::NotFound,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let current: Vec<Value> =
            node.spec.as_ref().and_then(|s| s.taints.as_ref()).map(|t| t.iter().filter_map(|t| serde_json::to_value(t).ok()).collect()).unwrap_or_default();
        let Some(taints) = crate::node::merge_taints(&current, &wanted) else { return Outcome::Ok };
        let patch = serde_json::json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": taints}});
        match send(&client, "node_taints", http::Method::PATCH, &format!("/api/v1/nodes/{name}"), MERGE, bytes(&patch)).await {
            Outcome::Conflict => continue,
            o => return o,
        }
    }
    Outcome::Conflict
}

/// Lists the pods bound to a node (the kubelet's view when it comes back).
pub async fn node_pods(client: Client, node: &str) -> Outcome {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client);
    let lp = kube::api::ListParams::default().fields(&format!("spec.nodeName={node}"));
    match pods.list(&lp).await {
        Ok(l) => Outcome::Pods(l.items),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}
