//! Authentication: client certificates signed by the tenant CA (CN = user, O = groups), bearer
//! tokens from a static token file (`token,user,uid,"group1,group2"`) and service account
//! tokens (see [`crate::serviceaccount::authn`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use x509_parser::prelude::*;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/pod-name`, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Authenticates requests of a connection.
pub struct Authenticator {
    verifier: Arc<dyn ClientCertVerifier>,
    tokens: HashMap<String, User>,
}

/// Parses a kube-apiserver static token file.
pub fn parse_token_file(content: &str) -> HashMap<String, User> {
    let mut out = HashMap::new();
    for line in content.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        for c in line.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() < 3 {
            continue;
        }
        let mut groups: Vec<String> = fields.get(3).map(|g| g.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()).unwrap_or_default();
        groups.push("system:authenticated".into());
        out.insert(fields[0].clone(), User { name: fields[1].clone(), uid: fields[2].clone(), groups, extra: BTreeMap::new() });
    }
    out
}

impl Authenticator {
    pub fn new(verifier: Arc<dyn ClientCertVerifier>, token_file: Option<&Path>) -> Authenticator {
        let tokens = token_file
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|c| parse_token_file(&c))
            .unwrap_or_default();
        Authenticator { verifier, tokens }
    }

    /// The user a verified client certificate chain stands for (None if it does not verify).
    pub fn from_certs(&self, certs: &[CertificateDer<'static>]) -> Option<User> {
        let (leaf, rest) = certs.split_first()?;
        self.verifier.verify_client_cert(leaf, rest, UnixTime::now()).ok()?;
        let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
        let subject = cert.subject();
        let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
        let mut groups: Vec<String> = subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
        groups.push("system:authenticated".into());
        Some(User { name, uid: String::new(), groups, extra: BTreeMap::new() })
    }

    /// The user a bearer token stands for (static tokens only).
    pub fn from_token(&self, token: &str) -> Option<User> {
        self.tokens.get(token).cloned()
    }

    /// The user a bearer token stands for: a static token, else a service account token of
    /// this tenant (checked against the objects in `store`).
    pub async fn from_bearer(&self, token: &str, store: &crate::registry::store::Store) -> Option<User> {
        if let Some(u) = self.from_token(token) {
            return Some(u);
        }
        let issuer = store.service_accounts.get()?;
        match crate::serviceaccount::authn::authenticate(store, issuer, token, chrono::Utc::now().timestamp()).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "service account token refused");
                None
            }
        }
    }
}
