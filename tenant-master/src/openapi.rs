//! OpenAPI v3 documents (`/openapi/v3` and one per group-version), derived from k8s-openapi's
//! schemars schemas: kubectl reads them to learn that the server validates fields itself
//! (`fieldValidation` on PATCH), and `kubectl explain` reads the schemas.
//!
//! The documents depend only on the registry, so they are built once per process, on first use.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use k8s_openapi::Resource;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use crate::api::status::ApiError;
use crate::api::ApiState;
use crate::registry::{Registry, ResourceInfo};

type SchemaFn = fn(&mut SchemaGenerator) -> (String, &'static str, &'static str, &'static str);

macro_rules! types {
    ($($t:ty),* $(,)?) => {
        &[$(|g: &mut SchemaGenerator| {
            let s = g.subschema_for::<$t>();
            let r = s.as_object().and_then(|o| o.get("$ref")).and_then(|r| r.as_str()).unwrap_or("").to_string();
            (r, <$t as Resource>::GROUP, <$t as Resource>::VERSION, <$t as Resource>::KIND)
        }),*]
    };
}

/// Every built-in type served, by Rust type.
const TYPES: &[SchemaFn] = {
    use k8s_openapi::api::*;
    types![
        core::v1::Namespace, core::v1::Pod, core::v1::Service, core::v1::Endpoints, core::v1::ConfigMap,
        core::v1::Secret, core::v1::Event, core::v1::Node, core::v1::ServiceAccount,
        core::v1::PersistentVolumeClaim, core::v1::PersistentVolume, core::v1::ResourceQuota,
        core::v1::LimitRange, core::v1::ReplicationController, core::v1::Binding,
        apps::v1::Deployment, apps::v1::ReplicaSet, apps::v1::StatefulSet, apps::v1::DaemonSet,
        apps::v1::ControllerRevision, batch::v1::Job, batch::v1::CronJob, coordination::v1::Lease,
        discovery::v1::EndpointSlice, events::v1::Event, networking::v1::NetworkPolicy,
        networking::v1::Ingress, networking::v1::IngressClass, rbac::v1::Role, rbac::v1::RoleBinding,
        rbac::v1::ClusterRole, rbac::v1::ClusterRoleBinding, storage::v1::StorageClass,
        policy::v1::PodDisruptionBudget, policy::v1::Eviction, scheduling::v1::PriorityClass,
        autoscaling::v2::HorizontalPodAutoscaler, autoscaling::v1::Scale,
    ]
};

fn query(name: &str, desc: &str, typ: &str) -> Value {
    json!({"name": name, "in": "query", "description": desc, "schema": {"type": typ, "uniqueItems": true}})
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut v = vec![
        query("dryRun", "When present, indicates that modifications should not be persisted. Valid values: All.", "string"),
        query("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.", "string"),
        query("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values: Ignore, Warn, Strict.", "string"),
    ];
    if patch {
        v.push(query("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.", "boolean"));
    }
    v
}

fn content(schema_ref: &str) -> Value {
    let s = json!({"schema": {"$ref": schema_ref}});
    json!({"application/json": s, "application/yaml": s})
}

fn op(action: &str, id: &str, gvk: &Value, schema_ref: &str, params: Vec<Value>, body: bool, patch: bool) -> Value {
    let mut o = json!({
        "operationId": id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": content(schema_ref)}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    });
    if body {
        let c = if patch {
            let s = json!({"schema": {"type": "object"}});
            json!({"application/json-patch+json": s, "application/merge-patch+json": s, "application/strategic-merge-patch+json": s, "application/apply-patch+yaml": s})
        } else {
            content(schema_ref)
        };
        o["requestBody"] = json!({"content": c, "required": true});
    }
    o
}

fn camel(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn paths_for(inf: &ResourceInfo, schema_ref: &str, paths: &mut Map<String, Value>) {
    let gvk = json!({"group": inf.group, "version": inf.version, "kind": inf.kind});
    let base = if inf.group.is_empty() { format!("/api/{}", inf.version) } else { format!("/apis/{}/{}", inf.group, inf.version) };
    let coll = if inf.namespaced { format!("{base}/namespaces/{{namespace}}/{}", inf.plural) } else { format!("{base}/{}", inf.plural) };
    let ns_param = json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}});
    let name_param = json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}});
    let tag = format!("{}{}", camel(&inf.group.replace(".k8s.io", "").replace('.', "")), camel(inf.version));
    let scope = if inf.namespaced { "Namespaced" } else { "" };
    let list_params = vec![
        query("labelSelector", "A selector to restrict the list of returned objects by their labels.", "string"),
        query("fieldSelector", "A selector to restrict the list of returned objects by their fields.", "string"),
        query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
        query("continue", "The continue option should be set when retrieving more results from the server.", "string"),
        query("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from.", "string"),
        query("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", "boolean"),
    ];
    let mut c = json!({
        "get": op("list", &format!("list{tag}{scope}{}", inf.kind), &gvk, schema_ref, list_params, false, false),
        "post": op("post", &format!("create{tag}{scope}{}", inf.kind), &gvk, schema_ref, write_params(false), true, false),
        "delete": op("deletecollection", &format!("deletecollection{tag}{scope}{}", inf.kind), &gvk, schema_ref, vec![], false, false),
    });
    if inf.namespaced {
        c["parameters"] = json!([ns_param]);
    }
    paths.insert(coll.clone(), c);
    let mut item = json!({
        "get": op("get", &format!("read{tag}{scope}{}", inf.kind), &gvk, schema_ref, vec![], false, false),
        "put": op("put", &format!("replace{tag}{scope}{}", inf.kind), &gvk, schema_ref, write_params(false), true, false),
        "patch": op("patch", &format!("patch{tag}{scope}{}", inf.kind), &gvk, schema_ref, write_params(true), true, true),
        "delete": op("delete", &format!("delete{tag}{scope}{}", inf.kind), &gvk, schema_ref, vec![
            query("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
            query("propagationPolicy", "Whether and how garbage collection will be performed.", "string"),
            query("dryRun", "When present, indicates that modifications should not be persisted.", "string"),
        ], false, false),
    });
    item["parameters"] = if inf.namespaced { json!([name_param, ns_param]) } else { json!([name_param]) };
    paths.insert(format!("{coll}/{{name}}"), item.clone());
    if inf.has_subresource("status") {
        let mut s = item.clone();
        if let Some(o) = s.as_object_mut() {
            o.remove("delete");
        }
        paths.insert(format!("{coll}/{{name}}/status"), s);
    }
}

