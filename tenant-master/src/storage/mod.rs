//! Storage: etcd access, the watch cache, and the single etcd watch that feeds it.

pub mod cache;
pub mod dispatcher;
pub mod etcd;
pub mod trim;
