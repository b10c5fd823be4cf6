//! Pod specs wherever they appear: in pods and in the templates of Deployments, ReplicaSets,
//! StatefulSets, DaemonSets, Jobs, CronJobs and ReplicationControllers. Defaulting, validation
//! and the pod update rules each live in their own file.

pub mod defaults;
pub mod update;
pub mod validation;
pub mod volumes;

pub use defaults::{default_pod_only, default_pod_spec, default_pod_template, pull_policy};
pub use validation::{validate_pod_spec, validate_template, Owner};
