//! The layout's rules, checked on every `cargo test`: no import circle between the top-level
//! modules of `src/` (a root file or a folder), each module uses only the layers below it
//! (the table in docs/architecture.md), and no source file holds more than 800 lines outside
//! its `#[cfg(test)]` items (comments count). It reads `src/**/*.rs` as text: `crate::…` paths
//! (inline ones and `use crate::{a, b::c}` groups) outside comments and test items. Runs without the
//! test harness (`harness = false`) so its findings are printed on every run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Bottom to top: a module may use only modules of a lower layer. Keep in step with the
/// picture in docs/architecture.md.
const LAYERS: &[&[&str]] = &[
    &["cli", "clock", "secret", "stdout"],
    &["signals", "net", "locale", "tpm", "keyring"],
    &["oauth", "store", "screen"],
    &["config"],
    &["error"],
    &["grant", "keys"],
    &["pairing"],
    &["setup"],
    &["socket"],
    &["agent"],
    &["commands"],
];

/// Files that only declare or start the crate: not part of the layering.
const ROOTS: &[&str] = &["lib", "main"];

const MAX_CODE_LINES: usize = 800;

/// Files over the limit whose split is in progress elsewhere: reported, not failed. Empty this
/// list as they land.
const PENDING_SPLIT: &[&str] = &[];

fn main() -> ExitCode {
    if let Err(why) = self_check() {
        println!("architecture: FAIL the checker itself: {why}");
        return ExitCode::FAILURE;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    files.sort();

    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sizes = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        let Some(unit) = unit_of(rel) else { continue };
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue; // a sibling unit-test module
        }
        let text = fs::read_to_string(file).unwrap_or_default();
        let code = strip_tests(&text, false);
        let lines = strip_tests(&text, true).lines().count();
        let name = rel.display().to_string();
        sizes.push((lines, name.clone()));
        if lines > MAX_CODE_LINES && PENDING_SPLIT.contains(&name.as_str()) {
            println!("architecture: pending split: {name}, {lines} lines of non-test code");
        } else if lines > MAX_CODE_LINES {
            problems.push(format!(
                "{}: {lines} lines of non-test code (limit {MAX_CODE_LINES}); move unit tests to a sibling tests.rs or split the module",
                rel.display()
            ));
        }
        if ROOTS.contains(&unit.as_str()) {
            continue;
        }
        let entry = uses.entry(unit.clone()).or_default();
        for used in crate_refs(&code) {
            if used != unit {
                entry.insert(used);
            }
        }
    }

    println!("architecture: {} source files read", files.len());
    for (unit, used) in &uses {
        let list: Vec<&str> = used.iter().map(String::as_str).collect();
        println!("  {unit} -> {}", list.join(", "));
    }

    for (unit, used) in &uses {
        let Some(layer) = layer_of(unit) else {
            problems.push(format!(
                "{unit}: not in the layer table (tests/architecture.rs)"
            ));
            continue;
        };
        for u in used {
            match layer_of(u) {
                Some(l) if l < layer => {}
                Some(_) => problems.push(format!(
                    "{unit} uses {u}: {u} is not in a layer below {unit}"
                )),
                None => problems.push(format!("{unit} uses {u}: {u} is not in the layer table")),
            }
        }
    }

    let cycles = cycles(&uses);
    if cycles.is_empty() {
        println!("architecture: no import circles between top-level modules");
    }
    for c in &cycles {
        problems.push(format!("import circle: {}", c.join(" -> ")));
    }

    sizes.sort();
    let longest = sizes
        .iter()
        .rev()
        .find(|(_, f)| !PENDING_SPLIT.contains(&f.as_str()));
    if let Some((lines, file)) = longest {
        println!("architecture: longest file {file}, {lines} lines of non-test code");
    }

    if problems.is_empty() {
        println!("architecture: ok (layers respected, no file over {MAX_CODE_LINES} lines)");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("architecture: FAIL {p}");
        }
        ExitCode::FAILURE
    }
}

/// The parser on known text, so a change to it cannot quietly make every check pass.
fn self_check() -> Result<(), String> {
    let sample = "use crate::{a, b::{c, d}, e as f};\n\
                  // crate::commented\n\
                  fn g() { crate::h::i(); }\n\
                  #[cfg(test)]\n\
                  mod tests {\n    use crate::tested;\n}\n";
    let code = strip_tests(sample, false);
    let got: Vec<String> = crate_refs(&code).into_iter().collect();
    let want = ["a", "b", "e", "h"];
    if got != want {
        return Err(format!("crate_refs found {got:?}, expected {want:?}"));
    }
    let graph: BTreeMap<String, BTreeSet<String>> = [("x", "y"), ("y", "z"), ("z", "x")]
        .iter()
        .map(|(a, b)| (a.to_string(), BTreeSet::from([b.to_string()])))
        .collect();
    let found = cycles(&graph);
    if found != [vec!["x", "y", "z", "x"]] {
        return Err(format!("cycles found {found:?} in x -> y -> z -> x"));
    }
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `config/toml.rs` → `config`, `grant.rs` → `grant`.
fn unit_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.strip_suffix(".rs").unwrap_or(first).to_string())
}

fn layer_of(unit: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&unit))
}

/// The text without `#[cfg(test)]` items (a `mod x;` line or a braced item) and, unless
/// `keep_comments`, without whole-line comments.
fn strip_tests(text: &str, keep_comments: bool) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("//") && !keep_comments {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            // Skip the next item: up to a `;` at depth 0 or its closing brace.
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                for ch in l.chars() {
                    match ch {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The top-level module names used through `crate::`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `devauth_crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut at_start = true;
            for ch in group.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        if !item.is_empty() {
                            out.insert(std::mem::take(&mut item));
                        }
                        at_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 && at_start {
                    if ch.is_alphanumeric() || ch == '_' {
                        item.push(ch);
                    } else if !item.is_empty() {
                        out.insert(std::mem::take(&mut item));
                        at_start = false;
                    }
                }
            }
            if !item.is_empty() {
                out.insert(item);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out.remove("self");
    out
}

/// One circle per group of mutually dependent modules (a strongly connected component): the
/// shortest one through the group's first module by name, so the output stays short.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for m in graph.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|k| (k, reach(k))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for (start, from_start) in &reaches {
        if done.contains(*start) || !from_start.contains(*start) {
            continue;
        }
        let group: BTreeSet<&String> = from_start
            .iter()
            .filter(|m| reaches.get(m).is_some_and(|r| r.contains(*start)))
            .collect();
        done.extend(group.iter().map(|g| (*g).clone()));
        // Breadth-first from `start` back to itself, inside the group.
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([(*start).clone()]);
        'search: while let Some(n) = queue.pop_front() {
            for m in graph.get(&n).into_iter().flatten() {
                if m == *start {
                    let mut path = vec![n.clone()];
                    while let Some(p) = prev.get(path.last().map_or("", String::as_str)) {
                        path.push(p.clone());
                    }
                    path.reverse();
                    if path.first() != Some(*start) {
                        path.insert(0, (*start).clone());
                    }
                    path.push((*start).clone());
                    out.push(path);
                    break 'search;
                }
                if group.contains(m) && !prev.contains_key(m) && m != *start {
                    prev.insert(m.clone(), n.clone());
                    queue.push_back(m.clone());
                }
            }
        }
    }
    out
}
