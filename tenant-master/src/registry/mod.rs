//! The generic registry: one generic store ([`store::Store`]) plus a small [`Strategy`] per
//! resource, as kube-apiserver's `genericregistry.Store` and its `rest.RESTCreateStrategy` family.
//!
//! Adding a built-in resource is one file under `strategies/` and one line in
//! [`strategies::all`].

pub mod alloc;
pub mod quantity;
pub mod scale;
pub mod store;
pub mod strategies;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::api::status::{ApiResult, FieldError};
use crate::validation::NameRule;

/// What the API says about a resource: names, scope, subresources.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served: "status", "scale", "binding", "eviction", "finalize", "token".
    pub subresources: &'static [&'static str],
    pub name_rule: NameRule,
}

impl ResourceInfo {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `<group>/<plural>` with `core` for the legacy group: the cache id and key segment.
    pub fn id(&self) -> String {
        format!("{}/{}", if self.group.is_empty() { "core" } else { self.group }, self.plural)
    }

    /// The etcd key of one object, relative to the tenant prefix.
    pub fn key(&self, ns: &str, name: &str) -> String {
        if self.namespaced {
            format!("/registry/{}/{ns}/{name}", self.id())
        } else {
            format!("/registry/{}/{name}", self.id())
        }
    }

    /// The key inside the resource cache.
    pub fn cache_key(&self, ns: &str, name: &str) -> String {
        if self.namespaced { format!("{ns}/{name}") } else { name.to_string() }
    }

    pub fn has_subresource(&self, s: &str) -> bool {
        self.subresources.contains(&s)
    }

    /// `group` or `resource.group` as used in error messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }
}

/// One column of server-side Table output (`metav1.TableColumnDefinition`).
#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub typ: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: shown with `-o wide`.
    pub priority: i32,
}

impl Column {
    pub const fn new(name: &'static str, typ: &'static str, priority: i32, description: &'static str) -> Column {
        Column { name, typ, format: "", description, priority }
    }
    pub const fn name() -> Column {
        Column {
            name: "Name",
            typ: "string",
            format: "name",
            description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.",
            priority: 0,
        }
    }
    pub const fn age() -> Column {
        Column::new("Age", "string", 0, "CreationTimestamp is a timestamp representing the server time when this object was created.")
    }
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.typ, "format": self.format, "description": self.description, "priority": self.priority})
    }
}

/// Per-resource behaviour plugged into the generic store.
pub trait Strategy: Send + Sync + 'static {
    fn info(&self) -> &ResourceInfo;

    /// Fills defaults, as upstream's defaulting functions (run on create and update).
    fn default(&self, _obj: &mut Value) {}

    /// Adjusts a new object before validation (e.g. resets status).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// Adjusts an update before validation; status is already handled generically.
    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    /// Validates the object (metadata is validated generically).
    fn validate(&self, _obj: &Value, _errs: &mut Vec<FieldError>) {}

    /// Checks only a create makes (upstream's `Validate` minus what `ValidateUpdate` shares with
    /// it, e.g. a pod's ephemeral containers may not be set on create); runs after
    /// [`Strategy::validate`].
    fn validate_create(&self, _obj: &Value, _errs: &mut Vec<FieldError>) {}

    /// Validates an update against the old object (immutable fields).
    fn validate_update(&self, _new: &Value, _old: &Value, _errs: &mut Vec<FieldError>) {}

    /// Checks and side effects that need the store (allocations, references); runs on create.
    fn admit_create(&self, _store: &store::Store, _obj: &mut Value) -> ApiResult<()> {
        Ok(())
    }

    /// As [`Strategy::admit_create`], on update.
    fn admit_update(&self, _store: &store::Store, _new: &mut Value, _old: &Value) -> ApiResult<()> {
        Ok(())
    }

    /// Checks run before a delete (admission on DELETE).
    fn admit_delete(&self, _store: &store::Store, _obj: &Value) -> ApiResult<()> {
        Ok(())
    }

    /// Table columns after Name (Age is added where the strategy puts it).
    fn columns(&self) -> Vec<Column> {
        vec![Column::name(), Column::age()]
    }

    /// Table cells matching [`Strategy::columns`].
    fn row(&self, obj: &Value) -> Vec<Value> {
        vec![json!(crate::meta::name(obj)), json!(crate::api::table::age(obj))]
    }

    /// Selectable fields beyond metadata.name and metadata.namespace.
    fn field_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Values of [`Strategy::field_names`] for one object.
    fn fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Whether metadata.generation tracks spec changes.
    fn tracks_generation(&self) -> bool {
        false
    }

    /// The grace period for deleting `obj` (0: delete now), given the one requested.
    fn grace_period(&self, _obj: &Value, _requested: Option<i64>) -> i64 {
        0
    }

    /// Whether DELETE answers with the deleted object instead of a Status.
    fn return_deleted_object(&self) -> bool {
        false
    }

    /// Whether PUT of a missing object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Where replicas and the selector live, for resources with a scale subresource.
    fn scale(&self) -> Option<scale::ScalePaths> {
        None
    }
}

/// Every served resource, looked up by path or by kind.
pub struct Registry {
    all: Vec<Arc<dyn Strategy>>,
    by_path: HashMap<(String, String, String), usize>,
    by_kind: HashMap<(String, String), usize>,
}

impl Registry {
    pub fn new(all: Vec<Arc<dyn Strategy>>) -> Registry {
        let mut by_path = HashMap::new();
        let mut by_kind = HashMap::new();
        for (i, s) in all.iter().enumerate() {
            let inf = s.info();
            by_path.insert((inf.group.to_string(), inf.version.to_string(), inf.plural.to_string()), i);
            by_kind.entry((inf.group.to_string(), inf.kind.to_string())).or_insert(i);
        }
        Registry { all, by_path, by_kind }
    }

    pub fn builtin() -> Registry {
        Registry::new(strategies::all())
    }

    pub fn all(&self) -> &[Arc<dyn Strategy>] {
        &self.all
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<dyn Strategy>> {
        self.by_path.get(&(group.to_string(), version.to_string(), plural.to_string())).map(|i| self.all[*i].clone())
    }

    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<dyn Strategy>> {
        self.by_kind.get(&(group.to_string(), kind.to_string())).map(|i| self.all[*i].clone())
    }

    /// Groups in the order discovery lists them, each with its versions.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for s in &self.all {
            let inf = s.info();
            match out.iter_mut().find(|(g, _)| g == inf.group) {
                Some((_, vs)) => {
                    if !vs.iter().any(|v| v == inf.version) {
                        vs.push(inf.version.to_string())
                    }
                }
                None => out.push((inf.group.to_string(), vec![inf.version.to_string()])),
            }
        }
        out
    }
}
