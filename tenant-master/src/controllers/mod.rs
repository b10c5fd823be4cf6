//! Controllers that run inside the tenant master, driven by the watch cache (no polling while
//! idle, no per-tenant thread pools).

pub mod namespace;
