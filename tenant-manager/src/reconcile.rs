//! The VirtualCluster reconciler (a kube-runtime Controller on dynamic objects).
//!
//! One reconcile brings one tenant to what its VirtualCluster says:
//! * deleted (finalizer present): phase Deleting, stop the master, delete its etcd keys, user
//!   and role, its super namespaces (label `tenancy.kplex.io/tenant=<name>` and annotation
//!   `tenancy.kplex.io/tenant-uid=<uid>`, CONTRACT.md), its kubeconfig Secret and its data
//!   dir; then remove the finalizer;
//! * paused: stop the master, phase Paused (all state kept);
//! * otherwise: finalizer, etcd user and role, data dir and port, the supervised master; once
//!   it is ready the kubeconfig Secret and phase Running.
//!
//! The supervisor triggers a reconcile when a master becomes ready or dies; errors are retried
//! with per-tenant exponential backoff.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::command::{tenant_master_args, MasterSpec};
use crate::etcdadmin;
use crate::status::{self, Desired};
use crate::supervisor::{ChildSpec, State, Supervised};
use crate::Config;

/// The finalizer the tenant manager puts on every VirtualCluster.
pub const FINALIZER: &str = "tenancy.kplex.io/tenant-manager";
/// The super-cluster namespace holding tenants' admin kubeconfig Secrets.
pub const SYSTEM_NAMESPACE: &str = "kplex-system";
/// Label naming a super-cluster object's tenant (CONTRACT.md).
pub const TENANT_LABEL: &str = "tenancy.kplex.io/tenant";
/// Annotation carrying the tenant's uid on its super namespaces (CONTRACT.md).
pub const TENANT_UID_ANNOTATION: &str = "tenancy.kplex.io/tenant-uid";

/// The VirtualCluster API resource.
pub fn virtual_cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tenancy.kplex.io", "v1alpha1", "VirtualCluster"), "virtualclusters")
}

/// The name of tenant `name`'s kubeconfig Secret in [`SYSTEM_NAMESPACE`].
pub fn secret_name(name: &str) -> String {
    format!("{name}-kubeconfig")
}

/// A reconcile failure (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kube: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Etcd(#[from] etcdadmin::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

struct Master {
    uid: String,
    args: Vec<String>,
    child: Supervised,
}

/// Shared state of the reconciler.
pub struct Ctx {
    cfg: Config,
    client: kube::Client,
    api: Api<DynamicObject>,
    etcd: etcd_client::Client,
    /// Tenants get an etcd user of their own (the manager has root credentials).
    etcd_auth: bool,
    kplex_bin: PathBuf,
    masters: tokio::sync::Mutex<HashMap<String, Master>>,
    /// Dedicated etcds (etcdMode dedicated), by tenant.
    etcds: tokio::sync::Mutex<HashMap<String, Supervised>>,
    trigger: mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
    failures: parking_lot::Mutex<HashMap<String, u32>>,
}

impl Ctx {
    /// The context and the receiving end of the supervisor's reconcile triggers.
    pub fn new(
        cfg: Config,
        client: kube::Client,
        etcd: etcd_client::Client,
        etcd_auth: bool,
        kplex_bin: PathBuf,
    ) -> (Arc<Ctx>, mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let api = Api::all_with(client.clone(), &virtual_cluster_resource());
        let ctx = Ctx {
            cfg,
            client,
            api,
            etcd,
            etcd_auth,
            kplex_bin,
            masters: Default::default(),
            etcds: Default::default(),
            trigger: tx,
            failures: Default::default(),
        };
        (Arc::new(ctx), rx)
    }

    /// Fails unless the super cluster serves VirtualClusters.
    pub async fn check_api(&self) -> Result<(), kube::Error> {
        self.api.list_metadata(&ListParams::default().limit(1)).await.map(|_| ())
    }

    fn tenant_dir(&self, name: &str) -> PathBuf {
        self.cfg.data_dir.join("tenants").join(name)
    }

    pub(crate) fn cfg_metrics_listen(&self) -> String {
        self.cfg.metrics_listen.clone()
    }

    /// Stops every tenant master (shutdown).
    pub async fn stop_all(&self) {
        let all: Vec<Master> = self.masters.lock().await.drain().map(|(_, m)| m).collect();
        futures::future::join_all(all.into_iter().map(|m| m.child.stop())).await;
        let etcds: Vec<Supervised> = self.etcds.lock().await.drain().map(|(_, e)| e).collect();
        futures::future::join_all(etcds.into_iter().map(|e| e.stop())).await;
    }

