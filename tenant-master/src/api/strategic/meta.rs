//! Patch metadata looked up in the built-in kinds' schema: which Go type a JSON key leads to,
//! and that field's patch strategy and merge key. This is what upstream's `PatchMetaFromStruct`
//! reads from struct tags; here it comes from `crate::schema`, so every kind is covered alike.

use crate::schema::{Card, Field, Special, Ty, SCHEMA};

use super::SmpError;

/// The Go type behind a position in an object, as far as patching cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Node {
    /// A struct: keys are its fields.
    Message(usize),
    /// A Go map (`map[string]T`): every key leads to `T`, without patch metadata.
    Map(Ty),
    /// A Go slice of `T` (a repeated field, or a list-typed message such as `ExtraValue`).
    List(Ty),
    /// A value whose JSON form is a scalar (strings, numbers, `Time`, `Quantity`, ...).
    Scalar(&'static str),
    /// A struct whose JSON form is free-form (`RawExtension`, apiextensions `JSON`, the
    /// `JSONSchemaPropsOr*` unions): upstream finds none of its keys among the struct's fields.
    Opaque(usize),
    /// No metadata: a field the schema does not know. Maps merge, lists are replaced.
    Unknown,
}

/// A field's patch metadata: its `patchStrategy` values and `patchMergeKey`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PatchMeta {
    pub strategies: Vec<String>,
    pub merge_key: String,
}

impl Node {
    /// The top-level node for an object of `api_version`/`kind`.
    pub(super) fn root(api_version: &str, kind: &str) -> Node {
        SCHEMA.kind(api_version, kind).map(Node::of_message).unwrap_or(Node::Unknown)
    }

    fn of_message(m: usize) -> Node {
        match SCHEMA.messages[m].special {
            Special::None => Node::Message(m),
            Special::RawJson | Special::OrArray | Special::OrBool | Special::OrStringArray => Node::Opaque(m),
            Special::List => Node::List(Ty::String),
            Special::Time | Special::MicroTime | Special::Duration | Special::Quantity | Special::IntOrString => {
                Node::Scalar("struct")
            }
        }
    }

    /// The node of a single value of type `ty`.
    pub(super) fn of_ty(ty: Ty) -> Node {
        match ty {
            Ty::Message(m) => Node::of_message(m),
            Ty::String => Node::Scalar("string"),
            Ty::Int32 => Node::Scalar("int32"),
            Ty::Int64 => Node::Scalar("int64"),
            Ty::Bool => Node::Scalar("bool"),
            Ty::Double => Node::Scalar("float64"),
            Ty::Bytes => Node::Scalar("slice"),
        }
    }

    fn of_field(f: &Field) -> Node {
        match f.card {
            Card::Map => Node::Map(f.ty),
            Card::Repeated => Node::List(f.ty),
            _ => Node::of_ty(f.ty),
        }
    }

    /// The Go kind name of the type, as upstream's `LookupPatchMeta.Name()` gives it.
    pub(super) fn kind_name(self) -> &'static str {
        match self {
            Node::Message(_) | Node::Opaque(_) => "struct",
            Node::Map(_) => "map",
            Node::List(_) => "slice",
            Node::Scalar(k) => k,
            Node::Unknown => "interface",
        }
    }

    /// `LookupPatchMetadataForStruct`: the type and metadata of the map-valued `key`.
    pub(super) fn lookup_struct(self, key: &str) -> Result<(Node, PatchMeta), SmpError> {
        match self {
            Node::Message(m) => Ok(match find_field(m, key) {
                Some(f) => (Node::of_field(f), meta_of(f)),
                None => (Node::Unknown, PatchMeta::default()),
            }),
            Node::Map(ty) => Ok((Node::of_ty(ty), PatchMeta::default())),
            Node::Opaque(m) => Err(SmpError::Other(format!(
                "unable to find api field in struct {} for the json field {key:?}",
                go_struct_name(m)
            ))),
            Node::List(_) | Node::Scalar(_) | Node::Unknown => Ok((Node::Unknown, PatchMeta::default())),
        }
    }

    /// `LookupPatchMetadataForSlice`: the element type and metadata of the list-valued `key`.
    pub(super) fn lookup_slice(self, key: &str) -> Result<(Node, PatchMeta), SmpError> {
        let (sub, meta) = self.lookup_struct(key)?;
        let elem = match sub {
            Node::List(ty) => Node::of_ty(ty),
            _ => Node::Unknown,
        };
        Ok((elem, meta))
    }
}

/// The field of message `m` that Go's JSON decoding would use for `key`: an exact match, else
/// the first case-insensitive one.
fn find_field(m: usize, key: &str) -> Option<&'static Field> {
    let schema: &'static crate::schema::Schema = &SCHEMA;
    schema.field(m, key).or_else(|| schema.json_fields(m).into_iter().find(|f| f.name.eq_ignore_ascii_case(key)))
}

fn meta_of(f: &Field) -> PatchMeta {
    PatchMeta {
        strategies: f
            .markers
            .patch_strategy
            .as_deref()
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        merge_key: f.markers.merge_key.clone().unwrap_or_default(),
    }
}

/// The Go name of a message: the schema's last name segment with protobuf's `Json` spelled as
/// Go's `JSON`.
fn go_struct_name(m: usize) -> String {
    let name = SCHEMA.messages[m].name.rsplit('.').next().unwrap_or("");
    match name.strip_prefix("Json") {
        Some(rest) => format!("JSON{rest}"),
        None => name.to_string(),
    }
}

/// `extractRetainKeysPatchStrategy`: whether `retainKeys` is among the strategies, and the
/// other strategy ("merge", "replace" or "").
pub(super) fn split_strategies(strategies: &[String]) -> Result<(bool, &str), SmpError> {
    const RETAIN: &str = "retainKeys";
    match strategies {
        [] => Ok((false, "")),
        [one] if one == RETAIN => Ok((true, "")),
        [one] => Ok((false, one.as_str())),
        [a, b] if a == RETAIN => Ok((true, b.as_str())),
        [a, b] if b == RETAIN => Ok((true, a.as_str())),
        _ => Err(SmpError::Other(format!("unexpected patch strategy: [{}]", strategies.join(" ")))),
    }
}
