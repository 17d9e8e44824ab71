//! permessage-deflate figures (issue 11), measured in memory on one core:
//!
//! ```text
//! cargo run --profile bench-release -p snowsocket-bench --bin deflate_figures           # echo cost, wire bytes
//! cargo run --profile bench-release -p snowsocket-bench --bin deflate_figures -- memory 500 takeover
//! cargo run --profile bench-release -p snowsocket-bench --bin deflate_figures -- memory 500 no-takeover
//! valgrind --tool=callgrind target/bench-release/deflate_figures count core 4096 512  # see scripts/deflate-figures.sh
//! ```
//!
//! - **Echo cost and wire bytes**, for JSON-like text of 256 B, 4 KiB and
//!   64 KiB: a round trip through two core `Connection`s (client
//!   `send_compressed` → server `handle_read` inflates → server
//!   `send_compressed` → client `handle_read` inflates), against the same
//!   work done with zlib-rs alone (two compressions with a sync flush,
//!   two inflations, same level, context kept): our framing overhead on
//!   top of compress + inflate. Uncompressed round trips and the bytes on
//!   the wire both ways are shown beside them. Rounds alternate between
//!   the two; the best round of each counts (the machine may be shared).
//! - **Memory**: `memory N takeover|no-takeover` holds N server-side
//!   connections, each after one 4 KiB message each way, and prints the
//!   resident memory they added per connection (VmRSS, this process).

use core::time::Duration;
use std::time::Instant as StdInstant;

#[path = "../deflate_common.rs"]
mod deflate_common;
use deflate_common::{json, Rng};
use snowsocket_core::deflate::{negotiate, DeflateConfig, DeflateParams};
use snowsocket_core::handshake::Header;
use snowsocket_core::{Config, Connection, Event, Instant, MessageKind, Role};
use zlib_rs::{
    Deflate, DeflateConfig as ZConfig, DeflateFlush, Inflate, InflateFlush, Method, Strategy,
};

const LEVEL: u8 = 3;
const ROUNDS: usize = 5;
const WINDOW: Duration = Duration::from_millis(400);

type Conn = Connection<Vec<u8>, Rng>;

fn params(offer: &str) -> Result<DeflateParams, String> {
    let headers = [Header {
        name: "Sec-WebSocket-Extensions",
        value: offer.as_bytes(),
    }];
    negotiate(&headers, &DeflateConfig::DEFAULT).ok_or(format!("offer {offer} declined"))
}

fn pair(deflate: Option<&DeflateParams>) -> (Conn, Conn) {
    let config = Config::DEFAULT.ping_interval(None);
    let mut c = Connection::new(Role::Client, config, Vec::new(), Rng(7), Instant::ZERO);
    let mut s = Connection::new(Role::Server, config, Vec::new(), Rng(9), Instant::ZERO);
    if let Some(p) = deflate {
        c.enable_deflate(p, LEVEL);
        s.enable_deflate(p, LEVEL);
    }
    (c, s)
}

/// Feeds `wire` to `to`; returns the text length of the message read.
fn receive(to: &mut Conn, wire: &mut [u8]) -> Result<usize, String> {
    match to.handle_read(wire, Instant::ZERO) {
        Ok((_, Some(Event::Text(t)))) => Ok(t.len()),
        other => Err(format!("expected a text message: {other:?}")),
    }
}

/// One echo round trip through the core; returns the wire bytes.
fn core_round_trip(
    c: &mut Conn,
    s: &mut Conn,
    text: &str,
    compressed: bool,
) -> Result<usize, String> {
    let mut wire = Vec::with_capacity(text.len() + 16);
    let send = |conn: &mut Conn, wire: &mut Vec<u8>, t: &[u8]| {
        if compressed {
            conn.send_compressed(MessageKind::Text, t, wire)
        } else {
            wire.resize(conn.frame_len(t.len()), 0);
            conn.send(MessageKind::Text, t, wire)
        }
        .map_err(|e| e.to_string())
    };
    send(c, &mut wire, text.as_bytes())?;
    let up = wire.len();
    assert_eq!(receive(s, &mut wire)?, text.len());
    wire.clear();
    send(s, &mut wire, text.as_bytes())?;
    let down = wire.len();
    assert_eq!(receive(c, &mut wire)?, text.len());
    Ok(up + down)
}

/// zlib-rs alone (the core's compression crate), configured as the core
/// configures it (level 3, raw stream, 15-bit window, memory level 6): a
/// compressor and an inflater per direction.
struct Bare {
    tx: [Deflate; 2],
    rx: [Inflate; 2],
    compressed: Vec<u8>,
    out: Vec<u8>,
}

