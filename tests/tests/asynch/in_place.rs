//! Large echoes without a copy: a server's `respond(echo)` of a message
//! that arrived whole in the read buffer goes out from there, its header
//! written in front of it, in one write; a large frame in progress limits
//! the next read to its end, so that the frames after it start the read
//! buffer again and arrive whole. Over a scripted in-memory transport that
//! cuts the client's bytes into chosen reads and records every write.

use std::collections::VecDeque;

use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use snowsocket_core::asynch::{Clock, WebSocket};
use snowsocket_core::{
    Config, Connection, CounterRng, DriverError, FrameHeader, Instant, OpCode, ServerSide,
};
use snowsocket_tests::{frame, parse_frames};

/// The example's buffers: 64 KiB and the longest header.
const BUFFER: usize = 64 * 1024 + FrameHeader::MAX_LEN;

/// The client's bytes, handed out in reads of at most the next scripted
/// size; every write's bytes kept apart.
struct Script {
    input: Vec<u8>,
    at: usize,
    reads: VecDeque<usize>,
    /// The size of each read asked for (the room the driver offered).
    asked: Vec<usize>,
    writes: Vec<Vec<u8>>,
}

impl ErrorType for Script {
    type Error = ErrorKind;
}

impl Read for Script {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.asked.push(buf.len());
        let limit = self.reads.pop_front().unwrap_or(usize::MAX);
        let n = buf.len().min(limit).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Script {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.writes.push(buf.to_vec());
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// Time stands still: no deadline is set in these tests.
struct Still;

impl Clock for Still {
    fn now(&self) -> Instant {
        Instant::from_micros(0)
    }

    async fn wait_until(&self, _deadline: Instant) {
        core::future::pending::<()>().await;
    }
}

/// A masked client frame of `len` bytes, binary or text (valid UTF-8),
/// its bytes telling its index apart.
fn message(index: usize, len: usize) -> (u8, Vec<u8>) {
    let opcode = if index.is_multiple_of(2) { 0x2 } else { 0x1 };
    let payload = (0..len).map(|i| b'a' + ((i + index) % 26) as u8).collect();
    (opcode, payload)
}

/// Echoes `messages` (lengths) cut into reads of `reads` (then as large as
/// offered) through a server with the example's buffers; returns the
/// transport once the client's bytes have run out.
async fn echo(messages: &[usize], reads: &[usize]) -> Script {
    let mut input = Vec::new();
    for (i, &len) in messages.iter().enumerate() {
        let (opcode, payload) = message(i, len);
        let key = [1, 2, 3, (i % 251) as u8];
        input.extend(frame(true, 0, opcode, Some(key), &payload));
    }
    let script = Script {
        input,
        at: 0,
        reads: reads.iter().copied().collect(),
        asked: Vec::new(),
        writes: Vec::new(),
    };
    let (mut read, mut write) = (vec![0; BUFFER], vec![0; BUFFER]);
    let config = Config::default().max_message_size(1 << 20);
    let conn = Connection::new(
        ServerSide,
        config,
        Vec::new(),
        CounterRng::new(1),
        Still.now(),
    );
    let mut ws = WebSocket::new(script, conn, Still, &mut read, 0, &mut write).unwrap();
    let mut echoed = 0;
    loop {
        match ws.respond(snowsocket_core::echo).await {
            Ok(true) => echoed += 1,
            Err(DriverError::UnexpectedEof) => break,
            other => panic!("after {echoed} echoes: {other:?}"),
        }
    }
    assert_eq!(echoed, messages.len());
    ws.flush().await.unwrap();
    ws.into_transport()
}

/// Every echo came back, unmasked, with its kind and bytes.
fn check_echoes(script: &Script, messages: &[usize]) {
    let frames = parse_frames(&script.writes.concat());
    assert_eq!(frames.len(), messages.len());
    for (i, (got, &len)) in frames.iter().zip(messages).enumerate() {
        let (opcode, payload) = message(i, len);
        let opcode = if opcode == 0x2 {
            OpCode::Binary
        } else {
            OpCode::Text
        };
        assert!(got.fin && !got.masked && got.opcode == opcode, "echo {i}");
        assert!(got.payload == payload, "echo {i}: {len} bytes differ");
    }
}

/// The writes that are one whole echo of `len` bytes each (header and
/// payload in one piece).
fn whole_writes(script: &Script, len: usize) -> usize {
    script
        .writes
        .iter()
        .filter(|w| {
            let frames = FrameHeader::decode(w).ok().flatten();
            frames.is_some_and(|(h, used)| h.payload_len == len as u64 && w.len() == used + len)
        })
        .count()
}

#[test]
fn a_large_echo_goes_out_from_the_read_buffer_in_one_write() {
    snowsocket_tests::asynch::run(async {
        let messages = [65_536, 65_536, 16_384, 40_000, 65_536, 65_536];
        let script = echo(&messages, &[]).await;
        check_echoes(&script, &messages);
        // Every read brought one whole frame (the reads end where frames
        // end), and each echo was one write, straight from the read buffer.
        assert_eq!(whole_writes(&script, 65_536), 4);
        assert_eq!(whole_writes(&script, 16_384), 1);
        assert_eq!(whole_writes(&script, 40_000), 1);
        assert_eq!(script.writes.len(), messages.len());
    });
}

#[test]
fn a_large_frame_in_progress_ends_the_next_read_at_its_end() {
    snowsocket_tests::asynch::run(async {
        // The first read stops half way through the first frame: its rest
        // is read alone, and the frames after it arrive whole again.
        let messages = [65_536, 65_536, 65_536, 100, 65_536];
        let script = echo(&messages, &[30_000]).await;
        check_echoes(&script, &messages);
        assert_eq!(script.asked[1], 65_550 - 30_000, "{:?}", script.asked);
        // The first came through the message buffer; the other three
        // 64 KiB echoes went out whole from the read buffer.
        assert_eq!(whole_writes(&script, 65_536), 4);
        // Small frames are not worth a short read: reads in pieces of
        // 1,000 bytes never make the driver ask for less than its room.
        let small = [1000; 50];
        let script = echo(&small, &[700; 80]).await;
        check_echoes(&script, &small);
        assert!(script.asked.iter().all(|&n| n > 1000), "{:?}", script.asked);
    });
}

#[test]
fn a_reply_larger_than_the_buffers_is_written_without_going_through_them() {
    snowsocket_tests::asynch::run(async {
        // 100 KB arrives in pieces (the message buffer assembles it); its
        // echo goes as a header, then the payload from the message buffer.
        let messages = [100_000, 10, 100_000];
        let script = echo(&messages, &[]).await;
        check_echoes(&script, &messages);
        assert!(
            script.writes.iter().filter(|w| w.len() == 100_000).count() == 2,
            "{:?}",
            script.writes.iter().map(Vec::len).collect::<Vec<_>>()
        );
    });
}
