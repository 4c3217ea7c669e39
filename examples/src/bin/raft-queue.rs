//! `raft-queue`: a replicated FIFO queue of byte strings
//! (its API: `examples/REFERENCE.md`). Shows a write that returns data: a pop.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::ExitCode;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use raft_actors_service::http::{put_bytes, read_value};
use raft_actors_service::raft_actors::apply::{read_item, write_item, SnapshotView};
use raft_actors_service::{ApiError, LogIndex, Node, Service};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The items are a persistent vector (`imbl`): a snapshot's view is an
/// O(1) clone, written out item by item on a thread of its own while
/// pushes and pops go on.
#[derive(Default)]
struct Queue {
    items: imbl::Vector<(u64, Bytes)>,
    next: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Cmd {
    Push(Bytes),
    Pop,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Out {
    Pushed(u64),
    Popped(Option<(u64, Bytes)>),
}

impl Service for Queue {
    const NAME: &'static str = "raft-queue";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "A replicated FIFO queue of byte strings, on raft-actors.";
    type Command = Cmd;
    type Output = Out;
    type Query = ();
    type Answer = usize;
    type Snapshot = (VecDeque<(u64, Bytes)>, u64);

    fn apply(&mut self, _: LogIndex, cmd: Cmd) -> Out {
        match cmd {
            Cmd::Push(item) => {
                self.next += 1;
                self.items.push_back((self.next, item));
                Out::Pushed(self.next)
            }
            Cmd::Pop => Out::Popped(self.items.pop_front()),
        }
    }
    fn query(&self, _: ()) -> usize {
        self.items.len()
    }
    fn snapshot(&self) -> Self::Snapshot {
        (self.items.iter().cloned().collect(), self.next)
    }
    fn restore(&mut self, (items, next): Self::Snapshot) {
        self.items = items.into_iter().collect();
        self.next = next;
    }
    /// Streamed: the next id, then one item per queued value.
    fn snapshot_view(&self) -> Box<dyn SnapshotView> {
        let (items, next) = (self.items.clone(), self.next);
        Box::new(move |out: &mut dyn Write| {
            write_item(out, &next)?;
            items.iter().try_for_each(|item| write_item(out, item))
        })
    }
    fn restore_from(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        self.items = imbl::Vector::new();
        self.next = read_item(input)?.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "empty snapshot")
        })?;
        while let Some(item) = read_item::<(u64, Bytes)>(input)? {
            self.items.push_back(item);
        }
        Ok(())
    }
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/queue", web::post().to(push))
            .route("/queue/pop", web::post().to(pop))
            .route("/queue/len", web::get().to(len));
    }
}

type Qn = web::Data<Node<Queue>>;

async fn push(node: Qn, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let item = read_value(body).await?;
    Ok(answer(node.write(&req, Cmd::Push(item)).await?.output))
}

async fn pop(node: Qn, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Ok(answer(node.write(&req, Cmd::Pop).await?.output))
}

/// Renders what was applied, whichever route asked: a retry with an
/// `Idempotency-Key` first used on the other route gets that first answer.
fn answer(out: Out) -> HttpResponse {
    match out {
        Out::Pushed(id) => HttpResponse::Ok().json(json!({ "id": id })),
        Out::Popped(Some((id, value))) => {
            let mut body = Map::new();
            body.insert("id".into(), Value::from(id));
            put_bytes(&mut body, "value", Some(&value));
            HttpResponse::Ok().json(Value::Object(body))
        }
        Out::Popped(None) => HttpResponse::NoContent().finish(),
    }
}

async fn len(node: Qn, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let n = node.read(&req, ()).await?;
    Ok(HttpResponse::Ok().json(json!({ "len": n })))
}

fn main() -> ExitCode {
    raft_actors_service::main::<Queue>()
}
