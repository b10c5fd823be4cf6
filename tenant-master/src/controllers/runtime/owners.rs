//! ownerReferences: who controls an object, and mappers from a dependent's changes to its
//! controller's key.

use serde_json::{json, Value};

use super::{Change, ObjKey};
use crate::storage::cache::CachedObject;

/// One entry of `metadata.ownerReferences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub controller: bool,
    pub block_owner_deletion: bool,
}

impl OwnerRef {
    pub fn parse(v: &Value) -> Option<OwnerRef> {
        Some(OwnerRef {
            api_version: v["apiVersion"].as_str()?.to_string(),
            kind: v["kind"].as_str()?.to_string(),
            name: v["name"].as_str()?.to_string(),
            uid: v["uid"].as_str()?.to_string(),
            controller: v["controller"].as_bool().unwrap_or(false),
            block_owner_deletion: v["blockOwnerDeletion"].as_bool().unwrap_or(false),
        })
    }

    /// All owner references of an object.
    pub fn all(obj: &Value) -> Vec<OwnerRef> {
        obj["metadata"]["ownerReferences"].as_array().into_iter().flatten().filter_map(OwnerRef::parse).collect()
    }

    /// The reference a controller puts on what it creates (controller and blockOwnerDeletion).
    pub fn controller_ref(owner: &Value) -> Value {
        json!({
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }
}

/// The controlling owner of an object, if any.
pub fn controller_of(obj: &Value) -> Option<OwnerRef> {
    OwnerRef::all(obj).into_iter().find(|o| o.controller)
}

fn controller_key(o: &CachedObject, kind: &str) -> Option<ObjKey> {
    let v = o.value();
    let c = controller_of(&v)?;
    (c.kind == kind).then(|| ObjKey::new(o.namespace.clone(), c.name))
}

/// A mapper queueing the controller (of kind `kind`, same namespace) of a changed dependent,
/// before and after the change (an adoption or release concerns both owners).
pub fn owner_keys(kind: &'static str) -> impl Fn(&Change) -> Vec<ObjKey> + Send + Sync + 'static {
    move |ch: &Change| {
        let mut keys = Vec::new();
        if let Some(o) = ch.object {
            keys.extend(controller_key(o, kind));
        }
        if let Some(p) = ch.prev {
            if let Some(k) = controller_key(p, kind) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys
    }
}
