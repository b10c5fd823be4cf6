//! The schema definitions: generated from k8s-openapi's schemars schemas (descriptions, types,
//! required fields), then given what kube-apiserver's spec adds and k8s-openapi leaves out:
//!
//! * the merge markers of [`crate::schema`] as `x-kubernetes-patch-strategy`,
//!   `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`
//!   and `x-kubernetes-map-type` (field level, and type level for `+structType=atomic`);
//! * `x-kubernetes-group-version-kind` on every kind, its list and the meta kinds;
//! * the `<Kind>List` definitions (k8s-openapi has one generic `List<T>` without a schema),
//!   described as upstream describes them;
//! * `required` as upstream has it: k8s-openapi also requires some `+optional` fields (every
//!   kind's `metadata`, fields with defaults such as `LocalObjectReference.name`);
//! * Quantity and IntOrString in their upstream forms (`type: string` in Swagger 2.0, `oneOf`
//!   in OpenAPI 3.0) instead of k8s-openapi's `x-kubernetes-int-or-string`.
//!
//! Definitions are in Swagger 2.0 form (`$ref: #/definitions/<name>` with sibling
//! `description`); [`super::v3`] rewrites them for OpenAPI 3.0.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::Resource;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use super::model::{ref_name, Gvk};
use crate::api::discovery::subresource_kind;
use crate::registry::Registry;
use crate::schema::{Card, Markers, Special, Ty, SCHEMA};

/// Definition names of the meta types operations use as bodies and responses.
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
pub const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
pub const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
pub const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";

/// A k8s-openapi kind: its group, version and kind, and how to generate its schema.
struct KindType {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    schema: fn(&mut SchemaGenerator) -> schemars::Schema,
}

macro_rules! kinds {
    ($($t:ty),* $(,)?) => {
        &[$(KindType {
            group: <$t as Resource>::GROUP,
            version: <$t as Resource>::VERSION,
            kind: <$t as Resource>::KIND,
            schema: |g| g.subschema_for::<$t>(),
        }),*]
    };
}

/// The k8s-openapi type of every kind the registry can serve, subresource kinds included.
const KINDS: &[KindType] = {
    use k8s_openapi::api::*;
    kinds![
        core::v1::Namespace, core::v1::Pod, core::v1::Service, core::v1::Endpoints, core::v1::ConfigMap,
        core::v1::Secret, core::v1::Event, core::v1::Node, core::v1::ServiceAccount,
        core::v1::PersistentVolumeClaim, core::v1::PersistentVolume, core::v1::ResourceQuota,
        core::v1::LimitRange, core::v1::ReplicationController, core::v1::Binding, core::v1::PodTemplate,
        apps::v1::Deployment, apps::v1::ReplicaSet, apps::v1::StatefulSet, apps::v1::DaemonSet,
        apps::v1::ControllerRevision, batch::v1::Job, batch::v1::CronJob, coordination::v1::Lease,
        discovery::v1::EndpointSlice, events::v1::Event, networking::v1::NetworkPolicy,
        networking::v1::Ingress, networking::v1::IngressClass, rbac::v1::Role, rbac::v1::RoleBinding,
        rbac::v1::ClusterRole, rbac::v1::ClusterRoleBinding, storage::v1::StorageClass,
        policy::v1::PodDisruptionBudget, policy::v1::Eviction, scheduling::v1::PriorityClass,
        autoscaling::v2::HorizontalPodAutoscaler, autoscaling::v1::HorizontalPodAutoscaler, autoscaling::v1::Scale,
        authentication::v1::TokenRequest,
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ]
};

/// What upstream's spec says and k8s-openapi does not, from the Go comments in k8s-pb
/// (`hack/gen-openapi.py` writes it).
#[derive(serde::Deserialize, Default)]
struct Upstream {
    /// Message (as [`SCHEMA`] names it) -> JSON names of its `+optional` fields.
    optional: HashMap<String, Vec<String>>,
    /// `<Kind>List` message -> [description of the list, description of `items`].
    lists: HashMap<String, [String; 2]>,
}

fn upstream() -> Upstream {
    serde_json::from_str(include_str!("upstream.json")).unwrap_or_default()
}

/// Whether `json` of message `msg` (looking through embedded messages) is `+optional`.
fn is_optional(up: &Upstream, msg: usize, json: &str) -> bool {
    let m = &SCHEMA.messages[msg];
    for f in &m.fields {
        match (f.card, f.ty) {
            (Card::Inline, Ty::Message(e)) if is_optional(up, e, json) => return true,
            _ if f.name == json => return up.optional.get(&m.name).is_some_and(|o| o.iter().any(|x| x == json)),
            _ => {}
        }
    }
    false
}

/// Where each served kind's definition is, by group, version and kind.
#[derive(Debug, Default)]
pub struct Names(HashMap<(String, String, String), String>);

impl Names {
    /// Records where a kind's definition is.
    pub fn insert(&mut self, group: &str, version: &str, kind: &str, definition: String) {
        self.0.insert((group.to_string(), version.to_string(), kind.to_string()), definition);
    }

