//! The Kubernetes HTTP API of a tenant master.

pub mod apply;
pub mod discovery;
pub mod fieldvalidation;
pub mod gofmt;
pub mod handlers;
pub mod patch;
pub mod protobuf;
pub mod request;
pub mod selectors;
pub mod status;
pub mod strategic;
pub mod subresources;
pub mod table;
pub mod watch;

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;

use crate::auth::User;
use crate::registry::store::Store;
use request::{parse_path, ApiPath, Query};
use status::ApiError;

/// Upstream's limit on request bodies (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The Kubernetes version whose API is served (k8s-openapi's v1_33 types).
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";
pub const KUBE_GIT_VERSION: &str = "v1.33.1";

/// Shared state of the HTTP API.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    /// host:port clients reach this server at (for /api's serverAddressByClientCIDRs).
    pub server_addr: Arc<String>,
}

fn version_json() -> serde_json::Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "emulationMajor": KUBE_MAJOR,
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": KUBE_MAJOR,
        "minCompatibilityMinor": "32",
        "gitVersion": KUBE_GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "kplex (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

fn text(code: StatusCode, s: &'static str) -> Response {
    (code, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], s).into_response()
}

/// Whether a path may be read without credentials (health probes only).
pub fn is_public(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    matches!(p, "/healthz" | "/livez" | "/readyz") || p.starts_with("/healthz/") || p.starts_with("/livez/") || p.starts_with("/readyz/")
}

/// Serves one authenticated request.
pub async fn serve(st: ApiState, req: Request<Body>, user: Option<User>) -> Response {
    let path = req.uri().path().to_string();
    if user.is_none() && !is_public(&path) {
        return ApiError::unauthorized().into_response();
    }
    let method = req.method().clone();
    let q = match Query::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let declared = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.map(|n| n > MAX_BODY_BYTES).unwrap_or(false) {
        // Refuse before reading (and before any `100 Continue`), as upstream does.
        return ApiError::too_large(format!("Request entity too large: limit is {MAX_BODY_BYTES}")).into_response();
    }
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body = match http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return ApiError::too_large(format!("Request entity too large: limit is {MAX_BODY_BYTES}")).into_response();
        }
    };
    let p = path.trim_end_matches('/');
    match p {
        "/version" => return handlers::json_response(StatusCode::OK, &version_json()),
        "/healthz" | "/livez" | "/readyz" | "/healthz/ping" | "/livez/ping" | "/readyz/ping" => return text(StatusCode::OK, "ok"),
        "" => {
            let paths = json!({"paths": ["/.well-known/openid-configuration", "/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version", "/openapi/v2", "/openapi/v3", "/openid/v1/jwks"]});
            return handlers::json_response(StatusCode::OK, &paths);
        }
        _ => {}
    }
    if method == Method::GET {
        if let Some(r) = crate::serviceaccount::serve_discovery(&st.store, p, &st.server_addr) {
            return r;
        }
    }
    if p.starts_with("/openapi/") {
        return crate::openapi::serve(&st, &method, p, &q, &headers).await;
    }
    let Some(ap) = parse_path(&path) else {
        return ApiError::not_found_path().into_response();
    };
    let reg = &st.store.registry;
    match ap {
        ApiPath::Root { legacy } => {
            if method != Method::GET {
                return ApiError::method_not_supported("", method.as_str()).into_response();
            }
            if let Some(v) = discovery::aggregated(&headers) {
                let body = discovery::aggregated_list(reg, legacy, v);
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                return (StatusCode::OK, [(http::header::CONTENT_TYPE, discovery::aggregated_content_type(v))], bytes).into_response();
            }
            if legacy {
                handlers::json_response(StatusCode::OK, &discovery::api_versions(&st.server_addr))
            } else {
                handlers::json_response(StatusCode::OK, &discovery::api_group_list(reg))
            }
        }
        ApiPath::Group(g) => match discovery::api_group(reg, &g) {
            Some(v) => handlers::json_response(StatusCode::OK, &v),
            None => ApiError::not_found_path().into_response(),
        },
        ApiPath::GroupVersion(g, v) => match discovery::resource_list(reg, &g, &v) {
            Some(v) => handlers::json_response(StatusCode::OK, &v),
            None => ApiError::not_found_path().into_response(),
        },
        ApiPath::Resource(t) => handlers::handle(&st, &method, &t, &q, &headers, body).await,
    }
}
