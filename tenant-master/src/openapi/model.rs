//! What the OpenAPI documents say, before it is written down as Swagger 2.0 (`/openapi/v2`) or
//! OpenAPI 3.0 (`/openapi/v3/...`): the schema definitions and the paths with their operations.
//! Both renderers read one [`Spec`], so the two documents always describe the same API.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Where a non-body parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

impl In {
    /// The `in` of the parameter object.
    pub fn as_str(self) -> &'static str {
        match self {
            In::Path => "path",
            In::Query => "query",
        }
    }
}

/// One path or query parameter (request bodies are [`Body`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    /// JSON type of the value: "string", "integer" or "boolean".
    pub ty: &'static str,
    pub description: String,
    pub required: bool,
}

/// The group, version and kind an operation or a definition is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    /// A group, version and kind (`""` is the core group).
    pub fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk { group: group.into(), version: version.into(), kind: kind.into() }
    }

    /// The `x-kubernetes-group-version-kind` form (keys sorted, as upstream writes them).
    pub fn to_json(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

/// A request body: an object of a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// Definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub definition: String,
    pub required: bool,
    /// A PATCH body (sent as one of the patch media types).
    pub patch: bool,
}

/// One response of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub code: u16,
    /// The definition returned, if any (401 has none).
    pub definition: Option<String>,
}

impl Response {
    /// The status text upstream describes the response with.
    pub fn description(&self) -> &'static str {
        match self.code {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            401 => "Unauthorized",
            _ => "",
        }
    }
}

/// HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
    Patch,
}

impl Method {
    /// The key of the operation in a path item.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

/// One operation on a path, as kube-apiserver's installer describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub method: Method,
    /// e.g. `patchAppsV1NamespacedDeployment`.
    pub id: String,
    /// e.g. `partially update the specified Deployment`.
    pub description: String,
    /// e.g. `apps_v1`.
    pub tag: String,
    /// `x-kubernetes-action`: get, list, put, patch, post, delete, deletecollection, watch,
    /// watchlist (none for discovery operations).
    pub action: Option<&'static str>,
    pub gvk: Option<Gvk>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    /// Media types of the request body (Swagger 2.0 `consumes`).
    pub consumes: &'static [&'static str],
    /// Media types of responses (Swagger 2.0 `produces`).
    pub produces: &'static [&'static str],
}

/// One path and what can be done there.
#[derive(Debug, Clone, PartialEq)]
pub struct PathItem {
    /// e.g. `/apis/apps/v1/namespaces/{namespace}/deployments/{name}`.
    pub path: String,
    /// Parameters common to all operations of the path.
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

/// The whole API: definitions (Swagger 2.0 form) and paths grouped by the `/openapi/v3`
/// document they belong to.
#[derive(Debug, Default)]
pub struct Spec {
    /// Definition name -> schema, with `#/definitions/<name>` references.
    pub definitions: BTreeMap<String, Value>,
    /// Definitions whose OpenAPI 3.0 form is not a plain translation of the 2.0 one
    /// (Quantity and IntOrString are `oneOf` in 3.0 and `type: string` in 2.0).
    pub v3_overrides: BTreeMap<String, Value>,
    /// `/openapi/v3` document key (`api/v1`, `apis/apps/v1`, `api`, `apis`, `apis/apps`,
    /// `version`) -> its paths, in order.
    pub groups: BTreeMap<String, Vec<PathItem>>,
}

impl Spec {
    /// Every path of every document, in document order.
    pub fn all_paths(&self) -> impl Iterator<Item = &PathItem> {
        self.groups.values().flatten()
    }
}

/// The definition name a `$ref` points at (`#/definitions/X` or `#/components/schemas/X`).
pub fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// Every definition `v` refers to, directly.
pub fn refs_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.push(ref_name(s).to_string());
                    }
                } else {
                    refs_in(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs_in(x, out)),
        _ => {}
    }
}

/// The definitions reachable from `roots`, themselves included, sorted.
pub fn closure(defs: &BTreeMap<String, Value>, roots: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(d) = defs.get(&n) {
            refs_in(d, &mut todo);
        }
    }
    seen.into_iter().filter(|n| defs.contains_key(n)).collect()
}

/// The definitions the operations of `paths` use as bodies or responses.
pub fn roots_of<'a>(paths: impl IntoIterator<Item = &'a PathItem>) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        for op in &p.operations {
            if let Some(b) = &op.body {
                out.push(b.definition.clone());
            }
            out.extend(op.responses.iter().filter_map(|r| r.definition.clone()));
        }
    }
    out
}
