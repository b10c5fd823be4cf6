//! kplex tenant master: a Kubernetes API server over etcd, with the controllers a tenant's
//! cluster needs. The same server, in super mode, is the API of the local super cluster.

pub mod admission;
pub mod api;
pub mod apiextensions;
pub mod auth;
pub mod bootstrap;
pub mod controllers;
pub mod meta;
pub mod openapi;
pub mod pki;
pub mod quota;
pub mod registry;
pub mod schema;
pub mod server;
pub mod serviceaccount;
pub mod storage;
pub mod supermode;
pub mod syncer_link;
pub mod validation;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use registry::alloc::Allocator;
use registry::store::Store;
use registry::Registry;
use storage::cache::FieldFn;
use storage::dispatcher::Caches;
use storage::etcd::Etcd;

/// Options of `kplex tenant-master`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// The tenant's name.
    #[arg(long)]
    pub name: String,
    /// etcd endpoints, comma-separated (http://127.0.0.1:2379).
    #[arg(long, value_delimiter = ',', required = true)]
    pub etcd_endpoints: Vec<String>,
    /// Where the PKI, kubeconfig and token file live.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Address to serve HTTPS on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: String,
    /// etcd key prefix of this tenant (default /kplex/<name>).
    #[arg(long)]
    pub etcd_prefix: Option<String>,
    /// etcd user (with --etcd-password) when etcd auth is on.
    #[arg(long, env = "KPLEX_ETCD_USER")]
    pub etcd_user: Option<String>,
    #[arg(long, env = "KPLEX_ETCD_PASSWORD", hide_env_values = true)]
    pub etcd_password: Option<String>,
    /// Service ClusterIP range.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cidr: String,
    /// NodePort range.
    #[arg(long, default_value = "30000-32767")]
    pub node_port_range: String,
    /// How often to compact etcd history (0 disables; a shared etcd is compacted by the platform).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// Extra subject alternative names for the serving certificate.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Run the built-in controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub controllers: bool,
    /// Built-in controllers not to run (names as kube-controller-manager's: namespace,
    /// garbagecollector, deployment, replicaset, ...).
    #[arg(long, value_delimiter = ',')]
    pub disable_controllers: Vec<String>,
    /// The issuer (`iss`) of service account tokens.
    #[arg(long, default_value = serviceaccount::DEFAULT_ISSUER)]
    pub service_account_issuer: String,
    /// Audiences the API accepts in service account tokens (default: the issuer).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// Terminated pods kept before the pod garbage collector deletes the oldest (0 disables),
    /// as kube-controller-manager's flag.
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// How long pods bound to a node that no longer exists wait before the pod garbage
    /// collector deletes them (upstream's fixed quarantine; shorter only for tests).
    #[arg(long, default_value = "40s", value_parser = parse_duration, hide = true)]
    pub pod_gc_quarantine: Duration,

    // Issue 5 (platform): etcd credentials from a file, and super mode.
    /// File holding the etcd password of --etcd-user (instead of --etcd-password; a trailing
    /// newline is ignored).
    #[arg(long)]
    pub etcd_password_file: Option<PathBuf>,
    /// Serve the super cluster's API instead of a tenant's: default etcd prefix /kplex/super,
    /// and the VirtualCluster CustomResourceDefinition is installed on start (docs/platform.md).
    #[arg(long = "super")]
    pub super_mode: bool,
    // --- issue 7: the link to the syncer (without --syncer-endpoint the tenant master does not sync) ---
    /// gRPC URL of the syncer (https://HOST:PORT).
    #[arg(long)]
    pub syncer_endpoint: Option<String>,
    /// CA of the syncer (PEM).
    #[arg(long)]
    pub syncer_ca: Option<PathBuf>,
    /// This tenant's client certificate for the syncer (PEM; names the tenant and its uid).
    #[arg(long)]
    pub syncer_cert: Option<PathBuf>,
    /// The key of --syncer-cert (PEM).
    #[arg(long)]
    pub syncer_key: Option<PathBuf>,
}

/// Parses `300ms`, `5s`, `5m`, `1h` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("invalid duration unit in {s:?}")),
    })
}

fn field_fns(reg: &Registry) -> HashMap<String, FieldFn> {
    let mut m = HashMap::new();
    for s in reg.all() {
        let s2 = s.clone();
        let f: FieldFn = Arc::new(move |v| s2.fields(v).into_iter().map(|(k, v)| (std::borrow::Cow::Borrowed(k), v)).collect());
        m.insert(s.info().id(), f);
    }
    m
}

/// A running tenant master.
pub struct TenantMaster {
    pub store: Arc<Store>,
    pub addr: std::net::SocketAddr,
    pub kubeconfig: PathBuf,
}

