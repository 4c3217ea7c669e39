//! The connection task of one peer: dial, handshake, then write queued
//! batches, several frames per socket write; on any failure, back off with
//! jitter and dial again.
//!
//! It owns the only connection to its peer, so batches of one lane leave
//! in queue order; snapshot chunks wait in a lane of their own, behind
//! everything else (see `raft_actors::transport::lanes`). It must never buffer beyond the bounded queue: a batch in hand
//! when a write fails is dropped and counted, not kept.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use raft_actors::core::NodeId;
use raft_actors::transport::LaneReceiver;
use tokio::io::AsyncWriteExt;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::admission::Advertised;
use crate::backoff::Backoff;
use crate::config::TcpConfig;
use crate::frame::{Frame, FrameCodec};
use crate::metrics::PeerCounters;
use crate::tls::{self, Io};
use crate::transport::TcpError;

pub(crate) struct Link {
    pub cfg: Arc<TcpConfig>,
    pub peer: NodeId,
    pub addr: SocketAddr,
    pub rx: LaneReceiver,
    pub counters: Arc<PeerCounters>,
    pub advertised: Advertised,
    pub token: CancellationToken,
}

/// Why a connection's write loop ended.
enum End {
    /// Shut down or the transport was dropped: stop for good.
    Stop,
    /// The connection broke: dial again.
    Broken(TcpError),
}

pub(crate) async fn run(mut link: Link) {
    let mut backoff = Backoff::new(
        link.cfg.backoff_min,
        link.cfg.backoff_max,
        link.cfg.seed ^ link.peer.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    let mut connected_before = false;
    loop {
        if link.rx.is_closed() {
            // The peer moved (a new task took over) or the transport is gone.
            return;
        }
        let dialled = tokio::select! {
            _ = link.token.cancelled() => return,
            r = dial(&link) => r,
        };
        match dialled {
            Ok((reader, writer)) => {
                backoff.reset();
                if connected_before {
                    PeerCounters::add(&link.counters.reconnects, 1);
                }
                connected_before = true;
                debug!(node = link.cfg.id, peer = link.peer, "connected");
                match pump(&mut link, reader, writer).await {
                    End::Stop => return,
                    End::Broken(e) => {
                        info!(node = link.cfg.id, peer = link.peer, %e, "connection lost; reconnecting")
                    }
                }
            }
            Err(TcpError::Refused(reason)) => {
                warn!(node = link.cfg.id, peer = link.peer, %reason, "peer refused our handshake")
            }
            Err(TcpError::Tls(reason)) => {
                warn!(node = link.cfg.id, peer = link.peer, %reason, "TLS handshake with peer failed")
            }
            Err(e) => debug!(node = link.cfg.id, peer = link.peer, %e, "dial failed"),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = link.token.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Connects and handshakes, within the handshake deadline.
async fn dial(
    link: &Link,
) -> Result<(FramedRead<ReadHalf<Io>, FrameCodec>, WriteHalf<Io>), TcpError> {
    let cfg = &link.cfg;
    let attempt = async {
        let stream = TcpStream::connect(link.addr).await?;
        // Raft messages are small and latency-bound; batching is done
        // above, so Nagle would only add delay.
        stream.set_nodelay(true)?;
        let io = tls::connect(cfg.tls.as_ref(), stream, link.peer)
            .await
            .map_err(TcpError::Tls)?;
        let (r, mut w) = tokio::io::split(io);
        let codec = FrameCodec::new(cfg.max_frame_bytes);
        let mut buf = BytesMut::new();
        let hello = match link.advertised.get() {
            Some(addr) => Frame::HelloAt {
                cluster_id: cfg.cluster_id,
                from: cfg.id,
                to: link.peer,
                addr,
            },
            None => Frame::Hello {
                cluster_id: cfg.cluster_id,
                from: cfg.id,
                to: link.peer,
            },
        };
        codec.encode_into(&hello, &mut buf)?;
        w.write_all(&buf).await?;
        w.flush().await?;
        let mut reader = FramedRead::new(r, codec);
        match reader.next().await {
            Some(Ok(Frame::Welcome)) => Ok((reader, w)),
            Some(Ok(Frame::Refused { reason })) => Err(TcpError::Refused(reason)),
            Some(Ok(other)) => Err(TcpError::Protocol(format!(
                "expected Welcome, got {other:?}"
            ))),
            Some(Err(e)) => Err(e.into()),
            None => Err(TcpError::Protocol("closed during handshake".into())),
        }
    };
    tokio::time::timeout(cfg.handshake_timeout, attempt)
        .await
        .map_err(|_| TcpError::Timeout)?
}

/// Writes queued batches until the connection breaks or the task stops.
async fn pump(
    link: &mut Link,
    mut reader: FramedRead<ReadHalf<Io>, FrameCodec>,
    mut writer: WriteHalf<Io>,
) -> End {
    let codec = FrameCodec::new(link.cfg.max_frame_bytes);
    let mut buf = BytesMut::new();
    loop {
        let first = tokio::select! {
            _ = link.token.cancelled() => return End::Stop,
            // The accepting side sends nothing after Welcome: anything, or
            // EOF, means the connection is gone; noticing it here rather
            // than on the next write spares one lost batch.
            r = reader.next() => {
                return End::Broken(match r {
                    None => TcpError::Protocol("closed by peer".into()),
                    Some(Err(e)) => e.into(),
                    Some(Ok(f)) => TcpError::Protocol(format!("unexpected {f:?}")),
                })
            }
            // What else is queued goes in the same write, heartbeats and
            // appends before at most one snapshot chunk.
            b = link.rx.next_write(link.cfg.max_batches_per_write) => match b {
                Some(b) => b,
                None => return End::Stop,
            },
        };
        buf.clear();
        let (mut sent, mut frames) = (0u64, 0u64);
        for batch in first {
            let n = batch.messages.len() as u64;
            let frame = Frame::Batch {
                group: batch.group,
                messages: batch.messages,
            };
            match codec.encode_into(&frame, &mut buf) {
                Ok(_) => {
                    sent += n;
                    frames += 1;
                }
                Err(e) => {
                    // Only possible if the size estimate undershot: drop
                    // this batch, keep the connection.
                    warn!(node = link.cfg.id, peer = link.peer, %e, "dropping unencodable batch");
                    PeerCounters::add(&link.counters.drops, n);
                }
            }
        }
        if buf.is_empty() {
            continue;
        }
        // Flushed: TLS may hold written bytes back until then (plain TCP
        // has nothing to flush).
        let written = match writer.write_all(&buf).await {
            Ok(()) => writer.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            PeerCounters::add(&link.counters.drops, sent);
            return End::Broken(e.into());
        }
        PeerCounters::add(&link.counters.bytes_sent, buf.len() as u64);
        PeerCounters::add(&link.counters.messages_sent, sent);
        PeerCounters::add(&link.counters.frames_sent, frames);
    }
}
