//! Structural schemas of CustomResourceDefinitions, as upstream's
//! `apiextensions-apiserver/pkg/apiserver/schema`: parsing an `openAPIV3Schema` into a
//! [`Structural`] schema (refusing non-structural ones), and validating, defaulting and pruning
//! custom resources against it.
//!
//! INTERFACE ONLY (coordinator, during the CRD work): the CRD-serving branch calls these
//! functions; the schema branch replaces the bodies below with the real engine. Until then
//! parsing accepts any object and the other operations do nothing.

use serde_json::Value;

use crate::api::status::FieldError;

/// A parsed structural schema of one CRD version.
#[derive(Debug, Clone)]
pub struct Structural {
    /// The schema as given in the CRD (`spec.versions[].schema.openAPIV3Schema`).
    pub raw: Value,
}

/// Parses an `openAPIV3Schema`; the errors are the CRD's validation errors, with paths relative
/// to `field` (e.g. `spec.versions[0].schema.openAPIV3Schema`).
pub fn parse(schema: &Value, field: &str) -> Result<Structural, Vec<FieldError>> {
    let _ = field;
    Ok(Structural { raw: schema.clone() })
}

impl Structural {
    /// Fills `default`s into a custom resource (on create, update and when read from storage).
    pub fn apply_defaults(&self, _obj: &mut Value) {}

    /// Removes fields the schema does not specify (unless `x-kubernetes-preserve-unknown-fields`);
    /// returns the removed fields' paths (for fieldValidation warnings), as `.spec.foo`.
    pub fn prune(&self, _obj: &mut Value) -> Vec<String> {
        Vec::new()
    }

    /// Validates a custom resource (all of it but `metadata`'s generic checks); `old` is the
    /// stored object on update (transition rules, ratcheting).
    pub fn validate(&self, _obj: &Value, _old: Option<&Value>, _errs: &mut Vec<FieldError>) {}
}
