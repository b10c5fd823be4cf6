//! `kplex`: every kplex component as a subcommand of one binary.

use clap::{Parser, Subcommand};

mod cli;
mod platform;
mod up;

#[derive(Parser)]
#[command(name = "kplex", version, about = "Hard multi-tenant Kubernetes through virtual clusters")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one tenant's control plane: a Kubernetes API server over etcd.
    TenantMaster(tenant_master::Config),
    /// Simulate nodes (kwok-like) for a cluster: node status, leases and pod lifecycles.
    NodeSimulator(node_simulator::Config),
    /// Run the global scheduler that places every tenant's pods on the super cluster's nodes.
    SuperScheduler(super_scheduler::Config),
    /// Run the local platform in the foreground: etcd, the super cluster's API, simulated nodes,
    /// the super-scheduler and the tenant manager (docs/platform.md).
    Up(up::UpArgs),
    /// Reconcile VirtualClusters into running tenants (etcd user, PKI, tenant master, status).
    TenantManager(tenant_manager::Config),
    /// Create a tenant; waits until it serves and prints the path of its kubeconfig.
    Create(cli::CreateArgs),
    /// Write (or print) a tenant's admin kubeconfig.
    Connect(cli::ConnectArgs),
    /// List the tenants.
    List(cli::ListArgs),
    /// Delete a tenant and everything it owns.
    Delete(cli::NameArgs),
    /// Stop a tenant's API and workloads, keeping all its state.
    Pause(cli::NameArgs),
    /// Bring a paused tenant back.
    Resume(cli::NameArgs),
    /// Run the syncer that multiplexes every tenant onto the super cluster.
    Syncer(syncer::Config),
}

/// A small runtime for the CLI verbs and supervisors.
fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn main() {
    // Errors are printed plainly (no backtrace) with their causes, and exit with status 1.
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KPLEX_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::TenantMaster(cfg) => {
            // A tenant master is small: two worker threads are plenty, and hundreds of them share
            // one machine.
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(async move {
                let name = cfg.name.clone();
                let tm = tenant_master::TenantMaster::start(cfg).await?;
                println!("tenant master {name} ready at https://{} (kubeconfig {})", tm.addr, tm.kubeconfig.display());
                shutdown_signal().await;
                Ok(())
            })
        }
        Cmd::NodeSimulator(cfg) => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(async move {
                let sim = node_simulator::NodeSimulator::start(cfg).await?;
                println!("node simulator ready: {} nodes (metrics http://{}/metrics)", sim.nodes.len(), sim.metrics_addr);
                shutdown_signal().await;
                sim.shutdown().await;
                Ok(())
            })
        }
        Cmd::SuperScheduler(cfg) => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            rt.block_on(async move {
                let s = super_scheduler::start(cfg).await?;
                println!("super-scheduler ready: gRPC on {}, metrics on http://{}/metrics", s.grpc_addr, s.metrics_addr);
                shutdown_signal().await;
                Ok(())
            })
        }
        Cmd::Up(args) => small_runtime()?.block_on(up::run(args)),
        Cmd::TenantManager(cfg) => small_runtime()?.block_on(async move {
            let tm = tenant_manager::TenantManager::start(cfg).await?;
            println!("tenant manager ready (metrics http://{}/metrics)", tm.metrics_addr);
            shutdown_signal().await;
            tm.shutdown().await;
            Ok(())
        }),
        Cmd::Create(a) => small_runtime()?.block_on(cli::create(a)),
        Cmd::Connect(a) => small_runtime()?.block_on(cli::connect(a)),
        Cmd::List(a) => small_runtime()?.block_on(cli::list(a)),
        Cmd::Delete(a) => small_runtime()?.block_on(cli::delete(a)),
        Cmd::Pause(a) => small_runtime()?.block_on(cli::pause(a)),
        Cmd::Resume(a) => small_runtime()?.block_on(cli::resume(a)),
        Cmd::Syncer(cfg) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                let s = syncer::start(cfg).await?;
                println!("syncer ready: gRPC on {}, metrics on http://{}/metrics", s.grpc_addr, s.metrics_addr);
                shutdown_signal().await;
                Ok(())
            })
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
