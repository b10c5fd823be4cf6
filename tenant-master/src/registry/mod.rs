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

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::api::status::{ApiResult, FieldError};
use crate::validation::NameRule;

/// A name of the API: static for built-in resources, owned for custom resources (whose names
/// come and go with their CustomResourceDefinitions, so they are never leaked or interned).
pub type Name = Cow<'static, str>;

/// What the API says about a resource: names, scope, subresources.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: Name,
    pub version: Name,
    pub kind: Name,
    pub plural: Name,
    pub singular: Name,
    pub namespaced: bool,
    /// Short names and categories of built-in resources; custom resources give theirs through
    /// [`Strategy::short_names`] and [`Strategy::categories`].
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served: "status", "scale", "binding", "eviction", "finalize", "token".
    pub subresources: &'static [&'static str],
    pub name_rule: NameRule,
}

impl ResourceInfo {
    /// With these short names (`const`, for the built-in strategies' `INFO`).
    pub const fn with_short_names(mut self, v: &'static [&'static str]) -> ResourceInfo {
        self.short_names = v;
        self
    }

    /// With these categories.
    pub const fn with_categories(mut self, v: &'static [&'static str]) -> ResourceInfo {
        self.categories = v;
        self
    }

    /// With these subresources.
    pub const fn with_subresources(mut self, v: &'static [&'static str]) -> ResourceInfo {
        self.subresources = v;
        self
    }

    /// With this rule for object names.
    pub const fn with_name_rule(mut self, v: NameRule) -> ResourceInfo {
        self.name_rule = v;
        self
    }

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
        format!("{}/{}", if self.group.is_empty() { "core" } else { &self.group }, self.plural)
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
    pub name: Name,
    pub typ: Name,
    pub format: Name,
    pub description: Name,
    /// 0: always shown; 1: shown with `-o wide`.
    pub priority: i32,
}

