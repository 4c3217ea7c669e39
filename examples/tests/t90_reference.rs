//! The reference (`examples/REFERENCE.md`) and the binaries agree, both
//! ways: every route its tables list is served by the services (asked on
//! live nodes started with every flag it lists), every flag it lists is in
//! the binaries' parsers, every `raftctl` command it lists exists, and
//! nothing the services register (their `.route(` calls, read from the
//! sources) or their parsers accept is missing from it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use common::*;

const REFERENCE: &str = include_str!("../REFERENCE.md");
const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");
const RAFT_LOAD: &str = env!("CARGO_BIN_EXE_raft-load");

/// The services, by binary name, and their sources.
const SERVICES: [(&str, &str, &str); 4] = [
    ("raft-kv", KV, "src/bin/raft-kv.rs"),
    ("raft-counter", COUNTER, "src/bin/raft-counter.rs"),
    ("raft-queue", QUEUE, "src/bin/raft-queue.rs"),
    ("raft-set", SET, "src/bin/raft-set.rs"),
];

/// Who a table row of the reference belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    /// Every service (the framework's routes and flags).
    Every,
    /// One binary.
    Binary(String),
}

/// What the reference lists.
#[derive(Default, Debug)]
struct Listed {
    /// (owner, method, path).
    routes: BTreeSet<(Owner, String, String)>,
    /// owner -> long flags.
    flags: BTreeMap<Owner, BTreeSet<String>>,
    /// `raftctl` commands, as their words (`members add`).
    commands: BTreeSet<String>,
}

/// The backticked span a table row's first cell opens with (Markdown's
/// escaped `\|` inside it kept as `|`).
fn first_cell(line: &str) -> Option<String> {
    let inner = line.strip_prefix('|')?.trim_start().strip_prefix('`')?;
    Some(inner[..inner.find('`')?].replace("\\|", "|"))
}

/// The binary a heading names in backticks (`` ### `raft-kv` ``).
fn named_binary(heading: &str) -> Option<String> {
    let start = heading.find('`')? + 1;
    let len = heading[start..].find('`')?;
    Some(heading[start..start + len].to_string())
}

fn parse(reference: &str) -> Listed {
    let mut listed = Listed::default();
    let (mut section, mut sub) = (String::new(), String::new());
    for line in reference.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            (section, sub) = (h.to_string(), String::new());
            continue;
        }
        if let Some(h) = line.strip_prefix("### ") {
            sub = h.to_string();
            continue;
        }
        let Some(cell) = first_cell(line) else {
            continue;
        };
        let cell = cell.as_str();
        if let Some((method, rest)) = cell.split_once(' ') {
            if ["GET", "PUT", "POST", "DELETE"].contains(&method) && rest.starts_with('/') {
                let path = rest.split(' ').next().unwrap_or(rest).to_string();
                let owner = match (section.as_str(), named_binary(&sub)) {
                    ("Client API", Some(bin)) => Owner::Binary(bin),
                    ("Cluster API" | "Operators", _) => Owner::Every,
                    other => panic!("route {cell} under an unexpected heading {other:?}"),
                };
                listed.routes.insert((owner, method.to_string(), path));
                continue;
            }
        }
        if cell.starts_with("--") {
            let flag = cell.split(' ').next().unwrap_or(cell).to_string();
            let owner = match named_binary(&section) {
                Some(bin) => Owner::Binary(bin),
                None if section == "Command line of every service" => Owner::Every,
                None => panic!("flag {cell} under an unexpected heading {section:?}"),
            };
            listed.flags.entry(owner).or_default().insert(flag);
            continue;
        }
        if section == "`raftctl`" && cell.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            let words: Vec<&str> = cell
                .split(' ')
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .collect();
            listed.commands.insert(words.join(" "));
        }
    }
    listed
}

