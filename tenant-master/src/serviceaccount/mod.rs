//! Service accounts and their tokens, as kube-apiserver does them: the signing key and issuer
//! ([`Issuer`]), TokenRequest ([`token`]), authentication of bound and legacy tokens
//! ([`authn`]), the ServiceAccount admission plugin on pod create ([`admission`]) and service
//! account issuer discovery (`/.well-known/openid-configuration`, `/openid/v1/jwks`).
//!
//! The controllers that keep service accounts, their legacy token Secrets and the
//! `kube-root-ca.crt` ConfigMaps in place live in `controllers/` (`serviceaccount`,
//! `serviceaccount-token`, `root-ca-cert-publisher`).

pub mod admission;
pub mod authn;
pub mod jwt;
pub mod token;

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

pub use jwt::SigningKey;

/// kube-apiserver's usual `--service-account-issuer` (kubeadm, kind).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The lifetime kubelet asks for auto-mounted tokens (1 h 7 s): a pod-bound token requested
/// with exactly this lifetime for the API's audiences is issued for [`EXTENDED_EXPIRATION_SECONDS`]
/// and only warned about past this time (`--service-account-extend-token-expiration`).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;

/// How long an extended auto-mounted token really lives (one year).
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 3600;

/// The shortest and longest lifetimes a TokenRequest may ask for.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// A TokenRequest's lifetime when it names none.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

/// Where the ServiceAccount admission mounts the token, CA and namespace into containers.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The ServiceAccount every namespace has and pods use when they name none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// The ConfigMap with the cluster CA that every namespace gets.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

/// Secret type, annotations and data keys of legacy token Secrets.
pub const SECRET_TYPE_TOKEN: &str = "kubernetes.io/service-account-token";
pub const ANNOTATION_SA_NAME: &str = "kubernetes.io/service-account.name";
pub const ANNOTATION_SA_UID: &str = "kubernetes.io/service-account.uid";

/// File names of the key pair under `DIR/pki` (as kubeadm names them).
pub const KEY_FILE: &str = "sa.key";
pub const PUB_FILE: &str = "sa.pub";

/// A tenant's service-account token issuer: the signing key, the issuer URL, the audiences
/// the API accepts, and the cluster CA that goes into `ca.crt`.
pub struct Issuer {
    /// `iss` of bound tokens (`--service-account-issuer`).
    pub issuer: String,
    /// The audiences the API server accepts (`--api-audiences`, default `[issuer]`).
    pub api_audiences: Vec<String>,
    pub key: SigningKey,
    /// PEM of the tenant CA (`DIR/pki/ca.crt`).
    pub ca_pem: String,
    /// `--service-account-extend-token-expiration` (on, as upstream).
    pub extend_expiration: bool,
    /// `--service-account-max-token-expiration` in seconds (0: no limit, as upstream).
    pub max_expiration_seconds: i64,
}

impl Issuer {
    /// Loads the signing key from `pki_dir/sa.key`, generating it (and `sa.pub`) on first start.
    pub fn load_or_create(
        pki_dir: &Path,
        ca_pem: &str,
        issuer: &str,
        audiences: &[String],
    ) -> anyhow::Result<Issuer> {
        let key_path = pki_dir.join(KEY_FILE);
        let pem = match std::fs::read_to_string(&key_path) {
            Ok(p) => p,
            Err(_) => {
                let pem = SigningKey::generate_pem()?;
                crate::pki::write_secret(&key_path, &pem)?;
                pem
            }
        };
        let key = SigningKey::from_pem(&pem)
            .with_context(|| format!("loading {}", key_path.display()))?;
        let pub_path = pki_dir.join(PUB_FILE);
        if std::fs::read_to_string(&pub_path).ok().as_deref() != Some(key.public_pem.as_str()) {
            std::fs::write(&pub_path, &key.public_pem)
                .with_context(|| format!("writing {}", pub_path.display()))?;
        }
        Ok(Issuer::new(key, ca_pem, issuer, audiences))
    }

    /// An issuer over a loaded key.
    pub fn new(key: SigningKey, ca_pem: &str, issuer: &str, audiences: &[String]) -> Issuer {
        let issuer = if issuer.is_empty() {
            DEFAULT_ISSUER.to_string()
        } else {
            issuer.to_string()
        };
        let api_audiences = if audiences.is_empty() {
            vec![issuer.clone()]
        } else {
            audiences.to_vec()
        };
        Issuer {
            issuer,
            api_audiences,
            key,
            ca_pem: ca_pem.to_string(),
            extend_expiration: true,
            max_expiration_seconds: 0,
        }
    }

    /// Whether every audience is one of the API server's.
    pub fn is_api_audiences(&self, auds: &[String]) -> bool {
        auds.iter().all(|a| self.api_audiences.contains(a))
    }

    /// The OpenID provider configuration (`/.well-known/openid-configuration`); `external`
    /// is the host:port clients reach the API at, for the default `jwks_uri`.
    pub fn openid_configuration(&self, external: &str) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("https://{external}/openid/v1/jwks"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.key.alg()],
        })
    }

    /// The public keys (`/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.key.jwk]})
    }
}

/// Paths of service account issuer discovery.
pub const OPENID_CONFIG_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// Serves the discovery documents with upstream's content types and caching headers; None
/// for other paths or when the tenant has no issuer.
pub fn serve_discovery(
    store: &crate::registry::store::Store,
    path: &str,
    external: &str,
) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let iss = store.service_accounts.get()?;
    let (body, ctype) = match path {
        OPENID_CONFIG_PATH => (iss.openid_configuration(external), "application/json"),
        JWKS_PATH => (iss.jwks(), "application/jwk-set+json"),
        _ => return None,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Some(
        (
            http::StatusCode::OK,
            [
                (http::header::CONTENT_TYPE, ctype),
                (http::header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            bytes,
        )
            .into_response(),
    )
}
