//! What one simulated run does: its fault mix, how it drives each core,
//! and the report of a clean run. Plain data: it must never hold state of
//! a run in progress.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::NetworkFaults;
use crate::core::Config;

/// How one simulated run behaves. [`SimConfig::new`] gives the fault mix
/// the test suite uses; every rate is per tick unless it says otherwise.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Cluster size.
    pub nodes: usize,
    /// The seed that decides everything.
    pub seed: u64,
    /// Ticks with faults.
    pub fault_ticks: u64,
    /// After the faults heal, a leader must be elected and a proposal
    /// committed within this many ticks.
    pub liveness_ticks: u64,
    /// Message loss, duplication and delay during the fault phase.
    pub network: NetworkFaults,
    /// Probability a new partition is made.
    pub partition_rate: f64,
    /// Probability all partitions heal.
    pub heal_rate: f64,
    /// Probability a random live node crashes.
    pub crash_rate: f64,
    /// Probability, per crashed node, that it restarts.
    pub restart_rate: f64,
    /// Probability, per executed batch, of a crash inside it.
    pub crash_in_ready_rate: f64,
    /// Probability that a newly elected leader is crashed a few ticks
    /// later: new leaders are the ones committing entries of earlier terms,
    /// the most delicate moment of the protocol (Figure 8).
    pub new_leader_crash_rate: f64,
    /// Probability a client proposes (to a random node).
    pub propose_rate: f64,
    /// Probability a client reads (from a random node).
    pub read_rate: f64,
    /// Nodes available to join: ids `nodes + 1..=pool` start outside the
    /// cluster and may be added.
    pub pool: usize,
    /// Probability the leader is asked for a membership change.
    pub membership_rate: f64,
    /// Probability a random node snapshots its state machine (besides the
    /// core's own threshold).
    pub snapshot_rate: f64,
    /// Probability the leader is asked to transfer leadership.
    pub transfer_rate: f64,
    /// Core settings; the batching limits are varied per seed.
    pub core: Config,
    /// How each core is driven: every batch executed at once, or persists
    /// in flight while the core keeps being stepped, as the node does.
    pub driver: DriverMode,
    /// [`DriverMode::Pipelined`]: a persist completes 0..=`persist_delay`
    /// ticks after it was handed to the disk (never before an earlier
    /// one): the fsync's latency, against the network's. Up to
    /// `core.max_persists_in_flight` (varied per seed) are in flight.
    pub persist_delay: u64,
    /// Each node's clock runs at its own rate, drawn within this many
    /// millionths of real time either way (50,000: 5%). The seed's lease
    /// margin ([`Config::lease_margin_ticks`]) covers it: 12.5% of relative
    /// drift with the default margin, 50% with a margin of 4 ticks.
    pub clock_drift_ppm: u64,
    /// Probability a live node (the leader half the time) stalls: it takes
    /// no ticks and handles no messages, proposals or reads for up to
    /// `max_stall_ticks`, while its monotonic clock runs on; then it
    /// handles its backlog, taking the ticks it missed all at once or not
    /// at all.
    pub stall_rate: f64,
    /// The longest stall, in ticks of real time.
    pub max_stall_ticks: u64,
    /// Print every step to stderr.
    pub trace: bool,
}

