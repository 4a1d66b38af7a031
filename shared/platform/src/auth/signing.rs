//! The backend's own signing key (ES256), for the embedded default without an identity provider
//! and for candidates' invitations: created on first start in the data directory, published as a
//! JWKS so the gateway verifies these tokens exactly as it verifies a provider's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::AuthError;
use super::claims::Claims;
use super::principal::Principal;

const PEM_LABEL: &str = "PRIVATE KEY";

/// An ES256 key pair with its key id (the RFC 7638 thumbprint of its public half).
pub struct SigningKey {
    issuer: String,
    audience: String,
    kid: String,
    encoding: EncodingKey,
    /// The public point's coordinates, base64url.
    x: String,
    y: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key, kept only in memory (tests).
    pub fn generate(issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| AuthError::Key("generating an ES256 key failed".into()))?;
        Self::from_pkcs8(pkcs8.as_ref(), issuer, audience)
    }

    /// The key in `path` (PKCS#8 PEM), created there with owner-only permissions when missing.
    pub fn load_or_create(path: &Path, issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let io = |source| AuthError::KeyFile {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(pem) => {
                let der = from_pem(&pem).ok_or_else(|| {
                    AuthError::Key(format!(
                        "{} is not a PKCS#8 PEM private key",
                        path.display()
                    ))
                })?;
                Self::from_pkcs8(&der, issuer, audience)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| AuthError::Key("generating an ES256 key failed".into()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                match write_private(path, to_pem(pkcs8.as_ref()).as_bytes()) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "created the signing key");
                        Self::from_pkcs8(pkcs8.as_ref(), issuer, audience)
                    }
                    // Another service of the same stack created it first: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(path, issuer, audience)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_pkcs8(der: &[u8], issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| AuthError::Key(format!("not an ES256 (P-256) key: {e}")))?;
        // An uncompressed point: 0x04, then x and y of 32 bytes each.
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(AuthError::Key("unexpected public key encoding".into()));
        }
        let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
        // RFC 7638: the digest of the required members in lexical order, no spaces.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        Ok(Self {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            kid: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            encoding: EncodingKey::from_ec_der(der),
            x,
            y,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for `principal`, valid for `ttl`.
    pub fn mint(&self, principal: &Principal, ttl: Duration) -> Result<String, AuthError> {
        self.sign(&Claims::for_principal(
            &self.issuer,
            &self.audience,
            principal,
            ttl,
        ))
    }

    /// Signs any claims with this key (tests use it for expired or misaddressed tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(AuthError::Sign)
    }

    /// The public key as a JWKS document, as `/.well-known/jwks.json` serves it.
    pub fn jwks(&self) -> JwkSet {
        let doc = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": self.x, "y": self.y,
            "kid": self.kid, "alg": "ES256", "use": "sig",
        }]});
        serde_json::from_value(doc).expect("a well-formed JWK")
    }
}

/// The default place of the signing key: `<DATA_DIR>/auth/signing-key.pem`.
pub fn default_key_path(data_dir: &str) -> PathBuf {
    Path::new(data_dir).join("auth").join("signing-key.pem")
}

fn to_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {PEM_LABEL}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {PEM_LABEL}-----\n"));
    pem
}

fn from_pem(pem: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let body = pem.split(&begin).nth(1)?.split(&end).next()?;
    let joined: String = body.split_whitespace().collect();
    STANDARD.decode(joined).ok()
}

/// Writes a secret readable by its owner only.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_loaded_back_with_the_same_id() {
        let dir = std::env::temp_dir().join(format!("iv-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("auth").join("signing-key.pem");
        let first = SigningKey::load_or_create(&path, "iss", "aud").unwrap();
        let again = SigningKey::load_or_create(&path, "iss", "aud").unwrap();
        assert_eq!(first.kid(), again.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the key is the owner's alone");
        }
        std::fs::write(dir.join("bad.pem"), "not a key").unwrap();
        assert!(SigningKey::load_or_create(&dir.join("bad.pem"), "iss", "aud").is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
