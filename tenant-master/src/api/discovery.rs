//! Legacy discovery (`/api`, `/apis`, `/apis/<g>/<v>`) and aggregated discovery
//! (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList), generated from the registry.

use http::HeaderMap;
use serde_json::{json, Value};

use crate::registry::{Registry, ResourceInfo};

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// The kind, group, version and verbs of a subresource (discovery and OpenAPI both list them).
pub fn subresource_kind<'a>(inf: &'a ResourceInfo, sub: &str) -> (&'a str, &'a str, &'a str, &'static [&'static str]) {
    match sub {
        "scale" => ("Scale", "autoscaling", "v1", &["get", "patch", "update"]),
        "binding" => ("Binding", "", "v1", &["create"]),
        "eviction" => ("Eviction", "policy", "v1", &["create"]),
        "finalize" => (&inf.kind, &inf.group, &inf.version, &["update"]),
        "token" => ("TokenRequest", "authentication.k8s.io", "v1", &["create"]),
        _ => (&inf.kind, &inf.group, &inf.version, &["get", "patch", "update"]),
    }
}

/// Whether the client asked for aggregated discovery, and in which version.
pub fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    for entry in accept.split(',') {
        let e = entry.replace(' ', "");
        if e.contains("as=APIGroupDiscoveryList") && e.contains("g=apidiscovery.k8s.io") {
            if e.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if e.contains("v=v2") {
                return Some("v2");
            }
        }
        if e.starts_with("application/json") && !e.contains("as=") {
            return None;
        }
    }
    None
}

pub fn aggregated_content_type(v: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList")
}

/// The hash of the version objects are stored in (several versions of a custom resource
/// share theirs).
fn storage_hash(inf: &ResourceInfo, storage_version: &str) -> String {
    use base64::Engine;
    let digest = format!("{}/{}/{}", inf.group, storage_version, inf.kind);
    let mut h: u64 = 0xcbf29ce484222325;
    for b in digest.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())[..11].to_string()
}

/// `/api` (legacy).
pub fn api_versions(server_addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_addr}],
    })
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
}

/// `/apis` (legacy).
pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg.groups().iter().filter(|(g, _)| !g.is_empty()).map(|(g, vs)| group_json(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    reg.groups().iter().find(|(g, _)| g == group && !g.is_empty()).map(|(g, vs)| {
        let mut v = group_json(g, vs);
        v["kind"] = json!("APIGroup");
        v["apiVersion"] = json!("v1");
        v
    })
}

/// `/api/v1`, `/apis/<group>/<version>`.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for s in reg.all() {
        let inf = s.info();
        if inf.group != group || inf.version != version {
            continue;
        }
        let mut r = json!({
            "name": inf.plural,
            "singularName": inf.singular,
            "namespaced": inf.namespaced,
            "kind": inf.kind,
            "verbs": VERBS,
            "storageVersionHash": storage_hash(inf, &s.storage_version()),
        });
        let (short_names, categories) = (s.short_names(), s.categories());
        if !short_names.is_empty() {
            r["shortNames"] = json!(short_names);
        }
        if !categories.is_empty() {
            r["categories"] = json!(categories);
        }
        resources.push(r);
        for sub in inf.subresources {
            let (kind, g, v, verbs) = subresource_kind(inf, sub);
            let mut sr = json!({"name": format!("{}/{sub}", inf.plural), "singularName": "", "namespaced": inf.namespaced, "kind": kind, "verbs": verbs});
            if g != inf.group || v != inf.version {
                sr["group"] = json!(g);
                sr["version"] = json!(v);
            }
            resources.push(sr);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

/// Aggregated discovery for `/api` (legacy = true) or `/apis`.
pub fn aggregated_list(reg: &Registry, legacy: bool, version: &str) -> Value {
    let mut items = Vec::new();
    for (g, vs) in reg.groups() {
        if g.is_empty() != legacy {
            continue;
        }
        let mut versions = Vec::new();
        for v in &vs {
            let mut resources = Vec::new();
            for s in reg.all() {
                let inf = s.info();
                if inf.group != g || inf.version != *v {
                    continue;
                }
                let subs: Vec<Value> = inf
                    .subresources
                    .iter()
                    .map(|sub| {
                        let (kind, sg, sv, verbs) = subresource_kind(inf, sub);
                        json!({"subresource": sub, "responseKind": {"group": sg, "version": sv, "kind": kind}, "verbs": verbs})
                    })
                    .collect();
                let mut r = json!({
                    "resource": inf.plural,
                    "responseKind": {"group": inf.group, "version": inf.version, "kind": inf.kind},
                    "scope": if inf.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": inf.singular,
                    "verbs": VERBS,
                });
                let (short_names, categories) = (s.short_names(), s.categories());
                if !short_names.is_empty() {
                    r["shortNames"] = json!(short_names);
                }
                if !categories.is_empty() {
                    r["categories"] = json!(categories);
                }
                if !subs.is_empty() {
                    r["subresources"] = json!(subs);
                }
                resources.push(r);
            }
            versions.push(json!({"version": v, "resources": resources, "freshness": "Current"}));
        }
        let mut md = json!({"creationTimestamp": null});
        if !g.is_empty() {
            md["name"] = json!(g);
        }
        items.push(json!({"metadata": md, "versions": versions}));
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}
