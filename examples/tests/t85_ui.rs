//! The live cluster page (`GET /ui`) in headless Chromium, driven over
//! WebDriver (Debian's `chromium` and `chromium-driver`, which `.ci/run`
//! installs): the three members and the leader appear; after the leader is
//! SIGKILLed the page shows the new leader and the dead member within 10 s.
//! A screenshot is saved as the test's artifact
//! (`target/artifacts/ui.png`).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver session in a chromedriver process, both ended on drop.
struct Browser {
    driver: std::process::Child,
    base: String,
}

impl Browser {
    fn start() -> Browser {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "this test needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does)"
        );
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let mut b = Browser {
            driver,
            base: String::new(),
        };
        wait_until(Instant::now() + WAIT, "chromedriver to listen", || {
            try_request("GET", &format!("{url}/status"), None, &[]).filter(|a| a.status == 200)
        })
        .expect("chromedriver answers");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,520"],
            },
        }}});
        let a = request_once(
            "POST",
            &format!("{url}/session"),
            Some(caps.to_string().as_bytes()),
            &[("Content-Type", "application/json")],
        );
        assert_eq!(a.status, 200, "a browser session: {}", a.text());
        let id = a.json()["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        b.base = format!("{url}/session/{id}");
        b
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let a = request_once(
            method,
            &format!("{}{path}", self.base),
            Some(body.to_string().as_bytes()),
            &[("Content-Type", "application/json")],
        );
        assert_eq!(a.status, 200, "{method} {path}: {}", a.text());
        a.json()["value"].clone()
    }

    fn open(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url }));
    }

    /// The members table as the page shows it: (id, role, class) per row.
    fn rows(&self) -> Vec<(u64, String, String)> {
        let script = "return Array.from(document.querySelectorAll('#members tr')).map(r => \
                      [Number(r.dataset.id), r.dataset.role, r.className]);";
        let v = self.command(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        );
        v.as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| {
                        Some((
                            r[0].as_u64()?,
                            r[1].as_str()?.to_string(),
                            r[2].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn text_of(&self, id: &str) -> String {
        let script = format!("return document.getElementById('{id}').textContent;");
        let v = self.command(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        );
        v.as_str().unwrap_or_default().to_string()
    }

    fn screenshot(&self) -> Vec<u8> {
        let a = request_once("GET", &format!("{}/screenshot", self.base), None, &[]);
        assert_eq!(a.status, 200, "screenshot: {}", a.text());
        let png = a.json()["value"].as_str().expect("base64").to_string();
        base64::engine::general_purpose::STANDARD
            .decode(png)
            .expect("a PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.base.is_empty() {
            let _ = try_request("DELETE", &self.base, None, &[]);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn artifacts() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("artifacts");
    std::fs::create_dir_all(&dir).expect("an artifacts dir");
    dir
}

#[test]
fn the_cluster_page_shows_members_the_leader_and_a_dead_leader_replaced() {
    let mut c = Cluster::start(Opts::new(KV), 3);
    let leader = c.wait_leader();
    for i in 0..20 {
        let a = c.req(leader, "PUT", &format!("/kv/k{i}"), Some(b"v"));
        assert_eq!(a.status, 200);
    }
    // Served by a follower, so the page outlives the leader.
    let host = (1..=3).find(|id| *id != leader).expect("a follower");
    let page = request_once("GET", &c.url(host, "/ui"), None, &[]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<script>"), "one self-contained page");
    assert!(
        !page.text().contains("src=\"http"),
        "nothing fetched from outside"
    );

    let b = Browser::start();
    b.open(&c.url(host, "/ui"));
    let rows = wait_until(Instant::now() + WAIT, "three members and a leader", || {
        let rows = b.rows();
        let leaders: Vec<_> = rows.iter().filter(|r| r.2 == "leader").collect();
        (rows.len() == 3 && leaders.len() == 1 && leaders[0].0 == leader).then_some(rows)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", b.rows()));
    let ids: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(b.text_of("leader"), leader.to_string());
    std::fs::write(artifacts().join("ui.png"), b.screenshot()).expect("save the screenshot");

    c.kill(leader);
    let killed = Instant::now();
    let seen = wait_until(
        killed + Duration::from_secs(10),
        "the new leader and the dead member",
        || {
            let rows = b.rows();
            let new = rows.iter().find(|r| r.2 == "leader").map(|r| r.0)?;
            let dead = rows.iter().find(|r| r.0 == leader)?;
            (new != leader && dead.1 == "unreachable" && dead.2 == "unreachable").then_some(new)
        },
    );
    let new = seen.unwrap_or_else(|e| panic!("{e} within 10 s of the kill: {:?}", b.rows()));
    assert_eq!(b.text_of("leader"), new.to_string());
    std::fs::write(
        artifacts().join("ui-after-leader-killed.png"),
        b.screenshot(),
    )
    .expect("save the screenshot");
}
