//! The crate's modules form no cycle: a test that parses every file of
//! `deployer/src` (the library's; `main.rs` is the binary's), follows each
//! `crate::`, `super::` and `self::` path to the file that defines what it
//! names, and looks for a cycle among the files.
//!
//! A module's `pub use` re-exports are looked through, not counted: `use
//! super::EngineError` depends on the file that defines `EngineError`, not on
//! the `mod.rs` that re-exports it. Test code (`#[cfg(test)]`) is left out: a
//! test may use whatever it checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module, as the segments after `crate`.
type Module = Vec<String>;

/// Edges allowed to close a cycle for now, each as (from, to, why). The test
/// fails once an allowed edge is gone, so the list only shrinks.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// What one file declares and uses.
#[derive(Debug, Default)]
struct FileFacts {
    /// Items defined at the file's top level, by name.
    defined: BTreeSet<String>,
    /// `pub use` re-exports: a name, and the path it names.
    reexports: BTreeMap<String, Vec<String>>,
    /// `pub use path::*`: the modules re-exported whole.
    glob_reexports: Vec<Vec<String>>,
    /// Every path used, made absolute (segments after `crate`).
    uses: Vec<Vec<String>>,
}

fn is_test_only(attributes: &[syn::Attribute]) -> bool {
    attributes.iter().any(|attribute| {
        attribute.path().is_ident("cfg")
            && attribute
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// `path` (which may start with `crate`, `super` or `self`) from `module`,
/// as segments after `crate`; `None` for a path into another crate.
fn absolute(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut segments = path.iter();
    let mut resolved: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("super" | "self") => module.to_vec(),
        _ => return None,
    };
    let mut leading = true;
    for segment in segments {
        match segment.as_str() {
            "super" if leading => {
                resolved.pop();
            }
            "self" if leading => {}
            _ => {
                leading = false;
                resolved.push(segment.clone());
            }
        }
    }
    Some(resolved)
}

/// Every full path of a `use` tree, with the name it brings in (`None` for a glob).
fn flatten(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    match tree {
        syn::UseTree::Path(path) => {
            prefix.push(path.ident.to_string());
            flatten(&path.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(name) => {
            let name = name.ident.to_string();
            if name == "self" {
                out.push((prefix.clone(), prefix.last().cloned()));
            } else {
                let mut path = prefix.clone();
                path.push(name.clone());
                out.push((path, Some(name)));
            }
        }
        syn::UseTree::Rename(rename) => {
            let mut path = prefix.clone();
            path.push(rename.ident.to_string());
            out.push((path, Some(rename.rename.to_string())));
        }
        syn::UseTree::Glob(_) => out.push((prefix.clone(), None)),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                flatten(tree, prefix, out);
            }
        }
    }
}

/// Collects a file's facts, following its inline modules.
struct Collector {
    /// The module being read: the file's, then any inline module within it.
    module: Module,
    /// How deep in inline modules (0 at the file's top level).
    depth: usize,
    facts: FileFacts,
}

impl Collector {
    fn record(&mut self, path: &[String]) {
        if let Some(path) = absolute(&self.module, path) {
            self.facts.uses.push(path);
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attributes: &[syn::Attribute] = match item {
            syn::Item::Const(item) => &item.attrs,
            syn::Item::Enum(item) => &item.attrs,
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            syn::Item::Macro(item) => &item.attrs,
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Static(item) => &item.attrs,
            syn::Item::Struct(item) => &item.attrs,
            syn::Item::Trait(item) => &item.attrs,
            syn::Item::Type(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            _ => &[],
        };
        if is_test_only(attributes) {
            return;
        }
        if self.depth == 0 {
            let name = match item {
                syn::Item::Const(item) => Some(&item.ident),
                syn::Item::Enum(item) => Some(&item.ident),
                syn::Item::Fn(item) => Some(&item.sig.ident),
                syn::Item::Static(item) => Some(&item.ident),
                syn::Item::Struct(item) => Some(&item.ident),
                syn::Item::Trait(item) => Some(&item.ident),
                syn::Item::Type(item) => Some(&item.ident),
                syn::Item::Macro(item) => item.ident.as_ref(),
                _ => None,
            };
            if let Some(name) = name {
                self.facts.defined.insert(name.to_string());
            }
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if item.content.is_some() {
            self.module.push(item.ident.to_string());
            self.depth += 1;
            syn::visit::visit_item_mod(self, item);
            self.depth -= 1;
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        flatten(&item.tree, &mut Vec::new(), &mut paths);
        let reexport = self.depth == 0 && !matches!(item.vis, syn::Visibility::Inherited);
        for (path, name) in paths {
            // A `use` path that starts with none of them may name a child module.
            let absolute = absolute(&self.module, &path)
                .unwrap_or_else(|| [self.module.as_slice(), path.as_slice()].concat());
            if reexport {
                match name {
                    Some(name) => {
                        self.facts.reexports.insert(name, absolute);
                    }
                    None => self.facts.glob_reexports.push(absolute),
                }
            } else {
                self.facts.uses.push(absolute);
            }
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        self.record(&segments);
        syn::visit::visit_path(self, path);
    }
}

/// The library's files, by module.
fn files(root: &Path) -> BTreeMap<Module, PathBuf> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = std::fs::read_dir(&directory).expect("the source directory is readable");
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|extension| extension != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).expect("under the root");
            let mut module: Module = relative
                .with_extension("")
                .components()
                .map(|component| component.as_os_str().to_string_lossy().into_owned())
                .collect();
            match module.last().map(String::as_str) {
                Some("main") if module.len() == 1 => continue,
                Some("lib") if module.len() == 1 => {
                    module.pop();
                }
                Some("mod") => {
                    module.pop();
                }
                _ => {}
            }
            files.insert(module, path);
        }
    }
    files
}

/// Which file defines what `path` names, looking through re-exports.
fn defining_file(
    path: &[String],
    facts: &BTreeMap<Module, FileFacts>,
    seen: &mut BTreeSet<Vec<String>>,
) -> Option<Module> {
    if !seen.insert(path.to_vec()) {
        return None;
    }
    // The deepest module the path goes through.
    let depth = (0..=path.len())
        .rev()
        .find(|&depth| facts.contains_key(&path[..depth]))?;
    let module = path[..depth].to_vec();
    let Some(name) = path.get(depth) else {
        return Some(module);
    };
    let file = &facts[&module];
    if file.defined.contains(name) {
        return Some(module);
    }
    if let Some(source) = file.reexports.get(name) {
        let mut source = source.clone();
        source.extend_from_slice(&path[depth + 1..]);
        return defining_file(&source, facts, seen).or(Some(module));
    }
    for glob in &file.glob_reexports {
        let mut source = glob.clone();
        source.extend_from_slice(&path[depth..]);
        if let Some(found) = defining_file(&source, facts, seen)
            && found != *glob
        {
            return Some(found);
        }
    }
    Some(module)
}

/// The file-level graph: each file and the files it depends on.
fn graph(root: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let facts: BTreeMap<Module, FileFacts> = files(root)
        .into_iter()
        .map(|(module, path)| {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let file = syn::parse_file(&text)
                .unwrap_or_else(|error| panic!("{} does not parse: {error}", path.display()));
            let mut collector = Collector {
                module: module.clone(),
                depth: 0,
                facts: FileFacts::default(),
            };
            collector.visit_file(&file);
            (module, collector.facts)
        })
        .collect();
    facts
        .iter()
        .map(|(module, file)| {
            let targets = file
                .uses
                .iter()
                .filter_map(|path| defining_file(path, &facts, &mut BTreeSet::new()))
                .filter(|target| target != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

/// A module as its file is named under `src/`.
fn file_name(module: &[String], graph: &BTreeMap<Module, BTreeSet<Module>>) -> String {
    if module.is_empty() {
        return "lib.rs".to_owned();
    }
    let has_children = graph
        .keys()
        .any(|other| other.len() > module.len() && other.starts_with(module));
    if has_children {
        format!("{}/mod.rs", module.join("/"))
    } else {
        format!("{}.rs", module.join("/"))
    }
}

/// One cycle of `graph`, as the files along it (the first repeated at the end).
fn find_cycle(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, BTreeSet<Module>>,
        marks: &mut BTreeMap<Module, Mark>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let start = stack.iter().position(|module| module == next)?;
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if !marks.contains_key(node)
            && let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(cycle);
        }
    }
    None
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_modules_of_the_crate_form_no_cycle() {
    let mut graph = graph(&source_root());
    let names: BTreeMap<String, Module> = graph
        .keys()
        .map(|module| (file_name(module, &graph), module.clone()))
        .collect();
    for (from, to, _why) in ALLOWED {
        let (Some(from), Some(to)) = (names.get(*from), names.get(*to)) else {
            panic!("the allowed edge {from} -> {to} names a file that does not exist");
        };
        let removed = graph.get_mut(from).is_some_and(|edges| edges.remove(to));
        assert!(
            removed,
            "{} no longer depends on {}: remove the edge from ALLOWED",
            file_name(from, &graph),
            file_name(to, &graph)
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        let shown: Vec<String> = cycle
            .iter()
            .map(|module| file_name(module, &graph))
            .collect();
        panic!("the modules form a cycle: {}", shown.join(" -> "));
    }
}

#[test]
fn the_graph_sees_uses_through_re_exports_and_finds_a_cycle() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let write = |path: &str, text: &str| {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("created");
        std::fs::write(path, text).expect("written");
    };
    write("lib.rs", "pub mod engine;\n");
    write(
        "engine/mod.rs",
        "pub mod a;\npub mod b;\npub use a::Alpha;\npub struct Error;\n",
    );
    write(
        "engine/a.rs",
        "use super::Error;\npub struct Alpha;\n#[cfg(test)]\nmod tests { use crate::engine::b::Beta; }\n",
    );
    write("engine/b.rs", "pub struct Beta(super::Alpha);\n");
    let first = graph(root.path());
    let module = |path: &str| -> Module { path.split('/').map(str::to_owned).collect() };
    assert_eq!(
        first[&module("engine/b")],
        BTreeSet::from([module("engine/a")]),
        "b names Alpha through engine's re-export"
    );
    assert_eq!(
        first[&module("engine/a")],
        BTreeSet::from([module("engine")]),
        "a's tests are left out"
    );
    assert_eq!(find_cycle(&first), None);
    write("engine/a.rs", "use super::b::Beta;\npub struct Alpha;\n");
    let second = graph(root.path());
    let cycle = find_cycle(&second).expect("a cycle");
    let shown: Vec<String> = cycle.iter().map(|m| file_name(m, &second)).collect();
    assert!(
        shown == ["engine/a.rs", "engine/b.rs", "engine/a.rs"]
            || shown == ["engine/b.rs", "engine/a.rs", "engine/b.rs"],
        "{shown:?}"
    );
}
