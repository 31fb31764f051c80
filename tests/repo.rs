//! The repository stands on its own: nothing in it reads files from outside the checkout.
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        let p = e.path();
        let name = e.file_name();
        if name == "__pycache__" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// No source, test, script or benchmark file (nor the build script, manifest or README)
/// mentions the sibling `shared` folder the project started from: the test data the tests
/// need lives in `fixtures/samples/`.
#[test]
fn nothing_reads_outside_the_repository() {
    // Spelled in two parts so that this file does not match itself.
    let needle = concat!("..", "/shared").as_bytes();
    let root = repo();
    let mut all = Vec::new();
    for d in ["src", "tests", "scripts", "bench"] {
        files(&root.join(d), &mut all);
    }
    for f in [
        "build.rs",
        "Cargo.toml",
        "README.md",
        "fixtures/make_fixtures.py",
    ] {
        all.push(root.join(f));
    }
    assert!(all.len() > 20, "found only {} files", all.len());
    let mut hits = Vec::new();
    for p in &all {
        let Ok(data) = std::fs::read(p) else {
            continue;
        };
        if data.windows(needle.len()).any(|w| w == needle) {
            hits.push(p.strip_prefix(&root).unwrap_or(p).display().to_string());
        }
    }
    assert!(
        hits.is_empty(),
        "files referring to {}: {hits:?}",
        String::from_utf8_lossy(needle)
    );
}
