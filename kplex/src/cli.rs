//! The tenant verbs (vcluster's): `kplex create/connect/list/delete/pause/resume`. They talk
//! to the super cluster through DIR/super.kubeconfig and act on VirtualCluster objects; the
//! tenant manager does the work, these wait (watching, not polling) for its status.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::ResourceExt;
use serde_json::{json, Value};
use tenant_manager::reconcile::{secret_name, virtual_cluster_resource, SYSTEM_NAMESPACE};

use crate::platform::{DataDir, Layout};

/// How long a verb waits for the tenant manager.
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    /// Tenant name: a lowercase RFC 1123 label starting with a letter, at most 40 characters.
    pub name: String,
    #[command(flatten)]
    pub dir: DataDir,
    /// shared: the platform's etcd, confined to the tenant's key prefix; dedicated: an etcd of
    /// its own.
    #[arg(long, default_value = "shared", value_parser = ["shared", "dedicated"])]
    pub etcd: String,
    /// Quota: the most CPU the tenant's pods may request (e.g. 4, 500m).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Quota: the most memory the tenant's pods may request (e.g. 8Gi).
    #[arg(long)]
    pub memory: Option<String>,
    /// Quota: the most pods the tenant may run.
    #[arg(long)]
    pub pods: Option<u32>,
    /// Write the tenant's kubeconfig to DIR/tenants/NAME/kubeconfig once it serves.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub connect: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct NameArgs {
    /// Tenant name.
    pub name: String,
    #[command(flatten)]
    pub dir: DataDir,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Tenant name.
    pub name: String,
    #[command(flatten)]
    pub dir: DataDir,
    /// Print the kubeconfig instead of writing it.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Output format: table (default), json or yaml.
    #[arg(short = 'o', long, value_parser = ["json", "yaml"])]
    pub output: Option<String>,
}

/// Checks a tenant name as the VirtualCluster CRD does.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("invalid tenant name {name:?}: use at most 40 lowercase letters, digits and '-', starting with a letter and not ending with '-'");
    }
    Ok(())
}

struct Platform {
    layout: Layout,
    client: kube::Client,
    vcs: Api<DynamicObject>,
}

/// Connects to the running platform, or says clearly that it is not running.
async fn platform(dir: &DataDir) -> anyhow::Result<Platform> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let layout = Layout::new(&dir.absolute());
    let kc_path = layout.super_kubeconfig();
    let hint = format!("start it with `kplex up --data-dir {}`", layout.root.display());
    if !kc_path.exists() {
        bail!("the kplex platform is not running: {} does not exist ({hint})", kc_path.display());
    }
    let kc = kube::config::Kubeconfig::read_from(&kc_path)?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    cfg.connect_timeout = Some(Duration::from_secs(3));
    let url = cfg.cluster_url.to_string();
    let client = kube::Client::try_from(cfg)?;
    if tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await.map(|r| r.is_err()).unwrap_or(true) {
        bail!("the kplex platform is not running: the super cluster at {url} does not answer ({hint})");
    }
    let vcs = Api::all_with(client.clone(), &virtual_cluster_resource());
    Ok(Platform { layout, client, vcs })
}

fn spinner(msg: String) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("template"));
    pb.enable_steady_tick(Duration::from_millis(100));
    pb.set_message(msg);
    pb
}

fn phase(vc: &DynamicObject) -> &str {
    vc.data["status"]["phase"].as_str().unwrap_or("")
}

