//! The checker for any model on a real cluster: four clients add to the
//! kit's `Counter` and read it, through every node, while the leader is
//! cut off and healed; the history recorded with `Calls<CounterModel>`
//! must be linearizable, and the same history with one answer changed must
//! not be.

use std::time::Duration;

use futures::future::join_all;
use raft_actors::testing::{
    check_model, Calls, Counter, CounterModel, CounterOp, Ended, TestCluster, Verdict,
};
use raft_actors::Consistency;

const T: Duration = Duration::from_secs(10);

#[actix_rt::test]
async fn a_counter_history_under_a_leader_cut_off_is_linearizable() {
    let cluster = TestCluster::memory(3)
        .seed(82)
        .timeout(Duration::from_secs(2))
        .apply(Counter::default)
        .start()
        .await
        .expect("cluster starts");
    let leader = cluster.wait_for_leader(T).await.expect("a leader");
    let calls = Calls::<CounterModel>::new();

    // One round of every client, each through its own node.
    let round = |n: u64| {
        let ids = cluster.ids();
        let calls = calls.clone();
        let cluster = &cluster;
        join_all((1..=4u64).map(move |client| {
            let calls = calls.clone();
            let node = ids[(client as usize + n as usize) % ids.len()];
            async move {
                let raft = cluster.raft(node);
                if (client + n) % 3 == 0 {
                    let id = calls.invoke(client, CounterOp::Get);
                    match raft.read((), Consistency::Linearizable).await {
                        Ok(v) => calls.ok(id, v as i64),
                        Err(e) if e.outcome_unknown() => calls.unknown(id),
                        Err(_) => calls.failed(id),
                    }
                } else {
                    let id = calls.invoke(client, CounterOp::Add(client as i64));
                    match raft.propose(client).await {
                        Ok(a) => calls.ok(id, a.output as i64),
                        Err(e) if e.outcome_unknown() => calls.unknown(id),
                        Err(_) => calls.failed(id),
                    }
                }
            }
        }))
    };
    for n in 0..5 {
        round(n).await;
    }
    cluster.faults().isolate(leader);
    for n in 5..10 {
        round(n).await;
    }
    cluster.faults().heal();
    cluster
        .wait_for_leader(T)
        .await
        .expect("a leader after healing");
    for n in 10..15 {
        round(n).await;
    }
    cluster.shutdown().await;

    let history = calls.calls();
    let answered = history
        .iter()
        .filter(|c| matches!(c.ended, Ended::Ok(_)))
        .count();
    assert!(answered >= 20, "most calls answered: {history:?}");
    assert_eq!(
        check_model(&CounterModel, &history),
        Verdict::Linearizable,
        "{history:#?}"
    );

    // The negative control on the same history: an add answered with a
    // value no order of positive adds gives (below its own delta).
    let mut tampered = history.clone();
    let add = tampered
        .iter_mut()
        .find(|c| matches!((&c.op, &c.ended), (CounterOp::Add(_), Ended::Ok(_))))
        .expect("an answered add");
    add.ended = Ended::Ok(0);
    assert!(
        matches!(
            check_model(&CounterModel, &tampered),
            Verdict::NotLinearizable(_)
        ),
        "a tampered answer was accepted"
    );
}
