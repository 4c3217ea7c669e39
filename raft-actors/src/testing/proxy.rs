//! [`TcpProxy`]: a fault-injecting TCP relay for tests over real sockets.
//!
//! Route one directed link (node A dialling node B) through a proxy, and
//! the test can cut it (open connections close, new ones are closed at
//! once), heal it, delay every chunk, or drop connections at random (the
//! bytes in flight are lost and the dialler reconnects). Cutting A→B's
//! proxy but not B→A's cuts a link one way.
//!
//! It relays bytes without reading them: it never alters, reorders or
//! invents data, so a transport's own checks stay the only ones at work.
//! Random drops come from a seeded RNG.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The faults a proxy injects.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProxyFaults {
    /// Nothing passes: connections are closed.
    pub cut: bool,
    /// Every chunk waits this long before it is relayed.
    pub delay: Duration,
    /// Chance, per chunk relayed, that the connection is dropped with the
    /// chunk (`0..=1`).
    pub drop: f64,
}

/// Counts of what a proxy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted and relayed.
    pub relayed: u64,
    /// Connections refused or closed because of a cut.
    pub cut: u64,
    /// Connections dropped at random.
    pub dropped: u64,
    /// Bytes relayed, both ways.
    pub bytes: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Control {
    faults: ProxyFaults,
    stopped: bool,
}

struct Shared {
    target: SocketAddr,
    rng: Mutex<ChaCha8Rng>,
    stats: Mutex<ProxyStats>,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, ProxyStats> {
        // Counters only: a poisoned lock's data is still sound.
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn roll(&self, p: f64) -> bool {
        p > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .gen_bool(p.clamp(0.0, 1.0))
    }
}

/// A relay from [`addr`](Self::addr) to a target, with faults. Stops when
/// dropped.
///
/// ```
/// # #[actix_rt::main] async fn main() -> std::io::Result<()> {
/// use raft_actors::testing::TcpProxy;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let server = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let proxy = TcpProxy::start(server.local_addr()?, 1).await?;
/// let mut client = tokio::net::TcpStream::connect(proxy.addr()).await?;
/// let (mut inside, _) = server.accept().await?;
/// client.write_all(b"ping").await?;
/// let mut buf = [0u8; 4];
/// inside.read_exact(&mut buf).await?;
/// assert_eq!(&buf, b"ping");
/// proxy.cut();
/// assert_eq!(inside.read(&mut buf).await?, 0, "a cut closes the connection");
/// # Ok(()) }
/// ```
pub struct TcpProxy {
    addr: SocketAddr,
    control: watch::Sender<Control>,
    shared: Arc<Shared>,
}

impl TcpProxy {
    /// Listens on a free loopback port and relays to `target`; random
    /// drops are drawn from `seed`.
    pub async fn start(target: SocketAddr, seed: u64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (control, rx) = watch::channel(Control::default());
        let shared = Arc::new(Shared {
            target,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            stats: Mutex::new(ProxyStats::default()),
        });
        tokio::spawn(accept_loop(listener, rx, Arc::clone(&shared)));
        Ok(TcpProxy {
            addr,
            control,
            shared,
        })
    }

    /// Where to dial instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the faults; a cut closes the open connections at once.
    pub fn set(&self, faults: ProxyFaults) {
        self.control.send_modify(|c| c.faults = faults);
    }

    /// The faults in force.
    pub fn faults(&self) -> ProxyFaults {
        self.control.borrow().faults
    }

    /// Cuts the link: open connections close, new ones are refused.
    pub fn cut(&self) {
        self.control.send_modify(|c| c.faults.cut = true);
    }

    /// Removes every fault.
    pub fn heal(&self) {
        self.set(ProxyFaults::default());
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        *self.shared.stats()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.control.send_modify(|c| c.stopped = true);
    }
}

async fn accept_loop(listener: TcpListener, mut rx: watch::Receiver<Control>, shared: Arc<Shared>) {
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() || rx.borrow().stopped {
                    return;
                }
            }
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                if rx.borrow().faults.cut {
                    shared.stats().cut += 1;
                    drop(client);
                    continue;
                }
                shared.stats().relayed += 1;
                tokio::spawn(relay(client, rx.clone(), Arc::clone(&shared)));
            }
        }
    }
}

/// Why a relay ended.
enum End {
    Closed,
    Cut,
    Dropped,
}

async fn relay(client: TcpStream, mut rx: watch::Receiver<Control>, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(shared.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let (rx_up, rx_down) = (rx.clone(), rx.clone());
    let watch_cut = async {
        loop {
            if rx.changed().await.is_err() {
                return End::Cut;
            }
            let c = *rx.borrow();
            if c.stopped || c.faults.cut {
                return End::Cut;
            }
        }
    };
    let end = tokio::select! {
        e = pipe(cr, sw, shared.as_ref(), rx_up) => e,
        e = pipe(sr, cw, shared.as_ref(), rx_down) => e,
        e = watch_cut => e,
    };
    // Returning drops all four halves: both connections close.
    match end {
        End::Cut => shared.stats().cut += 1,
        End::Dropped => shared.stats().dropped += 1,
        End::Closed => {}
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: &Shared,
    rx: watch::Receiver<Control>,
) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return End::Closed,
            Ok(n) => n,
        };
        let faults = rx.borrow().faults;
        if faults.cut {
            return End::Cut;
        }
        if shared.roll(faults.drop) {
            return End::Dropped;
        }
        if !faults.delay.is_zero() {
            tokio::time::sleep(faults.delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return End::Closed;
        }
        shared.stats().bytes += n as u64;
    }
}
