//! [`NodeClient`]: the requests a node sends to another node's client API
//! (a follower forwarding a leader-only request, `/cluster/status` asking
//! each member), over HTTPS when the client API is served over TLS.
//!
//! It must never send such a request in plain text to a node that serves
//! TLS, nor without verifying that node's certificate.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::Method;
use raft_actors_tls::ClientTrust;

use super::security::Tls;

/// How this node reaches other nodes' client API.
#[derive(Clone, Debug)]
pub(crate) struct NodeClient {
    /// `None`: plain HTTP. `Some(None)`: HTTPS with nothing to verify the
    /// other node by, so every call is refused with the reason.
    tls: Option<Option<ClientTrust>>,
}

impl NodeClient {
    /// The client `tls` describes.
    pub(crate) fn new(tls: &Tls) -> Self {
        NodeClient {
            tls: tls.api().map(|_| tls.calls().cloned()),
        }
    }

    /// A request of `method` for `path` (with its query) on the node whose
    /// client API is at `to`; `Err` names why none can be sent.
    pub(crate) fn request(
        &self,
        method: Method,
        to: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<awc::ClientRequest, String> {
        let builder = awc::Client::builder().timeout(timeout);
        let (client, scheme) = match &self.tls {
            None => (builder.finish(), "http"),
            Some(Some(trust)) => {
                let connector = awc::Connector::new().rustls_0_23(trust.config());
                (builder.connector(connector).finish(), "https")
            }
            Some(None) => {
                return Err(
                    "the client API is served over TLS, but this node has no CA \
                            (--client-tls-ca or --peer-tls-ca) to verify other nodes by"
                        .into(),
                )
            }
        };
        Ok(client.request(method, format!("{scheme}://{to}{path}")))
    }
}
