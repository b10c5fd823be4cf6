//! Controllers that run inside the tenant master, driven by the watch cache (no polling while
//! idle, no per-tenant thread pools). Each is one tokio task built from [`runtime`]'s pieces;
//! [`ALL`] lists them, and `--controllers` / `--disable-controllers` choose which run.

pub mod deployment;
pub mod namespace;
pub mod podutil;
pub mod recorder;
pub mod replicaset;
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
    ("replicaset", |c| Box::pin(replicaset::run_replicasets(c))),
    ("deployment", |c| Box::pin(deployment::run(c))),
    ("replicationcontroller", |c| Box::pin(replicaset::run_replication_controllers(c))),
];

/// Starts the controllers not named in `disabled` (names from [`ALL`]).
pub fn start(store: Arc<Store>, disabled: &[String]) {
    let ctx = Ctx::new(store);
    for (name, start) in ALL {
        if disabled.iter().any(|d| d == name) {
            continue;
        }
        tokio::spawn(start(ctx.clone()));
    }
}