impl SimConfig {
    /// The fault mix for `nodes` nodes and `seed`. Even seeds get a steady
    /// network with occasional faults; odd seeds get chaos: heavy loss,
    /// long delays and frequent crashes, which is what it takes to reach
    /// rare interleavings such as the paper's Figure 8.
    pub fn new(nodes: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c0f1);
        let mut core = Config {
            heartbeat_ticks: rng.gen_range(1..=3),
            max_entries_per_message: [1, 1, 2, 8, 256][rng.gen_range(0..5)],
            max_inflight: [1, 2, 64][rng.gen_range(0..3)],
            pre_vote: rng.gen_bool(0.75),
            check_quorum: rng.gen_bool(0.75),
            snapshot_threshold: [0, 8, 30, 100][rng.gen_range(0..4)],
            trailing_logs: [0, 3, 20][rng.gen_range(0..3)],
            snapshot_chunk_bytes: [5, 16, 1024][rng.gen_range(0..3)],
            max_promotion_lag: [0, 10][rng.gen_range(0..2)],
            ..Config::default()
        };
        let chaos = seed % 2 == 1;
        // Drawn last, so the rest of a seed's mix is what it was before
        // persist delays existed.
        let persist_delay = [0, 1, 2, 4][rng.gen_range(0..4)];
        core.max_persists_in_flight = [1, 2, 4, 8][rng.gen_range(0..4)];
        let max_stall_ticks = 3 * core.election_ticks;
        // Clocks that drift little (5%) under the default lease margin, or
        // much (20%) under the margin that covers it: a follower refuses
        // votes for more than `election_ticks - 1` of its own ticks after
        // the round, the leader's lease lasts less than `election_ticks -
        // lease_margin_ticks` of its own, so the lease holds while
        // follower rate / leader rate <= 9 / (10 - margin).
        let (clock_drift_ppm, margin) = [(50_000, 2), (200_000, 4)][rng.gen_range(0..2)];
        core.lease_margin_ticks = margin;
        // Drawn after the rest for the same reason: payloads dropped from
        // memory at once, after a few, or never (read back from the disk).
        core.log_cache_bytes = [Some(0), Some(64), None][rng.gen_range(0..3)];
        SimConfig {
            nodes,
            seed,
            fault_ticks: 800,
            liveness_ticks: 500,
            network: if chaos {
                NetworkFaults {
                    drop: 0.3,
                    duplicate: 0.05,
                    max_delay: 6,
                    replay: 0.02,
                    replay_delay: 60,
                }
            } else {
                NetworkFaults {
                    drop: 0.05,
                    duplicate: 0.03,
                    max_delay: 3,
                    replay: 0.01,
                    replay_delay: 60,
                }
            },
            partition_rate: if chaos { 0.03 } else { 0.01 },
            heal_rate: if chaos { 0.05 } else { 0.015 },
            crash_rate: if chaos { 0.05 } else { 0.006 },
            restart_rate: if chaos { 0.1 } else { 0.04 },
            crash_in_ready_rate: 0.002,
            new_leader_crash_rate: if chaos { 0.3 } else { 0.0 },
            propose_rate: 0.4,
            read_rate: 0.25,
            pool: nodes + 2,
            membership_rate: if chaos { 0.08 } else { 0.02 },
            snapshot_rate: 0.01,
            transfer_rate: 0.005,
            core,
            driver: DriverMode::Lockstep,
            persist_delay,
            clock_drift_ppm,
            stall_rate: if chaos { 0.01 } else { 0.004 },
            max_stall_ticks,
            trace: false,
        }
    }

    /// The same run with idle groups quiescing
    /// ([`Config::quiesce_after_ticks`], 2 to 6 ticks by seed) and clients
    /// quiet enough for it: a proposal or a read every 30 ticks or so,
    /// against several per tick otherwise, so the leader goes idle, its
    /// followers stop their timers, and crashes, partitions and stalls
    /// strike quiesced groups too.
    ///
    /// ```
    /// use raft_actors::simulation::SimConfig;
    /// let cfg = SimConfig::new(3, 7).quiescing();
    /// assert!(cfg.core.quiesce_after_ticks.is_some());
    /// assert!(cfg.propose_rate < SimConfig::new(3, 7).propose_rate);
    /// ```
    pub fn quiescing(mut self) -> Self {
        self.core.quiesce_after_ticks = Some(2 + self.seed % 5);
        self.propose_rate = 0.02;
        self.read_rate = 0.015;
        self
    }

    /// The same run, driven in `mode`.
    ///
    /// ```
    /// use raft_actors::simulation::{DriverMode, SimConfig};
    /// let cfg = SimConfig::new(3, 7).driven(DriverMode::Pipelined);
    /// assert_eq!(cfg.driver, DriverMode::Pipelined);
    /// ```
    pub fn driven(self, mode: DriverMode) -> Self {
        SimConfig {
            driver: mode,
            ..self
        }
    }
}

/// How the simulation drives a core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverMode {
    /// Each batch is executed to the end (persist, send, apply, advance)
    /// before the core is stepped again: the simplest correct driver.
    Lockstep,
    /// As the node drives a core: a batch's persist completes after a
    /// seeded delay while messages, ticks, proposals and reads keep being
    /// stepped; persists complete in order, as many in flight as the core
    /// allows; a crash between any two events loses what was not durable.
    Pipelined,
}

impl DriverMode {
    /// Both modes, as the sweep runs them.
    pub const ALL: [DriverMode; 2] = [DriverMode::Lockstep, DriverMode::Pipelined];
}

/// What a clean run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Entries applied somewhere.
    pub committed: usize,
    /// Writes acknowledged to clients.
    pub writes_acked: u64,
    /// Reads answered with a safe index.
    pub reads_answered: u64,
    /// Reads that failed explicitly.
    pub reads_failed: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Stalls injected (a node frozen while its clock ran on).
    pub stalls: u64,
    /// Membership changes the leader accepted.
    pub membership_changes: u64,
    /// Snapshots restored (installed from a leader, or at restart).
    pub snapshots_restored: u64,
    /// Ticks from heal to a committed proposal.
    pub liveness_ticks: Option<u64>,
    /// [`DriverMode::Pipelined`]: the most writes one node had in flight
    /// at once.
    pub max_writes_in_flight: u64,
    /// Ticks a node took while quiesced (each one did nothing).
    pub quiesced_ticks: u64,
}