    /// The definition name of a kind, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<String> {
        self.0.get(&(group.to_string(), version.to_string(), kind.to_string())).cloned()
    }
}

/// The definitions of everything `reg` serves, and where each kind's definition is.
pub struct Definitions {
    pub names: Names,
    pub definitions: BTreeMap<String, Value>,
    /// OpenAPI 3.0 forms that differ from the Swagger 2.0 ones (see [`super::model::Spec`]).
    pub v3_overrides: BTreeMap<String, Value>,
}

fn generator() -> SchemaGenerator {
    SchemaSettings::default()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator()
}

/// The definition name a `{"$ref": ...}` schema points at.
fn name_of(s: &schemars::Schema) -> Option<String> {
    s.as_object().and_then(|o| o.get("$ref")).and_then(|r| r.as_str()).map(|r| ref_name(r).to_string())
}

/// The kinds the registry serves (resources and subresources), each once, in registry order.
pub fn served_kinds(reg: &Registry) -> Vec<Gvk> {
    let mut out: Vec<Gvk> = Vec::new();
    for s in reg.all() {
        let inf = s.info();
        let mut add = |g: Gvk| {
            if !out.contains(&g) {
                out.push(g)
            }
        };
        add(Gvk::new(&inf.group, &inf.version, &inf.kind));
        for sub in inf.subresources {
            let (k, g, v, _) = subresource_kind(inf, sub);
            add(Gvk::new(g, v, k));
        }
    }
    out
}

/// `core.v1.PodSpec` style name of [`crate::schema`] for a definition name, lowercased
/// (prost and Go spell acronyms differently: `IscsiVolumeSource` / `ISCSIVolumeSource`).
fn message_key(def: &str) -> String {
    let short = ["io.k8s.api.", "io.k8s.apimachinery.pkg.apis.", "io.k8s.apimachinery.pkg."]
        .iter()
        .find_map(|p| def.strip_prefix(p))
        .or_else(|| def.split_once(".pkg.apis.").map(|(_, s)| s))
        .unwrap_or(def);
    short.to_ascii_lowercase()
}

/// Adds the markers of a field or type as OpenAPI extensions.
fn add_markers(o: &mut Map<String, Value>, m: &Markers) {
    if let Some(s) = &m.patch_strategy {
        o.insert("x-kubernetes-patch-strategy".into(), json!(s));
    }
    if let Some(k) = &m.merge_key {
        o.insert("x-kubernetes-patch-merge-key".into(), json!(k));
    }
    if let Some(t) = &m.list_type {
        o.insert("x-kubernetes-list-type".into(), json!(t));
    }
    if !m.list_map_keys.is_empty() {
        o.insert("x-kubernetes-list-map-keys".into(), json!(m.list_map_keys));
    }
    if let Some(t) = m.map_type.as_ref().or(m.struct_type.as_ref()) {
        o.insert("x-kubernetes-map-type".into(), json!(t));
    }
}

/// Puts the merge markers of [`SCHEMA`] on every definition and its properties, drops
/// `+optional` fields from `required`, and returns the
/// definitions whose JSON form is special (Quantity, IntOrString) by name.
fn apply_schema(defs: &mut BTreeMap<String, Value>, up: &Upstream) -> Vec<(String, Special)> {
    let by_key: HashMap<String, usize> = SCHEMA.messages.iter().enumerate().map(|(i, m)| (m.name.to_ascii_lowercase(), i)).collect();
    let mut specials = Vec::new();
    for (name, def) in defs.iter_mut() {
        let Some(&msg) = by_key.get(&message_key(name)) else { continue };
        let message = &SCHEMA.messages[msg];
        if message.special != Special::None {
            specials.push((name.clone(), message.special));
        }
        let Some(o) = def.as_object_mut() else { continue };
        if let Some(Value::Array(req)) = o.get_mut("required") {
            req.retain(|r| !r.as_str().is_some_and(|r| is_optional(up, msg, r)));
            if req.is_empty() {
                o.remove("required");
            }
        }
        if let Some(Value::Object(props)) = o.get_mut("properties") {
            for (field, prop) in props.iter_mut() {
                if let (Some(f), Some(p)) = (SCHEMA.field(msg, field), prop.as_object_mut()) {
                    add_markers(p, &f.markers);
                }
            }
        }
        add_markers(o, &message.markers);
    }
    specials
}

