//! The kplex syncer: one process that multiplexes every tenant onto the super cluster.
//!
//! Downward sync (tenant -> super), upward sync (super -> tenant), a per-tenant fair queue and a
//! periodic patrol live here. Nothing is implemented yet: the syncer is built by issue 7, on top of
//! the tenant master (issue 2) and the super-scheduler (issue 6).
