//! The core's modules read top-down: no module depends, directly or through
//! others, on a module that depends on it. Read from the sources: every
//! `crate::<module>` a top-level module (or a file under its folder) names
//! is an edge; a cycle among them fails the test, naming its modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules each top-level module names as `crate::<module>`.
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|c| c.trim_end_matches(".rs").to_string())
            .expect("module name");
        if module == "lib" {
            continue; // the root re-exports everything
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let deps = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                deps.insert(name);
            }
        }
    }
    graph
}

/// Whether `to` is reachable from `from`.
fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(next) = stack.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if dep == to {
                return true;
            }
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    false
}

#[test]
fn no_module_depends_on_a_module_that_depends_on_it() {
    let graph = edges();
    assert!(
        graph.contains_key("store") && graph.contains_key("gate"),
        "{graph:?}"
    );
    let cycles: Vec<String> = graph
        .keys()
        .filter(|module| reaches(&graph, module, module))
        .cloned()
        .collect();
    assert!(
        cycles.is_empty(),
        "modules on an import cycle: {cycles:?} (edges: {graph:?})"
    );
}

#[test]
fn the_check_sees_a_cycle_when_there_is_one() {
    let mut graph = edges();
    graph
        .entry("error".to_string())
        .or_default()
        .insert("store".to_string());
    assert!(reaches(&graph, "error", "error"));
}
