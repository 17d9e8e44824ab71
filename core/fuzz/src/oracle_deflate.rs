//! The permessage-deflate targets of the fuzz oracle (see `oracle.rs`):
//! a connection with the extension on, fed arbitrary or compressed input,
//! and the negotiation of both roles on arbitrary offers and answers.

use snowsocket_core::deflate::{negotiate, Compressor, DeflateConfig, DeflateParams};
use snowsocket_core::handshake::Header;

use super::*;

/// A configuration from one byte: bit 0 `server_no_context_takeover`, bit
/// 1 `client_no_context_takeover`, bits 2–4 `server_max_window_bits` (0:
/// none, n: 7 + n), bits 5–7 `client_max_window_bits` (likewise).
fn config_from(b: u8) -> DeflateConfig {
    let bits = |n: u8| (n != 0).then_some(7 + n);
    DeflateConfig::DEFAULT
        .server_no_context_takeover(b & 1 != 0)
        .client_no_context_takeover(b & 2 != 0)
        .server_max_window_bits(bits((b >> 2) & 7))
        .client_max_window_bits(bits(b >> 5))
}

fn extensions(value: &[u8]) -> [Header<'_>; 1] {
    [Header {
        name: "Sec-WebSocket-Extensions",
        value,
    }]
}

/// The agreement our client's offer from `b` gets from a default server.
fn params_from(b: u8) -> DeflateParams {
    let offer = config_from(b).offer();
    negotiate(&extensions(offer.as_bytes()), &DeflateConfig::DEFAULT)
        .expect("a default server accepts every offer of ours")
}

/// A connection with permessage-deflate on. `data[0]`: bit 7 the role
/// (client if set), bits 0–6 the parameters ([`config_from`]); bit 5 of
/// `data[2]` (the flags) makes it a round trip: `data[3..]` is compressed
/// by the peer's compressor and must come out as the same message;
/// otherwise the rest is as for `server_connection` (seed, flags, wire).
pub fn deflate_connection(data: &[u8]) {
    let [p, rest @ ..] = data else {
        return;
    };
    let role = if p & 0x80 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let params = params_from(p & 0x7f);
    let (seed, flags, wire) = match rest {
        [a, b, wire @ ..] => (*a, *b, wire),
        _ => (0, 0, rest),
    };
    if flags & 0x20 != 0 {
        return round_trip(role, &params, seed, wire);
    }
    if flags & 1 == 1 {
        let config = Config::DEFAULT
            .max_frame_size(300)
            .max_message_size(4096)
            .max_fragments(8)
            .ping_interval(Some(Duration::from_secs(2)))
            .pong_timeout(Duration::from_secs(1));
        let mut storage = [0u8; 4096];
        let buf = SliceBuffer::new(&mut storage[..]);
        drive(role, config, buf, (seed, flags), wire, Some(&params));
    } else {
        let config = Config::DEFAULT.max_message_size(1 << 20);
        drive(role, config, Vec::new(), (seed, flags), wire, Some(&params));
    }
}

