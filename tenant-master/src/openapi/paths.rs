//! The paths of every served resource and their operations, named as kube-apiserver's
//! installer names them (`listAppsV1NamespacedDeployment`, `x-kubernetes-action: list`, ...),
//! plus the discovery paths (`/api/`, `/apis/`, `/apis/<group>/`, `/apis/<g>/<v>/`,
//! `/version/`).

use std::collections::BTreeMap;

use super::definitions::{self, Names};
use super::model::{Body, Gvk, Method, Operation, Param, PathItem, Response};
use super::params;
use crate::api::discovery::subresource_kind;
use crate::registry::{Registry, ResourceInfo, Strategy};

/// Media types of request bodies for create and replace.
const CONSUMES_ANY: &[&str] = &["*/*"];
/// Media types of PATCH bodies.
const CONSUMES_PATCH: &[&str] =
    &["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"];
/// Media types of PATCH bodies of kinds without strategic merge patch (custom resources).
const CONSUMES_PATCH_NO_SMP: &[&str] = &["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];
/// What the server answers objects with.
const PRODUCES: &[&str] = &["application/json"];
/// What the server answers lists and watches with.
const PRODUCES_STREAM: &[&str] = &["application/json", "application/json;stream=watch"];

/// `Apps`, `Core`, `RbacAuthorization`, `FlowcontrolApiserver`: a group as operation ids
/// spell it.
pub fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group.trim_end_matches(".k8s.io").split('.').map(upper_first).collect()
}

pub(super) fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// `apps_v1`, `core_v1`, `rbacAuthorization_v1`: the tag of a group version's operations.
pub fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", lower_first(&group_camel(group)))
}

/// `api/v1` or `apis/<group>/<version>`: the `/openapi/v3` document of a group version.
pub fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn op(method: Method, id: String, description: String, tag: &str, action: &'static str, gvk: &Gvk) -> Operation {
    Operation {
        method,
        id,
        description,
        tag: tag.to_string(),
        action: Some(action),
        gvk: Some(gvk.clone()),
        params: Vec::new(),
        body: None,
        responses: Vec::new(),
        consumes: CONSUMES_ANY,
        produces: PRODUCES,
    }
}

fn responses(def: &str, codes: &[u16]) -> Vec<Response> {
    let mut r: Vec<Response> = codes.iter().map(|c| Response { code: *c, definition: Some(def.to_string()) }).collect();
    r.push(Response { code: 401, definition: None });
    r
}

fn body(def: &str, required: bool, patch: bool) -> Option<Body> {
    Some(Body { definition: def.to_string(), required, patch })
}

