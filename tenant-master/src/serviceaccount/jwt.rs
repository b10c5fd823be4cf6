//! Service account JWTs: the signing key, the claims kube-apiserver puts in bound and legacy
//! tokens (`pkg/serviceaccount/claims.go`, `legacy.go`), signing and verification.
//!
//! Tokens are ES256 (ECDSA P-256): kube-apiserver accepts RSA and ECDSA service-account keys,
//! and a P-256 key is what the tenant's PKI tooling (rcgen over ring) can generate. The key id
//! is computed as upstream's `keyIDFromPublicKey`: base64url(SHA-256(PKIX DER of the public
//! key)), so the same key gets the same `kid` as kube-apiserver would give it.
//!
//! Claims are checked here by hand (not by the JWT library's validation), with upstream's
//! one-minute leeway and error texts; the library only parses and checks the signature.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

/// The issuer of legacy (Secret-based) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// Clock skew tolerated on exp/nbf/iat and on deletion timestamps (go-jose's DefaultLeeway).
pub const LEEWAY_SECONDS: i64 = 60;

/// The signing key of a tenant's service-account tokens, with its public forms.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// `kid` of the tokens' header and of the JWK.
    pub kid: String,
    /// The public key as a JSON Web Key, as `/openid/v1/jwks` lists it.
    pub jwk: Value,
    /// The public key as PEM (`sa.pub`).
    pub public_pem: String,
}

/// Errors of key handling.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("parsing the service account key: {0}")]
    Parse(String),
    #[error("the service account key must be an ECDSA P-256 key")]
    Unsupported,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

impl SigningKey {
    /// A new random P-256 key, as PKCS#8 PEM.
    pub fn generate_pem() -> Result<String, KeyError> {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| KeyError::Parse(e.to_string()))?;
        Ok(kp.serialize_pem())
    }

    /// Loads a PKCS#8 PEM private key (`sa.key`).
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        use rcgen::PublicKeyData;
        let kp = rcgen::KeyPair::from_pem(pem).map_err(|e| KeyError::Parse(e.to_string()))?;
        if kp.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(KeyError::Unsupported);
        }
        let raw = kp.public_key_raw();
        if raw.len() != 65 || raw[0] != 4 {
            return Err(KeyError::Unsupported);
        }
        let spki = kp.subject_public_key_info();
        let kid = b64url(ring::digest::digest(&ring::digest::SHA256, &spki).as_ref());
        let (x, y) = (b64url(&raw[1..33]), b64url(&raw[33..65]));
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| KeyError::Parse(e.to_string()))?;
        let decoding =
            DecodingKey::from_ec_components(&x, &y).map_err(|e| KeyError::Parse(e.to_string()))?;
        // The field order of go-jose's JSONWebKey marshalling.
        let jwk = json!({"use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": x, "y": y});
        Ok(SigningKey {
            encoding,
            decoding,
            kid,
            jwk,
            public_pem: kp.public_key_pem(),
        })
    }

    /// The JWT algorithm name (what discovery lists as supported).
    pub fn alg(&self) -> &'static str {
        "ES256"
    }

    /// Signs claims into a compact JWT with header `{"alg":"ES256","kid":...}`.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = None;
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&h, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Checks the signature of a token and returns its claims (nothing else is checked).
    pub fn verify(&self, token: &str) -> Result<Value, String> {
        let mut v = Validation::new(Algorithm::ES256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        jsonwebtoken::decode::<Value>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }
}

/// The issuer of a token without checking its signature (to pick the authenticator).
pub fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_h, p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let payload: Value = serde_json::from_slice(&b64url_decode(p)?).ok()?;
    payload["iss"].as_str().map(String::from)
}

/// A reference to an object by name and uid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

