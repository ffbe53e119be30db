//! The layering of `host/src`, read from its code: every top-level module sits in one layer
//! of [`LAYERS`] and imports only from its own layer and those below; the modules of one
//! layer import each other without a circle; the files of each folder import each other
//! without a circle; no source file is longer than [`MAX_LINES`]. ARCHITECTURE.md states
//! the same layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import from its own layer and those below.
const LAYERS: &[&[&str]] = &[
    // The vocabulary every layer speaks.
    &[
        "clock",
        "value",
        "filter",
        "schema",
        "scope",
        "secrets",
        "net",
        "webhook",
        "classifier",
        "metrics",
        "telemetry",
    ],
    &["store"],
    &["error", "config_file"],
    &["governance", "inference", "enrichment"],
    &["trigger", "rules"],
    &["sandbox"],
    &["failure", "delivery"],
    &["config"],
    &["distribution"],
    &["service"],
    &["server"],
    &["console"],
    &["cli"],
];

/// The longest a source file may be.
const MAX_LINES: usize = 800;

/// One source file: its module path, its code without comments and unit tests, and its
/// length.
struct Source {
    module: Vec<String>,
    path: PathBuf,
    code: String,
    lines: usize,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let module: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module == ["lib"] || module == ["main"] {
                return None;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            Some(Source {
                module,
                lines: text.lines().count(),
                code: code_of(&text),
                path,
            })
        })
        .collect()
}

/// The code that is compiled outside tests, without comments.
fn code_of(text: &str) -> String {
    let code: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    let mut code = code.join("\n");
    // Drop each `#[cfg(test)]` module, up to its closing brace.
    while let Some(start) = code.find("#[cfg(test)]\nmod ") {
        let mut depth = 0usize;
        let mut end = code.len();
        for (i, c) in code[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 1 => {
                    end = start + i + 1;
                    break;
                }
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        code.replace_range(start..end, "");
    }
    code
}

/// Every module path the code names through `crate::` or `super::`, brace groups expanded,
/// as absolute paths.
fn references(source: &Source) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let code = source.code.as_bytes();
    let mut at = 0;
    while at < code.len() {
        if !source.code.is_char_boundary(at) {
            at += 1;
            continue;
        }
        let rest = &source.code[at..];
        let starts_word = at == 0 || !is_ident(code[at - 1]);
        let base = if !starts_word {
            None
        } else if rest.starts_with("crate::") {
            Some(Vec::new())
        } else if rest.starts_with("super::") {
            let mut parent = source.module.clone();
            parent.pop();
            Some(parent)
        } else {
            None
        };
        match base {
            Some(mut base) => {
                // `crate::` and `super::` are both seven bytes.
                let mut tail = &rest[7..];
                // `super::super::`
                while let Some(t) = tail.strip_prefix("super::") {
                    base.pop();
                    tail = t;
                }
                let used = expand(&base, tail, &mut found);
                at += (rest.len() - tail.len()) + used;
            }
            None => at += 1,
        }
    }
    found
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Reads a path (or a brace group) at the start of `text` below `base`, adds what it names,
/// and returns how many bytes it read.
fn expand(base: &[String], text: &str, found: &mut BTreeSet<Vec<String>>) -> usize {
    let bytes = text.as_bytes();
    let mut path = base.to_vec();
    let mut at = 0;
    loop {
        if bytes.get(at) == Some(&b'{') {
            at += 1;
            loop {
                while bytes
                    .get(at)
                    .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
                {
                    at += 1;
                }
                match bytes.get(at) {
                    None => return at,
                    Some(b'}') => return at + 1,
                    _ => {
                        let used = expand(&path, &text[at..], found);
                        if used == 0 {
                            at += 1;
                        }
                        at += used;
                        // Skip `as alias`.
                        while bytes.get(at).is_some_and(|b| *b != b',' && *b != b'}') {
                            at += 1;
                        }
                    }
                }
            }
        }
        let start = at;
        while bytes.get(at).copied().is_some_and(is_ident) {
            at += 1;
        }
        if at == start {
            found.insert(path);
            return at;
        }
        path.push(text[start..at].to_string());
        if text[at..].starts_with("::") {
            at += 2;
        } else {
            found.insert(path);
            return at;
        }
    }
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("top-level module `{module}` is in no layer of LAYERS"))
}

/// The circles of a graph, each as the list of its nodes.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_string());
            found.push(circle);
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done, found);
        }
        stack.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        visit(node, edges, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

#[test]
fn modules_import_only_their_layer_and_below_without_circles() {
    let sources = sources();
    let tops: BTreeSet<&str> = sources.iter().map(|s| s.module[0].as_str()).collect();
    for layer in LAYERS.iter().flat_map(|l| l.iter()) {
        assert!(
            tops.contains(layer),
            "LAYERS names `{layer}`, which is not a module"
        );
    }
    let mut upward = Vec::new();
    let mut same_layer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut siblings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files: BTreeSet<Vec<String>> = sources.iter().map(|s| s.module.clone()).collect();
    for source in &sources {
        let me = &source.module[0];
        for path in references(source) {
            let Some(top) = path.first() else { continue };
            if top != me && files.iter().any(|f| f[0] == *top) {
                if layer_of(top) > layer_of(me) {
                    upward.push(format!(
                        "{} imports {} (layer {} > {})",
                        source.path.display(),
                        path.join("::"),
                        layer_of(top),
                        layer_of(me)
                    ));
                } else if layer_of(top) == layer_of(me) {
                    same_layer
                        .entry(me.clone())
                        .or_default()
                        .insert(top.clone());
                }
            }
            // A file naming another file or folder of its own folder (or of a folder it is
            // inside): the two are nodes of that folder's graph.
            for depth in 1..source.module.len() {
                let folder = &source.module[..depth];
                if path.len() > depth
                    && path.starts_with(folder)
                    && path[depth] != source.module[depth]
                    && files.iter().any(|f| f.starts_with(&path[..=depth]))
                {
                    siblings
                        .entry(source.module[..=depth].join("::"))
                        .or_default()
                        .insert(path[..=depth].join("::"));
                }
            }
        }
    }
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
    let circles: Vec<_> = circles(&same_layer)
        .into_iter()
        .chain(circles(&siblings))
        .map(|c| c.join(" → "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| s.lines > MAX_LINES)
        .map(|s| format!("{}: {} lines", s.path.display(), s.lines))
        .collect();
    assert!(
        long.is_empty(),
        "longer than {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_reader_expands_brace_groups_and_relative_paths() {
    let source = Source {
        module: vec!["sandbox".into(), "capability".into(), "records".into()],
        path: PathBuf::from("sandbox/capability/records.rs"),
        code: "use crate::{store::{Store, value::X}, gate};\nuse super::review::Reviewed;\n\
               fn f() { super::super::gate::enter(); crate::net::get(); }"
            .into(),
        lines: 3,
    };
    let found: Vec<String> = references(&source).iter().map(|p| p.join("::")).collect();
    for expected in [
        "store::Store",
        "store::value::X",
        "gate",
        "sandbox::capability::review::Reviewed",
        "sandbox::gate::enter",
        "net::get",
    ] {
        assert!(
            found.contains(&expected.to_string()),
            "{expected} in {found:?}"
        );
    }
}
