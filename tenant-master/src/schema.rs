//! The schema of the built-in kinds: every message's fields (JSON name, type, cardinality,
//! protobuf tag) and the Go comment markers that drive merging (`+patchStrategy`,
//! `+patchMergeKey`, `+listType`, `+listMapKey`, `+mapType`, `+structType`).
//!
//! Loaded once from `schema.json`, which `hack/gen-schema.py` generates from the k8s-pb
//! crate (messages, tags, markers carried in its doc comments) and k8s-openapi (JSON
//! names, kinds). Protobuf decoding, strategic merge patch, server-side apply, unknown-field
//! validation and the OpenAPI extensions all read it, so they agree on what a field is.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// The wire/JSON type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Int32,
    Int64,
    Bool,
    Double,
    Bytes,
    /// Index into [`Schema::messages`].
    Message(usize),
}

/// How many values a field holds and how it shows in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// Singular, left out when zero.
    Omitempty,
    /// Singular, kept even when zero.
    Keep,
    Repeated,
    /// A map with string keys.
    Map,
    /// A Go embedded struct: its JSON fields go into the parent object.
    Inline,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    None,
    Time,
    MicroTime,
    Duration,
    RawJson,
    Quantity,
    IntOrString,
    OrArray,
    OrBool,
    OrStringArray,
    List,
}

/// Go comment markers of a field or type.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Markers {
    /// `+patchStrategy`: "merge", "replace", "retainKeys" or "merge,retainKeys".
    #[serde(rename = "ps")]
    pub patch_strategy: Option<String>,
    /// `+patchMergeKey`.
    #[serde(rename = "pk")]
    pub merge_key: Option<String>,
    /// `+listType`: "atomic", "set" or "map".
    #[serde(rename = "lt")]
    pub list_type: Option<String>,
    /// `+listMapKey`, in order.
    #[serde(rename = "lk", default)]
    pub list_map_keys: Vec<String>,
    /// `+mapType`: "atomic" or "granular".
    #[serde(rename = "mt")]
    pub map_type: Option<String>,
    /// `+structType`: "atomic" or "granular".
    #[serde(rename = "st")]
    pub struct_type: Option<String>,
}

impl Markers {
    /// Whether the strategic merge patch strategy includes `s` ("merge", "retainKeys", ...).
    pub fn has_strategy(&self, s: &str) -> bool {
        self.patch_strategy.as_deref().is_some_and(|p| p.split(',').any(|x| x == s))
    }
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    /// The JSON name; empty for an inline (embedded) message.
    pub name: String,
    pub ty: Ty,
    pub card: Card,
    pub markers: Markers,
}

/// One message (a Go struct of the Kubernetes API).
#[derive(Debug)]
pub struct Message {
    /// `group.version.Name`, e.g. `apps.v1.Deployment`.
    pub name: String,
    pub fields: Vec<Field>,
    pub special: Special,
    /// Type-level markers (`+structType=atomic`, ...).
    pub markers: Markers,
}

