//! apiextensions.k8s.io: CustomResourceDefinitions and the custom resources they define.
//!
//! `schema` is the structural-schema engine (validation, defaulting, pruning of custom
//! resources against a CRD version's `openAPIV3Schema`).

pub mod schema;