fn ready_message(vc: &DynamicObject) -> String {
    vc.data["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or("")
        .to_string()
}

async fn get(p: &Platform, name: &str) -> anyhow::Result<DynamicObject> {
    match p.vcs.get_opt(name).await? {
        Some(vc) => Ok(vc),
        None => bail!("tenant {name:?} not found (`kplex list` shows the tenants)"),
    }
}

/// Waits until the VirtualCluster's phase is `want` (fails on Failed or deletion).
async fn wait_phase(p: &Platform, name: &str, want: &'static str) -> anyhow::Result<DynamicObject> {
    let cond = move |o: Option<&DynamicObject>| match o {
        None => true,
        Some(vc) => phase(vc) == want || phase(vc) == "Failed",
    };
    let vc = tokio::time::timeout(WAIT, await_condition(p.vcs.clone(), name, cond))
        .await
        .map_err(|_| anyhow::anyhow!("tenant {name:?} not {want} after {WAIT:?}"))??;
    let Some(vc) = vc else { bail!("tenant {name:?} was deleted") };
    if phase(&vc) == "Failed" {
        bail!("tenant {name:?} failed: {}", ready_message(&vc));
    }
    Ok(vc)
}

/// The tenant's admin kubeconfig from its Secret.
async fn kubeconfig(p: &Platform, name: &str) -> anyhow::Result<Vec<u8>> {
    let secrets: Api<Secret> = Api::namespaced(p.client.clone(), SYSTEM_NAMESPACE);
    let s = secrets.get(&secret_name(name)).await.with_context(|| format!("reading tenant {name:?}'s kubeconfig Secret"))?;
    s.data.and_then(|mut d| d.remove("kubeconfig")).map(|b| b.0).ok_or_else(|| anyhow::anyhow!("Secret {} has no kubeconfig", secret_name(name)))
}

fn write_kubeconfig(p: &Platform, name: &str, kc: &[u8]) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = p.layout.tenant_kubeconfig(name);
    std::fs::create_dir_all(path.parent().expect("tenant dir"))?;
    let tmp = path.with_extension("tmp");
    std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?.write_all(kc)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Waits until the tenant's own API answers with its kubeconfig.
async fn wait_serving(name: &str, kc: &[u8]) -> anyhow::Result<()> {
    let kc = kube::config::Kubeconfig::from_yaml(std::str::from_utf8(kc)?)?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    cfg.connect_timeout = Some(Duration::from_secs(2));
    let client = kube::Client::try_from(cfg)?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match client.apiserver_version().await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() > deadline => bail!("tenant {name:?} does not serve: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

pub async fn create(a: CreateArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let p = platform(&a.dir).await?;
    let mut quota = serde_json::Map::new();
    if let Some(c) = &a.cpu {
        quota.insert("cpu".into(), json!(c));
    }
    if let Some(m) = &a.memory {
        quota.insert("memory".into(), json!(m));
    }
    if let Some(n) = a.pods {
        quota.insert("pods".into(), json!(n));
    }
    let mut spec = json!({"etcdMode": a.etcd});
    if !quota.is_empty() {
        spec["quota"] = Value::Object(quota);
    }
    let vc: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "tenancy.kplex.io/v1alpha1",
        "kind": "VirtualCluster",
        "metadata": {"name": a.name},
        "spec": spec,
    }))?;
    match p.vcs.create(&PostParams::default(), &vc).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => bail!("tenant {:?} already exists", a.name),
        Err(kube::Error::Api(e)) if e.code == 422 => bail!("invalid tenant {:?}: {}", a.name, e.message),
        Err(e) => return Err(e.into()),
    }
    let pb = spinner(format!("creating tenant {}", a.name));
    let r = async {
        wait_phase(&p, &a.name, "Running").await?;
        if !a.connect {
            return Ok(None);
        }
        pb.set_message(format!("waiting for tenant {} to serve", a.name));
        let kc = kubeconfig(&p, &a.name).await?;
        wait_serving(&a.name, &kc).await?;
        Ok::<_, anyhow::Error>(Some(write_kubeconfig(&p, &a.name, &kc)?))
    }
    .await;
    pb.finish_and_clear();
    match r? {
        Some(path) => println!("{}", path.display()),
        None => println!("tenant {} is running; `kplex connect {}` writes its kubeconfig", a.name, a.name),
    }
    Ok(())
}

pub async fn connect(a: ConnectArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let p = platform(&a.dir).await?;
    let vc = get(&p, &a.name).await?;
    if phase(&vc) != "Running" && phase(&vc) != "Paused" {
        bail!("tenant {:?} is {} ({})", a.name, if phase(&vc).is_empty() { "Pending" } else { phase(&vc) }, ready_message(&vc));
    }
    let kc = kubeconfig(&p, &a.name).await?;
    if a.print {
        print!("{}", String::from_utf8_lossy(&kc));
    } else {
        println!("{}", write_kubeconfig(&p, &a.name, &kc)?.display());
    }
    Ok(())
}

