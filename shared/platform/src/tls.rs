//! Encryption in transit, when configured: a service serves TLS when given a certificate and a
//! key (`GATEWAY_TLS_CERT_FILE` and `GATEWAY_TLS_KEY_FILE` for the gateway facing clients,
//! `EMOTION_...` and `SCORING_...` for the services facing their peers), and clients (gRPC, and
//! the gateway's proxy) speak TLS to `https://` addresses, trusting `TLS_CA_FILE`.
//! PostgreSQL and RabbitMQ connections use TLS when their URL asks (`sslmode=require`,
//! `amqps://`, the broker checked against the same CA). Nothing here is on by default: the
//! embedded stack runs on loopback.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::config::{ConfigError, Env};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("the certificate and key do not make a TLS configuration")]
    Config(#[source] rustls::Error),
    #[error("reading the CA file {path}")]
    Ca {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a service's TLS needs, from the environment.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// `TLS_CERT_FILE` and `TLS_KEY_FILE` (PEM): serve TLS instead of plain TCP.
    pub serve: Option<(PathBuf, PathBuf)>,
    /// `TLS_CA_FILE` (PEM): the authority `https://` peers' certificates are checked against.
    pub ca: Option<PathBuf>,
}

impl TlsConfig {
    /// `prefix` names the service (`GATEWAY`, `EMOTION`, ...): its certificate is
    /// `<prefix>_TLS_CERT_FILE` and `<prefix>_TLS_KEY_FILE`, so services sharing one
    /// environment (the one-process stack) each choose; the CA is shared.
    pub fn from_env(env: &Env, prefix: &str) -> Result<Self, ConfigError> {
        let cert_key = format!("{prefix}_TLS_CERT_FILE");
        let cert = env.optional(&cert_key).map(PathBuf::from);
        let key = env
            .optional(&format!("{prefix}_TLS_KEY_FILE"))
            .map(PathBuf::from);
        let serve = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::invalid(
                    &cert_key,
                    "(one of the pair)",
                    "the certificate and key files are set together or not at all",
                ));
            }
        };
        Ok(Self {
            serve,
            ca: env.optional("TLS_CA_FILE").map(PathBuf::from),
        })
    }

    /// The acceptor for the configured certificate, when there is one. HTTP/2 (gRPC) and
    /// HTTP/1.1 are offered by ALPN, so one port still serves both.
    pub fn acceptor(&self) -> Result<Option<TlsAcceptor>, TlsError> {
        let Some((cert, key)) = &self.serve else {
            return Ok(None);
        };
        let certs = certificates(cert)?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate { path: cert.clone() });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Read {
            path: key.clone(),
            source,
        })?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(TlsError::Config)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(TlsAcceptor::from(Arc::new(config))))
    }

    /// What gRPC clients need to reach `https://` peers, when a CA is configured.
    pub fn client(&self) -> Result<Option<tonic::transport::ClientTlsConfig>, TlsError> {
        let Some(ca) = &self.ca else { return Ok(None) };
        let pem = read(ca)?;
        Ok(Some(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
        ))
    }
}

impl TlsConfig {
    /// What an HTTPS client of peers needs: the configured CA as its only root (none without
    /// `TLS_CA_FILE`, so an `https://` peer is then refused rather than trusted blindly).
    pub fn rustls_client(&self) -> Result<rustls::ClientConfig, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &self.ca {
            for cert in certificates(ca)? {
                roots.add(cert).map_err(TlsError::Config)?;
            }
        }
        // No ALPN here: the HTTPS connector sets it from the protocols it enables.
        Ok(rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

/// Every certificate of a PEM file.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Ca {
        path: path.to_path_buf(),
        source,
    })
}

/// One crypto provider named explicitly: several crates in the tree enable rustls, and a
/// process-wide default would depend on which did.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