/// `message` compressed by the peer and fed to a connection in `role`
/// (at `seed`'s chunk sizes): the same message comes out, twice (the
/// second time with the windows of the first, if they are kept).
fn round_trip(role: Role, params: &DeflateParams, seed: u8, message: &[u8]) {
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut tx = Compressor::new(peer, params, seed % 10);
    let mut wire = Vec::new();
    let mask = (peer == Role::Client).then_some([seed, 1, 2, 3]);
    tx.write_message(MessageKind::Binary, message, mask, &mut wire);
    tx.write_message(MessageKind::Binary, message, mask, &mut wire);
    let mut conn = Connection::new(
        role,
        Config::DEFAULT.ping_interval(None),
        Vec::new(),
        CountingRng(seed),
        Instant::ZERO,
    );
    conn.enable_deflate(params, 6);
    let step = usize::from(seed % 16) + 1;
    let mut pending = Vec::new();
    let mut got = 0;
    for chunk in wire.chunks(step) {
        pending.extend_from_slice(chunk);
        let mut start = 0;
        loop {
            let (used, event) = conn
                .handle_read(&mut pending[start..], Instant::ZERO)
                .expect("a message our compressor wrote is accepted");
            start += used;
            match event {
                Some(Event::Binary(b)) => {
                    assert!(b == message, "round trip changed the message");
                    got += 1;
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => break,
            }
        }
        pending.drain(..start);
    }
    assert_eq!(got, 2, "both messages came out");
}

/// The negotiation. `data[0]`: our client's offer ([`config_from`]);
/// `data[1]`: the server's configuration; the rest: an arbitrary
/// `Sec-WebSocket-Extensions` value, tried as a client's offer and as a
/// server's answer to our offer.
pub fn deflate_negotiation(data: &[u8]) {
    let [a, b, value @ ..] = data else {
        return;
    };
    let (offer, server) = (config_from(*a), config_from(*b));
    let in_range = |bits: Option<u8>| bits.is_none_or(|b| (8..=15).contains(&b));

    // Arbitrary offers: accepted or declined, never a panic; an accepted
    // one is answered within the RFC's ranges.
    if let Some(p) = negotiate(&extensions(value), &server) {
        assert!(in_range(p.server_max_window_bits) && in_range(p.client_max_window_bits));
        assert!(p.answer().as_bytes().starts_with(b"permessage-deflate"));
        // Its answer is one that a client sending exactly `value` could
        // not tell from its own rules; at least ours parses it.
        let _ = answer_checked(&offer, p.answer().as_bytes());
    }

    // Arbitrary answers to our offer: refused, or within what we offered.
    if let Ok(Some(p)) = answer_checked(&offer, value) {
        assert!(in_range(p.server_max_window_bits) && in_range(p.client_max_window_bits));
        if let (Some(got), Some(asked)) = (p.server_max_window_bits, offer.server_max_window_bits) {
            assert!(got <= asked, "a larger server window than asked");
        }
        if let Some(got) = p.client_max_window_bits {
            let allowed = offer.client_max_window_bits.expect("offered");
            assert!(got <= allowed, "a larger client window than allowed");
        }
        assert!(p.server_no_context_takeover || !offer.server_no_context_takeover);
    }

    // Our offer against our server: always agreed, the same both ways.
    let ours = offer.offer();
    let agreed = negotiate(&extensions(ours.as_bytes()), &server).expect("our offer is valid");
    let client_side = answer_checked(&offer, agreed.answer().as_bytes())
        .expect("our client accepts our server's answer")
        .expect("an answer");
    assert_eq!(
        client_side.server_max_window_bits,
        agreed.server_max_window_bits
    );
    assert_eq!(
        client_side.client_max_window_bits,
        agreed.client_max_window_bits
    );
    assert_eq!(
        client_side.server_no_context_takeover,
        agreed.server_no_context_takeover
    );
    assert!(client_side.client_no_context_takeover || !agreed.client_no_context_takeover);
}

/// Our client's check of `answer` to `offer`, through a whole 101 response.
fn answer_checked(
    offer: &DeflateConfig,
    answer: &[u8],
) -> Result<Option<DeflateParams>, HandshakeError> {
    let mut response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Extensions: "
        .to_vec();
    response.extend_from_slice(answer);
    response.extend_from_slice(b"\r\n\r\n");
    let mut headers = [EMPTY_HEADER; 16];
    match handshake::parse_response_with_deflate(
        &response,
        &mut headers,
        b"dGhlIHNhbXBsZSBub25jZQ==",
        &[],
        Some(offer),
        &HandshakeLimits::default(),
    )? {
        Parsed::Complete { value, .. } => Ok(value.1),
        // A value with CR or LF ends the head early: whatever httparse made
        // of it, the answer did not arrive whole.
        Parsed::Incomplete => Ok(None),
    }
}