pub async fn list(a: ListArgs) -> anyhow::Result<()> {
    let p = platform(&a.dir).await?;
    let vcs = p.vcs.list(&ListParams::default()).await?;
    let items: Vec<Value> = vcs.items.iter().map(|v| serde_json::to_value(v).unwrap_or(Value::Null)).collect();
    let list = json!({"apiVersion": "tenancy.kplex.io/v1alpha1", "kind": "VirtualClusterList", "items": items});
    match a.output.as_deref() {
        Some("json") => println!("{}", serde_json::to_string_pretty(&list)?),
        Some("yaml") => print!("{}", serde_yaml_ng::to_string(&list)?),
        _ if vcs.items.is_empty() => eprintln!("No tenants found"),
        _ => {
            let now = chrono::Utc::now().timestamp();
            let rows: Vec<[String; 6]> = vcs
                .items
                .iter()
                .map(|v| {
                    let age = v.metadata.creation_timestamp.as_ref().map(|t| human_age(now - t.0.as_second())).unwrap_or_default();
                    [
                        v.name_any(),
                        if phase(v).is_empty() { "Pending".into() } else { phase(v).into() },
                        v.data["spec"]["etcdMode"].as_str().unwrap_or("shared").into(),
                        v.data["spec"]["paused"].as_bool().unwrap_or(false).to_string(),
                        v.data["status"]["endpoint"].as_str().unwrap_or("").into(),
                        age,
                    ]
                })
                .collect();
            let header = ["NAME", "PHASE", "ETCD", "PAUSED", "ENDPOINT", "AGE"].map(String::from);
            let mut w = [0usize; 6];
            for r in std::iter::once(&header).chain(rows.iter()) {
                for (i, c) in r.iter().enumerate() {
                    w[i] = w[i].max(c.len());
                }
            }
            for r in std::iter::once(&header).chain(rows.iter()) {
                let line: Vec<String> = r.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
    }
    Ok(())
}

fn human_age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{}s", s.max(0)),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

pub async fn delete(a: NameArgs) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let p = platform(&a.dir).await?;
    let vc = get(&p, &a.name).await?;
    let uid = vc.uid().unwrap_or_default();
    match p.vcs.delete(&a.name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => bail!("tenant {:?} not found", a.name),
        Err(e) => return Err(e.into()),
    }
    let pb = spinner(format!("deleting tenant {}", a.name));
    let cond = move |o: Option<&DynamicObject>| o.map(|o| o.uid().as_deref() != Some(uid.as_str())).unwrap_or(true);
    let r = tokio::time::timeout(WAIT, await_condition(p.vcs.clone(), &a.name, cond)).await;
    pb.finish_and_clear();
    r.map_err(|_| anyhow::anyhow!("tenant {:?} still being deleted after {WAIT:?}", a.name))??;
    let _ = std::fs::remove_file(p.layout.tenant_kubeconfig(&a.name));
    println!("tenant {} deleted", a.name);
    Ok(())
}

async fn set_paused(a: NameArgs, paused: bool) -> anyhow::Result<()> {
    validate_name(&a.name)?;
    let p = platform(&a.dir).await?;
    get(&p, &a.name).await?;
    p.vcs.patch(&a.name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"paused": paused}}))).await?;
    let (verb, want) = if paused { ("pausing", "Paused") } else { ("resuming", "Running") };
    let pb = spinner(format!("{verb} tenant {}", a.name));
    let r = async {
        wait_phase(&p, &a.name, want).await?;
        if !paused {
            wait_serving(&a.name, &kubeconfig(&p, &a.name).await?).await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    pb.finish_and_clear();
    r?;
    println!("tenant {} {}", a.name, if paused { "paused" } else { "resumed" });
    Ok(())
}

pub async fn pause(a: NameArgs) -> anyhow::Result<()> {
    set_paused(a, true).await
}

pub async fn resume(a: NameArgs) -> anyhow::Result<()> {
    set_paused(a, false).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        for ok in ["a", "demo", "team-1", &"a".repeat(40)] {
            super::validate_name(ok).unwrap();
        }
        for bad in ["", "A", "1a", "a-", "a_b", "a.b", &"a".repeat(41)] {
            assert!(super::validate_name(bad).is_err(), "{bad}");
        }
    }
}
