//! Controllers that run inside the tenant master, driven by the watch cache (no polling while
//! idle, no per-tenant thread pools). Each is one tokio task built from [`runtime`]'s pieces;
//! [`ALL`] lists them, and `--controllers` / `--disable-controllers` choose which run.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod endpointslicemirroring;
pub mod garbagecollector;
pub mod history;
pub mod job;
pub mod namespace;
pub mod podgc;
pub mod podutil;
pub mod recorder;
pub mod replicaset;
pub mod resourcequota;
pub mod rootcacert;
pub mod runtime;
pub mod satoken;
pub mod serviceaccount;
pub mod statefulset;
pub mod ttlafterfinished;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::registry::store::Store;
use runtime::Ctx;

type Start = fn(Ctx) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every built-in controller by the name upstream's kube-controller-manager gives it.
pub const ALL: &[(&str, Start)] = &[
    ("namespace", |c| Box::pin(namespace::run(c))),
    ("garbagecollector", |c| Box::pin(garbagecollector::run(c))),
    ("serviceaccount", |c| Box::pin(serviceaccount::run(c))),
    ("serviceaccount-token", |c| Box::pin(satoken::run(c))),
    ("root-ca-cert-publisher", |c| Box::pin(rootcacert::run(c))),
    ("replicaset", |c| Box::pin(replicaset::run_replicasets(c))),
    ("replicationcontroller", |c| Box::pin(replicaset::run_replication_controllers(c))),
    ("deployment", |c| Box::pin(deployment::run(c))),
    ("statefulset", |c| Box::pin(statefulset::run(c))),
    ("daemonset", |c| Box::pin(daemonset::run(c))),
    ("job", |c| Box::pin(job::run(c))),
    ("cronjob", |c| Box::pin(cronjob::run(c))),
    ("ttl-after-finished", |c| Box::pin(ttlafterfinished::run(c))),
    ("endpoint", |c| Box::pin(endpoints::run(c))),
    ("endpointslice", |c| Box::pin(endpointslice::run(c))),
    ("endpointslicemirroring", |c| Box::pin(endpointslicemirroring::run(c))),
    ("resourcequota", |c| Box::pin(resourcequota::run(c))),
    ("podgc", |c| Box::pin(podgc::run(c))),
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
