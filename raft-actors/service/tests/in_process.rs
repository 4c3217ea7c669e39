//! Several service nodes in one process over real sockets: a 3-node
//! cluster of one service, a fourth node added through the cluster API,
//! and a second service's node beside them. Nothing is process-global: each
//! node names its own leader, serves its own routes, and stops alone. And
//! a forwarded write whose answer is lost, answered 504, not 503.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::future::BoxFuture;
use raft_actors::core::{Body, Message};
use raft_actors::transport::Peer;
use raft_actors::transport::{
    NetworkTransport, PeerMetrics, ServeError, Transport, TransportError,
};
use raft_actors_service::flags::{StorageKind, TransportKind};
use raft_actors_service::http::read_json;
use raft_actors_service::network::battery;
use raft_actors_service::sessions::SessionBounds;
use raft_actors_service::{
    ApiError, LogIndex, Node, NodeId, RunningService, Service, ServiceBuilder,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Counter(i64);

impl Service for Counter {
    const NAME: &'static str = "test-counter";
    type Command = i64;
    type Output = (LogIndex, i64);
    type Query = ();
    type Answer = i64;
    type Snapshot = i64;
    fn apply(&mut self, index: LogIndex, delta: i64) -> (LogIndex, i64) {
        self.0 += delta;
        (index, self.0)
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
        cfg.route("/add", web::post().to(add))
            .route("/value", web::get().to(value));
    }
}

#[derive(Deserialize)]
struct Add {
    delta: i64,
}

async fn add(
    node: web::Data<Node<Counter>>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let Add { delta } = read_json(body).await?;
    let w = node.write(&req, delta).await?;
    let (seen, value) = w.output;
    Ok(HttpResponse::Ok().json(json!({ "index": w.index, "seen": seen, "value": value })))
}

async fn value(node: web::Data<Node<Counter>>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(json!({ "value": node.read(&req, ()).await? })))
}

/// A second, different service: a log of strings.
#[derive(Default)]
struct Notes(Vec<String>);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Note(String);

impl Service for Notes {
    const NAME: &'static str = "test-notes";
    type Command = Note;
    type Output = usize;
    type Query = ();
    type Answer = Vec<String>;
    type Snapshot = Vec<String>;
    fn apply(&mut self, _: LogIndex, n: Note) -> usize {
        self.0.push(n.0);
        self.0.len()
    }
    fn query(&self, _: ()) -> Vec<String> {
        self.0.clone()
    }
    fn snapshot(&self) -> Vec<String> {
        self.0.clone()
    }
    fn restore(&mut self, s: Vec<String>) {
        self.0 = s;
    }
    fn routes(cfg: &mut web::ServiceConfig) {
        cfg.route(
            "/notes",
            web::post().to(
                |node: web::Data<Node<Notes>>, req: HttpRequest, body: web::Bytes| async move {
                    let n = String::from_utf8_lossy(&body).into_owned();
                    let w = node.write(&req, Note(n)).await?;
                    Ok::<_, ApiError>(HttpResponse::Ok().json(json!({ "len": w.output })))
                },
            ),
        );
    }
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind a loopback port")
}

fn builder<S: Service>(id: NodeId, raft: TcpListener) -> ServiceBuilder<S> {
    ServiceBuilder::<S>::new(id)
        .raft_listener(raft)
        .http_listener(listener())
        .storage(StorageKind::Memory)
        .configure(|cfg| cfg.tick = Duration::from_millis(20))
        .http_workers(1)
}

