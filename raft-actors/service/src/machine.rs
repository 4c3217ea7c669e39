//! [`Machine`]: the replicated state machine every service runs under: the
//! service's own state, the idempotency [`Sessions`] and the address book,
//! behind one [`Envelope`] of commands.
//!
//! It must stay deterministic: everything it decides depends on the
//! commands and their log indexes only. Publishing the address book to the
//! [`Directory`] is its one side effect, and changes no state.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use raft_actors::apply::{read_item, write_item, SnapshotView};
use raft_actors::core::{LogIndex, NodeId};
use raft_actors::{Apply, TypeConfig};
use serde::{Deserialize, Serialize};

use super::directory::{Addrs, Directory};
use super::sessions::{IdempotencyKey, Lookup, SessionBounds, Sessions};
use super::Service;

/// A command in the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Envelope<C> {
    /// The service's command, with its idempotency key if the client sent one.
    Command {
        /// The `Idempotency-Key`.
        key: Option<IdempotencyKey>,
        /// The service's command.
        command: C,
    },
    /// Records where node `id` is reached.
    Register {
        /// The node.
        id: NodeId,
        /// Its addresses.
        addrs: Addrs,
    },
}

/// What applying an [`Envelope`] answers.
#[derive(Clone, Debug)]
pub enum Outcome<O> {
    /// The command's answer, and the index it was (first) applied at.
    Done {
        /// The log index of the first application.
        index: LogIndex,
        /// The service's answer.
        output: O,
    },
    /// A retry whose answer was evicted from the session table; not applied.
    Expired,
    /// A key below the client's kept answers that was never applied; not
    /// applied now either (see [`Lookup::BelowWindow`]).
    BelowWindow,
    /// An address was recorded.
    Registered,
}

/// The snapshot of a [`Machine`].
#[derive(Serialize, Deserialize)]
pub struct MachineSnapshot<S, O> {
    service: S,
    sessions: Sessions<O>,
    book: BTreeMap<NodeId, Addrs>,
}

/// The service's state machine with sessions and address book.
pub struct Machine<S: Service> {
    service: S,
    sessions: Sessions<S::Output>,
    book: BTreeMap<NodeId, Addrs>,
    directory: Directory,
    bounds: SessionBounds,
}

impl<S: Service> Machine<S> {
    /// An empty machine publishing its address book to `directory`, its
    /// session table kept within `bounds` (the same on every node).
    pub fn new(directory: Directory, bounds: SessionBounds) -> Self {
        Machine {
            service: S::default(),
            sessions: Sessions::default(),
            book: BTreeMap::new(),
            directory,
            bounds,
        }
    }
}

impl<S: Service> TypeConfig for Machine<S> {
    type Command = Envelope<S::Command>;
    type Output = Outcome<S::Output>;
    type Query = S::Query;
    type QueryAnswer = S::Answer;
    type Snapshot = MachineSnapshot<S::Snapshot, S::Output>;
}

impl<S: Service> Apply<Machine<S>> for Machine<S> {
    fn apply(&mut self, index: LogIndex, envelope: Envelope<S::Command>) -> Outcome<S::Output> {
        self.sessions.sweep(index, &self.bounds);
        match envelope {
            Envelope::Register { id, addrs } => {
                self.book.insert(id, addrs);
                self.directory.publish(&self.book);
                Outcome::Registered
            }
            Envelope::Command { key: None, command } => Outcome::Done {
                index,
                output: self.service.apply(index, command),
            },
            Envelope::Command {
                key: Some(key),
                command,
            } => match self.sessions.lookup(&key, index) {
                Lookup::Answered(index, output) => Outcome::Done { index, output },
                Lookup::Expired => Outcome::Expired,
                Lookup::BelowWindow => Outcome::BelowWindow,
                Lookup::New => {
                    let output = self.service.apply(index, command);
                    self.sessions
                        .record(&key, index, output.clone(), &self.bounds);
                    Outcome::Done { index, output }
                }
            },
        }
    }

    fn query(&self, query: S::Query) -> S::Answer {
        self.service.query(query)
    }

    fn snapshot(&self) -> MachineSnapshot<S::Snapshot, S::Output> {
        MachineSnapshot {
            service: self.service.snapshot(),
            sessions: self.sessions.clone(),
            book: self.book.clone(),
        }
    }

    fn restore(&mut self, snapshot: MachineSnapshot<S::Snapshot, S::Output>) {
        self.service.restore(snapshot.service);
        self.sessions = snapshot.sessions;
        self.book = snapshot.book;
        self.directory.publish(&self.book);
    }

