//! The simulation loop: faults, client load and checks, tick by tick.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::node::DriveOutput;
use super::{
    Checker, CrashPoint, DriverMode, Network, NodeClock, Property, Report, SimConfig, SimNode,
    Violation,
};
use crate::core::{LogIndex, Membership, NodeId, RaftCore, RequestId, Role, Term};

mod faults;
mod inputs;

/// Runs one seed. `Err` names the first property violated.
pub fn run(cfg: &SimConfig) -> Result<Report, Violation> {
    let mut sim = Sim::new(cfg)?;
    for t in 0..cfg.fault_ticks + cfg.liveness_ticks {
        sim.now = t;
        sim.resume_due(t >= cfg.fault_ticks)?;
        if t < cfg.fault_ticks {
            sim.inject_faults();
            sim.stall_one();
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
    /// The liveness probes proposed (a later one does not cancel an
    /// earlier: a slow disk may ack it after the next was proposed), when
    /// the last was, and whether one was acknowledged.
    probes: std::collections::HashSet<RequestId>,
    last_probe: Option<u64>,
    probe_acked: bool,
    report: Report,
    /// Nodes to restart this tick.
    pending_restarts: Vec<NodeId>,
    /// (leader, term) pairs seen, and leaders to crash at a tick.
    seen_leaders: std::collections::HashSet<(NodeId, Term)>,
    doomed: Vec<(u64, NodeId, Term)>,
    /// Last role and term seen per node, for the trace.
    roles: BTreeMap<NodeId, Option<(Role, Term)>>,
    /// Stalled nodes, until when, and what waits in their mailboxes.
    stalled_until: BTreeMap<NodeId, u64>,
    held: BTreeMap<NodeId, Vec<inputs::Held>>,
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
            let drift = cfg.clock_drift_ppm.min(500_000);
            node.clock = NodeClock::new(rng.gen_range(1_000_000 - drift..=1_000_000 + drift));
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
            probes: std::collections::HashSet::new(),
            last_probe: None,
            probe_acked: false,
            report: Report {
                seed: cfg.seed,
                ..Default::default()
            },
            roles: BTreeMap::new(),
            pending_restarts: Vec::new(),
            seen_leaders: std::collections::HashSet::new(),
            doomed: Vec::new(),
            stalled_until: BTreeMap::new(),
            held: BTreeMap::new(),
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
            self.propose_at(id, req, Bytes::from(format!("w{req}")));
        }
        if self.rng.gen_bool(self.cfg.read_rate) {
            // Half the reads go to a node that believes it leads, stalled
            // or cut off as it may be, half of those lease reads: clients
            // that stay with the leader they know are what a stale lease
            // answers.
            let leaders: Vec<NodeId> = self
                .nodes
                .values()
                .filter(|n| n.core.as_ref().is_some_and(|c| c.role() == Role::Leader))
                .map(|n| n.id)
                .collect();
            let (id, lease) = if !leaders.is_empty() && self.rng.gen_bool(0.5) {
                (
                    leaders[self.rng.gen_range(0..leaders.len())],
                    self.rng.gen_bool(0.5),
                )
            } else {
                (
                    live[self.rng.gen_range(0..live.len())],
                    self.rng.gen_bool(0.3),
                )
            };
            let req = self.next_id;
            self.next_id += 1;
            let must = self.checker.read_began();
            self.read_at(id, req, lease, must);
        }
    }

    /// One tick of real time: each live node takes the ticks its own
    /// clock says fell due (none while it is stalled).
    fn tick_all(&mut self) -> Result<(), Violation> {
        for id in self.ids.clone() {
            let due = match self.nodes.get_mut(&id) {
                Some(n) if n.core.is_some() => n.clock.advance(),
                _ => 0,
            };
            for _ in 0..due {
                self.tick_at(id)?;
            }
            // This tick's proposals and reads go out even on a node whose
            // slower clock took no tick.
            if !self.is_stalled(id) {
                self.drive(id)?;
            }
        }
        self.observe()
    }

    /// Delivers messages due now, in rounds, so that a message sent with
    /// no delay arrives within the same tick; in the pipelined mode, each
    /// round first completes the persists due.
    fn deliver_all(&mut self) -> Result<(), Violation> {
        for _round in 0..16 {
            let completed = self.complete_persists()?;
            let due = self.net.due(self.now, &mut self.rng);
            if due.is_empty() && !completed {
                break;
            }
            for m in due {
                self.step_at(m)?;
            }
            self.observe()?;
        }
        Ok(())
    }

    /// Whether (and where) a crash strikes the batch about to execute.
    fn crash_point(&mut self) -> Option<CrashPoint> {
        if self.now >= self.cfg.fault_ticks || !self.rng.gen_bool(self.cfg.crash_in_ready_rate) {
            return None;
        }
        Some(if self.rng.gen_bool(0.5) {
            CrashPoint::BeforePersist
        } else {
            CrashPoint::AfterPersist
        })
    }

    /// Has `id` execute what its core asks, as the run's driver mode says:
    /// at once (lockstep), or by handing persists to its disk (pipelined).
    fn drive(&mut self, id: NodeId) -> Result<(), Violation> {
        let out = match self.cfg.driver {
            DriverMode::Lockstep => {
                let crash = self.crash_point();
                match self.nodes.get_mut(&id) {
                    Some(node) => node.drive(crash),
                    None => return Ok(()),
                }
            }
            DriverMode::Pipelined => match self.nodes.get_mut(&id) {
                Some(node) => {
                    // A healed disk is a good one too: fsyncs well inside
                    // a round trip, or liveness could not be expected of a
                    // backlog the faults left.
                    let healed = self.now >= self.cfg.fault_ticks;
                    let delay = if healed {
                        self.cfg.persist_delay.min(1)
                    } else {
                        self.cfg.persist_delay
                    };
                    let out = node.submit(self.now, delay, &mut self.rng);
                    let r = &mut self.report;
                    r.max_writes_in_flight = r.max_writes_in_flight.max(node.writes_in_flight());
                    out
                }
                None => return Ok(()),
            },
        };
        self.absorb(id, out)
    }

    /// Pipelined mode: completes every node's persists due by now (a crash
    /// may strike one), then hands out what the core has next. Returns
    /// whether any completed.
    fn complete_persists(&mut self) -> Result<bool, Violation> {
        if self.cfg.driver != DriverMode::Pipelined {
            return Ok(false);
        }
        let mut any = false;
        for id in self.ids.clone() {
            // A stalled node's completions wait in its mailbox.
            if self.is_stalled(id) || !self.nodes.get(&id).is_some_and(|n| n.has_due(self.now)) {
                continue;
            }
            let crash = self.crash_point();
            let Some(node) = self.nodes.get_mut(&id) else {
                continue;
            };
            let (done, out) = node.complete_due(self.now, crash);
            any |= done;
            self.absorb(id, out)?;
            self.drive(id)?;
        }
        Ok(any)
    }

    /// Checks and routes what a node's driver produced.
    fn absorb(&mut self, id: NodeId, out: DriveOutput) -> Result<(), Violation> {
        for (prev_term, entries) in &out.persisted {
            self.checker.persisted(id, *prev_term, entries)?;
            self.checker.unique_commands(id, entries)?;
        }
        for m in out.messages {
            self.net.send(m, self.now, &mut self.rng);
        }
        // Where proposals landed first: a single-voter leader may commit
        // and apply one within the same drive.
        for p in out.proposals {
            if let Ok((index, term)) = p.result {
                // Answers come from leaders of different terms in any
                // order; at one index only the higher term's entry can
                // apply (as the node's `Pending` keeps it).
                let slot = self.landed.entry((id, index)).or_insert((p.id, term));
                if slot.1 < term {
                    *slot = (p.id, term);
                }
            }
        }
        let mut restores = out.restored.iter().peekable();
        for (i, e) in out.applied.iter().enumerate() {
            while let Some((_, state)) = restores.next_if(|(before, _)| *before <= i) {
                self.report.snapshots_restored += 1;
                self.checker.restored(id, *state)?;
            }
            self.checker.applied(id, e)?;
            if let Some((req, term)) = self.landed.remove(&(id, e.index)) {
                if term == e.term {
                    self.checker.write_acked(e.index);
                    self.report.writes_acked += 1;
                    if self.probes.contains(&req) {
                        self.probe_acked = true;
                    }
                    self.trace(|| format!("ack w{req} at {id}: index {}", e.index));
                }
            }
        }
        for (_, state) in restores {
            self.report.snapshots_restored += 1;
            self.checker.restored(id, *state)?;
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
        // A leader counts once its term is on its disk. Before that it has
        // promised nothing to anyone (no message, answer or apply leaves
        // before the batch that carries its term is durable), and a crash
        // may take it back: a single voter that wins term 13 and crashes
        // before persisting it wins term 13 again, with another log.
        let cores: Vec<&RaftCore> = self
            .nodes
            .values()
            .filter_map(|n| {
                let core = n.core.as_ref()?;
                let durable = n.disk.hard_state.term == core.term();
                (core.role() != Role::Leader || durable).then_some(core)
            })
            .collect();
        for core in &cores {
            self.checker.observe(core, &cores)?;
        }
        let nodes = &self.nodes;
        for core in &cores {
            self.checker.commit_durable(core, |id, index, term| {
                nodes.get(&id).is_some_and(|n| n.disk.holds(index, term))
            })?;
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
        let pending = self.landed.values().any(|(r, _)| self.probes.contains(r));
        let recent = self.last_probe.is_some_and(|t| since_heal < t + 50);
        if (pending || recent) && since_heal % 50 != 0 {
            return Ok(false);
        }
        let mut cores: Vec<&mut RaftCore> = self
            .nodes
            .values_mut()
            .filter_map(|n| n.core_now())
            .collect();
        let at = match cores.iter().position(|c| c.role() == Role::Leader) {
            Some(leader) => Some(leader),
            // A client that finds no leader asks some other node: with
            // quiescing groups that is what wakes a group whose leader is
            // gone (no rng drawn, so other seeds' runs are unchanged).
            None if self.cfg.core.quiesce_after_ticks.is_some() && !cores.is_empty() => {
                Some((since_heal / 50) as usize % cores.len())
            }
            None => None,
        };
        if let Some(core) = at.map(|i| &mut *cores[i]) {
            let req = self.next_id;
            self.next_id += 1;
            // Unique like every command: Exactly-once is checked on them.
            if core
                .propose(req, Bytes::from(format!("probe{req}")))
                .is_ok()
            {
                self.probes.insert(req);
                self.last_probe = Some(since_heal);
            }
        }
        Ok(false)
    }
}
