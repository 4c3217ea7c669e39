//! The two halves of every TLS setting, each read from files and
//! re-readable while connections keep running: [`Identity`] (what this
//! side presents: a chain and its key) and [`Trust`] (whom it accepts: the
//! CAs). rustls asks them at every handshake, through the resolver and
//! verifier adapters here, so a reload takes effect at the next handshake
//! and established connections are left alone.
//!
//! A reload that fails keeps what was loaded before: a half-written
//! renewal never leaves a node without a certificate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::{pem, TlsError};

/// The one crypto provider: ring (no OpenSSL, no C toolchain beyond cc).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `config` without session resumption: a resumed session skips the
/// certificate checks, so a client whose certificate or CA a reload
/// dropped could go on resuming. Every connection does a full handshake
/// against what is loaded now (peers keep their connections open, so
/// this costs them almost nothing).
pub(crate) fn without_resumption(mut config: ServerConfig) -> ServerConfig {
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.ticketer = Arc::new(NoTickets);
    config
}

/// Issues no session tickets (TLS 1.2's stateless resumption).
#[derive(Debug)]
struct NoTickets;

impl rustls::server::ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

fn read_lock<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write_lock<T>(l: &RwLock<T>, v: T) {
    *l.write().unwrap_or_else(|p| p.into_inner()) = v;
}

/// A certificate chain and its private key, from two PEM files.
pub struct Identity {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads `cert` (the chain, end entity first) and `key`, and checks
    /// that the key is the certificate's.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let current = Self::read(cert, key, &provider)?;
        Ok(Arc::new(Identity {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(current),
        }))
    }

    fn read(cert: &Path, key: &Path, p: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        let chain = pem::certificates(cert)?;
        let der = pem::private_key(key)?;
        CertifiedKey::from_der(chain, der, p)
            .map(Arc::new)
            .map_err(|source| TlsError::Rustls {
                what: format!("{} with {}", cert.display(), key.display()),
                source,
            })
    }

    /// Reads the files again; on failure keeps the current identity.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Self::read(&self.cert, &self.key, &self.provider)?;
        write_lock(&self.current, fresh);
        Ok(())
    }

    /// The chain presented now; its first certificate is this side's.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        read_lock(&self.current).cert.clone()
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(read_lock(&self.current))
    }
}

impl ResolvesClientCert for Identity {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(read_lock(&self.current))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[derive(Clone)]
struct Verifiers {
    clients: Arc<dyn ClientCertVerifier>,
    servers: Arc<WebPkiServerVerifier>,
}

/// The CAs one side accepts, from PEM files: a peer's chain must lead to
/// one of them.
pub struct Trust {
    files: Vec<PathBuf>,
    provider: Arc<CryptoProvider>,
    current: RwLock<Verifiers>,
    refusals: AtomicU64,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Trust {
    /// Reads the CAs of `files` (at least one).
    pub fn load(files: &[&Path]) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let files: Vec<PathBuf> = files.iter().map(|f| f.to_path_buf()).collect();
        let current = Self::read(&files, &provider)?;
        Ok(Arc::new(Trust {
            files,
            provider,
            current: RwLock::new(current),
            refusals: AtomicU64::new(0),
        }))
    }

    /// Certificates refused so far (another CA's, expired, malformed, or
    /// a server's naming another host), by every verifier of this trust.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Counts and logs a refusal, once per handshake, where it is known
    /// (a transport that cannot see its TLS handshakes, as actix-web's,
    /// still gets its line and its count).
    fn refused<T>(&self, r: Result<T, rustls::Error>, side: &str) -> Result<T, rustls::Error> {
        if let Err(e) = &r {
            self.refusals.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(reason = %e, "refusing a {side}'s TLS certificate");
        }
        r
    }

    fn read(files: &[PathBuf], p: &Arc<CryptoProvider>) -> Result<Verifiers, TlsError> {
        let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let roots = Arc::new(pem::roots(&paths)?);
        let first = files.first().cloned().unwrap_or_default();
        let verifier_error = |e: rustls::client::VerifierBuilderError| TlsError::Verifier {
            path: first.clone(),
            detail: e.to_string(),
        };
        let clients =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(p))
                .build()
                .map_err(verifier_error)?;
        let servers = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(p))
            .build()
            .map_err(verifier_error)?;
        Ok(Verifiers { clients, servers })
    }

    /// Reads the files again; on failure keeps the current CAs.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Self::read(&self.files, &self.provider)?;
        write_lock(&self.current, fresh);
        Ok(())
    }

    /// A verifier of clients' chains that follows reloads. `mandatory`: a
    /// client without a certificate fails the handshake; otherwise it
    /// completes it unauthenticated, for a server that refuses it itself
    /// (with an answer, a log line and a count).
    pub fn client_verifier(self: &Arc<Self>, mandatory: bool) -> Arc<dyn ClientCertVerifier> {
        Arc::new(Clients {
            trust: Arc::clone(self),
            mandatory,
        })
    }

    /// A verifier of servers' chains and names that follows reloads.
    pub fn server_verifier(self: &Arc<Self>) -> Arc<dyn ServerCertVerifier> {
        Arc::new(Servers(Arc::clone(self)))
    }

    fn now(&self) -> Verifiers {
        read_lock(&self.current)
    }
}

#[derive(Debug)]
struct Clients {
    trust: Arc<Trust>,
    mandatory: bool,
}

impl ClientCertVerifier for Clients {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; none is sent (they would have to outlive a
        // reload).
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let r = self
            .trust
            .now()
            .clients
            .verify_client_cert(end_entity, intermediates, now);
        self.trust.refused(r, "client")
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust
            .now()
            .clients
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.trust
            .now()
            .clients
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.trust.now().clients.supported_verify_schemes()
    }
}

#[derive(Debug)]
struct Servers(Arc<Trust>);

impl ServerCertVerifier for Servers {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = self.0.now().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp,
            now,
        );
        self.0.refused(r, "server")
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .now()
            .servers
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .now()
            .servers
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.now().servers.supported_verify_schemes()
    }
}
