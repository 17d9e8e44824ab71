//! Rooms on one instance, without a Redis server: what a plain
//! `cargo test` can check (the cluster itself is in tests/cluster.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;

use core::net::SocketAddr;
use std::io::{Read, Write};
use std::net::TcpStream;

use snowsocket_pubsub::harness::{free_port, Heard, Member};
use snowsocket_pubsub::{Chat, Rooms, RoomsConfig, SLOW_MEMBER_CODE, SLOW_MEMBER_REASON};
use snowsocket_server::{Server, ServerConfig, ServerHandle};

const WAIT: Duration = Duration::from_secs(10);

fn bounded(secs: u64, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => t.join().unwrap(),
        Err(RecvTimeoutError::Disconnected) => {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!("test did not finish within {secs} s"),
    }
}

fn serve(config: RoomsConfig) -> ServerHandle {
    serve_with(config, ServerConfig::default())
}

fn serve_with(config: RoomsConfig, server: ServerConfig) -> ServerHandle {
    let rooms = Rooms::start(config).unwrap();
    let server = Server::bind("127.0.0.1:0", server).unwrap();
    server.spawn(Chat::new(rooms)).unwrap()
}

fn text(m: &Member) -> String {
    match m.heard.recv_timeout(WAIT) {
        Ok(Heard::Text(t)) => t,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_room_hears_its_members_and_no_other_room() {
    bounded(30, || {
        let server = serve(RoomsConfig::new("solo"));
        let url = |room: &str| format!("ws://{}/room/{room}", server.local_addr());
        let a1 = Member::join(&url("a"), WAIT).unwrap();
        let a2 = Member::join(&url("a"), WAIT).unwrap();
        let a3 = Member::join(&url("a"), WAIT).unwrap();
        let b = Member::join(&url("b"), WAIT).unwrap();
        assert_eq!(a1.instance, "solo");
        assert_eq!(a1.notice, "* joined room a on instance solo");
        a1.say("one").unwrap();
        assert_eq!(text(&a2), "one");
        assert_eq!(text(&a3), "one");
        // Then b speaks, and a2: the author hears neither its own nor
        // the other room's messages.
        b.say("elsewhere").unwrap();
        a2.say("two").unwrap();
        assert_eq!(text(&a1), "two");
        assert_eq!(text(&a3), "two");
        a3.say("three").unwrap();
        assert_eq!(text(&a2), "three");
        assert_eq!(text(&a1), "three");
        assert!(a1.heard.try_recv().is_err(), "a1 heard more");
        assert!(
            b.heard.try_recv().is_err(),
            "b heard its own message or room a"
        );
        // Binary goes through as binary.
        a1.sender().send_binary(&[1, 2, 3]).unwrap();
        match a2.heard.recv_timeout(WAIT) {
            Ok(Heard::Binary(data)) => assert_eq!(data, [1, 2, 3]),
            other => panic!("{other:?}"),
        }
        server.shutdown();
    });
}

#[test]
fn other_paths_are_refused() {
    bounded(30, || {
        let server = serve(RoomsConfig::new("solo"));
        for path in ["/", "/room/", "/room/a/b", "/room/sp%20ace", "/lobby"] {
            let url = format!("ws://{}{path}", server.local_addr());
            let err = Member::join(&url, WAIT).unwrap_err();
            assert!(err.contains("404"), "{path}: {err}");
        }
        server.shutdown();
    });
}

#[test]
fn without_redis_an_instance_serves_its_own_members_and_says_so() {
    bounded(30, || {
        // Nothing listens there: the subscriber keeps retrying.
        let url = format!("redis://127.0.0.1:{}/", free_port().unwrap());
        let server = serve(RoomsConfig::new("cut-off").redis(url));
        let room = format!("ws://{}/room/x", server.local_addr());
        let a = Member::join(&room, WAIT).unwrap();
        let b = Member::join(&room, WAIT).unwrap();
        assert_eq!(
            b.notice,
            "* joined room x on instance cut-off (Redis unavailable: this instance only)"
        );
        a.say("still here").unwrap();
        assert_eq!(text(&b), "still here");
        assert!(a.heard.try_recv().is_err());
        server.shutdown();
    });
}

/// The next whole frame at the start of `wire` (the server's: unmasked),
/// as its opcode and payload, taken off `wire`.
fn take_frame(wire: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let (len, start) = match (wire.get(1)? & 0x7f, wire.len()) {
        (126, n) if n >= 4 => (usize::from(u16::from_be_bytes([wire[2], wire[3]])), 4),
        (127, n) if n >= 10 => (
            usize::try_from(u64::from_be_bytes(wire[2..10].try_into().unwrap())).unwrap(),
            10,
        ),
        (126 | 127, _) => return None,
        (len, _) => (usize::from(len), 2),
    };
    if wire.len() < start + len {
        return None;
    }
    let opcode = wire[0] & 0x0f;
    let payload = wire[start..start + len].to_vec();
    wire.drain(..start + len);
    Some((opcode, payload))
}

/// A member on a raw socket, which reads only when the test says: joins
/// the room at `path` and reads its join notice; the bytes read past it
/// are returned too.
fn raw_member(addr: SocketAddr, path: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut wire = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed during the handshake");
        wire.extend_from_slice(&chunk[..n]);
        let Some(end) = wire.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        assert!(wire.starts_with(b"HTTP/1.1 101"));
        let mut rest = wire[end + 4..].to_vec();
        loop {
            if let Some((opcode, notice)) = take_frame(&mut rest) {
                assert_eq!(opcode, 1);
                assert!(notice.starts_with(b"* joined room"), "{notice:?}");
                return (stream, rest);
            }
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "no join notice");
            rest.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A member that reads nothing while its room keeps talking is closed
/// (1008) once its outbox cannot take a message, rather than missing
/// messages without knowing: it then reads every message up to the
/// Close, in order and without a gap. A member that keeps up misses
/// nothing.
#[test]
fn a_member_too_slow_for_its_room_is_closed_and_told() {
    bounded(60, || {
        const SIZE: usize = 16 * 1024;
        const BATCH: usize = 16;
        // 16 MiB: more than the slow member's outbox (1 MiB) and the
        // kernel's buffers on both sides take.
        const MESSAGES: usize = 1024;
        let server = serve_with(
            RoomsConfig::new("solo"),
            ServerConfig::default().max_buffered_bytes(1 << 20),
        );
        let (mut slow, mut wire) = raw_member(server.local_addr(), "/room/x");
        let url = format!("ws://{}/room/x", server.local_addr());
        let talker = Member::join(&url, WAIT).unwrap();
        let listener = Member::join(&url, WAIT).unwrap();
        let message = |i: usize| format!("{i:08}").repeat(SIZE / 8);
        // In batches the listener reads before the next: it keeps up.
        for batch in (0..MESSAGES).step_by(BATCH) {
            for i in batch..batch + BATCH {
                talker.say(&message(i)).unwrap();
            }
            for i in batch..batch + BATCH {
                assert_eq!(text(&listener), message(i), "the listener's message {i}");
            }
        }
        // The slow member reads now.
        let mut next = 0;
        let mut chunk = vec![0u8; 1 << 16];
        let (code, reason) = 'read: loop {
            while let Some((opcode, payload)) = take_frame(&mut wire) {
                match opcode {
                    1 => {
                        assert!(payload == message(next).as_bytes(), "not message {next}");
                        next += 1;
                    }
                    8 => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        break 'read (code, String::from_utf8(payload[2..].to_vec()).unwrap());
                    }
                    other => panic!("opcode {other} after {next} messages"),
                }
            }
            let n = slow.read(&mut chunk).unwrap();
            assert!(n > 0, "the server hung up without a Close after {next}");
            wire.extend_from_slice(&chunk[..n]);
        };
        assert_eq!(code, SLOW_MEMBER_CODE.0);
        assert_eq!(reason, SLOW_MEMBER_REASON);
        assert!(next < MESSAGES, "the slow member took every message");
        assert!(next > 0);
        drop(slow);
        server.shutdown();
    });
}
