//! Links that hold: every relative link of every README (and of the
//! reference) points at a file or folder of the repository, and so does
//! every file path the text names in backticks (`examples/bench/vs-etcd.sh`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("examples/ sits in the workspace")
        .to_path_buf()
}

/// The Markdown files the check covers: every `README.md` and `*.md`
/// beside one, outside build output and version control.
fn documents(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a folder") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !["target", ".git", "node_modules"].contains(&name) {
                documents(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            found.push(rest[..end].trim().to_string());
        }
    }
    found
}

/// Spans in backticks that read as a path: no spaces, path characters
/// only, a `/` inside.
fn named_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_code_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code_block = !in_code_block;
            continue;
        }
        if in_code_block {
            continue;
        }
        let spans: Vec<&str> = line.split('`').collect();
        for span in spans.iter().skip(1).step_by(2) {
            let pathish = span.contains('/')
                && !span.starts_with('/')
                && !span.starts_with("./")
                && span
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./*".contains(c));
            if pathish {
                found.push(span.trim_end_matches('/').to_string());
            }
        }
    }
    found
}

/// Whether `path` names something under `base`; a `*` in its last part
/// (`wrk/*.lua`) matches any run of characters, and some entry must match.
fn exists(base: &Path, path: &str) -> bool {
    if !path.contains('*') {
        return base.join(path).exists();
    }
    let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", path));
    let Ok(entries) = std::fs::read_dir(base.join(dir)) else {
        return false;
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    entries.filter_map(Result::ok).any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        glob_match(&parts, &name)
    })
}

/// `parts` are a pattern split at its `*`s.
fn glob_match(parts: &[&str], name: &str) -> bool {
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    parts.len() == 1 || rest.ends_with(last)
}

/// What is wrong with one document's links and paths.
fn problems(doc: &Path, text: &str, root: &Path) -> Vec<String> {
    let dir = doc.parent().expect("a document is in a folder");
    let mut wrong = Vec::new();
    for link in links(text) {
        let target = link.split('#').next().unwrap_or("");
        let external = link.contains("://") || link.starts_with("mailto:");
        if external || target.is_empty() {
            continue;
        }
        if !dir.join(target).exists() {
            wrong.push(format!("link ({link}) names nothing"));
        }
    }
    for path in named_paths(text) {
        // Only paths that start in the repository (at its root or beside
        // the document) are its files; `p50/p99` and `target/release/..`
        // (built, not kept) are not.
        let first = path.split('/').next().unwrap_or("");
        let bases: Vec<&Path> = [root, dir]
            .into_iter()
            .filter(|b| first != "target" && b.join(first).exists())
            .collect();
        if bases.is_empty() {
            continue;
        }
        if !bases.iter().any(|b| exists(b, &path)) {
            wrong.push(format!("`{path}` is not in the repository"));
        }
    }
    wrong
}

#[test]
fn every_relative_link_and_named_path_of_the_documents_exists() {
    let root = root();
    let mut docs = Vec::new();
    documents(&root, &mut docs);
    assert!(
        docs.iter().any(|d| d.ends_with("README.md")) && docs.len() >= 5,
        "the documents were found: {docs:?}"
    );
    let mut wrong = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).expect("read a document");
        for p in problems(doc, &text, &root) {
            wrong.push(format!("{}: {p}", doc.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_a_broken_link_and_a_missing_path() {
    let root = root();
    let doc = root.join("README.md");
    let text = "See [the reference](examples/REFERENCE.md) and [gone](examples/GONE.md), \
                `examples/bench/vs-etcd.sh`, `examples/bench/nope.sh`, \
                `examples/bench/wrk/*.lua`, `examples/bench/wrk/*.py`, `p50/p99`, \
                `target/release/raft-kv`.";
    let wrong = problems(&doc, text, &root);
    assert_eq!(
        wrong,
        vec![
            "link (examples/GONE.md) names nothing".to_string(),
            "`examples/bench/nope.sh` is not in the repository".to_string(),
            "`examples/bench/wrk/*.py` is not in the repository".to_string(),
        ]
    );
}
