//! The stable-toolchain replay of the fuzz corpus: every seed file under
//! `core/fuzz/corpus/<target>/` and every crash regression under
//! `core/fuzz/regressions/<target>/` goes through the same oracle as the
//! `cargo fuzz` targets (`core/fuzz/src/oracle.rs`), plus a few thousand
//! seeded mutations of the seeds, so that the normal test run fuzzes a
//! little too.

use core::panic::AssertUnwindSafe;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use rand_core::RngCore;
use snowsocket_core::{MessageKind, Role};
use snowsocket_tests::{close_payload, frame, header, XorShiftRng};

use crate::oracle;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/fuzz")
}

/// The files of `dir` (none if it does not exist), sorted.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    out
}

/// Runs the oracle, turning a panic into one that names the input.
fn check(target: &str, what: &str, data: &[u8]) {
    let result = catch_unwind(AssertUnwindSafe(|| assert!(oracle::run(target, data))));
    if let Err(e) = result {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        panic!(
            "{target} failed on {what} ({} bytes: {data:02x?}): {msg}",
            data.len()
        );
    }
}

#[test]
fn seed_corpus_and_regressions_replay() {
    for target in oracle::TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(target));
        assert!(
            seeds.len() >= 3,
            "{target}: seed corpus missing ({} files)",
            seeds.len()
        );
        for (path, data) in seeds
            .iter()
            .chain(&files(&fuzz_dir().join("regressions").join(target)))
        {
            check(target, &path.display().to_string(), data);
        }
    }
}

/// Seeded mutations of the seeds (bit flips, byte changes, insertions,
/// deletions, truncation, splicing two seeds).
#[test]
fn seeded_mutations_of_the_corpus() {
    let mut rng = XorShiftRng::new(0xF022);
    for target in oracle::TARGETS {
        let seeds: Vec<Vec<u8>> = files(&fuzz_dir().join("corpus").join(target))
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        for i in 0..1500 {
            let mut data = seeds[rng.below(seeds.len() as u64) as usize].clone();
            for _ in 0..rng.range(1..=4) {
                let len = data.len();
                match rng.below(6) {
                    0 if len > 0 => data[rng.range(0..=len - 1)] ^= 1 << rng.below(8),
                    1 if len > 0 => data[rng.range(0..=len - 1)] = rng.next_u32() as u8,
                    2 => data.insert(rng.range(0..=len), rng.next_u32() as u8),
                    3 if len > 0 => {
                        data.remove(rng.range(0..=len - 1));
                    }
                    4 => data.truncate(rng.range(0..=len)),
                    _ => {
                        let other = &seeds[rng.below(seeds.len() as u64) as usize];
                        let from = rng.range(0..=other.len());
                        data.extend_from_slice(&other[from..]);
                    }
                }
            }
            check(target, &format!("mutation {i}"), &data);
        }
    }
}

