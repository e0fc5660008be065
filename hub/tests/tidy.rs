//! Tidy tests (in the manner of rust-analyzer's): rules over the hub's own
//! source text that keep the layering true. Each rule is a function over
//! one file (its path under `hub/src/`, `/`-separated, and its text) that
//! returns what it finds wrong; each is also run on a deliberately broken
//! sample to show it can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `hub/src`, as (path relative to it, text).
fn sources() -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read hub/src")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under root");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = std::fs::read_to_string(&path).expect("read source");
                out.push((rel, text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    assert!(
        out.iter().any(|(p, _)| p == "lib.rs") && out.len() > 20,
        "found the hub's sources"
    );
    out
}

/// The lines of `text` that are code: comments (`//`, `///`, `//!`) are
/// prose and may name anything.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

fn run(rule: fn(&str, &str) -> Vec<String>) -> Vec<String> {
    sources()
        .iter()
        .flat_map(|(path, text)| rule(path, text))
        .collect()
}

// === rules ===

/// Only `store/` knows a database: no `rusqlite` or `tokio_postgres`
/// anywhere else.
fn sql_only_in_store(path: &str, text: &str) -> Vec<String> {
    if path.starts_with("store/") {
        return Vec::new();
    }
    code_lines(text)
        .filter_map(|(n, l)| {
            ["rusqlite", "tokio_postgres"]
                .into_iter()
                .find(|c| l.contains(c))
                .map(|c| format!("{path}:{n}: {c} outside hub/src/store/"))
        })
        .collect()
}

/// Only `error.rs` builds a gRPC `Status` (and so picks codes): no
/// `Status::new`, `Status::failed_precondition`, `tonic::Status::from`...
/// elsewhere. (`ServingStatus::Serving` and the like are other types.)
fn status_built_only_in_error_rs(path: &str, text: &str) -> Vec<String> {
    if path == "error.rs" {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (n, line) in code_lines(text) {
        let mut rest = line;
        let mut offset = 0;
        while let Some(i) = rest.find("Status::") {
            let before = line[..offset + i].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                found.push(format!(
                    "{path}:{n}: a tonic Status is built outside hub/src/error.rs (return an ApiError)"
                ));
                break;
            }
            offset += i + "Status::".len();
            rest = &line[offset..];
        }
    }
    found
}

/// The application layer, the store, the read policy and TAXII sit below
/// gRPC: none of them imports `crate::grpc`.
fn inner_layers_do_not_import_grpc(path: &str, text: &str) -> Vec<String> {
    let inner = path.starts_with("store/")
        || path.starts_with("app/")
        || path.starts_with("taxii/")
        || path == "policy.rs";
    if !inner {
        return Vec::new();
    }
    code_lines(text)
        .filter(|(_, l)| l.contains("crate::grpc") || l.contains("crate::{grpc"))
        .map(|(n, _)| format!("{path}:{n}: imports crate::grpc from below it"))
        .collect()
}

/// Protobuf is converted at the edge: only the gRPC layer, `ops.rs` and the
/// crate roots name `isac_proto` (operator actions in `app/admin.rs` take
/// domain types; `grpc/admin.rs` converts for the service and the CLI).
fn protobuf_only_at_the_edge(path: &str, text: &str) -> Vec<String> {
    let edge = path.starts_with("grpc/") || ["ops.rs", "lib.rs", "main.rs"].contains(&path);
    if edge {
        return Vec::new();
    }
    code_lines(text)
        .filter(|(_, l)| l.contains("isac_proto"))
        .map(|(n, _)| format!("{path}:{n}: protobuf used away from the edge"))
        .collect()
}

/// The module a file defines (`app/mod.rs` -> `app`, `app/caller.rs` ->
/// `app::caller`, `lib.rs` -> ``).
fn module_of(path: &str) -> String {
    let m = path.trim_end_matches(".rs");
    let m = m.strip_suffix("/mod").unwrap_or(m);
    if m == "lib" || m == "main" {
        String::new()
    } else {
        m.replace('/', "::")
    }
}

/// Which files each file imports: every `crate::a::b::...` path, resolved
/// to the longest prefix that is a module; `mod.rs` (and `lib.rs`) also
/// import the children they re-export with `pub use child::...`. Test
/// modules (after `#[cfg(test)]`) are left out.
fn imports(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<String, String> = files
        .iter()
        .map(|(p, _)| (module_of(p), p.clone()))
        .collect();
    let mut edges = BTreeMap::new();
    for (path, text) in files {
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let me = module_of(path);
        let mut to = BTreeSet::new();
        let mut resolve = |segments: &[String]| {
            for k in (1..=segments.len()).rev() {
                if let Some(target) = modules.get(&segments[..k].join("::")) {
                    if target != path {
                        to.insert(target.clone());
                    }
                    break;
                }
            }
        };
        for (_, line) in code_lines(text) {
            for (i, _) in line.match_indices("crate::") {
                let tail = &line[i + "crate::".len()..];
                let mut segments: Vec<String> = Vec::new();
                for part in tail.split("::") {
                    let ident: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    let whole = ident.len() == part.len();
                    if !ident.is_empty() {
                        segments.push(ident);
                    }
                    if !whole || segments.is_empty() {
                        break;
                    }
                }
                resolve(&segments);
            }
            let trimmed = line.trim_start();
            let is_parent = path.ends_with("mod.rs") || path == "lib.rs";
            if is_parent {
                for prefix in ["pub use ", "use "] {
                    if let Some(rest) = trimmed.strip_prefix(prefix) {
                        if let Some((child, _)) = rest.split_once("::") {
                            let child = if me.is_empty() {
                                child.to_owned()
                            } else {
                                format!("{me}::{child}")
                            };
                            resolve(&child.split("::").map(str::to_owned).collect::<Vec<_>>());
                        }
                    }
                }
            }
        }
        edges.insert(path.clone(), to);
    }
    edges
}

/// Files that import each other in a loop (each loop once, as the files
/// on it), by a depth-first search over [`imports`].
fn import_loops(files: &[(String, String)]) -> Vec<Vec<String>> {
    let edges = imports(files);
    // Tarjan's strongly connected components.
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        loops: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.loops.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        loops: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.loops
}

// === the rules hold for the hub ===

#[test]
fn no_rusqlite_outside_store() {
    assert_eq!(run(sql_only_in_store), Vec::<String>::new());
}

#[test]
fn no_status_built_outside_error_rs() {
    assert_eq!(run(status_built_only_in_error_rs), Vec::<String>::new());
}

#[test]
fn nothing_below_grpc_imports_it() {
    assert_eq!(run(inner_layers_do_not_import_grpc), Vec::<String>::new());
}

#[test]
fn protobuf_stays_at_the_edge() {
    assert_eq!(run(protobuf_only_at_the_edge), Vec::<String>::new());
}

#[test]
fn no_file_imports_itself_through_others() {
    assert_eq!(import_loops(&sources()), Vec::<Vec<String>>::new());
}

// === and each rule can fail ===

#[test]
fn the_sql_rule_catches_rusqlite_outside_the_store() {
    let broken = "use rusqlite::Connection;\nfn f() {}\n";
    assert_eq!(sql_only_in_store("datadir.rs", broken).len(), 1);
    assert!(sql_only_in_store("store/sqlite.rs", broken).is_empty());
    let pg = "let c: tokio_postgres::Client = connect().await;\n";
    assert_eq!(sql_only_in_store("app/admin.rs", pg).len(), 1);
    assert!(sql_only_in_store("store/postgres.rs", pg).is_empty());
    assert!(sql_only_in_store("datadir.rs", "// rusqlite is named in prose\n").is_empty());
}

#[test]
fn the_status_rule_catches_a_status_built_elsewhere() {
    for broken in [
        "let s = Status::failed_precondition(m);",
        "return Err(tonic::Status::new(Code::NotFound, m));",
        "tx.send(Err(Status::from(e)))",
    ] {
        assert_eq!(
            status_built_only_in_error_rs("grpc/subscribe.rs", broken).len(),
            1,
            "{broken}"
        );
    }
    assert!(status_built_only_in_error_rs("error.rs", "Status::new(code, m)").is_empty());
    assert!(status_built_only_in_error_rs(
        "ops.rs",
        "set_all(&reporter, ServingStatus::Serving).await;\nfn f() -> Result<(), Status> {}"
    )
    .is_empty());
}

#[test]
fn the_layer_rule_catches_an_import_of_grpc_from_below() {
    let broken = "use crate::grpc::auth::Caller;\n";
    for path in [
        "policy.rs",
        "app/publish.rs",
        "taxii/write.rs",
        "store/mod.rs",
    ] {
        assert_eq!(
            inner_layers_do_not_import_grpc(path, broken).len(),
            1,
            "{path}"
        );
    }
    assert!(inner_layers_do_not_import_grpc("grpc/publish.rs", broken).is_empty());
    assert!(inner_layers_do_not_import_grpc("lib.rs", broken).is_empty());
}

#[test]
fn the_protobuf_rule_catches_protobuf_in_the_core_of_the_hub() {
    let broken = "use isac_proto::v1 as pb;\n";
    for path in [
        "policy.rs",
        "app/publish.rs",
        "taxii/write.rs",
        "store/mod.rs",
    ] {
        assert_eq!(protobuf_only_at_the_edge(path, broken).len(), 1, "{path}");
    }
    assert!(protobuf_only_at_the_edge("grpc/delivery.rs", broken).is_empty());
}

#[test]
fn the_loop_rule_catches_files_importing_each_other() {
    let file = |p: &str, t: &str| (p.to_owned(), t.to_owned());
    let broken = [
        file("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
        file("a.rs", "use crate::b::Thing;\n"),
        file("b/mod.rs", "pub mod inner;\npub use inner::Thing;\n"),
        file("b/inner.rs", "use crate::c::other;\n"),
        file("c.rs", "fn f() { crate::a::g() }\n"),
    ];
    assert_eq!(
        import_loops(&broken),
        vec![vec![
            "a.rs".to_owned(),
            "b/inner.rs".to_owned(),
            "b/mod.rs".to_owned(),
            "c.rs".to_owned()
        ]]
    );
    // Cut one edge (here in prose) and the loop is gone.
    let mut fixed = broken.clone();
    fixed[4] = file("c.rs", "// crate::a::g() once\n");
    assert!(import_loops(&fixed).is_empty());
}
