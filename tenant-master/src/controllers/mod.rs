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

/// Every built-in controller by the name upstream's kube-controller-manager gives it, with the
/// component its Events name as their source (`kubectl describe` shows it under "From").
pub const ALL: &[(&str, &str, Start)] = &[
    ("namespace", "namespace-controller", |c| Box::pin(namespace::run(c))),
    ("garbagecollector", "garbage-collector-controller", |c| Box::pin(garbagecollector::run(c))),
    ("serviceaccount", "serviceaccount-controller", |c| Box::pin(serviceaccount::run(c))),
    ("serviceaccount-token", "serviceaccount-token-controller", |c| Box::pin(satoken::run(c))),
    ("root-ca-cert-publisher", "root-ca-cert-publisher", |c| Box::pin(rootcacert::run(c))),
    ("replicaset", "replicaset-controller", |c| Box::pin(replicaset::run_replicasets(c))),
    ("replicationcontroller", "replication-controller", |c| Box::pin(replicaset::run_replication_controllers(c))),
    ("deployment", "deployment-controller", |c| Box::pin(deployment::run(c))),
    ("statefulset", "statefulset-controller", |c| Box::pin(statefulset::run(c))),
    ("daemonset", "daemonset-controller", |c| Box::pin(daemonset::run(c))),
    ("job", "job-controller", |c| Box::pin(job::run(c))),
    ("cronjob", "cronjob-controller", |c| Box::pin(cronjob::run(c))),
    ("ttl-after-finished", "ttl-after-finished-controller", |c| Box::pin(ttlafterfinished::run(c))),
    ("endpoint", "endpoint-controller", |c| Box::pin(endpoints::run(c))),
    ("endpointslice", "endpoint-slice-controller", |c| Box::pin(endpointslice::run(c))),
    ("endpointslicemirroring", "endpoint-slice-mirroring-controller", |c| Box::pin(endpointslicemirroring::run(c))),
    ("resourcequota", "resourcequota-controller", |c| Box::pin(resourcequota::run(c))),
    ("podgc", "pod-garbage-collector", |c| Box::pin(podgc::run(c))),
];

/// Starts the controllers not named in `disabled` (names from [`ALL`]).
pub fn start(store: Arc<Store>, disabled: &[String], settings: runtime::ctx::Settings) {
    let ctx = Ctx::with_settings(store, settings);
    for (name, component, start) in ALL {
        if disabled.iter().any(|d| d == name) {
            continue;
        }
        tokio::spawn(start(ctx.for_component(component)));
    }
}
