//! PATCH: JSON patch, JSON merge patch and strategic merge patch applied to the current object.

use http::HeaderMap;
use serde_json::Value;

use super::status::ApiError;

/// The patch types kube-apiserver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_headers(h: &HeaderMap) -> Result<PatchType, ApiError> {
        let ct = h.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other})"),
            )),
        }
    }
}

/// Applies `body` of `typ` to `current`. Server-side apply is handled by the caller.
/// `strategic` says whether the kind has a Go schema (built-in kinds); custom resources do not
/// accept strategic merge patches.
pub fn apply_patch(typ: PatchType, current: &Value, body: &[u8], strategic: bool) -> Result<Value, ApiError> {
    match typ {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut out = current.clone();
            json_patch::patch(&mut out, &p).map_err(|e| ApiError::unprocessable_server_response(e.to_string()))?;
            Ok(out)
        }
        PatchType::Strategic if !strategic => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        )),
        PatchType::Strategic => {
            // Upstream decodes the body into a Go map and answers 400 when that fails.
            let p: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            let av = current["apiVersion"].as_str().unwrap_or("");
            let kind = current["kind"].as_str().unwrap_or("");
            Ok(super::strategic::strategic_merge_patch(current, &p, av, kind)?)
        }
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !p.is_object() {
                return Err(ApiError::bad_request("error decoding patch: a merge patch must be a JSON object"));
            }
            let mut out = current.clone();
            json_patch::merge(&mut out, &p);
            Ok(out)
        }
        PatchType::Apply => Err(ApiError::new(415, "UnsupportedMediaType", "server-side apply is not supported yet")),
    }
}