/// The long flags a `--help` text lists (one option per line, each line
/// starting with its short or long form).
fn help_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            l.split([' ', ',', '='])
                .find(|w| w.starts_with("--"))
                .map(str::to_string)
        })
        .collect()
}

/// The subcommands a `--help` text lists under `Commands:` (`help` aside).
fn help_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

fn help(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        .output()
        .expect("run the binary");
    assert!(out.status.success(), "{bin} {args:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Every (method, path) a source registers with `.route("path", web::method()`,
/// outside comments (doc examples register routes of their own).
fn source_routes(source: &str) -> BTreeSet<(String, String)> {
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(open) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(close) = open.find('"') else { break };
        let path = &open[..close];
        let after = &open[close..];
        let Some(web) = after.find("web::") else {
            continue;
        };
        let method: String = after[web + 5..]
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        found.insert((method.to_ascii_uppercase(), path.to_string()));
    }
    found
}

/// The framework's sources: every `.rs` file of the service crate.
fn framework_sources(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("read the service crate's sources") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            framework_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("read a source"));
        }
    }
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn routes_of(listed: &Listed, owner: &Owner) -> BTreeSet<(String, String)> {
    listed
        .routes
        .iter()
        .filter(|(o, _, _)| o == owner)
        .map(|(_, m, p)| (m.clone(), p.clone()))
        .collect()
}

#[test]
fn the_parser_reads_what_the_reference_lists() {
    let listed = parse(REFERENCE);
    // Shown to see each kind of row: a change of the page's layout that
    // the parser no longer understands fails here, not silently below.
    assert!(listed
        .routes
        .contains(&(Owner::Every, "GET".into(), "/status".into())));
    assert!(listed.routes.contains(&(
        Owner::Binary("raft-kv".into()),
        "POST".into(),
        "/kv/{key}/cas".into()
    )));
    assert!(listed.flags[&Owner::Every].contains("--peers"));
    assert!(listed.flags[&Owner::Binary("raftctl".into())].contains("--endpoints"));
    assert!(listed.commands.contains("members add"));
    let source = r#"/// cfg.route("/doc", web::get().to(a))
        cfg.route("/a", web::get().to(a))
        .route(
            "/b/{id}",
            web::delete().to(b),
        );"#;
    assert_eq!(
        source_routes(source),
        BTreeSet::from([
            ("GET".to_string(), "/a".to_string()),
            ("DELETE".to_string(), "/b/{id}".to_string())
        ])
    );
    let h = "Options:\n      --id <ID>  This node's id, not --peers\n  -h, --help  Print help\n";
    assert_eq!(
        help_flags(h),
        BTreeSet::from(["--id".to_string(), "--help".to_string()])
    );
}

#[test]
fn every_route_registered_in_the_sources_is_listed_and_no_other() {
    let listed = parse(REFERENCE);
    let mut framework = String::new();
    framework_sources(
        &manifest().join("../raft-actors/service/src"),
        &mut framework,
    );
    assert_eq!(
        source_routes(&framework),
        routes_of(&listed, &Owner::Every),
        "the framework's routes (left) and the reference's Cluster API and Operators tables (right)"
    );
    for (bin, _, src) in SERVICES {
        let source = std::fs::read_to_string(manifest().join(src)).expect("read the service");
        assert_eq!(
            source_routes(&source),
            routes_of(&listed, &Owner::Binary(bin.into())),
            "{bin}'s routes (left) and its section of the reference (right)"
        );
    }
}