impl Ref {
    pub fn of(obj: &Value) -> Ref {
        Ref {
            name: crate::meta::name(obj).to_string(),
            uid: crate::meta::uid(obj).to_string(),
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.name.is_empty() {
            m.insert("name".into(), json!(self.name));
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        Value::Object(m)
    }

    fn parse(v: &Value) -> Option<Ref> {
        let o = v.as_object()?;
        Some(Ref {
            name: o
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string(),
            uid: o
                .get("uid")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string(),
        })
    }
}

/// What a bound token says (upstream's `jwt.Claims` plus `privateClaims`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundClaims {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub namespace: String,
    pub service_account: Ref,
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    pub node: Option<Ref>,
    /// Seconds since the epoch.
    pub issued_at: i64,
    pub expires: i64,
    /// Past this time the token still works but is reported as stale (auto-mounted tokens
    /// whose lifetime was extended).
    pub warn_after: Option<i64>,
    pub jti: String,
}

/// `system:serviceaccount:<ns>:<name>`.
pub fn username(ns: &str, name: &str) -> String {
    format!("system:serviceaccount:{ns}:{name}")
}

impl BoundClaims {
    /// The JWT claims, keys sorted as go-jose marshals its merged claim map.
    pub fn to_json(&self) -> Value {
        let mut k = Map::new();
        k.insert("namespace".into(), json!(self.namespace));
        if let Some(n) = &self.node {
            k.insert("node".into(), n.to_json());
        }
        if let Some(p) = &self.pod {
            k.insert("pod".into(), p.to_json());
        }
        if let Some(s) = &self.secret {
            k.insert("secret".into(), s.to_json());
        }
        k.insert("serviceaccount".into(), self.service_account.to_json());
        if let Some(w) = self.warn_after {
            k.insert("warnafter".into(), json!(w));
        }
        let mut c = Map::new();
        c.insert("aud".into(), json!(self.audiences));
        c.insert("exp".into(), json!(self.expires));
        c.insert("iat".into(), json!(self.issued_at));
        c.insert("iss".into(), json!(self.issuer));
        if !self.jti.is_empty() {
            c.insert("jti".into(), json!(self.jti));
        }
        c.insert("kubernetes.io".into(), Value::Object(k));
        c.insert("nbf".into(), json!(self.issued_at));
        c.insert(
            "sub".into(),
            json!(username(&self.namespace, &self.service_account.name)),
        );
        Value::Object(c)
    }

