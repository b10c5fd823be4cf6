//! OpenAPI documents as kube-apiserver serves them:
//!
//! * `/openapi/v2`: one Swagger 2.0 document, as JSON or as gnostic's protobuf
//!   (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, which kubectl asks for to
//!   explain, validate and strategic-merge with kubectl up to 1.27);
//! * `/openapi/v3`: an index of one OpenAPI 3.0 document per group version, each linked with
//!   `?hash=<etag>` so clients (client-go, kubectl's disk cache) can cache them for good;
//!   kubectl 1.28+ explains, validates (`fieldValidation` support) and patches from these.
//!
//! The documents are derived from k8s-openapi's schemars schemas and the markers of
//! [`crate::schema`] ([`definitions`]), and from the registry's resources ([`paths`]).
//! The built-in documents are the same for every tenant, so each is built on its first request
//! (off the async workers), kept process-wide gzip-compressed and served with an ETag (a SHA-512
//! of the JSON, as upstream) and `304 Not Modified`. A tenant serving custom resources gets
//! their documents on top ([`custom`]).

pub mod custom;
mod definitions;
mod model;
mod params;
mod paths;
mod proto;
mod v2;
mod v3;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

pub use model::Spec;

use crate::api::request::Query;
use crate::api::status::ApiError;
use crate::api::ApiState;
pub(crate) use crate::api::KUBE_GIT_VERSION;
use crate::registry::Registry;

/// Media type of the protobuf `/openapi/v2` (the `@` spelling is the older one clients send).
const V2_PROTO: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const V2_PROTO_OLD: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// Upper-case hex SHA-512 of `data`: upstream's ETag and `/openapi/v3` hash.
pub fn hash(data: &[u8]) -> String {
    use std::fmt::Write;
    let d = ring::digest::digest(&ring::digest::SHA512, data);
    d.as_ref().iter().fold(String::with_capacity(128), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// Builds what the documents say about `reg`.
pub fn spec(reg: &Registry) -> Spec {
    let d = definitions::build(reg);
    let groups = paths::build(reg, &d.names);
    Spec { definitions: d.definitions, v3_overrides: d.v3_overrides, groups }
}

/// The Swagger 2.0 document of `spec`, as JSON bytes.
pub fn v2_json(spec: &Spec) -> Vec<u8> {
    serde_json::to_vec(&v2::document(spec)).unwrap_or_default()
}

/// The gnostic protobuf of a Swagger 2.0 JSON document.
pub fn v2_proto(json: &[u8]) -> Vec<u8> {
    serde_json::from_slice(json).map(|v| proto::encode(&v)).unwrap_or_default()
}

/// Every `/openapi/v3` document of `spec` by key (`api/v1`, `apis/apps/v1`, ...), as JSON.
pub fn v3_json(spec: &Spec) -> BTreeMap<String, Vec<u8>> {
    spec.groups.iter().map(|(k, paths)| (k.clone(), serde_json::to_vec(&v3::document(spec, paths)).unwrap_or_default())).collect()
}

/// The `/openapi/v3` index: each document's URL with its hash.
pub fn v3_index(docs: &BTreeMap<String, Served>) -> Vec<u8> {
    let paths: serde_json::Map<String, serde_json::Value> = docs
        .iter()
        .map(|(k, d)| (k.clone(), serde_json::json!({"serverRelativeURL": server_relative_url(k, &d.etag)})))
        .collect();
    serde_json::to_vec(&serde_json::json!({"paths": paths})).unwrap_or_default()
}

fn server_relative_url(key: &str, etag: &str) -> String {
    format!("/openapi/v3/{key}?hash={etag}")
}

/// One document as served: gzip-compressed (the documents are megabytes of repetitive JSON;
/// kubectl and client-go accept gzip, others get it inflated per request) and its ETag, the
/// hash of the uncompressed bytes.
#[derive(Clone)]
pub struct Served {
    gzip: Bytes,
    pub etag: String,
}

impl Served {
    pub fn new(body: Vec<u8>) -> Served {
        use std::io::Write;
        let etag = hash(&body);
        let mut z = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 6), flate2::Compression::default());
        // Writing into a Vec cannot fail.
        let _ = z.write_all(&body);
        let mut gzip = z.finish().unwrap_or_default();
        // Kept for the life of the process: no spare capacity.
        gzip.shrink_to_fit();
        Served { gzip: Bytes::from(gzip), etag }
    }

    /// The uncompressed document.
    pub fn bytes(&self) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        let _ = flate2::read::GzDecoder::new(&self.gzip[..]).read_to_end(&mut out);
        out
    }

    /// The body for a client: the stored gzip when it accepts gzip (true), else inflated.
    fn body(&self, gzip_ok: bool) -> (Bytes, bool) {
        if gzip_ok { (self.gzip.clone(), true) } else { (Bytes::from(self.bytes()), false) }
    }
}

