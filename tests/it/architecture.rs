//! The dependency rules of ARCHITECTURE.md, checked by reading the imports in `src/`: which
//! top-level module may name which (`crate::…`, and `super::…` that leaves a module), that the
//! sub-modules inside each top-level module form no cycle, that in the modules listed a child
//! never imports its parent's items while the parent imports it (a loop through `mod.rs`),
//! that store keys are spelled only in `store::keys`, and the workspace's one rule between its
//! crates: the developer's crate `kaitong-dev` (`dev/`) may depend on the library, never the
//! reverse, and the production crate's sources never name it or a `tools` module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// Modules every module may import: ids and message types, the secret wrapper, settings and
/// metrics import nothing but each other (`config` takes `secret`).
const BOTTOM: &[&str] = &["domain", "secret", "config", "metrics"];

/// Each top-level module and what else it may import (besides [`BOTTOM`]). Not listed:
/// `startup` and the binary's `main.rs` and `cli` (its commands), the composition roots, which
/// may import anything; no module listed here may import them. (The binary's modules are not
/// the library's, so a library module could not name them anyway.)
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("secret", &[]),
    ("metrics", &[]),
    ("config", &[]),
    ("telemetry", &[]),
    ("store", &[]),
    ("catalog", &[]),
    ("wecom", &[]),
    // Runs the background loops; knows none of them.
    ("supervisor", &[]),
    ("embed", &["catalog", "store"]),
    // The flow: wecom → channel → dialog → requests → notify.
    ("channel", &["wecom", "store"]),
    ("requests", &["catalog", "store"]),
    // The dialog reaches the outside only through the ports in `domain` (attachment download,
    // blank templates, relabelling a clicked card), which `startup` fills with the channel's
    // adapters; the channel reaches the dialog only through `domain::Bot`.
    ("dialog", &["catalog", "embed", "requests", "store"]),
    ("notify", &["catalog", "requests", "store", "wecom"]),
    // Adapters. Each turns its errors into responses in one place, which logs the cause chain
    // with `telemetry::one_line` (a leaf: it imports only the bottom row).
    (
        "console",
        &["catalog", "requests", "notify", "store", "telemetry"],
    ),
    (
        "http",
        &["channel", "console", "wecom", "store", "telemetry"],
    ),
];

struct Source {
    /// Path below `src/`, e.g. `catalog/model.rs`.
    relative: PathBuf,
    text: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file is readable");
                let relative = path.strip_prefix(&root).expect("below src/").to_path_buf();
                out.push(Source { relative, text });
            }
        }
    }
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    out
}

