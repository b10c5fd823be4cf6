//! The generic store: create, get, list, update, delete of any resource over etcd and the watch
//! cache, with the semantics of kube-apiserver's `genericregistry.Store`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};

use super::alloc::Allocator;
use super::{Registry, Strategy};
use crate::api::selectors::{FieldSelector, LabelSelector};
use crate::api::status::{ApiError, ApiResult, FieldError};
use crate::meta;
use crate::storage::cache::CachedObject;
use crate::storage::dispatcher::Caches;
use crate::storage::etcd::{Etcd, StorageError};

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// A namespace's `spec.finalizers` (the `finalize` subresource).
    Finalize,
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// The subresource written through when the part does not say it (`scale`); recorded in
    /// managedFields.
    pub subresource: &'static str,
    /// The caller computed the new object's managedFields itself (server-side apply): the store
    /// records no Update operation and keeps them.
    pub managed_by_caller: bool,
    /// A server-internal write that update validation must not judge (pods/binding setting the
    /// otherwise immutable `spec.nodeName`, as upstream's binding REST writes storage directly).
    pub skip_update_validation: bool,
}

/// `metav1.DeleteOptions` as far as the store uses it.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub grace_period: Option<i64>,
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

/// The outcome of a delete.
pub enum Deleted {
    /// Removed from storage; the last state of the object.
    Gone(Value),
    /// Still present, marked for deletion (finalizers or a grace period pending).
    Pending(Value),
}

