//! `spec.etcdMode: dedicated`: an etcd of the tenant's own, a supervised child next to its
//! master (data in DIR/tenants/NAME/etcd, loopback ports chosen once and kept in
//! DIR/tenants/NAME/etcd/ports). Auth is on, as on the shared etcd: a root user for the tenant
//! manager and the tenant's user confined to its prefix.
//!
//! The mode is fixed when the tenant is first reconciled (DIR/tenants/NAME/etcd-mode): moving a
//! tenant between a shared and a dedicated etcd would need a data migration, which is not done.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::supervisor::ChildSpec;

/// The etcd mode recorded for the tenant in `dir`, recording `requested` the first time.
pub fn mode(dir: &Path, requested: &str) -> std::io::Result<String> {
    let f = dir.join("etcd-mode");
    if let Ok(m) = std::fs::read_to_string(&f) {
        return Ok(m.trim().to_string());
    }
    let m = if requested == "dedicated" { "dedicated" } else { "shared" };
    std::fs::write(&f, format!("{m}\n"))?;
    Ok(m.to_string())
}

/// The dedicated etcd's client and peer ports (chosen on first use, then kept).
pub fn ports(dir: &Path) -> std::io::Result<(u16, u16)> {
    let f = dir.join("etcd").join("ports");
    if let Some((c, p)) = std::fs::read_to_string(&f).ok().and_then(|s| {
        let (c, p) = s.trim().split_once(' ')?;
        Some((c.parse().ok()?, p.parse().ok()?))
    }) {
        return Ok((c, p));
    }
    let free = || -> std::io::Result<u16> { Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()) };
    let (c, p) = (free()?, free()?);
    std::fs::create_dir_all(dir.join("etcd"))?;
    std::fs::write(&f, format!("{c} {p}\n"))?;
    Ok((c, p))
}

/// Arguments of a single-member etcd on loopback with its data in `data_dir` (the platform's
/// own etcd and a tenant's dedicated one). Simple auth tokens are refreshed by the clients; a
/// long TTL avoids needless re-logins of hundreds of idle tenant masters.
pub fn local_etcd_args(data_dir: &Path, client: u16, peer: u16) -> Vec<String> {
    let c = format!("http://127.0.0.1:{client}");
    let p = format!("http://127.0.0.1:{peer}");
    let data = data_dir.display().to_string();
    let initial = format!("kplex={p}");
    [
        "--name",
        "kplex",
        "--data-dir",
        &data,
        "--listen-client-urls",
        &c,
        "--advertise-client-urls",
        &c,
        "--listen-peer-urls",
        &p,
        "--initial-advertise-peer-urls",
        &p,
        "--initial-cluster",
        &initial,
        "--auth-token-ttl",
        "86400",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The dedicated etcd of the tenant whose data dir is `dir`.
pub fn etcd_spec(name: &str, dir: &Path, client: u16, peer: u16) -> ChildSpec {
    let args = local_etcd_args(&dir.join("etcd").join("data"), client, peer);
    ChildSpec {
        name: format!("etcd/{name}"),
        program: "etcd".into(),
        args,
        log: dir.join("etcd.log"),
        ready_marker: None,
        pid_file: Some(dir.join("etcd.pid")),
    }
}

/// Waits until something listens on 127.0.0.1:`port`.
pub async fn wait_tcp(port: u16, timeout: Duration) -> std::io::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