/// The source without comments and without its unit tests (from `#[cfg(test)]` on, where a
/// test may build its inputs with a sibling): doc links, prose and test scaffolding name modules
/// without the module depending on them.
fn code_of(text: &str) -> String {
    let production = text.split("#[cfg(test)]").next().unwrap_or_default();
    production
        .lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The path components of a file's module below the crate root (`catalog/model.rs` →
/// `["catalog", "model"]`, `catalog/mod.rs` → `["catalog"]`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every module path (from the crate root) a file names: `crate::a::b…`, `crate::{a, b::c}`
/// and `super::…`, resolved against the file's own place.
fn named_paths(source: &Source) -> Vec<Vec<String>> {
    let here = module_path(&source.relative);
    let code = code_of(&source.text);
    let start = Regex::new(r"\b(crate::|(?:super::)+)").expect("a valid regex");
    let mut out = Vec::new();
    for found in start.find_iter(&code) {
        let base: Vec<String> = if found.as_str() == "crate::" {
            Vec::new()
        } else {
            // `super` from a file module `a/b.rs` (path [a, b]) is `a`.
            let ups = found.as_str().matches("super::").count();
            if ups > here.len() {
                continue;
            }
            here[..here.len() - ups].to_vec()
        };
        let rest = &code[found.end()..];
        let items: Vec<&str> = match rest.strip_prefix('{') {
            Some(inner) => split_top_level(inner),
            None => vec![rest],
        };
        for item in items {
            let mut path = base.clone();
            path.extend(leading_path(item));
            if path.len() > base.len() {
                out.push(path);
            }
        }
    }
    out
}

/// The comma-separated items of a `{…}` group (up to its closing brace), nested groups kept
/// inside their item.
fn split_top_level(inner: &str) -> Vec<&str> {
    let (mut depth, mut from, mut items) = (0usize, 0usize, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&inner[from..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// The module-like identifiers a path starts with (`store::keys::session(…)` → store, keys,
/// session).
fn leading_path(item: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in item.trim_start().split("::") {
        let ident: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        let whole = ident.len() == part.len();
        out.push(ident);
        if !whole {
            break;
        }
    }
    out
}

#[test]
fn top_level_modules_import_only_what_the_rules_allow() {
    let allowed = allowed_imports();
    let mut broken = Vec::new();
    for source in sources() {
        let here = module_path(&source.relative);
        let Some(top) = here.first().map(String::as_str) else {
            continue;
        };
        let Some(may) = allowed.get(top) else {
            continue;
        };
        for path in named_paths(&source) {
            let Some(target) = path.first().map(String::as_str) else {
                continue;
            };
            if target != top && !may.contains(target) {
                broken.push(format!("{} imports {target}", source.relative.display()));
            }
        }
    }
    broken.sort();
    broken.dedup();
    assert!(
        broken.is_empty(),
        "imports against ARCHITECTURE.md's rules:\n{}",
        broken.join("\n")
    );
}

/// What `dialog` never names, below the top-level rule: the adapters (the channels, WeCom's wire
/// and API, the HTTP routes, the console) and the store's concrete backends, which it reaches
/// only as `dyn Store`. A path is forbidden when it starts with one of these.
const DIALOG_NEVER_NAMES: &[&[&str]] = &[
    &["channel"],
    &["wecom"],
    &["http"],
    &["console"],
    &["store", "embedded"],
    &["store", "redis_store"],
    &["store", "sentinel"],
    &["store", "EmbeddedStore"],
    &["store", "RedisStore"],
    &["store", "check_file"],
    &["store", "restore_file"],
];

/// Each named path of the `dialog` sources that starts with a [`DIALOG_NEVER_NAMES`] entry, as
/// "file names path".
fn dialog_adapter_imports(sources: &[Source]) -> Vec<String> {
    let mut found = Vec::new();
    for source in sources {
        if module_path(&source.relative).first().map(String::as_str) != Some("dialog") {
            continue;
        }
        for path in named_paths(source) {
            if DIALOG_NEVER_NAMES.iter().any(|never| {
                path.len() >= never.len() && path.iter().zip(*never).all(|(a, b)| a == b)
            }) {
                found.push(format!(
                    "{} names {}",
                    source.relative.display(),
                    path.join("::")
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn the_dialog_names_no_adapter_and_no_concrete_store() {
    let found = dialog_adapter_imports(&sources());
    assert!(
        found.is_empty(),
        "the dialog reaches an adapter or a concrete store (add a port to `domain` and inject it \
         in `startup`; use `dyn Store`):\n{}",
        found.join("\n")
    );
    // The check reads what it should: each kind of offence is found, in any spelling of the
    // path, and a comment or a unit test is not counted.
    let source = |path: &str, text: &str| Source {
        relative: PathBuf::from(path),
        text: text.to_owned(),
    };
    let offending = [
        source(
            "dialog/bot.rs",
            "use crate::channel::media::WecomMediaFetcher;",
        ),
        source(
            "dialog/mod.rs",
            "use crate::{store::Store, wecom::api::WecomApi};",
        ),
        source(
            "dialog/commands.rs",
            "let s = crate::store::RedisStore::open(u);",
        ),
        source("dialog/session.rs", "use crate::store::embedded::Snapshot;"),
        source("dialog/engine/mod.rs", "fn f(_: &crate::console::Csrf) {}"),
        source("dialog/understand/tuning.rs", "use crate::http::AppState;"),
    ];
    assert_eq!(dialog_adapter_imports(&offending).len(), offending.len());
    let fine = [
        source(
            "dialog/bot.rs",
            "use crate::store::{Store, keys};\nuse crate::domain::CardRelabeler;\n\
             // crate::channel::cards relabels it\n#[cfg(test)]\nuse crate::store::EmbeddedStore;",
        ),
        source("channel/app.rs", "use crate::wecom::api::WecomApi;"),
    ];
    assert_eq!(dialog_adapter_imports(&fine), Vec::<String>::new());
}

/// What each listed module may import: its own list, plus [`BOTTOM`] for every module above the
/// bottom; `config` takes only `secret`, the other bottom modules nothing.
fn allowed_imports() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED
        .iter()
        .map(|(module, deps)| {
            let bottom: &[&str] = match *module {
                "domain" | "secret" | "metrics" => &[],
                "config" => &["secret"],
                _ => BOTTOM,
            };
            (*module, deps.iter().chain(bottom).copied().collect())
        })
        .collect()
}

#[test]
fn the_allowed_imports_have_no_cycle_and_name_real_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let exists =
        |m: &str| src.join(format!("{m}.rs")).exists() || src.join(m).join("mod.rs").exists();
    for (m, deps) in ALLOWED {
        assert!(exists(m), "{m} is not a module");
        for d in *deps {
            assert!(exists(d), "{m} may import {d}, which is not a module");
        }
    }
    let edges: BTreeMap<&str, Vec<&str>> = allowed_imports()
        .into_iter()
        .map(|(m, deps)| (m, deps.into_iter().collect()))
        .collect();
    assert_eq!(find_cycle(&edges), None);
}

#[test]
fn sub_modules_form_no_cycle_inside_a_top_level_module() {
    // Edges between siblings: `catalog/model.rs` naming `catalog::value` is model → value.
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let sources = sources();
    let known: BTreeSet<Vec<String>> = sources.iter().map(|s| module_path(&s.relative)).collect();
    for source in &sources {
        let here = module_path(&source.relative);
        if here.len() < 2 {
            continue;
        }
        let from = here[..2].join("::");
        for path in named_paths(source) {
            if path.len() >= 2
                && path[0] == here[0]
                && path[1] != here[1]
                && known.contains(&path[..2])
            {
                let to = path[..2].join("::");
                edges.entry(from.clone()).or_default().push(to);
            }
        }
    }
    let edges: BTreeMap<&str, Vec<&str>> = edges
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(find_cycle(&edges), None, "a cycle between sub-modules");
}

/// The graph inside the module `parent` (a directory with a `mod.rs`): its own file is one node
/// (`notify`), each child declared there another (`notify::outbox`), with a descendant's
/// imports counted for its child. Edges:
/// - parent → child: `mod.rs` names the child's items (`use outbox::X`, `pub use notices::{…}`,
///   `self::…`, `crate::notify::outbox::…`); re-exports count, since they are what a child
///   importing `crate::notify::X` reaches through the parent;
/// - child → parent: a child names an item of the parent's (`super::Delivery`,
///   `crate::notify::Notice`: an item defined or re-exported in `mod.rs`);
/// - child → child: a child names a sibling (`super::outbox::Outbox`).
///
/// A child that imports its parent's item while the parent imports the child is a loop through
/// the parent, invisible to the sibling check alone.
fn module_graph(sources: &[Source], parent: &[String]) -> BTreeMap<String, Vec<String>> {
    let node = |path: &[String]| path.join("::");
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(own) = sources
        .iter()
        .find(|s| module_path(&s.relative) == parent && s.relative.ends_with("mod.rs"))
    else {
        return edges;
    };
    let own_code = code_of(&own.text);
    let declared = Regex::new(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;")
        .expect("a valid regex");
    let children: BTreeSet<String> = declared
        .captures_iter(&own_code)
        .map(|c| c[1].to_owned())
        .collect();
    let child_path = |child: &str| {
        let mut path = parent.to_vec();
        path.push(child.to_owned());
        path
    };
    // parent → child
    for child in &children {
        let relative =
            Regex::new(&format!(r"(?:^|[^:\w])(?:self::)?{child}::")).expect("a valid regex");
        let absolute = named_paths(own)
            .iter()
            .any(|p| p.len() > parent.len() && p.starts_with(&child_path(child)));
        if absolute || relative.is_match(&own_code) {
            edges
                .entry(node(parent))
                .or_default()
                .push(node(&child_path(child)));
        }
    }
    // child → parent, child → sibling
    for source in sources {
        let here = module_path(&source.relative);
        if here.len() <= parent.len() || !here.starts_with(parent) {
            continue;
        }
        let child = &here[parent.len()];
        if !children.contains(child) {
            continue;
        }
        let from = node(&child_path(child));
        for path in named_paths(source) {
            if path.len() <= parent.len() || !path.starts_with(parent) {
                continue;
            }
            let named = &path[parent.len()];
            let to = if children.contains(named) {
                if named == child {
                    continue;
                }
                node(&child_path(named))
            } else {
                node(parent)
            };
            edges.entry(from.clone()).or_default().push(to);
        }
    }
    for targets in edges.values_mut() {
        targets.sort();
        targets.dedup();
    }
    edges
}

/// Modules whose parent, children and siblings are checked for loops through the parent.
/// `notify` once held its deliveries in `mod.rs` over types of `notices` and `handoff`, which
/// imported them back; `handoff` once held the error its transports import; `store` held its
/// error and trait, which every backend imports; `catalog` held the `Catalog` its loader, `cli`
/// and `handle` import; `channel` held the callback steps both channels import;
/// `dialog::engine` held the `Engine` that `command` imports; `requests` held the request and
/// the `Ledger` trait its `desk` imports; `wecom::api` held the client and the wire shapes
/// every endpoint's file imports; `console` held the state, the peer, the listing and the
/// display helpers its pages import. The others listed have no such loop either.
const NO_LOOPS_THROUGH_THE_PARENT: &[&[&str]] = &[
    &["notify"],
    &["notify", "handoff"],
    &["dialog"],
    &["dialog", "understand"],
    &["wecom"],
    &["store"],
    &["catalog"],
    &["channel"],
    &["dialog", "engine"],
    &["requests"],
    &["wecom", "api"],
    &["console"],
    &["embed"],
];

/// Modules whose `mod.rs` imports none of its children (so no loop can pass through it); a
/// child import added there moves the module to the list above.
const IMPORTS_NO_CHILD: &[&[&str]] = &[&["cli"], &["http"]];

#[test]
fn the_modules_said_to_import_no_child_import_none() {
    let sources = sources();
    for parent in IMPORTS_NO_CHILD {
        let parent: Vec<String> = parent.iter().map(|p| (*p).to_owned()).collect();
        let graph = module_graph(&sources, &parent);
        assert!(
            !graph.contains_key(&parent.join("::")),
            "{} imports a child: check it for loops through the parent",
            parent.join("::")
        );
    }
}

#[test]
fn every_module_with_children_is_checked_for_loops_through_it() {
    // A module folder added later is checked too: none may be left off the list above.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.join("mod.rs").exists() {
                    let module: Vec<String> = path
                        .strip_prefix(&root)
                        .expect("below src")
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    if !NO_LOOPS_THROUGH_THE_PARENT
                        .iter()
                        .chain(IMPORTS_NO_CHILD)
                        .any(|m| m.iter().copied().eq(module.iter().map(String::as_str)))
                    {
                        missing.push(module.join("::"));
                    }
                }
                stack.push(path);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not checked for loops through the parent: {missing:?}"
    );
}

#[test]
fn no_child_imports_its_parent_while_the_parent_imports_it() {
    let sources = sources();
    let mut loops = Vec::new();
    for parent in NO_LOOPS_THROUGH_THE_PARENT {
        let parent: Vec<String> = parent.iter().map(|p| (*p).to_owned()).collect();
        let graph = module_graph(&sources, &parent);
        assert!(
            graph.contains_key(&parent.join("::")),
            "{} names none of its children: is the check still reading it?",
            parent.join("::")
        );
        let graph: BTreeMap<&str, Vec<&str>> = graph
            .iter()
            .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
            .collect();
        if let Some(cycle) = find_cycle(&graph) {
            loops.push(cycle.join(" → "));
        }
    }
    assert!(
        loops.is_empty(),
        "a loop through a parent module (a child imports the parent's item, the parent imports \
         the child; import the sibling that defines the item instead):\n{}",
        loops.join("\n")
    );
}

#[test]
fn the_parent_check_sees_the_loop_notify_had() {
    // The layout before the deliveries moved to `notify::delivery`.
    let source = |path: &str, text: &str| Source {
        relative: PathBuf::from(path),
        text: text.to_owned(),
    };
    let before = [
        source(
            "notify/mod.rs",
            "pub mod notices;\npub mod outbox;\npub mod handoff;\npub use notices::{BatchPush, Notice};\n\
             use handoff::WebhookEvent;\npub enum Delivery { Wecom(Notice), Webhook(WebhookEvent) }",
        ),
        source(
            "notify/notices.rs",
            "use super::Delivery;\nuse super::outbox::Outbox;",
        ),
        source("notify/outbox.rs", "use super::{Delivery, DeliveryKind};"),
        source(
            "notify/handoff/mod.rs",
            "pub mod email;\nuse crate::notify::{Delivery, DeliveryKind};",
        ),
        source("notify/handoff/email.rs", "use super::HandoffError;"),
    ];
    let parent = vec!["notify".to_owned()];
    let graph = module_graph(&before, &parent);
    let graph: BTreeMap<&str, Vec<&str>> = graph
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        graph.get("notify"),
        Some(&vec!["notify::handoff", "notify::notices"])
    );
    assert!(
        find_cycle(&graph).is_some_and(|c| c.contains(&"notify")),
        "{graph:?}"
    );
    // Importing the sibling that defines the item breaks the loop.
    let after = [
        source(
            "notify/mod.rs",
            "pub mod delivery;\npub mod notices;\npub use delivery::Delivery;\npub use notices::Notice;",
        ),
        source(
            "notify/delivery.rs",
            "pub struct Notice;\npub enum Delivery { Wecom(Notice) }",
        ),
        source(
            "notify/notices.rs",
            "use super::delivery::Delivery;\nuse crate::notify::delivery::Notice;",
        ),
    ];
    let graph = module_graph(&after, &parent);
    let graph: BTreeMap<&str, Vec<&str>> = graph
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(find_cycle(&graph), None, "{graph:?}");
}

/// A cycle in the graph, as the list of its nodes, if there is one.
fn find_cycle<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn store_keys_are_spelled_only_in_store_keys() {
    // The schemes are the string literals `store::keys` starts its keys with ("session:…").
    let sources = sources();
    let keys = sources
        .iter()
        .find(|s| s.relative == Path::new("store/keys.rs"))
        .expect("src/store/keys.rs exists");
    // A scheme's literal runs on after its colon ("session:{…}", "outbox:done:"); a log line's
    // "console: …" does not.
    let scheme = Regex::new(r#""([a-z_]+):[^\s"]"#).expect("a valid regex");
    let schemes: BTreeSet<String> = scheme
        .captures_iter(&code_of(&keys.text))
        .map(|c| c[1].to_owned())
        .collect();
    assert!(
        schemes.len() >= 10,
        "schemes found in store::keys: {schemes:?}"
    );
    let mut spelled = Vec::new();
    for source in &sources {
        let path = source.relative.to_string_lossy().replace('\\', "/");
        if path == "store/keys.rs" {
            continue;
        }
        for (n, line) in code_of(&source.text).lines().enumerate() {
            if scheme.captures_iter(line).any(|c| schemes.contains(&c[1])) {
                spelled.push(format!("src/{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        spelled.is_empty(),
        "store keys spelled outside store::keys:\n{}",
        spelled.join("\n")
    );
}

#[test]
fn the_checks_see_a_broken_rule() {
    // The parser finds what the checks rely on, so a rule broken in src/ would be caught.
    let sample = Source {
        relative: PathBuf::from("catalog/model.rs"),
        text: "use crate::dialog::engine; // crate::notify in a comment\nuse super::value::X;\nuse crate::{store::keys, requests};".to_owned(),
    };
    let named = named_paths(&sample);
    assert!(named.contains(&vec!["dialog".to_owned(), "engine".to_owned()]));
    assert!(named.contains(&vec![
        "catalog".to_owned(),
        "value".to_owned(),
        "X".to_owned()
    ]));
    assert!(named.contains(&vec!["store".to_owned(), "keys".to_owned()]));
    assert!(named.contains(&vec!["requests".to_owned()]));
    assert!(
        !named
            .iter()
            .any(|p| p.first().is_some_and(|m| m == "notify"))
    );
    let cyclic: BTreeMap<&str, Vec<&str>> = [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"])]
        .into_iter()
        .collect();
    assert_eq!(find_cycle(&cyclic), Some(vec!["a", "b", "c", "a"]));
}

/// The source without its comments (unit tests kept: a test of the production crate may not
/// reach the developer's crate either, since that would link a second copy of the library).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_production_crate_never_names_the_dev_crate_or_a_tools_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        !root.join("src/tools").exists(),
        "src/tools/ is back: test tooling belongs in dev/ (kaitong-dev)"
    );
    let named = Regex::new(r"\bkaitong_dev\b|\bkaitong-dev\b|\btools::|\bmod\s+tools\b")
        .expect("a valid regex");
    let mut found = Vec::new();
    let mut sources = sources();
    sources.push(Source {
        relative: PathBuf::from("../build.rs"),
        text: std::fs::read_to_string(root.join("build.rs")).expect("build.rs is readable"),
    });
    for source in &sources {
        for (n, line) in without_comments(&source.text).lines().enumerate() {
            if named.is_match(line) {
                found.push(format!(
                    "src/{}:{}: {}",
                    source.relative.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the production crate names the developer's crate or a tools module:\n{}",
        found.join("\n")
    );
    // The check reads what it should: a mention in code is found, one in a comment is not.
    assert!(named.is_match(&without_comments("use kaitong_dev::simulator; // x")));
    assert!(named.is_match(&without_comments("crate::tools::peer::app_text_xml()")));
    assert!(!named.is_match(&without_comments("// see kaitong_dev::simulator")));
}

/// The dependency tables of a manifest (`[dependencies]`, `[build-dependencies]`,
/// `[dev-dependencies]`, and the same under `[target.'…']`), by kind, with the names in each.
fn dependencies(manifest: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(manifest).expect("a readable manifest");
    let value: toml::Value = toml::from_str(&text).expect("a valid manifest");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tables = vec![value.clone()];
    if let Some(targets) = value.get("target").and_then(toml::Value::as_table) {
        tables.extend(targets.values().cloned());
    }
    for table in &tables {
        for kind in ["dependencies", "build-dependencies", "dev-dependencies"] {
            if let Some(deps) = table.get(kind).and_then(toml::Value::as_table) {
                out.entry(kind.to_owned())
                    .or_default()
                    .extend(deps.keys().cloned());
            }
        }
    }
    out
}

#[test]
fn the_dev_crate_depends_on_the_library_never_the_reverse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let production = dependencies(&root.join("Cargo.toml"));
    for kind in ["dependencies", "build-dependencies"] {
        let names = production.get(kind).cloned().unwrap_or_default();
        assert!(
            !names.contains("kaitong-dev"),
            "kaitong's [{kind}] names kaitong-dev: the production binary would link the tools"
        );
        assert!(
            !names.contains("multer"),
            "kaitong's [{kind}] names multer, which only the simulator uses"
        );
    }
    // The tests and benches drive the bot with the simulator: a dev-dependency only.
    assert!(
        production
            .get("dev-dependencies")
            .is_some_and(|d| d.contains("kaitong-dev")),
        "{production:?}"
    );
    let dev = dependencies(&root.join("dev/Cargo.toml"));
    assert!(
        dev.get("dependencies")
            .is_some_and(|d| d.contains("kaitong")),
        "kaitong-dev builds on the library: {dev:?}"
    );
    // The workspace holds both crates, and `cargo test` at the root runs both.
    let manifest: toml::Value = toml::from_str(
        &std::fs::read_to_string(root.join("Cargo.toml")).expect("a readable manifest"),
    )
    .expect("a valid manifest");
    for key in ["members", "default-members"] {
        let members: Vec<&str> = manifest["workspace"][key]
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(toml::Value::as_str)
            .collect();
        assert!(
            members.contains(&".") && members.contains(&"dev"),
            "workspace.{key} = {members:?}"
        );
    }
}
