//! HTTPS serving: rustls with optional client certificates, HTTP/1.1 and HTTP/2, and per-request
//! authentication.
//!
//! Client certificates are requested but not required, and a certificate that does not verify
//! does not fail the handshake: like kube-apiserver, the request then is simply not authenticated
//! by it (and gets 401 unless a valid bearer token comes along).

use std::sync::Arc;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, ApiState};
use crate::auth::Authenticator;

/// Accepts any client certificate at the TLS layer (signatures are still checked); the chain is
/// verified per request by the [`Authenticator`].
#[derive(Debug)]
struct Lenient(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for Lenient {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }
    fn verify_client_cert(&self, _end: &CertificateDer<'_>, _i: &[CertificateDer<'_>], _now: UnixTime) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn pem_certs(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut rd = std::io::BufReader::new(pem.as_bytes());
    Ok(rustls_pemfile::certs(&mut rd).collect::<Result<Vec<_>, _>>()?)
}

/// Builds the TLS configuration and the authenticator from the tenant's PKI.
pub fn tls_setup(pki: &crate::pki::Pki, token_file: Option<&std::path::Path>) -> anyhow::Result<(Arc<ServerConfig>, Arc<Authenticator>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for c in pem_certs(&pki.ca_cert_pem)? {
        roots.add(c)?;
    }
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let certs = pem_certs(&pki.serving_cert_pem)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut std::io::BufReader::new(pki.serving_key_pem.as_bytes()))?
        .ok_or_else(|| anyhow::anyhow!("no private key in apiserver.key"))?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(Lenient(inner.clone())))
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let auth = Arc::new(Authenticator::new(inner, token_file));
    Ok((Arc::new(cfg), auth))
}

/// Serves HTTPS on `listener` until the process ends.
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, auth: Arc<Authenticator>, st: ApiState) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, _peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let auth = auth.clone();
        let st = st.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(t)) => t,
                _ => return,
            };
            let cert_user = tls.get_ref().1.peer_certificates().and_then(|c| auth.from_certs(c));
            let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let st = st.clone();
                let auth = auth.clone();
                let cert_user = cert_user.clone();
                async move {
                    let mut user = cert_user;
                    if user.is_none() {
                        let tok = req
                            .headers()
                            .get(http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .map(|t| t.trim().to_string());
                        if let Some(tok) = tok {
                            user = auth.from_bearer(&tok, &st.store).await;
                        }
                    }
                    Ok::<_, std::convert::Infallible>(api::serve(st, req.map(Body::new), user).await)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc).await;
        });
    }
}
