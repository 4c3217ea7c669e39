//! A fourth service in under 100 lines: a replicated set of names.
//!
//! `cargo run -p examples --bin raft-set -- --id 1 --raft-addr 127.0.0.1:7101
//! --http-addr 127.0.0.1:8101 --peers 1=127.0.0.1:7101 --data-dir set1`, then
//! `curl -X PUT localhost:8101/set/alice`, `curl localhost:8101/set`.
//! Flags, storage, transport, cluster API, idempotency keys, errors,
//! metrics and shutdown all come from the framework.

use std::collections::BTreeSet;
use std::process::ExitCode;

use actix_web::{web, HttpRequest, HttpResponse};
use raft_actors_service::http::key_after;
use raft_actors_service::{ApiError, LogIndex, Node, Service};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Default)]
struct Names(BTreeSet<String>);

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Cmd {
    Add(String),
    Remove(String),
}

impl Service for Names {
    const NAME: &'static str = "raft-set";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "A replicated set of names, on raft-actors.";
    type Command = Cmd;
    type Output = bool; // whether the set changed
    type Query = ();
    type Answer = Vec<String>;
    type Snapshot = BTreeSet<String>;

    fn apply(&mut self, _: LogIndex, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Add(n) => self.0.insert(n),
            Cmd::Remove(n) => self.0.remove(&n),
        }
    }
    fn query(&self, _: ()) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
    fn snapshot(&self) -> BTreeSet<String> {
        self.0.clone()
    }
    fn restore(&mut self, s: BTreeSet<String>) {
        self.0 = s;
    }
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/set/{name}", web::put().to(add))
            .route("/set/{name}", web::delete().to(remove))
            .route("/set", web::get().to(list));
    }
}

fn name(req: &HttpRequest) -> Result<String, ApiError> {
    String::from_utf8(key_after(req, "/set/")?)
        .map_err(|_| ApiError::bad_request("names are UTF-8"))
}

async fn change(
    node: web::Data<Node<Names>>,
    req: HttpRequest,
    cmd: Cmd,
) -> Result<HttpResponse, ApiError> {
    let w = node.write(&req, cmd).await?;
    Ok(HttpResponse::Ok().json(json!({ "index": w.index, "changed": w.output })))
}

async fn add(node: web::Data<Node<Names>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let n = name(&req)?;
    change(node, req, Cmd::Add(n)).await
}

async fn remove(node: web::Data<Node<Names>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let n = name(&req)?;
    change(node, req, Cmd::Remove(n)).await
}

async fn list(node: web::Data<Node<Names>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(json!({ "names": node.read(&req, ()).await? })))
}

fn main() -> ExitCode {
    raft_actors_service::main::<Names>()
}
