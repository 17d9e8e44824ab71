//! Hand-made frames against the server: its choice among offers, its
//! compressed echo, and every violation with the RFC's close code.

use super::*;

/// The RFC 6455 §1.3 key.
const KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";

/// A raw client: hand-made frames out, the server's frames read with
/// their RSV1 bit and inflated by a core client connection.
pub(crate) struct RawDeflate {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Our compressor (client role), once negotiated.
    tx: Option<Compressor>,
    /// A core client connection that inflates what the server sends.
    rx: Connection<Vec<u8>, XorShiftRng>,
    rng: XorShiftRng,
}

/// What the server sent: a message (with whether its first frame had
/// RSV1) or a Close code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Got {
    Text(bool, String),
    Binary(bool, Vec<u8>),
    Close(Option<u16>),
    Eof,
}

impl RawDeflate {
    /// Connects and sends `offer` as the `Sec-WebSocket-Extensions` value
    /// (none if `None`); the server's answer is checked with the core's
    /// client rules against `expect` (what the offer allows). Returns the
    /// client and the answer's value.
    pub(crate) fn connect(
        server: &ServerHandle,
        offer: Option<&str>,
        expect: &DeflateConfig,
    ) -> (Self, Option<String>) {
        let mut stream = TcpStream::connect(server.local_addr()).unwrap();
        stream.set_read_timeout(Some(SLOW_WAIT)).unwrap();
        let mut request = String::from(
            "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n",
        );
        if let Some(offer) = offer {
            request.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (params, answer, consumed) = loop {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "EOF before the answer");
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [handshake::EMPTY_HEADER; 32];
            match handshake::parse_response_with_deflate(
                &buf,
                &mut headers,
                KEY,
                &[],
                Some(expect),
                &Default::default(),
            )
            .unwrap()
            {
                handshake::Parsed::Incomplete => continue,
                handshake::Parsed::Complete {
                    value: (response, params),
                    consumed,
                } => {
                    let answer = response
                        .header("Sec-WebSocket-Extensions")
                        .map(|v| String::from_utf8(v.to_vec()).unwrap());
                    break (params, answer, consumed);
                }
            }
        };
        buf.drain(..consumed);
        let mut rx = Connection::new(
            Role::Client,
            QUIET.max_message_size(64 << 20).max_frame_size(64 << 20),
            Vec::new(),
            XorShiftRng::new(1),
            Instant::ZERO,
        );
        if let Some(p) = &params {
            rx.enable_deflate(p, 6);
        }
        let raw = Self {
            stream,
            buf,
            tx: params.map(|p| Compressor::new(Role::Client, &p, 6)),
            rx,
            rng: XorShiftRng::new(9),
        };
        (raw, answer)
    }

    fn mask(&mut self) -> [u8; 4] {
        let b = self.rng.bytes(4);
        [b[0], b[1], b[2], b[3]]
    }

    /// Sends a message compressed by our compressor.
    pub(crate) fn send_compressed(&mut self, kind: MessageKind, payload: &[u8]) {
        let mask = Some(self.mask());
        let mut frame = Vec::new();
        self.tx
            .as_mut()
            .unwrap()
            .write_message(kind, payload, mask, &mut frame);
        self.stream.write_all(&frame).unwrap();
    }

    /// Sends one frame with the given first byte (FIN, RSV, opcode) and a
    /// payload, masked.
    pub(crate) fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let header = FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: Some(self.mask()),
            payload_len: payload.len() as u64,
        };
        let mut frame = vec![0u8; header.encoded_len() + payload.len()];
        snowsocket_core::encode_frame(header, payload, &mut frame).unwrap();
        frame[0] = first;
        self.stream.write_all(&frame).unwrap();
    }

    /// The next message or Close from the server.
    pub(crate) fn next(&mut self) -> Got {
        let mut chunk = vec![0u8; 64 * 1024];
        // RSV1 of the first frame of the message being read.
        let mut rsv1 = None;
        loop {
            // Whole frames only: the RSV1 bit is read from each header.
            while let Some(len) = frame_len(&self.buf) {
                let first = self.buf[0];
                if first & 0x0f != 0 && first & 0x08 == 0 {
                    rsv1.get_or_insert(first & 0x40 != 0);
                }
                let mut frame: Vec<u8> = self.buf.drain(..len).collect();
                let (_, event) = self.rx.handle_read(&mut frame, Instant::ZERO).unwrap();
                let compressed = rsv1.unwrap_or(false);
                match event {
                    Some(Event::Text(t)) => return Got::Text(compressed, t.to_owned()),
                    Some(Event::Binary(b)) => return Got::Binary(compressed, b.to_vec()),
                    Some(Event::Close(c)) => return Got::Close(c.map(|c| c.code.0)),
                    _ => {}
                }
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Got::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Got::Eof,
                Err(e) => panic!("reading: {e}"),
            }
        }
    }
}

/// The length of the whole frame at the start of `buf`, if it is there.
fn frame_len(buf: &[u8]) -> Option<usize> {
    let mut head = [0u8; FrameHeader::MAX_LEN];
    let n = buf.len().min(head.len());
    head[..n].copy_from_slice(&buf[..n]);
    head[0] &= !0x40;
    let (h, used) = FrameHeader::decode(&head[..n]).unwrap()?;
    let total = used + usize::try_from(h.payload_len).unwrap();
    (buf.len() >= total).then_some(total)
}