struct Docs {
    /// "api/v1" or "apis/<group>/<version>" -> document.
    by_gv: BTreeMap<String, Arc<Vec<u8>>>,
    index: Vec<u8>,
}

fn build(reg: &Registry) -> Docs {
    let mut g = SchemaSettings::openapi3().into_generator();
    let refs: Vec<(String, &str, &str, &str)> = TYPES.iter().map(|f| f(&mut g)).collect();
    let schemas = g.take_definitions(true);
    let mut by_gv = BTreeMap::new();
    let mut index = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let mut paths = Map::new();
            for s in reg.all() {
                let inf = s.info();
                if inf.group != group || inf.version != v {
                    continue;
                }
                let r = refs
                    .iter()
                    .find(|(_, g, ver, k)| *g == inf.group && *ver == inf.version && *k == inf.kind)
                    .map(|(r, ..)| r.clone())
                    .unwrap_or_default();
                paths_for(inf, &r, &mut paths);
            }
            let mut comps = schemas.clone();
            // Stamp each top-level type with its group-version-kind, as upstream does.
            for (r, g, ver, k) in &refs {
                if let Some(name) = r.rsplit('/').next() {
                    if let Some(Value::Object(o)) = comps.get_mut(name) {
                        o.insert("x-kubernetes-group-version-kind".into(), json!([{"group": g, "version": ver, "kind": k}]));
                    }
                }
            }
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": crate::api::KUBE_GIT_VERSION},
                "paths": paths,
                "components": {"schemas": comps},
            });
            let key = if group.is_empty() { format!("api/{v}") } else { format!("apis/{group}/{v}") };
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = {
                let mut h: u64 = 0xcbf29ce484222325;
                for b in &bytes {
                    h ^= *b as u64;
                    h = h.wrapping_mul(0x100000001b3);
                }
                format!("{h:016X}")
            };
            index.insert(key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}));
            by_gv.insert(key, Arc::new(bytes));
        }
    }
    let index = serde_json::to_vec(&json!({"paths": index})).unwrap_or_default();
    Docs { by_gv, index }
}

static DOCS: OnceLock<Docs> = OnceLock::new();

/// Serves `/openapi/v3` and `/openapi/v3/<gv>`; `/openapi/v2` is not served (clients use v3).
pub fn serve(st: &ApiState, path: &str, _headers: &HeaderMap) -> Response {
    let Some(rest) = path.strip_prefix("/openapi/v3") else {
        return ApiError::not_found_path().into_response();
    };
    let docs = DOCS.get_or_init(|| build(&st.store.registry));
    let rest = rest.trim_matches('/');
    let body = if rest.is_empty() { Some(Arc::new(docs.index.clone())) } else { docs.by_gv.get(rest).cloned() };
    match body {
        Some(b) => (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], (*b).clone()).into_response(),
        None => ApiError::not_found_path().into_response(),
    }
}