/// Adds the paths of one resource (and its subresources) to `out`.
pub(super) fn resource_paths(s: &dyn Strategy, names: &Names, out: &mut BTreeMap<String, PathItem>) {
    let inf: &ResourceInfo = s.info();
    let Some(def) = names.kind(&inf.group, &inf.version, &inf.kind) else {
        tracing::warn!(kind = %inf.kind, group = %inf.group, "no OpenAPI definition for served kind; its paths are left out");
        return;
    };
    let list_def = format!("{def}List");
    let gvk = Gvk::new(&inf.group, &inf.version, &inf.kind);
    let tag = tag(&inf.group, &inf.version);
    let gv = format!("{}{}", group_camel(&inf.group), upper_first(&inf.version));
    let base = if inf.group.is_empty() { format!("/api/{}", inf.version) } else { format!("/apis/{}/{}", inf.group, inf.version) };
    let (ns, ns_word) = if inf.namespaced { ("/namespaces/{namespace}", "Namespaced") } else { ("", "") };
    let kind: &str = &inf.kind;
    let ns_params = |extra: Vec<Param>| -> Vec<Param> {
        let mut p = extra;
        if inf.namespaced {
            p.push(params::namespace());
        }
        p.push(params::pretty());
        p
    };

    // The collection: list, create, delete collection.
    let mut list = op(Method::Get, format!("list{gv}{ns_word}{kind}"), format!("list or watch objects of kind {kind}"), &tag, "list", &gvk);
    list.params = params::list();
    list.responses = responses(&list_def, &[200]);
    list.produces = PRODUCES_STREAM;
    let mut create = op(Method::Post, format!("create{gv}{ns_word}{kind}"), format!("create a {kind}"), &tag, "post", &gvk);
    create.params = params::write();
    create.body = body(&def, true, false);
    create.responses = responses(&def, &[200, 201, 202]);
    let mut delcol = op(Method::Delete, format!("delete{gv}Collection{ns_word}{kind}"), format!("delete collection of {kind}"), &tag, "deletecollection", &gvk);
    delcol.params = params::delete_collection();
    delcol.body = body(definitions::DELETE_OPTIONS, false, false);
    delcol.responses = responses(definitions::STATUS, &[200]);
    let coll = format!("{base}{ns}/{}", inf.plural);
    out.insert(coll.clone(), PathItem { path: coll.clone(), params: ns_params(vec![]), operations: vec![list, create, delcol] });

    // One object: read, replace, delete, patch.
    let mut read = op(Method::Get, format!("read{gv}{ns_word}{kind}"), format!("read the specified {kind}"), &tag, "get", &gvk);
    read.responses = responses(&def, &[200]);
    let mut replace = op(Method::Put, format!("replace{gv}{ns_word}{kind}"), format!("replace the specified {kind}"), &tag, "put", &gvk);
    replace.params = params::write();
    replace.body = body(&def, true, false);
    replace.responses = responses(&def, &[200, 201]);
    let mut delete = op(Method::Delete, format!("delete{gv}{ns_word}{kind}"), format!("delete a {kind}"), &tag, "delete", &gvk);
    delete.params = params::delete();
    delete.body = body(definitions::DELETE_OPTIONS, false, false);
    let deleted = if s.return_deleted_object() { def.as_str() } else { definitions::STATUS };
    delete.responses = responses(deleted, &[200, 202]);
    let mut patch = op(Method::Patch, format!("patch{gv}{ns_word}{kind}"), format!("partially update the specified {kind}"), &tag, "patch", &gvk);
    patch.params = params::patch();
    patch.body = body(definitions::PATCH, true, true);
    patch.consumes = if s.strategic_merge() { CONSUMES_PATCH } else { CONSUMES_PATCH_NO_SMP };
    patch.responses = responses(&def, &[200, 201]);
    let item = format!("{coll}/{{name}}");
    out.insert(item.clone(), PathItem { path: item.clone(), params: ns_params(vec![params::name(kind)]), operations: vec![read, replace, delete, patch] });

    // Subresources.
    for sub in inf.subresources {
        let (sk, sg, sv, _) = subresource_kind(inf, sub);
        let sub_gvk = Gvk::new(sg, sv, sk);
        let Some(sub_def) = names.kind(sg, sv, sk) else {
            tracing::warn!(kind = sk, group = sg, "no OpenAPI definition for subresource kind; its path is left out");
            continue;
        };
        let camel = upper_first(sub);
        let path = format!("{item}/{sub}");
        let ops = match *sub {
            "binding" | "eviction" | "token" => {
                let mut c = op(Method::Post, format!("create{gv}{ns_word}{kind}{camel}"), format!("create {sub} of a {kind}"), &tag, "post", &sub_gvk);
                c.params = params::write();
                c.body = body(&sub_def, true, false);
                c.responses = responses(&sub_def, &[200, 201, 202]);
                vec![c]
            }
            "finalize" => {
                let mut p = op(Method::Put, format!("replace{gv}{ns_word}{kind}{camel}"), format!("replace {sub} of the specified {kind}"), &tag, "put", &sub_gvk);
                p.params = params::write();
                p.body = body(&sub_def, true, false);
                p.responses = responses(&sub_def, &[200, 201]);
                vec![p]
            }
            _ => {
                let mut r = op(Method::Get, format!("read{gv}{ns_word}{kind}{camel}"), format!("read {sub} of the specified {kind}"), &tag, "get", &sub_gvk);
                r.responses = responses(&sub_def, &[200]);
                let mut p = op(Method::Put, format!("replace{gv}{ns_word}{kind}{camel}"), format!("replace {sub} of the specified {kind}"), &tag, "put", &sub_gvk);
                p.params = params::write();
                p.body = body(&sub_def, true, false);
                p.responses = responses(&sub_def, &[200, 201]);
                let mut pa = op(Method::Patch, format!("patch{gv}{ns_word}{kind}{camel}"), format!("partially update {sub} of the specified {kind}"), &tag, "patch", &sub_gvk);
                pa.params = params::patch();
                pa.body = body(definitions::PATCH, true, true);
                pa.consumes = if s.strategic_merge() { CONSUMES_PATCH } else { CONSUMES_PATCH_NO_SMP };
                pa.responses = responses(&sub_def, &[200, 201]);
                vec![r, p, pa]
            }
        };
        out.insert(path.clone(), PathItem { path, params: ns_params(vec![params::name(kind)]), operations: ops });
    }

    // Lists across namespaces and the legacy /watch/ paths: the list options are path-level.
    let list_level = |extra: Vec<Param>| -> Vec<Param> {
        let mut p = params::list();
        p.extend(extra);
        p.push(params::pretty());
        params::sorted(p)
    };
    let watch_op = |id: String, description: String, action: &'static str| {
        let mut w = op(Method::Get, id, description, &tag, action, &gvk);
        w.responses = responses(definitions::WATCH_EVENT, &[200]);
        w.produces = PRODUCES_STREAM;
        w
    };
    let watch_list_desc = format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead.");
    let watch_item_desc = format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.");
    let ns_extra = || if inf.namespaced { vec![params::namespace()] } else { vec![] };
    if inf.namespaced {
        let mut all = op(Method::Get, format!("list{gv}{kind}ForAllNamespaces"), format!("list or watch objects of kind {kind}"), &tag, "list", &gvk);
        all.responses = responses(&list_def, &[200]);
        all.produces = PRODUCES_STREAM;
        let p = format!("{base}/{}", inf.plural);
        out.insert(p.clone(), PathItem { path: p, params: list_level(vec![]), operations: vec![all] });
        let w = watch_op(format!("watch{gv}{kind}ListForAllNamespaces"), watch_list_desc.clone(), "watchlist");
        let p = format!("{base}/watch/{}", inf.plural);
        out.insert(p.clone(), PathItem { path: p, params: list_level(vec![]), operations: vec![w] });
    }
    let w = watch_op(format!("watch{gv}{ns_word}{kind}List"), watch_list_desc, "watchlist");
    let p = format!("{base}/watch{ns}/{}", inf.plural);
    out.insert(p.clone(), PathItem { path: p, params: list_level(ns_extra()), operations: vec![w] });
    let w = watch_op(format!("watch{gv}{ns_word}{kind}"), watch_item_desc, "watch");
    let p = format!("{base}/watch{ns}/{}/{{name}}", inf.plural);
    let mut extra = ns_extra();
    extra.push(params::name(kind));
    out.insert(p.clone(), PathItem { path: p, params: list_level(extra), operations: vec![w] });
}