/// Writes the seed corpus (run by hand after changing it:
/// `cargo test -p snowsocket-tests --test core write_seed_corpus -- --ignored`).
#[test]
#[ignore = "writes core/fuzz/corpus; run by hand to regenerate the seeds"]
fn write_seed_corpus() {
    let key = Some([0x37, 0xfa, 0x21, 0x3d]);
    let rfc_unmasked: Vec<(&str, Vec<u8>)> = vec![
        ("rfc-hello", frame(true, 0, 1, None, b"Hello")),
        (
            "rfc-fragmented-hello",
            [
                frame(false, 0, 1, None, b"Hel"),
                frame(true, 0, 0, None, b"lo"),
            ]
            .concat(),
        ),
        ("rfc-ping", frame(true, 0, 9, None, b"Hello")),
        ("rfc-binary-256", frame(true, 0, 2, None, &[0x5A; 256])),
        (
            "close-1000",
            frame(true, 0, 8, None, &close_payload(1000, b"bye")),
        ),
        (
            "conversation",
            [
                frame(false, 0, 1, None, "κό".as_bytes()),
                frame(true, 0, 9, None, b"p"),
                frame(true, 0, 0, None, "σμε".as_bytes()),
                frame(true, 0, 0xA, None, b""),
                frame(true, 0, 8, None, &close_payload(1001, b"")),
            ]
            .concat(),
        ),
    ];
    let mask = |wire: &[u8]| -> Vec<u8> {
        // Re-encode each frame of `wire` masked with the RFC key.
        snowsocket_tests::parse_frames(wire)
            .iter()
            .flat_map(|f| frame(f.fin, 0, f.opcode.as_u8(), key, &f.payload))
            .collect()
    };
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    };
    for (name, wire) in &rfc_unmasked {
        let masked = mask(wire);
        write(
            "frame_decoder",
            &format!("{name}-unmasked"),
            &wire[..wire.len().min(14)],
        );
        write(
            "frame_decoder",
            &format!("{name}-masked"),
            &masked[..masked.len().min(14)],
        );
        for (prefix, flags) in [
            ("whole", [0u8, 0]),
            ("chunked", [7, 0]),
            ("small-timers", [3, 0x03]),
            ("commands", [9, 0x1C]),
        ] {
            write(
                "client_connection",
                &format!("{name}-{prefix}"),
                &[&flags[..], wire].concat(),
            );
            write(
                "server_connection",
                &format!("{name}-{prefix}"),
                &[&flags[..], &masked].concat(),
            );
        }
    }
    write("frame_decoder", "len64", &header(true, 0, 2, key, 70_000));
    write("frame_decoder", "len16", &header(false, 0, 0, None, 300));
    let request = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n";
    write("handshake_request", "rfc", request);
    write(
        "handshake_request",
        "minimal",
        b"GET / HTTP/1.1\r\n\
        Host: a\r\n\
        Upgrade: websocket\r\n\
        Connection: upgrade\r\n\
        Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n",
    );
    write(
        "handshake_request",
        "version-8",
        &String::from_utf8_lossy(request)
            .replace("Version: 13", "Version: 8")
            .into_bytes(),
    );
    write(
        "handshake_request",
        "with-frame",
        &[&request[..], &frame(true, 0, 1, key, b"hi")].concat(),
    );
    let response = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\
        \r\n";
    write("handshake_response", "rfc", response);
    write(
        "handshake_response",
        "no-protocol",
        b"HTTP/1.1 101 Switching Protocols\r\n\
        upgrade: WebSocket\r\n\
        connection: keep-alive, Upgrade\r\n\
        sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        \r\n",
    );
    write(
        "handshake_response",
        "rejected",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",
    );
    write(
        "handshake_response",
        "with-frame",
        &[&response[..], &frame(true, 0, 1, None, b"hi")].concat(),
    );
    deflate_seeds(&write);
}

/// Seeds of the permessage-deflate targets: round trips, real compressed
/// streams from each role, offers and answers.
fn deflate_seeds(write: &dyn Fn(&str, &str, &[u8])) {
    use snowsocket_core::deflate::{negotiate, Compressor, DeflateConfig};
    let json = br#"{"id":1,"name":"user1","tags":["a","b"],"ok":true},{"id":2,"name":"user2"}"#;
    let plain = [snowsocket_core::handshake::Header {
        name: "Sec-WebSocket-Extensions",
        value: b"permessage-deflate",
    }];
    let params = negotiate(&plain, &DeflateConfig::DEFAULT).unwrap();
    for (name, head) in [
        ("roundtrip-server", [0x00, 0, 0x20]),
        ("roundtrip-client", [0x80, 5, 0x20]),
        ("roundtrip-all-params", [0x7f, 9, 0x20]),
    ] {
        write("deflate_connection", name, &[&head[..], json].concat());
    }
    for (role, first) in [(Role::Client, 0x00u8), (Role::Server, 0x80)] {
        // What the peer (`role`) sends to a connection of the other role.
        let mut c = Compressor::new(role, &params, 6);
        let mask = (role == Role::Client).then_some([0x37, 0xfa, 0x21, 0x3d]);
        let mut wire = Vec::new();
        c.write_message(MessageKind::Text, json, mask, &mut wire);
        c.write_message(MessageKind::Binary, &[0u8; 3000], mask, &mut wire);
        c.write_message(MessageKind::Text, json, mask, &mut wire);
        let who = if role == Role::Client {
            "to-server"
        } else {
            "to-client"
        };
        for (prefix, flags) in [
            ("whole", [0u8, 0]),
            ("chunked", [7, 0]),
            ("small", [3, 0x01]),
            ("commands", [9, 0x1C]),
        ] {
            write(
                "deflate_connection",
                &format!("{who}-{prefix}"),
                &[&[first][..], &flags[..], &wire].concat(),
            );
        }
    }
    for (name, a, b, value) in [
        ("plain", 0u8, 0u8, &b"permessage-deflate"[..]),
        ("all-four", 0xff, 0x5b, b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9"),
        ("several", 0x21, 0x00, b"x-foo, permessage-deflate; bad, permessage-deflate; client_max_window_bits"),
        ("quoted", 0x0c, 0x80, b"permessage-deflate; server_max_window_bits=\"12\""),
    ] {
        write("deflate_negotiation", name, &[&[a, b][..], value].concat());
    }
}
