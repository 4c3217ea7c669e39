//! Log replication (§5.3) and the commit rule (§5.4.2): AppendEntries on
//! both sides, heartbeats, pipelining within each follower's window, and
//! fast conflict backtracking.
//!
//! Must never truncate a committed entry, never commit an entry of an
//! earlier term by counting replicas, and never ack what is not durable
//! (acks leave through `Ready` only after the persist).

use bytes::Bytes;

use super::{
    Body, BrokenRule, Conflict, Entry, LogIndex, NodeId, Payload, Progress, ProgressState,
    ProposeError, RaftCore, Role, Term,
};

impl RaftCore {
    /// Leader: appends a client command to its log.
    pub(super) fn append_proposal(
        &mut self,
        command: Bytes,
    ) -> Result<(LogIndex, Term), ProposeError> {
        if let Some(t) = &self.transfer {
            return Err(ProposeError::TransferInProgress { to: t.to });
        }
        let index = self.log.last_index() + 1;
        self.log.push(Entry {
            index,
            term: self.term,
            payload: Payload::Command(command),
        });
        Ok((index, self.term))
    }

    /// Leader: whether some peer can be sent entries right now.
    pub(super) fn has_entries_to_send(&self) -> bool {
        let last = self.log.last_index();
        self.progress.values().any(|p| {
            p.can_send(self.cfg.max_inflight) && (p.next_index <= last || p.match_index < last)
        })
    }

    /// Leader: sends what each peer's window allows, then a heartbeat round
    /// if one is due (a tick, a read waiting) or a peer has a commit index
    /// to learn that no AppendEntries carried.
    pub(super) fn flush_leader(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for &peer in &peers {
            self.send_appends(peer);
        }
        let round = self.reads.take_round(self.lease_now());
        let commit = self.log.commit;
        for &peer in &peers {
            let Some(pr) = self.progress.get_mut(&peer) else {
                continue;
            };
            // A follower may only learn a commit index it holds entries for.
            let peer_commit = commit.min(pr.match_index);
            if round.is_none() && pr.commit_sent >= peer_commit {
                continue;
            }
            pr.commit_sent = pr.commit_sent.max(peer_commit);
            let seq = self.reads.seq();
            let commit = peer_commit;
            let body = if round.is_some() && self.quiesce_round(seq) {
                Body::Quiesce { commit, seq }
            } else {
                Body::Heartbeat { commit, seq }
            };
            self.send(peer, body);
        }
    }

    fn send_appends(&mut self, peer: NodeId) {
        let last = self.log.last_index();
        loop {
            let Some(pr) = self.progress.get(&peer) else {
                return;
            };
            if pr.state == ProgressState::Snapshot {
                return self.send_snapshot_chunk(peer);
            }
            if !pr.can_send(self.cfg.max_inflight) {
                return;
            }
            // Stream only new entries; a probe may go out empty, to learn
            // where the logs match.
            let probing = pr.state == ProgressState::Probe;
            if pr.next_index > last && (!probing || pr.match_index >= last) {
                return;
            }
            let prev_index = pr.next_index - 1;
            let Some(prev_term) = self.log.term(prev_index) else {
                // Compacted: only a snapshot can bring this peer up.
                return self.start_snapshot(peer);
            };
            let entries = self.batch_from(pr.next_index);
            let sent_to = prev_index + entries.len() as u64;
            let commit = self.log.commit;
            let empty = entries.is_empty();
            let round = self.reads.seq();
            if let Some(pr) = self.progress.get_mut(&peer) {
                pr.sent(sent_to, round);
                pr.commit_sent = pr.commit_sent.max(commit.min(sent_to));
            }
            self.send(
                peer,
                Body::Append {
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                },
            );
            if probing || empty {
                return;
            }
        }
    }

