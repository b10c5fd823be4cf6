//! kplex tenant manager: reconciles VirtualCluster objects (tenancy.kplex.io/v1alpha1) of the
//! super cluster into running tenants (docs/platform.md).
//!
//! For each VirtualCluster it keeps: an etcd user and role whose only permission is the tenant's
//! key range ([`etcdadmin`]), the tenant's data dir (PKI, kubeconfig, etcd password) under
//! `DATA_DIR/tenants/NAME`, a tenant master as a supervised child process ([`supervisor`],
//! command line built by [`command::tenant_master_args`]), the admin kubeconfig as a Secret in
//! the super cluster's `kplex-system` namespace, and the status (phase, endpoint, conditions).
//! A finalizer makes delete remove all of it; `spec.paused` stops the master and keeps its state.
//!
//! Event-driven: a kube watcher on VirtualClusters plus a trigger from the supervisor whenever a
//! master becomes ready or dies; nothing polls.

pub mod command;
pub mod dedicated;
pub mod etcdadmin;
pub mod metrics;
pub mod reconcile;
pub mod status;
pub mod supervisor;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

/// Options of `kplex tenant-manager`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// kubeconfig of the super cluster (default: the usual kubeconfig or in-cluster config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Platform data dir: tenant state lives in DATA_DIR/tenants/NAME.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The shared etcd, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub etcd_endpoints: Vec<String>,
    /// An etcd user allowed to manage users and roles (root). Without it tenants get no etcd
    /// user of their own: only for an etcd without auth.
    #[arg(long)]
    pub etcd_user: Option<String>,
    /// File holding --etcd-user's password.
    #[arg(long)]
    pub etcd_password_file: Option<PathBuf>,
    /// The kplex binary to run tenant masters with (default: this executable).
    #[arg(long)]
    pub kplex_bin: Option<PathBuf>,
    /// Address tenant masters listen on and advertise in their endpoint.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// How often to compact the shared etcd (0 disables).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// Where to serve /metrics (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub metrics_listen: String,
    /// The syncer's gRPC URL (https://HOST:PORT) tenant masters stream to; without it tenants
    /// are not synced to the super cluster.
    #[arg(long, requires = "syncer_pki_dir")]
    pub syncer_endpoint: Option<String>,
    /// The syncer's PKI directory (its CA): each tenant master gets a client certificate from
    /// it naming the tenant and its uid.
    #[arg(long)]
    pub syncer_pki_dir: Option<PathBuf>,
}

/// Durations are written as for the tenant master (`300ms`, `5s`, `5m`, `1h`, plain seconds).
pub use tenant_master::parse_duration;

/// A running tenant manager.
pub struct TenantManager {
    /// Where /metrics is served.
    pub metrics_addr: std::net::SocketAddr,
    ctx: Arc<reconcile::Ctx>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TenantManager {
    /// Connects to the super cluster and etcd, checks the VirtualCluster API is served, and
    /// starts reconciling.
    pub async fn start(cfg: Config) -> anyhow::Result<TenantManager> {
        // kube's rustls needs a process-wide crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kube_cfg = match &cfg.kubeconfig {
            Some(p) => {
                let kc = kube::config::Kubeconfig::read_from(p).with_context(|| format!("reading {}", p.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
            }
            None => kube::Config::infer().await?,
        };
        let client = kube::Client::try_from(kube_cfg)?;
        let creds = match (&cfg.etcd_user, &cfg.etcd_password_file) {
            (Some(u), Some(f)) => Some((u.clone(), etcdadmin::read_password(f)?)),
            (Some(_), None) => anyhow::bail!("--etcd-user needs --etcd-password-file"),
            _ => None,
        };
        let etcd = etcdadmin::connect(&cfg.etcd_endpoints, creds.clone()).await.context("connecting to etcd")?;
        if !cfg.etcd_compaction_interval.is_zero() {
            tokio::spawn(etcdadmin::compactor(etcd.clone(), cfg.etcd_compaction_interval));
        }
        let kplex_bin = match &cfg.kplex_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()?,
        };
        std::fs::create_dir_all(cfg.data_dir.join("tenants"))?;
        let (ctx, trigger_rx) = reconcile::Ctx::new(cfg, client, etcd, creds.is_some(), kplex_bin);
        ctx.check_api().await.context("the super cluster does not serve VirtualClusters (is the CRD installed?)")?;
        let metrics_addr = metrics::serve(&ctx.cfg_metrics_listen()).await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(reconcile::run(ctx.clone(), trigger_rx, rx));
        Ok(TenantManager { metrics_addr, ctx, shutdown: Some(tx), task: Some(task) })
    }

    /// Stops reconciling and stops every tenant master (tenants keep their state: the next
    /// start brings them back).
    pub async fn shutdown(mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.ctx.stop_all().await;
    }
}
