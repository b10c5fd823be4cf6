//! The local platform's data dir (`kplex up --data-dir DIR`), shared by `kplex up` and the
//! tenant verbs:
//!
//! ```text
//! DIR/platform.json         ports and etcd endpoints chosen on the first run (kept, so every
//!                           kubeconfig handed out stays valid across restarts)
//! DIR/super.kubeconfig      admin kubeconfig of the super cluster (what the CLI talks to)
//! DIR/etcd/                 the embedded etcd's data and root.password
//! DIR/super/                the super cluster API's PKI and etcd password
//! DIR/tenants/NAME/         each tenant: master/ (its master's PKI and data), etcd password,
//!                           port, master.log, and the kubeconfig `kplex create/connect` write
//! DIR/logs/                 one log file per platform component
//! DIR/up.lock               held by the running `kplex up`
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// `--data-dir`, shared by `kplex up` and every tenant verb.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// The platform's data dir.
    #[arg(long, env = "KPLEX_DATA_DIR", default_value = ".kplex")]
    pub data_dir: PathBuf,
}

impl DataDir {
    /// The directory as an absolute path (children and kubeconfigs need absolute paths).
    pub fn absolute(&self) -> PathBuf {
        if self.data_dir.is_absolute() {
            self.data_dir.clone()
        } else {
            std::env::current_dir().map(|d| d.join(&self.data_dir)).unwrap_or_else(|_| self.data_dir.clone())
        }
    }
}

/// Paths inside the data dir.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout { root: root.to_path_buf() }
    }
    pub fn state(&self) -> PathBuf {
        self.root.join("platform.json")
    }
    pub fn super_kubeconfig(&self) -> PathBuf {
        self.root.join("super.kubeconfig")
    }
    pub fn etcd_dir(&self) -> PathBuf {
        self.root.join("etcd")
    }
    pub fn etcd_root_password(&self) -> PathBuf {
        self.etcd_dir().join("root.password")
    }
    pub fn super_dir(&self) -> PathBuf {
        self.root.join("super")
    }
    pub fn tenant_dir(&self, name: &str) -> PathBuf {
        self.root.join("tenants").join(name)
    }
    pub fn tenant_kubeconfig(&self, name: &str) -> PathBuf {
        self.tenant_dir(name).join("kubeconfig")
    }
    /// The syncer's PKI (its CA signs every tenant master's client certificate).
    pub fn syncer_pki(&self) -> PathBuf {
        self.root.join("syncer").join("pki")
    }
    pub fn log(&self, component: &str) -> PathBuf {
        self.root.join("logs").join(format!("{component}.log"))
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("up.lock")
    }
}

/// What the first `kplex up` on a data dir chose.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformState {
    /// The etcd the platform uses.
    pub etcd_endpoints: Vec<String>,
    /// `kplex up` runs that etcd itself (client and peer port).
    pub embedded_etcd: Option<(u16, u16)>,
    /// The super cluster API's port on 127.0.0.1.
    pub api_port: u16,
    /// The super-scheduler's gRPC and metrics ports.
    pub scheduler_ports: (u16, u16),
    /// The syncer's gRPC and metrics ports (chosen on the first run that has a syncer).
    #[serde(default)]
    pub syncer_ports: Option<(u16, u16)>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PlatformState {
    /// Reads DIR/platform.json, or chooses free ports and writes it.
    pub fn load_or_create(layout: &Layout, etcd_endpoints: &[String]) -> anyhow::Result<PlatformState> {
        let path = layout.state();
        if let Ok(b) = std::fs::read(&path) {
            let mut s: PlatformState = serde_json::from_slice(&b).with_context(|| format!("reading {}", path.display()))?;
            let mut changed = false;
            if !etcd_endpoints.is_empty() && s.etcd_endpoints != etcd_endpoints {
                s.etcd_endpoints = etcd_endpoints.to_vec();
                s.embedded_etcd = None;
                changed = true;
            }
            if s.syncer_ports.is_none() {
                s.syncer_ports = Some((free_port()?, free_port()?));
                changed = true;
            }
            if changed {
                std::fs::write(&path, serde_json::to_vec_pretty(&s)?)?;
            }
            return Ok(s);
        }
        let embedded_etcd = if etcd_endpoints.is_empty() { Some((free_port()?, free_port()?)) } else { None };
        let s = PlatformState {
            etcd_endpoints: match embedded_etcd {
                Some((c, _)) => vec![format!("http://127.0.0.1:{c}")],
                None => etcd_endpoints.to_vec(),
            },
            embedded_etcd,
            api_port: free_port()?,
            scheduler_ports: (free_port()?, free_port()?),
            syncer_ports: Some((free_port()?, free_port()?)),
        };
        std::fs::create_dir_all(&layout.root)?;
        std::fs::write(&path, serde_json::to_vec_pretty(&s)?)?;
        Ok(s)
    }
}
