//! InstallSnapshot as the receiving core sees it, chunk by chunk: a
//! snapshot whose bytes do not match its checksum is never installed and
//! the transfer starts over at byte 0; a transfer cut by a restart of the
//! receiver starts over cleanly (transfers never resume across a restart);
//! chunks that do not fit the snapshot they claim are refused and counted.
//! Driven by hand, message by message, with no clock.

use bytes::Bytes;
use raft_actors::core::{
    checksum, Body, Config, HardState, Membership, Message, RaftCore, Recovered, Snapshot,
    SnapshotChunk, SnapshotMeta,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const STATE: &[u8] = b"the replicated state, 36 bytes long!";
const CHUNK: usize = 10;

fn follower(recovered: Recovered) -> RaftCore {
    let rng = ChaCha8Rng::seed_from_u64(2);
    RaftCore::new(2, Config::default(), recovered, rng).expect("a valid core")
}

fn snapshot(data: &[u8], checksum: u32) -> Snapshot {
    let meta = SnapshotMeta {
        index: 40,
        term: 1,
        membership: Membership::voters([1, 2, 3]),
    };
    Snapshot {
        meta,
        size: data.len() as u64,
        checksum,
    }
}

fn chunk(snap: &Snapshot, data: &[u8], offset: usize) -> Message {
    let end = (offset + CHUNK).min(data.len());
    Message {
        from: 1,
        to: 2,
        term: 1,
        body: Body::InstallSnapshot {
            meta: snap.meta.clone(),
            size: snap.size,
            checksum: snap.checksum,
            offset: offset as u64,
            data: Bytes::copy_from_slice(&data[offset..end]),
            done: end == data.len(),
        },
    }
}

/// What one round of the driver loop yields: the chunks handed to storage,
/// the snapshot to store and restore, and the answers to the leader as
/// `(next_offset, done)`.
#[derive(Default)]
struct Round {
    chunks: Vec<SnapshotChunk>,
    stored: Option<Snapshot>,
    restored: Option<Snapshot>,
    answers: Vec<(u64, bool)>,
}

fn drain(core: &mut RaftCore) -> Round {
    let mut round = Round::default();
    while let Some(rd) = core.ready() {
        let (persist, gate) = rd.split();
        round.chunks.extend(persist.snapshot_chunks);
        if persist.snapshot.is_some() {
            round.stored = persist.snapshot;
        }
        let after = gate.persisted();
        if after.restore.is_some() {
            round.restored = after.restore;
        }
        for m in after.messages {
            if let Body::SnapshotResponse {
                next_offset, done, ..
            } = m.body
            {
                round.answers.push((next_offset, done));
            }
        }
        core.advance();
    }
    round
}

/// Sends every chunk of `data` in order, as the leader does when each is
/// answered with the next offset; returns the last round.
fn send_all(core: &mut RaftCore, snap: &Snapshot, data: &[u8]) -> Round {
    let mut offset = 0;
    loop {
        core.step(chunk(snap, data, offset));
        let round = drain(core);
        let (next, done) = *round.answers.last().expect("every chunk is answered");
        if done || next == 0 || next as usize == data.len() {
            return round;
        }
        assert_eq!(next as usize, offset + CHUNK, "asks for the next chunk");
        offset = next as usize;
    }
}

#[test]
fn a_snapshot_that_fails_its_checksum_is_never_installed_and_starts_over() {
    let mut core = follower(Recovered::bootstrap(Membership::voters([1, 2, 3])));
    let damaged = snapshot(STATE, checksum(STATE) ^ 1);
    let before = core.counters().malformed;

    let last = send_all(&mut core, &damaged, STATE);

    assert!(last.stored.is_none(), "a damaged snapshot is not stored");
    assert!(last.restored.is_none(), "nor restored");
    assert_eq!(core.status().snapshot_index, 0);
    assert_eq!(last.answers.last(), Some(&(0, false)), "sent again from 0");
    assert_eq!(core.counters().malformed, before + 1);

    // The leader sends the good one from the start: it is installed.
    let good = snapshot(STATE, checksum(STATE));
    let last = send_all(&mut core, &good, STATE);
    assert_eq!(last.stored.as_ref(), Some(&good));
    assert_eq!(last.restored.as_ref(), Some(&good));
    assert_eq!(last.answers.last(), Some(&(0, true)));
    assert_eq!(core.status().snapshot_index, 40);
}

#[test]
fn every_chunk_goes_to_storage_in_order_and_the_last_one_installs() {
    let mut core = follower(Recovered::bootstrap(Membership::voters([1, 2, 3])));
    let snap = snapshot(STATE, checksum(STATE));
    let mut written = Vec::new();
    let mut offset = 0;
    while offset < STATE.len() {
        core.step(chunk(&snap, STATE, offset));
        let round = drain(&mut core);
        for c in round.chunks {
            assert_eq!(c.offset as usize, written.len(), "chunks arrive in order");
            assert_eq!(c.snapshot, snap);
            written.extend_from_slice(&c.data);
        }
        let installed = round.restored.is_some();
        offset += CHUNK;
        assert_eq!(installed, offset >= STATE.len(), "installed with the last");
    }
    assert_eq!(written, STATE);
}

#[test]
fn a_transfer_cut_by_a_restart_of_the_receiver_starts_over_from_byte_zero() {
    let mut core = follower(Recovered::bootstrap(Membership::voters([1, 2, 3])));
    let snap = snapshot(STATE, checksum(STATE));
    core.step(chunk(&snap, STATE, 0));
    core.step(chunk(&snap, STATE, CHUNK));
    let round = drain(&mut core);
    assert_eq!(round.answers.last(), Some(&(2 * CHUNK as u64, false)));
    let term = core.status().term;

    // The receiver restarts: what it received is gone (its partial file
    // is deleted at open), only its hard state survives.
    let mut core = follower(Recovered {
        hard_state: HardState {
            term,
            vote: None,
            commit: 0,
        },
        membership: Membership::voters([1, 2, 3]),
        ..Default::default()
    });
    // The leader goes on where it was: the receiver asks for byte 0.
    core.step(chunk(&snap, STATE, 2 * CHUNK));
    let round = drain(&mut core);
    assert!(
        round.chunks.is_empty(),
        "a chunk of no transfer is not kept"
    );
    assert_eq!(round.answers, vec![(0, false)]);

    // From the start, the transfer completes and installs.
    let last = send_all(&mut core, &snap, STATE);
    assert_eq!(last.restored.as_ref(), Some(&snap));
    assert_eq!(core.status().snapshot_index, 40);
}

#[test]
fn a_restarted_sender_starting_over_restarts_the_receivers_file() {
    let mut core = follower(Recovered::bootstrap(Membership::voters([1, 2, 3])));
    let snap = snapshot(STATE, checksum(STATE));
    core.step(chunk(&snap, STATE, 0));
    core.step(chunk(&snap, STATE, CHUNK));
    drain(&mut core);
    // The leader restarted and sends from 0 again: the chunk at 0 starts
    // the file over (storage truncates on offset 0), and the checksum is
    // computed afresh, so the transfer completes.
    let last = send_all(&mut core, &snap, STATE);
    assert_eq!(last.restored.as_ref(), Some(&snap));
}

#[test]
fn chunks_that_do_not_fit_their_snapshot_are_refused_and_counted() {
    let mut core = follower(Recovered::bootstrap(Membership::voters([1, 2, 3])));
    let snap = snapshot(STATE, checksum(STATE));
    let mut past_end = chunk(&snap, STATE, 30);
    if let Body::InstallSnapshot { offset, .. } = &mut past_end.body {
        *offset = 33; // 6 bytes at 33 run past 36
    }
    let mut early_done = chunk(&snap, STATE, 0);
    if let Body::InstallSnapshot { done, .. } = &mut early_done.body {
        *done = true; // the last chunk must reach the snapshot's size
    }
    let mut too_big = chunk(&snap, STATE, 0);
    if let Body::InstallSnapshot { size, .. } = &mut too_big.body {
        *size = Config::default().max_snapshot_bytes + 1;
    }
    for bad in [past_end, early_done, too_big] {
        let before = core.counters().malformed;
        core.step(bad);
        let round = drain(&mut core);
        assert_eq!(core.counters().malformed, before + 1);
        assert!(round.chunks.is_empty() && round.restored.is_none());
    }
    assert_eq!(core.status().snapshot_index, 0);
}
