//! [`PeerTls`]: mutual TLS between the nodes of a cluster.
//!
//! Both sides present a certificate that chains to the cluster's CA, and a
//! certificate says which node it belongs to by a DNS subject alternative
//! name `node-<id>` ([`node_name`]): the dialler checks it on the server's
//! certificate (it is the TLS server name), the acceptor checks it against
//! the id the dialler claims in its handshake ([`PeerTls::check_claim`]). A
//! certificate may name more (hosts, addresses): only `node-<id>` matters
//! here.
//!
//! It must never accept a peer whose certificate does not chain to the
//! CA, has expired, or names another node than the one it claims.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::{CertificateDer, ServerName};

use crate::reloadable::{provider, without_resumption, Identity, Trust};
use crate::TlsError;

/// The DNS name a certificate of node `id` carries: `node-<id>`.
///
/// ```
/// assert_eq!(raft_actors_tls::node_name(3), "node-3");
/// ```
pub fn node_name(id: u64) -> String {
    format!("node-{id}")
}

/// The TLS server name a dialler expects of node `id`.
pub fn server_name(id: u64) -> ServerName<'static> {
    // `node-<digits>` is always a valid DNS name; were it not, an
    // unspecified address that no certificate names refuses safely.
    ServerName::try_from(node_name(id)).unwrap_or(ServerName::IpAddress(
        std::net::Ipv4Addr::UNSPECIFIED.into(),
    ))
}

/// Whether certificate `cert` names node `id` (see [`node_name`]).
pub fn names_node(cert: &CertificateDer<'_>, id: u64) -> bool {
    let Ok(end) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    end.verify_is_valid_for_subject_name(&server_name(id))
        .is_ok()
}

/// Mutual TLS for one node: its certificate and key, the cluster's CA,
/// and the rustls configurations built from them. Clones share one
/// state; [`reload`](Self::reload) re-reads all three files, and the next
/// handshake (in either direction) uses what it read.
///
/// ```no_run
/// # fn main() -> Result<(), raft_actors_tls::TlsError> {
/// use std::path::Path;
/// let tls = raft_actors_tls::PeerTls::load(
///     Path::new("certs/node-1.pem"),
///     Path::new("certs/node-1-key.pem"),
///     Path::new("certs/ca.pem"),
/// )?;
/// let _accept = tls.server_config(); // for tokio-rustls or actix-web
/// let _dial = tls.client_config();   // server name: raft_actors_tls::server_name(2)
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PeerTls {
    identity: Arc<Identity>,
    trust: Arc<Trust>,
    server: Arc<ServerConfig>,
    asking: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl PeerTls {
    /// Reads the node's certificate chain, its key and the CA.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Self, TlsError> {
        let identity = Identity::load(cert, key)?;
        let trust = Trust::load(&[ca])?;
        let rustls_error = |what: &str| {
            let what = what.to_string();
            move |source| TlsError::Rustls { what, source }
        };
        let server_with = |mandatory| {
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(rustls_error("TLS versions"))
                .map(|b| {
                    b.with_client_cert_verifier(trust.client_verifier(mandatory))
                        .with_cert_resolver(Arc::clone(&identity) as _)
                })
        };
        let (server, asking) = (
            without_resumption(server_with(true)?),
            without_resumption(server_with(false)?),
        );
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(rustls_error("TLS versions"))?
            .dangerous()
            .with_custom_certificate_verifier(trust.server_verifier())
            .with_client_cert_resolver(Arc::clone(&identity) as _);
        Ok(PeerTls {
            identity,
            trust,
            server: Arc::new(server),
            asking: Arc::new(asking),
            client: Arc::new(client),
        })
    }

    /// Re-reads the certificate, the key and the CA. On failure nothing
    /// changes, and the error says which file is at fault.
    pub fn reload(&self) -> Result<(), TlsError> {
        // Both are read before either is swapped in, so a renewal that
        // changes CA and certificate together never half-applies.
        let (identity, trust) = (self.identity.reload(), self.trust.reload());
        identity.and(trust)
    }

    /// The acceptor's configuration: a client must present a certificate
    /// chaining to the CA.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server)
    }

    /// The acceptor's configuration for a server that refuses a client
    /// without a certificate itself, after the handshake (the HTTP
    /// transport: 403, a log line, a count): it asks for a certificate and
    /// verifies one if given, but lets the handshake finish without.
    pub fn server_config_asking(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.asking)
    }

    /// The dialler's configuration: presents this node's certificate and
    /// verifies the server's chain and its name (use [`server_name`]).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        Arc::clone(&self.client)
    }

    /// Peers' certificates refused so far, in either direction (see
    /// [`Trust::refusals`]).
    pub fn refusals(&self) -> u64 {
        self.trust.refusals()
    }

    /// The certificate this node presents now.
    pub fn certificate(&self) -> Option<CertificateDer<'static>> {
        self.identity.chain().into_iter().next()
    }

    /// Checks, after a handshake, that the certificate the dialler
    /// presented (its first of `chain`, already verified against the CA)
    /// names node `claimed`, the id it claims to be. Answers the refusal's
    /// reason otherwise.
    pub fn check_claim(chain: Option<&[CertificateDer<'_>]>, claimed: u64) -> Result<(), String> {
        match chain.and_then(|c| c.first()) {
            None => Err("no client certificate".into()),
            Some(cert) if names_node(cert, claimed) => Ok(()),
            Some(_) => Err(format!(
                "its certificate does not name node {claimed} (no DNS name {})",
                node_name(claimed)
            )),
        }
    }
}