async fn call(method: &str, url: String, body: Value) -> (u16, Value) {
    let client = awc::Client::builder().timeout(T).finish();
    let req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    let mut res = req
        .insert_header(("idempotency-key", "test:1"))
        .send_body(body.to_string())
        .await
        .expect("the node answers");
    let bytes = res.body().await.expect("a body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (res.status().as_u16(), json)
}

/// Whether `n`'s address book names `id` at `http` within the deadline.
async fn wait_book<S: Service>(
    n: &RunningService<S>,
    id: NodeId,
    http: std::net::SocketAddr,
) -> bool {
    n.node().directory().wait_http(id, T).await == Some(http)
}

async fn leader_of<S: Service>(nodes: &[RunningService<S>]) -> NodeId {
    let m = nodes[0]
        .node()
        .raft()
        .wait_for(T, |m| m.leader.is_some())
        .await
        .expect("a leader within the deadline");
    m.leader.expect("waited for it")
}

#[actix_rt::test]
async fn two_services_and_a_three_node_cluster_share_one_process() {
    let raft: Vec<TcpListener> = (0..3).map(|_| listener()).collect();
    let peers: Vec<_> = (1..=3)
        .zip(&raft)
        .map(|(id, l)| (id, l.local_addr().expect("addr")))
        .collect();
    let mut counters = Vec::new();
    for (id, l) in (1..=3).zip(raft) {
        let b = builder::<Counter>(id, l).peers(peers.clone());
        counters.push(b.start().await.expect("a counter node starts"));
    }
    let note_l = listener();
    let note_addr = note_l.local_addr().expect("addr");
    let notes = builder::<Notes>(7, note_l)
        .peers([(7, note_addr)])
        .start()
        .await
        .expect("the notes node starts");

    let leader = leader_of(&counters).await;
    let follower = counters
        .iter()
        .find(|n| n.node().id() != leader)
        .expect("a follower");

    // A write through a follower is forwarded, applied once, and its
    // retry with the same key gets the first answer.
    let url = format!("http://{}/add", follower.http_addr());
    let (status, first) = call("POST", url.clone(), json!({ "delta": 5 })).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["value"], 5);
    assert_eq!(first["seen"], first["index"], "apply saw the entry's index");
    let (_, again) = call("POST", url, json!({ "delta": 100 })).await;
    assert_eq!(again, first, "the retry is answered from the session table");

    // The other service, beside it, has its own state and its own leader.
    notes
        .node()
        .raft()
        .wait_for(T, |m| m.leader == Some(7))
        .await
        .expect("the notes node leads itself");
    let (status, body) = call(
        "POST",
        format!("http://{}/notes", notes.http_addr()),
        json!("hello"),
    )
    .await;
    assert_eq!((status, body), (200, json!({ "len": 1 })));
    // Each node names the leader of its own cluster in error bodies.
    for n in &counters {
        let (status, body) = call("GET", format!("http://{}/nope", n.http_addr()), json!({})).await;
        assert_eq!(status, 404);
        assert_eq!(body["leader"], json!(leader), "{body}");
    }
    let (_, body) = call(
        "GET",
        format!("http://{}/nope", notes.http_addr()),
        json!({}),
    )
    .await;
    assert_eq!(body["leader"], json!(7));

    // A fourth node, started without peers, is added as a voter through a
    // follower: forwarded to the leader by the address book, answered once
    // the change is committed.
    let fourth_l = listener();
    let fourth_addr = fourth_l.local_addr().expect("addr");
    let fourth = builder::<Counter>(4, fourth_l)
        .start()
        .await
        .expect("node 4 starts");
    let (status, body) = call(
        "POST",
        format!("http://{}/cluster/members", follower.http_addr()),
        json!({ "id": 4, "raft_addr": fourth_addr.to_string(), "role": "voter" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["voters"], json!([1, 2, 3, 4]));
    // Once it follows the leader as a voter, a linearizable read there
    // sees the write.
    fourth
        .node()
        .raft()
        .wait_for(T, |m| {
            m.membership.voters.contains(&4) && m.leader.is_some()
        })
        .await
        .expect("node 4 follows the leader as a voter");
    let (status, body) = call(
        "GET",
        format!("http://{}/value", fourth.http_addr()),
        json!({}),
    )
    .await;
    assert_eq!((status, body), (200, json!({ "value": 5 })));
    // And it recorded its own addresses in the replicated book, which every
    // member applies.
    let http4 = fourth.http_addr();
    for n in &counters {
        assert!(
            wait_book(n, 4, http4).await,
            "node {} learnt node 4's client address",
            n.node().id()
        );
    }

    // Stopping the other service leaves the cluster serving.
    notes.shutdown().await;
    let (status, _) = call(
        "GET",
        format!("http://{}/value", follower.http_addr()),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    fourth.shutdown().await;
    for n in counters {
        n.shutdown().await;
    }
}

/// A keyed write, as a client sends it.
async fn keyed(url: String, key: &str, delta: i64) -> (u16, Value) {
    let client = awc::Client::builder().timeout(T).finish();
    let mut res = client
        .post(url)
        .insert_header(("idempotency-key", key))
        .send_body(json!({ "delta": delta }).to_string())
        .await
        .expect("the node answers");
    let bytes = res.body().await.expect("a body");
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (res.status().as_u16(), json)
}

/// The session bound over HTTP: with two answers kept per client, a key
/// below them that was applied is 422 (expired), one never applied is 429
/// (not applied: the client pipelined past its bound), and neither changes
/// the state; a kept one gets its first answer again.
#[actix_rt::test]
async fn keys_below_the_session_bound_are_422_if_applied_and_429_if_not() {
    let raft = listener();
    let me = raft.local_addr().expect("addr");
    let bounds = SessionBounds {
        max_answers: 2,
        ..SessionBounds::default()
    };
    let node = builder::<Counter>(1, raft)
        .peers([(1, me)])
        .sessions(bounds)
        .start()
        .await
        .expect("a node starts");
    leader_of(std::slice::from_ref(&node)).await;
    // Founded and reloaded: it founds no more (its held logs go out).
    assert!(!node.node().raft().current().founding);
    let url = format!("http://{}/add", node.http_addr());
    for (seq, value) in [(5, 1), (6, 2), (7, 3)] {
        let (status, body) = keyed(url.clone(), &format!("c:{seq}"), 1).await;
        assert_eq!((status, &body["value"]), (200, &json!(value)), "{body}");
    }
    let (status, body) = keyed(url.clone(), "c:7", 1).await;
    assert_eq!((status, &body["value"]), (200, &json!(3)), "kept: {body}");

    let (status, body) = keyed(url.clone(), "c:5", 1).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "idempotency key expired");
    assert!(body.get("leader").is_some(), "{body}");

    let (status, body) = keyed(url.clone(), "c:2", 1).await;
    assert_eq!(status, 429, "{body}");
    let error = body["error"].as_str().expect("an error");
    assert!(error.contains("not applied"), "{error}");
    assert!(body.get("leader").is_some(), "{body}");

    let (_, body) = call(
        "GET",
        format!("http://{}/value", node.http_addr()),
        Value::Null,
    )
    .await;
    assert_eq!(body["value"], 3, "neither refused key was applied");
    node.shutdown().await;
}

/// A transport that loses the leader's answers to forwarded proposals
/// while `lose` is set, and moves everything else: the one fault that
/// leaves a forwarded write committed but unanswered.
#[derive(Debug)]
struct LosesAnswers {
    inner: Arc<dyn NetworkTransport>,
    lose: Arc<AtomicBool>,
}

/// The sending side of [`LosesAnswers`].
struct LosingSender {
    inner: Box<dyn Transport>,
    lose: Arc<AtomicBool>,
}

impl Transport for LosingSender {
    fn send(&self, to: NodeId, mut messages: Vec<Message>) -> Result<(), TransportError> {
        if self.lose.load(Ordering::SeqCst) {
            messages.retain(|m| !matches!(m.body, Body::ProposalResults { .. }));
        }
        if messages.is_empty() {
            return Ok(());
        }
        self.inner.send(to, messages)
    }
}

impl Transport for LosesAnswers {
    fn send(&self, to: NodeId, messages: Vec<Message>) -> Result<(), TransportError> {
        self.sender().send(to, messages)
    }
}

impl NetworkTransport for LosesAnswers {
    fn sender(&self) -> Box<dyn Transport> {
        Box::new(LosingSender {
            inner: self.inner.sender(),
            lose: Arc::clone(&self.lose),
        })
    }
    fn serve(
        &self,
        listener: TcpListener,
        inbox: Recipient<Peer>,
    ) -> Result<SocketAddr, ServeError> {
        self.inner.serve(listener, inbox)
    }
    fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        self.inner.set_peer(id, addr)
    }
    fn group_sender(&self, group: raft_actors::core::GroupId) -> Box<dyn Transport> {
        Box::new(LosingSender {
            inner: self.inner.group_sender(group),
            lose: Arc::clone(&self.lose),
        })
    }
    fn serve_group(&self, group: raft_actors::core::GroupId, inbox: Recipient<Peer>) {
        self.inner.serve_group(group, inbox)
    }
    fn advertise(&self, own: SocketAddr) {
        self.inner.advertise(own)
    }
    fn peer_metrics(&self) -> BTreeMap<NodeId, PeerMetrics> {
        self.inner.peer_metrics()
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
}

/// A write through a follower whose forwarded answer is lost is answered
/// 504 (outcome unknown), never 503 (not applied): it does apply.
#[actix_rt::test]
async fn a_forwarded_write_whose_answer_is_lost_is_504_and_applies() {
    let raft: Vec<TcpListener> = (0..3).map(|_| listener()).collect();
    let peers: Vec<(NodeId, SocketAddr)> = (1..=3)
        .zip(&raft)
        .map(|(id, l)| (id, l.local_addr().expect("addr")))
        .collect();
    let lose = Arc::new(AtomicBool::new(false));
    let mut nodes = Vec::new();
    for (id, l) in (1..=3).zip(raft) {
        let own = l.local_addr().expect("addr");
        let others = peers.iter().copied().filter(|p| p.0 != id).collect();
        let tcp = battery(TransportKind::Tcp, id, own, 1, others, None).expect("tcp transport");
        let transport = LosesAnswers {
            inner: tcp,
            lose: Arc::clone(&lose),
        };
        let b = builder::<Counter>(id, l)
            .peers(peers.clone())
            .custom_transport(Arc::new(transport))
            .timeout(Duration::from_secs(1));
        nodes.push(b.start().await.expect("a counter node starts"));
    }
    let leader = leader_of(&nodes).await;
    let follower = nodes
        .iter()
        .find(|n| n.node().id() != leader)
        .expect("a follower");
    follower
        .node()
        .raft()
        .wait_for(T, |m| m.leader == Some(leader))
        .await
        .expect("the follower follows the leader");

    lose.store(true, Ordering::SeqCst);
    let url = format!("http://{}/add", follower.http_addr());
    let (status, body) = call("POST", url, json!({ "delta": 5 })).await;
    assert_eq!(status, 504, "outcome unknown: {body}");
    lose.store(false, Ordering::SeqCst);

    // Unknown, and in fact applied: a linearizable read through the same
    // follower sees it.
    let (status, body) = call(
        "GET",
        format!("http://{}/value", follower.http_addr()),
        json!({}),
    )
    .await;
    assert_eq!((status, body), (200, json!({ "value": 5 })));
    for n in nodes {
        n.shutdown().await;
    }
}
