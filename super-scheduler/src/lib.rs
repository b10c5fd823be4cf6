//! The kplex super-scheduler: one global scheduler placing every tenant's pods on real nodes.
//!
//! It owns the virtual-node <-> real-node mapping. Nothing is implemented yet: it is built by
//! issue 6.
