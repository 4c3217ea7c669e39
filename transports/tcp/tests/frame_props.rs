//! Property tests of the frame decoder: random bytes, truncated frames,
//! wrong versions and huge length prefixes never panic, and the decoder
//! never allocates what a prefix claims before checking the limit (a
//! counting allocator measures each decode's largest allocation).
//!
//! The seed is fixed so CI is deterministic; `PROPTEST_RNG_SEED=<n>`
//! explores others, `PROPTEST_CASES=<n>` runs more.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use raft_actors::core::{Body, Entry, Message, Payload};
use raft_actors_transport_tcp::frame::{decode_body, Frame, FrameCodec, FrameError, WIRE_VERSION};
use tokio_util::codec::Decoder;

/// Records, per thread and only while asked, the largest single
/// allocation: per thread, so proptest's and other tests' allocations on
/// other threads do not count.
struct PeakAlloc;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the allocator may run while thread locals are torn down.
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = PEAK.try_with(|p| p.set(p.get().max(size)));
        }
    });
}

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Runs `f`, answering its result and its largest allocation.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, PEAK.with(|p| p.get()))
}

const MAX: usize = 64 * 1024;
/// serde's cautious preallocation for a sequence caps at 1 MiB whatever
/// length the body claims; anything near the claimed gigabytes is a bug.
const ALLOC_BOUND: usize = 2 << 20;

/// Decodes everything in `buf`: frames until more bytes are needed or an
/// error (which would close the connection).
fn drain(codec: &mut FrameCodec, buf: &mut BytesMut) -> (Vec<Frame>, Option<FrameError>) {
    let mut frames = Vec::new();
    loop {
        match codec.decode(buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

fn message() -> impl Strategy<Value = Message> {
    (
        1u64..5,
        1u64..5,
        any::<u64>(),
        prop_oneof![
            (any::<u64>(), any::<u64>()).prop_map(|(commit, seq)| Body::Heartbeat { commit, seq }),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            )
                .prop_map(|(prev_index, commit, payloads)| Body::Append {
                    prev_index,
                    prev_term: 1,
                    entries: payloads
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| Entry {
                            index: prev_index.wrapping_add(i as u64 + 1),
                            term: 1,
                            payload: Payload::Command(Bytes::from(p)),
                        })
                        .collect(),
                    commit,
                }),
            (any::<u64>(), any::<u64>()).prop_map(|(commit, seq)| Body::Quiesce { commit, seq }),
            Just(Body::Wake),
            Just(Body::TimeoutNow),
        ],
    )
        .prop_map(|(from, to, term, body)| Message {
            from,
            to,
            term,
            body,
        })
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(cluster_id, from, to)| {
            Frame::Hello {
                cluster_id,
                from,
                to,
            }
        }),
        Just(Frame::Welcome),
        ".{0,40}".prop_map(|reason| Frame::Refused { reason }),
        (any::<u64>(), proptest::collection::vec(message(), 0..6))
            .prop_map(|(group, messages)| Frame::Batch { group, messages }),
    ]
}

fn encode(frames: &[Frame]) -> BytesMut {
    let codec = FrameCodec::new(MAX);
    let mut buf = BytesMut::new();
    for f in frames {
        codec.encode_into(f, &mut buf).expect("test frames fit");
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xf4a3e),
        ),
        ..ProptestConfig::default()
    })]

    /// Random bytes: no panic, bounded allocation.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut codec = FrameCodec::new(MAX);
        let mut buf = BytesMut::from(&bytes[..]);
        let (_, peak) = peak_of(|| drain(&mut codec, &mut buf));
        prop_assert!(peak <= ALLOC_BOUND, "allocated {peak} bytes");
        let _ = decode_body(&bytes);
    }

    /// A body of random bytes behind a valid prefix and version byte: it
    /// reaches postcard, which must refuse it, not panic or over-allocate.
    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut raw = BytesMut::new();
        raw.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
        raw.extend_from_slice(&[WIRE_VERSION]);
        raw.extend_from_slice(&body);
        let mut codec = FrameCodec::new(MAX);
        let ((_, _), peak) = peak_of(|| drain(&mut codec, &mut raw));
        prop_assert!(peak <= ALLOC_BOUND, "allocated {peak} bytes");
    }

    /// Frames round-trip, whatever the chunks the stream is cut into; a
    /// truncated stream yields the whole frames and waits for the rest.
    #[test]
    fn frames_round_trip_through_any_chunking(
        frames in proptest::collection::vec(frame(), 1..5),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let wire = encode(&frames);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut codec = FrameCodec::new(MAX);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut from = 0;
        for to in points {
            buf.extend_from_slice(&wire[from..to]);
            from = to;
            let (fs, err) = drain(&mut codec, &mut buf);
            prop_assert!(err.is_none(), "a prefix of valid frames is no error: {err:?}");
            got.extend(fs);
        }
        prop_assert_eq!(got, frames);
        prop_assert!(buf.is_empty());
        prop_assert_eq!(codec.decoded_bytes(), wire.len() as u64);
    }

    /// A truncated frame is never decoded as something else.
    #[test]
    fn a_truncated_frame_waits_for_more(f in frame(), cut in any::<prop::sample::Index>()) {
        let wire = encode(std::slice::from_ref(&f));
        let cut = cut.index(wire.len());
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut codec = FrameCodec::new(MAX);
        prop_assert!(matches!(codec.decode(&mut buf), Ok(None)));
    }

    /// Any version byte but ours is refused.
    #[test]
    fn wrong_versions_are_refused(f in frame(), version in any::<u8>()) {
        prop_assume!(version != WIRE_VERSION);
        let mut wire = encode(std::slice::from_ref(&f));
        wire[4] = version;
        let mut codec = FrameCodec::new(MAX);
        let r = codec.decode(&mut wire);
        prop_assert!(
            matches!(r, Err(FrameError::Version { got, .. }) if got == version),
            "{r:?}"
        );
    }

    /// A prefix over the limit is refused at once, before the decoder
    /// reserves anything near what it claims.
    #[test]
    fn huge_length_prefixes_are_refused_before_allocating(
        len in (MAX as u32 + 1)..=u32::MAX,
        tail in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut buf = BytesMut::with_capacity(4 + tail.len());
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&tail);
        let mut codec = FrameCodec::new(MAX);
        let (r, peak) = peak_of(|| codec.decode(&mut buf));
        prop_assert!(matches!(r, Err(FrameError::TooLarge { .. })), "{r:?}");
        prop_assert!(peak < 1024, "allocated {peak} bytes for a refused prefix");
    }
}

#[test]
fn an_encoded_frame_over_the_limit_is_refused() {
    let codec = FrameCodec::new(100);
    let mut buf = BytesMut::new();
    let big = Frame::Refused {
        reason: "x".repeat(200),
    };
    assert!(matches!(
        codec.encode_into(&big, &mut buf),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(buf.is_empty(), "nothing half-written");
}
