//! The kplex super-scheduler: one global scheduler placing every tenant's pods on the super
//! cluster's real nodes, and the owner of the virtual-node view each tenant has of them.
//!
//! The core (`state`, `schedule` and the filter and score modules) is pure: a picture of the
//! nodes and pods of the super cluster plus in-flight reservations, and kube-scheduler's
//! algorithm over it, scoped per tenant. `cache` keeps that picture current from the super
//! cluster's API (kube watchers), `service` serves the syncer over gRPC, `metrics` exports
//! Prometheus metrics. docs/super-scheduler.md describes the design.

pub mod cache;
pub mod classes;
pub mod filters;
pub mod interpod;
pub mod labels;
pub mod message;
pub mod metrics;
pub mod node;
pub mod pod;
pub mod policy;
pub mod quantity;
pub mod resources;
pub mod schedule;
#[cfg(test)]
mod schedule_tests;
pub mod scores;
pub mod service;
pub mod spread;
pub mod state;

pub use schedule::{Outcome, PodRequest, Scheduler, SchedulerConfig};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The gRPC contract (proto/scheduler.proto): messages, client and server.
pub mod proto {
    tonic::include_proto!("kplex.scheduler.v1");
}

/// A gRPC client of the super-scheduler (`SchedulerClient::connect("http://127.0.0.1:10260")`).
pub type SchedulerClient = proto::super_scheduler_client::SuperSchedulerClient<tonic::transport::Channel>;
/// The stream `WatchChanges` answers with.
pub type ChangeStream = tonic::Streaming<proto::ClusterChange>;

/// Options of `kplex super-scheduler`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// kubeconfig of the super cluster (default: the usual kubeconfig or in-cluster config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Address of the gRPC API (plaintext; keep it on a trusted network).
    #[arg(long, default_value = "127.0.0.1:10260")]
    pub listen: SocketAddr,
    /// Address of the Prometheus metrics endpoint (/metrics).
    #[arg(long, default_value = "127.0.0.1:10261")]
    pub metrics_listen: SocketAddr,
    /// A further node label key tenants see on their virtual nodes (repeatable).
    #[arg(long = "node-label")]
    pub node_labels: Vec<String>,
    /// A node label key prefix tenants see on their virtual nodes (repeatable).
    #[arg(long = "node-label-prefix")]
    pub node_label_prefixes: Vec<String>,
    /// Tenant policies as VirtualCluster objects (YAML or JSON), for super clusters without the
    /// VirtualCluster resource; VirtualClusters override them.
    #[arg(long)]
    pub policy_file: Option<PathBuf>,
    /// Do not watch VirtualClusters.
    #[arg(long)]
    pub no_virtual_clusters: bool,
    /// Seconds a reservation waits for its super pod.
    #[arg(long, default_value_t = 300)]
    pub reservation_ttl_seconds: u64,
    /// kube-scheduler's percentageOfNodesToScore (0: adaptive).
    #[arg(long, default_value_t = 0)]
    pub percentage_of_nodes_to_score: u32,
}

/// A running super-scheduler.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub shared: Arc<service::Shared>,
}

/// Connects to the super cluster, fills the caches, then serves gRPC and metrics.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    use anyhow::Context;
    let client = match &cfg.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?)?
        }
        None => kube::Client::try_default().await?,
    };
    let file_policies = match &cfg.policy_file {
        Some(p) => cache::read_policy_file(p).with_context(|| format!("reading {}", p.display()))?,
        None => Default::default(),
    };
    let state = state::ClusterState::new(node::VirtualNodePolicy::with(&cfg.node_labels, &cfg.node_label_prefixes));
    let sched_cfg = SchedulerConfig {
        percentage_of_nodes_to_score: cfg.percentage_of_nodes_to_score,
        reservation_ttl: Duration::from_secs(cfg.reservation_ttl_seconds),
        ..Default::default()
    };
    let handle = metrics::install()?;
    let mut shared = service::Shared::new(Scheduler::new(state, sched_cfg), file_policies);
    shared.metrics = Some(handle.clone());
    let shared = Arc::new(shared);
    cache::start(client, shared.clone(), !cfg.no_virtual_clusters).await?;
    shared.with_state(|_| ());
    tokio::spawn(shared.clone().expire_reservations());
    let metrics_addr = metrics::serve(cfg.metrics_listen, handle).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let grpc_addr = listener.local_addr()?;
    let svc = proto::super_scheduler_server::SuperSchedulerServer::new(service::Service(shared.clone()))
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20);
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        if let Err(e) = tonic::transport::Server::builder().add_service(svc).serve_with_incoming(incoming).await {
            tracing::error!("gRPC server: {e}");
        }
    });
    Ok(Running { grpc_addr, metrics_addr, shared })
}