impl TenantMaster {
    /// Starts everything and returns once the API is being served.
    pub async fn start(cfg: Config) -> anyhow::Result<TenantMaster> {
        let t0 = Instant::now();
        if let Some(bad) = cfg.disable_controllers.iter().find(|d| !controllers::ALL.iter().any(|(n, _, _)| n == d)) {
            let known: Vec<&str> = controllers::ALL.iter().map(|(n, _, _)| *n).collect();
            anyhow::bail!("--disable-controllers: unknown controller {bad:?} (known: {})", known.join(", "));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating {}", cfg.data_dir.display()))?;
        let pki = pki::Pki::load_or_create(&cfg.data_dir, &cfg.name, &cfg.tls_san)?;
        let sa_issuer = serviceaccount::Issuer::load_or_create(&pki.dir, &pki.ca_cert_pem, &cfg.service_account_issuer, &cfg.api_audiences)?;
        let token_file = cfg.data_dir.join("tokens.csv");
        if !token_file.exists() {
            let token: String = (0..32).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
            std::fs::write(&token_file, format!("{token},kplex-admin,kplex-admin,\"system:masters\"\n"))?;
        }
        let (tls, auth) = server::tls_setup(&pki, Some(&token_file))?;
        let default_prefix = if cfg.super_mode { supermode::ETCD_PREFIX.to_string() } else { format!("/kplex/{}", cfg.name) };
        let prefix = cfg.etcd_prefix.clone().unwrap_or(default_prefix);
        let password = match (&cfg.etcd_password, &cfg.etcd_password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f).with_context(|| format!("reading --etcd-password-file {}", f.display()))?.trim_end_matches(['\n', '\r']).to_string(),
            ),
            (None, None) => None,
        };
        let user = match (&cfg.etcd_user, password) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (Some(_), None) => anyhow::bail!("--etcd-user needs --etcd-password or --etcd-password-file"),
            _ => None,
        };
        let etcd = Etcd::connect(&cfg.etcd_endpoints, &prefix, user).await.context("connecting to etcd")?;
        let registry = Arc::new(Registry::builtin());
        let caches = Caches::start(etcd.clone(), field_fns(&registry)).await.context("loading the watch cache")?;
        let (np_min, np_max) = cfg
            .node_port_range
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| anyhow::anyhow!("invalid --node-port-range"))?;
        let alloc = Allocator::new(&cfg.service_cidr, (np_min, np_max)).ok_or_else(|| anyhow::anyhow!("invalid --service-cidr"))?;
        let store = Arc::new(Store::new(caches, registry, alloc));
        let _ = store.service_accounts.set(Arc::new(sa_issuer));
        let listener = tokio::net::TcpListener::bind(&cfg.listen).await.with_context(|| format!("listening on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let host = addr.ip().to_string();
        let server_url = format!("https://{}", addr);
        let kubeconfig = cfg.data_dir.join("kubeconfig");
        let kc = pki.kubeconfig(&cfg.name, &server_url, "kplex-admin", &pki.admin_cert_pem, &pki.admin_key_pem);
        std::fs::write(&kubeconfig, kc)?;
        bootstrap::run(&store, &host, addr.port()).await?;
        if cfg.super_mode {
            supermode::bootstrap(&store).await?;
        }
        // Custom resources of established CRDs are served from the first request on.
        apiextensions::start(store.clone());
        if cfg.super_mode {
            supermode::wait_established(&store).await?;
        }
        let st = api::ApiState { store: store.clone(), server_addr: Arc::new(addr.to_string()) };
        tokio::spawn(server::serve(listener, tls, auth, st));
        if cfg.controllers {
            let settings = controllers::runtime::ctx::Settings {
                terminated_pod_gc_threshold: cfg.terminated_pod_gc_threshold,
                pod_gc_quarantine: cfg.pod_gc_quarantine,
            };
            controllers::start(store.clone(), &cfg.disable_controllers, settings);
        }
        if let Some(endpoint) = &cfg.syncer_endpoint {
            let (Some(ca), Some(cert), Some(key)) = (&cfg.syncer_ca, &cfg.syncer_cert, &cfg.syncer_key) else {
                anyhow::bail!("--syncer-endpoint needs --syncer-ca, --syncer-cert and --syncer-key");
            };
            let link = syncer_link::LinkConfig { endpoint: endpoint.clone(), ca: ca.clone(), cert: cert.clone(), key: key.clone() };
            let advertised = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
            syncer_link::start(store.clone(), advertised, link);
        }
        if !cfg.etcd_compaction_interval.is_zero() {
            tokio::spawn(compactor(etcd, cfg.etcd_compaction_interval));
        }
        tracing::info!(elapsed_ms = t0.elapsed().as_millis() as u64, %addr, "tenant master started");
        Ok(TenantMaster { store, addr, kubeconfig })
    }
}

/// Compacts etcd as kube-apiserver does: each round compacts to the revision seen the round
/// before, so history stays at least one interval long.
async fn compactor(etcd: Etcd, every: Duration) {
    let mut last = 0;
    loop {
        tokio::time::sleep(every).await;
        match etcd.current_revision().await {
            Ok(rev) => {
                if last > 0 {
                    if let Err(e) = etcd.compact(last).await {
                        tracing::debug!(error = %e, "compaction skipped");
                    }
                }
                last = rev;
            }
            Err(e) => tracing::warn!(error = %e, "reading etcd revision for compaction"),
        }
    }
}