/// Options of a LIST.
#[derive(Debug, Clone, Default)]
pub struct ListOpts {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

/// One page of a LIST.
pub struct ListPage {
    pub items: Vec<Arc<CachedObject>>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Limits on stored objects.
pub const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// The store of one tenant.
pub struct Store {
    pub caches: Arc<Caches>,
    pub registry: Arc<Registry>,
    pub alloc: Allocator,
    /// The tenant's service-account token issuer (set once at start; absent in unit tests).
    pub service_accounts: std::sync::OnceLock<Arc<crate::serviceaccount::Issuer>>,
    /// Quota admission's state (namespace locks, in-flight charges).
    pub quota: crate::admission::resourcequota::QuotaAdmission,
    /// The OpenAPI documents of this tenant's custom resources.
    pub openapi: crate::openapi::custom::Cache,
    last_write: AtomicI64,
}

fn storage_err(e: StorageError, s: &dyn Strategy, name: &str) -> ApiError {
    let inf = s.info();
    match e {
        StorageError::AlreadyExists => ApiError::already_exists(&inf.group, &inf.plural, name),
        StorageError::NotFound => ApiError::not_found(&inf.group, &inf.plural, name),
        StorageError::Conflict => ApiError::stale(&inf.group, &inf.plural, name),
        StorageError::Compacted => ApiError::gone("The resourceVersion for the provided list is too old."),
        StorageError::TooLarge => ApiError::too_large("etcdserver: request is too large"),
        StorageError::Etcd(m) => ApiError::internal(m),
    }
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// generateName's random suffix (5 characters from upstream's alphabet).
pub fn random_suffix() -> String {
    let mut r = rand::thread_rng();
    (0..5).map(|_| NAME_CHARS[r.gen_range(0..NAME_CHARS.len())] as char).collect()
}

fn encode_continue(rv: i64, start: &str) -> String {
    let j = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(j.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(i64, String)> {
    let bad = || ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let j: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = j["rv"].as_i64().ok_or_else(bad)?;
    let start = j["start"].as_str().ok_or_else(bad)?.to_string();
    if rv <= 0 || start.contains("..") {
        return Err(bad());
    }
    Ok((rv, start))
}

/// Whether two versions of an object are the same but for the resourceVersion (a change of
/// managedFields alone is a change, as ownership moves without values changing).
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(md) = v["metadata"].as_object_mut() {
            md.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

impl Store {
    pub fn new(caches: Arc<Caches>, registry: Arc<Registry>, alloc: Allocator) -> Store {
        Store { caches, registry, alloc, service_accounts: std::sync::OnceLock::new(), quota: Default::default(), openapi: Default::default(), last_write: AtomicI64::new(0) }
    }

    fn etcd(&self) -> &Etcd {
        self.caches.etcd()
    }

    fn note_write(&self, rev: i64) {
        self.last_write.fetch_max(rev, Ordering::SeqCst);
    }

    /// Waits until the cache holds every write this server has made; returns the revision.
    ///
    /// The tenant master is the only writer of its prefix, so its own last write is the freshest
    /// state there is: reads served after this wait are as fresh as a quorum read of etcd.
    pub async fn consistent(&self) -> ApiResult<i64> {
        let want = self.last_write.load(Ordering::SeqCst);
        if !self.caches.wait_for_own(want, Duration::from_secs(10)).await {
            return Err(ApiError::timeout("Too large resource version: the watch cache did not catch up in time"));
        }
        Ok(self.caches.revision())
    }

    /// Waits until the cache has reached `rv` (for resourceVersion=N reads).
    pub async fn at_least(&self, rv: i64) -> ApiResult<()> {
        if !self.caches.wait_for(rv, Duration::from_secs(3)).await {
            return Err(ApiError {
                code: 504,
                reason: "Timeout",
                message: format!("Too large resource version: {rv}, current: {}", self.caches.revision()),
                details: Some(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})),
            });
        }
        Ok(())
    }

    /// GET of one object, from the cache once it is fresh.
    pub async fn get(&self, s: &dyn Strategy, ns: &str, name: &str) -> ApiResult<Arc<CachedObject>> {
        self.consistent().await?;
        self.get_cached(s, ns, name).ok_or_else(|| ApiError::not_found(&s.info().group, &s.info().plural, name))
    }

    /// The cached object as it is now (resourceVersion=0 semantics).
    pub fn get_cached(&self, s: &dyn Strategy, ns: &str, name: &str) -> Option<Arc<CachedObject>> {
        let inf = s.info();
        self.caches.resource(&inf.id()).get(&inf.cache_key(ns, name))
    }

    /// Reads the object straight from etcd (for writes, which compare-and-swap on it).
    async fn read_current(&self, s: &dyn Strategy, ns: &str, name: &str) -> ApiResult<Option<(Value, i64)>> {
        let key = s.info().key(ns, name);
        match self.etcd().get(&key).await.map_err(|e| storage_err(e, s, name))? {
            None => Ok(None),
            Some(st) => {
                let mut v: Value = serde_json::from_slice(&st.value)
                    .map_err(|e| ApiError::internal(format!("decoding {key}: {e}")))?;
                s.read_stored(&mut v);
                meta::set_resource_version(&mut v, st.mod_revision);
                Ok(Some((v, st.mod_revision)))
            }
        }
    }

    /// Checks field-selector keys against what the resource supports.
    pub fn check_fields(&self, s: &dyn Strategy, fs: &FieldSelector) -> ApiResult<()> {
        for k in fs.keys() {
            if k != "metadata.name" && k != "metadata.namespace" && !s.has_field(k) {
                return Err(ApiError::bad_request(format!("field label not supported: {k}")));
            }
        }
        Ok(())
    }

    /// Whether a cached object matches label and field selectors.
    pub fn matches(o: &CachedObject, ls: &LabelSelector, fs: &FieldSelector) -> bool {
        if !ls.is_empty() && !ls.matches(&o.labels) {
            return false;
        }
        if fs.is_empty() {
            return true;
        }
        fs.matches(&|k: &str| match k {
            "metadata.name" => Some(o.name.clone()),
            "metadata.namespace" => Some(o.namespace.clone()),
            _ => o.fields.iter().find(|(f, _)| *f == k).map(|(_, v)| v.clone()),
        })
    }

    /// LIST, served from the watch cache; continuation pages come from etcd at the first page's
    /// revision, so a paged list is one consistent snapshot (410 once etcd compacted it).
    pub async fn list(&self, s: &dyn Strategy, ns: &str, o: &ListOpts) -> ApiResult<ListPage> {
        self.check_fields(s, &o.fields)?;
        let inf = s.info();
        if let Some(tok) = &o.continue_token {
            return self.list_continue(s, ns, o, tok).await;
        }
        let rv_param = o.resource_version.as_deref().unwrap_or("");
        let rv_match = o.resource_version_match.as_deref().unwrap_or("");
        if rv_match == "Exact" {
            let rv: i64 = rv_param.parse().map_err(|_| ApiError::bad_request(format!("resourceVersion: Invalid value: {rv_param:?}: must be a positive integer")))?;
            return self.list_from_etcd(s, ns, o, rv, None).await;
        }
        let global = match rv_param {
            "" => self.consistent().await?,
            "0" => self.caches.revision(),
            n => {
                let rv: i64 = n.parse().map_err(|_| ApiError::bad_request(format!("Invalid value: {n:?}: resourceVersion must be an integer")))?;
                self.at_least(rv).await?;
                self.caches.revision()
            }
        };
        let cache = self.caches.resource(&inf.id());
        let prefix = if inf.namespaced && !ns.is_empty() { Some(format!("{ns}/")) } else { None };
        // A pinned name narrows the scan to one key.
        let exact = o.fields.exact("metadata.name").map(|n| inf.cache_key(ns, n));
        let keep = |c: &CachedObject| Store::matches(c, &o.labels, &o.fields);
        let (items, remaining, last) = match exact {
            Some(k) if !ns.is_empty() || !inf.namespaced => {
                let items: Vec<_> = cache.get(&k).into_iter().filter(|c| keep(c)).collect();
                (items, 0, cache.last_rv())
            }
            _ => cache.list_filtered(None, prefix.as_deref(), o.limit, &keep),
        };
        let rv = last.max(global);
        let (continue_token, remaining) = if remaining > 0 {
            let last_key = items.last().map(|i| i.key.clone()).unwrap_or_default();
            (Some(encode_continue(rv, &format!("{last_key}\u{0}"))), Some(remaining))
        } else {
            (None, None)
        };
        Ok(ListPage { items, resource_version: rv, continue_token, remaining })
    }

    async fn list_continue(&self, s: &dyn Strategy, ns: &str, o: &ListOpts, tok: &str) -> ApiResult<ListPage> {
        let (rv, start) = decode_continue(tok)?;
        self.list_from_etcd(s, ns, o, rv, Some(start)).await
    }

    async fn list_from_etcd(&self, s: &dyn Strategy, ns: &str, o: &ListOpts, rv: i64, start: Option<String>) -> ApiResult<ListPage> {
        let inf = s.info();
        let res_prefix = format!("/registry/{}/", inf.id());
        let scan_prefix = if inf.namespaced && !ns.is_empty() { format!("{res_prefix}{ns}/") } else { res_prefix.clone() };
        let mut from = start.map(|st| format!("{res_prefix}{st}"));
        if let Some(f) = &from {
            if !f.starts_with(&scan_prefix) {
                return Err(ApiError::bad_request("continue key is not valid: the key is outside the requested scope"));
            }
        }
        let cache = self.caches.resource(&inf.id());
        let mut items = Vec::new();
        let mut last_key: Option<String> = None;
        let mut more;
        loop {
            let batch = if o.limit > 0 { (o.limit - items.len()).max(1) as i64 } else { 0 };
            let (kvs, _, has_more, _) = self
                .etcd()
                .range(&scan_prefix, from.as_deref(), rv, batch)
                .await
                .map_err(|e| match e {
                    StorageError::Compacted => ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."),
                    e => storage_err(e, s, ""),
                })?;
            let n = kvs.len();
            for kv in kvs {
                let rel = kv.key[res_prefix.len()..].to_string();
                last_key = Some(rel.clone());
                let Ok(v) = serde_json::from_slice::<Value>(&kv.value) else { continue };
                let obj = cache.make(rel, v, kv.mod_revision);
                if Store::matches(&obj, &o.labels, &o.fields) {
                    items.push(Arc::new(obj));
                }
            }
            more = has_more;
            if !has_more || n == 0 || (o.limit > 0 && items.len() >= o.limit) {
                break;
            }
            from = last_key.as_ref().map(|k| format!("{res_prefix}{k}\u{0}"));
        }
        let continue_token = match (more, &last_key) {
            (true, Some(k)) if o.limit > 0 => Some(encode_continue(rv, &format!("{k}\u{0}"))),
            _ => None,
        };
        Ok(ListPage { items, resource_version: rv, continue_token, remaining: None })
    }

    /// Checks the namespace of a new namespaced object exists and is not terminating.
    async fn check_namespace(&self, ns: &str) -> ApiResult<()> {
        let Some(nss) = self.registry.lookup("", "v1", "namespaces") else { return Ok(()) };
        let mut cached = self.get_cached(nss.as_ref(), "", ns);
        if cached.is_none() {
            // A namespace created a moment ago may not be in the cache yet: catch up first.
            self.consistent().await?;
            cached = self.get_cached(nss.as_ref(), "", ns);
        }
        match cached {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(o) => {
                let v = o.value();
                if meta::is_deleting(&v) || v["status"]["phase"] == "Terminating" {
                    let mut e = ApiError::forbidden(format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    ));
                    e.details = Some(json!({"name": ns, "kind": "namespaces", "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}));
                    Err(e)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn check_kind(s: &dyn Strategy, obj: &Value) -> ApiResult<()> {
        let inf = s.info();
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of the request must be a JSON or YAML object"));
        }
        if let Some(k) = obj.get("kind").and_then(|k| k.as_str()) {
            if !k.is_empty() && k != inf.kind {
                return Err(ApiError::bad_request(format!(
                    "the kind of the object ({k}) does not match the kind of the resource ({})",
                    inf.kind
                )));
            }
        }
        if let Some(av) = obj.get("apiVersion").and_then(|k| k.as_str()) {
            if !av.is_empty() && av != inf.api_version() {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    inf.api_version()
                )));
            }
        }
        Ok(())
    }

    fn validate(&self, s: &dyn Strategy, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
        let inf = s.info();
        let mut errs: Vec<FieldError> = Vec::new();
        crate::validation::validate_object_meta(obj, inf.namespaced, inf.name_rule, &mut errs);
        s.validate(obj, &mut errs);
        if old.is_none() {
            s.validate_create(obj, &mut errs);
        }
        if let Some(old) = old {
            if obj["metadata"]["name"] != old["metadata"]["name"] {
                errs.push(FieldError::invalid("metadata.name", obj["metadata"]["name"].clone(), "field is immutable"));
            }
            s.validate_update(obj, old, &mut errs);
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(&inf.group, &inf.kind, meta::name(obj), &errs))
        }
    }

    fn encode(s: &dyn Strategy, obj: &Value) -> ApiResult<Vec<u8>> {
        let mut v = obj.clone();
        s.write_stored(&mut v);
        if let Some(md) = v["metadata"].as_object_mut() {
            md.remove("resourceVersion");
            md.remove("selfLink");
        }
        let bytes = serde_json::to_vec(&v).map_err(ApiError::internal)?;
        if bytes.len() > MAX_OBJECT_BYTES {
            let _ = s;
            return Err(ApiError::too_large("etcdserver: request is too large"));
        }
        Ok(bytes)
    }

    /// CREATE: defaulting, validation, admission, then a create-if-absent transaction.
    pub async fn create(&self, s: &dyn Strategy, ns: &str, mut obj: Value, o: &WriteOpts) -> ApiResult<Value> {
        let inf = s.info();
        Store::check_kind(s, &obj)?;
        obj["kind"] = json!(inf.kind);
        obj["apiVersion"] = json!(inf.api_version());
        let md = meta::metadata_mut(&mut obj);
        if inf.namespaced {
            match md.get("namespace").and_then(|n| n.as_str()) {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    md.insert("namespace".into(), json!(ns));
                }
            }
        } else {
            md.remove("namespace");
        }
        for f in ["resourceVersion", "uid", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            md.remove(f);
        }
        md.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        md.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        if s.tracks_generation() {
            md.insert("generation".into(), json!(1));
        }
        let generated = md.get("name").and_then(|n| n.as_str()).unwrap_or("").is_empty()
            && md.get("generateName").and_then(|n| n.as_str()).map(|g| !g.is_empty()).unwrap_or(false);
        s.default(&mut obj);
        // Recorded before the strategy's own changes (status reset, generated selectors,
        // finalizers), which no manager owns, as upstream runs its field manager first.
        if !o.managed_by_caller {
            if let Some(m) = &o.field_manager {
                crate::api::apply::track_update_typed(&mut obj, None, m, o.subresource, inf, s.apply_type());
            }
        }
        s.prepare_for_create(&mut obj);
        // Upstream's SimpleNameGenerator: the base is cut to 58 characters so that base plus
        // the 5-character suffix fits the 63 a name may have.
        let generate_name: String = obj["metadata"]["generateName"].as_str().unwrap_or("").chars().take(58).collect();
        let mut attempts = 0;
        loop {
            if generated {
                let name = format!("{generate_name}{}", random_suffix());
                meta::metadata_mut(&mut obj).insert("name".into(), json!(name));
            }
            self.validate(s, &obj, None)?;
            if inf.namespaced {
                self.check_namespace(ns).await?;
            }
            // The ServiceAccount admission plugin (pods only); it may wait for the namespace's
            // default ServiceAccount, hence async and outside the strategy.
            crate::serviceaccount::admission::admit_create(self, inf, ns, &mut obj, generated).await?;
            s.admit_create(self, &mut obj)?;
            let name = meta::name(&obj).to_string();
            let bytes = Store::encode(s, &obj)?;
            // Resource quota admission, the last step before the write: charges every matching
            // ResourceQuota (compare-and-swap on its status) or refuses with 403. A dry run is
            // checked but not charged. `finish` refunds the charge if the write fails.
            let charge = crate::admission::resourcequota::admit(self, s, &obj, None, o.subresource, o.dry_run).await?;
            if o.dry_run {
                self.after_write(&obj);
                return Ok(obj);
            }
            let res = self.etcd().create(&inf.key(ns, &name), bytes).await;
            charge.finish(self, res.as_ref().ok().copied()).await;
            self.after_write_await(&obj, res.as_ref().ok().copied()).await;
            match res {
                Ok(rev) => {
                    self.note_write(rev);
                    meta::set_resource_version(&mut obj, rev);
                    return Ok(obj);
                }
                Err(StorageError::AlreadyExists) if generated && attempts < 8 => attempts += 1,
                Err(e) => return Err(storage_err(e, s, &name)),
            }
        }
    }

    /// Releases pending allocations (a Service's ClusterIPs and NodePorts) once the written
    /// object is visible in the cache, where the allocators see it as taken. Other kinds
    /// hold no allocations and return at once: read-your-writes is kept by `note_write`.
    async fn after_write_await(&self, obj: &Value, rev: Option<i64>) {
        if obj["kind"] != "Service" {
            return;
        }
        if let Some(rev) = rev {
            self.caches.wait_for_own(rev, Duration::from_secs(5)).await;
        }
        self.after_write(obj);
    }

    fn after_write(&self, obj: &Value) {
        if obj["kind"] == "Service" {
            for ip in obj["spec"]["clusterIPs"].as_array().into_iter().flatten() {
                if let Some(ip) = ip.as_str().and_then(|s| s.parse().ok()) {
                    self.alloc.release_ip(ip);
                }
            }
            for p in obj["spec"]["ports"].as_array().into_iter().flatten() {
                if let Some(np) = p["nodePort"].as_u64() {
                    self.alloc.release_port(np as u16);
                }
            }
        }
    }

    /// UPDATE (PUT) of the object or its status.
    pub async fn update(
        &self,
        s: &dyn Strategy,
        ns: &str,
        name: &str,
        obj: Value,
        part: Part,
        o: &WriteOpts,
    ) -> ApiResult<(Value, bool)> {
        let inf = s.info();
        Store::check_kind(s, &obj)?;
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if inf.namespaced {
            let body_ns = meta::namespace(&obj);
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let precondition = meta::resource_version(&obj).to_string();
        let body = obj;
        let mut created = false;
        let res = self
            .guaranteed_update(s, ns, name, part, o, !precondition.is_empty(), |cur| {
                match cur {
                    None => {
                        if !s.allow_create_on_update() || part != Part::Main {
                            return Err(ApiError::not_found(&inf.group, &inf.plural, name));
                        }
                        created = true;
                        Ok(body.clone())
                    }
                    Some(cur) => {
                        if !precondition.is_empty() && precondition != meta::resource_version(cur) {
                            return Err(ApiError::stale(&inf.group, &inf.plural, name));
                        }
                        Ok(body.clone())
                    }
                }
            })
            .await?;
        Ok((res, created))
    }

    /// Read-modify-write with compare-and-swap and retry (`GuaranteedUpdate`). `f` gets the
    /// current object (None when absent) and returns the desired one; it may run several times.
    pub async fn guaranteed_update<F>(
        &self,
        s: &dyn Strategy,
        ns: &str,
        name: &str,
        part: Part,
        o: &WriteOpts,
        no_retry: bool,
        mut f: F,
    ) -> ApiResult<Value>
    where
        F: FnMut(Option<&Value>) -> ApiResult<Value>,
    {
        let inf = s.info();
        for _ in 0..64 {
            let cur = self.read_current(s, ns, name).await?;
            let Some((old, old_rev)) = cur else {
                let new = f(None)?;
                let created = self.create(s, ns, new, o).await?;
                return Ok(created);
            };
            let mut new = f(Some(&old))?;
            Store::check_kind(s, &new)?;
            new["kind"] = json!(inf.kind);
            new["apiVersion"] = json!(inf.api_version());
            let applied = o.managed_by_caller.then(|| new["metadata"].get("managedFields").cloned());
            // managedFields: kept as server-side apply computed them, or an Update recorded
            // after defaulting and before the strategy's own changes.
            let mut track = |new: &mut Value| match &applied {
                Some(mf) => {
                    let md = meta::metadata_mut(new);
                    match mf {
                        Some(mf) => md.insert("managedFields".into(), mf.clone()),
                        None => md.remove("managedFields"),
                    };
                }
                None => {
                    if let Some(m) = &o.field_manager {
                        let sub = match part {
                            Part::Status => "status",
                            Part::Finalize => "finalize",
                            Part::Main => o.subresource,
                        };
                        crate::api::apply::track_update_typed(new, Some(&old), m, sub, inf, s.apply_type());
                    }
                }
            };
            self.merge_system_fields(s, &mut new, &old, part, &mut track);
            if same_object(&new, &old) {
                return Ok(old);
            }
            if !o.skip_update_validation {
                self.validate(s, &new, Some(&old))?;
            }
            s.admit_update(self, &mut new, &old)?;
            // An update that clears the last finalizer of an object being deleted deletes it.
            let delete_now = meta::is_deleting(&new)
                && !self.pending_finalizers(s, &new)
                && new["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0;
            // Resource quota admission for updates that change usage (a Service's type, a
            // claim's size); as on create, refunded by `finish` if the write fails.
            let charge = if delete_now {
                crate::admission::resourcequota::Charge::none()
            } else {
                let sub = match part {
                    Part::Status => "status",
                    Part::Finalize => "finalize",
                    Part::Main => o.subresource,
                };
                crate::admission::resourcequota::admit(self, s, &new, Some(&old), sub, o.dry_run).await?
            };
            if o.dry_run {
                return Ok(new);
            }
            let key = inf.key(ns, name);
            let res = if delete_now {
                self.etcd().delete(&key, old_rev).await
            } else {
                match Store::encode(s, &new) {
                    Ok(bytes) => self.etcd().update(&key, bytes, old_rev).await,
                    Err(e) => {
                        charge.finish(self, None).await;
                        return Err(e);
                    }
                }
            };
            charge.finish(self, res.as_ref().ok().copied()).await;
            self.after_write_await(&new, res.as_ref().ok().copied()).await;
            match res {
                Ok(rev) => {
                    self.note_write(rev);
                    meta::set_resource_version(&mut new, rev);
                    return Ok(new);
                }
                Err(StorageError::Conflict) | Err(StorageError::NotFound) if !no_retry => continue,
                Err(e) => return Err(storage_err(e, s, name)),
            }
        }
        Err(ApiError::stale(&inf.group, &inf.plural, name))
    }

    /// Keeps what clients cannot change: identity, timestamps, generation, and the half of the
    /// object the addressed part does not own.
    ///
    /// `track` records managedFields: after defaulting, before `prepare_for_update`.
    fn merge_system_fields(&self, s: &dyn Strategy, new: &mut Value, old: &Value, part: Part, track: &mut dyn FnMut(&mut Value)) {
        let inf = s.info();
        if part == Part::Finalize {
            let f = new["spec"]["finalizers"].clone();
            *new = old.clone();
            new["spec"]["finalizers"] = f;
            track(new);
            return;
        }
        if part == Part::Status {
            // Only status changes through /status (ResetObjectMetaForStatus).
            let status = new.get("status").cloned();
            *new = old.clone();
            match status {
                Some(st) => new["status"] = st,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            track(new);
            return;
        }
        {
            let omd = &old["metadata"];
            let md = meta::metadata_mut(new);
            for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace"] {
                match omd.get(f) {
                    Some(v) if !v.is_null() => {
                        md.insert(f.into(), v.clone());
                    }
                    _ => {
                        md.remove(f);
                    }
                }
            }
            md.insert("name".into(), omd["name"].clone());
            md.remove("selfLink");
            if md.get("managedFields").is_none() {
                if let Some(mf) = omd.get("managedFields") {
                    md.insert("managedFields".into(), mf.clone());
                }
            }
        }
        if inf.has_subresource("status") {
            match old.get("status") {
                Some(st) => new["status"] = st.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        s.default(new);
        track(new);
        s.prepare_for_update(new, old);
        if s.tracks_generation() && new.get("spec") != old.get("spec") {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta::metadata_mut(new).insert("generation".into(), json!(g));
        }
    }

    fn pending_finalizers(&self, s: &dyn Strategy, obj: &Value) -> bool {
        !meta::finalizers(obj).is_empty()
            || (s.info().plural == "namespaces"
                && s.info().group.is_empty()
                && obj["spec"]["finalizers"].as_array().map(|a| !a.is_empty()).unwrap_or(false))
    }

    /// DELETE with preconditions, propagation finalizers and graceful deletion.
    pub async fn delete(&self, s: &dyn Strategy, ns: &str, name: &str, o: &DeleteOpts) -> ApiResult<Deleted> {
        let inf = s.info();
        for _ in 0..64 {
            let Some((mut obj, rev)) = self.read_current(s, ns, name).await? else {
                return Err(ApiError::not_found(&inf.group, &inf.plural, name));
            };
            if let Some(uid) = &o.precondition_uid {
                if uid != meta::uid(&obj) {
                    return Err(ApiError::conflict(&inf.group, &inf.plural, name, &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::uid(&obj)
                    )));
                }
            }
            if let Some(prv) = &o.precondition_rv {
                if prv != meta::resource_version(&obj) {
                    return Err(ApiError::conflict(&inf.group, &inf.plural, name, &format!(
                        "Precondition failed: ResourceVersion in precondition: {prv}, ResourceVersion in object meta: {}",
                        meta::resource_version(&obj)
                    )));
                }
            }
            s.admit_delete(self, &obj)?;
            let key = inf.key(ns, name);
            let mut changed = false;
            match o.propagation.as_deref() {
                Some("Orphan") => changed |= add_finalizer(&mut obj, "orphan"),
                Some("Foreground") => changed |= add_finalizer(&mut obj, "foregroundDeletion"),
                None | Some("Background") => {}
                Some(p) => {
                    return Err(ApiError::invalid(&inf.group, &inf.kind, name, &[FieldError::not_supported(
                        "propagationPolicy", p, &["Foreground", "Background", "Orphan"],
                    )]))
                }
            }
            let deleting = meta::is_deleting(&obj);
            let grace = if deleting {
                let cur = obj["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
                match o.grace_period {
                    Some(g) if g < cur => g,
                    _ => cur,
                }
            } else {
                s.grace_period(&obj, o.grace_period)
            };
            if !deleting {
                s.prepare_for_delete(&mut obj);
                let md = meta::metadata_mut(&mut obj);
                md.insert("deletionTimestamp".into(), json!(meta::in_seconds(grace)));
                md.insert("deletionGracePeriodSeconds".into(), json!(grace));
                if let Some(g) = md.get("generation").and_then(|g| g.as_i64()) {
                    if g > 0 {
                        md.insert("generation".into(), json!(g + 1));
                    }
                }
                if inf.plural == "namespaces" && inf.group.is_empty() {
                    obj["status"]["phase"] = json!("Terminating");
                }
                changed = true;
            } else if grace < obj["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) {
                let md = meta::metadata_mut(&mut obj);
                md.insert("deletionTimestamp".into(), json!(meta::in_seconds(grace)));
                md.insert("deletionGracePeriodSeconds".into(), json!(grace));
                changed = true;
            }
            let keep = self.pending_finalizers(s, &obj) || grace > 0;
            if keep {
                if !changed {
                    return Ok(Deleted::Pending(obj));
                }
                if o.dry_run {
                    return Ok(Deleted::Pending(obj));
                }
                let bytes = Store::encode(s, &obj)?;
                match self.etcd().update(&key, bytes, rev).await {
                    Ok(nrev) => {
                        self.note_write(nrev);
                        meta::set_resource_version(&mut obj, nrev);
                        return Ok(Deleted::Pending(obj));
                    }
                    Err(StorageError::Conflict) if o.precondition_rv.is_none() => continue,
                    Err(e) => return Err(storage_err(e, s, name)),
                }
            }
            if o.dry_run {
                return Ok(Deleted::Gone(obj));
            }
            match self.etcd().delete(&key, rev).await {
                Ok(nrev) => {
                    self.note_write(nrev);
                    meta::set_resource_version(&mut obj, nrev);
                    return Ok(Deleted::Gone(obj));
                }
                Err(StorageError::Conflict) if o.precondition_rv.is_none() => continue,
                Err(StorageError::NotFound) => return Err(ApiError::not_found(&inf.group, &inf.plural, name)),
                Err(e) => return Err(storage_err(e, s, name)),
            }
        }
        Err(ApiError::stale(&inf.group, &inf.plural, name))
    }

    /// DELETE of every object a LIST with these options returns.
    pub async fn delete_collection(&self, s: &dyn Strategy, ns: &str, lo: &ListOpts, o: &DeleteOpts) -> ApiResult<Vec<Value>> {
        let page = self.list(s, ns, &ListOpts { limit: 0, continue_token: None, ..lo.clone() }).await?;
        let mut out = Vec::new();
        for item in page.items {
            match self.delete(s, &item.namespace, &item.name, o).await {
                Ok(Deleted::Gone(v)) | Ok(Deleted::Pending(v)) => out.push(v),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn add_finalizer(obj: &mut Value, f: &str) -> bool {
    let md = meta::metadata_mut(obj);
    let fins = md.entry("finalizers").or_insert_with(|| json!([]));
    if !fins.is_array() {
        *fins = json!([]);
    }
    let arr = fins.as_array_mut().unwrap();
    if arr.iter().any(|x| x == f) {
        return false;
    }
    arr.push(json!(f));
    true
}