struct V2Docs {
    json: Served,
    proto: OnceLock<Served>,
    modified: String,
}

struct V3Docs {
    index: Served,
    docs: BTreeMap<String, Served>,
    modified: String,
}

static V2_DOCS: OnceLock<V2Docs> = OnceLock::new();
static V3_DOCS: OnceLock<V3Docs> = OnceLock::new();

fn http_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Runs `f` on a blocking thread (building a document takes a while) and hands back its result.
async fn off_workers<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Hands the memory freed after building a document back to the system. Building allocates
/// tens of MiB of short-lived JSON trees; glibc keeps freed heap pages mapped unless asked,
/// which would leave every tenant master that served OpenAPI once that much bigger.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn v2_docs() -> Option<&'static V2Docs> {
    if let Some(d) = V2_DOCS.get() {
        return Some(d);
    }
    off_workers(move || {
        V2_DOCS.get_or_init(|| {
            let json = v2_json(&spec(&Registry::builtin()));
            let d = V2Docs { json: Served::new(json), proto: OnceLock::new(), modified: http_date(chrono::Utc::now()) };
            release_freed_memory();
            d
        })
    })
    .await
}

async fn v2_proto_doc(d: &'static V2Docs) -> Option<&'static Served> {
    if let Some(p) = d.proto.get() {
        return Some(p);
    }
    off_workers(move || {
        d.proto.get_or_init(|| {
            let pb = Served::new(v2_proto(&d.json.bytes()));
            release_freed_memory();
            pb
        })
    })
    .await
}

async fn v3_docs() -> Option<&'static V3Docs> {
    if let Some(d) = V3_DOCS.get() {
        return Some(d);
    }
    off_workers(move || {
        V3_DOCS.get_or_init(|| {
            let docs: BTreeMap<String, Served> = v3_json(&spec(&Registry::builtin())).into_iter().map(|(k, v)| (k, Served::new(v))).collect();
            let index = Served::new(v3_index(&docs));
            release_freed_memory();
            V3Docs { index, docs, modified: http_date(chrono::Utc::now()) }
        })
    })
    .await
}

/// One clause of an Accept header.
struct Clause<'a> {
    ty: &'a str,
    sub: &'a str,
    q: f32,
}

/// Parses Accept as goautoneg does: by quality, then by how specific the type is.
fn accept_clauses(headers: &HeaderMap) -> Vec<Clause<'_>> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty()).unwrap_or("*/*");
    let mut out: Vec<Clause> = accept
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let (ty, sub) = parts.next()?.split_once('/')?;
            let q = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
            Some(Clause { ty, sub, q })
        })
        .filter(|c| c.q > 0.0)
        .collect();
    let specificity = |c: &Clause| (c.ty != "*") as u8 + (c.sub != "*") as u8;
    out.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal).then(specificity(b).cmp(&specificity(a))));
    out
}

