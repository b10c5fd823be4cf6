//! Tests of the structural-schema engine, by area, checking upstream's messages.

mod cel_rules;
mod certmanager;
mod defaults_prune;
mod parse;
mod validate;

use serde_json::Value;

use super::{parse, Structural};
use crate::api::status::FieldError;

/// Field errors as upstream prints them: `field: body`.
pub fn msgs(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect()
}

pub const F: &str = "spec.versions[0].schema.openAPIV3Schema";

/// Parses a schema that must be accepted.
pub fn schema(s: Value) -> Structural {
    match parse(&s, F) {
        Ok(st) => st,
        Err(e) => panic!("schema refused: {:#?}", msgs(&e)),
    }
}

/// The errors refusing a schema.
pub fn refused(s: Value) -> Vec<String> {
    match parse(&s, F) {
        Ok(_) => panic!("schema accepted: {s}"),
        Err(e) => msgs(&e),
    }
}

/// The validation errors of an object (create).
pub fn check(st: &Structural, obj: Value) -> Vec<String> {
    let mut errs = Vec::new();
    st.validate(&obj, None, &mut errs);
    msgs(&errs)
}

/// The validation errors of an update.
pub fn check_update(st: &Structural, obj: Value, old: Value) -> Vec<String> {
    let mut errs = Vec::new();
    st.validate(&obj, Some(&old), &mut errs);
    msgs(&errs)
}
