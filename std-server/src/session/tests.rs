//! The TLS layer between a client and a server session over an in-memory
//! pipe: records that arrive a byte at a time, plaintext larger than the
//! reader's buffer, buffers freed when idle, a bad record answered with an
//! alert.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use super::{TlsFailure, TlsRead, TlsSession};

type Queue = Rc<RefCell<VecDeque<u8>>>;

/// One end of a non-blocking in-memory pipe; `trickle` reads one byte at
/// a time.
struct End {
    rx: Queue,
    tx: Queue,
    trickle: bool,
}

impl Read for End {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut rx = self.rx.borrow_mut();
        if rx.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = if self.trickle { 1 } else { rx.len() }.min(buf.len());
        for (slot, byte) in buf.iter_mut().zip(rx.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for End {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.borrow_mut().extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pipe(trickle: bool) -> (End, End) {
    let a = Queue::default();
    let b = Queue::default();
    (
        End {
            rx: Rc::clone(&a),
            tx: Rc::clone(&b),
            trickle,
        },
        End {
            rx: b,
            tx: a,
            trickle,
        },
    )
}

fn sessions() -> (TlsSession, TlsSession) {
    sessions_with(false)
}

/// A client and a server session; `tls12`: the client offers TLS 1.2 only.
fn sessions_with(tls12: bool) -> (TlsSession, TlsSession) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let server = crate::tls::server_config_from_der(vec![cert.clone()], key).unwrap();
    let client = if tls12 {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        std::sync::Arc::new(config)
    } else {
        crate::tls::client_config(&[cert], false).unwrap()
    };
    let name = ServerName::try_from("localhost").unwrap();
    (
        TlsSession::client(client, name).unwrap(),
        TlsSession::server(server).unwrap(),
    )
}

/// Reads what `session` has (until `WouldBlock`), appending it to `got`.
fn drain(session: &mut TlsSession, io: &mut End, buf: &mut [u8], got: &mut Vec<u8>) {
    for _ in 0..1_000_000 {
        match session.read(io, buf).unwrap() {
            TlsRead::Bytes(n) => got.extend_from_slice(&buf[..n]),
            TlsRead::WouldBlock => return,
            TlsRead::Eof => panic!("unexpected end"),
        }
    }
    panic!("the reads did not end");
}

/// Encrypts and sends all of `data`.
fn send_all(session: &mut TlsSession, io: &mut End, mut data: &[u8]) {
    while !data.is_empty() {
        let n = session.encrypt(data).unwrap();
        assert!(n > 0, "nothing encrypted");
        data = &data[n..];
        session.send(io).unwrap();
    }
}

/// Runs the handshake; each side reads with `buf`.
/// A client and a server session over a pipe, handshake done.
fn connected() -> (TlsSession, TlsSession, End, End) {
    let (mut client, mut server) = sessions();
    let (mut c, mut s) = pipe(false);
    handshake(&mut client, &mut server, &mut c, &mut s);
    (client, server, c, s)
}

fn handshake(client: &mut TlsSession, server: &mut TlsSession, c: &mut End, s: &mut End) {
    let mut buf = [0u8; 64];
    let mut nothing = Vec::new();
    for _ in 0..100_000 {
        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            return;
        }
        drain(client, c, &mut buf, &mut nothing);
        client.send(c).ok();
        drain(server, s, &mut buf, &mut nothing);
        server.send(s).ok();
    }
    panic!("no handshake");
}

#[test]
fn trickled_records_arrive_whole_and_idle_sessions_hold_no_buffers() {
    let (mut client, mut server) = sessions();
    let (mut c, mut s) = pipe(true);
    handshake(&mut client, &mut server, &mut c, &mut s);
    // 40 KiB (three records), read a byte of TLS at a time into a 1 KiB
    // buffer: every partial record is kept until it is whole.
    let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    send_all(&mut client, &mut c, &data);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    drain(&mut server, &mut s, &mut buf, &mut got);
    assert_eq!(got, data);
    // And back, in one read each.
    let (mut c2, mut s2) = (c, s);
    c2.trickle = false;
    s2.trickle = false;
    send_all(&mut server, &mut s2, b"pong");
    let mut back = Vec::new();
    drain(&mut client, &mut c2, &mut buf, &mut back);
    assert_eq!(back, b"pong");
    // Idle: the buffers are freed.
    server.release();
    client.release();
    assert_eq!(server.held(), 0);
    assert_eq!(client.held(), 0);
}

#[test]
fn tls_1_2_works_the_same() {
    let (mut client, mut server) = sessions_with(true);
    let (mut c, mut s) = pipe(true);
    handshake(&mut client, &mut server, &mut c, &mut s);
    let data = vec![0x5A; 20_000];
    send_all(&mut client, &mut c, &data);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    drain(&mut server, &mut s, &mut buf, &mut got);
    assert_eq!(got, data);
    send_all(&mut server, &mut s, b"ok");
    let mut back = Vec::new();
    drain(&mut client, &mut c, &mut buf, &mut back);
    assert_eq!(back, b"ok");
    server.close_notify().unwrap();
    server.send(&mut s).unwrap();
    c.trickle = false;
    assert!(matches!(
        client.read(&mut c, &mut buf).unwrap(),
        TlsRead::Eof
    ));
}

#[test]
fn close_notify_reads_as_the_end_after_the_data() {
    let (mut client, mut server, mut c, mut s) = connected();
    send_all(&mut client, &mut c, b"last");
    client.close_notify().unwrap();
    client.send(&mut c).unwrap();
    let mut buf = [0u8; 64];
    assert!(matches!(
        server.read(&mut s, &mut buf).unwrap(),
        TlsRead::Bytes(4)
    ));
    assert_eq!(&buf[..4], b"last");
    assert!(matches!(
        server.read(&mut s, &mut buf).unwrap(),
        TlsRead::Eof
    ));
    // The server may still answer.
    send_all(&mut server, &mut s, b"bye");
    let mut back = Vec::new();
    drain(&mut client, &mut c, &mut buf, &mut back);
    assert_eq!(back, b"bye");
}

#[test]
fn a_bad_record_fails_with_an_alert_not_a_panic() {
    let (mut client, mut server, mut c, mut s) = connected();
    // Application data that does not decrypt.
    c.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
    c.write_all(&[0xAB; 32]).unwrap();
    let mut buf = [0u8; 64];
    let failure = server.read(&mut s, &mut buf).unwrap_err();
    assert!(matches!(failure, TlsFailure::Tls(_)), "{failure:?}");
    server.send(&mut s).unwrap();
    // The client reads the server's alert.
    match client.read(&mut c, &mut buf) {
        Err(TlsFailure::Tls(rustls::Error::AlertReceived(_))) => {}
        other => panic!("{other:?}"),
    }
    // Later calls report the failure again.
    assert!(server.read(&mut s, &mut buf).is_err());
}

#[test]
fn a_record_longer_than_tls_allows_is_refused_before_it_is_buffered() {
    let (mut client, mut server, mut c, mut s) = connected();
    server.release();
    // A header announcing 65,535 bytes (TLS allows 18,432), then 64 KiB.
    c.write_all(&[0x17, 0x03, 0x03, 0xFF, 0xFF]).unwrap();
    c.write_all(&[0u8; 64 << 10]).unwrap();
    let mut buf = [0u8; 64];
    let failure = server.read(&mut s, &mut buf).unwrap_err();
    assert!(matches!(failure, TlsFailure::Tls(_)), "{failure:?}");
    // One read of at most a record's size was taken.
    assert!(server.held() <= 32 << 10, "{}", server.held());
    server.send(&mut s).unwrap();
    assert!(matches!(
        client.read(&mut c, &mut buf),
        Err(TlsFailure::Tls(rustls::Error::AlertReceived(_)))
    ));
}

#[test]
fn records_that_arrived_together_are_read_in_one_call() {
    let (mut client, mut server, mut c, mut s) = connected();
    // 100 KiB: seven records, all in the socket at once.
    let data: Vec<u8> = (0..100u32 << 10).map(|i| (i % 253) as u8).collect();
    send_all(&mut client, &mut c, &data);
    let mut buf = vec![0u8; 256 << 10];
    match server.read(&mut s, &mut buf).unwrap() {
        TlsRead::Bytes(n) => assert_eq!(&buf[..n], &data[..]),
        other => panic!("{other:?}"),
    }
    // It read until the socket was empty, and says so.
    assert!(server.drained());
    assert!(matches!(
        server.read(&mut s, &mut buf).unwrap(),
        TlsRead::WouldBlock
    ));
    // A buffer smaller than the data: filled, the rest kept for the next
    // read, nothing lost.
    send_all(&mut client, &mut c, &data);
    let mut small = vec![0u8; 30 << 10];
    let mut got = Vec::new();
    match server.read(&mut s, &mut small).unwrap() {
        TlsRead::Bytes(n) => got.extend_from_slice(&small[..n]),
        other => panic!("{other:?}"),
    }
    assert_eq!(got.len(), small.len(), "the buffer filled");
    assert!(!server.drained());
    drain(&mut server, &mut s, &mut small, &mut got);
    assert_eq!(got, data);
}

#[test]
fn part_of_a_record_waiting_for_the_rest_keeps_a_small_buffer() {
    let (mut client, mut server, mut c, mut s) = connected();
    let data: Vec<u8> = (0..100u32 << 10).map(|i| (i % 249) as u8).collect();
    send_all(&mut client, &mut c, &data);
    // The last 10 bytes of the last record are late.
    let late: Vec<u8> = {
        let mut wire = s.rx.borrow_mut();
        let at = wire.len() - 10;
        wire.drain(at..).collect()
    };
    let mut buf = vec![0u8; 256 << 10];
    let mut got = Vec::new();
    drain(&mut server, &mut s, &mut buf, &mut got);
    assert!(got.len() < data.len() && data.starts_with(&got));
    // Idle, mid-record: what is held is about a record, not a read-ahead.
    server.release();
    assert!(server.held() <= 40 << 10, "{}", server.held());
    s.rx.borrow_mut().extend(late);
    drain(&mut server, &mut s, &mut buf, &mut got);
    assert_eq!(got, data);
}

#[test]
fn thousands_of_tiny_records_in_one_socket_read_all_arrive() {
    let (mut client, mut server, mut c, mut s) = connected();
    // A record per byte (a browser sends a record per message): more
    // records than rustls is stepped through per pass.
    let data: Vec<u8> = (0..3_000u32).map(|i| (i % 241) as u8).collect();
    for byte in &data {
        send_all(&mut client, &mut c, core::slice::from_ref(byte));
    }
    let mut buf = vec![0u8; 256 << 10];
    let mut got = Vec::new();
    // As the event loop reads: until a read says the socket is empty.
    for _ in 0..100 {
        match server.read(&mut s, &mut buf).unwrap() {
            TlsRead::Bytes(n) => {
                got.extend_from_slice(&buf[..n]);
                if server.drained() {
                    break;
                }
            }
            TlsRead::WouldBlock => break,
            TlsRead::Eof => panic!("unexpected end"),
        }
    }
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
}
