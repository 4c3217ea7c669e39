//! The byte stream under the frames: plain TCP, or TLS over it when the
//! config has a [`PeerTls`]. Both directions go through here, so the rest
//! of the crate reads and writes one [`Io`] and never asks which.
//!
//! It must never hand back a TLS stream whose handshake failed, nor drop
//! the certificate the acceptor needs to check the dialler's claim.

use std::pin::Pin;
use std::task::{Context, Poll};

use raft_actors::core::NodeId;
use raft_actors_tls::rustls;
use raft_actors_tls::rustls::pki_types::CertificateDer;
use raft_actors_tls::PeerTls;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A connection's stream, plain or TLS.
pub(crate) enum Io {
    Plain(TcpStream),
    Accepted(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Dialled(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// What the acceptor knows of the dialler after TLS: its certificate
/// chain, verified against the CA (`None` without TLS).
pub(crate) type PeerChain = Option<Vec<CertificateDer<'static>>>;

/// Why an acceptor's TLS handshake failed.
pub(crate) struct Failure {
    pub reason: String,
    /// The dialler's certificate was refused (and the verifier logged it).
    pub certificate: bool,
}

/// Runs the acceptor's side of TLS if configured.
pub(crate) async fn accept(
    tls: Option<&PeerTls>,
    stream: TcpStream,
) -> Result<(Io, PeerChain), Failure> {
    let Some(tls) = tls else {
        return Ok((Io::Plain(stream), None));
    };
    let s = TlsAcceptor::from(tls.server_config())
        .accept(stream)
        .await
        .map_err(|e| Failure {
            certificate: matches!(
                e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
                Some(rustls::Error::InvalidCertificate(_))
            ),
            reason: e.to_string(),
        })?;
    let chain = s
        .get_ref()
        .1
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
    Ok((Io::Accepted(Box::new(s)), Some(chain.unwrap_or_default())))
}

/// Runs the dialler's side of TLS if configured: peer `to`'s certificate
/// must chain to the CA and name `node-<to>`.
pub(crate) async fn connect(
    tls: Option<&PeerTls>,
    stream: TcpStream,
    to: NodeId,
) -> Result<Io, String> {
    let Some(tls) = tls else {
        return Ok(Io::Plain(stream));
    };
    TlsConnector::from(tls.client_config())
        .connect(raft_actors_tls::server_name(to), stream)
        .await
        .map(|s| Io::Dialled(Box::new(s)))
        .map_err(|e| e.to_string())
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Accepted(s) => Pin::new(s).poll_read(cx, buf),
            Io::Dialled(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Accepted(s) => Pin::new(s).poll_write(cx, buf),
            Io::Dialled(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Accepted(s) => Pin::new(s).poll_flush(cx),
            Io::Dialled(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Accepted(s) => Pin::new(s).poll_shutdown(cx),
            Io::Dialled(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