    /// Checks the registered claims of a verified token against `now` (exp, nbf and iat with
    /// a minute of leeway) and the API audiences, and reads the private claims. Errors carry
    /// upstream's texts.
    pub fn check(
        claims: &Value,
        now: i64,
        api_audiences: &[String],
    ) -> Result<BoundClaims, String> {
        let num = |k: &str| claims.get(k).and_then(|v| v.as_f64()).map(|f| f as i64);
        if let Some(exp) = num("exp") {
            if now > exp + LEEWAY_SECONDS {
                return Err("service account token has expired".into());
            }
        }
        if let Some(nbf) = num("nbf") {
            if now + LEEWAY_SECONDS < nbf {
                return Err("service account token is not valid yet".into());
            }
        }
        if let Some(iat) = num("iat") {
            if now + LEEWAY_SECONDS < iat {
                return Err("service account token is issued in the future".into());
            }
        }
        let audiences: Vec<String> = match &claims["aud"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        // A token without audiences is taken to be for the API server (legacy behaviour).
        let effective = if audiences.is_empty() {
            api_audiences.to_vec()
        } else {
            audiences.clone()
        };
        if !api_audiences.is_empty() && !effective.iter().any(|a| api_audiences.contains(a)) {
            return Err(format!("token audiences {effective:?} is invalid for the target audiences {api_audiences:?}"));
        }
        let k = &claims["kubernetes.io"];
        let namespace = k["namespace"].as_str().unwrap_or("").to_string();
        let sa = Ref::parse(&k["serviceaccount"]).unwrap_or_default();
        if namespace.is_empty() || sa.name.is_empty() || sa.uid.is_empty() {
            return Err("service account token claims are incomplete".into());
        }
        Ok(BoundClaims {
            issuer: claims["iss"].as_str().unwrap_or("").to_string(),
            audiences,
            namespace,
            service_account: sa,
            pod: Ref::parse(&k["pod"]),
            secret: Ref::parse(&k["secret"]),
            node: Ref::parse(&k["node"]),
            issued_at: num("iat").unwrap_or(0),
            expires: num("exp").unwrap_or(0),
            warn_after: k["warnafter"].as_f64().map(|f| f as i64),
            jti: claims["jti"].as_str().unwrap_or("").to_string(),
        })
    }
}

/// What a legacy token (a `kubernetes.io/service-account-token` Secret's) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyClaims {
    pub namespace: String,
    pub service_account: Ref,
    pub secret_name: String,
}

impl LegacyClaims {
    /// The claims upstream's `LegacyClaims` plus the generator's issuer make, keys sorted.
    pub fn to_json(&self) -> Value {
        json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": self.namespace,
            "kubernetes.io/serviceaccount/secret.name": self.secret_name,
            "kubernetes.io/serviceaccount/service-account.name": self.service_account.name,
            "kubernetes.io/serviceaccount/service-account.uid": self.service_account.uid,
            "sub": username(&self.namespace, &self.service_account.name),
        })
    }

    /// Reads the claims of a verified legacy token; the subject must agree with them.
    pub fn check(claims: &Value) -> Result<LegacyClaims, String> {
        let s = |k: &str| claims[k].as_str().unwrap_or("").to_string();
        let c = LegacyClaims {
            namespace: s("kubernetes.io/serviceaccount/namespace"),
            service_account: Ref {
                name: s("kubernetes.io/serviceaccount/service-account.name"),
                uid: s("kubernetes.io/serviceaccount/service-account.uid"),
            },
            secret_name: s("kubernetes.io/serviceaccount/secret.name"),
        };
        if c.namespace.is_empty() || c.service_account.name.is_empty() || c.secret_name.is_empty() {
            return Err("service account token claims are incomplete".into());
        }
        if s("sub") != username(&c.namespace, &c.service_account.name) {
            return Err("sub claim does not match the service account".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap()
    }

    fn claims(now: i64) -> BoundClaims {
        BoundClaims {
            issuer: "https://kubernetes.default.svc.cluster.local".into(),
            audiences: vec!["https://kubernetes.default.svc.cluster.local".into()],
            namespace: "ns".into(),
            service_account: Ref {
                name: "default".into(),
                uid: "u1".into(),
            },
            pod: Some(Ref {
                name: "p".into(),
                uid: "pu".into(),
            }),
            node: Some(Ref {
                name: "n".into(),
                uid: "nu".into(),
            }),
            secret: None,
            issued_at: now,
            expires: now + 3600,
            warn_after: None,
            jti: "j".into(),
        }
    }

    fn auds() -> Vec<String> {
        vec!["https://kubernetes.default.svc.cluster.local".into()]
    }

    #[test]
    fn claims_round_trip_in_upstream_order() {
        let k = key();
        let c = claims(1000);
        let tok = k.sign(&c.to_json()).unwrap();
        let header: Value =
            serde_json::from_slice(&b64url_decode(tok.split('.').next().unwrap()).unwrap())
                .unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": k.kid}));
        let got = k.verify(&tok).unwrap();
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "aud",
                "exp",
                "iat",
                "iss",
                "jti",
                "kubernetes.io",
                "nbf",
                "sub"
            ]
        );
        let kk: Vec<&String> = got["kubernetes.io"].as_object().unwrap().keys().collect();
        assert_eq!(kk, ["namespace", "node", "pod", "serviceaccount"]);
        assert_eq!(got["sub"], "system:serviceaccount:ns:default");
        assert_eq!(BoundClaims::check(&got, 1000, &auds()).unwrap(), c);
        assert_eq!(
            unverified_issuer(&tok).as_deref(),
            Some("https://kubernetes.default.svc.cluster.local")
        );
    }

    #[test]
    fn expired_and_early_tokens_are_refused_with_a_minute_of_leeway() {
        let c = claims(1000).to_json();
        assert!(BoundClaims::check(&c, 1000 + 3600 + 60, &auds()).is_ok());
        assert_eq!(
            BoundClaims::check(&c, 1000 + 3600 + 61, &auds()).unwrap_err(),
            "service account token has expired"
        );
        assert!(BoundClaims::check(&c, 1000 - 60, &auds()).is_ok());
        assert_eq!(
            BoundClaims::check(&c, 1000 - 61, &auds()).unwrap_err(),
            "service account token is not valid yet"
        );
    }

    #[test]
    fn wrong_audience_is_refused() {
        let mut c = claims(1000);
        c.audiences = vec!["vault".into()];
        let err = BoundClaims::check(&c.to_json(), 1000, &auds()).unwrap_err();
        assert!(err.contains("is invalid for the target audiences"), "{err}");
        c.audiences = vec!["vault".into(), auds()[0].clone()];
        assert!(BoundClaims::check(&c.to_json(), 1000, &auds()).is_ok());
    }

    #[test]
    fn another_key_or_a_tampered_token_does_not_verify() {
        let (k1, k2) = (key(), key());
        assert_ne!(k1.kid, k2.kid);
        let tok = k1.sign(&claims(1000).to_json()).unwrap();
        assert!(k2.verify(&tok).is_err());
        let mut parts: Vec<String> = tok.split('.').map(String::from).collect();
        let mut payload = claims(1000).to_json();
        payload["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
        parts[1] = b64url(payload.to_string().as_bytes());
        assert!(k1.verify(&parts.join(".")).is_err());
        assert!(k1.verify("not-a-jwt").is_err());
    }

    #[test]
    fn legacy_claims_round_trip() {
        let k = key();
        let c = LegacyClaims {
            namespace: "ns".into(),
            service_account: Ref {
                name: "sa".into(),
                uid: "u".into(),
            },
            secret_name: "s".into(),
        };
        let tok = k.sign(&c.to_json()).unwrap();
        assert_eq!(unverified_issuer(&tok).as_deref(), Some(LEGACY_ISSUER));
        assert_eq!(LegacyClaims::check(&k.verify(&tok).unwrap()).unwrap(), c);
    }

    #[test]
    fn jwk_matches_the_key() {
        let k = key();
        assert_eq!(k.jwk["kid"], json!(k.kid));
        let x = b64url_decode(k.jwk["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.len(), 32);
        // The kid is the SHA-256 of the PKIX public key, base64url without padding (43 chars).
        assert_eq!(k.kid.len(), 43);
        // The same key file gives the same kid (tokens stay valid across restarts).
        let pem = SigningKey::generate_pem().unwrap();
        assert_eq!(
            SigningKey::from_pem(&pem).unwrap().kid,
            SigningKey::from_pem(&pem).unwrap().kid
        );
    }
}
