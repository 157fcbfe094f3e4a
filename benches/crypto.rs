//! Crypto cost per callback: decrypt + encrypt of a 1 KiB message, and the signature.
//! Run with `cargo bench --bench crypto`.
#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use kaitong::wecom::MsgCrypt;

fn crypto(c: &mut Criterion) {
    let crypt = MsgCrypt::new(
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "wx5823bf96d3bd56c7",
    )
    .unwrap();
    let message = "开".repeat(341) + "x"; // 1 KiB of multi-byte UTF-8
    let encrypted = crypt.encrypt(message.as_bytes()).unwrap();
    let mut group = c.benchmark_group("wxbizmsgcrypt_1kib");
    group.throughput(Throughput::Bytes(message.len() as u64));
    group.bench_function("decrypt", |b| {
        b.iter(|| crypt.decrypt(black_box(&encrypted)).unwrap())
    });
    group.bench_function("encrypt", |b| {
        b.iter(|| crypt.encrypt(black_box(message.as_bytes())).unwrap())
    });
    group.bench_function("decrypt_then_encrypt", |b| {
        b.iter(|| {
            let plain = crypt.decrypt(black_box(&encrypted)).unwrap();
            crypt.encrypt(&plain).unwrap()
        })
    });
    group.bench_function("signature", |b| {
        b.iter(|| {
            crypt.signature(
                black_box("1409659813"),
                black_box("1372623149"),
                black_box(&encrypted),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, crypto);
criterion_main!(benches);
