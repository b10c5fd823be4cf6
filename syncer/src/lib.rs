//! The kplex syncer: one process that multiplexes every tenant onto the super cluster.
//!
//! Tenant masters dial it over gRPC with mutual TLS (`server`) and stream their objects into an
//! in-memory mirror (`tenants`); the super cluster is watched through its standard API
//! (`supercache`). Every change queues a key in the per-tenant weighted fair queue (`queue`);
//! workers run the level-triggered reconcilers (`reconcile`): downward (tenant -> super) and
//! upward (super -> tenant, written back over the tenant's stream). Placement comes from the
//! super-scheduler over gRPC. A periodic patrol re-queues everything, repairing drift. The
//! syncer keeps no state it cannot rebuild from the tenants and the super cluster.
//! docs/syncer.md describes the design.

pub mod metrics;
pub mod naming;
pub mod pki;
pub mod queue;
pub mod reconcile;
pub mod server;
pub mod supercache;
pub mod tenants;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;

use queue::FairQueue;
use supercache::SuperCache;
use tenants::{Key, Tenant, Tenants};

/// The gRPC contract (proto/syncer.proto): messages, client and server.
pub mod proto {
    tonic::include_proto!("kplex.syncer.v1");
}

/// Options of `kplex syncer`.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// kubeconfig of the super cluster.
    #[arg(long)]
    pub super_kubeconfig: Option<PathBuf>,
    /// gRPC address of the super-scheduler (http://HOST:PORT).
    #[arg(long, default_value = "http://127.0.0.1:10260")]
    pub scheduler: String,
    /// Address tenant masters connect to (gRPC, mutual TLS).
    #[arg(long, default_value = "127.0.0.1:10270")]
    pub listen: SocketAddr,
    /// Directory of the syncer's CA (created on first start) and serving certificate.
    #[arg(long)]
    pub pki_dir: PathBuf,
    /// Extra subject alternative names of the serving certificate.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Seconds between two patrols (diff of every tenant against the super cluster).
    #[arg(long, default_value_t = 60)]
    pub patrol_seconds: u64,
    /// Address of the Prometheus metrics endpoint (/metrics).
    #[arg(long, default_value = "127.0.0.1:10271")]
    pub metrics_listen: SocketAddr,
    /// Reconciles running at once (over all tenants).
    #[arg(long, default_value_t = 32)]
    pub workers: usize,
    /// Keys a tenant may have queued (more are dropped and picked up by the next patrol).
    #[arg(long, default_value_t = 100_000)]
    pub max_queued_per_tenant: usize,
}

/// The syncer's shared state.
pub struct Syncer {
    pub tenants: Tenants,
    pub queue: Arc<FairQueue<Key>>,
    pub supers: Arc<SuperCache>,
    pub scheduler: super_scheduler::SchedulerClient,
    pub conn_ids: AtomicU64,
}

/// A running syncer.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub syncer: Arc<Syncer>,
}

impl Syncer {
    /// Applies a batch of changes from a tenant master to the mirror and queues what they touch.
    pub fn apply_changes(&self, t: &Arc<Tenant>, c: proto::Changes) {
        let Some(resource) = tenants::RESOURCES.iter().copied().find(|r| *r == c.resource) else { return };
        let was_ready = t.ready();
        let mut touched: Vec<(Arc<Value>, bool)> = Vec::new();
        {
            let mut st = t.state.write();
            let m = st.mirrors.entry(resource).or_default();
            if c.snapshot {
                let old = std::mem::take(&mut m.objects);
                for ch in &c.changes {
                    if let Ok(v) = serde_json::from_slice::<Value>(&ch.object) {
                        let v = Arc::new(v);
                        m.objects.insert(tenants::ns_name(&v), v.clone());
                        touched.push((v, false));
                    }
                }
                for (k, v) in old {
                    if !m.objects.contains_key(&k) {
                        touched.push((v, true));
                    }
                }
                m.synced = true;
            } else {
                for ch in &c.changes {
                    let Ok(v) = serde_json::from_slice::<Value>(&ch.object) else { continue };
                    let v = Arc::new(v);
                    let deleted = ch.r#type == proto::change::Type::Deleted as i32;
                    if deleted {
                        m.objects.remove(&tenants::ns_name(&v));
                    } else {
                        m.objects.insert(tenants::ns_name(&v), v.clone());
                    }
                    touched.push((v, deleted));
                }
            }
            m.rv = m.rv.max(c.resource_version);
        }
        if !was_ready && t.ready() {
            tracing::info!(tenant = %t.name, "tenant mirror complete");
            self.enqueue_all(t);
            return;
        }
        for (o, deleted) in touched {
            for k in reconcile::keys_for_tenant_object(resource, &o, deleted) {
                self.queue.add(&t.name, k);
            }
        }
    }

