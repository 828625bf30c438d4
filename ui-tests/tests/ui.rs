//! Compile-failure and must-compile tests for fluxion's public API.
//!
//! The `.stderr` snapshots under `tests/ui/` are exact compiler output, so they are only
//! meaningful for the compiler that produced them (recorded in `RUSTC_VERSION`). To
//! regenerate them after a toolchain change or a message change in `src/`, run
//! `TRYBUILD=overwrite cargo test -p fluxion-ui-tests`, then read every changed
//! `.stderr` and update `RUSTC_VERSION`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The compiler these snapshots were generated with.
const PINNED_RUSTC: &str = include_str!("../RUSTC_VERSION");

fn check_compiler_version() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(&rustc)
        .arg("--version")
        .output()
        .unwrap_or_else(|error| panic!("could not run `{rustc} --version`: {error}"));
    assert!(output.status.success(), "`{rustc} --version` failed: {output:?}");
    let found = String::from_utf8_lossy(&output.stdout);
    let (found, pinned) = (found.trim(), PINNED_RUSTC.trim());
    if found != pinned {
        panic!(
            "\n\n\
             ==================== COMPILER VERSION MISMATCH ====================\n\
             The compile-failure snapshots in ui-tests/tests/ui/**/*.stderr were\n\
             produced by\n\
             \x20   {pinned}\n\
             (recorded in ui-tests/RUSTC_VERSION), but this run uses\n\
             \x20   {found}\n\
             Diagnostics change between compiler versions, so comparing them would\n\
             give spurious failures (or spurious passes). Either run the tests with\n\
             the pinned compiler, or regenerate the snapshots with\n\
             \x20   TRYBUILD=overwrite cargo test -p fluxion-ui-tests\n\
             review every changed .stderr, and write the new version line into\n\
             ui-tests/RUSTC_VERSION.\n\
             ===================================================================\n"
        );
    }
}

#[test]
fn ui() {
    check_compiler_version();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
    t.pass("tests/pass/*.rs");
}

fn stderr_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            stderr_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "stderr") {
            found.push(path);
        }
    }
}

#[test]
fn snapshots_never_show_typenum() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut files = Vec::new();
    stderr_files(&root, &mut files);
    assert!(!files.is_empty(), "no .stderr snapshot found under {}", root.display());
    let leaking: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).expect("readable snapshot");
            text.contains("UInt<") || text.contains("UTerm")
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(leaking.is_empty(), "typenum internals (`UInt<`, `UTerm`) reach the user in: {leaking:#?}");
}
