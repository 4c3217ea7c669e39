//! The schedule of [`FaultyStorage`]: deterministic per seed, every kind
//! of fault fires, and each one does to the inner store exactly what it
//! claims (nothing, all or nothing, no misread).

use super::*;
use crate::core::{Entry, HardState, LogIndex, Membership, Payload};
use crate::storage::MemoryStorage;
use crate::testing::storage_suite;
use crate::testing::StorageExt;

fn batch(index: LogIndex, term: u64) -> ToPersist {
    ToPersist {
        hard_state: Some(HardState {
            term,
            vote: Some(1),
            commit: 0,
        }),
        entries: vec![Entry {
            index,
            term,
            payload: Payload::Noop,
        }],
        ..ToPersist::default()
    }
}

fn memory() -> MemoryStorage {
    MemoryStorage::new(Membership::voters([1]))
}

/// Runs `writes` one-entry batches through a store on `plan`, reloading
/// after every failure as a node would; answers each write's outcome and
/// the stats.
async fn run(plan: FaultPlan, writes: u64) -> (Vec<Result<(), StorageError>>, FaultStats) {
    let mem = memory();
    let mut disk = FaultyStorage::new(mem.clone(), plan);
    let mut outcomes = Vec::new();
    let mut state = disk.load().await;
    for _ in 0..writes {
        // A corrupt load is a failed incarnation: load again.
        while state.is_err() {
            state = disk.load().await;
        }
        let next = mem.state().last_index() + 1;
        let res = disk.write(batch(next, 1)).await;
        if res.is_err() {
            state = disk.load().await;
        }
        outcomes.push(res);
    }
    (outcomes, disk.handle().stats())
}

fn seeded(seed: u64) -> FaultPlan {
    FaultPlan::seeded(seed)
        .write_failures(0.05)
        .fsync_failures(0.05)
        .corrupt_loads(0.2)
}

#[actix_rt::test]
async fn the_schedule_is_deterministic_for_a_seed_and_differs_across_seeds() {
    let (a, sa) = run(seeded(11), 400).await;
    let (b, sb) = run(seeded(11), 400).await;
    assert_eq!(a, b, "same seed, same outcomes");
    assert_eq!(sa, sb);
    let (c, _) = run(seeded(12), 400).await;
    assert_ne!(a, c, "another seed, another schedule");
    // The plan alone answers the same for a call, whatever came before.
    let plan = seeded(11);
    let first: Vec<_> = (1..=400).map(|n| plan.write_fault(n, true)).collect();
    let backwards: Vec<_> = (1..=400).rev().map(|n| plan.write_fault(n, true)).collect();
    assert!(first.iter().eq(backwards.iter().rev()));
}

#[actix_rt::test]
async fn every_kind_of_fault_fires_and_no_retry_is_counted() {
    let (outcomes, s) = run(seeded(3), 400).await;
    assert!(s.write_failures > 0, "{s:?}");
    assert!(s.fsync_failures > 0, "{s:?}");
    assert!(s.fsync_failures_kept > 0, "{s:?}");
    assert!(s.fsync_failures_kept < s.fsync_failures, "{s:?}");
    assert!(s.corrupt_loads > 0, "{s:?}");
    assert_eq!(s.refused, 0, "every failure was followed by a reload");
    let failed = outcomes.iter().filter(|r| r.is_err()).count() as u64;
    assert_eq!(failed, s.write_failures + s.fsync_failures);
    assert_eq!(s.injected(), failed + s.corrupt_loads);
    // A lazy write asks for no fsync: only outright failures hit it.
    let plan = FaultPlan::seeded(3).fsync_failures(1.0);
    assert!((1..100).all(|n| plan.write_fault(n, false).is_none()));
}

