//! apiextensions.k8s.io: CustomResourceDefinitions and the custom resources they define, as
//! kube-apiserver's apiextensions-apiserver serves them. Each tenant master has its own CRDs
//! (its own etcd prefix and registry), so tenants can run different versions of the same CRD.
//!
//! * [`definition`]: the `customresourcedefinitions` resource (defaulting, [`validation`],
//!   table, the cleanup finalizer on delete); [`model`] reads CRD objects.
//! * [`resource`]: the strategy of each served version of a custom resource (storage version,
//!   conversion None, pruning, defaulting and validation through [`schema`], printer columns
//!   via [`jsonpath`], status and scale subresources, server-side apply typed by [`smd`]).
//! * Controllers, always running (they are part of the API server upstream): [`naming`]
//!   (NamesAccepted, Established), [`finalizer`] (deleting a CRD deletes its custom
//!   resources) and [`serving`] (registers established CRDs in the registry, which discovery
//!   and the OpenAPI documents read, and unregisters them).
//! * [`openapi`]: the custom resources' part of `/openapi/v2` and `/openapi/v3`.
//!
//! `schema` is the structural-schema engine (validation, defaulting, pruning of custom
//! resources against a CRD version's `openAPIV3Schema`).

pub mod definition;
pub mod finalizer;
pub mod jsonpath;
pub mod model;
pub mod naming;
pub mod openapi;
pub mod resource;
pub mod schema;
pub mod serving;
pub mod smd;
pub mod validation;

use std::sync::Arc;

use crate::controllers::runtime::{Ctx, Res};
use crate::registry::store::Store;

/// The CustomResourceDefinition resource.
pub const CRDS: Res = Res::new(model::GROUP, "v1", "customresourcedefinitions");

/// Registers the established CRDs found in storage (call before serving), then starts the CRD
/// controllers.
pub fn start(store: Arc<Store>) {
    let served = Arc::new(serving::Served::default());
    serving::sync_all(&store, &served);
    let ctx = Ctx::new(store);
    tokio::spawn(serving::run(ctx.clone(), served.clone()));
    tokio::spawn(naming::run(ctx.clone(), served));
    tokio::spawn(finalizer::run(ctx));
}