    /// Queues every key of a tenant.
    pub fn enqueue_all(&self, t: &Tenant) {
        for k in reconcile::all_keys(self, t) {
            self.queue.add(&t.name, k);
        }
    }

    fn on_super_change(&self, resource: &'static str, obj: &Value) {
        if resource == "virtualclusters" {
            let name = obj["metadata"]["name"].as_str().unwrap_or("");
            if let Some(t) = self.tenants.get(name) {
                self.queue.set_weight(&t.name, obj["spec"]["syncWeight"].as_u64().unwrap_or(1));
                if t.ready() {
                    // Pause, resume, weight: everything may change.
                    self.enqueue_all(&t);
                }
            }
            return;
        }
        if let Some((tenant, key)) = reconcile::key_for_super_object(self, resource, obj) {
            if let Some(t) = self.tenants.get(&tenant) {
                self.queue.add(&t.name, key);
            }
        }
    }

    /// The patrol: counts drift (super objects missing or orphaned) and queues every key of
    /// every ready tenant, which repairs it.
    fn patrol(&self) {
        for t in self.tenants.all() {
            if !t.ready() {
                continue;
            }
            let Some(vc) = self.supers.virtual_cluster(&t.name) else { continue };
            if vc["metadata"]["uid"].as_str() != Some(t.uid.as_str()) || vc["metadata"]["deletionTimestamp"].is_string() {
                continue;
            }
            let paused = vc["spec"]["paused"].as_bool().unwrap_or(false);
            for p in t.list("pods", None) {
                let (ns, name) = tenants::ns_name(&p);
                let live = p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty())
                    && !p["metadata"]["deletionTimestamp"].is_string()
                    && !matches!(p["status"]["phase"].as_str(), Some("Succeeded") | Some("Failed"));
                if live && !paused && self.supers.get("pods", &naming::super_namespace(&t.name, &t.uid, &ns), &name).is_none() {
                    metrics::patrol_repair("pods");
                }
            }
            for (r, _, _, _) in supercache::SUPER_RESOURCES {
                for o in self.supers.list(r) {
                    let md = &o["metadata"];
                    if md["labels"][naming::TENANT_LABEL].as_str() != Some(&*t.name) || md["annotations"][naming::TENANT_UID].as_str() != Some(&t.uid) {
                        continue;
                    }
                    let ns = md["annotations"][naming::NAMESPACE].as_str().unwrap_or("");
                    let name = md["annotations"][naming::NAME].as_str().unwrap_or("");
                    let tr = if *r == "namespaces" { "namespaces" } else { r };
                    let tenant_obj = if *r == "namespaces" { t.get(tr, "", ns) } else { t.get(tr, ns, name) };
                    if tenant_obj.is_none() && !md["annotations"][naming::SA_TOKEN].is_string() {
                        metrics::patrol_repair(r);
                    }
                }
            }
            self.enqueue_all(&t);
        }
    }
}