#[actix_rt::test]
async fn a_failed_write_keeps_nothing_and_refuses_until_reloaded() {
    let mem = memory();
    let plan = FaultPlan::none().at_write(2, WriteFault::Fails);
    let mut disk = FaultyStorage::new(mem.clone(), plan);
    let h = disk.handle();
    disk.load().await.expect("load");
    disk.write(batch(1, 1)).await.expect("first write");
    assert!(disk.write(batch(2, 1)).await.is_err());
    assert_eq!(mem.state().last_index(), 1, "nothing of the failed write");
    assert!(h.is_poisoned());
    // Every write is refused, of any kind, and counted as a retry.
    assert!(disk.write(batch(2, 1)).await.is_err());
    assert!(disk.append(None, vec![]).await.is_err());
    assert!(disk.compact(0).await.is_err());
    assert_eq!(h.stats().refused, 3);
    assert_eq!(mem.state().last_index(), 1);
    disk.load().await.expect("a new incarnation");
    assert!(!h.is_poisoned());
    disk.write(batch(2, 1))
        .await
        .expect("written after the reload");
    assert_eq!(mem.state().last_index(), 2);
}

#[actix_rt::test]
async fn a_failed_fsync_keeps_the_batch_whole_or_not_at_all() {
    for kept in [false, true] {
        let mem = memory();
        let plan = FaultPlan::none().at_write(1, WriteFault::FsyncFails { kept });
        let mut disk = FaultyStorage::new(mem.clone(), plan);
        disk.load().await.expect("load");
        let err = disk.write(batch(1, 1)).await.expect_err("fsync fails");
        assert!(err.to_string().contains("fsync"), "{err}");
        let state = mem.state();
        let held = u64::from(kept);
        assert_eq!(state.last_index(), held, "kept: {kept}");
        assert_eq!(state.hard_state.term, held, "the hard state goes with it");
        // A retry is refused: it could never be seen to succeed.
        assert!(disk.write(batch(1, 1)).await.is_err());
        assert_eq!(disk.handle().stats().refused, 1);
        assert_eq!(mem.state().last_index(), held);
    }
}

#[actix_rt::test]
async fn an_armed_fault_hits_the_next_synced_write_only() {
    let mem = memory();
    let mut disk = FaultyStorage::new(mem.clone(), FaultPlan::none());
    let h = disk.handle();
    disk.load().await.expect("load");
    h.fail_next_write(WriteFault::FsyncFails { kept: true });
    let lazy = ToPersist {
        hard_state: Some(HardState {
            term: 0,
            vote: None,
            commit: 0,
        }),
        must_sync: false,
        ..ToPersist::default()
    };
    disk.write(lazy)
        .await
        .expect("a lazy write is not the target");
    assert!(disk.write(batch(1, 1)).await.is_err());
    assert_eq!(mem.state().last_index(), 1, "kept");
    assert_eq!(h.stats().fsync_failures_kept, 1);
}

#[actix_rt::test]
async fn a_corrupt_record_is_refused_at_load_never_misread() {
    let mem = memory();
    let mut disk = FaultyStorage::new(mem.clone(), FaultPlan::none().at_load(2));
    let h = disk.handle();
    disk.load().await.expect("load");
    for i in 1..=5 {
        disk.write(batch(i, 1)).await.expect("write");
    }
    match disk.load().await {
        Err(StorageError::Corrupt { index, .. }) => {
            assert!((1..=5).contains(&index), "a stored record: {index}")
        }
        other => panic!("a corrupt load must be refused: {other:?}"),
    }
    // Nothing is written on a log that was not read.
    assert!(disk.write(batch(6, 1)).await.is_err());
    assert_eq!(h.stats().refused, 1);
    let state = disk.load().await.expect("the next read is clean");
    assert_eq!(state.last_index(), 5, "and holds everything");
    h.corrupt_every_load(true);
    for _ in 0..3 {
        assert!(matches!(
            disk.load().await,
            Err(StorageError::Corrupt { .. })
        ));
    }
    assert_eq!(h.stats().corrupt_loads, 4);
    assert_eq!(h.stats().incarnations, 2);
}

#[actix_rt::test]
async fn without_faults_it_keeps_the_storage_contract() {
    storage_suite(
        |m| FaultyStorage::new(MemoryStorage::new(m), FaultPlan::none()),
        |s| s,
    )
    .await;
}
