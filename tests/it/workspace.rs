//! The workspace ships no test tooling: the production crate `kaitong` has no normal (non-dev)
//! dependency path to `multer` or to the developer's crate `kaitong-dev`, and the production
//! binary the suite builds holds none of the simulator's code. `dev/tests/it/binary.rs` shows
//! the same markers are in `kaitong-dev`, so the binary check can fail.

use std::path::Path;
use std::process::Command;

/// What `cargo tree` lists as the production crate's normal dependencies (no dev- or
/// build-dependencies), offline and from the committed lock file.
fn production_tree() -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "-e",
            "normal",
            "-p",
            "kaitong",
            "--offline",
            "--locked",
            "--prefix",
            "none",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("cargo tree prints UTF-8")
}

/// The crate names `cargo tree --prefix none` lists, one a line (`name vX.Y.Z (…)`).
fn crate_names(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect()
}

#[test]
fn the_production_crate_depends_on_no_test_tooling() {
    let tree = production_tree();
    let names = crate_names(&tree);
    // The check reads real output: the production crate and a dependency it surely has.
    assert!(
        names.contains(&"kaitong") && names.contains(&"axum"),
        "{tree}"
    );
    for tooling in ["multer", "kaitong-dev"] {
        assert!(
            !names.contains(&tooling),
            "{tooling} is a normal dependency of kaitong:\n{tree}"
        );
    }
}

/// Whether `needle` occurs in `haystack`.
fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn the_production_binary_holds_no_simulator_code() {
    let path = Path::new(env!("CARGO_BIN_EXE_kaitong"));
    let binary = std::fs::read(path).expect("the production binary is built for the tests");
    // The check reads the real binary: strings its own code carries are found.
    assert!(
        holds(&binary, "开通助手: WeCom bot"),
        "not the kaitong binary?"
    );
    let found: Vec<&str> = kaitong_dev::simulator::MARKERS
        .iter()
        .copied()
        .filter(|marker| holds(&binary, marker))
        .collect();
    assert!(
        found.is_empty(),
        "{} holds the WeCom simulator's {found:?}",
        path.display()
    );
}