    /// Entries from `from` on, within the per-message count and byte limits
    /// (one entry always fits, however large).
    fn batch_from(&self, from: LogIndex) -> Vec<Entry> {
        let candidates = self.log.slice(
            from,
            from.saturating_add(self.cfg.max_entries_per_message as u64 - 1),
        );
        let mut bytes = 0usize;
        let mut n = 0;
        for e in candidates {
            bytes += e.payload.len();
            if n > 0 && bytes > self.cfg.max_bytes_per_message {
                break;
            }
            n += 1;
        }
        candidates[..n].to_vec()
    }

    /// Follower: AppendEntries from the leader of this term.
    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) {
        if self.role == Role::Leader {
            // Two leaders in one term is impossible; a peer claiming it is
            // lying or broken.
            self.counters.malformed += 1;
            return;
        }
        // A payload left unread by a sender's driver is no entry at all.
        let well_formed = entries.iter().enumerate().all(|(i, e)| {
            e.index == prev_index.saturating_add(1 + i as u64)
                && e.term <= term
                && e.term >= prev_term
                && !matches!(e.payload, Payload::Unread { .. })
        }) && entries.windows(2).all(|w| w[0].term <= w[1].term);
        if !well_formed {
            self.counters.malformed += 1;
            return;
        }
        self.follow(from);
        self.leader_commit = self.leader_commit.max(commit);

        let (mut prev_index, mut prev_term, mut entries) = (prev_index, prev_term, &entries[..]);
        // Entries up to our commit index are committed, hence identical on
        // the leader (Leader Completeness): skip rather than compare them.
        if prev_index < self.log.commit {
            let skip = (self.log.commit - prev_index) as usize;
            let known = &entries[..skip.min(entries.len())];
            if known
                .iter()
                .any(|e| self.log.term(e.index).is_some_and(|t| t != e.term))
            {
                // A different entry at a committed index: refuse to look further.
                self.counters.malformed += 1;
                return;
            }
            if entries.len() <= skip {
                let index = self.log.commit;
                return self.send(
                    from,
                    Body::AppendResponse {
                        index,
                        conflict: None,
                    },
                );
            }
            prev_index = self.log.commit;
            prev_term = entries[skip - 1].term;
            entries = &entries[skip..];
        }
        match self.log.term(prev_index) {
            None => {
                let first_index = self.log.last_index() + 1;
                let conflict = Some(Conflict {
                    term: None,
                    first_index,
                });
                return self.send(
                    from,
                    Body::AppendResponse {
                        index: prev_index,
                        conflict,
                    },
                );
            }
            Some(t) if t != prev_term => {
                // Name the conflicting term and where it starts, so the
                // leader skips it in one round trip.
                let first_index = self
                    .log
                    .first_index_of_term(t, prev_index)
                    .max(self.log.commit + 1);
                let conflict = Some(Conflict {
                    term: Some(t),
                    first_index,
                });
                return self.send(
                    from,
                    Body::AppendResponse {
                        index: prev_index,
                        conflict,
                    },
                );
            }
            Some(_) => {}
        }
        if let Some(c) = self.log.find_conflict(entries) {
            if c <= self.log.commit {
                self.counters.malformed += 1;
                return;
            }
            let start = (c - prev_index - 1) as usize;
            self.log.truncate_and_append(&entries[start..]);
            // A configuration is in force as soon as it is in the log, and
            // one that was cut off falls back to the one before it (§6).
            self.configs.truncate_from(c);
            self.configs.record(&entries[start..]);
            self.refresh_membership();
        }
        let last_new = prev_index + entries.len() as u64;
        let commit = commit.min(last_new);
        if commit > self.log.commit {
            self.log.commit = commit;
        }
        self.send(
            from,
            Body::AppendResponse {
                index: last_new,
                conflict: None,
            },
        );
    }

    /// Follower: a heartbeat from the leader of this term.
    pub(super) fn handle_heartbeat(&mut self, from: NodeId, commit: LogIndex, seq: u64) {
        if self.role == Role::Leader {
            self.counters.malformed += 1;
            return;
        }
        self.follow(from);
        self.leader_commit = self.leader_commit.max(commit);
        let commit = commit.min(self.log.last_index());
        if commit > self.log.commit {
            self.log.commit = commit;
        }
        self.send(from, Body::HeartbeatResponse { seq });
    }

    /// Accepts `leader` as this term's leader and restarts the election timer.
    pub(super) fn follow(&mut self, leader: NodeId) {
        if self.role != Role::Follower || self.leader != Some(leader) {
            self.become_follower(self.term, Some(leader));
        }
        self.election_elapsed = 0;
        self.last_leader_contact = self.lease_now();
    }

    /// Leader: a follower's answer to AppendEntries.
    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        index: LogIndex,
        conflict: Option<Conflict>,
    ) {
        if self.role == Role::Leader && index > self.log.last_index() {
            self.counters.malformed += 1;
            return;
        }
        let Some(pr) = self.answering_peer(from) else {
            return;
        };
        match conflict {
            None => {
                if pr.acked(index) {
                    self.maybe_commit();
                }
                self.transfer_progressed(from);
            }
            Some(c) => {
                // §5.3 optimisation: jump past the follower's whole
                // conflicting term, or to its end if it is short.
                let next = match c.term {
                    Some(t) => self
                        .log
                        .last_index_of_term(t)
                        .map_or(c.first_index, |i| i + 1),
                    None => c.first_index,
                };
                if let Some(pr) = self.progress.get_mut(&from) {
                    // A stale refusal changes nothing; a real one drops the
                    // peer back to probing from `next`.
                    pr.refused(index, next);
                }
            }
        }
    }

    /// Leader: the progress of a peer that answered, marked recently active;
    /// `None` when this node does not lead (a late answer) or the peer is
    /// not a member (counted).
    pub(super) fn answering_peer(&mut self, from: NodeId) -> Option<&mut Progress> {
        if self.role != Role::Leader {
            return None;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            self.counters.unknown_peer += 1;
            return None;
        };
        pr.recent_active = true;
        Some(pr)
    }

    /// Leader: a follower acknowledged read round `seq`.
    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, seq: u64) {
        if self.role == Role::Leader && seq > self.reads.seq() {
            self.counters.malformed += 1;
            return;
        }
        let Some(pr) = self.answering_peer(from) else {
            return;
        };
        pr.heard_heartbeat(seq);
        pr.acked_seq = pr.acked_seq.max(seq);
        self.confirm_reads();
        self.quiesce_if_acknowledged();
    }

    /// Leader: advances the commit index to what a quorum holds, if that
    /// entry is of the current term (§5.4.2). Returns whether it moved.
    pub(super) fn maybe_commit(&mut self) -> bool {
        // A leader's own vote for an entry is its disk: only what is
        // durable counts (Figure 2), or a crash could lose an entry a
        // quorum was told is committed.
        let own = if self.cfg.breaks(BrokenRule::CountOwnUndurableEntries) {
            self.log.last_index()
        } else {
            self.log.stable
        };
        let id = self.id;
        let progress = &self.progress;
        // The broken rule of the simulation's tests: learners count too.
        let counted = if self.cfg.breaks(BrokenRule::CountLearnerInQuorum) {
            std::borrow::Cow::Owned(self.membership.with_learners_voting())
        } else {
            std::borrow::Cow::Borrowed(&self.membership)
        };
        let quorum = counted.committed_index(|n| {
            if n == id {
                own
            } else {
                progress.get(&n).map_or(0, |p| p.match_index)
            }
        });
        if quorum <= self.log.commit || quorum > self.log.last_index() {
            return false;
        }
        // §5.4.2: only an entry of the current term commits by counting
        // replicas; earlier ones commit with it (Figure 8).
        let own_term = self.log.term(quorum) == Some(self.term);
        if !own_term && !self.cfg.breaks(BrokenRule::CommitByCountingOldTerm) {
            return false;
        }
        let first_of_term = self.log.term(self.log.commit) != Some(self.term);
        self.log.commit = quorum;
        if first_of_term && own_term {
            self.release_reads_waiting_for_commit();
        }
        self.after_commit();
        true
    }
}
