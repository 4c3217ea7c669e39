//! [`Tls`]: a node's TLS, between nodes (`--peer-tls-*`: mutual TLS on the
//! Raft transport, a peer named by its certificate) and to clients
//! (`--client-tls-*`: the client API over HTTPS, optionally requiring
//! client certificates), and the client side of the calls a node makes to
//! other nodes' client API (a follower forwarding to the leader,
//! `/cluster/status` asking the members).
//!
//! Those calls trust `--peer-tls-ca` and `--client-tls-ca` and present the
//! node's `--client-tls-cert`, so with one CA for a cluster every node
//! reaches every other; a client API certificate must name the address
//! the node serves it on (`--http-addr`'s IP, as in any HTTPS client).
//! Everything is re-read by [`Tls::reload`] (SIGHUP in the binaries): a
//! renewed file is used from the next handshake, and a file that cannot
//! be used leaves the old certificate in place.
//!
//! It must never fall back to plain text once a TLS flag is given, nor
//! log a key.

use std::path::PathBuf;

use raft_actors_tls::{ApiTls, ClientTrust, PeerTls, TlsError};

/// The files of a node's TLS, as the flags name them; every field is
/// optional, and none given means plain text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--peer-tls-cert`: this node's certificate toward its peers; it
    /// must name `node-<id>` (a DNS subject alternative name).
    pub peer_cert: Option<PathBuf>,
    /// `--peer-tls-key`: its private key.
    pub peer_key: Option<PathBuf>,
    /// `--peer-tls-ca`: the CA peers' certificates must chain to.
    pub peer_ca: Option<PathBuf>,
    /// `--client-tls-cert`: the client API's certificate.
    pub client_cert: Option<PathBuf>,
    /// `--client-tls-key`: its private key.
    pub client_key: Option<PathBuf>,
    /// `--client-tls-ca`: clients must present a certificate chaining to it.
    pub client_ca: Option<PathBuf>,
}

/// Why a node's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The peer TLS flags come as a set.
    #[error("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together (mutual TLS needs all three)")]
    PeerIncomplete,
    /// The client TLS certificate needs its key, and the reverse.
    #[error("--client-tls-cert and --client-tls-key go together")]
    ClientIncomplete,
    /// Requiring client certificates needs the API served over TLS.
    #[error(
        "--client-tls-ca needs --client-tls-cert and --client-tls-key (the client API over HTTPS)"
    )]
    ClientCaWithoutCert,
    /// A file could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A node's TLS, loaded: [`peer`](Self::peer) for the Raft transport,
/// [`api`](Self::api) for the client API server, [`calls`](Self::calls)
/// for the requests it sends to other nodes' client API. Clones share the
/// loaded files, so one [`reload`](Self::reload) renews every user.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use raft_actors_service::security::{Tls, TlsFiles};
/// let dir = tempfile::tempdir()?;
/// let files = raft_actors_tls::generate::write_cluster(dir.path(), &[1])?;
/// let (_, cert, key) = files.nodes[0].clone();
/// let tls = Tls::load(&TlsFiles {
///     peer_cert: Some(cert.clone()),
///     peer_key: Some(key.clone()),
///     peer_ca: Some(files.ca.clone()),
///     client_cert: Some(cert),
///     client_key: Some(key),
///     client_ca: None,
/// })?;
/// assert!(tls.peer().is_some() && tls.api().is_some() && tls.calls().is_some());
/// tls.reload()?;
/// assert!(Tls::load(&TlsFiles::default())?.is_plain());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Tls {
    peer: Option<PeerTls>,
    api: Option<ApiTls>,
    calls: Option<ClientTrust>,
}

impl Tls {
    /// Plain text everywhere.
    pub fn plain() -> Self {
        Tls::default()
    }

    /// Reads the files; every error names the file at fault.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsSetupError> {
        let peer = match (&files.peer_cert, &files.peer_key, &files.peer_ca) {
            (None, None, None) => None,
            (Some(c), Some(k), Some(ca)) => Some(PeerTls::load(c, k, ca)?),
            _ => return Err(TlsSetupError::PeerIncomplete),
        };
        let api = match (&files.client_cert, &files.client_key) {
            (None, None) if files.client_ca.is_some() => {
                return Err(TlsSetupError::ClientCaWithoutCert)
            }
            (None, None) => None,
            (Some(c), Some(k)) => Some(ApiTls::load(c, k, files.client_ca.as_deref())?),
            _ => return Err(TlsSetupError::ClientIncomplete),
        };
        let cas: Vec<&std::path::Path> = [&files.peer_ca, &files.client_ca]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect();
        let calls = match (&api, &files.client_cert, &files.client_key) {
            (Some(_), Some(c), Some(k)) if !cas.is_empty() => {
                Some(ClientTrust::load(&cas, Some((c, k)))?)
            }
            _ => None,
        };
        Ok(Tls { peer, api, calls })
    }

    /// Sets the peer TLS (in code, instead of files).
    pub fn with_peer(mut self, peer: PeerTls) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Sets the client API's TLS and the trust of calls to other nodes.
    pub fn with_api(mut self, api: ApiTls, calls: Option<ClientTrust>) -> Self {
        self.api = Some(api);
        self.calls = calls;
        self
    }

    /// Whether nothing is encrypted.
    pub fn is_plain(&self) -> bool {
        self.peer.is_none() && self.api.is_none()
    }

    /// Mutual TLS between nodes.
    pub fn peer(&self) -> Option<&PeerTls> {
        self.peer.as_ref()
    }

    /// The client API's server side.
    pub fn api(&self) -> Option<&ApiTls> {
        self.api.as_ref()
    }

    /// The client side of calls to other nodes' client API; `None` with
    /// the client API in plain text, or over TLS with no CA to verify
    /// other nodes by.
    pub fn calls(&self) -> Option<&ClientTrust> {
        self.calls.as_ref()
    }

    /// Re-reads every file; each part that fails keeps what it had, and
    /// the first failure is answered.
    pub fn reload(&self) -> Result<(), TlsError> {
        let peer = self.peer.as_ref().map_or(Ok(()), PeerTls::reload);
        let api = self.api.as_ref().map_or(Ok(()), ApiTls::reload);
        let calls = self.calls.as_ref().map_or(Ok(()), ClientTrust::reload);
        peer.and(api).and(calls)
    }
}

/// Reloads `tls` on every SIGHUP, for as long as the process runs; a
/// reload's outcome is one log line.
pub(crate) async fn reload_on_hangup(tls: Tls) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%e, "cannot watch SIGHUP: certificates reload only on restart");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificates and CAs reloaded"),
                Err(e) => {
                    tracing::warn!(%e, "SIGHUP: reloading TLS failed; the old certificates stay")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tls;
}
