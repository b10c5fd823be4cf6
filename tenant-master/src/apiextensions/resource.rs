//! Serving custom resources: one [`CustomResource`] strategy per served version of an
//! established CRD, sharing the CRD's [`CrdState`], after upstream's `registry/customresource`
//! strategy and `apiserver/customresource_handler.go`:
//!
//! * names from `status.acceptedNames`; objects stored in the storage version under
//!   `/registry/<group>/<plural>/[<namespace>/]<name>` (all versions share one watch cache);
//! * conversion `None`: reading through another version only changes `apiVersion`;
//! * unknown fields pruned (reported to server-side field validation), defaults applied on
//!   create, update and every read from storage, the version's schema validated (422 with the
//!   schema's field paths) by the schema engine ([`super::schema`]);
//! * `metadata.generation` is 1 on create and grows with every change outside metadata (and
//!   status, when the status subresource is on);
//! * status and scale subresources, printer columns (`additionalPrinterColumns`, JSONPath;
//!   AGE when none), selectable fields, server-side apply typed by the schema;
//! * creates are refused while the CRD is terminating.
//!
//! Not done: deprecation warnings of deprecated versions.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};

use super::jsonpath::JsonPath;
use super::model::{split_path, Crd, PrinterColumn, Version, TERMINATING};
use super::schema::Structural;
use crate::api::apply::typed::{Custom, TypeRef};
use crate::api::status::{ApiError, ApiResult, FieldError};
use crate::registry::scale::ScaleMapping;
use crate::registry::store::Store;
use crate::registry::{Column, ResourceInfo, Strategy};
use crate::schema::SCHEMA;
use crate::storage::cache::{CachedObject, DecodeFn, FieldFn};
use crate::validation::NameRule;

/// One version of a CRD, ready to serve.
pub struct VersionState {
    pub version: Version,
    /// The parsed schema (None: the version has none, as only pre-v1 CRDs may).
    pub schema: Option<Structural>,
    /// The structured-merge type for server-side apply.
    pub smd: Custom,
    columns: Vec<(PrinterColumn, Option<JsonPath>)>,
}

/// What every served version of one CRD shares.
pub struct CrdState {
    pub crd: Crd,
    /// `<group>/<plural>`: the cache id and key segment.
    pub id: String,
    pub versions: Vec<VersionState>,
    /// The storage version's name.
    pub storage: String,
    /// Everything stored is in the storage version (no conversion needed when it is served).
    single_stored: bool,
    terminating: bool,
    /// Every version's selectable field paths (`spec.color`).
    selectable: BTreeSet<String>,
}

impl CrdState {
    /// Prepares a CRD for serving; None when it cannot be (no storage version). Schemas that do
    /// not parse serve without validation (validation refused them when the CRD was written).
    pub fn new(crd: Crd) -> Option<Arc<CrdState>> {
        let storage = crd.storage_version()?.name.clone();
        let versions = crd
            .versions
            .iter()
            .map(|v| {
                let schema = v.schema.as_ref().and_then(|s| super::schema::parse(s, "").ok());
                let smd = super::smd::resource_type(v.schema.as_ref());
                let columns = v.columns.iter().map(|c| (c.clone(), JsonPath::parse(&c.json_path).ok())).collect();
                VersionState { version: v.clone(), schema, smd, columns }
            })
            .collect();
        let selectable = crd.versions.iter().flat_map(|v| v.selectable.iter().map(|p| p.trim_start_matches('.').to_string())).collect();
        Some(Arc::new(CrdState {
            id: format!("{}/{}", crd.group, crd.accepted.plural),
            single_stored: crd.stored_versions.len() == 1 && crd.stored_versions[0] == storage,
            terminating: crd.is_true(TERMINATING) || crd.deleting,
            storage,
            versions,
            selectable,
            crd,
        }))
    }

    fn version_of(&self, api_version: &str) -> Option<&VersionState> {
        let v = api_version.strip_prefix(&self.crd.group)?.strip_prefix('/')?;
        self.versions.iter().find(|x| x.version.name == v)
    }

    /// Applies the defaults of the schema of the version an object is stored in.
    fn default_stored(&self, obj: &mut Value) {
        let av = obj["apiVersion"].as_str().unwrap_or("").to_string();
        if let Some(s) = self.version_of(&av).and_then(|v| v.schema.as_ref()) {
            s.apply_defaults(obj);
        }
    }

    /// How the cache decodes this resource's objects: defaults on read.
    pub fn decoder(self: &Arc<Self>) -> DecodeFn {
        let st = self.clone();
        Arc::new(move |v: &mut Value| st.default_stored(v))
    }

