//! Controllers that run inside the tenant master, driven by the watch cache (no polling while
//! idle, no per-tenant thread pools). Each is one tokio task built from [`runtime`]'s pieces;
//! [`ALL`] lists them, and `--controllers` / `--disable-controllers` choose which run.

pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod namespace;
pub mod podgc;
pub mod podutil;
pub mod resourcequota;
pub mod runtime;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::registry::store::Store;
use runtime::Ctx;

type Start = fn(Ctx) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every built-in controller by the name upstream's kube-controller-manager gives it.
pub const ALL: &[(&str, Start)] = &[
    ("namespace", |c| Box::pin(namespace::run(c))),
    ("endpoint", |c| Box::pin(endpoints::run(c))),
    ("endpointslice", |c| Box::pin(endpointslice::run(c))),
    ("endpointslicemirroring", |c| Box::pin(endpointslicemirroring::run(c))),
    ("podgc", |c| Box::pin(podgc::run(c))),
    ("resourcequota", |c| Box::pin(resourcequota::run(c))),
];

/// Starts the controllers not named in `disabled` (names from [`ALL`]).
pub fn start(store: Arc<Store>, disabled: &[String], settings: runtime::ctx::Settings) {
    let ctx = Ctx::with_settings(store, settings);
    for (name, start) in ALL {
        if disabled.iter().any(|d| d == name) {
            continue;
        }
        tokio::spawn(start(ctx.clone()));
    }
}