    /// Streamed: one item with the sessions and the address book (both
    /// bounded), then the service's own view, so a service larger than
    /// spare memory streams its state item by item.
    fn snapshot_view(&self) -> Box<dyn SnapshotView> {
        let header = (self.sessions.clone(), self.book.clone());
        let service = self.service.snapshot_view();
        Box::new(move |out: &mut dyn Write| {
            write_item(out, &header)?;
            service.write_to(out)
        })
    }

    fn restore_from(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        type Header<O> = (Sessions<O>, BTreeMap<NodeId, Addrs>);
        let Some((sessions, book)) = read_item::<Header<S::Output>>(input)? else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "empty snapshot",
            ));
        };
        self.service.restore_from(input)?;
        self.sessions = sessions;
        self.book = book;
        self.directory.publish(&self.book);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use actix_web::web;

    use super::*;

    #[derive(Default)]
    struct Sum(i64);

    impl Service for Sum {
        const NAME: &'static str = "sum";
        type Command = i64;
        type Output = i64;
        type Query = ();
        type Answer = i64;
        type Snapshot = i64;
        fn apply(&mut self, _: LogIndex, d: i64) -> i64 {
            self.0 += d;
            self.0
        }
        fn query(&self, _: ()) -> i64 {
            self.0
        }
        fn snapshot(&self) -> i64 {
            self.0
        }
        fn restore(&mut self, s: i64) {
            self.0 = s;
        }
        fn routes(_: &mut web::ServiceConfig) {}
    }

    fn keyed(seq: u64, d: i64) -> Envelope<i64> {
        Envelope::Command {
            key: Some(IdempotencyKey {
                client: "c".into(),
                seq,
            }),
            command: d,
        }
    }

    fn done(o: Outcome<i64>) -> (LogIndex, i64) {
        match o {
            Outcome::Done { index, output } => (index, output),
            other => panic!("not done: {other:?}"),
        }
    }

    #[test]
    fn a_retried_key_is_answered_from_the_table_and_survives_a_snapshot() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = Arc::clone(&heard);
        let dir = Directory::new(Arc::new(move |id, addr| {
            h.lock().expect("lock").push((id, addr))
        }));
        let mut m = Machine::<Sum>::new(dir.clone(), SessionBounds::default());
        assert_eq!(done(m.apply(1, keyed(1, 5))), (1, 5));
        assert_eq!(done(m.apply(2, keyed(1, 100))), (1, 5), "applied once");
        let addrs = Addrs {
            raft: "127.0.0.1:7004".parse().expect("addr"),
            http: None,
        };
        assert!(matches!(
            m.apply(3, Envelope::Register { id: 4, addrs }),
            Outcome::Registered
        ));
        assert_eq!(heard.lock().expect("lock").len(), 1);

        // A node restored from the snapshot knows the answer and the address.
        let snap = m.snapshot();
        let bytes = raft_actors::type_config::encode(&snap).expect("encodes");
        let mut other = Machine::<Sum>::new(
            Directory::new(Arc::new(|_, _| {})),
            SessionBounds::default(),
        );
        other.restore(raft_actors::type_config::decode(&bytes).expect("decodes"));
        assert_eq!(done(other.apply(4, keyed(1, 100))), (1, 5));
        assert_eq!(done(other.apply(5, keyed(2, 1))), (5, 6));
        assert_eq!(other.query(()), 6);
        assert_eq!(other.directory.get(4), Some(addrs));
    }

    #[test]
    fn the_streamed_snapshot_carries_sessions_book_and_state_and_refuses_a_cut() {
        let mut m = Machine::<Sum>::new(
            Directory::new(Arc::new(|_, _| {})),
            SessionBounds::default(),
        );
        assert_eq!(done(m.apply(1, keyed(1, 5))), (1, 5));
        let addrs = Addrs {
            raft: "127.0.0.1:7005".parse().expect("addr"),
            http: None,
        };
        m.apply(2, Envelope::Register { id: 5, addrs });
        let view = m.snapshot_view();
        // Writes after the view is taken are not in it.
        assert_eq!(done(m.apply(3, keyed(2, 10))), (3, 15));
        let mut file = Vec::new();
        view.write_to(&mut file).expect("writes");

        let fresh = || {
            Machine::<Sum>::new(
                Directory::new(Arc::new(|_, _| {})),
                SessionBounds::default(),
            )
        };
        let mut other = fresh();
        other.restore_from(&mut &file[..]).expect("restores");
        assert_eq!(other.query(()), 5, "the state as of the view");
        assert_eq!(done(other.apply(4, keyed(1, 100))), (1, 5), "session kept");
        assert_eq!(other.directory.get(5), Some(addrs), "book kept");

        // A file cut anywhere is an error, never a silently smaller state.
        for cut in [0, 1, file.len() / 2, file.len() - 1] {
            let mut broken = fresh();
            assert!(
                broken.restore_from(&mut &file[..cut]).is_err(),
                "cut at {cut} of {}",
                file.len()
            );
        }
    }
}
