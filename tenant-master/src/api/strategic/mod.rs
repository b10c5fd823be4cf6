//! Strategic merge patch (`application/strategic-merge-patch+json`) as kube-apiserver applies
//! it: apimachinery's `strategicpatch.StrategicMergeMapPatch`, with the patch metadata (merge
//! strategy, merge key) of every field taken from `crate::schema`.
//!
//! Maps merge key by key and `null` deletes; lists with the `merge` strategy merge by their
//! merge key (or as sets, for scalars); other lists are replaced. The directives `$patch`
//! (`replace`, `delete`), `$retainKeys`, `$setElementOrder/<field>` and
//! `$deleteFromPrimitiveList/<field>` work as upstream's, and so does the order of merged
//! lists. Errors carry the status upstream answers with: 400 and 422 for the few errors its
//! patch handler recognises, 500 for the rest.

mod gofmt;
mod merge;
mod meta;
mod order;
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::status::ApiError;
use meta::Node;

/// `mergepatch.ErrBadPatchFormatForPrimitiveList`.
const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
/// `mergepatch.ErrBadPatchFormatForRetainKeys`.
const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
/// `mergepatch.ErrBadPatchFormatForSetElementOrderList`.
const ERR_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
/// `mergepatch.ErrNoListOfLists`.
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";

/// Why a strategic merge patch failed, grouped by the HTTP status upstream answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmpError {
    /// A malformed patch that the patch handler maps to 400 BadRequest.
    BadRequest(String),
    /// A patch the patch handler maps to 422 (lists of lists).
    Unprocessable(String),
    /// Any other merge error: upstream passes it on as a plain error, answered as 500 with
    /// no reason.
    Other(String),
    /// A patch on which upstream's Go code panics (comparing or hashing maps, a null first
    /// list item); the apiserver's panic recovery answers 500.
    Panic(String),
}

impl From<SmpError> for ApiError {
    fn from(e: SmpError) -> ApiError {
        match e {
            SmpError::BadRequest(m) => ApiError::bad_request(m),
            SmpError::Unprocessable(m) => ApiError::unprocessable_server_response(m),
            SmpError::Other(m) => ApiError::new(500, "", m),
            SmpError::Panic(detail) => {
                tracing::error!("strategic merge patch: upstream panics here: {detail}");
                ApiError::new(500, "InternalError", "This request caused apiserver to panic. Look in the logs for details.")
            }
        }
    }
}

/// Applies the strategic merge `patch` to `original`, an object of `api_version`/`kind`.
///
/// `patch` is the decoded request body; as in upstream, a JSON `null` body changes nothing and
/// anything but an object or null is a bad request. Kinds missing from the schema merge without
/// patch metadata (maps merge, lists are replaced), like fields the schema does not know.
pub fn strategic_merge_patch(original: &Value, patch: &Value, api_version: &str, kind: &str) -> Result<Value, SmpError> {
    let patch = match patch {
        Value::Object(p) => p.clone(),
        Value::Null => return Ok(original.clone()),
        other => {
            let what = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            return Err(SmpError::BadRequest(format!(
                "json: cannot unmarshal {what} into Go value of type map[string]interface {{}}"
            )));
        }
    };
    let original = original.as_object().cloned().unwrap_or_default();
    let root = Node::root(api_version, kind);
    let mut out = Value::Object(merge::merge_map(original, patch, root)?);
    drop_directive_keys(&mut out, root);
    Ok(out)
}

/// Removes directive keys that reached the result inside structs (in values the patch added or
/// replaced wholesale): upstream decodes the result into the Go type, where they are no field.
fn drop_directive_keys(v: &mut Value, node: Node) {
    match (v, node) {
        (Value::Object(m), Node::Message(_)) => {
            m.retain(|k, _| !merge::is_directive_key(k));
            for (k, x) in m.iter_mut() {
                if let Ok((sub, _)) = node.lookup_struct(k) {
                    drop_directive_keys(x, sub);
                }
            }
        }
        (Value::Object(m), Node::Map(ty)) => m.values_mut().for_each(|x| drop_directive_keys(x, Node::of_ty(ty))),
        (Value::Array(a), Node::List(ty)) => a.iter_mut().for_each(|x| drop_directive_keys(x, Node::of_ty(ty))),
        _ => {}
    }
}