impl Column {
    pub const fn new(name: &'static str, typ: &'static str, priority: i32, description: &'static str) -> Column {
        Column { name: Cow::Borrowed(name), typ: Cow::Borrowed(typ), format: Cow::Borrowed(""), description: Cow::Borrowed(description), priority }
    }
    pub const fn name() -> Column {
        Column {
            name: Cow::Borrowed("Name"),
            typ: Cow::Borrowed("string"),
            format: Cow::Borrowed("name"),
            description: Cow::Borrowed("Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically."),
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

    /// How the scale subresource maps to the object (custom resources give their CRD's paths).
    fn scale_mapping(&self) -> Option<scale::ScaleMapping> {
        self.scale().map(scale::ScaleMapping::Builtin)
    }

    /// Short names listed in discovery (`kubectl get <short name>`).
    fn short_names(&self) -> Vec<String> {
        self.info().short_names.iter().map(|s| s.to_string()).collect()
    }

    /// Categories listed in discovery (`kubectl get all` lists the `all` category).
    fn categories(&self) -> Vec<String> {
        self.info().categories.iter().map(|s| s.to_string()).collect()
    }

    /// Whether `field` (besides metadata.name and metadata.namespace) may be used in a field
    /// selector.
    fn has_field(&self, field: &str) -> bool {
        self.field_names().contains(&field)
    }

    /// Whether strategic merge patches apply: kinds with a Go schema do; custom resources
    /// answer them with 415, as upstream.
    fn strategic_merge(&self) -> bool {
        true
    }

    /// The structured-merge type of the objects, for server-side apply and managedFields.
    fn apply_type(&self) -> crate::api::apply::typed::TypeRef<'_> {
        let inf = self.info();
        crate::api::apply::typed::for_kind(&inf.api_version(), &inf.kind)
    }

    /// Drops the fields the resource's own schema does not know and returns their paths
    /// (`spec.foo`), for resources whose schema is not the built-in one (custom resources).
    /// None: the built-in schema decides (server-side field validation).
    fn prune_unknown(&self, _obj: &mut Value) -> Option<Vec<String>> {
        None
    }

    /// Turns an object as stored into the form this resource serves (custom resources stored in
    /// another version of their CRD); runs on what writes read from storage.
    fn read_stored(&self, _obj: &mut Value) {}

    /// Turns an object as served into the form it is stored in; runs before each write.
    fn write_stored(&self, _obj: &mut Value) {}

    /// What to send for a cached object, when it differs from the cached bytes (custom
    /// resources stored in another version than the one asked for).
    fn served_bytes(&self, _obj: &crate::storage::cache::CachedObject) -> Option<bytes::Bytes> {
        None
    }

    /// The kind of a list of these objects (custom resources may name theirs).
    fn list_kind(&self) -> String {
        format!("{}List", self.info().kind)
    }

    /// The version objects are stored in (discovery's `storageVersionHash`).
    fn storage_version(&self) -> String {
        self.info().version.to_string()
    }

    /// The warning every request to this resource gets (deprecated custom resource versions).
    fn deprecation_warning(&self) -> Option<String> {
        None
    }

    /// The OpenAPI definition of the kind, for kinds the built-in documents do not describe
    /// (custom resources): its name, Swagger 2.0 form and OpenAPI 3.0 form.
    fn openapi_definition(&self) -> Option<(String, Value, Value)> {
        None
    }

    /// Changes made when an object is first marked for deletion, before its finalizers are
    /// looked at (a CustomResourceDefinition gets its cleanup finalizer here, as upstream's
    /// REST delete adds it).
    fn prepare_for_delete(&self, _obj: &mut Value) {}
}

/// One immutable view of the served resources: built-in ones first, then custom resources by
/// group (alphabetically, as their API groups' priorities tie) and version priority.
pub struct Table {
    all: Vec<Arc<dyn Strategy>>,
    by_path: HashMap<(String, String, String), usize>,
    by_kind: HashMap<(String, String), usize>,
}

impl Table {
    fn new(all: Vec<Arc<dyn Strategy>>) -> Table {
        let mut by_path = HashMap::new();
        let mut by_kind = HashMap::new();
        for (i, s) in all.iter().enumerate() {
            let inf = s.info();
            // The first entry wins: built-in resources are never shadowed by custom ones.
            by_path.entry((inf.group.to_string(), inf.version.to_string(), inf.plural.to_string())).or_insert(i);
            by_kind.entry((inf.group.to_string(), inf.kind.to_string())).or_insert(i);
        }
        Table { all, by_path, by_kind }
    }
}

/// A snapshot of the served resources; iterating it yields each strategy.
#[derive(Clone)]
pub struct Snapshot(Arc<Table>);

impl std::ops::Deref for Snapshot {
    type Target = [Arc<dyn Strategy>];
    fn deref(&self) -> &Self::Target {
        &self.0.all
    }
}

impl IntoIterator for Snapshot {
    type Item = Arc<dyn Strategy>;
    type IntoIter = std::vec::IntoIter<Arc<dyn Strategy>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.all.clone().into_iter()
    }
}

impl<'a> IntoIterator for &'a Snapshot {
    type Item = &'a Arc<dyn Strategy>;
    type IntoIter = std::slice::Iter<'a, Arc<dyn Strategy>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.all.iter()
    }
}