/// Quantity and IntOrString: upstream's Swagger 2.0 and OpenAPI 3.0 forms.
fn special_forms(def: &Value, special: Special) -> Option<(Value, Value)> {
    let description = def.get("description").cloned().unwrap_or(Value::Null);
    match special {
        Special::Quantity => Some((
            json!({"description": description, "type": "string"}),
            json!({"description": description, "oneOf": [{"type": "string"}, {"type": "number"}]}),
        )),
        Special::IntOrString => Some((
            json!({"description": description, "type": "string", "format": "int-or-string"}),
            json!({"description": description, "format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]}),
        )),
        _ => None,
    }
}

/// The `<Kind>List` definition of a kind (k8s-openapi has no schema for its generic list).
pub(super) fn list_definition(kind_def: &str, kind: &Value, gvk: &Gvk, plural: &str, docs: Option<&[String; 2]>) -> Value {
    let prop = |p: &str| kind.pointer(&format!("/properties/{p}")).cloned().unwrap_or_else(|| json!({"type": "string"}));
    let (description, items) = match docs {
        Some([d, i]) => (d.clone(), i.clone()),
        None => (format!("{}List is a list of {} objects.", gvk.kind, gvk.kind), format!("List of {plural}.")),
    };
    json!({
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": prop("apiVersion"),
            "items": {
                "description": items,
                "type": "array",
                "items": {"$ref": format!("#/definitions/{kind_def}")},
            },
            "kind": prop("kind"),
            "metadata": {
                "$ref": format!("#/definitions/{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [Gvk::new(&gvk.group, &gvk.version, &format!("{}List", gvk.kind)).to_json()],
    })
}

fn set_gvk(defs: &mut BTreeMap<String, Value>, name: &str, gvks: &[Gvk]) {
    if let Some(Value::Object(o)) = defs.get_mut(name) {
        let mut all: Vec<Value> = o.get("x-kubernetes-group-version-kind").and_then(|v| v.as_array()).cloned().unwrap_or_default();
        for g in gvks {
            let j = g.to_json();
            if !all.contains(&j) {
                all.push(j);
            }
        }
        o.insert("x-kubernetes-group-version-kind".into(), Value::Array(all));
    }
}

/// Builds the definitions of every kind `reg` serves, their lists, and the meta types the
/// operations use.
pub fn build(reg: &Registry) -> Definitions {
    let mut g = generator();
    let mut names = Names::default();
    let served = served_kinds(reg);
    for gvk in &served {
        let Some(t) = KINDS.iter().find(|t| t.group == gvk.group && t.version == gvk.version && t.kind == gvk.kind) else {
            tracing::warn!(group = %gvk.group, version = %gvk.version, kind = %gvk.kind, "served kind has no k8s-openapi type");
            continue;
        };
        if let Some(n) = name_of(&(t.schema)(&mut g)) {
            names.0.insert((gvk.group.clone(), gvk.version.clone(), gvk.kind.clone()), n);
        }
    }
    {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        g.subschema_for::<meta::DeleteOptions>();
        g.subschema_for::<meta::Status>();
        g.subschema_for::<meta::WatchEvent<()>>();
        g.subschema_for::<meta::Patch>();
        g.subschema_for::<meta::ListMeta>();
        g.subschema_for::<meta::APIResourceList>();
        g.subschema_for::<meta::APIGroup>();
        g.subschema_for::<meta::APIGroupList>();
        g.subschema_for::<meta::APIVersions>();
        g.subschema_for::<k8s_openapi::apimachinery::pkg::version::Info>();
    }
    let mut defs: BTreeMap<String, Value> = g.take_definitions(true).into_iter().collect();

    let up = upstream();
    let mut v3_overrides = BTreeMap::new();
    for (name, special) in apply_schema(&mut defs, &up) {
        if let Some((v2, v3)) = defs.get(&name).and_then(|d| special_forms(d, special)) {
            defs.insert(name.clone(), v2);
            v3_overrides.insert(name, v3);
        }
    }

    // Kinds: group-version-kind, and their lists.
    for gvk in &served {
        if let Some(name) = names.kind(&gvk.group, &gvk.version, &gvk.kind) {
            set_gvk(&mut defs, &name, std::slice::from_ref(gvk));
        }
    }
    let lists: HashMap<String, &[String; 2]> = up.lists.iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    for s in reg.all() {
        let inf = s.info();
        let Some(name) = names.kind(&inf.group, &inf.version, &inf.kind) else { continue };
        let docs = lists.get(&format!("{}list", message_key(&name))).copied();
        let list = list_definition(&name, &defs[&name], &Gvk::new(&inf.group, &inf.version, &inf.kind), &inf.plural, docs);
        defs.insert(format!("{name}List"), list);
    }

    // Meta kinds: DeleteOptions and WatchEvent are registered in every group version.
    let core = Gvk::new("", "v1", "");
    let mut gvs: Vec<(String, String)> = Vec::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            if !group.is_empty() {
                gvs.push((group.clone(), v));
            }
        }
    }
    gvs.sort();
    for (def, kind) in [(DELETE_OPTIONS, "DeleteOptions"), (WATCH_EVENT, "WatchEvent")] {
        let mut all = vec![Gvk { kind: kind.into(), ..core.clone() }];
        all.extend(gvs.iter().map(|(g, v)| Gvk::new(g, v, kind)));
        set_gvk(&mut defs, def, &all);
    }
    for (def, kind) in [(STATUS, "Status"), (API_RESOURCE_LIST, "APIResourceList"), (API_GROUP, "APIGroup"), (API_GROUP_LIST, "APIGroupList"), (API_VERSIONS, "APIVersions")] {
        set_gvk(&mut defs, def, &[Gvk { kind: kind.into(), ..core.clone() }]);
    }
    Definitions { names, definitions: defs, v3_overrides }
}
