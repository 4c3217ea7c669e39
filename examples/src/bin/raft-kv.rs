//! `raft-kv`: a replicated key-value map with compare-and-swap
//! (its API: `examples/REFERENCE.md`). Keys and values are any bytes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use raft_actors_service::groups::Routed;
use raft_actors_service::http::{
    key_after, put_bytes, read_json_and_body, read_value, take_bytes, MAX_VALUE,
};
use raft_actors_service::raft_actors::apply::{read_item, write_item, SnapshotView};
use raft_actors_service::raft_actors::core::GroupId;
use raft_actors_service::{ApiError, LogIndex, Node, Service};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The map is persistent (`imbl`): a snapshot's view is an O(1) clone
/// that shares the map's nodes, so writes go on being applied and
/// acknowledged while the view is written out on a thread of its own.
#[derive(Default)]
struct Kv(imbl::OrdMap<Bytes, Bytes>);

#[derive(Clone, Debug, Serialize, Deserialize)]
// `Bytes` serializes as one byte string (not a sequence of u8s): a 1 MiB
// value costs one copy in the log, not a million elements.
enum Cmd {
    Put(Bytes, Bytes),
    Delete(Bytes),
    Cas {
        key: Bytes,
        expect: Option<Bytes>,
        value: Bytes,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Out {
    Done,
    NotSwapped(Option<Bytes>),
}

impl Service for Kv {
    const NAME: &'static str = "raft-kv";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "A replicated key-value map with compare-and-swap, on raft-actors.";
    type Command = Cmd;
    type Output = Out;
    type Query = Bytes;
    type Answer = Option<Bytes>;
    type Snapshot = BTreeMap<Bytes, Bytes>;

    fn apply(&mut self, _: LogIndex, cmd: Cmd) -> Out {
        match cmd {
            Cmd::Put(k, v) => {
                self.0.insert(k, v);
            }
            Cmd::Delete(k) => {
                self.0.remove(&k);
            }
            Cmd::Cas { key, expect, value } => {
                let current = self.0.get(&key);
                if current != expect.as_ref() {
                    return Out::NotSwapped(current.cloned());
                }
                self.0.insert(key, value);
            }
        }
        Out::Done
    }
    fn query(&self, key: Bytes) -> Option<Bytes> {
        self.0.get(&key).cloned()
    }
    fn snapshot(&self) -> Self::Snapshot {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    fn restore(&mut self, s: Self::Snapshot) {
        self.0 = s.into_iter().collect();
    }
    /// Streamed one pair at a time: a map larger than spare memory is
    /// never whole in memory twice, written or read.
    fn snapshot_view(&self) -> Box<dyn SnapshotView> {
        let map = self.0.clone();
        Box::new(move |out: &mut dyn Write| map.iter().try_for_each(|pair| write_item(out, &pair)))
    }
    fn restore_from(&mut self, input: &mut dyn Read) -> std::io::Result<()> {
        // The old map goes first, so a node never holds two states at once
        // (a failed restore stops the state machine: nothing is lost).
        self.0 = imbl::OrdMap::new();
        while let Some((k, v)) = read_item::<(Bytes, Bytes)>(input)? {
            self.0.insert(k, v);
        }
        Ok(())
    }
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route("/kv/{key}", web::put().to(put))
            .route("/kv/{key}", web::get().to(get))
            .route("/kv/{key}", web::delete().to(delete))
            .route("/kv/{key}/cas", web::post().to(cas));
    }
}

type Kvn = web::Data<Node<Kv>>;

/// Where a request for `key` is served: the key's group here, or the
/// answer of the node it was forwarded to (`--groups`).
async fn routed(
    node: &Kvn,
    req: &HttpRequest,
    key: &[u8],
    body: Bytes,
) -> Result<Result<GroupId, HttpResponse>, ApiError> {
    Ok(match node.route(req, key, body).await? {
        Routed::Here(group) => Ok(group),
        Routed::Answered(answer) => Err(answer),
    })
}

async fn write(
    node: &Kvn,
    req: &HttpRequest,
    body: Bytes,
    cmd: Cmd,
) -> Result<HttpResponse, ApiError> {
    let key = match &cmd {
        Cmd::Put(k, _) | Cmd::Delete(k) | Cmd::Cas { key: k, .. } => k.clone(),
    };
    let group = match routed(node, req, &key, body).await? {
        Ok(group) => group,
        Err(answer) => return Ok(answer),
    };
    let w = node.write_in(group, req, cmd).await?;
    match w.output {
        // With groups, the index is the group's: it grows with every
        // write of that group, and the answer names it.
        Out::Done if node.group_count() > 1 => {
            Ok(HttpResponse::Ok().json(json!({ "index": w.index, "group": group })))
        }
        Out::Done => Ok(HttpResponse::Ok().json(json!({ "index": w.index }))),
        Out::NotSwapped(current) => {
            let mut body = Map::new();
            put_bytes(&mut body, "current", current.as_deref());
            let mut e = ApiError::conflict("not swapped");
            for (k, v) in body {
                e = e.with(&k, v);
            }
            Err(e)
        }
    }
}

async fn put(node: Kvn, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let key = key_after(&req, "/kv/")?.into();
    let value = read_value(body).await?;
    write(&node, &req, value.clone(), Cmd::Put(key, value)).await
}

async fn delete(node: Kvn, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = key_after(&req, "/kv/")?.into();
    write(&node, &req, Bytes::new(), Cmd::Delete(key)).await
}

async fn cas(node: Kvn, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let key = key_after(&req, "/kv/")?.into();
    let (body, raw): (Map<String, Value>, Bytes) = read_json_and_body(body).await?;
    let expect = take_bytes(&body, "expect")?;
    let value = take_bytes(&body, "value")?
        .ok_or_else(|| ApiError::bad_request("value is required (a string)"))?;
    if expect.as_ref().map_or(0, Vec::len) > MAX_VALUE || value.len() > MAX_VALUE {
        return Err(ApiError::too_large(format!("value over {MAX_VALUE} bytes")));
    }
    let (expect, value) = (expect.map(Bytes::from), Bytes::from(value));
    write(&node, &req, raw, Cmd::Cas { key, expect, value }).await
}

async fn get(node: Kvn, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key: Bytes = key_after(&req, "/kv/")?.into();
    let group = match routed(&node, &req, &key, Bytes::new()).await? {
        Ok(group) => group,
        Err(answer) => return Ok(answer),
    };
    match node.read_in(group, &req, key).await? {
        Some(v) => Ok(HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(v)),
        None => Err(ApiError::not_found("no such key")),
    }
}

fn main() -> ExitCode {
    raft_actors_service::main::<Kv>()
}
