//! Codec benchmarks: unmasking, header decode + unmask, and UTF-8
//! validation, each next to a plain `copy_from_slice` of the same number of
//! bytes as the baseline.
//!
//! Run briefly with:
//! `cargo bench -p snowsocket-core --bench codec -- --warm-up-time 1 --measurement-time 2`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use core::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use snowsocket_core::frame::{FrameHeader, OpCode};
use snowsocket_core::mask::{apply_mask, apply_mask_bytewise};
use snowsocket_core::utf8::Utf8Validator;

const SIZES: [(usize, &str); 4] = [
    (16, "16B"),
    (1 << 10, "1KiB"),
    (64 << 10, "64KiB"),
    (1 << 20, "1MiB"),
];

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Deterministic filler bytes.
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Adds the copy baseline for `len` bytes to `group`.
fn bench_copy(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    len: usize,
) {
    let src = data(len);
    let mut dst = vec![0u8; len];
    group.bench_function(BenchmarkId::new("copy", name), |b| {
        b.iter(|| dst.copy_from_slice(black_box(&src)));
    });
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("unmask");
    for (len, name) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        bench_copy(&mut group, name, len);
        let mut buf = data(len);
        group.bench_function(BenchmarkId::new("apply_mask", name), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY), black_box(0)));
        });
        group.bench_function(BenchmarkId::new("apply_mask_bytewise", name), |b| {
            b.iter(|| apply_mask_bytewise(black_box(&mut buf), black_box(KEY), black_box(0)));
        });
    }
    group.finish();
}

fn decode_unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_unmask");
    for (len, name) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        bench_copy(&mut group, name, len);
        let header = FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: Some(KEY),
            payload_len: len as u64,
        };
        let mut frame = vec![0u8; FrameHeader::MAX_LEN + len];
        let n = header.encode(&mut frame).unwrap();
        frame.truncate(n + len);
        frame[n..].copy_from_slice(&data(len));
        apply_mask(&mut frame[n..], KEY, 0);
        // Unmasking in place each time alternates between masked and
        // unmasked payloads: XOR is its own inverse, the work is the same.
        group.bench_function(BenchmarkId::new("decode+apply_mask", name), |b| {
            b.iter(|| {
                let (h, used) = FrameHeader::decode(black_box(&frame)).unwrap().unwrap();
                let key = h.mask.unwrap();
                let payload_len = usize::try_from(h.payload_len).unwrap();
                apply_mask(&mut frame[used..used + payload_len], key, 0);
            });
        });
    }
    group.finish();
}

/// About `len` bytes of valid UTF-8 mixing ASCII with 2-, 3- and 4-byte
/// characters (cut at a character boundary).
fn mixed_text(len: usize) -> String {
    const PIECE: &str = "The quick brown fox — κόσμε, ½ café, 日本語のテキスト, 🦀 crab! ";
    let mut s = String::with_capacity(len + PIECE.len());
    while s.len() < len {
        s.push_str(PIECE);
    }
    let mut end = len;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for (len, name) in SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        bench_copy(&mut group, name, len);
        let ascii: Vec<u8> = (0..len).map(|i| b' ' + (i % 95) as u8).collect();
        group.bench_function(BenchmarkId::new("validate_ascii", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(&ascii)).unwrap();
                v.finish().unwrap();
            });
        });
    }
    for (len, name) in SIZES {
        let text = mixed_text(len);
        group.throughput(Throughput::Bytes(text.len() as u64));
        bench_copy(&mut group, &format!("{name}-mixed"), text.len());
        group.bench_function(BenchmarkId::new("validate_mixed", name), |b| {
            b.iter(|| {
                let mut v = Utf8Validator::new();
                v.feed(black_box(text.as_bytes())).unwrap();
                v.finish().unwrap();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, unmask, decode_unmask, utf8);
criterion_main!(benches);
