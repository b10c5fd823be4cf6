//! Defaulting, as upstream's `defaulting.PruneNonNullableNullsWithoutDefaults` followed by
//! `defaulting.Default`: nulls where the schema is not nullable are dropped, or replaced by the
//! default when there is one; missing fields with a default get it (deep-copied), in objects,
//! array items and additionalProperties alike.

use serde_json::Value;

use super::node::{AdditionalProperties, Node};

fn field_schema<'a>(s: Option<&'a Node>, k: &str) -> Option<&'a Node> {
    let s = s?;
    match s.properties.get(k) {
        Some(p) => Some(p),
        None => match &s.additional_properties {
            Some(AdditionalProperties::Schema(a)) => Some(a),
            _ => None,
        },
    }
}

/// Removes non-nullable nulls that have no default.
pub fn prune_nulls(x: &mut Value, s: Option<&Node>) {
    match x {
        Value::Object(m) => {
            m.retain(|k, v| {
                let fs = field_schema(s, k);
                let drop = v.is_null() && fs.is_some_and(|f| !f.nullable && f.default.is_none());
                if !drop {
                    prune_nulls(v, fs);
                }
                !drop
            });
        }
        Value::Array(items) => {
            let is = s.and_then(|s| s.items.as_deref());
            for v in items {
                prune_nulls(v, is);
            }
        }
        _ => {}
    }
}

fn non_nullable_null(x: &Value, s: Option<&Node>) -> bool {
    x.is_null() && s.is_some_and(|s| !s.nullable)
}

/// Fills in defaults.
pub fn default(x: &mut Value, s: &Node) {
    match x {
        Value::Object(m) => {
            for (k, p) in &s.properties {
                let Some(d) = &p.default else { continue };
                let missing = match m.get(k) {
                    None => true,
                    Some(v) => non_nullable_null(v, Some(p)),
                };
                if missing {
                    m.insert(k.clone(), d.clone());
                }
            }
            let ap = match &s.additional_properties {
                Some(AdditionalProperties::Schema(a)) => Some(&**a),
                _ => None,
            };
            for (k, v) in m.iter_mut() {
                if let Some(p) = s.properties.get(k) {
                    default(v, p);
                } else if s.additional_properties.is_some() {
                    if non_nullable_null(v, ap) {
                        if let Some(d) = ap.and_then(|a| a.default.as_ref()) {
                            *v = d.clone();
                        }
                    }
                    if let Some(a) = ap {
                        default(v, a);
                    }
                }
            }
        }
        Value::Array(items) => {
            let Some(is) = s.items.as_deref() else { return };
            for v in items {
                if non_nullable_null(v, Some(is)) {
                    if let Some(d) = &is.default {
                        *v = d.clone();
                    }
                }
                default(v, is);
            }
        }
        _ => {}
    }
}
