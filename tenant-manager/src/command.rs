//! The tenant master's command line: built in this one function, so the syncer's flags (and any
//! later ones) are added in one place.

use std::path::PathBuf;

/// Everything a tenant master's command line depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterSpec {
    /// The tenant's name (VirtualCluster name).
    pub name: String,
    /// The tenant's uid (VirtualCluster uid).
    pub uid: String,
    /// DATA_DIR/tenants/NAME: PKI, kubeconfig, token file.
    pub data_dir: PathBuf,
    /// host:port to serve on.
    pub listen: String,
    pub etcd_endpoints: Vec<String>,
    /// `/kplex/tenants/NAME`.
    pub etcd_prefix: String,
    /// The tenant's own etcd user and its password file (None on an etcd without auth).
    pub etcd_credentials: Option<(String, PathBuf)>,
    /// The master compacts its etcd itself (a dedicated etcd); on the shared etcd the tenant
    /// manager compacts once for everyone.
    pub compaction: bool,
    /// The syncer to stream to: its URL and the directory holding ca.crt, tls.crt and tls.key
    /// (the tenant's client certificate).
    pub syncer: Option<(String, PathBuf)>,
}

/// The arguments after the `kplex` binary that run the tenant master described by `s`.
///
/// Compaction is off unless `s.compaction`: on a shared etcd the tenant manager compacts once
/// for everyone.
pub fn tenant_master_args(s: &MasterSpec) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "tenant-master".into(),
        "--name".into(),
        s.name.clone(),
        "--data-dir".into(),
        s.data_dir.display().to_string(),
        "--listen".into(),
        s.listen.clone(),
        "--etcd-endpoints".into(),
        s.etcd_endpoints.join(","),
        "--etcd-prefix".into(),
        s.etcd_prefix.clone(),
    ];
    if !s.compaction {
        a.extend(["--etcd-compaction-interval".into(), "0".into()]);
    }
    if let Some((user, file)) = &s.etcd_credentials {
        a.extend(["--etcd-user".into(), user.clone(), "--etcd-password-file".into(), file.display().to_string()]);
    }
    if let Some((endpoint, dir)) = &s.syncer {
        let f = |n: &str| dir.join(n).display().to_string();
        a.extend(["--syncer-endpoint".into(), endpoint.clone(), "--syncer-ca".into(), f("ca.crt"), "--syncer-cert".into(), f("tls.crt"), "--syncer-key".into(), f("tls.key")]);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_passed_as_a_file() {
        let s = MasterSpec {
            name: "a".into(),
            uid: "u".into(),
            data_dir: "/d/tenants/a".into(),
            listen: "127.0.0.1:7000".into(),
            etcd_endpoints: vec!["http://e1".into(), "http://e2".into()],
            etcd_prefix: "/kplex/tenants/a".into(),
            etcd_credentials: Some(("kplex-tenant-a".into(), "/d/tenants/a/etcd.password".into())),
            compaction: false,
            syncer: None,
        };
        let a = tenant_master_args(&s).join(" ");
        assert!(a.starts_with("tenant-master --name a --data-dir /d/tenants/a --listen 127.0.0.1:7000"), "{a}");
        assert!(a.contains("--etcd-endpoints http://e1,http://e2 --etcd-prefix /kplex/tenants/a"), "{a}");
        assert!(a.ends_with("--etcd-user kplex-tenant-a --etcd-password-file /d/tenants/a/etcd.password"), "{a}");
        assert!(!a.contains("--etcd-password "), "{a}");
    }
}
