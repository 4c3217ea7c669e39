//! The layering the folders show, checked: no adapter (the transports, the
//! storages, the memory adapters in this crate, the apply actor) names
//! anything of `node/`. What crosses an adapter boundary (`Peer`, which a
//! transport delivers; `Applied`, which the apply actor answers) lives
//! beside the trait it belongs to, so an adapter knows no node.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The lines of the adapters' sources that name the node module.
fn node_imports(roots: &[PathBuf]) -> Vec<String> {
    let mut files = Vec::new();
    for root in roots {
        rust_files(root, &mut files);
    }
    assert!(
        files.len() > 10,
        "the adapters' sources were found: {files:?}"
    );
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("crate::node") || code.contains("raft_actors::node") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

fn adapters() -> Vec<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let top = here.parent().expect("the workspace");
    let mut roots: Vec<PathBuf> = ["apply", "transport", "storage"]
        .iter()
        .map(|m| here.join("src").join(m))
        .collect();
    for group in ["transports", "storages"] {
        for crate_dir in std::fs::read_dir(top.join(group)).expect("adapter folder") {
            let src = crate_dir.expect("an adapter").path().join("src");
            if src.is_dir() {
                roots.push(src);
            }
        }
    }
    roots
}

#[test]
fn no_adapter_imports_the_node() {
    let found = node_imports(&adapters());
    assert!(
        found.is_empty(),
        "adapters naming node/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_of_the_node() {
    let dir = std::env::temp_dir().join(format!("layering-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for i in 0..11 {
        let body = if i == 0 {
            "use crate::node::RaftNode;\n"
        } else {
            "// crate::node in a comment\n"
        };
        std::fs::write(dir.join(format!("f{i}.rs")), body).expect("written");
    }
    let found = node_imports(std::slice::from_ref(&dir));
    std::fs::remove_dir_all(&dir).expect("removed");
    assert_eq!(found.len(), 1, "{found:?}");
}
