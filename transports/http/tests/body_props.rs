//! Property tests of the body decoder (fixed seed; `PROPTEST_RNG_SEED`
//! explores others): random bytes, wrong versions and truncated bodies
//! never panic, and only a whole, current-version body decodes.

use bytes::Bytes;
use proptest::prelude::*;
use raft_actors::core::{Body, Entry, Message, Payload};
use raft_actors::transport::GroupBatch;
use raft_actors_transport_http::wire::{BodyError, Envelope, WIRE_VERSION};

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        any::<u64>(),
        1u64..5,
        any::<u64>(),
        proptest::collection::vec(
            proptest::collection::vec(
                (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..64)),
                0..4,
            ),
            0..4,
        ),
    )
        .prop_map(|(cluster_id, from, group, batches)| Envelope {
            cluster_id,
            from,
            to: 1,
            batches: batches
                .into_iter()
                .enumerate()
                .map(|(k, b)| GroupBatch {
                    group: group.wrapping_add(k as u64),
                    messages: b
                        .into_iter()
                        .map(|(i, p)| Message {
                            from,
                            to: 1,
                            term: 1,
                            body: Body::Append {
                                prev_index: i,
                                prev_term: 1,
                                entries: vec![Entry {
                                    index: i.wrapping_add(1),
                                    term: 1,
                                    payload: Payload::Command(Bytes::from(p)),
                                }],
                                commit: 0,
                            },
                        })
                        .collect(),
                })
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xb0d1),
        ),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn bodies_round_trip_and_truncations_fail(e in envelope(), cut in any::<prop::sample::Index>()) {
        let body = e.encode().expect("encode");
        prop_assert_eq!(Envelope::decode(&body).expect("decode"), e);
        let cut = cut.index(body.len());
        prop_assert!(Envelope::decode(&body[..cut]).is_err(), "a truncated body decoded");
    }

    #[test]
    fn wrong_versions_are_refused(e in envelope(), v in any::<u8>()) {
        prop_assume!(v != WIRE_VERSION);
        let mut body = e.encode().expect("encode");
        body[0] = v;
        let r = Envelope::decode(&body);
        prop_assert!(matches!(r, Err(BodyError::Version { got, .. }) if got == v), "{:?}", r);
    }
}
