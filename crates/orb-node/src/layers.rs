//! Tests that keep orb-node's layers pointing down (see `services/mod.rs`
//! and ARCHITECTURE.md, "Layers point down"). They read the sources, so a
//! new file or import is checked without being listed here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// A source file without its `//` comments (docs may name anything).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    out.sort();
    out
}

#[test]
fn services_know_no_handlers_and_no_axum() {
    let files = rust_files(&src().join("services"));
    assert!(files.len() >= 10, "services/ not found: {files:?}");
    let mut wrong = Vec::new();
    for f in &files {
        let text = code(f);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let mut forbidden = vec!["crate::handlers", "super::super::handlers"];
        if name != "http.rs" {
            // Only the service that serves HTTP functions handles HTTP.
            forbidden.extend(["axum", "HeaderMap"]);
        }
        for word in forbidden {
            if text.contains(word) {
                wrong.push(format!("services/{name} uses `{word}`"));
            }
        }
    }
    assert!(wrong.is_empty(), "a service points up: {wrong:#?}");
}

#[test]
fn the_bottom_imports_no_layer_above_it() {
    let mut wrong = Vec::new();
    for name in [
        "caller.rs",
        "clock.rs",
        "error.rs",
        "config.rs",
        "metrics.rs",
    ] {
        let text = code(&src().join(name));
        for word in ["crate::services", "crate::handlers", "axum"] {
            if text.contains(word) {
                wrong.push(format!("{name} uses `{word}`"));
            }
        }
    }
    assert!(wrong.is_empty(), "the bottom points up: {wrong:#?}");
}

#[test]
fn services_import_each_other_without_cycles() {
    let files = rust_files(&src().join("services"));
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().to_string())
        .filter(|n| n != "mod")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let me = f.file_stem().unwrap().to_string_lossy().to_string();
        if me == "mod" {
            continue;
        }
        let text = code(f);
        let mut deps = BTreeSet::new();
        for prefix in ["crate::services::", "super::"] {
            for (i, _) in text.match_indices(prefix) {
                let rest = &text[i + prefix.len()..];
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let mut items = vec![word];
                // `use crate::services::{a, b::c}`
                if let Some(list) = rest.strip_prefix('{') {
                    items = list
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(|s| s.trim().split("::").next().unwrap_or_default().into())
                        .collect();
                }
                for item in items {
                    if names.contains(&item) && item != me {
                        deps.insert(item);
                    }
                }
            }
        }
        graph.insert(me, deps);
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(cycle) = visit(n, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "services import each other in a cycle: {}",
                cycle.join(" -> ")
            );
        }
    }
    assert!(
        graph["calls"].contains("aliases") && graph["invoke"].contains("calls"),
        "the parser found no imports at all: {graph:#?}"
    );
}

#[test]
fn a_single_node_links_no_nats() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    for line in manifest.lines() {
        let line = line.trim();
        assert!(
            !line.starts_with("async-nats"),
            "orb-node depends on async-nats: {line}"
        );
        if line.starts_with("orb-net") {
            assert!(
                line.contains("optional = true"),
                "orb-net must stay optional (a cargo feature): {line}"
            );
        }
    }
}