#[test]
fn every_flag_listed_is_parsed_and_every_parsed_flag_is_listed() {
    let listed = parse(REFERENCE);
    for (bin, exe, _) in SERVICES {
        assert_eq!(
            help_flags(&help(exe, &[])),
            listed.flags[&Owner::Every],
            "{bin} --help (left) and the reference's command line (right)"
        );
    }
    // Hidden flags too: the parser itself, not only its help.
    let mut cmd = <raft_actors_service::flags::Flags as clap::CommandFactory>::command();
    cmd.build();
    let parsed: BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    assert_eq!(parsed, listed.flags[&Owner::Every]);

    // raftctl: its own flags and every subcommand's.
    let mut ctl_flags = BTreeSet::new();
    let mut commands = BTreeSet::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(RAFTCTL, &args);
        ctl_flags.extend(help_flags(&text));
        let subs = help_commands(&text);
        // A group that needs a subcommand (`<COMMAND>` in its usage, as
        // `members`) is not a command of its own; `leader` alone is.
        let usage = text.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
        if !usage.contains("<COMMAND>") {
            commands.insert(path.join(" "));
        }
        for s in subs {
            let mut p = path.clone();
            p.push(s);
            todo.push(p);
        }
    }
    assert_eq!(ctl_flags, listed.flags[&Owner::Binary("raftctl".into())]);
    assert_eq!(commands, listed.commands, "raftctl's commands (left)");

    assert_eq!(
        help_flags(&help(RAFT_LOAD, &[])),
        listed.flags[&Owner::Binary("raft-load".into())]
    );
}

#[test]
fn every_route_listed_is_served_by_a_node_started_with_every_flag() {
    let listed = parse(REFERENCE);
    for (bin, exe, _) in SERVICES {
        // Every flag of the page that a one-node cluster can take, each
        // away from its default, so the parser is shown to accept it.
        let mut opts = Opts::new(exe);
        opts.storage = "memory";
        opts.transport = "http";
        opts.extra = [
            "--cluster-id",
            "7",
            "--timeout-ms",
            "4000",
            "--snapshot-threshold",
            "500",
            "--trailing-logs",
            "50",
            "--lease-margin-ticks",
            "3",
            "--log-format",
            "json",
            "--groups",
            "2",
            "--replication",
            "1",
        ]
        .map(String::from)
        .to_vec();
        let c = Cluster::start(opts, 1);
        let mut routes = routes_of(&listed, &Owner::Every);
        routes.extend(routes_of(&listed, &Owner::Binary(bin.into())));
        for (method, path) in routes {
            let concrete = path
                .replace("{key}", "probe")
                .replace("{name}", "probe")
                .replace("{id}", "99")
                .replace("{group}", "1");
            let a = c.req(1, &method, &concrete, None);
            let unrouted =
                a.status == 405 || (a.status == 404 && a.text().contains("no such route"));
            assert!(
                !unrouted,
                "{bin}: {method} {path} is not served: {} {}",
                a.status,
                a.text()
            );
        }
        // And the probe can see a route that is not served.
        let a = c.req_once(1, "GET", "/no-such-route", None);
        assert_eq!(a.status, 404);
        assert!(a.text().contains("no such route"), "{}", a.text());
    }
}

#[test]
fn every_binary_names_itself_in_help_and_version() {
    let version = env!("CARGO_PKG_VERSION");
    let run = |exe: &str, flag: &str| {
        let out = Command::new(exe)
            .arg(flag)
            .output()
            .expect("run the binary");
        assert!(out.status.success(), "{exe} {flag}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let about = [
        ("raft-kv", KV, "A replicated key-value map"),
        (
            "raft-counter",
            COUNTER,
            "A replicated signed 64-bit counter",
        ),
        ("raft-queue", QUEUE, "A replicated FIFO queue"),
        ("raft-set", SET, "A replicated set of names"),
        ("raftctl", RAFTCTL, "Operate a raft-actors cluster"),
        ("raft-load", RAFT_LOAD, "Load generator"),
    ];
    for (name, exe, opening) in about {
        assert_eq!(run(exe, "--version"), format!("{name} {version}\n"));
        let help = run(exe, "--help");
        assert!(help.starts_with(opening), "{name} --help: {help}");
        assert!(
            !help.contains("raft-actors-service") && !help.contains("examples "),
            "{name} --help names the framework's package: {help}"
        );
    }
}
