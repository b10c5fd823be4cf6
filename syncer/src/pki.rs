//! The syncer's PKI: a CA in `--pki-dir` (created on first start), the syncer's serving
//! certificate, and the client certificates of tenant masters. A tenant's identity is in its
//! certificate: CommonName = tenant name, OrganizationalUnit = tenant uid.

use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

/// DNS names the serving certificate is valid for (tenant masters dial one of these or an IP).
pub const SERVING_DNS_NAMES: &[&str] = &["localhost", "kplex-syncer", "kplex-syncer.kplex-system", "kplex-syncer.kplex-system.svc"];

/// The syncer's CA and serving certificate, as PEM.
pub struct SyncerPki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
}

fn validity(params: &mut CertificateParams, years: u64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(years * 365 * 24 * 3600);
}

fn write_secret(path: &Path, data: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(data.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn write_public(path: &Path, data: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Loads the CA from `dir` (ca.crt/ca.key), creating it first if absent.
fn load_or_create_ca(dir: &Path) -> Result<(String, String)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).ok();
    if let (Some(c), Some(k)) = (read("ca.crt"), read("ca.key")) {
        return Ok((c, k));
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kplex-syncer-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut params, 10);
    let cert = params.self_signed(&key)?;
    // The key first: a crash in between leaves no certificate without its key.
    write_secret(&dir.join("ca.key"), &key.serialize_pem())?;
    write_public(&dir.join("ca.crt"), &cert.pem())?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn issuer(ca_cert: &str, ca_key: &str) -> Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::from_pem(ca_key).context("parsing ca.key")?;
    Issuer::from_ca_cert_pem(ca_cert, key).context("parsing ca.crt")
}

impl SyncerPki {
    /// The CA plus a serving certificate for `SERVING_DNS_NAMES`, 127.0.0.1 and `extra_sans`.
    pub fn load_or_create(dir: &Path, extra_sans: &[String]) -> Result<SyncerPki> {
        let (ca_cert_pem, ca_key_pem) = load_or_create_ca(dir)?;
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).ok();
        let (serving_cert_pem, serving_key_pem) = match (read("syncer.crt"), read("syncer.key")) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let iss = issuer(&ca_cert_pem, &ca_key_pem)?;
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::default();
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, "kplex-syncer");
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
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
                validity(&mut params, 5);
                let cert = params.signed_by(&key, &iss)?;
                write_secret(&dir.join("syncer.key"), &key.serialize_pem())?;
                write_public(&dir.join("syncer.crt"), &cert.pem())?;
                (cert.pem(), key.serialize_pem())
            }
        };
        Ok(SyncerPki { ca_cert_pem, serving_cert_pem, serving_key_pem })
    }
}

/// Issues a tenant master's client certificate from the syncer's CA in `pki_dir` (created if
/// absent) and writes `ca.crt`, `tls.crt` and `tls.key` into `out_dir`. The tenant master passes
/// them as `--syncer-ca`, `--syncer-cert` and `--syncer-key`.
pub fn issue_tenant_client(pki_dir: &Path, tenant: &str, uid: &str, out_dir: &Path) -> Result<()> {
    anyhow::ensure!(!tenant.is_empty() && !uid.is_empty(), "tenant name and uid must not be empty");
    let (ca_cert, ca_key) = load_or_create_ca(pki_dir)?;
    let iss = issuer(&ca_cert, &ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationalUnitName, uid);
    dn.push(DnType::CommonName, tenant);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    validity(&mut params, 5);
    let cert = params.signed_by(&key, &iss)?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    write_public(&out_dir.join("ca.crt"), &ca_cert)?;
    write_secret(&out_dir.join("tls.key"), &key.serialize_pem())?;
    write_public(&out_dir.join("tls.crt"), &cert.pem())?;
    Ok(())
}

/// A tenant's identity read from its (already verified) client certificate, DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantIdentity {
    pub tenant: String,
    pub uid: String,
}

/// Reads CommonName (tenant) and OrganizationalUnit (uid) of a client certificate.
pub fn identity_of(der: &[u8]) -> Option<TenantIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let tenant = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    let uid = subject.iter_organizational_unit().next()?.as_str().ok()?.to_string();
    (!tenant.is_empty() && !uid.is_empty()).then_some(TenantIdentity { tenant, uid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_certificate_carries_name_and_uid() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let out = dir.path().join("t1");
        issue_tenant_client(&pki, "t1", "0a1b-uid", &out).unwrap();
        let pem = std::fs::read_to_string(out.join("tls.crt")).unwrap();
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        assert_eq!(identity_of(&p.contents), Some(TenantIdentity { tenant: "t1".into(), uid: "0a1b-uid".into() }));
        // The CA is created once and reused by the serving certificate.
        let s = SyncerPki::load_or_create(&pki, &[]).unwrap();
        assert_eq!(s.ca_cert_pem, std::fs::read_to_string(out.join("ca.crt")).unwrap());
    }
}
