//! The layer rule of README's "Architecture": each folder of `src/` imports only the layers
//! below it, and the CLI crates (clap, indicatif) stay in the binary. Test code (`tests.rs`
//! files and `#[cfg(test)] mod tests` blocks) may reach any layer.
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom to top; layers on the same floor may not import each other.
const FLOORS: &[&[&str]] = &[
    &["base"],
    &["s2"],
    &["filestore"],
    &["backup", "state"],
    &["check"],
    &["forensics"],
    &["ops"],
];

fn floor(layer: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&layer))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's production code: without `tests.rs` files and `#[cfg(test)] mod tests` blocks.
fn production_code(p: &Path) -> String {
    if p.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = fs::read_to_string(p).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Every `crate::<name>` in `code`.
fn crate_refs(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + 7..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `jetdir::crate::` cannot happen; skip `$crate::` in macros
            if !rest[..i].ends_with('$') {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(src).unwrap();
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        let code = production_code(f);
        let in_bin = rel_s == "main.rs" || rel_s.starts_with("cli/");
        if !in_bin {
            for needle in ["clap::", "indicatif::", "use clap", "use indicatif"] {
                if code.contains(needle) {
                    bad.push(format!(
                        "src/{rel_s}: uses {needle} (CLI crates stay in the binary)"
                    ));
                }
            }
        }
        let Some(layer) = rel_s.split('/').next().filter(|_| rel_s.contains('/')) else {
            continue; // lib.rs, main.rs, testdata.rs
        };
        let Some(me) = floor(layer) else {
            if layer != "cli" {
                bad.push(format!("src/{rel_s}: folder {layer} is not a known layer"));
            }
            continue;
        };
        for (line, target) in crate_refs(&code) {
            if target == layer || target == "testdata" {
                continue;
            }
            match floor(&target) {
                Some(t) if t < me => {}
                Some(_) => bad.push(format!(
                    "src/{rel_s}:{line}: {layer} imports crate::{target}, which is not below it"
                )),
                None => bad.push(format!(
                    "src/{rel_s}:{line}: crate::{target} is not a layer"
                )),
            }
        }
    }
    bad
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(bad.is_empty(), "layer rule broken:\n{}", bad.join("\n"));
}

/// The check itself can fail: an upward import in a scratch tree is found.
#[test]
fn an_upward_import_is_found() {
    let t = std::env::temp_dir().join(format!("jetdir-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&t);
    fs::create_dir_all(t.join("filestore")).unwrap();
    fs::create_dir_all(t.join("check")).unwrap();
    fs::write(
        t.join("filestore/block.rs"),
        "use crate::check::store;\nuse crate::base::bytes;\n#[cfg(test)]\nmod tests {\n use crate::ops::x;\n}\n",
    )
    .unwrap();
    fs::write(
        t.join("check/x.rs"),
        "use crate::filestore::block;\nfn f() { clap::Parser }\n",
    )
    .unwrap();
    let bad = violations(&t);
    let _ = fs::remove_dir_all(&t);
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert!(bad[0].contains("src/check/x.rs: uses clap::"), "{bad:#?}");
    assert!(
        bad[1].contains("src/filestore/block.rs:1: filestore imports crate::check"),
        "{bad:#?}"
    );
}
