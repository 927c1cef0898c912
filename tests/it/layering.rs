//! No import circles in `src/`: between kpo's top-level modules (`crate::x`), and between the
//! sibling modules of one folder (`super::x`). Read from the source, so a new `use` that closes a
//! circle fails here with the circle named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The first path segments after each `prefix` (`crate::`, `super::`), also inside groups:
/// `use crate::{a::X, b}` names `a` and `b`.
fn named_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut item_start) = (0, true);
            let mut ident = String::new();
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !ident.is_empty() {
                            names.insert(std::mem::take(&mut ident));
                        }
                        item_start = true;
                    }
                    c if item_start && (c.is_alphanumeric() || c == '_') => ident.push(c),
                    _ if item_start && !ident.is_empty() => {
                        names.insert(std::mem::take(&mut ident));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !ident.is_empty() {
                names.insert(ident);
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                names.insert(ident);
            }
        }
    }
    names
}

/// A circle in `graph`, as the path that closes it, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut siblings: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in sources(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let parts: Vec<String> = relative
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if matches!(parts.as_slice(), [only] if only == "lib" || only == "main") {
            continue;
        }
        let module = parts[0].clone();
        let uses = named_after(&text, "crate::");
        top.entry(module.clone())
            .or_default()
            .extend(uses.into_iter().filter(|u| *u != module));
        // `a/b.rs` (not `a/mod.rs`) is a child of `a`: its `super::x` names a sibling.
        if parts.len() >= 2 && parts.last().is_some_and(|p| p != "mod") {
            let folder = relative.parent().unwrap().to_owned();
            let me = parts.last().unwrap().clone();
            siblings
                .entry(folder)
                .or_default()
                .entry(me.clone())
                .or_default()
                .extend(named_after(&text, "super::").into_iter().filter(|u| *u != me));
        }
    }
    assert!(
        top.get("vocabulary")
            .is_some_and(|uses| uses.iter().all(|u| u == "exit")),
        "the vocabulary imports only the exit codes: {:?}",
        top.get("vocabulary")
    );
    assert_eq!(circle(&top), None, "modules of src/ in a circle");
    for (folder, graph) in &siblings {
        // Only names that are sibling modules count: `super::Thing` is the parent's item.
        let modules: BTreeSet<&String> = graph.keys().collect();
        let graph: BTreeMap<String, BTreeSet<String>> = graph
            .iter()
            .map(|(m, uses)| {
                let uses = uses.iter().filter(|u| modules.contains(u)).cloned().collect();
                (m.clone(), uses)
            })
            .collect();
        assert_eq!(
            circle(&graph),
            None,
            "modules of src/{} in a circle",
            folder.display()
        );
    }
}

#[test]
fn a_circle_is_found_and_named() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        circle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let names = named_after(
        "use crate::{a::X, b, c::{d, e}};\nlet x = crate::f::g();",
        "crate::",
    );
    assert_eq!(names, ["a", "b", "c", "f"].map(String::from).into());
}

/// The README's Layout names every top-level module of `src/` (a file or a folder) and every
/// file of `src/cli/`, where a reader looks for what the command line does.
#[test]
fn the_readmes_layout_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let layout = readme
        .split("## Layout")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("a Layout section with a tree");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let shown = match path.is_dir() {
            true => format!("src/{name}/"),
            false => format!("src/{name}"),
        };
        if !layout.contains(&shown) {
            missing.push(shown);
        }
    }
    for entry in std::fs::read_dir(root.join("src/cli")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "mod.rs" && !layout.contains(&name) {
            missing.push(format!("src/cli/{name}"));
        }
    }
    missing.sort();
    assert!(missing.is_empty(), "not in the README's Layout: {missing:?}");
}
