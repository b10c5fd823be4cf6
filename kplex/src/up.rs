//! `kplex up`: the local platform in the foreground. It supervises, as child processes, etcd
//! (auth on, a root user), the super cluster's API (`kplex tenant-master --super`), the node
//! simulator, the super-scheduler and the tenant manager; restarts any that dies; prints a line
//! containing `ready` once all serve; stops them all (tenant manager first, etcd last) on
//! SIGINT/SIGTERM. Tenants live in etcd and DIR/tenants, so the next run brings them back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tenant_manager::etcdadmin;
use tenant_manager::supervisor::{ChildSpec, Supervised};

use crate::platform::{DataDir, Layout, PlatformState};

/// Options of `kplex up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Simulated nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Use this etcd instead of starting one (comma-separated). Tenants get etcd users of their
    /// own only if DIR/etcd/root.password holds its root password (auth enabled).
    #[arg(long, value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
}

/// The etcd user of the super cluster's API (its role covers /kplex/super/ only).
const SUPER_ETCD_USER: &str = "kplex-super";
const READY: &str = "ready";
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn spec(layout: &Layout, bin: &Path, name: &str, args: Vec<String>, ready_marker: Option<&str>) -> ChildSpec {
    ChildSpec {
        name: name.into(),
        program: bin.to_path_buf(),
        args,
        log: layout.log(name),
        ready_marker: ready_marker.map(String::from),
        pid_file: Some(layout.root.join("logs").join(format!("{name}.pid"))),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The components started once the super cluster's API serves, all at once. This is the one
/// list of platform children: the syncer is added here.
fn components(layout: &Layout, st: &PlatformState, kplex: &Path, nodes: usize, root_creds: Option<&Path>) -> Vec<ChildSpec> {
    let kc = layout.super_kubeconfig().display().to_string();
    let mut tm = s(&["tenant-manager", "--kubeconfig", &kc, "--data-dir"]);
    tm.push(layout.root.display().to_string());
    tm.extend(s(&["--etcd-endpoints", &st.etcd_endpoints.join(",")]));
    if let Some(f) = root_creds {
        tm.extend(s(&["--etcd-user", "root", "--etcd-password-file", &f.display().to_string()]));
    }
    let (sync_grpc, sync_metrics) = st.syncer_ports.expect("platform state has syncer ports");
    let pki = layout.syncer_pki().display().to_string();
    tm.extend(s(&["--syncer-endpoint", &format!("https://127.0.0.1:{sync_grpc}"), "--syncer-pki-dir", &pki]));
    let syncer = s(&[
        "syncer",
        "--super-kubeconfig",
        &kc,
        "--scheduler",
        &format!("http://127.0.0.1:{}", st.scheduler_ports.0),
        "--listen",
        &format!("127.0.0.1:{sync_grpc}"),
        "--metrics-listen",
        &format!("127.0.0.1:{sync_metrics}"),
        "--pki-dir",
        &pki,
    ]);
    vec![
        spec(layout, kplex, "node-simulator", s(&["node-simulator", "--kubeconfig", &kc, "--nodes", &nodes.to_string()]), Some(READY)),
        spec(
            layout,
            kplex,
            "super-scheduler",
            s(&[
                "super-scheduler",
                "--kubeconfig",
                &kc,
                "--listen",
                &format!("127.0.0.1:{}", st.scheduler_ports.0),
                "--metrics-listen",
                &format!("127.0.0.1:{}", st.scheduler_ports.1),
            ]),
            Some(READY),
        ),
        spec(layout, kplex, "syncer", syncer, Some(READY)),
        spec(layout, kplex, "tenant-manager", tm, Some(READY)),
    ]
}

fn etcd_spec(layout: &Layout, client: u16, peer: u16) -> ChildSpec {
    let args = tenant_manager::dedicated::local_etcd_args(&layout.etcd_dir().join("data"), client, peer);
    ChildSpec {
        name: "etcd".into(),
        program: "etcd".into(),
        args,
        log: layout.log("etcd"),
        ready_marker: None,
        pid_file: Some(layout.root.join("logs/etcd.pid")),
    }
}

async fn wait_tcp(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "etcd does not listen on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Holds DIR/up.lock for the life of the process: a second `kplex up` on the same DIR fails.
fn lock(layout: &Layout) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(layout.lock())?;
    // SAFETY: flock on a file descriptor we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    anyhow::ensure!(r == 0, "kplex is already running on {} (lock {} is held)", layout.root.display(), layout.lock().display());
    Ok(f)
}

/// Runs the platform until SIGINT/SIGTERM.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let layout = Layout::new(&args.dir.absolute());
    std::fs::create_dir_all(layout.root.join("logs"))?;
    std::fs::create_dir_all(layout.root.join("tenants"))?;
    let _lock = lock(&layout)?;
    let st = PlatformState::load_or_create(&layout, &args.etcd_endpoints)?;
    let kplex = std::env::current_exe()?;
    // Started children, in start order; stopped in reverse.
    let mut children: Vec<Supervised> = Vec::new();
    let result = start_all(&layout, &st, &kplex, args.nodes, &mut children).await;
    match &result {
        Ok(()) => {
            println!(
                "kplex platform ready in {:.1}s: super cluster kubeconfig {} ({} nodes); create a tenant with `kplex create NAME --data-dir {}`",
                t0.elapsed().as_secs_f64(),
                layout.super_kubeconfig().display(),
                args.nodes,
                layout.root.display()
            );
            shutdown_signal().await;
            eprintln!("stopping the kplex platform");
        }
        Err(_) => eprintln!("kplex up failed; stopping what started (logs in {})", layout.root.join("logs").display()),
    }
    while let Some(c) = children.pop() {
        c.stop().await;
    }
    eprintln!("kplex platform stopped");
    result
}

async fn start_all(layout: &Layout, st: &PlatformState, kplex: &Path, nodes: usize, children: &mut Vec<Supervised>) -> anyhow::Result<()> {
    let root_file = layout.etcd_root_password();
    let mut root_creds: Option<PathBuf> = None;
    if let Some((client, peer)) = st.embedded_etcd {
        std::fs::create_dir_all(layout.etcd_dir())?;
        let etcd = Supervised::start(etcd_spec(layout, client, peer), None);
        children.push(etcd);
        wait_tcp(client, START_TIMEOUT).await?;
        root_creds = Some(root_file.clone());
    } else if root_file.exists() {
        root_creds = Some(root_file.clone());
    }
    // The super API's own etcd user, confined to its prefix.
    let super_dir = layout.super_dir();
    std::fs::create_dir_all(&super_dir)?;
    let super_pw_file = super_dir.join("etcd.password");
    let mut super_args = s(&["tenant-master", "--super", "--name", "super", "--data-dir"]);
    super_args.push(super_dir.display().to_string());
    super_args.extend(s(&[
        "--listen",
        &format!("127.0.0.1:{}", st.api_port),
        "--etcd-endpoints",
        &st.etcd_endpoints.join(","),
        "--etcd-compaction-interval",
        "0",
    ]));
    if let Some(f) = &root_creds {
        let mut root = if st.embedded_etcd.is_some() {
            etcdadmin::bootstrap_root(&st.etcd_endpoints, f).await.context("enabling etcd auth")?
        } else {
            etcdadmin::connect(&st.etcd_endpoints, Some(("root".into(), etcdadmin::read_password(f)?))).await?
        };
        let pw = etcdadmin::load_or_create_password(&super_pw_file)?;
        etcdadmin::ensure_prefix_user(&mut root, SUPER_ETCD_USER, tenant_master::supermode::ETCD_PREFIX, &pw).await?;
        super_args.extend(s(&["--etcd-user", SUPER_ETCD_USER, "--etcd-password-file", &super_pw_file.display().to_string()]));
    }
    let api = Supervised::start(spec(layout, kplex, "super-api", super_args, Some(READY)), None);
    api.wait_ready(START_TIMEOUT).await.map_err(anyhow::Error::msg)?;
    children.push(api);
    std::fs::copy(super_dir.join("kubeconfig"), layout.super_kubeconfig()).context("writing super.kubeconfig")?;
    let started: Vec<Supervised> = components(layout, st, kplex, nodes, root_creds.as_deref()).into_iter().map(|c| Supervised::start(c, None)).collect();
    let waits = futures::future::join_all(started.iter().map(|c| c.wait_ready(START_TIMEOUT))).await;
    children.extend(started);
    for w in waits {
        w.map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