pub(crate) fn deflate_server(options: PerMessageDeflate) -> ServerHandle {
    let config = ServerConfig::default()
        .connection(QUIET)
        .permessage_deflate(options);
    start(config, None).0
}

#[test]
fn server_picks_the_first_acceptable_offer_and_compresses_its_echo() {
    bounded(60, || {
        let server = deflate_server(PerMessageDeflate::default());
        // What the offers allow the server to answer.
        let allow = DeflateConfig::DEFAULT.client_max_window_bits(Some(15));
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (None, None),
            (Some("x-webkit-deflate-frame"), None),
            (Some("permessage-deflate"), Some("permessage-deflate")),
            (
                Some("permessage-deflate; foo, permessage-deflate; server_max_window_bits=16, permessage-deflate; client_max_window_bits"),
                Some("permessage-deflate"),
            ),
            (
                Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=\"11\""),
                Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=11"),
            ),
        ];
        for (offer, want) in cases {
            let (mut raw, answer) = RawDeflate::connect(&server, *offer, &allow);
            assert_eq!(answer.as_deref(), *want, "{offer:?}");
            if answer.is_none() {
                continue;
            }
            for (i, size) in [0usize, 10, 300, 5000, 200_000].into_iter().enumerate() {
                let text = json(size, i);
                raw.send_compressed(MessageKind::Text, text.as_bytes());
                // The echo comes back compressed (at least 64 bytes: the
                // default minimum size).
                assert_eq!(raw.next(), Got::Text(size >= 64, text), "{offer:?} {size}");
            }
        }
        server.shutdown();
    });
}

#[test]
fn violations_close_with_the_rfc_codes() {
    bounded(60, || {
        let server = deflate_server(PerMessageDeflate::default());
        let allow = DeflateConfig::DEFAULT;
        let offer = Some("permessage-deflate");
        // RSV1 on a control frame (a Ping): 1002.
        let (mut raw, _) = RawDeflate::connect(&server, offer, &allow);
        raw.send_frame(0x80 | 0x40 | 0x9, b"hi");
        assert_eq!(raw.next(), Got::Close(Some(1002)));
        // RSV1 on a continuation frame: 1002.
        let (mut raw, _) = RawDeflate::connect(&server, offer, &allow);
        let mut c = Compressor::new(Role::Client, &plain_params(), 6);
        let mut whole = Vec::new();
        c.write_message(
            MessageKind::Text,
            json(3000, 0).as_bytes(),
            None,
            &mut whole,
        );
        let (_, used) = FrameHeader::decode(&{
            let mut h = whole.clone();
            h[0] &= !0x40;
            h
        })
        .unwrap()
        .unwrap();
        let payload = whole[used..].to_vec();
        let (a, b) = payload.split_at(payload.len() / 2);
        raw.send_frame(0x40 | 0x1, a); // first frame: text, RSV1, no FIN
        raw.send_frame(0x80 | 0x40, b); // continuation with RSV1
        assert_eq!(raw.next(), Got::Close(Some(1002)));
        // The same message with RSV1 on the first frame only: accepted.
        let (mut raw, _) = RawDeflate::connect(&server, offer, &allow);
        raw.send_frame(0x40 | 0x1, a);
        raw.send_frame(0x80, b);
        assert_eq!(raw.next(), Got::Text(true, json(3000, 0)));
        // Data that is not DEFLATE: 1007.
        let (mut raw, _) = RawDeflate::connect(&server, offer, &allow);
        raw.send_frame(0x80 | 0x40 | 0x2, &[0xff; 16]);
        assert_eq!(raw.next(), Got::Close(Some(1007)));
        // Inflated text that is not UTF-8: 1007.
        let (mut raw, _) = RawDeflate::connect(&server, offer, &allow);
        let mut bad = json(2000, 0).into_bytes();
        bad[1500] = 0xc0;
        let mut frame = Vec::new();
        Compressor::new(Role::Client, &plain_params(), 6).write_message(
            MessageKind::Text,
            &bad,
            Some([1, 2, 3, 4]),
            &mut frame,
        );
        raw.stream.write_all(&frame).unwrap();
        assert_eq!(raw.next(), Got::Close(Some(1007)));
        // RSV1 without the extension negotiated: 1002.
        let (mut raw, answer) = RawDeflate::connect(&server, None, &allow);
        assert_eq!(answer, None);
        raw.send_frame(0x80 | 0x40 | 0x1, b"x");
        assert_eq!(raw.next(), Got::Close(Some(1002)));
        server.shutdown();
    });
}

/// The agreement on a plain `permessage-deflate` offer (context takeover
/// both ways, 15-bit windows).
fn plain_params() -> DeflateParams {
    let headers = [handshake::Header {
        name: "Sec-WebSocket-Extensions",
        value: b"permessage-deflate",
    }];
    snowsocket_core::deflate::negotiate(&headers, &DeflateConfig::DEFAULT).unwrap()
}