/// The first of `offered` (full media types) the client accepts, in the client's order.
fn negotiate<'a>(headers: &HeaderMap, offered: &[&'a str]) -> Option<&'a str> {
    for c in accept_clauses(headers) {
        for o in offered {
            let (ty, sub) = o.split_once('/').unwrap_or((o, ""));
            if (c.ty == "*" || c.ty == ty) && (c.sub == "*" || c.sub == sub) {
                return Some(o);
            }
        }
    }
    None
}

/// Whether the client takes `Content-Encoding: gzip`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|e| {
        let mut parts = e.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let q = parts.filter_map(|p| p.strip_prefix("q=")).find_map(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
    })
}

/// Whether If-None-Match names `etag` (or is `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/").trim_matches('"') == etag
    })
}

/// A document response: ETag, Vary, Last-Modified, gzip when the client takes it, and `304`
/// when the client has it already.
fn document(headers: &HeaderMap, content_type: &str, doc: &Served, modified: &str, extra: &[(header::HeaderName, String)]) -> Response {
    let mut h = HeaderMap::new();
    h.insert(header::ETAG, HeaderValue::from_str(&format!("\"{}\"", doc.etag)).unwrap_or(HeaderValue::from_static("\"\"")));
    h.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k.clone(), v);
        }
    }
    if not_modified(headers, &doc.etag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let (body, gzip) = doc.body(accepts_gzip(headers));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    (StatusCode::OK, h, body).into_response()
}

fn unavailable() -> Response {
    ApiError::new(503, "ServiceUnavailable", "the OpenAPI document could not be built").into_response()
}

/// Serves `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<group-version>`.
pub async fn serve(st: &ApiState, method: &Method, path: &str, q: &Query, headers: &HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return ApiError::method_not_supported("", method.as_str()).into_response();
    }
    let reg = st.store.registry.clone();
    let tenant = custom::docs(&st.store.openapi, reg).await;
    let path = path.trim_end_matches('/');
    if path == "/openapi/v2" {
        let Some(ct) = negotiate(headers, &["application/json", V2_PROTO_OLD, V2_PROTO]) else {
            return StatusCode::NOT_ACCEPTABLE.into_response();
        };
        if let Some(t) = tenant {
            let Some(doc) = custom::v2(t.clone(), ct != "application/json").await else { return unavailable() };
            let ct = if ct == "application/json" { ct } else { V2_PROTO };
            return document(headers, ct, &doc, &t.modified, &[]);
        }
        let Some(d) = v2_docs().await else { return unavailable() };
        if ct == "application/json" {
            return document(headers, ct, &d.json, &d.modified, &[]);
        }
        let Some(pb) = v2_proto_doc(d).await else { return unavailable() };
        // Upstream gives both forms the JSON's ETag.
        let pb = Served { gzip: pb.gzip.clone(), etag: d.json.etag.clone() };
        return document(headers, V2_PROTO, &pb, &d.modified, &[]);
    }
    let Some(rest) = path.strip_prefix("/openapi/v3") else {
        return ApiError::not_found_path().into_response();
    };
    let Some(d) = v3_docs().await else { return unavailable() };
    let key = rest.trim_start_matches('/');
    if key.is_empty() {
        if let Some(t) = &tenant {
            return document(headers, "application/json", &t.index, &t.modified, &[]);
        }
        return document(headers, "application/json", &d.index, &d.modified, &[]);
    }
    let Some(doc) = tenant.as_ref().and_then(|t| t.v3.get(key)).or_else(|| d.docs.get(key)) else {
        return ApiError::not_found_path().into_response();
    };
    if negotiate(headers, &["application/json"]).is_none() {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    }
    let mut extra = Vec::new();
    if let Some(h) = q.get("hash").filter(|h| !h.is_empty()) {
        if h != doc.etag {
            // An old hash: send the client to the current document.
            let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&server_relative_url(key, &doc.etag)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        // The URL names this exact content: it never changes.
        extra.push((header::CACHE_CONTROL, "public, immutable".to_string()));
        extra.push((header::EXPIRES, http_date(chrono::Utc::now() + chrono::Duration::days(365))));
    }
    document(headers, "application/json", doc, &d.modified, &extra)
}
