//! TLS on the client API: [`ApiTls`] is the server's side (a certificate,
//! and optionally a CA that clients' certificates must chain to);
//! [`client_config`] is a client's (the CAs it trusts and, optionally, a
//! certificate to present), for `raftctl` and for the calls nodes make to
//! each other's client API (forwarding, cluster status).
//!
//! A client API certificate names the hosts clients dial (as any HTTPS
//! certificate does): its name is checked by the client, not by the node.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use crate::reloadable::{provider, without_resumption, Identity, Trust};
use crate::TlsError;

/// The client API's TLS: its certificate and, with a CA, mandatory client
/// certificates. Clones share one state; [`reload`](Self::reload) re-reads
/// the files for the next handshake.
#[derive(Clone, Debug)]
pub struct ApiTls {
    identity: Arc<Identity>,
    trust: Option<Arc<Trust>>,
    server: Arc<ServerConfig>,
}

fn versions_error(source: rustls::Error) -> TlsError {
    TlsError::Rustls {
        what: "TLS versions".into(),
        source,
    }
}

impl ApiTls {
    /// Reads the certificate and key, and the CA clients must chain to
    /// (`None`: clients present no certificate).
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, TlsError> {
        let identity = Identity::load(cert, key)?;
        let trust = client_ca.map(|ca| Trust::load(&[ca])).transpose()?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(versions_error)?;
        let server = match &trust {
            Some(t) => builder.with_client_cert_verifier(t.client_verifier(true)),
            None => builder.with_no_client_auth(),
        }
        .with_cert_resolver(Arc::clone(&identity) as _);
        Ok(ApiTls {
            identity,
            trust,
            server: Arc::new(without_resumption(server)),
        })
    }

    /// Re-reads the files; on failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let identity = self.identity.reload();
        let trust = self.trust.as_ref().map_or(Ok(()), |t| t.reload());
        identity.and(trust)
    }

    /// For actix-web's `listen_rustls_0_23`.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server)
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.trust.is_some()
    }
}

/// A client's configuration: trusts the CAs in `cas` (reloadable through
/// [`ClientTrust::reload`]) and presents `identity` (a certificate and key)
/// when given.
#[derive(Clone, Debug)]
pub struct ClientTrust {
    trust: Arc<Trust>,
    identity: Option<Arc<Identity>>,
    config: Arc<ClientConfig>,
}

impl ClientTrust {
    /// Reads the CAs and the optional certificate and key.
    pub fn load(cas: &[&Path], identity: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let trust = Trust::load(cas)?;
        let identity = identity
            .map(|(cert, key)| Identity::load(cert, key))
            .transpose()?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(versions_error)?
            .dangerous()
            .with_custom_certificate_verifier(trust.server_verifier());
        let config = match &identity {
            Some(i) => builder.with_client_cert_resolver(Arc::clone(i) as _),
            None => builder.with_no_client_auth(),
        };
        Ok(ClientTrust {
            trust,
            identity,
            config: Arc::new(config),
        })
    }

    /// Re-reads the files; on failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let trust = self.trust.reload();
        let identity = self.identity.as_ref().map_or(Ok(()), |i| i.reload());
        trust.and(identity)
    }

    /// For awc's `Connector::rustls_0_23` or tokio-rustls.
    pub fn config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.config)
    }
}

/// A one-off client configuration trusting `cas` (e.g. `raftctl --cacert`).
pub fn client_config(cas: &[&Path]) -> Result<Arc<ClientConfig>, TlsError> {
    Ok(ClientTrust::load(cas, None)?.config())
}
