//! etcd administration for a shared etcd: one user and one role per tenant whose only
//! permission is read-write on exactly the tenant's key range, the root user that `kplex up`
//! creates before enabling auth, and the removal of a tenant's keys, user and role.
//!
//! Key layout: the super cluster under `/kplex/super/`, tenant `t` under `/kplex/tenants/t/`.
//! A permission is the half-open range `[P/, end(P/))` with the trailing slash, so tenant `a`'s
//! range never covers tenant `ab`'s keys.

use std::path::Path;

use etcd_client::{Client, ConnectOptions, DeleteOptions, Permission, PermissionType};

/// Parent of every tenant's prefix.
pub const TENANTS_PREFIX: &str = "/kplex/tenants";

/// An etcd error, or a file error around credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The tenant master's `--etcd-prefix` for tenant `name`.
pub fn tenant_prefix(name: &str) -> String {
    format!("{TENANTS_PREFIX}/{name}")
}

/// The etcd user (and role) of tenant `name`.
pub fn tenant_user(name: &str) -> String {
    format!("kplex-tenant-{name}")
}

/// The smallest key greater than every key starting with `prefix` (etcd's prefix range end).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The key range `[start, end)` a tenant master with `--etcd-prefix prefix` uses: every key it
/// reads, writes or watches starts with `prefix/`.
pub fn key_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let start = format!("{}/", prefix.trim_end_matches('/')).into_bytes();
    let end = prefix_end(&start);
    (start, end)
}

/// Connects, authenticating as `user` when given.
pub async fn connect(endpoints: &[String], user: Option<(String, String)>) -> Result<Client, Error> {
    let mut opts = ConnectOptions::new().with_connect_timeout(std::time::Duration::from_secs(5));
    if let Some((u, p)) = user {
        opts = opts.with_user(u, p).with_auto_token_refresh(true);
    }
    Ok(Client::connect(endpoints, Some(opts)).await?)
}

fn is(e: &etcd_client::Error, what: &str) -> bool {
    e.to_string().contains(what)
}

/// Reads a password file (trailing newline ignored).
pub fn read_password(file: &Path) -> Result<String, Error> {
    Ok(std::fs::read_to_string(file)?.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads the password in `file`, or creates the file (mode 0600) with a new random one.
pub fn load_or_create_password(file: &Path) -> Result<String, Error> {
    if file.exists() {
        return read_password(file);
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(d) = file.parent() {
        std::fs::create_dir_all(d)?;
    }
    let pw: String = (0..32).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect();
    let tmp = file.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp)?;
    f.write_all(pw.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)?;
    Ok(pw)
}

/// Makes `user` (password `password`) hold one role of the same name whose only permission is
/// read-write on [`key_range`]`(prefix)`; fixes a role that grants anything else.
pub async fn ensure_prefix_user(client: &mut Client, user: &str, prefix: &str, password: &str) -> Result<(), Error> {
    let (start, end) = key_range(prefix);
    match client.role_add(user).await {
        Ok(_) => {}
        Err(e) if is(&e, "role name already exists") => {}
        Err(e) => return Err(e.into()),
    }
    let perms = client.role_get(user).await?.permissions();
    let mut exact = false;
    for p in perms {
        if p.key() == start.as_slice() && p.range_end() == end.as_slice() && p.get_type() == PermissionType::Readwrite as i32 {
            exact = true;
        } else {
            let mut opts = etcd_client::RoleRevokePermissionOptions::new();
            if !p.range_end().is_empty() {
                opts = opts.with_range_end(p.range_end().to_vec());
            }
            client.role_revoke_permission(user, p.key().to_vec(), Some(opts)).await?;
        }
    }
    if !exact {
        client.role_grant_permission(user, Permission::read_write(start).with_range_end(end)).await?;
    }
    match client.user_add(user, password, None).await {
        Ok(_) => {}
        Err(e) if is(&e, "user name already exists") => {
            client.user_change_password(user, password).await?;
        }
        Err(e) => return Err(e.into()),
    }
    client.user_grant_role(user, user).await?;
    Ok(())
}

/// Deletes every key in the tenant's range, then its user and role (missing ones are fine).
pub async fn remove_prefix_user(client: &mut Client, user: &str, prefix: &str) -> Result<(), Error> {
    let (start, end) = key_range(prefix);
    client.delete(start, Some(DeleteOptions::new().with_range(end))).await?;
    match client.user_delete(user).await {
        Ok(_) => {}
        Err(e) if is(&e, "user name not found") => {}
        Err(e) => return Err(e.into()),
    }
    match client.role_delete(user).await {
        Ok(_) => {}
        Err(e) if is(&e, "role name not found") => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Turns etcd auth on with a `root` user whose password is in `password_file` (created if
/// missing), and returns a root client. Idempotent: on an etcd with auth already on it only
/// logs in. The password file is written before the user exists, so a crash in between is
/// repaired by the next run.
pub async fn bootstrap_root(endpoints: &[String], password_file: &Path) -> Result<Client, Error> {
    let pw = load_or_create_password(password_file)?;
    if let Ok(c) = connect(endpoints, Some(("root".into(), pw.clone()))).await {
        return Ok(c);
    }
    let mut c = connect(endpoints, None).await?;
    match c.user_add("root", pw.as_str(), None).await {
        Ok(_) => {}
        Err(e) if is(&e, "user name already exists") => {
            c.user_change_password("root", pw.as_str()).await?;
        }
        Err(e) => return Err(e.into()),
    }
    // The root role exists implicitly in etcd; granting it is idempotent.
    c.user_grant_role("root", "root").await?;
    c.auth_enable().await?;
    connect(endpoints, Some(("root".into(), pw))).await
}

/// Compacts the shared etcd every `every`, to the revision seen one round before (as
/// kube-apiserver does), so history stays at least one interval long. Tenant masters on a
/// shared etcd run with compaction off; the platform does it once for all.
pub async fn compactor(mut client: Client, every: std::time::Duration) {
    let mut last = 0;
    loop {
        tokio::time::sleep(every).await;
        match client.get("/kplex/", Some(etcd_client::GetOptions::new().with_count_only())).await {
            Ok(r) => {
                let rev = r.header().map(|h| h.revision()).unwrap_or(0);
                if last > 0 {
                    if let Err(e) = client.compact(last, None).await {
                        tracing::debug!(error = %e, "compaction skipped");
                    }
                }
                last = rev;
            }
            Err(e) => tracing::warn!(error = %e, "reading the etcd revision for compaction"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_range_is_exactly_its_prefix() {
        let (s, e) = key_range("/kplex/tenants/a");
        assert_eq!(s, b"/kplex/tenants/a/");
        assert_eq!(e, b"/kplex/tenants/a0");
        // Tenant "ab" is outside a's range; a's own keys are inside.
        let inside = |k: &[u8]| k >= s.as_slice() && k < e.as_slice();
        assert!(inside(b"/kplex/tenants/a/registry/namespaces/x"));
        assert!(!inside(b"/kplex/tenants/ab/registry/namespaces/x"));
        assert!(!inside(b"/kplex/tenants/a"));
        assert!(!inside(b"/kplex/super/registry/x"));
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
