//! The OpenAPI documents of a tenant that serves custom resources.
//!
//! The built-in documents are shared by every tenant; a tenant with CRDs gets, on top of them:
//! one OpenAPI 3.0 document per custom group version (`apis/<group>/<version>`), a `/openapi/v3`
//! index listing the built-in documents and those, and a Swagger 2.0 document that is the
//! built-in one plus the custom definitions and paths. They are rebuilt (off the async workers)
//! on the first request after the registry changed, so they follow CRD changes at once, and
//! only tenants that have CRDs and ask for OpenAPI pay for them.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde_json::Value;

use super::definitions::{self, Names};
use super::model::{Gvk, PathItem, Spec};
use super::paths::{self, group_camel, gv_key, tag, upper_first};
use super::Served;
use crate::registry::Registry;

/// The custom part of one tenant's documents, for one registry generation.
pub struct TenantDocs {
    generation: u64,
    /// `apis/<group>/<version>` of custom group versions.
    pub v3: BTreeMap<String, Served>,
    /// Built-in and custom documents.
    pub index: Served,
    /// Swagger 2.0 definitions of the custom kinds and their lists.
    definitions: BTreeMap<String, Value>,
    paths: Vec<PathItem>,
    v2: OnceLock<Served>,
    v2_proto: OnceLock<Served>,
    pub modified: String,
}

/// A tenant's documents, rebuilt when its registry changes.
#[derive(Default)]
pub struct Cache(Mutex<Option<Arc<TenantDocs>>>);

fn build(reg: &Registry, builtin_v2: &[u8], builtin_v3: &BTreeMap<String, Served>) -> TenantDocs {
    let generation = reg.generation();
    let builtin: Value = serde_json::from_slice(builtin_v2).unwrap_or(Value::Null);
    let mut defs: BTreeMap<String, Value> =
        builtin["definitions"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    let mut names = Names::default();
    names.insert("autoscaling", "v1", "Scale", "io.k8s.api.autoscaling.v1.Scale".into());
    let mut custom_defs = BTreeMap::new();
    let mut v3_overrides = BTreeMap::new();
    let mut groups: BTreeMap<String, BTreeMap<String, PathItem>> = BTreeMap::new();
    let customs: Vec<_> = reg.all().iter().filter(|s| s.openapi_definition().is_some()).cloned().collect();
    for s in &customs {
        let Some((name, v2, v3)) = s.openapi_definition() else { continue };
        let inf = s.info();
        let gvk = Gvk::new(&inf.group, &inf.version, &inf.kind);
        let list = definitions::list_definition(&name, &v2, &gvk, &inf.plural, None);
        v3_overrides.insert(name.clone(), v3);
        v3_overrides.insert(format!("{name}List"), super::v3::convert_schema(&list));
        custom_defs.insert(name.clone(), v2);
        custom_defs.insert(format!("{name}List"), list);
        names.insert(&inf.group, &inf.version, &inf.kind, name);
    }
    defs.extend(custom_defs.clone());
    for s in &customs {
        let inf = s.info();
        let key = gv_key(&inf.group, &inf.version);
        let out = groups.entry(key).or_default();
        let base = format!("/apis/{}/{}/", inf.group, inf.version);
        if !out.contains_key(&base) {
            let id = format!("get{}{}APIResources", group_camel(&inf.group), upper_first(&inf.version));
            out.insert(base.clone(), paths::discovery(&base, id, "get available resources", tag(&inf.group, &inf.version), definitions::API_RESOURCE_LIST));
        }
        paths::resource_paths(s.as_ref(), &names, out);
    }
    let groups: BTreeMap<String, Vec<PathItem>> = groups.into_iter().map(|(k, v)| (k, v.into_values().collect())).collect();
    let all_paths: Vec<PathItem> = groups.values().flatten().cloned().collect();
    let spec = Spec { definitions: defs, v3_overrides, groups };
    let v3: BTreeMap<String, Served> =
        spec.groups.iter().map(|(k, p)| (k.clone(), Served::new(serde_json::to_vec(&super::v3::document(&spec, p)).unwrap_or_default()))).collect();
    let mut all: BTreeMap<String, &Served> = builtin_v3.iter().map(|(k, v)| (k.clone(), v)).collect();
    all.extend(v3.iter().map(|(k, v)| (k.clone(), v)));
    let index_paths: serde_json::Map<String, Value> =
        all.iter().map(|(k, d)| (k.clone(), serde_json::json!({"serverRelativeURL": super::server_relative_url(k, &d.etag)}))).collect();
    let index = Served::new(serde_json::to_vec(&serde_json::json!({"paths": index_paths})).unwrap_or_default());
    TenantDocs {
        generation,
        v3,
        index,
        definitions: custom_defs,
        paths: all_paths,
        v2: OnceLock::new(),
        v2_proto: OnceLock::new(),
        modified: super::http_date(chrono::Utc::now()),
    }
}

impl TenantDocs {
    /// The Swagger 2.0 document: the built-in one with the custom definitions and paths.
    fn v2_json(&self, builtin_v2: &[u8]) -> &Served {
        self.v2.get_or_init(|| {
            let mut doc: Value = serde_json::from_slice(builtin_v2).unwrap_or(Value::Null);
            for (k, v) in &self.definitions {
                doc["definitions"][k] = v.clone();
            }
            for p in &self.paths {
                doc["paths"][&p.path] = super::v2::path_json(p);
            }
            let s = Served::new(serde_json::to_vec(&doc).unwrap_or_default());
            super::release_freed_memory();
            s
        })
    }
}

/// The custom part of the documents of the tenant whose registry this is; None when it
/// serves no custom resources.
pub async fn docs(cache: &Cache, reg: Arc<Registry>) -> Option<Arc<TenantDocs>> {
    if !reg.has_custom() {
        return None;
    }
    if let Some(d) = cache.0.lock().as_ref().filter(|d| d.generation == reg.generation()) {
        return Some(d.clone());
    }
    let v2 = super::v2_docs().await?;
    let v3 = super::v3_docs().await?;
    let d = super::off_workers(move || {
        let d = build(&reg, &v2.json.bytes(), &v3.docs);
        super::release_freed_memory();
        Arc::new(d)
    })
    .await?;
    *cache.0.lock() = Some(d.clone());
    Some(d)
}

/// The tenant's Swagger 2.0 document as JSON or protobuf.
pub async fn v2(d: Arc<TenantDocs>, proto: bool) -> Option<Served> {
    let builtin = super::v2_docs().await?;
    super::off_workers(move || {
        let json = d.v2_json(&builtin.json.bytes());
        if !proto {
            return json.clone();
        }
        let pb = d.v2_proto.get_or_init(|| Served::new(super::v2_proto(&json.bytes())));
        Served { gzip: pb.gzip.clone(), etag: json.etag.clone() }
    })
    .await
}
