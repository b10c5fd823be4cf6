//! Request parsing: the resource path (as upstream's RequestInfoFactory), query options and
//! content negotiation.

use std::collections::HashMap;

use http::HeaderMap;

use super::status::ApiError;

/// What a resource request addresses.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub subresource: String,
    /// Legacy `/watch/` path prefix.
    pub watch_path: bool,
}

/// A parsed API path.
#[derive(Debug, Clone)]
pub enum ApiPath {
    /// `/api` (legacy) or `/apis`.
    Root { legacy: bool },
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`.
    GroupVersion(String, String),
    Resource(Target),
}

/// Parses `/api/...` and `/apis/...` paths; None for anything else.
pub fn parse_path(path: &str) -> Option<ApiPath> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match segs.first().copied() {
        Some("api") => {
            if segs.len() == 1 {
                return Some(ApiPath::Root { legacy: true });
            }
            ("", segs[1], &segs[2..])
        }
        Some("apis") => match segs.len() {
            1 => return Some(ApiPath::Root { legacy: false }),
            2 => return Some(ApiPath::Group(segs[1].to_string())),
            _ => (segs[1], segs[2], &segs[3..]),
        },
        _ => return None,
    };
    if rest.is_empty() {
        return Some(ApiPath::GroupVersion(group.to_string(), version.to_string()));
    }
    let mut t = Target { group: group.into(), version: version.into(), ..Default::default() };
    let mut parts: Vec<&str> = rest.to_vec();
    if parts[0] == "watch" {
        t.watch_path = true;
        parts.remove(0);
    }
    if parts.len() >= 2 && parts[0] == "namespaces" {
        t.namespace = parts[1].to_string();
        if parts.len() > 2 && parts[2] != "status" && parts[2] != "finalize" {
            parts.drain(..2);
        } else {
            // The namespace object itself (and its status/finalize subresources).
            t.namespace.clear();
        }
    }
    t.resource = parts.first().map(|s| s.to_string()).unwrap_or_default();
    t.name = parts.get(1).map(|s| s.to_string()).unwrap_or_default();
    t.subresource = parts.get(2).map(|s| s.to_string()).unwrap_or_default();
    if parts.len() > 3 || t.resource.is_empty() {
        return None;
    }
    Some(ApiPath::Resource(t))
}

/// Query parameters (last value wins, as Go's url.Values.Get takes the first; duplicates are rare).
#[derive(Debug, Clone, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Result<Query, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
        let mut m = HashMap::new();
        for (k, v) in pairs {
            m.entry(k).or_insert(v);
        }
        Ok(Query(m))
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|s| s.as_str())
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| ApiError::bad_request(format!("invalid value for {k}: {v:?}"))),
        }
    }
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!("Invalid dryRun value: {v:?}: supported values: \"All\""))),
        }
    }
}

/// What the response should be rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    /// meta.k8s.io Table, with the version asked for.
    Table(&'static str),
    PartialMetadata(&'static str),
}

/// Picks the response form from the Accept header (the first acceptable entry wins).
pub fn negotiate(headers: &HeaderMap) -> Result<Output, ApiError> {
    let accept = headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    let mut saw_any = false;
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let mt = parts.next().unwrap_or("");
        let params: HashMap<&str, &str> = parts.filter_map(|p| p.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect();
        let json_like = matches!(mt, "application/json" | "application/*" | "*/*" | "application/yaml" | "application/json-seq");
        if !json_like {
            saw_any = true;
            continue;
        }
        match params.get("as").copied() {
            None => return Ok(Output::Json),
            Some("Table") if params.get("g") == Some(&"meta.k8s.io") => {
                return Ok(Output::Table(if params.get("v") == Some(&"v1beta1") { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" }));
            }
            Some("PartialObjectMetadata") | Some("PartialObjectMetadataList") if params.get("g") == Some(&"meta.k8s.io") => {
                return Ok(Output::PartialMetadata(if params.get("v") == Some(&"v1beta1") { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" }));
            }
            _ => continue,
        }
    }
    if saw_any {
        return Err(ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json, application/yaml (got {accept})"
        )));
    }
    Ok(Output::Json)
}

/// Decodes a request body (JSON, YAML or Kubernetes protobuf) into a JSON object.
pub fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let ct = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let mt = ct.split(';').next().unwrap_or("").trim();
    let v: serde_json::Value = match mt {
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?,
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("error decoding request body: json parse error: {e}"))
        })?,
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: protobuf: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "error decoding request body: the object must be a JSON or YAML mapping, not {}",
            match v { serde_json::Value::Array(_) => "a list", serde_json::Value::String(_) => "a string", serde_json::Value::Null => "null", _ => "a scalar" }
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        match parse_path("/api/v1/namespaces/default/pods/p1/status") {
            Some(ApiPath::Resource(t)) => {
                assert_eq!((t.namespace.as_str(), t.resource.as_str(), t.name.as_str(), t.subresource.as_str()), ("default", "pods", "p1", "status"))
            }
            other => panic!("{other:?}"),
        }
        match parse_path("/api/v1/namespaces/foo/finalize") {
            Some(ApiPath::Resource(t)) => assert_eq!((t.resource.as_str(), t.name.as_str(), t.subresource.as_str()), ("namespaces", "foo", "finalize")),
            other => panic!("{other:?}"),
        }
        match parse_path("/apis/apps/v1/deployments") {
            Some(ApiPath::Resource(t)) => assert_eq!((t.group.as_str(), t.resource.as_str(), t.namespace.as_str()), ("apps", "deployments", "")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_path("/apis"), Some(ApiPath::Root { legacy: false })));
        assert!(matches!(parse_path("/apis/apps"), Some(ApiPath::Group(_))));
        assert!(parse_path("/version").is_none());
    }
}