/// A discovery GET (no action, no kind).
pub(super) fn discovery(path: &str, id: String, description: &str, tag: String, def: &str) -> PathItem {
    let get = Operation {
        method: Method::Get,
        id,
        description: description.into(),
        tag,
        action: None,
        gvk: None,
        params: Vec::new(),
        body: None,
        responses: responses(def, &[200]),
        consumes: &["application/json"],
        produces: PRODUCES,
    };
    PathItem { path: path.into(), params: Vec::new(), operations: vec![get] }
}

/// Every path, grouped by `/openapi/v3` document key.
pub fn build(reg: &Registry, names: &Names) -> BTreeMap<String, Vec<PathItem>> {
    let mut groups: BTreeMap<String, BTreeMap<String, PathItem>> = BTreeMap::new();
    for (group, versions) in reg.groups() {
        for v in &versions {
            let key = gv_key(&group, v);
            let paths = groups.entry(key).or_default();
            let base = if group.is_empty() { format!("/api/{v}/") } else { format!("/apis/{group}/{v}/") };
            let id = format!("get{}{}APIResources", group_camel(&group), upper_first(v));
            paths.insert(base.clone(), discovery(&base, id, "get available resources", tag(&group, v), definitions::API_RESOURCE_LIST));
            for s in reg.all().iter().filter(|s| s.info().group == group && s.info().version == *v) {
                resource_paths(s.as_ref(), names, paths);
            }
        }
        if !group.is_empty() {
            let p = format!("/apis/{group}/");
            let id = format!("get{}APIGroup", group_camel(&group));
            let item = discovery(&p, id, "get information of a group", lower_first(&group_camel(&group)), definitions::API_GROUP);
            groups.entry(format!("apis/{group}")).or_default().insert(p, item);
        }
    }
    let core = discovery("/api/", "getCoreAPIVersions".into(), "get available API versions", "core".into(), definitions::API_VERSIONS);
    groups.entry("api".into()).or_default().insert("/api/".into(), core);
    let apis = discovery("/apis/", "getAPIVersions".into(), "get available API versions", "apis".into(), definitions::API_GROUP_LIST);
    groups.entry("apis".into()).or_default().insert("/apis/".into(), apis);
    let version = discovery("/version/", "getCodeVersion".into(), "get the version information for this server", "version".into(), definitions::VERSION_INFO);
    groups.entry("version".into()).or_default().insert("/version/".into(), version);
    groups.into_iter().map(|(k, v)| (k, v.into_values().collect())).collect()
}
