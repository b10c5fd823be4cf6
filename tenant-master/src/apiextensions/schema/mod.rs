//! Structural schemas of CustomResourceDefinitions, as upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema`: parsing an `openAPIV3Schema` into a
//! [`Structural`] schema (refusing non-structural ones with upstream's messages), and
//! defaulting, pruning and validating custom resources against it.
//!
//! - [`parse`]: `NewStructural` + `ValidateStructural` + the CRD's schema rules
//!   (`ValidateCustomResourceDefinitionOpenAPISchema`), defaults validated and pruned, CEL rules
//!   compiled (once, here) and their cost estimated. `accept`, `structural`, `node`.
//! - [`Structural::apply_defaults`]: non-nullable nulls dropped, defaults filled. `defaults`.
//! - [`Structural::prune`]: unknown fields dropped, `metadata` reduced to ObjectMeta. `prune`.
//! - [`Structural::validate`]: the OpenAPI validator (`validate`, `formats`), embedded
//!   resources (`objectmeta`), list-type set/map uniqueness (`listtype`), then the CEL rules
//!   (`cel`), with validation ratcheting of unchanged values on update.
//!
//! See docs/crd-schemas.md for what is simplified against upstream.

mod accept;
pub mod cel;
mod defaults;
pub mod formats;
mod listtype;
pub mod node;
mod objectmeta;
mod path;
mod prune;
mod render;
mod structural;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::Value;

use crate::api::status::{FieldError, FieldErrorKind};
pub use node::Node;

/// A parsed structural schema of one CRD version.
#[derive(Debug, Clone)]
pub struct Structural {
    /// The schema as given in the CRD (`spec.versions[].schema.openAPIV3Schema`).
    pub raw: Value,
    /// The parsed schema, with its patterns and CEL programs compiled.
    pub root: Arc<Node>,
}

/// Parses an `openAPIV3Schema`; the errors are the CRD's validation errors, with paths relative
/// to `field` (e.g. `spec.versions[0].schema.openAPIV3Schema`).
pub fn parse(schema: &Value, field: &str) -> Result<Structural, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut root = node::parse_node(schema, field, &mut errs);
    if !errs.is_empty() {
        return Err(errs);
    }
    let errs = accept::check(&mut root, field);
    if !errs.is_empty() {
        return Err(errs);
    }
    root.mark_rules();
    Ok(Structural { raw: schema.clone(), root: Arc::new(root) })
}

/// The fields a schema may set at its root when the status subresource is enabled (upstream's
/// `allowedFieldsAtRootSchema`), as JSON names.
const ROOT_FIELDS_WITH_STATUS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "required",
    "items",
    "properties",
    "externalDocs",
    "example",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
];

/// The extra check upstream makes of a version's schema when its status subresource is enabled:
/// only some fields at the root, and `type: object`. `field` as for [`parse`].
pub fn validate_status_subresource_root(schema: &Value, field: &str) -> Vec<FieldError> {
    let Some(obj) = schema.as_object() else { return Vec::new() };
    for (k, v) in obj {
        let zero = match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
            Value::Number(_) => false,
        };
        if zero {
            continue;
        }
        if k == "type" {
            if v.as_str() != Some("object") {
                return vec![render::invalid(
                    format!("{field}.type"),
                    v,
                    "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                )];
            }
            continue;
        }
        if !ROOT_FIELDS_WITH_STATUS.contains(&k.as_str()) {
            let allowed = "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations]";
            return vec![FieldError::invalid_rendered(
                field,
                schema.to_string(),
                format!("only {allowed} fields are allowed at the root of the schema if the status subresource is enabled"),
            )];
        }
    }
    Vec::new()
}

impl Structural {
    /// Fills `default`s into a custom resource (on create, update and when read from storage),
    /// after dropping nulls the schema does not allow and that have no default.
    pub fn apply_defaults(&self, obj: &mut Value) {
        defaults::prune_nulls(obj, Some(&self.root));
        defaults::default(obj, &self.root);
    }

    /// Removes fields the schema does not specify (unless `x-kubernetes-preserve-unknown-fields`);
    /// returns the removed fields' paths (for fieldValidation warnings), as `.spec.foo`.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune::prune_root(obj, &self.root)
    }

    /// Validates a custom resource (all of it but `metadata`'s generic checks); `old` is the
    /// stored object on update (transition rules, ratcheting). Errors already in `errs` that
    /// upstream counts as blocking keep the CEL rules from running, as upstream.
    pub fn validate(&self, obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
        let (res, _) = validate::Validator.node(&self.root, "", obj, old);
        let mut blocking = validate::to_field_errors("", res.errs, errs);
        objectmeta::validate("", obj, Some(&self.root), errs);
        if let Some(m) = obj.as_object() {
            let old_ok = match old.and_then(Value::as_object) {
                Some(o) => {
                    let mut e = Vec::new();
                    listtype::validate("", &self.root, o, &mut e);
                    e.is_empty()
                }
                None => true,
            };
            if old_ok {
                listtype::validate("", &self.root, m, errs);
            }
        }
        if !self.root.rules_below {
            return;
        }
        blocking = blocking
            || errs
                .iter()
                .any(|e| matches!(e.kind, FieldErrorKind::Required | FieldErrorKind::NotSupported(..) | FieldErrorKind::TooLong(_) | FieldErrorKind::TooMany));
        if blocking {
            errs.push(FieldError::invalid(
                "<nil>",
                Value::Null,
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
            return;
        }
        let mut budget = cel::RUNTIME_BUDGET;
        cel::validate_tree(&self.root, "", obj, old, true, errs, &mut budget, None, true);
    }
}
