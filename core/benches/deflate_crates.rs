//! Which DEFLATE crate: zlib-rs (the core's, configured as the core does)
//! against miniz_oxide, both pure Rust and `no_std` + `alloc`, doing what
//! permessage-deflate does with each message: compress with a sync flush,
//! context kept between messages, and inflate it again.
//!
//! ```text
//! cargo bench -p snowsocket-core --features deflate --bench deflate_crates
//! ```
//!
//! JSON-like text of 256 B, 4 KiB and 64 KiB at levels 1, 3 and 6 (the
//! std shell's default is 3). The two
//! crates alternate in each round (the machine may be shared); the table
//! gives zlib-rs's time over miniz_oxide's as min / median / max over the
//! rounds (below 1: zlib-rs is faster), and each one's compressed size.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use core::hint::black_box;
use core::time::Duration;
use std::time::Instant;

use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush};

const ROUNDS: usize = 7;
const WINDOW: Duration = Duration::from_millis(150);

/// `n` messages of about `len` bytes of JSON-like text, deterministic.
fn messages(len: usize, n: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x9e37_79b9_u64;
    (0..n)
        .map(|m| {
            let mut s = String::with_capacity(len + 128);
            let mut i = m * 1000;
            while s.len() < len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(&format!(
                    "{{\"id\":{i},\"user\":\"u{}\",\"price\":{}.{:02},\"side\":\"{}\",\"ok\":{}}},",
                    seed % 5000,
                    seed % 997,
                    seed % 100,
                    ["buy", "sell"][(seed % 2) as usize],
                    seed.is_multiple_of(3),
                ));
                i += 1;
            }
            s.truncate(len);
            s.into_bytes()
        })
        .collect()
}

/// One crate's permessage-deflate loop: every message compressed (sync
/// flush) and inflated again, context kept. Returns the compressed bytes.
trait Codec {
    fn round_trip(&mut self, message: &[u8], wire: &mut Vec<u8>, back: &mut Vec<u8>);
}

struct Miniz {
    tx: Box<CompressorOxide>,
    rx: Box<InflateState>,
}

impl Miniz {
    fn new(level: i32) -> Self {
        Self {
            tx: Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
                level, -15, 0,
            ))),
            rx: InflateState::new_boxed(DataFormat::Raw),
        }
    }
}

impl Codec for Miniz {
    fn round_trip(&mut self, message: &[u8], wire: &mut Vec<u8>, back: &mut Vec<u8>) {
        wire.clear();
        wire.resize(message.len() + 64, 0);
        let r = miniz_oxide::deflate::stream::deflate(&mut self.tx, message, wire, MZFlush::Sync);
        assert_eq!(r.bytes_consumed, message.len());
        wire.truncate(r.bytes_written);
        back.clear();
        back.resize(message.len() + 64, 0);
        let r = miniz_oxide::inflate::stream::inflate(&mut self.rx, wire, back, MZFlush::Sync);
        assert_eq!(r.bytes_consumed, wire.len());
        back.truncate(r.bytes_written);
    }
}

struct Zlib {
    tx: zlib_rs::Deflate,
    rx: zlib_rs::Inflate,
}

impl Zlib {
    /// As the core configures it (raw stream, 15-bit window, memory
    /// level 6).
    fn new(level: u32) -> Self {
        Self {
            tx: zlib_rs::Deflate::new_with_config(zlib_rs::DeflateConfig {
                level: level as i32,
                method: zlib_rs::Method::Deflated,
                window_bits: -15,
                mem_level: 6,
                strategy: zlib_rs::Strategy::Default,
            }),
            rx: zlib_rs::Inflate::new(false, 15),
        }
    }
}

impl Codec for Zlib {
    fn round_trip(&mut self, message: &[u8], wire: &mut Vec<u8>, back: &mut Vec<u8>) {
        wire.clear();
        wire.resize(message.len() + 64, 0);
        let (read, wrote) = (self.tx.total_in(), self.tx.total_out());
        self.tx
            .compress(message, wire, zlib_rs::DeflateFlush::SyncFlush)
            .expect("compress");
        assert_eq!((self.tx.total_in() - read) as usize, message.len());
        wire.truncate((self.tx.total_out() - wrote) as usize);
        back.clear();
        back.resize(message.len() + 64, 0);
        let (read, wrote) = (self.rx.total_in(), self.rx.total_out());
        self.rx
            .decompress(wire, back, zlib_rs::InflateFlush::SyncFlush)
            .expect("inflate");
        assert_eq!((self.rx.total_in() - read) as usize, wire.len());
        back.truncate((self.rx.total_out() - wrote) as usize);
    }
}

/// Nanoseconds per message over one timed window, and the mean
/// compressed size.
fn run(codec: &mut dyn Codec, messages: &[Vec<u8>]) -> (f64, usize) {
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    // Each window starts from a warm codec; checks the round trip once.
    for m in messages {
        codec.round_trip(m, &mut wire, &mut back);
        assert_eq!(&back, m);
    }
    let start = Instant::now();
    let (mut n, mut bytes) = (0usize, 0usize);
    while start.elapsed() < WINDOW {
        for m in messages {
            codec.round_trip(black_box(m), &mut wire, &mut back);
            bytes += wire.len();
            n += 1;
        }
    }
    (start.elapsed().as_nanos() as f64 / n as f64, bytes / n)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not run it.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| size | level | miniz_oxide µs/msg | zlib-rs µs/msg | zlib-rs / miniz_oxide time (min / median / max) | miniz_oxide bytes | zlib-rs bytes |");
    println!("|---:|---:|---:|---:|---|---:|---:|");
    for len in [256usize, 4096, 65536] {
        // Enough messages that a pass over them is twice the 32 KiB
        // window: no message finds an exact copy of itself in the window.
        let messages = messages(len, (2 * 32768 / len).max(16) + 1);
        for level in [1u32, 3, 6] {
            let mut ratios = Vec::new();
            let (mut best_m, mut best_z) = (f64::MAX, f64::MAX);
            let (mut size_m, mut size_z) = (0, 0);
            for _ in 0..ROUNDS {
                let (m, sm) = run(&mut Miniz::new(level as i32), &messages);
                let (z, sz) = run(&mut Zlib::new(level), &messages);
                ratios.push(z / m);
                best_m = best_m.min(m);
                best_z = best_z.min(z);
                (size_m, size_z) = (sm, sz);
            }
            ratios.sort_by(f64::total_cmp);
            println!(
                "| {len} | {level} | {:.2} | {:.2} | {:.2} / {:.2} / {:.2} | {size_m} | {size_z} |",
                best_m / 1000.0,
                best_z / 1000.0,
                ratios[0],
                ratios[ROUNDS / 2],
                ratios[ROUNDS - 1],
            );
        }
    }
}
