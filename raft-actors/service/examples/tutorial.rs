// A replicated tally of votes, whole: a state machine, two routes, `main`.
use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use raft_actors_service::{http::key_after, ApiError, LogIndex, Node, Service};
use serde_json::json;

/// The state every node holds: votes per name.
#[derive(Default)]
pub struct Tally(BTreeMap<String, u64>);

impl Service for Tally {
    const NAME: &'static str = "tally";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION"); // `tally 0.1.0`
    const ABOUT: &'static str = "A replicated tally of votes.";
    type Command = String; // a vote for this name
    type Output = u64; // its votes after this one
    type Query = (); // "all the votes"
    type Answer = BTreeMap<String, u64>;
    type Snapshot = BTreeMap<String, u64>;

    // Deterministic: every node applies the same votes in the same order.
    fn apply(&mut self, _: LogIndex, name: String) -> u64 {
        let n = self.0.entry(name).or_default();
        *n += 1;
        *n
    }
    fn query(&self, _: ()) -> Self::Answer {
        self.0.clone()
    }
    fn snapshot(&self) -> Self::Snapshot {
        self.0.clone()
    }
    fn restore(&mut self, votes: Self::Snapshot) {
        self.0 = votes;
    }
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/vote/{name}", web::post().to(vote))
            .route("/votes", web::get().to(votes));
    }
}

/// `POST /vote/{name}`: answered once the vote is committed and applied.
async fn vote(node: web::Data<Node<Tally>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = String::from_utf8(key_after(&req, "/vote/")?)
        .map_err(|_| ApiError::bad_request("names are UTF-8"))?;
    let w = node.write(&req, name).await?; // honours Idempotency-Key
    Ok(HttpResponse::Ok().json(json!({ "index": w.index, "votes": w.output })))
}

/// `GET /votes[?consistency=stale]`: linearizable unless asked otherwise.
async fn votes(node: web::Data<Node<Tally>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(node.read(&req, ()).await?))
}

/// The services' command line: `--id`, `--raft-addr`, `--http-addr`,
/// `--peers`, `--data-dir`, `--storage`, `--transport`, ...
fn main() -> std::process::ExitCode {
    raft_actors_service::main::<Tally>()
}