    /// Stops the tenant's master, then its dedicated etcd if it has one.
    async fn stop_master(&self, name: &str) {
        let m = self.masters.lock().await.remove(name);
        if let Some(m) = m {
            m.child.stop().await;
        }
        let e = self.etcds.lock().await.remove(name);
        if let Some(e) = e {
            e.stop().await;
        }
    }
}

/// Runs the controller until `shutdown` fires.
pub async fn run(ctx: Arc<Ctx>, triggers: mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>, shutdown: tokio::sync::oneshot::Receiver<()>) {
    let ar = virtual_cluster_resource();
    Controller::new_with(ctx.api.clone(), watcher::Config::default(), ar)
        .reconcile_on(tokio_stream::wrappers::UnboundedReceiverStream::new(triggers))
        .graceful_shutdown_on(async move {
            let _ = shutdown.await;
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "reconcile");
            }
        })
        .await;
}

fn error_policy(vc: Arc<DynamicObject>, e: &Error, ctx: Arc<Ctx>) -> Action {
    let name = vc.name_any();
    let n = {
        let mut f = ctx.failures.lock();
        let n = f.entry(name.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let delay = Duration::from_millis(200u64.saturating_mul(1 << n.min(8))).min(Duration::from_secs(60));
    tracing::warn!(tenant = %name, error = %e, retry_in_ms = delay.as_millis() as u64, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile(vc: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = vc.name_any();
    let t0 = std::time::Instant::now();
    let r = if vc.metadata.deletion_timestamp.is_some() { delete(&vc, &ctx).await } else { apply(&vc, &ctx).await };
    metrics::histogram!("kplex_tenant_manager_reconcile_duration_seconds").record(t0.elapsed().as_secs_f64());
    metrics::counter!("kplex_tenant_manager_reconciles_total", "result" => if r.is_ok() { "ok" } else { "error" }).increment(1);
    metrics::gauge!("kplex_tenant_manager_masters").set(ctx.masters.lock().await.len() as f64);
    if r.is_ok() {
        ctx.failures.lock().remove(&name);
    }
    r
}

fn has_finalizer(vc: &DynamicObject) -> bool {
    vc.finalizers().iter().any(|f| f == FINALIZER)
}

/// Writes the status if it differs; returns the object as updated (None when nothing changed).
async fn set_status(ctx: &Ctx, vc: &DynamicObject, d: &Desired) -> Result<Option<DynamicObject>, Error> {
    let Some(s) = status::render(&vc.data["status"], vc.metadata.generation, d) else { return Ok(None) };
    Ok(Some(ctx.api.patch_status(&vc.name_any(), &PatchParams::default(), &Patch::Merge(json!({ "status": s }))).await?))
}

/// Removes our finalizer: a merge patch carrying the object's resourceVersion, so the server
/// refuses it (409, retried) if the finalizers changed meanwhile.
async fn remove_finalizer(ctx: &Ctx, vc: &DynamicObject) -> Result<(), Error> {
    let new: Vec<&String> = vc.finalizers().iter().filter(|f| *f != FINALIZER).collect();
    let p = json!({"metadata": {"finalizers": new, "resourceVersion": vc.metadata.resource_version}});
    ctx.api.patch(&vc.name_any(), &PatchParams::default(), &Patch::Merge(p)).await?;
    Ok(())
}

async fn delete(vc: &DynamicObject, ctx: &Ctx) -> Result<Action, Error> {
    if !has_finalizer(vc) {
        return Ok(Action::await_change());
    }
    let name = vc.name_any();
    let uid = vc.uid().unwrap_or_default();
    let updated =
        set_status(ctx, vc, &Desired { phase: "Deleting", endpoint: None, secret: None, ready: (false, "Deleting", "the tenant is being deleted".into()) })
            .await;
    ctx.stop_master(&name).await;
    let mut etcd = ctx.etcd.clone();
    let prefix = etcdadmin::tenant_prefix(&name);
    if ctx.etcd_auth {
        etcdadmin::remove_prefix_user(&mut etcd, &etcdadmin::tenant_user(&name), &prefix).await?;
    } else {
        let (start, end) = etcdadmin::key_range(&prefix);
        etcd.delete(start, Some(etcd_client::DeleteOptions::new().with_range(end))).await.map_err(etcdadmin::Error::from)?;
    }
    // The tenant's super namespaces (created by the syncer); deleting a namespace deletes
    // everything in it.
    let nss: Api<Namespace> = Api::all(ctx.client.clone());
    for ns in nss.list_metadata(&ListParams::default().labels(&format!("{TENANT_LABEL}={name}"))).await? {
        if ns.annotations().get(TENANT_UID_ANNOTATION) == Some(&uid) && ns.metadata.deletion_timestamp.is_none() {
            match nss.delete(&ns.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), SYSTEM_NAMESPACE);
    match secrets.delete(&secret_name(&name), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    let dir = ctx.tenant_dir(&name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    // The status write above changed the resourceVersion the finalizer patch is guarded by.
    let latest = match updated {
        Ok(Some(v)) => v,
        _ => vc.clone(),
    };
    remove_finalizer(ctx, &latest).await?;
    tracing::info!(tenant = %name, "tenant deleted");
    Ok(Action::await_change())
}

/// A free port for a new tenant, remembered in its data dir so its endpoint (and the
/// kubeconfigs handed out) stay valid across restarts.
fn tenant_port(dir: &std::path::Path) -> Result<u16, Error> {
    let f = dir.join("port");
    if let Ok(s) = std::fs::read_to_string(&f) {
        if let Ok(p) = s.trim().parse() {
            return Ok(p);
        }
    }
    let p = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::write(&f, format!("{p}\n"))?;
    Ok(p)
}

async fn apply(vc: &DynamicObject, ctx: &Ctx) -> Result<Action, Error> {
    let name = vc.name_any();
    let uid = vc.uid().unwrap_or_default();
    if !has_finalizer(vc) {
        let mut f = vc.finalizers().to_vec();
        f.push(FINALIZER.into());
        let p = json!({"metadata": {"finalizers": f, "resourceVersion": vc.metadata.resource_version}});
        ctx.api.patch(&name, &PatchParams::default(), &Patch::Merge(p)).await?;
        // The update comes back through the watch and reconciles again.
        return Ok(Action::await_change());
    }
    let spec = &vc.data["spec"];
    if spec["paused"].as_bool() == Some(true) {
        ctx.stop_master(&name).await;
        let d = Desired {
            phase: "Paused",
            endpoint: vc.data["status"]["endpoint"].as_str().map(String::from),
            secret: Some((SYSTEM_NAMESPACE.into(), secret_name(&name))),
            ready: (false, "Paused", "the tenant is paused: its API does not serve".into()),
        };
        set_status(ctx, vc, &d).await?;
        return Ok(Action::await_change());
    }
    let dir = ctx.tenant_dir(&name);
    std::fs::create_dir_all(&dir)?;
    let dedicated = crate::dedicated::mode(&dir, spec["etcdMode"].as_str().unwrap_or("shared"))? == "dedicated";
    let prefix = etcdadmin::tenant_prefix(&name);
    let running = ctx.masters.lock().await.contains_key(&name);
    let endpoints = if dedicated {
        let (client, peer) = crate::dedicated::ports(&dir)?;
        let mut etcds = ctx.etcds.lock().await;
        etcds.entry(name.clone()).or_insert_with(|| Supervised::start(crate::dedicated::etcd_spec(&name, &dir, client, peer), None));
        drop(etcds);
        crate::dedicated::wait_tcp(client, Duration::from_secs(10)).await?;
        vec![format!("http://127.0.0.1:{client}")]
    } else {
        ctx.cfg.etcd_endpoints.clone()
    };
    let creds = if ctx.etcd_auth || dedicated {
        let user = etcdadmin::tenant_user(&name);
        let file = dir.join("etcd.password");
        let pw = etcdadmin::load_or_create_password(&file)?;
        // Idempotent; done whenever the master is (re)started by this process.
        if !running {
            let mut admin = if dedicated { etcdadmin::bootstrap_root(&endpoints, &dir.join("etcd").join("root.password")).await? } else { ctx.etcd.clone() };
            etcdadmin::ensure_prefix_user(&mut admin, &user, &prefix, &pw).await?;
        }
        Some((user, file))
    } else {
        None
    };
    let port = tenant_port(&dir)?;
    let syncer = match (&ctx.cfg.syncer_endpoint, &ctx.cfg.syncer_pki_dir) {
        (Some(endpoint), Some(pki)) => {
            // The client certificate names the tenant and its uid; a tenant recreated under the
            // same name (new uid) gets a new one.
            let out = dir.join("syncer");
            let issued_for = std::fs::read_to_string(out.join("uid")).unwrap_or_default();
            if issued_for != uid || !out.join("tls.crt").exists() {
                std::fs::create_dir_all(&out)?;
                kplex_syncer::pki::issue_tenant_client(pki, &name, &uid, &out).map_err(|e| Error::Other(format!("syncer client certificate: {e:#}")))?;
                std::fs::write(out.join("uid"), &uid)?;
            }
            Some((endpoint.clone(), out))
        }
        _ => None,
    };
    let ms = MasterSpec {
        name: name.clone(),
        uid: uid.clone(),
        // The master's own data dir (PKI, its kubeconfig, token file); DIR/tenants/NAME/kubeconfig
        // is the CLI's (`kplex create`/`connect` write it from the Secret).
        data_dir: dir.join("master"),
        listen: format!("{}:{port}", ctx.cfg.host),
        etcd_endpoints: endpoints,
        etcd_prefix: prefix,
        etcd_credentials: creds,
        compaction: dedicated,
        syncer,
    };
    let args = tenant_master_args(&ms);
    let state = {
        let mut masters = ctx.masters.lock().await;
        let stale = masters.get(&name).map(|m| m.uid != uid || m.args != args).unwrap_or(false);
        if stale {
            if let Some(m) = masters.remove(&name) {
                m.child.stop().await;
            }
        }
        let m = masters.entry(name.clone()).or_insert_with(|| {
            let trigger = ctx.trigger.clone();
            let oref = ObjectRef::new_with(&name, virtual_cluster_resource());
            let notify: crate::supervisor::Notify = Arc::new(move |s: &State| {
                if matches!(s, State::Restarting { .. }) {
                    metrics::counter!("kplex_tenant_manager_master_restarts_total").increment(1);
                }
                let _ = trigger.send(oref.clone());
            });
            let spec = ChildSpec {
                name: format!("tenant-master/{name}"),
                program: ctx.kplex_bin.clone(),
                args: args.clone(),
                log: dir.join("master.log"),
                ready_marker: Some("ready".into()),
                pid_file: Some(dir.join("master.pid")),
            };
            tracing::info!(tenant = %name, port, "starting tenant master");
            Master { uid: uid.clone(), args: args.clone(), child: Supervised::start(spec, Some(notify)) }
        });
        m.child.state()
    };
    let endpoint = format!("https://{}:{port}", ctx.cfg.host);
    let d = match state {
        State::Ready { .. } => {
            ensure_secret(ctx, &name, &uid, &dir).await?;
            Desired {
                phase: "Running",
                endpoint: Some(endpoint),
                secret: Some((SYSTEM_NAMESPACE.into(), secret_name(&name))),
                ready: (true, "Serving", "the tenant's API serves".into()),
            }
        }
        State::Restarting { restarts, last_exit } => Desired {
            phase: if restarts >= 5 { "Failed" } else { "Pending" },
            endpoint: Some(endpoint),
            secret: None,
            ready: (false, "MasterRestarting", format!("the tenant master exited ({last_exit}), restart {restarts}; see {}", dir.join("master.log").display())),
        },
        State::Starting { .. } | State::Stopped => Desired {
            phase: if vc.data["status"]["phase"] == "Running" { "Running" } else { "Pending" },
            endpoint: Some(endpoint),
            secret: vc.data["status"]["kubeconfigSecret"].is_object().then(|| (SYSTEM_NAMESPACE.into(), secret_name(&name))),
            ready: (false, "Starting", "the tenant master is starting".into()),
        },
    };
    set_status(ctx, vc, &d).await?;
    Ok(Action::await_change())
}

/// Puts the admin kubeconfig the master wrote into the tenant's Secret (written only when it
/// differs).
async fn ensure_secret(ctx: &Ctx, name: &str, uid: &str, dir: &std::path::Path) -> Result<(), Error> {
    let kubeconfig = std::fs::read(dir.join("master").join("kubeconfig"))?;
    let nss: Api<Namespace> = Api::all(ctx.client.clone());
    if nss.get_opt(SYSTEM_NAMESPACE).await?.is_none() {
        match nss.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": SYSTEM_NAMESPACE}})).expect("namespace")).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), SYSTEM_NAMESPACE);
    let sname = secret_name(name);
    if let Some(cur) = secrets.get_opt(&sname).await? {
        let same = cur.data.as_ref().and_then(|d| d.get("kubeconfig")).map(|b| b.0 == kubeconfig).unwrap_or(false);
        let same_owner = cur.annotations().get(TENANT_UID_ANNOTATION).map(|u| u == uid).unwrap_or(false);
        if same && same_owner {
            return Ok(());
        }
    }
    use base64::Engine as _;
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": sname, "namespace": SYSTEM_NAMESPACE, "labels": {TENANT_LABEL: name}, "annotations": {TENANT_UID_ANNOTATION: uid}},
        "type": "Opaque",
        "data": {"kubeconfig": base64::engine::general_purpose::STANDARD.encode(&kubeconfig)},
    });
    secrets.patch(&sname, &PatchParams::apply("kplex-tenant-manager").force(), &Patch::Apply(secret)).await?;
    Ok(())
}
