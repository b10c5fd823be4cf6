//! The tenant's PKI: a CA of its own, a serving certificate and an admin client certificate.
//!
//! Created with rcgen on first start and reused on every restart, so kubeconfigs handed to a
//! tenant stay valid for the life of the tenant.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// Subject alternative names every serving certificate carries, as kube-apiserver's do.
pub const SERVING_DNS_NAMES: &[&str] = &[
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// PEM material of a tenant's PKI, as stored in `DIR/pki`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
}

fn validity(params: &mut CertificateParams, years: i32) {
    let now = time_now();
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(years as u64 * 365 * 24 * 3600);
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

impl Pki {
    /// Loads the PKI from `data_dir/pki`, creating whatever is missing.
    pub fn load_or_create(data_dir: &Path, tenant: &str, extra_sans: &[String]) -> Result<Pki> {
        let dir = data_dir.join("pki");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).ok();
        let (ca_cert_pem, ca_key_pem) = match (read("ca.crt"), read("ca.key")) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, format!("kplex-{tenant}-ca"));
                params.distinguished_name = dn;
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                validity(&mut params, 10);
                let cert = params.self_signed(&key)?;
                write_secret(&dir.join("ca.key"), &key.serialize_pem())?;
                std::fs::write(dir.join("ca.crt"), cert.pem())?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let ca_key = KeyPair::from_pem(&ca_key_pem).context("parsing ca.key")?;
        let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key).context("parsing ca.crt")?;

        let (serving_cert_pem, serving_key_pem) = match (read("apiserver.crt"), read("apiserver.key")) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, "kube-apiserver");
                params.distinguished_name = dn;
                let mut sans: Vec<SanType> = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
                for n in SERVING_DNS_NAMES {
                    sans.push(SanType::DnsName((*n).try_into()?));
                }
                for extra in extra_sans {
                    match extra.parse() {
                        Ok(ip) => sans.push(SanType::IpAddress(ip)),
                        Err(_) => sans.push(SanType::DnsName(extra.as_str().try_into()?)),
                    }
                }
                params.subject_alt_names = sans;
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params.key_usages =
                    vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
                validity(&mut params, 5);
                let cert = params.signed_by(&key, &issuer)?;
                write_secret(&dir.join("apiserver.key"), &key.serialize_pem())?;
                std::fs::write(dir.join("apiserver.crt"), cert.pem())?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let (admin_cert_pem, admin_key_pem) = match (read("admin.crt"), read("admin.key")) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let (c, k) = issue_client_cert(&issuer, "kplex-admin", &["system:masters"])?;
                write_secret(&dir.join("admin.key"), &k)?;
                std::fs::write(dir.join("admin.crt"), &c)?;
                (c, k)
            }
        };
        Ok(Pki {
            dir,
            ca_cert_pem,
            ca_key_pem,
            serving_cert_pem,
            serving_key_pem,
            admin_cert_pem,
            admin_key_pem,
        })
    }

    /// Issues a client certificate for `user` in `groups`, signed by this tenant's CA.
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<(String, String)> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, ca_key)?;
        issue_client_cert(&issuer, user, groups)
    }

    /// A kubeconfig for `server` authenticating with the given client certificate.
    pub fn kubeconfig(&self, cluster: &str, server: &str, user: &str, cert: &str, key: &str) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\ncontexts:\n- name: {cluster}\n  context:\n    cluster: {cluster}\n    user: {user}\ncurrent-context: {cluster}\npreferences: {{}}\n",
            ca = b64(&self.ca_cert_pem),
            cert = b64(cert),
            key = b64(key),
        )
    }
}

fn issue_client_cert(
    issuer: &Issuer<'_, KeyPair>,
    user: &str,
    groups: &[&str],
) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for g in groups {
        dn.push(DnType::OrganizationName, *g);
    }
    dn.push(DnType::CommonName, user);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    validity(&mut params, 5);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a file only its owner may read (0600).
pub(crate) fn write_secret(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}