    /// The selectable fields of every version, as the cache extracts them.
    pub fn fields(self: &Arc<Self>) -> FieldFn {
        let paths: Vec<(String, Vec<String>)> = self.selectable.iter().map(|p| (p.clone(), split_path(p))).collect();
        Arc::new(move |v: &Value| {
            paths
                .iter()
                .map(|(name, path)| {
                    let x = path.iter().fold(v, |v, k| &v[k.as_str()]);
                    let s = match x {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (std::borrow::Cow::Owned(name.clone()), s)
                })
                .collect()
        })
    }

    /// One strategy per served version.
    pub fn strategies(self: &Arc<Self>) -> Vec<Arc<dyn Strategy>> {
        (0..self.versions.len())
            .filter(|i| self.versions[*i].version.served)
            .map(|i| Arc::new(CustomResource::new(self.clone(), i)) as Arc<dyn Strategy>)
            .collect()
    }

    /// A strategy for the storage version, served or not (the finalizer deletes through it).
    pub fn storage_strategy(self: &Arc<Self>) -> Option<CustomResource> {
        let i = self.versions.iter().position(|v| v.version.name == self.storage)?;
        Some(CustomResource::new(self.clone(), i))
    }
}

/// The strategy of one served version of a custom resource.
pub struct CustomResource {
    info: ResourceInfo,
    state: Arc<CrdState>,
    idx: usize,
}

fn column_type(t: &str) -> &'static str {
    match t {
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        "date" => "date",
        _ => "string",
    }
}

/// A table cell of a printer column (upstream's `cellForJSONValue`; strings as the JSONPath
/// printer writes them).
fn cell(typ: &str, v: &Value) -> Value {
    match (typ, v) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(s)) => json!(s),
        ("string", Value::Number(_) | Value::Bool(_)) => json!(v.to_string()),
        ("string", other) => json!(serde_json::to_string(other).unwrap_or_default()),
        ("integer", Value::Number(n)) => n.as_i64().map(|i| json!(i)).or_else(|| n.as_f64().map(|f| json!(f as i64))).unwrap_or(Value::Null),
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => match crate::meta::parse_time(s) {
            Some(t) => json!(crate::api::table::human_duration((chrono::Utc::now() - t).num_seconds())),
            None => json!("<invalid>"),
        },
        _ => Value::Null,
    }
}

impl CustomResource {
    fn new(state: Arc<CrdState>, idx: usize) -> CustomResource {
        let v = &state.versions[idx].version;
        let subresources: &'static [&'static str] = match (v.status, v.scale.is_some()) {
            (true, true) => &["status", "scale"],
            (true, false) => &["status"],
            (false, true) => &["scale"],
            (false, false) => &[],
        };
        let n = &state.crd.accepted;
        let info = ResourceInfo {
            group: state.crd.group.clone().into(),
            version: v.name.clone().into(),
            kind: n.kind.clone().into(),
            plural: n.plural.clone().into(),
            singular: n.singular.clone().into(),
            namespaced: state.crd.namespaced,
            short_names: &[],
            categories: &[],
            subresources,
            name_rule: NameRule::Subdomain,
        };
        CustomResource { info, state, idx }
    }

    fn version(&self) -> &VersionState {
        &self.state.versions[self.idx]
    }

    /// The CRD state this strategy serves.
    pub fn state(&self) -> &Arc<CrdState> {
        &self.state
    }
}

/// Removes `metadata` fields ObjectMeta does not have; returns their paths.
fn coerce_metadata(obj: &mut Value) -> Vec<String> {
    let Some(meta_msg) = SCHEMA.by_name("meta.v1.ObjectMeta") else { return Vec::new() };
    let Some(md) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) else { return Vec::new() };
    let unknown: Vec<String> = md.keys().filter(|k| SCHEMA.field(meta_msg, k).is_none()).cloned().collect();
    for k in &unknown {
        md.remove(k);
    }
    unknown.into_iter().map(|k| format!("metadata.{k}")).collect()
}

/// Everything of a custom resource but its metadata (and status, when `drop_status`).
fn content(obj: &Value, drop_status: bool) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("metadata");
        if drop_status {
            o.remove("status");
        }
    }
    v
}