/// All messages and the kinds that name them.
pub struct Schema {
    pub messages: Vec<Message>,
    /// `<apiVersion>/<lowercased kind>` -> message index.
    pub kinds: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct RawSchema {
    kinds: HashMap<String, String>,
    special: HashMap<String, String>,
    #[serde(default)]
    types: HashMap<String, Markers>,
    #[serde(default)]
    markers: HashMap<String, HashMap<String, Markers>>,
    messages: HashMap<String, Vec<(u32, String, String, u8)>>,
}

/// The schema, parsed on first use.
pub static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let mut raw: RawSchema = serde_json::from_str(include_str!("schema.json")).expect("schema.json is valid");
    let mut names: Vec<String> = raw.messages.keys().cloned().collect();
    names.sort();
    let index: HashMap<String, usize> = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
    let messages = names
        .iter()
        .map(|name| {
            let mut field_markers = raw.markers.remove(name).unwrap_or_default();
            let fields = raw.messages[name]
                .iter()
                .map(|(tag, json, ty, card)| Field {
                    tag: *tag,
                    name: json.clone(),
                    ty: match ty.as_str() {
                        "string" => Ty::String,
                        "int32" => Ty::Int32,
                        "int64" => Ty::Int64,
                        "bool" => Ty::Bool,
                        "double" => Ty::Double,
                        "bytes" => Ty::Bytes,
                        m => Ty::Message(*index.get(m).unwrap_or_else(|| panic!("schema: unknown message {m}"))),
                    },
                    card: match card {
                        0 => Card::Omitempty,
                        1 => Card::Keep,
                        2 => Card::Repeated,
                        3 => Card::Map,
                        _ => Card::Inline,
                    },
                    markers: field_markers.remove(json).unwrap_or_default(),
                })
                .collect();
            let special = match raw.special.get(name).map(|s| s.as_str()) {
                None => Special::None,
                Some("time") => Special::Time,
                Some("microtime") => Special::MicroTime,
                Some("duration") => Special::Duration,
                Some("rawjson") => Special::RawJson,
                Some("quantity") => Special::Quantity,
                Some("intorstring") => Special::IntOrString,
                Some("orarray") => Special::OrArray,
                Some("orbool") => Special::OrBool,
                Some("orstringarray") => Special::OrStringArray,
                Some("list") => Special::List,
                Some(other) => panic!("schema: unknown special form {other}"),
            };
            let markers = raw.types.remove(name).unwrap_or_default();
            Message { name: name.clone(), fields, special, markers }
        })
        .collect();
    let kinds = raw.kinds.iter().map(|(k, m)| (k.clone(), index[m.as_str()])).collect();
    Schema { messages, kinds, by_name: index }
});

impl Schema {
    /// The message of a kind, e.g. `("apps/v1", "Deployment")`.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds.get(&format!("{api_version}/{}", kind.to_ascii_lowercase())).copied()
    }

    /// A message by its schema name, e.g. `core.v1.PodSpec`.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The field called `json` in message `msg`, looking through embedded messages.
    pub fn field(&self, msg: usize, json: &str) -> Option<&Field> {
        for f in &self.messages[msg].fields {
            if f.card == Card::Inline {
                if let Ty::Message(m) = f.ty {
                    if let Some(x) = self.field(m, json) {
                        return Some(x);
                    }
                }
            } else if f.name == json {
                return Some(f);
            }
        }
        None
    }

    /// Every JSON field of `msg`, embedded messages spliced in.
    pub fn json_fields(&self, msg: usize) -> Vec<&Field> {
        let mut out = Vec::new();
        for f in &self.messages[msg].fields {
            match (f.card, f.ty) {
                (Card::Inline, Ty::Message(m)) => out.extend(self.json_fields(m)),
                _ => out.push(f),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_markers() {
        let s = &*SCHEMA;
        let dep = s.kind("apps/v1", "Deployment").unwrap();
        let spec = s.field(dep, "spec").unwrap();
        let Ty::Message(spec) = spec.ty else { panic!() };
        assert_eq!(s.field(spec, "strategy").unwrap().markers.patch_strategy.as_deref(), Some("retainKeys"));
        let pod_spec = s.by_name("core.v1.PodSpec").unwrap();
        let c = s.field(pod_spec, "containers").unwrap();
        assert_eq!(c.card, Card::Repeated);
        assert_eq!(c.markers.merge_key.as_deref(), Some("name"));
        assert!(c.markers.has_strategy("merge"));
        let vols = s.field(pod_spec, "volumes").unwrap();
        assert!(vols.markers.has_strategy("retainKeys"));
        // Volume embeds VolumeSource: its fields are Volume's JSON fields.
        let Ty::Message(vol) = vols.ty else { panic!() };
        assert!(s.field(vol, "configMap").is_some());
        let ls = s.by_name("meta.v1.LabelSelector").unwrap();
        assert_eq!(s.messages[ls].markers.struct_type.as_deref(), Some("atomic"));
    }
}
