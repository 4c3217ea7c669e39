//! `raft-counter`: one replicated signed 64-bit counter
//! (its API: `examples/REFERENCE.md`). The smallest service: an `apply`, two routes.

use std::process::ExitCode;

use actix_web::{web, HttpRequest, HttpResponse};
use raft_actors_service::http::read_json;
use raft_actors_service::{ApiError, LogIndex, Node, Service};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Default)]
struct Counter(i64);

/// An add's answer: the new value, or the unchanged one on overflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Added {
    Value(i64),
    Overflow(i64),
}

impl Service for Counter {
    const NAME: &'static str = "raft-counter";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "A replicated signed 64-bit counter, on raft-actors.";
    type Command = i64;
    type Output = Added;
    type Query = ();
    type Answer = i64;
    type Snapshot = i64;

    fn apply(&mut self, _: LogIndex, delta: i64) -> Added {
        match self.0.checked_add(delta) {
            Some(v) => {
                self.0 = v;
                Added::Value(v)
            }
            None => Added::Overflow(self.0),
        }
    }
    fn query(&self, _: ()) -> i64 {
        self.0
    }
    fn snapshot(&self) -> i64 {
        self.0
    }
    fn restore(&mut self, v: i64) {
        self.0 = v;
    }
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/counter/add", web::post().to(add))
            .route("/counter", web::get().to(get));
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    delta: i64,
}

async fn add(
    node: web::Data<Node<Counter>>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Add { delta } = read_json(body).await?;
    match node.write(&req, delta).await?.output {
        Added::Value(v) => Ok(HttpResponse::Ok().json(json!({ "value": v }))),
        Added::Overflow(v) => Err(ApiError::unprocessable("overflow").with("value", v)),
    }
}

async fn get(node: web::Data<Node<Counter>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let v = node.read(&req, ()).await?;
    Ok(HttpResponse::Ok().json(json!({ "value": v })))
}

fn main() -> ExitCode {
    raft_actors_service::main::<Counter>()
}
