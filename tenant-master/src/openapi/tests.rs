//! Unit tests of the OpenAPI documents: markers and kinds in the definitions, parameters of
//! every operation, references that resolve, and the protobuf form read back.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{json, Value};

use super::*;

/// The spec and both documents of the built-in registry, built once for all tests.
struct Docs {
    spec: Spec,
    v2: Value,
    v3: BTreeMap<String, Value>,
}

static DOCS: LazyLock<Docs> = LazyLock::new(|| {
    let spec = spec(&Registry::builtin());
    let v2 = serde_json::from_slice(&v2_json(&spec)).unwrap();
    let v3 = v3_json(&spec).into_iter().map(|(k, v)| (k, serde_json::from_slice(&v).unwrap())).collect();
    Docs { spec, v2, v3 }
});

fn v2_def(name: &str) -> &'static Value {
    DOCS.v2["definitions"].get(name).unwrap_or_else(|| panic!("no definition {name}"))
}

#[test]
fn pod_spec_containers_have_merge_markers() {
    let c = &v2_def("io.k8s.api.core.v1.PodSpec")["properties"]["containers"];
    assert_eq!(c["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(c["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(c["x-kubernetes-list-type"], "map");
    assert_eq!(c["x-kubernetes-list-map-keys"], json!(["name"]));
    let vols = &v2_def("io.k8s.api.core.v1.PodSpec")["properties"]["volumes"];
    assert_eq!(vols["x-kubernetes-patch-strategy"], "merge,retainKeys");
    assert_eq!(v2_def("io.k8s.api.core.v1.PodSpec")["properties"]["nodeSelector"]["x-kubernetes-map-type"], "atomic");
    assert_eq!(v2_def("io.k8s.api.apps.v1.DeploymentSpec")["properties"]["strategy"]["x-kubernetes-patch-strategy"], "retainKeys");
    let fin = &v2_def("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"]["finalizers"];
    assert_eq!((&fin["x-kubernetes-list-type"], &fin["x-kubernetes-patch-strategy"]), (&json!("set"), &json!("merge")));
    // +structType=atomic is a type-level map type.
    assert_eq!(v2_def("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")["x-kubernetes-map-type"], "atomic");
    assert!(v2_def("io.k8s.api.core.v1.Container").get("x-kubernetes-map-type").is_none());
    // The same markers in the OpenAPI 3.0 document, on the allOf-wrapped reference.
    let apps = &DOCS.v3["apis/apps/v1"]["components"]["schemas"];
    let strategy = &apps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    assert_eq!(strategy["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy");
    assert!(strategy["description"].as_str().unwrap().starts_with("The deployment strategy"));
    assert_eq!(apps["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["x-kubernetes-patch-merge-key"], "name");
}

#[test]
fn every_registry_kind_has_a_definition_with_its_group_version_kind() {
    let reg = Registry::builtin();
    let defs = definitions::build(&reg);
    for s in reg.all() {
        let inf = s.info();
        let name = defs.names.kind(&inf.group, &inf.version, &inf.kind).unwrap_or_else(|| panic!("{} has no definition", inf.kind));
        let gvk = json!({"group": inf.group, "kind": inf.kind, "version": inf.version});
        let list_gvk = json!({"group": inf.group, "kind": format!("{}List", inf.kind), "version": inf.version});
        let (def, list) = (v2_def(&name), v2_def(&format!("{name}List")));
        assert!(def["x-kubernetes-group-version-kind"].as_array().unwrap().contains(&gvk), "{name}");
        assert!(list["x-kubernetes-group-version-kind"].as_array().unwrap().contains(&list_gvk), "{name}List");
        assert_eq!(list["properties"]["items"]["items"]["$ref"], format!("#/definitions/{name}"));
        // kubectl explain finds a kind by this extension in the group version's document.
        let v3 = &DOCS.v3[&paths::gv_key(&inf.group, &inf.version)]["components"]["schemas"];
        assert!(v3[&name]["x-kubernetes-group-version-kind"].as_array().unwrap().contains(&gvk), "v3 {name}");
        for sub in inf.subresources {
            let (k, g, v, _) = crate::api::discovery::subresource_kind(inf, sub);
            assert!(defs.names.kind(g, v, k).is_some(), "{}/{sub}: no definition for {k}", inf.plural);
        }
    }
    // Meta kinds registered in every group version, as upstream lists them.
    let del = v2_def(definitions::DELETE_OPTIONS)["x-kubernetes-group-version-kind"].as_array().unwrap();
    assert_eq!(del[0], json!({"group": "", "kind": "DeleteOptions", "version": "v1"}));
    assert!(del.contains(&json!({"group": "apps", "kind": "DeleteOptions", "version": "v1"})));
    let watch = v2_def(definitions::WATCH_EVENT)["x-kubernetes-group-version-kind"].as_array().unwrap();
    assert!(watch.contains(&json!({"group": "batch", "kind": "WatchEvent", "version": "v1"})));
}

#[test]
fn metadata_is_required_only_where_upstream_requires_it() {
    assert!(v2_def("io.k8s.api.core.v1.Pod").get("required").is_none());
    assert_eq!(v2_def("io.k8s.api.apps.v1.ControllerRevision")["required"], json!(["revision"]));
    assert!(v2_def("io.k8s.api.core.v1.Event")["required"].as_array().unwrap().contains(&json!("metadata")));
    // k8s-openapi requires `name` (it has a default); upstream marks it +optional, also where
    // it is embedded.
    assert!(v2_def("io.k8s.api.core.v1.LocalObjectReference").get("required").is_none());
    assert_eq!(v2_def("io.k8s.api.core.v1.ConfigMapKeySelector")["required"], json!(["key"]));
    assert_eq!(v2_def("io.k8s.api.apps.v1.DeploymentSpec")["required"], json!(["selector", "template"]));
    assert_eq!(v2_def("io.k8s.api.core.v1.Container")["required"], json!(["name"]));
}

#[test]
fn lists_are_described_as_upstream_describes_them() {
    let l = v2_def("io.k8s.api.apps.v1.DeploymentList");
    assert_eq!(l["description"], "DeploymentList is a list of Deployments.");
    assert_eq!(l["properties"]["items"]["description"], "Items is the list of Deployments.");
    assert_eq!(v2_def("io.k8s.api.core.v1.ConfigMapList")["description"], "ConfigMapList is a resource containing a list of ConfigMap objects.");
}

/// The parameters of an operation of the v2 document, shared (`$ref`) ones resolved.
fn v2_params(op: &Value) -> Vec<String> {
    let shared = &DOCS.v2["parameters"];
    op["parameters"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| match p["$ref"].as_str() {
                    Some(r) => shared[model::ref_name(r)]["name"].as_str().unwrap().to_string(),
                    None => p["name"].as_str().unwrap().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_operation_has_the_parameters_upstream_gives_it() {
    let expected: &[(&str, &[&str])] = &[
        ("post", &["body", "dryRun", "fieldManager", "fieldValidation"]),
        ("put", &["body", "dryRun", "fieldManager", "fieldValidation"]),
        ("patch", &["body", "dryRun", "fieldManager", "fieldValidation", "force"]),
        ("delete", &["body", "dryRun", "gracePeriodSeconds", "propagationPolicy"]),
        ("deletecollection", &["dryRun", "gracePeriodSeconds", "propagationPolicy", "labelSelector", "fieldSelector"]),
    ];
    let list_params = ["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"];
    let mut seen = BTreeMap::new();
    for (path, item) in DOCS.v2["paths"].as_object().unwrap() {
        let path_params = v2_params(item);
        for (method, op) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "parameters") {
            let Some(action) = op["x-kubernetes-action"].as_str() else { continue };
            let params = v2_params(op);
            *seen.entry(action.to_string()).or_insert(0) += 1;
            for (a, want) in expected {
                if *a == action {
                    for w in *want {
                        assert!(params.iter().any(|p| p == w), "{method} {path}: no {w} in {params:?}");
                    }
                }
            }
            if action == "list" || action == "watch" || action == "watchlist" {
                let all: Vec<&String> = params.iter().chain(path_params.iter()).collect();
                for w in list_params {
                    assert!(all.iter().any(|p| *p == w), "{method} {path}: no {w}");
                }
            }
            assert!(path_params.iter().any(|p| p == "pretty"), "{path}: no pretty");
            if path.contains("{namespace}") {
                assert!(path_params.iter().any(|p| p == "namespace"), "{path}: no namespace parameter");
            }
        }
    }
    for a in ["get", "list", "post", "put", "patch", "delete", "deletecollection", "watch", "watchlist"] {
        assert!(seen.get(a).copied().unwrap_or(0) > 0, "no {a} operation at all");
    }
    // kubectl's QueryParamVerifierV3: the PATCH of the kind, in its group version's document.
    let doc = &DOCS.v3["apis/apps/v1"]["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(doc["x-kubernetes-group-version-kind"], json!({"group": "apps", "kind": "Deployment", "version": "v1"}));
    let names: Vec<&str> = doc["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dryRun", "fieldManager", "fieldValidation", "force"]);
}

#[test]
fn operations_are_named_as_upstream_names_them() {
    let p = &DOCS.v2["paths"];
    let id = |path: &str, m: &str| p[path][m]["operationId"].as_str().unwrap_or_else(|| panic!("{m} {path}")).to_string();
    assert_eq!(id("/apis/apps/v1/namespaces/{namespace}/deployments", "get"), "listAppsV1NamespacedDeployment");
    assert_eq!(id("/apis/apps/v1/namespaces/{namespace}/deployments", "delete"), "deleteAppsV1CollectionNamespacedDeployment");
    assert_eq!(id("/apis/apps/v1/deployments", "get"), "listAppsV1DeploymentForAllNamespaces");
    assert_eq!(id("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "patch"), "patchAppsV1NamespacedDeploymentScale");
    assert_eq!(p["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"]["x-kubernetes-group-version-kind"]["group"], "autoscaling");
    assert_eq!(id("/api/v1/nodes/{name}/status", "put"), "replaceCoreV1NodeStatus");
    assert_eq!(id("/apis/rbac.authorization.k8s.io/v1/watch/clusterroles/{name}", "get"), "watchRbacAuthorizationV1ClusterRole");
    assert_eq!(id("/api/v1/namespaces/{namespace}/pods/{name}/eviction", "post"), "createCoreV1NamespacedPodEviction");
    assert_eq!(id("/api/v1/namespaces/{name}/finalize", "put"), "replaceCoreV1NamespaceFinalize");
    assert_eq!(id("/apis/apps/v1/", "get"), "getAppsV1APIResources");
    assert_eq!(p["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"]["tags"], json!(["apps_v1"]));
    assert_eq!(p["/apis/networking.k8s.io/v1/ingresses"]["get"]["tags"], json!(["networking_v1"]));
    // Pods answer DELETE with the pod, others with a Status.
    assert_eq!(p["/api/v1/namespaces/{namespace}/pods/{name}"]["delete"]["responses"]["200"]["schema"]["$ref"], "#/definitions/io.k8s.api.core.v1.Pod");
    assert_eq!(p["/api/v1/namespaces/{namespace}/configmaps/{name}"]["delete"]["responses"]["200"]["schema"]["$ref"], "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status");
    let mut ids = std::collections::BTreeSet::new();
    for item in p.as_object().unwrap().values() {
        for (m, op) in item.as_object().unwrap() {
            if m != "parameters" {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_string()), "duplicate {}", op["operationId"]);
            }
        }
    }
}

/// Every `$ref` in `v` (a property called `$ref`, as JSONSchemaProps has, is not one).
fn all_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            if k == "$ref" && x.is_string() {
                out.push(x.as_str().unwrap().to_string());
            } else {
                all_refs(x, out)
            }
        }),
        Value::Array(a) => a.iter().for_each(|x| all_refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves_in_its_document() {
    let mut refs = Vec::new();
    all_refs(&DOCS.v2, &mut refs);
    for r in &refs {
        let ok = match r.strip_prefix("#/definitions/") {
            Some(d) => DOCS.v2["definitions"].get(d).is_some(),
            None => r.strip_prefix("#/parameters/").is_some_and(|p| DOCS.v2["parameters"].get(p).is_some()),
        };
        assert!(ok, "v2: {r} does not resolve");
    }
    for (key, doc) in &DOCS.v3 {
        let mut refs = Vec::new();
        all_refs(doc, &mut refs);
        assert!(!refs.is_empty(), "{key}");
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{key}: {r}"));
            assert!(doc["components"]["schemas"].get(name).is_some(), "{key}: {r} does not resolve");
        }
    }
    // Per group version documents carry only what their paths reach.
    assert!(DOCS.v3["apis/apps/v1"]["components"]["schemas"].get("io.k8s.api.batch.v1.Job").is_none());
    assert!(DOCS.v3["api/v1"]["components"]["schemas"].get("io.k8s.api.apps.v1.Deployment").is_none());
}

#[test]
fn v3_wraps_references_with_siblings_in_all_of() {
    fn check(v: &Value, at: &str) {
        match v {
            Value::Object(o) => {
                if o.get("$ref").is_some_and(|r| r.is_string()) {
                    assert_eq!(o.len(), 1, "{at}: $ref with siblings: {v}");
                }
                o.iter().for_each(|(k, x)| check(x, &format!("{at}/{k}")));
            }
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| check(x, &format!("{at}/{i}"))),
            _ => {}
        }
    }
    for (key, doc) in &DOCS.v3 {
        check(doc, key);
    }
    let meta = &DOCS.v3["api/v1"]["components"]["schemas"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
    assert_eq!(meta["allOf"], json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]));
    // Swagger 2.0 keeps the description beside the reference.
    let meta2 = &v2_def("io.k8s.api.core.v1.Pod")["properties"]["metadata"];
    assert_eq!(meta2["$ref"], "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    assert!(meta2["description"].is_string());
}

#[test]
fn quantity_and_int_or_string_take_upstream_forms() {
    let q = "io.k8s.apimachinery.pkg.api.resource.Quantity";
    let ios = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
    assert_eq!(v2_def(q)["type"], "string");
    assert_eq!((&v2_def(ios)["type"], &v2_def(ios)["format"]), (&json!("string"), &json!("int-or-string")));
    let s = &DOCS.v3["api/v1"]["components"]["schemas"];
    assert_eq!(s[q]["oneOf"], json!([{"type": "string"}, {"type": "number"}]));
    assert_eq!(s[ios]["oneOf"], json!([{"type": "integer"}, {"type": "string"}]));
    assert!(s[q].get("type").is_none() && s[q].get("x-kubernetes-int-or-string").is_none());
}

#[test]
fn v3_index_links_every_document_with_its_hash() {
    let docs: BTreeMap<String, Served> = v3_json(&DOCS.spec).into_iter().map(|(k, v)| (k, Served::new(v))).collect();
    let index: Value = serde_json::from_slice(&v3_index(&docs)).unwrap();
    for key in ["api/v1", "apis/apps/v1", "apis/rbac.authorization.k8s.io/v1", "api", "apis", "apis/apps", "version"] {
        let url = index["paths"][key]["serverRelativeURL"].as_str().unwrap_or_else(|| panic!("{key} not in index"));
        assert_eq!(url, format!("/openapi/v3/{key}?hash={}", hash(&docs[key].bytes())));
        assert_eq!(docs[key].etag.len(), 128);
    }
    // The documents (and so the hashes) are the same every time they are built.
    assert_eq!(v3_json(&spec(&Registry::builtin()))["apis/apps/v1"], docs["apis/apps/v1"].bytes());
}

#[test]
fn protobuf_reads_back_like_the_json() {
    use prost::Message;
    let json = v2_json(&DOCS.spec);
    let doc = proto::pb::Document::decode(v2_proto(&json).as_slice()).unwrap();
    assert_eq!(doc.swagger, "2.0");
    assert_eq!(doc.info.as_ref().unwrap().version, KUBE_GIT_VERSION);
    let defs = &doc.definitions.as_ref().unwrap().additional_properties;
    assert_eq!(defs.len(), DOCS.v2["definitions"].as_object().unwrap().len());
    let dep = defs.iter().find(|d| d.name == "io.k8s.api.apps.v1.Deployment").unwrap().value.as_ref().unwrap();
    let gvk = dep.vendor_extension.iter().find(|e| e.name == "x-kubernetes-group-version-kind").unwrap();
    let parsed: Value = serde_yaml_ng::from_str(&gvk.value.as_ref().unwrap().yaml).unwrap();
    assert_eq!(parsed, json!([{"group": "apps", "kind": "Deployment", "version": "v1"}]));
    let spec = defs.iter().find(|d| d.name == "io.k8s.api.core.v1.PodSpec").unwrap().value.as_ref().unwrap();
    let containers = spec.properties.as_ref().unwrap().additional_properties.iter().find(|p| p.name == "containers").unwrap().value.as_ref().unwrap();
    assert_eq!(containers.r#type.as_ref().unwrap().value, ["array"]);
    assert_eq!(containers.items.as_ref().unwrap().schema[0].r#ref, "#/definitions/io.k8s.api.core.v1.Container");
    let key = containers.vendor_extension.iter().find(|e| e.name == "x-kubernetes-patch-merge-key").unwrap();
    assert_eq!(key.value.as_ref().unwrap().yaml.trim(), "name");
    // What kubectl's QueryParamVerifier does with it: the PATCH of the kind lists fieldValidation.
    let shared: BTreeMap<String, String> = doc
        .parameters
        .as_ref()
        .unwrap()
        .additional_properties
        .iter()
        .filter_map(|p| {
            let Some(proto::pb::parameter::Oneof::NonBodyParameter(nb)) = p.value.as_ref()?.oneof.as_ref() else { return None };
            let Some(proto::pb::non_body_parameter::Oneof::QueryParameterSubSchema(q)) = nb.oneof.as_ref() else { return None };
            Some((format!("#/parameters/{}", p.name), q.name.clone()))
        })
        .collect();
    let paths = &doc.paths.as_ref().unwrap().path;
    let item = paths.iter().find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}").unwrap().value.as_ref().unwrap();
    let patch = item.patch.as_ref().unwrap();
    let names: Vec<String> = patch
        .parameters
        .iter()
        .filter_map(|p| match p.oneof.as_ref()? {
            proto::pb::parameters_item::Oneof::JsonReference(r) => shared.get(&r.r#ref).cloned(),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"fieldValidation".to_string()), "{names:?}");
}

#[test]
fn accept_and_if_none_match() {
    let h = |pairs: &[(&str, &str)]| {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        m
    };
    let offered = ["application/json", V2_PROTO_OLD, V2_PROTO];
    assert_eq!(negotiate(&h(&[]), &offered), Some("application/json"));
    assert_eq!(negotiate(&h(&[("accept", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")]), &offered), Some(V2_PROTO_OLD));
    assert_eq!(negotiate(&h(&[("accept", "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf")]), &offered), Some(V2_PROTO));
    assert_eq!(negotiate(&h(&[("accept", "application/json, */*")]), &offered), Some("application/json"));
    assert_eq!(negotiate(&h(&[("accept", "text/html")]), &offered), None);
    assert!(not_modified(&h(&[("if-none-match", "\"ABC\"")]), "ABC"));
    assert!(not_modified(&h(&[("if-none-match", "\"X\", W/\"ABC\"")]), "ABC"));
    assert!(!not_modified(&h(&[("if-none-match", "\"X\"")]), "ABC"));
    assert!(!not_modified(&h(&[]), "ABC"));
    assert!(accepts_gzip(&h(&[("accept-encoding", "gzip")])));
    assert!(accepts_gzip(&h(&[("accept-encoding", "br, gzip;q=0.5")])));
    assert!(!accepts_gzip(&h(&[("accept-encoding", "gzip;q=0, identity")])));
    assert!(!accepts_gzip(&h(&[])));
}

#[test]
fn served_documents_keep_gzip_and_give_back_the_json() {
    let json = br#"{"openapi":"3.0.0","paths":{}}"#.repeat(100);
    let d = Served::new(json.clone());
    assert_eq!(d.etag, hash(&json));
    assert_eq!(d.bytes(), json);
    assert!(d.gzip.len() < json.len() / 10, "{} of {}", d.gzip.len(), json.len());
    assert_eq!(d.body(true), (d.gzip.clone(), true));
    assert_eq!(d.body(false).0.to_vec(), json);
}
