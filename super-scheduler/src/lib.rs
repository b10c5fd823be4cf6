//! The kplex super-scheduler: one global scheduler placing every tenant's pods on the super
//! cluster's real nodes, and the owner of the virtual-node view each tenant has of them.
//!
//! The core (`state`, `schedule` and the filter and score modules) is pure: a picture of the
//! nodes and pods of the super cluster plus in-flight reservations, and kube-scheduler's
//! algorithm over it, scoped per tenant. `cache` keeps that picture current from the super
//! cluster's API (kube watchers), `service` serves the syncer over gRPC, `metrics` exports
//! Prometheus metrics. docs/super-scheduler.md describes the design.

pub mod filters;
pub mod interpod;
pub mod labels;
pub mod message;
pub mod node;
pub mod pod;
pub mod policy;
pub mod quantity;
pub mod resources;
pub mod schedule;
#[cfg(test)]
mod schedule_tests;
pub mod scores;
pub mod spread;
pub mod state;

pub use schedule::{Outcome, PodRequest, Scheduler, SchedulerConfig};
