//! Strategic merge patch (application/strategic-merge-patch+json).

use serde_json::Value;

/// Applies a strategic merge patch to `original` for an object of `api_version`/`kind`.
pub fn strategic_merge_patch(original: &Value, patch: &Value, _api_version: &str, _kind: &str) -> Result<Value, String> {
    let mut out = original.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}