impl Bare {
    fn new() -> Self {
        let c = || {
            Deflate::new_with_config(ZConfig {
                level: i32::from(LEVEL),
                method: Method::Deflated,
                window_bits: -15,
                mem_level: 6,
                strategy: Strategy::Default,
            })
        };
        Self {
            tx: [c(), c()],
            rx: [Inflate::new(false, 15), Inflate::new(false, 15)],
            compressed: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Compresses `text` (sync flush) and inflates it back. The buffers are
    /// kept between calls and only grown (zeroing them for every message
    /// would be work of the baseline's own, flattering our overhead).
    fn one_way(&mut self, i: usize, text: &[u8]) -> Result<usize, String> {
        if self.compressed.len() < text.len() + 64 {
            self.compressed.resize(text.len() + 64, 0);
            self.out.resize(text.len() + 64, 0);
        }
        let (tx, rx) = (&mut self.tx[i], &mut self.rx[i]);
        let (read, wrote) = (tx.total_in(), tx.total_out());
        tx.compress(text, &mut self.compressed, DeflateFlush::SyncFlush)
            .map_err(|e| format!("compress: {e:?}"))?;
        let len = (tx.total_out() - wrote) as usize;
        if (tx.total_in() - read) as usize != text.len() {
            return Err("compress: not all consumed".into());
        }
        let wrote = rx.total_out();
        rx.decompress(
            &self.compressed[..len],
            &mut self.out,
            InflateFlush::NoFlush,
        )
        .map_err(|e| format!("inflate: {e:?}"))?;
        if (rx.total_out() - wrote) as usize != text.len() {
            return Err("inflate: wrong length".into());
        }
        Ok(len - 4)
    }

    fn round_trip(&mut self, text: &str) -> Result<usize, String> {
        Ok(self.one_way(0, text.as_bytes())? + self.one_way(1, text.as_bytes())?)
    }
}

/// Round trips per second over `WINDOW`, running `f` on messages 0, 1, ….
fn rate(
    messages: &[String],
    mut f: impl FnMut(&str) -> Result<usize, String>,
) -> Result<(f64, usize), String> {
    let start = StdInstant::now();
    let (mut n, mut bytes) = (0usize, 0usize);
    while start.elapsed() < WINDOW {
        bytes += f(&messages[n % messages.len()])?;
        n += 1;
    }
    Ok((n as f64 / start.elapsed().as_secs_f64(), bytes / n.max(1)))
}

fn figures() -> Result<(), String> {
    let p = params("permessage-deflate")?;
    println!(
        "| size | round trips/s plain | wire bytes/round trip plain | round trips/s deflate | wire bytes/round trip deflate | zlib-rs alone, round trips/s | our overhead over compress + inflate |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for size in [256, 4096, 65536] {
        // Distinct messages, 256 KiB of them at least: none recurs within
        // the 32 KiB window (which would flatter the ratio).
        let count = (256 << 10) / size;
        let messages: Vec<String> = (0..count.max(64)).map(|i| json(size, i * 1000)).collect();
        let (mut best_plain, mut best_core, mut best_bare) = ((0.0, 0), (0.0, 0), (0.0, 0));
        for _ in 0..ROUNDS {
            let (mut c, mut s) = pair(None);
            let plain = rate(&messages, |t| core_round_trip(&mut c, &mut s, t, false))?;
            let (mut c, mut s) = pair(Some(&p));
            let core = rate(&messages, |t| core_round_trip(&mut c, &mut s, t, true))?;
            let mut bare = Bare::new();
            let alone = rate(&messages, |t| bare.round_trip(t))?;
            for (best, got) in [
                (&mut best_plain, plain),
                (&mut best_core, core),
                (&mut best_bare, alone),
            ] {
                if got.0 > best.0 {
                    *best = got;
                }
            }
        }
        println!(
            "| {size} B | {:.0} | {} | {:.0} | {} | {:.0} | {:+.1} % |",
            best_plain.0,
            best_plain.1,
            best_core.0,
            best_core.1,
            best_bare.0,
            (best_bare.0 / best_core.0 - 1.0) * 100.0
        );
    }
    Ok(())
}

/// This process's resident memory, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn memory(n: usize, takeover: bool) -> Result<(), String> {
    let offer = if takeover {
        "permessage-deflate"
    } else {
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    };
    let p = params(offer)?;
    let text = json(4096, 1);
    // The clients' state is measured too if they live on: each client is
    // dropped once its message has gone both ways; servers are kept.
    let before = rss_kib();
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut c, mut s) = pair(Some(&p));
        core_round_trip(&mut c, &mut s, &text, true)?;
        // Idle: the message buffer's capacity is given back, as the std
        // server does for idle connections.
        if let Some(buf) = s.idle_message_buffer() {
            *buf = Vec::new();
        }
        drop(c);
        servers.push(s);
    }
    let after = rss_kib();
    println!(
        "{n} idle server connections after one 4 KiB message each way, {}: {} KiB resident added, {:.1} KiB per connection (core Connection and its deflate state)",
        if takeover {
            "context takeover"
        } else {
            "no context takeover"
        },
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / n as f64
    );
    drop(servers);
    Ok(())
}

/// `count bare|core SIZE N`: N round trips of SIZE-byte text (the same
/// distinct messages as [`figures`]), through zlib-rs alone or through
/// two core `Connection`s, for an instruction count (callgrind). Start-up
/// and message generation do not depend on N: scripts/deflate-figures.sh
/// counts N and 2N round trips and takes the difference.
fn count(what: &str, size: usize, n: usize) -> Result<(), String> {
    let count = ((256 << 10) / size.max(1)).max(64);
    let messages: Vec<String> = (0..count).map(|i| json(size, i * 1000)).collect();
    let mut bytes = 0;
    match what {
        "bare" => {
            let mut bare = Bare::new();
            for i in 0..n {
                bytes += bare.round_trip(&messages[i % count])?;
            }
        }
        "core" => {
            let p = params("permessage-deflate")?;
            let (mut c, mut s) = pair(Some(&p));
            for i in 0..n {
                bytes += core_round_trip(&mut c, &mut s, &messages[i % count], true)?;
            }
        }
        _ => return Err(format!("count: bare or core, not {what}")),
    }
    println!("{what}: {n} round trips of {size} B, {bytes} compressed bytes");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] => figures(),
        ["memory", n, mode] => memory(n.parse().unwrap_or(500), *mode == "takeover"),
        ["count", what, size, n] => match (size.parse(), n.parse()) {
            (Ok(size), Ok(n)) => count(what, size, n),
            _ => Err("count: SIZE and N are numbers".into()),
        },
        _ => Err(
            "usage: deflate_figures [memory N takeover|no-takeover | count bare|core SIZE N]"
                .into(),
        ),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deflate_figures: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