/// Orders API versions as upstream's `CompareKubeAwareVersionStrings`: `vN` (GA) before
/// `vNbetaM` before `vNalphaM`, higher numbers first; versions of another form after those,
/// alphabetically.
pub fn version_priority(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        if major == 0 {
            return None;
        }
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some((major, level, num.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => lb.cmp(&la).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Every served resource, looked up by path or by kind. Built-in resources are fixed; custom
/// resources are added, changed and removed while serving ([`Registry::set_custom`]), so
/// lookups hand out `Arc` snapshots and the registry notifies subscribers of each change.
pub struct Registry {
    builtin: Vec<Arc<dyn Strategy>>,
    /// Custom resources by the name of the CustomResourceDefinition that defines them.
    custom: RwLock<std::collections::BTreeMap<String, Vec<Arc<dyn Strategy>>>>,
    current: RwLock<Snapshot>,
    changes: watch::Sender<u64>,
}

impl Registry {
    pub fn new(all: Vec<Arc<dyn Strategy>>) -> Registry {
        Registry {
            current: RwLock::new(Snapshot(Arc::new(Table::new(all.clone())))),
            builtin: all,
            custom: RwLock::new(Default::default()),
            changes: watch::channel(0).0,
        }
    }

    pub fn builtin() -> Registry {
        Registry::new(strategies::all())
    }

    /// The resources served now.
    pub fn all(&self) -> Snapshot {
        self.current.read().clone()
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<dyn Strategy>> {
        let t = self.current.read().0.clone();
        t.by_path.get(&(group.to_string(), version.to_string(), plural.to_string())).map(|i| t.all[*i].clone())
    }

    pub fn by_kind(&self, group: &str, kind: &str) -> Option<Arc<dyn Strategy>> {
        let t = self.current.read().0.clone();
        t.by_kind.get(&(group.to_string(), kind.to_string())).map(|i| t.all[*i].clone())
    }

    /// The built-in resources (fixed for the life of the registry).
    pub fn builtins(&self) -> &[Arc<dyn Strategy>] {
        &self.builtin
    }

    /// Serves `strategies` (one per served version) for the custom resource definition `key`,
    /// replacing what it served before.
    pub fn set_custom(&self, key: &str, strategies: Vec<Arc<dyn Strategy>>) {
        let mut custom = self.custom.write();
        if strategies.is_empty() {
            if custom.remove(key).is_none() {
                return;
            }
        } else {
            custom.insert(key.to_string(), strategies);
        }
        self.rebuild(&custom);
    }

    /// Stops serving what the custom resource definition `key` defined.
    pub fn remove_custom(&self, key: &str) {
        self.set_custom(key, Vec::new());
    }

    fn rebuild(&self, custom: &std::collections::BTreeMap<String, Vec<Arc<dyn Strategy>>>) {
        let mut extra: Vec<Arc<dyn Strategy>> = custom.values().flatten().cloned().collect();
        extra.sort_by(|a, b| {
            let (a, b) = (a.info(), b.info());
            a.group.cmp(&b.group).then_with(|| version_priority(&a.version, &b.version)).then_with(|| a.plural.cmp(&b.plural))
        });
        let mut all = self.builtin.clone();
        all.extend(extra);
        *self.current.write() = Snapshot(Arc::new(Table::new(all)));
        self.changes.send_modify(|g| *g += 1);
    }

    /// Whether any custom resource is served.
    pub fn has_custom(&self) -> bool {
        !self.custom.read().is_empty()
    }

    /// A receiver woken on every change of the served resources.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// How many times the served resources changed.
    pub fn generation(&self) -> u64 {
        *self.changes.borrow()
    }

    /// Groups in the order discovery lists them, each with its versions (preferred first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for s in self.all().iter() {
            let inf = s.info();
            match out.iter_mut().find(|(g, _)| *g == inf.group) {
                Some((_, vs)) => {
                    if !vs.iter().any(|v| *v == inf.version) {
                        vs.push(inf.version.to_string())
                    }
                }
                None => out.push((inf.group.to_string(), vec![inf.version.to_string()])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_upstream() {
        let mut v = vec!["v1alpha1", "foo1", "v2", "v1", "v11alpha2", "v1beta1", "v10", "v12alpha1", "v3beta1", "foo10", "v10beta3", "v1beta2"];
        v.sort_by(|a, b| version_priority(a, b));
        assert_eq!(v, ["v10", "v2", "v1", "v10beta3", "v3beta1", "v1beta2", "v1beta1", "v12alpha1", "v11alpha2", "v1alpha1", "foo1", "foo10"]);
    }
}