impl Strategy for CustomResource {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    /// Prunes what the schema does not know, then applies its defaults (the order of
    /// upstream's decoder).
    fn default(&self, obj: &mut Value) {
        self.prune_unknown(obj);
        if let Some(s) = &self.version().schema {
            s.apply_defaults(obj);
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if self.version().version.status {
            if let Some(o) = obj.as_object_mut() {
                o.remove("status");
            }
        }
        crate::meta::metadata_mut(obj).insert("generation".into(), json!(1));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        let status = self.version().version.status;
        if content(new, status) != content(old, status) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            crate::meta::metadata_mut(new).insert("generation".into(), json!(g));
        }
    }

    fn validate_create(&self, obj: &Value, errs: &mut Vec<FieldError>) {
        if let Some(s) = &self.version().schema {
            s.validate(obj, None, errs);
        }
    }

    fn validate_update(&self, new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
        if let Some(s) = &self.version().schema {
            s.validate(new, Some(old), errs);
        }
    }

    fn admit_create(&self, _store: &Store, _obj: &mut Value) -> ApiResult<()> {
        if self.state.terminating {
            let mut e = ApiError::method_not_supported(&self.info.plural, "create");
            e.message = "create not allowed while custom resource definition is terminating".into();
            return Err(e);
        }
        Ok(())
    }

    fn columns(&self) -> Vec<Column> {
        let mut cols = vec![Column::name()];
        let v = self.version();
        if v.columns.is_empty() {
            cols.push(Column { typ: "date".into(), ..Column::age() });
        }
        for (c, _) in &v.columns {
            cols.push(Column {
                name: c.name.clone().into(),
                typ: column_type(&c.typ).into(),
                format: c.format.clone().into(),
                description: c.description.clone().into(),
                priority: c.priority,
            });
        }
        cols
    }

    fn row(&self, obj: &Value) -> Vec<Value> {
        let mut cells = vec![json!(crate::meta::name(obj))];
        let v = self.version();
        if v.columns.is_empty() {
            cells.push(json!(crate::api::table::age(obj)));
        }
        for (c, path) in &v.columns {
            let found = path.as_ref().and_then(|p| p.find(obj).first().map(|x| (*x).clone()));
            cells.push(found.map(|x| cell(&c.typ, &x)).unwrap_or(Value::Null));
        }
        cells
    }

    fn has_field(&self, field: &str) -> bool {
        self.version().version.selectable.iter().any(|p| p.trim_start_matches('.') == field)
    }

    fn scale_mapping(&self) -> Option<ScaleMapping> {
        self.version().version.scale.clone().map(ScaleMapping::Custom)
    }

    fn short_names(&self) -> Vec<String> {
        self.state.crd.accepted.short_names.clone()
    }

    fn categories(&self) -> Vec<String> {
        self.state.crd.accepted.categories.clone()
    }

    fn strategic_merge(&self) -> bool {
        false
    }

