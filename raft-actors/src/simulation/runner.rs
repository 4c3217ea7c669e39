//! The simulation loop: faults, client load and checks, tick by tick.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Checker, CrashPoint, Network, NetworkFaults, Property, SimNode, Violation};
use crate::core::{
    ConfChange, Config, LogIndex, Membership, NodeId, RaftCore, RequestId, Role, Term,
};

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
        let core = Config {
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
            trace: false,
        }
    }
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
    /// Membership changes the leader accepted.
    pub membership_changes: u64,
    /// Snapshots restored (installed from a leader, or at restart).
    pub snapshots_restored: u64,
    /// Ticks from heal to a committed proposal.
    pub liveness_ticks: Option<u64>,
}

/// Runs one seed. `Err` names the first property violated.
pub fn run(cfg: &SimConfig) -> Result<Report, Violation> {
    let mut sim = Sim::new(cfg)?;
    for t in 0..cfg.fault_ticks + cfg.liveness_ticks {
        sim.now = t;
        if t < cfg.fault_ticks {
            sim.inject_faults();
            for id in std::mem::take(&mut sim.pending_restarts) {
                sim.restart(id)?;
            }
        } else if t == cfg.fault_ticks {
            sim.heal_all()?;
        }
        sim.client_load(t < cfg.fault_ticks);
        if t < cfg.fault_ticks {
            sim.change_membership();
            sim.transfer_leadership();
            sim.random_snapshot();
        }
        sim.tick_all()?;
        sim.deliver_all()?;
        if t >= cfg.fault_ticks && sim.liveness_probe(t - cfg.fault_ticks)? {
            return Ok(sim.report);
        }
    }
    Err(Violation {
        property: Property::Liveness,
        detail: format!(
            "no proposal committed within {} ticks of healing",
            cfg.liveness_ticks
        ),
    })
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    rng: ChaCha8Rng,
    ids: Vec<NodeId>,
    nodes: BTreeMap<NodeId, SimNode>,
    net: Network,
    checker: Checker,
    now: u64,
    next_id: RequestId,
    /// Writes that landed, waiting to be applied at (node, index).
    landed: HashMap<(NodeId, LogIndex), (RequestId, Term)>,
    /// Reads in flight: node and the index they must reflect.
    reads: HashMap<RequestId, (NodeId, LogIndex)>,
    /// The liveness probe: its id and whether it was acknowledged.
    probe: Option<RequestId>,
    probe_acked: bool,
    report: Report,
    /// Nodes to restart this tick.
    pending_restarts: Vec<NodeId>,
    /// (leader, term) pairs seen, and leaders to crash at a tick.
    seen_leaders: std::collections::HashSet<(NodeId, Term)>,
    doomed: Vec<(u64, NodeId, Term)>,
    /// Last role and term seen per node, for the trace.
    roles: BTreeMap<NodeId, Option<(Role, Term)>>,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a SimConfig) -> Result<Self, Violation> {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let ids: Vec<NodeId> = (1..=cfg.pool.max(cfg.nodes) as NodeId).collect();
        let founders = Membership::voters(1..=cfg.nodes as NodeId);
        let mut nodes = BTreeMap::new();
        for &id in &ids {
            // Nodes outside the founding set start empty and wait to be added.
            let boot = if founders.contains(id) {
                founders.clone()
            } else {
                Membership::default()
            };
            let mut node =
                SimNode::new(id, boot, cfg.core.clone(), rng.gen()).map_err(|e| Violation {
                    property: Property::Liveness,
                    detail: format!("bad config: {e}"),
                })?;
            node.snapshot_padding = rng.gen_range(0..40);
            nodes.insert(id, node);
        }
        Ok(Sim {
            cfg,
            rng,
            ids,
            nodes,
            net: Network::new(cfg.network.clone()),
            checker: Checker::default(),
            now: 0,
            next_id: 1,
            landed: HashMap::new(),
            reads: HashMap::new(),
            probe: None,
            probe_acked: false,
            report: Report {
                seed: cfg.seed,
                ..Default::default()
            },
            roles: BTreeMap::new(),
            pending_restarts: Vec::new(),
            seen_leaders: std::collections::HashSet::new(),
            doomed: Vec::new(),
        })
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.cfg.trace {
            eprintln!("t={:<5} {}", self.now, what());
        }
    }

    /// The live leader of the highest term, if any.
    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .filter(|c| c.role() == Role::Leader)
            .max_by_key(|c| c.term())
            .map(|c| c.id())
    }

    fn live(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.core.is_some())
            .map(|n| n.id)
            .collect()
    }

    fn inject_faults(&mut self) {
        let cfg = self.cfg;
        // New leaders elected since the last tick may be doomed.
        let leaders: Vec<(NodeId, Term)> = self
            .nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .filter(|c| c.role() == Role::Leader)
            .map(|c| (c.id(), c.term()))
            .collect();
        for (id, term) in leaders {
            if self.seen_leaders.insert((id, term)) && self.rng.gen_bool(cfg.new_leader_crash_rate)
            {
                let at = self.now + self.rng.gen_range(1..=8);
                self.doomed.push((at, id, term));
            }
        }
        let now = self.now;
        let due: Vec<(u64, NodeId, Term)> =
            self.doomed.iter().copied().filter(|d| d.0 <= now).collect();
        self.doomed.retain(|d| d.0 > now);
        for (_, id, term) in due {
            let still = self
                .nodes
                .get(&id)
                .and_then(|n| n.core.as_ref())
                .is_some_and(|c| c.term() == term);
            if still {
                self.crash(id);
            }
        }
        if self.rng.gen_bool(cfg.partition_rate) {
            let n = self.ids.len();
            match self.rng.gen_range(0..4) {
                // The leader is the node whose isolation tests the most.
                3 => {
                    if let Some(l) = self.leader() {
                        self.net.isolate(l, &self.ids);
                        self.trace(|| format!("partition: isolate leader {l}"));
                    }
                }
                0 => {
                    let a = self.ids[self.rng.gen_range(0..n)];
                    self.net.isolate(a, &self.ids);
                    self.trace(|| format!("partition: isolate {a}"));
                }
                1 => {
                    let mut side: Vec<NodeId> = self
                        .ids
                        .iter()
                        .copied()
                        .filter(|_| self.rng.gen_bool(0.5))
                        .collect();
                    side.truncate(n / 2);
                    self.net.split(&side, &self.ids);
                    self.trace(|| format!("partition: split {side:?} from the rest"));
                }
                _ => {
                    let a = self.ids[self.rng.gen_range(0..n)];
                    let b = self.ids[self.rng.gen_range(0..n)];
                    self.net.cut(a, b);
                    self.trace(|| format!("partition: cut {a} -> {b}"));
                }
            }
        }
        if self.rng.gen_bool(cfg.heal_rate) {
            self.net.heal();
            self.trace(|| "partition: heal".into());
        }
        if self.rng.gen_bool(cfg.crash_rate) {
            let live = self.live();
            let leader = self.leader().filter(|_| self.rng.gen_bool(0.5));
            if let Some(id) = leader
                .or_else(|| (!live.is_empty()).then(|| live[self.rng.gen_range(0..live.len())]))
            {
                self.crash(id);
            }
        }
        for id in self.ids.clone() {
            if self.nodes[&id].core.is_none() && self.rng.gen_bool(cfg.restart_rate) {
                self.pending_restarts.push(id);
            }
        }
    }

    fn crash(&mut self, id: NodeId) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.crash();
        }
        self.report.crashes += 1;
        // Whatever the node's clients waited for is now unknown.
        self.landed.retain(|(n, _), _| *n != id);
        self.reads.retain(|_, (n, _)| *n != id);
        self.trace(|| format!("crash {id}"));
    }

    fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        let seed = self.rng.gen();
        self.trace(|| format!("restart {id}"));
        let Some(n) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        // The config was valid at start, so it is now.
        if let Ok(restored) = n.restart(seed) {
            self.checker.restarted(id);
            if let Some(state) = restored {
                self.report.snapshots_restored += 1;
                self.checker.restored(id, state)?;
            }
        }
        Ok(())
    }

    /// Asks the leader for a random membership change: grow, shrink,
    /// promote, replace (joint), remove the leader itself.
    /// Asks the leader, now and then, to hand leadership to a random voter.
    fn transfer_leadership(&mut self) {
        if !self.rng.gen_bool(self.cfg.transfer_rate) {
            return;
        }
        let Some(leader) = self.leader() else { return };
        let Some(core) = self.nodes.get_mut(&leader).and_then(|n| n.core.as_mut()) else {
            return;
        };
        let voters: Vec<NodeId> = core.membership().voters.iter().copied().collect();
        if voters.is_empty() {
            return;
        }
        let to = voters[self.rng.gen_range(0..voters.len())];
        let r = core.transfer_leader(to);
        self.trace(|| format!("transfer at leader {leader} to {to}: {r:?}"));
    }

    fn change_membership(&mut self) {
        if !self.rng.gen_bool(self.cfg.membership_rate) {
            return;
        }
        let Some(leader) = self.leader() else { return };
        let Some(core) = self.nodes.get(&leader).and_then(|n| n.core.as_ref()) else {
            return;
        };
        let m = core.status().membership;
        let outsiders: Vec<NodeId> = self
            .ids
            .iter()
            .copied()
            .filter(|id| !m.contains(*id))
            .collect();
        let voters: Vec<NodeId> = m.voters.iter().copied().collect();
        let learners: Vec<NodeId> = m.learners.iter().copied().collect();
        let pick = |rng: &mut ChaCha8Rng, v: &[NodeId]| {
            (!v.is_empty()).then(|| v[rng.gen_range(0..v.len())])
        };
        let change = match self.rng.gen_range(0..8) {
            0 => pick(&mut self.rng, &outsiders).map(ConfChange::AddLearner),
            1 => pick(&mut self.rng, &learners).map(ConfChange::AddVoter),
            2 => pick(&mut self.rng, &voters)
                .filter(|_| voters.len() > 1)
                .map(ConfChange::Remove),
            3 => pick(&mut self.rng, &learners).map(ConfChange::Remove),
            4 => Some(ConfChange::Remove(leader)).filter(|_| voters.len() > 2),
            // Several voters at once, through a joint configuration:
            5 => {
                // replace one voter by a learner,
                let out = pick(&mut self.rng, &voters);
                let into = pick(&mut self.rng, &learners);
                out.zip(into).map(|(x, a)| {
                    let mut v = m.voters.clone();
                    v.remove(&x);
                    v.insert(a);
                    let rest = m.learners.iter().copied().filter(|l| *l != a).collect();
                    ConfChange::Replace {
                        voters: v,
                        learners: rest,
                    }
                })
            }
            6 => {
                // promote every learner at once,
                let mut v = m.voters.clone();
                v.extend(learners.iter().copied());
                (learners.len() >= 2).then_some(ConfChange::Replace {
                    voters: v,
                    learners: BTreeSet::new(),
                })
            }
            _ => {
                // or keep one voter and hand the rest over to the learners:
                // old and new majorities may then share no node.
                let keep = pick(&mut self.rng, &voters);
                keep.filter(|_| learners.len() >= 2).map(|k| {
                    let mut v: BTreeSet<NodeId> = learners.iter().copied().collect();
                    v.insert(k);
                    ConfChange::Replace {
                        voters: v,
                        learners: BTreeSet::new(),
                    }
                })
            }
        };
        let Some(change) = change else { return };
        let req = self.next_id;
        self.next_id += 1;
        if let Some(core) = self.nodes.get_mut(&leader).and_then(|n| n.core.as_mut()) {
            let r = core.propose_conf_change(req, change.clone());
            if r.is_ok() {
                self.report.membership_changes += 1;
            }
            self.trace(|| format!("membership at leader {leader}: {change:?}: {r:?}"));
        }
    }

    fn random_snapshot(&mut self) {
        if !self.rng.gen_bool(self.cfg.snapshot_rate) {
            return;
        }
        let live = self.live();
        if live.is_empty() {
            return;
        }
        let id = live[self.rng.gen_range(0..live.len())];
        let applied = self.nodes.get_mut(&id).map(|n| {
            n.take_snapshot();
            n.state.index
        });
        self.trace(|| format!("snapshot at {id} (applied {applied:?})"));
    }

    fn heal_all(&mut self) -> Result<(), Violation> {
        self.net.heal();
        // A healed network is a good one: no loss, and round trips well
        // inside an election timeout, or liveness could not be expected.
        let max_delay = self
            .cfg
            .network
            .max_delay
            .min(self.cfg.core.election_ticks / 4);
        self.net.faults = NetworkFaults {
            drop: 0.0,
            duplicate: 0.0,
            max_delay,
            replay: 0.0,
            replay_delay: 0,
        };
        for id in self.ids.clone() {
            if self.nodes[&id].core.is_none() {
                self.restart(id)?;
            }
        }
        self.trace(|| "--- faults healed; liveness phase".into());
        Ok(())
    }

    fn client_load(&mut self, faults: bool) {
        if !faults {
            return;
        }
        let live = self.live();
        if live.is_empty() {
            return;
        }
        if self.rng.gen_bool(self.cfg.propose_rate) {
            let id = live[self.rng.gen_range(0..live.len())];
            let req = self.next_id;
            self.next_id += 1;
            let data = Bytes::from(format!("w{req}"));
            if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) {
                let r = core.propose(req, data);
                self.trace(|| format!("propose w{req} at {id}: {r:?}"));
            }
        }
        if self.rng.gen_bool(self.cfg.read_rate) {
            let id = live[self.rng.gen_range(0..live.len())];
            let req = self.next_id;
            self.next_id += 1;
            let lease = self.rng.gen_bool(0.3);
            let must = self.checker.read_began();
            if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) {
                let r = if lease {
                    core.lease_read(req)
                } else {
                    core.read_index(req)
                };
                if r.is_ok() {
                    self.reads.insert(req, (id, must));
                }
                self.trace(|| {
                    format!("read r{req} at {id} (lease: {lease}, must reflect {must}): {r:?}")
                });
            }
        }
    }

    fn tick_all(&mut self) -> Result<(), Violation> {
        for id in self.ids.clone() {
            if let Some(core) = self.nodes.get_mut(&id).and_then(|n| n.core.as_mut()) {
                core.tick();
            }
            self.drive(id)?;
        }
        self.observe()
    }

    /// Delivers messages due now, in rounds, so that a message sent with
    /// no delay arrives within the same tick.
    fn deliver_all(&mut self) -> Result<(), Violation> {
        for _round in 0..16 {
            let due = self.net.due(self.now, &mut self.rng);
            if due.is_empty() {
                break;
            }
            for m in due {
                let to = m.to;
                if let Some(core) = self.nodes.get_mut(&to).and_then(|n| n.core.as_mut()) {
                    if self.cfg.trace {
                        eprintln!(
                            "t={:<5} deliver {}->{} t{} {:?}",
                            self.now, m.from, m.to, m.term, m.body
                        );
                    }
                    core.step(m);
                    self.drive(to)?;
                }
            }
            self.observe()?;
        }
        Ok(())
    }

    fn drive(&mut self, id: NodeId) -> Result<(), Violation> {
        let crash =
            if self.rng.gen_bool(self.cfg.crash_in_ready_rate) && self.now < self.cfg.fault_ticks {
                Some(if self.rng.gen_bool(0.5) {
                    CrashPoint::BeforePersist
                } else {
                    CrashPoint::AfterPersist
                })
            } else {
                None
            };
        let Some(node) = self.nodes.get_mut(&id) else {
            return Ok(());
        };
        let out = node.drive(crash);
        for (prev_term, entries) in &out.persisted {
            self.checker.persisted(id, *prev_term, entries)?;
            self.checker.unique_commands(id, entries)?;
        }
        for m in out.messages {
            self.net.send(m, self.now, &mut self.rng);
        }
        // Where proposals landed first: a single-voter leader may commit
        // and apply one within the same drive.
        // Answers come from leaders of different terms in any order; at
        // one index only the higher term's entry can apply (as the node's
        // `Pending` keeps it).
        for p in out.proposals {
            if let Ok((index, term)) = p.result {
                let slot = self.landed.entry((id, index)).or_insert((p.id, term));
                if slot.1 < term {
                    *slot = (p.id, term);
                }
            }
        }
        for state in &out.restored {
            self.report.snapshots_restored += 1;
            self.checker.restored(id, *state)?;
        }
        for e in &out.applied {
            self.checker.applied(id, e)?;
            if let Some((req, term)) = self.landed.remove(&(id, e.index)) {
                if term == e.term {
                    self.checker.write_acked(e.index);
                    self.report.writes_acked += 1;
                    if self.probe == Some(req) {
                        self.probe_acked = true;
                    }
                    self.trace(|| format!("ack w{req} at {id}: index {}", e.index));
                }
            }
        }
        for r in out.reads {
            let Some((node, must)) = self.reads.remove(&r.id) else {
                continue;
            };
            match r.result {
                Ok(index) => {
                    self.checker.read_answered(node, must, index)?;
                    self.report.reads_answered += 1;
                    self.trace(|| format!("read r{} at {node}: index {index}", r.id));
                }
                Err(e) => {
                    self.report.reads_failed += 1;
                    self.trace(|| format!("read r{} at {node} failed: {e}", r.id));
                }
            }
        }
        if out.crashed {
            self.crash(id);
        }
        // Checked after every executed batch: a leader elected and deposed
        // within one delivery round is still seen.
        self.observe()
    }

    fn observe(&mut self) -> Result<(), Violation> {
        if self.cfg.trace {
            for n in self.nodes.values() {
                let now = n.core.as_ref().map(|c| (c.role(), c.term()));
                if self.roles.insert(n.id, now) != Some(now) {
                    let m = n.core.as_ref().map(|c| c.status().membership);
                    eprintln!("t={:<5} node {}: {now:?} {m:?}", self.now, n.id);
                }
            }
        }
        let cores: Vec<&RaftCore> = self
            .nodes
            .values()
            .filter_map(|n| n.core.as_ref())
            .collect();
        for core in &cores {
            self.checker.observe(core, &cores)?;
        }
        self.report.committed = self.checker.applied_len();
        Ok(())
    }

    /// After healing: propose at the leader until a proposal commits.
    /// Returns true once one did.
    fn liveness_probe(&mut self, since_heal: u64) -> Result<bool, Violation> {
        if self.probe_acked {
            self.report.liveness_ticks = Some(since_heal);
            return Ok(true);
        }
        let pending = self
            .probe
            .is_some_and(|p| self.landed.values().any(|(r, _)| *r == p));
        if pending && since_heal % 50 != 0 {
            return Ok(false);
        }
        let leader = self
            .nodes
            .values_mut()
            .filter_map(|n| n.core.as_mut())
            .find(|c| c.role() == Role::Leader);
        if let Some(core) = leader {
            let req = self.next_id;
            self.next_id += 1;
            // Unique like every command: Exactly-once is checked on them.
            if core
                .propose(req, Bytes::from(format!("probe{req}")))
                .is_ok()
            {
                self.probe = Some(req);
            }
        }
        Ok(false)
    }
}
