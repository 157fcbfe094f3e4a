//! The in-process table's sentence vector for a typical message. `cargo bench --bench static_embed`.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use kaitong::embed::static_table::StaticTable;

fn embed(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialogs/embeddings/zh-static.kvec");
    let table = StaticTable::load(&path).unwrap();
    // 20 characters, the length of a usual request.
    let text = "客户开店开到上限了，帮忙申请再加几家店铺";
    assert_eq!(text.chars().count(), 20);
    let _ = table.embed(text); // builds the shared segmenter outside the measurement
    c.bench_function("static_embed_20_chars", |b| {
        b.iter(|| black_box(table.embed(black_box(text))))
    });
}

criterion_group!(benches, embed);
criterion_main!(benches);
