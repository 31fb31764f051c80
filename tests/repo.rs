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

/// README's list of problem kinds is the enum's table: every kind, each once, warnings marked.
#[test]
fn readme_lists_every_problem_kind_with_its_severity() {
    use jetdir::base::problem::{Kind, Severity};
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let start = readme
        .find("- Problem kinds are stable identifiers")
        .expect("README lists the problem kinds");
    let end = readme[start..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + e);
    let list = &readme[start..end];
    let mut listed: Vec<(String, bool)> = Vec::new();
    for line in list
        .lines()
        .filter(|l| l.trim_start().starts_with("- ") && l.contains(": `"))
    {
        let items = &line[line.find(": `").unwrap() + 2..];
        for item in items.trim_end_matches('.').split(", ") {
            let name = item.split('`').nth(1).unwrap_or_default().to_string();
            listed.push((name, item.ends_with("(w)")));
        }
    }
    let want: Vec<(String, bool)> = Kind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), k.severity() == Severity::Warning))
        .collect();
    let mut a = listed.clone();
    let mut b = want.clone();
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "README's problem kinds differ from src/base/problem.rs"
    );
    for k in Kind::ALL {
        assert_eq!(Kind::from_name(k.as_str()), Some(*k));
    }
}

/// Packaging (issue #11): the LICENSE file is the license Cargo.toml names, the manifest has
/// what a published crate needs, the release profile carries no debug info and the
/// `profiling` profile (bench/run.py) does.
#[test]
fn license_and_manifest_metadata() {
    let root = repo();
    let license = std::fs::read_to_string(root.join("LICENSE")).expect("LICENSE file");
    assert!(
        license.contains("Apache License") && license.contains("Version 2.0, January 2004"),
        "LICENSE is not the Apache-2.0 text"
    );
    assert!(
        license.contains("END OF TERMS AND CONDITIONS"),
        "LICENSE is cut short"
    );
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("license = \"Apache-2.0\""),
        "Cargo.toml's license"
    );
    for key in [
        "description",
        "readme",
        "keywords",
        "categories",
        "rust-version",
    ] {
        assert!(
            manifest
                .lines()
                .any(|l| l.starts_with(&format!("{key} = "))),
            "Cargo.toml lacks {key}"
        );
    }
    let section = |name: &str| -> String {
        let head = format!("[profile.{name}]");
        let start = manifest.find(&head).unwrap_or_else(|| panic!("no {head}"));
        let rest = &manifest[start + head.len()..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_string()
    };
    let release = section("release");
    assert!(release.contains("debug = false"), "release: {release}");
    let profiling = section("profiling");
    assert!(
        profiling.contains("inherits = \"release\"") && profiling.contains("debug = 1"),
        "profiling: {profiling}"
    );
    let bench = std::fs::read_to_string(root.join("bench/run.py")).unwrap();
    assert!(
        bench.contains("\"--profile\", \"profiling\""),
        "bench/run.py builds the profiling profile"
    );
}
