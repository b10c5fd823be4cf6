//! kplex node simulator (`kplex node-simulator`): kwok-like simulated nodes for a super cluster.
//!
//! It registers N nodes with realistic labels, capacity and taints, keeps their Leases and
//! status fresh as a kubelet does, and runs every pod bound to them (`spec.nodeName`, set by
//! the syncer or anyone) through the kubelet's lifecycle: ContainerCreating, init containers,
//! Running with an IP from the node's podCIDR, exits and restarts, graceful deletion. It talks
//! to the cluster only through the standard Kubernetes API (kube crate), so it works against
//! a kplex super cluster or any real API server. See docs/node-simulator.md.

pub mod api;
pub mod hooks;
pub mod layout;
pub mod metrics;
pub mod net;
pub mod node;
pub mod pod;
pub mod podstatus;
pub mod quantity;
pub mod register;
pub mod sim;
mod simpods;
pub mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

/// Options of `kplex node-simulator`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Kubeconfig of the cluster to simulate nodes for (default: $KUBECONFIG, ~/.kube/config,
    /// or the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Number of nodes (default 3 without --config; with it, shared among pools with a weight).
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Node names are `<prefix>-<pool>-<i>`; nodes a run with this prefix created and no longer
    /// in the layout are deleted at start.
    #[arg(long, default_value = "kplex-node")]
    pub name_prefix: String,
    /// YAML or JSON file describing node pools (see docs/node-simulator.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The pod network each node's podCIDR is carved out of.
    #[arg(long, default_value = "10.244.0.0/14")]
    pub pod_cidr_base: String,
    /// Prefix length of each node's podCIDR (as kube-controller-manager's flag).
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Where to serve /metrics (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_listen: String,
    /// How long a pod stays in ContainerCreating (sandbox, image pull), and how long each init
    /// container runs. 0 reports a new pod Running in one write.
    #[arg(long, default_value = "1s", value_parser = util::parse_duration)]
    pub pod_start_delay: Duration,
    /// The node Lease's duration; it is renewed every quarter of it (the kubelet's 40s / 10s).
    #[arg(long, default_value = "40s", value_parser = util::parse_duration)]
    pub node_lease_duration: Duration,
    /// How often the node status is reported when nothing changed (the kubelet's
    /// nodeStatusReportFrequency).
    #[arg(long, default_value = "5m", value_parser = util::parse_duration)]
    pub node_status_report_frequency: Duration,
    /// API writes in flight at most.
    #[arg(long, default_value_t = 32)]
    pub max_concurrent_writes: usize,
    /// First crash-loop back-off (the kubelet's 10s; shorter only for tests).
    #[arg(long, default_value = "10s", value_parser = util::parse_duration, hide = true)]
    pub crash_loop_backoff: Duration,
}

/// What the event loop needs from the options.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name_prefix: String,
    pub pod_cidr_base: String,
    pub node_cidr_mask_size: u8,
    pub pod_start_delay: Duration,
    pub lease_duration: Duration,
    pub status_report_frequency: Duration,
    pub max_concurrent_writes: usize,
    pub crash_backoff: Duration,
    pub crash_backoff_max: Duration,
}

impl Settings {
    /// The kubelet renews its lease every quarter of the lease duration.
    pub fn lease_renew_interval(&self) -> Duration {
        (self.lease_duration / 4).max(Duration::from_millis(100))
    }
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Settings {
        Settings {
            name_prefix: c.name_prefix.clone(),
            pod_cidr_base: c.pod_cidr_base.clone(),
            node_cidr_mask_size: c.node_cidr_mask_size,
            pod_start_delay: c.pod_start_delay,
            lease_duration: c.node_lease_duration.max(Duration::from_secs(1)),
            status_report_frequency: c.node_status_report_frequency.max(Duration::from_secs(1)),
            max_concurrent_writes: c.max_concurrent_writes.max(1),
            crash_backoff: c.crash_loop_backoff,
            crash_backoff_max: Duration::from_secs(300).max(c.crash_loop_backoff),
        }
    }
}

/// A running simulator.
pub struct NodeSimulator {
    /// Where /metrics is served.
    pub metrics_addr: SocketAddr,
    /// Names of the simulated nodes.
    pub nodes: Vec<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let cfg = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p).with_context(|| format!("reading {}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(cfg)?)
}

impl NodeSimulator {
    /// Registers (or adopts) the nodes and starts simulating; returns once the first list of
    /// pods has been processed.
    pub async fn start(cfg: Config) -> anyhow::Result<NodeSimulator> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if cfg.name_prefix.is_empty() || cfg.name_prefix.len() > 200 {
            anyhow::bail!("--name-prefix must be 1 to 200 characters");
        }
        let layout = match &cfg.config {
            Some(p) => layout::Layout::from_file(p)?,
            None => layout::default_pools(cfg.nodes.unwrap_or(3)),
        };
        let total = if cfg.config.is_some() { cfg.nodes } else { Some(cfg.nodes.unwrap_or(3)) };
        let plan = layout.plan(&cfg.name_prefix, total)?;
        let settings = Arc::new(Settings::from(&cfg));
        let metrics_addr = metrics::serve(&cfg.metrics_listen).await?;
        let client = client(cfg.kubeconfig.as_ref()).await?;
        let nodes = register::register(&client, &settings, plan).await.context("registering nodes")?;
        let names = nodes.iter().map(|n| n.name().to_string()).collect();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sim = sim::Sim::new(settings, client, nodes);
        let task = tokio::spawn(sim.run(ready_tx, async move {
            let _ = stop_rx.await;
        }));
        ready_rx.await.context("the simulator stopped before listing pods")?;
        Ok(NodeSimulator { metrics_addr, nodes: names, stop: Some(stop_tx), task })
    }

    /// Stops the simulation (nodes and leases stay, as when a kubelet stops).
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}