    fn apply_type(&self) -> TypeRef<'_> {
        TypeRef::Custom(&self.version().smd)
    }

    fn prune_unknown(&self, obj: &mut Value) -> Option<Vec<String>> {
        let mut out = coerce_metadata(obj);
        if let Some(s) = &self.version().schema {
            out.extend(s.prune(obj).into_iter().map(|p| p.trim_start_matches('.').to_string()));
        }
        out.sort();
        Some(out)
    }

    fn read_stored(&self, obj: &mut Value) {
        self.state.default_stored(obj);
        obj["apiVersion"] = json!(self.info.api_version());
    }

    fn write_stored(&self, obj: &mut Value) {
        obj["apiVersion"] = json!(format!("{}/{}", self.state.crd.group, self.state.storage));
    }

    fn list_kind(&self) -> String {
        match self.state.crd.accepted.list_kind.as_str() {
            "" => format!("{}List", self.info.kind),
            k => k.to_string(),
        }
    }

    fn storage_version(&self) -> String {
        self.state.storage.clone()
    }

    /// The version's `deprecationWarning`, or upstream's default naming the newest served
    /// version that is not deprecated.
    fn deprecation_warning(&self) -> Option<String> {
        let v = &self.version().version;
        if !v.deprecated {
            return None;
        }
        if let Some(w) = &v.deprecation_warning {
            return Some(w.clone());
        }
        let (g, kind) = (&self.state.crd.group, &self.info.kind);
        let mut msg = format!("{g}/{} {kind} is deprecated", v.name);
        let newest = self
            .state
            .versions
            .iter()
            .filter(|x| x.version.served && !x.version.deprecated)
            .map(|x| x.version.name.as_str())
            .min_by(|a, b| crate::registry::version_priority(a, b));
        if let Some(n) = newest {
            msg.push_str(&format!("; use {g}/{n} {kind}"));
        }
        Some(msg)
    }

    fn openapi_definition(&self) -> Option<(String, Value, Value)> {
        let inf = &self.info;
        let (v2, v3) = super::openapi::definitions(self.version().version.schema.as_ref(), &inf.group, &inf.version, &inf.kind);
        Some((super::openapi::definition_name(&inf.group, &inf.version, &inf.kind), v2, v3))
    }

    fn served_bytes(&self, o: &CachedObject) -> Option<Bytes> {
        if self.state.single_stored && self.info.version == self.state.storage {
            return None;
        }
        let mine = self.info.api_version();
        let v = o.value();
        if v["apiVersion"] == mine.as_str() {
            return None;
        }
        let mut v = (*v).clone();
        v["apiVersion"] = json!(mine);
        serde_json::to_vec(&v).ok().map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Arc<CrdState> {
        let v = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v2", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}},
                     "subresources": {"status": {}},
                     "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                     "selectableFields": [{"jsonPath": ".spec.color"}]}]},
            "status": {"acceptedNames": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
                "storedVersions": ["v1beta1", "v2"]}});
        CrdState::new(Crd::parse(&v)).unwrap()
    }

    #[test]
    fn versions_share_storage_and_convert_api_version() {
        let st = state();
        let s = st.strategies();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].info().id(), "example.com/widgets");
        assert_eq!(s[1].info().subresources, &["status"]);
        let mut o = json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w"}});
        s[0].write_stored(&mut o);
        assert_eq!(o["apiVersion"], "example.com/v2");
        s[0].read_stored(&mut o);
        assert_eq!(o["apiVersion"], "example.com/v1beta1");
        let cached = CachedObject::new("ns/w".into(), json!({"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w"}}), 5, &st.fields());
        let b = s[0].served_bytes(&cached).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["apiVersion"], "example.com/v1beta1");
        assert!(s[1].served_bytes(&cached).is_none());
        assert!(s[1].has_field("spec.color") && !s[0].has_field("spec.color"));
        assert_eq!(cached.fields, vec![(std::borrow::Cow::Owned("spec.color".to_string()), String::new())]);
    }

    #[test]
    fn generation_and_status() {
        let st = state();
        let s = &st.strategies()[1];
        let mut o = json!({"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"x": 1}});
        s.prepare_for_create(&mut o);
        assert!(o.get("status").is_none());
        assert_eq!(o["metadata"]["generation"], 1);
        let old = o.clone();
        let mut same = old.clone();
        same["metadata"]["labels"] = json!({"a": "b"});
        s.prepare_for_update(&mut same, &old);
        assert_eq!(same["metadata"]["generation"], 1);
        let mut changed = old.clone();
        changed["spec"]["size"] = json!(2);
        s.prepare_for_update(&mut changed, &old);
        assert_eq!(changed["metadata"]["generation"], 2);
    }

    #[test]
    fn printer_columns() {
        let st = state();
        let s = &st.strategies()[1];
        let names: Vec<String> = s.columns().iter().map(|c| c.name.to_string()).collect();
        assert_eq!(names, ["Name", "Size", "Ready", "Age"]);
        assert_eq!(s.columns()[2].priority, 1);
        let o = json!({"metadata": {"name": "w", "creationTimestamp": "2020-01-01T00:00:00Z"}, "spec": {"size": 3.0},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let row = s.row(&o);
        assert_eq!(row[0], "w");
        assert_eq!(row[1], 3);
        assert_eq!(row[2], "True");
        assert!(row[3].as_str().unwrap().ends_with('y') || row[3].as_str().unwrap().contains('d'), "{row:?}");
        // Without columns: NAME and AGE.
        let plain = &st.strategies()[0];
        let cols: Vec<String> = plain.columns().iter().map(|c| c.name.to_string()).collect();
        assert_eq!(cols, ["Name", "Age"]);
        assert_eq!(cell("string", &json!(5)), json!("5"));
        assert_eq!(cell("date", &json!("bad")), json!("<invalid>"));
    }

    #[test]
    fn unknown_metadata_is_pruned_and_reported() {
        let st = state();
        let s = &st.strategies()[1];
        let mut o = json!({"metadata": {"name": "w", "bogus": 1, "labels": {"a": "b"}}});
        assert_eq!(s.prune_unknown(&mut o), Some(vec!["metadata.bogus".to_string()]));
        assert_eq!(o["metadata"], json!({"name": "w", "labels": {"a": "b"}}));
    }
}
