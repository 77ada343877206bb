//! The crate's floors, kept: every module of `src/` sits on one floor and
//! uses only modules on its own floor or below, with no circle among them;
//! `kernels/src/` has no circle either; only `src/spmd/` calls MPI.
//! (docs/architecture.md draws the floors.)
//!
//! Read from the source: a file's uses are the `crate::` paths in its code
//! (comments and its `#[cfg(test)]` tests left out: a test may reach any
//! floor). A new module fails here until it is given a floor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `src/`'s floors, bottom to top.
const FLOORS: &[(&str, &[&str])] = &[
    ("utilities", &["exit", "size", "progress", "signals", "args"]),
    ("outputs and media", &["output", "png", "npy", "animation", "media", "checkpoint"]),
    ("the SPMD runtime", &["spmd"]),
    ("reports", &["report"]),
    ("jobs", &["jobs"]),
    ("the command line and merge", &["cli", "merge"]),
    ("main", &["main"]),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src` belongs to: `src/jobs/heat.rs` is `jobs`.
fn module_of(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()
}

/// A file's code: without comments and without its tests (from a
/// `#[cfg(test)]` followed by a `mod` on: the tests sit at a file's end; a
/// test-only item elsewhere is read as code).
fn code(text: &str) -> String {
    let mut out = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let next = lines[i + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap_or("");
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") {
            break;
        }
        let line = line.split("//").next().unwrap_or("");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level modules `code` names through `crate::`: `crate::spmd::X`,
/// and each item of `use crate::{a, b::c}`.
fn uses(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Up to the brace that closes the group.
            let mut open = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    open += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    open == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let inner = &group[..end];
            // The first word of each top-level item (nested groups name deeper items).
            let mut depth = 0;
            let mut item = String::new();
            for c in inner.chars().chain([',']) {
                match c {
                    '{' => {
                        depth += 1;
                        item.push(c);
                    }
                    '}' => {
                        depth -= 1;
                        item.push(c);
                    }
                    ',' if depth == 0 => {
                        let word = ident(item.trim());
                        if !word.is_empty() {
                            found.insert(word);
                        }
                        item.clear();
                    }
                    c => item.push(c),
                }
            }
        } else {
            let word = ident(rest);
            if !word.is_empty() {
                found.insert(word);
            }
        }
    }
    found
}

/// Edges between the top-level modules of the crate rooted at `src`, each
/// with a file that makes it.
fn edges(src: &Path) -> BTreeMap<(String, String), PathBuf> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = BTreeMap::new();
    for f in files {
        let from = module_of(src, &f);
        for to in uses(&code(&std::fs::read_to_string(&f).unwrap())) {
            if to != from {
                out.entry((from.clone(), to)).or_insert(f.clone());
            }
        }
    }
    out
}

/// A circle among `edges`, if any, as the modules along it.
fn circle(edges: &BTreeMap<(String, String), PathBuf>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    // Depth-first search with the path kept: a node met again on the path closes a circle.
    fn visit<'a>(
        n: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| *p == n) {
            return Some(path[i..].iter().chain([&n]).map(|s| s.to_string()).collect());
        }
        if !done.insert(n) {
            return None;
        }
        path.push(n);
        for m in next.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    let starts: Vec<&str> = next.keys().copied().collect();
    starts.into_iter().find_map(|n| visit(n, &next, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_of_src_uses_a_floor_above_its_own() {
    let src = root().join("src");
    let floor_of = |m: &str| FLOORS.iter().position(|(_, ms)| ms.contains(&m));
    let mut wrong = Vec::new();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in &files {
        let m = module_of(&src, f);
        if floor_of(&m).is_none() {
            wrong.push(format!("{m} ({}) is on no floor: give it one in tests/layers.rs", f.display()));
        }
    }
    let edges = edges(&src);
    assert!(edges.len() > 20, "too few uses found: the reading is broken ({edges:?})");
    for ((from, to), file) in &edges {
        if let (Some(a), Some(b)) = (floor_of(from), floor_of(to)) {
            if b > a {
                wrong.push(format!(
                    "{from} ({}) uses {to}, a floor above it ({} over {})",
                    file.strip_prefix(root()).unwrap().display(),
                    FLOORS[b].0,
                    FLOORS[a].0
                ));
            }
        }
    }
    if let Some(c) = circle(&edges) {
        wrong.push(format!("a circle of uses: {}", c.join(" -> ")));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_kernels_crate_has_no_circle() {
    let edges = edges(&root().join("kernels/src"));
    assert!(edges.len() > 5, "too few uses found: the reading is broken ({edges:?})");
    assert_eq!(circle(&edges), None, "a circle of uses in kernels/src");
}

#[test]
fn only_the_spmd_runtime_calls_mpi() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let calls: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("spmd")))
        .filter(|f| {
            let code = code(&std::fs::read_to_string(f).unwrap());
            code.match_indices("mpi::").any(|(at, _)| {
                let before = code[..at].chars().next_back();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(calls.is_empty(), "MPI called outside src/spmd/: {calls:?}");
}

#[test]
fn the_reading_finds_what_it_must() {
    let code = code(
        "use crate::{a::X, b, c::{d, e}};\nlet x = crate::f::g(); // crate::h\n#[cfg(test)]\nfn t() { crate::j::k() }\n\
         #[cfg(test)]\nmod tests {\nuse crate::i;\n}",
    );
    let found: Vec<String> = uses(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "f", "j"]);
    let mut e = BTreeMap::new();
    e.insert(("a".to_string(), "b".to_string()), PathBuf::new());
    assert_eq!(circle(&e), None);
    e.insert(("b".to_string(), "a".to_string()), PathBuf::new());
    assert_eq!(circle(&e), Some(vec!["a".to_string(), "b".to_string(), "a".to_string()]));
}