async fn super_client(path: &Option<PathBuf>) -> anyhow::Result<kube::Client> {
    Ok(match path {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            kube::Client::try_from(kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?)?
        }
        None => kube::Client::try_default().await?,
    })
}

/// Starts everything: super-cluster watches, scheduler client, workers, patrol, gRPC and
/// metrics. Returns once the super cluster is listed and the gRPC port is open.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = super_client(&cfg.super_kubeconfig).await?;
    let pki = pki::SyncerPki::load_or_create(&cfg.pki_dir, &cfg.tls_san)?;
    let channel = tonic::transport::Endpoint::from_shared(cfg.scheduler.clone())?.connect_lazy();
    let scheduler = super_scheduler::SchedulerClient::new(channel).max_decoding_message_size(256 << 20).max_encoding_message_size(256 << 20);
    let handle = metrics::install()?;
    // The super cache calls back into the syncer, which holds the cache: tie the knot through a
    // cell filled right after.
    let cell: Arc<std::sync::OnceLock<std::sync::Weak<Syncer>>> = Arc::new(std::sync::OnceLock::new());
    let c2 = cell.clone();
    let on_change: supercache::OnChange = Arc::new(move |r, o, _deleted| {
        if let Some(s) = c2.get().and_then(|w| w.upgrade()) {
            s.on_super_change(r, o);
        }
    });
    let supers = SuperCache::start(client, on_change);
    let syncer =
        Arc::new(Syncer { tenants: Tenants::default(), queue: FairQueue::new(cfg.max_queued_per_tenant), supers, scheduler, conn_ids: AtomicU64::new(1) });
    let _ = cell.set(Arc::downgrade(&syncer));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !syncer.supers.ready() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the super cluster could not be listed within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..cfg.workers.max(1) {
        tokio::spawn(worker(syncer.clone()));
    }
    tokio::spawn(watch_scheduler(syncer.clone()));
    let patrol_every = Duration::from_secs(cfg.patrol_seconds.max(1));
    let s2 = syncer.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(patrol_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            s2.patrol();
        }
    });
    let metrics_addr = metrics::serve(cfg.metrics_listen, handle, syncer.clone()).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("listening on {}", cfg.listen))?;
    let grpc_addr = listener.local_addr()?;
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(&pki.serving_cert_pem, &pki.serving_key_pem))
        .client_ca_root(tonic::transport::Certificate::from_pem(&pki.ca_cert_pem));
    let svc =
        proto::syncer_server::SyncerServer::new(server::SyncService(syncer.clone())).max_decoding_message_size(512 << 20).max_encoding_message_size(512 << 20);
    let router = tonic::transport::Server::builder().tls_config(tls)?.add_service(svc);
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::error!("gRPC server: {e}");
        }
    });
    Ok(Running { grpc_addr, metrics_addr, syncer })
}

async fn worker(s: Arc<Syncer>) {
    loop {
        let item = s.queue.pop().await;
        let res = reconcile::reconcile(&s, &item.tenant, &item.key).await;
        if let Err(e) = &res {
            tracing::info!(tenant = %item.tenant, key = ?item.key, error = %e, "sync failed; retrying with backoff");
        }
        metrics::synced(&item.tenant, item.queued_at.elapsed(), res.is_ok());
        s.queue.done(&item, res.is_ok());
    }
}

/// Follows the super-scheduler's change stream: each change may let unschedulable pods fit, so
/// they are queued again.
async fn watch_scheduler(s: Arc<Syncer>) {
    loop {
        match s.scheduler.clone().watch_changes(super_scheduler::proto::WatchChangesRequest {}).await {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                while let Some(Ok(_)) = stream.next().await {
                    for t in s.tenants.all() {
                        let pods: Vec<(String, String)> = t.state.read().unschedulable.iter().cloned().collect();
                        for (ns, name) in pods {
                            s.queue.add(&t.name, Key::Pod(ns, name));
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "super-scheduler change stream unavailable"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
