//! The house keeps its shape: which modules may use which, read from the source text.
//!
//! ```text
//!  cmd ──► controller ─┐
//!     ├──► speaker ────┼──► k8s, config, frr, l2, metrics, status ──► core (pure)
//!     └──► webhook ────┘
//! ```
//!
//! - `core` is pure: no Kubernetes client, no gRPC, no async I/O, no HTTP under `src/core/`,
//!   and it uses no other module of the crate (not the metrics, not the status API).
//! - The components stay apart: `speaker` and `webhook` do not reach into `controller`,
//!   `controller` and `webhook` not into `speaker`; what they share lives in `k8s/` or `config/`.
//! - `anyhow` only at the command-line edge (`src/cmd/`); everything else has thiserror enums.
//! - `unsafe` only in `src/heap.rs` (glibc's `malloc_trim`).
//!
//! A module "uses" another when its code names `crate::<module>`, also inside a
//! `use crate::{..}` group. Comments do not count.

use std::{
    fs,
    path::{Path, PathBuf},
};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file of a top-level module (`src/<module>/**` or `src/<module>.rs`).
fn module_files(module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let dir = src().join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    let file = src().join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    assert!(!files.is_empty(), "no source for module {module}");
    files
}

/// The text without `//` comments (doc comments included), line structure kept.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules named after `crate::` (`crate::a::b`, `crate::{a, b::{c, d}}`), with
/// their line numbers.
fn crate_uses(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find("crate::") {
        let start = from + i;
        from = start + "crate::".len();
        if code[..start].chars().next_back().is_some_and(is_ident) {
            continue; // `some_crate::`
        }
        let line = code[..start].matches('\n').count() + 1;
        let tail = &code[from..];
        let Some(group) = tail.strip_prefix('{') else {
            let name: String = tail.chars().take_while(|&c| is_ident(c)).collect();
            found.push((line, name));
            continue;
        };
        let (mut depth, mut name, mut expecting) = (0usize, String::new(), true);
        for c in group.chars() {
            if depth == 0 && expecting && is_ident(c) {
                name.push(c);
                continue;
            }
            if !name.is_empty() {
                found.push((line, std::mem::take(&mut name)));
                expecting = false;
            }
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => expecting = true,
                _ => {}
            }
        }
    }
    found
}

/// Offending lines of `module`: the other top-level modules it must not use.
fn uses_of(module: &str, banned: &[&str]) -> Vec<String> {
    let mut offenders = Vec::new();
    for file in module_files(module) {
        let text = fs::read_to_string(&file).unwrap();
        for (line, used) in crate_uses(&code(&text)) {
            if banned.contains(&used.as_str()) {
                offenders.push(format!("{}:{line}: uses crate::{used}", file.display()));
            }
        }
    }
    offenders
}

/// Lines of `files` whose code contains any of `needles`.
fn lines_naming(files: &[PathBuf], needles: &[&str]) -> Vec<String> {
    let mut offenders = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in code(&text).lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle)) {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    offenders
}

fn assert_none(offenders: Vec<String>, rule: &str) {
    assert!(offenders.is_empty(), "{rule}:\n{}", offenders.join("\n"));
}

#[test]
fn core_imports_no_kube_tonic_tokio_or_hyper() {
    let offenders = lines_naming(
        &module_files("core"),
        &["kube::", "kube_", "k8s_openapi", "tonic", "tokio", "hyper"],
    );
    assert_none(offenders, "core must stay pure");
}

#[test]
fn core_uses_nothing_but_core() {
    let mut offenders = Vec::new();
    for file in module_files("core") {
        let text = fs::read_to_string(&file).unwrap();
        for (line, used) in crate_uses(&code(&text)) {
            if used != "core" {
                offenders.push(format!("{}:{line}: uses crate::{used}", file.display()));
            }
        }
    }
    assert_none(
        offenders,
        "core is used by the components (metrics, status, k8s, ...), never the reverse",
    );
}

#[test]
fn speaker_does_not_import_controller() {
    assert_none(
        uses_of("speaker", &["controller"]),
        "the speaker shares plumbing through k8s/ and config/, not controller/",
    );
}

#[test]
fn webhook_imports_neither_controller_nor_speaker() {
    assert_none(
        uses_of("webhook", &["controller", "speaker"]),
        "the webhook judges with config::load and reads through k8s/",
    );
}

#[test]
fn controller_does_not_import_speaker() {
    assert_none(
        uses_of("controller", &["speaker"]),
        "the controller shares plumbing through k8s/ and config/, not speaker/",
    );
}

#[test]
fn anyhow_only_in_cmd() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let cmd = src().join("cmd");
    files.retain(|f| !f.starts_with(&cmd));
    assert_none(
        lines_naming(&files, &["anyhow"]),
        "anyhow belongs to the command-line edge (src/cmd/); use a thiserror enum",
    );
}

#[test]
fn unsafe_only_in_heap() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let heap = src().join("heap.rs");
    assert!(
        !lines_naming(std::slice::from_ref(&heap), &["unsafe"]).is_empty(),
        "src/heap.rs holds the one unsafe block (the scan must find it)"
    );
    files.retain(|f| *f != heap);
    assert_none(
        lines_naming(&files, &["unsafe"]),
        "unsafe code lives in src/heap.rs only (malloc_trim); wrap what you need there",
    );
}

/// The scanner itself: a rule that cannot see a use would always pass.
#[test]
fn crate_uses_sees_paths_and_groups_but_not_comments() {
    let text = "use crate::{\n    api::x,\n    controller::{a, b},\n    k8s,\n};\n\
                fn f(m: crate::metrics::M) {}\n\
                // crate::speaker in a comment\n\
                let s = other_crate::status;\n";
    let found = crate_uses(&code(text));
    assert_eq!(
        found,
        [
            (1, "api".to_string()),
            (1, "controller".to_string()),
            (1, "k8s".to_string()),
            (6, "metrics".to_string()),
        ]
    );
}
