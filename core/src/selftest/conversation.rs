//! Self-tests of two connections talking: the opening handshake, then
//! messages, fragments, heartbeats and the close handshake, on virtual time.

use super::*;

pub(super) fn handshake_round_trip() -> Result<(), &'static str> {
    let limits = HandshakeLimits::DEFAULT;
    let mut rng = SeqRng::new(b"the sample nonce");
    let key = handshake::generate_key(&mut rng);
    let offered = ["chat.v2", "chat"];
    let request = ClientRequest {
        origin: Some("http://example.com"),
        subprotocols: &offered,
        ..ClientRequest::new("server.example.com", "/chat?room=1")
    };
    let mut req = [0u8; 512];
    let n = ok!(handshake::write_request(&mut req, &request, &key));
    // Every prefix of the request is incomplete.
    for cut in 0..n {
        let mut headers = [handshake::EMPTY_HEADER; 16];
        let parsed = handshake::parse_request(&req[..cut], &mut headers, &limits);
        ensure!(matches!(parsed, Ok(Parsed::Incomplete)));
    }
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let parsed = ok!(handshake::parse_request(&req[..n], &mut headers, &limits));
    let Some((req_parsed, consumed)) = parsed.into_complete() else {
        return Err("request incomplete");
    };
    ensure!(consumed == n);
    ensure!(req_parsed.path() == "/chat" && req_parsed.query() == Some("room=1"));
    ensure!(req_parsed.host() == "server.example.com");
    ensure!(req_parsed.origin() == Some("http://example.com"));
    ensure!(req_parsed.key().as_bytes() == b"dGhlIHNhbXBsZSBub25jZQ==");
    ensure!(req_parsed.offers_subprotocol("chat") && !req_parsed.offers_subprotocol("x"));
    let mut resp = [0u8; 256];
    ensure!(handshake::write_accept(&mut resp, &req_parsed, Some("x"), &[]).is_err());
    let m = ok!(handshake::write_accept(
        &mut resp,
        &req_parsed,
        Some("chat"),
        &[]
    ));
    let accept = b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    ensure!(resp[..m].windows(accept.len()).any(|w| w == accept));
    // The client checks the answer; frames sent right after it are left over.
    resp[m..m + UNMASKED_HELLO.len()].copy_from_slice(UNMASKED_HELLO);
    let total = m + UNMASKED_HELLO.len();
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let parsed = handshake::parse_response(&resp[..total], &mut headers, &key, &offered, &limits);
    let Some((response, consumed)) = ok!(parsed).into_complete() else {
        return Err("response incomplete");
    };
    ensure!(consumed == m && response.subprotocol() == Some("chat"));
    // A wrong key, or an unoffered subprotocol, is refused.
    let other = handshake::generate_key(&mut SeqRng::new(b"another nonce!!!"));
    let mut headers = [handshake::EMPTY_HEADER; 16];
    ensure!(
        handshake::parse_response(&resp[..m], &mut headers, &other, &offered, &limits).is_err()
    );
    let mut headers = [handshake::EMPTY_HEADER; 16];
    ensure!(handshake::parse_response(&resp[..m], &mut headers, &key, &["x"], &limits).is_err());
    // A request without the key is answered 400; a plain GET, 426.
    let bad = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let err = handshake::parse_request(bad, &mut headers, &limits).err();
    ensure!(err.map(HandshakeError::status) == Some(400));
    let plain = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut headers = [handshake::EMPTY_HEADER; 16];
    let err = handshake::parse_request(plain, &mut headers, &limits).err();
    ensure!(err.map(HandshakeError::status) == Some(426));
    let n = ok!(err.map_or(Ok(0), |e| e.write_response(&mut resp)));
    ensure!(resp[..n].starts_with(b"HTTP/1.1 426 "));
    Ok(())
}

pub(super) fn conversation_messages() -> Result<(), &'static str> {
    let now = Instant::ZERO;
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    let mut wire = [0u8; 300];
    let n = ok!(client.send_text("héllo, server", &mut wire));
    deliver(
        &mut server,
        now,
        &wire[..n],
        &[Event::Text("héllo, server")],
    )?;
    let n = ok!(server.send_text("héllo, client", &mut wire));
    deliver(
        &mut client,
        now,
        &wire[..n],
        &[Event::Text("héllo, client")],
    )?;
    let payload = [0xA5u8; 200];
    let n = ok!(client.send_binary(&payload, &mut wire));
    ensure!(n == client.frame_len(200));
    deliver(&mut server, now, &wire[..n], &[Event::Binary(&payload)])?;
    let n = ok!(server.send_binary(&[], &mut wire));
    deliver(&mut client, now, &wire[..n], &[Event::Binary(&[])])?;
    // Several frames in one read.
    let a = ok!(client.send_text("one", &mut wire));
    let b = ok!(client.send_binary(b"two", &mut wire[a..]));
    let c = ok!(client.ping(b"three", &mut wire[a + b..]));
    let expected = [
        Event::Text("one"),
        Event::Binary(b"two"),
        Event::Ping(b"three"),
    ];
    let fed = feed(
        &mut server,
        now,
        &mut pieces(&wire[..a + b + c], a + b + c, 1),
        &mut |i, e| expected.get(i) == Some(e),
    )?;
    ensure!(fed == Fed::Events(3));
    ensure!(
        pump(&mut server, &mut client, now, &mut |_, e| *e
            == Event::Pong(b"three"))?
            == 1
    );
    // The server's fixed buffer (256 bytes) bounds a message in pieces.
    ensure!(server.max_message_size() == 256);
    ensure!(server.is_open() && client.is_open());
    Ok(())
}

pub(super) fn conversation_fragmentation() -> Result<(), &'static str> {
    let now = Instant::ZERO;
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    let mut wire = [0u8; 300];
    // "κόσμε" in three fragments, a character split across two, and a Ping
    // in the middle: the Ping is reported (and answered) first.
    let text = "κόσμε".as_bytes();
    let mut n = ok!(client.send_fragment(MessageKind::Text, &text[..3], false, &mut wire));
    n += ok!(client.ping(b"mid", &mut wire[n..]));
    n += ok!(client.send_fragment(MessageKind::Text, &text[3..7], false, &mut wire[n..]));
    // A whole message may not start while a fragmented one is being sent.
    ensure!(client.send_text("x", &mut wire[n..]) == Err(SendError::FragmentInProgress));
    n += ok!(client.send_fragment(MessageKind::Text, &text[7..], true, &mut wire[n..]));
    deliver(
        &mut server,
        now,
        &wire[..n],
        &[Event::Ping(b"mid"), Event::Text("κόσμε")],
    )?;
    ensure!(
        pump(&mut server, &mut client, now, &mut |_, e| *e
            == Event::Pong(b"mid"))?
            == 1
    );
    // Binary from the server, with empty fragments.
    let mut n = ok!(server.send_fragment(MessageKind::Binary, b"", false, &mut wire));
    n += ok!(server.send_fragment(MessageKind::Binary, b"ab", false, &mut wire[n..]));
    n += ok!(server.send_fragment(MessageKind::Binary, b"", false, &mut wire[n..]));
    n += ok!(server.send_fragment(MessageKind::Binary, b"cd", true, &mut wire[n..]));
    deliver(&mut client, now, &wire[..n], &[Event::Binary(b"abcd")])?;
    // A fragmented message larger than the 256-byte buffer: 1009.
    let chunk = [b'x'; 100];
    let mut n = 0;
    for fin in [false, false, true] {
        n += ok!(server.send_fragment(MessageKind::Binary, &chunk, fin, &mut wire[n..]));
        if !fin {
            // Deliver as we go (the wire buffer holds 300 bytes).
            deliver(&mut client, now, &wire[..n], &[])?;
            n = 0;
        }
    }
    let fed = feed(
        &mut client,
        now,
        &mut pieces(&wire[..n], n, n),
        &mut |_, _| true,
    )?;
    ensure!(
        fed == Fed::Failed(
            Error::Protocol(ProtocolError::MessageTooLarge { max: 256 }),
            0
        )
    );
    // A fragmented message that is not completed in time: 1008.
    let config = QUIET.fragment_timeout(Some(Duration::from_secs(2)));
    let mut client = conn(Role::Client, config);
    let mut server = conn(Role::Server, config);
    let n = ok!(server.send_fragment(MessageKind::Text, b"part", false, &mut wire));
    deliver(&mut client, Instant::from_secs(1), &wire[..n], &[])?;
    ensure!(client.poll_timeout() == Some(Instant::from_secs(3)));
    ensure!(client.handle_timeout(Instant::from_millis(2999)).is_ok());
    ensure!(client.handle_timeout(Instant::from_secs(3)) == Err(Error::FragmentTimeout));
    let got = pump(
        &mut client,
        &mut server,
        Instant::from_secs(3),
        &mut |_, e| matches!(e, Event::Close(Some(f)) if f.code == CloseCode::POLICY_VIOLATION),
    )?;
    ensure!(got == 1 && client.is_closed());
    Ok(())
}

pub(super) fn conversation_heartbeat() -> Result<(), &'static str> {
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let mut server = conn(Role::Server, config);
    let mut client = conn(Role::Client, QUIET);
    ensure!(server.poll_timeout() == Some(Instant::from_secs(30)));
    // Nothing is due early.
    ok!(server.handle_timeout(Instant::from_secs(29)));
    ensure!(!server.wants_transmit());
    for round in 1..=3u64 {
        let due = Instant::from_secs(30 * round);
        ensure!(server.poll_timeout() == Some(due));
        ok!(server.handle_timeout(due));
        ensure!(server.wants_transmit());
        // The Ping carries 4 random bytes; the client answers it by itself.
        ensure!(
            pump(
                &mut server,
                &mut client,
                due,
                &mut |_, e| matches!(e, Event::Ping(p) if p.len() == 4)
            )? == 1
        );
        // Waiting for the Pong: the next deadline is the pong timeout.
        ensure!(server.poll_timeout() == Some(due + Duration::from_secs(10)));
        let back = due + Duration::from_secs(1);
        ensure!(
            pump(
                &mut client,
                &mut server,
                back,
                &mut |_, e| matches!(e, Event::Pong(p) if p.len() == 4)
            )? == 1
        );
        // Answered: the pong timer is off, the next Ping is one interval later.
        ensure!(server.poll_timeout() == Some(due + Duration::from_secs(30)));
        ok!(server.handle_timeout(due + Duration::from_secs(10)));
        ensure!(server.is_open());
    }
    // An unsolicited Pong (wrong payload) does not count as the answer.
    let due = Instant::from_secs(120);
    ok!(server.handle_timeout(due));
    let mut wire = [0u8; 139];
    let _ = ok!(server.poll_transmit(&mut wire));
    let header = FrameHeader {
        fin: true,
        opcode: OpCode::Pong,
        mask: Some([1, 2, 3, 4]),
        payload_len: 4,
    };
    let at = ok!(header.encode(&mut wire));
    wire[at..at + 4].copy_from_slice(b"nope");
    apply_mask(&mut wire[at..at + 4], [1, 2, 3, 4], 0);
    deliver(&mut server, due, &wire[..at + 4], &[Event::Pong(b"nope")])?;
    ensure!(server.poll_timeout() == Some(due + Duration::from_secs(10)));
    Ok(())
}

pub(super) fn conversation_pong_timeout() -> Result<(), &'static str> {
    let config = Config::DEFAULT
        .ping_interval(Some(Duration::from_secs(30)))
        .pong_timeout(Duration::from_secs(10));
    let mut client = conn(Role::Client, config);
    let mut server = conn(Role::Server, QUIET);
    let ping_at = Instant::from_secs(30);
    ok!(client.handle_timeout(ping_at));
    let mut wire = [0u8; 139];
    let n = ok!(client.poll_transmit(&mut wire));
    // The client's Ping is masked with the next key from its RNG.
    ensure!(n == 2 + 4 + 4 && wire[0] == 0x89 && wire[1] == 0x84);
    // The server never answers (the Pong is lost).
    ensure!(client.poll_timeout() == Some(Instant::from_secs(40)));
    ensure!(client.handle_timeout(Instant::from_millis(39_999)).is_ok());
    let r = client.handle_timeout(Instant::from_secs(40));
    ensure!(r == Err(Error::PongTimeout));
    ensure!(Error::PongTimeout.close_code() == Some(CloseCode::GOING_AWAY));
    ensure!(client.failure() == Some(Error::PongTimeout));
    ensure!(!client.is_open() && !client.is_closed());
    // The failure's Close (1001) goes out, then the client is closed.
    let got = pump(
        &mut client,
        &mut server,
        Instant::from_secs(40),
        &mut |_, e| matches!(e, Event::Close(Some(f)) if f.code == CloseCode::GOING_AWAY),
    )?;
    ensure!(got == 1 && client.is_closed());
    ensure!(client.send_text("late", &mut wire) == Err(SendError::Closed));
    // Once closed, whatever the peer still sends is discarded.
    ensure!(client.handle_read(&mut [0x81, 0], Instant::from_secs(41)) == Ok((2, None)));
    // The server replies 1001 and is closed once the reply is out.
    ensure!(server.wants_transmit());
    let n = ok!(server.poll_transmit(&mut wire));
    ensure!(wire[..n] == [0x88, 0x02, 0x03, 0xE9]);
    ensure!(server.is_closed() && server.poll_timeout().is_none());
    Ok(())
}

pub(super) fn conversation_close() -> Result<(), &'static str> {
    let now = Instant::from_secs(5);
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    ok!(client.close(CloseCode::NORMAL, "bye", now));
    ensure!(!client.is_open() && !client.is_closed());
    let mut wire = [0u8; 139];
    ensure!(client.send_text("after close", &mut wire) == Err(SendError::Closed));
    ensure!(client.close(CloseCode::NORMAL, "", now) == Err(SendError::Closed));
    ensure!(client.poll_timeout() == Some(now + Config::DEFAULT.close_timeout));
    // Data the server sent before it saw our Close is still delivered.
    let n = ok!(server.send_text("in flight", &mut wire));
    deliver(&mut client, now, &wire[..n], &[Event::Text("in flight")])?;
    let close_bye = Event::Close(Some(crate::CloseFrame {
        code: CloseCode::NORMAL,
        reason: "bye",
    }));
    ensure!(pump(&mut client, &mut server, now, &mut |_, e| *e == close_bye)? == 1);
    ensure!(!server.is_open() && server.wants_transmit());
    let echo = Event::Close(Some(crate::CloseFrame {
        code: CloseCode::NORMAL,
        reason: "",
    }));
    ensure!(pump(&mut server, &mut client, now, &mut |_, e| *e == echo)? == 1);
    ensure!(server.is_closed() && client.is_closed());
    ensure!(client.poll_timeout().is_none() && server.poll_timeout().is_none());
    // A Close with no status is answered with 1000.
    let mut client = conn(Role::Client, QUIET);
    let mut server = conn(Role::Server, QUIET);
    deliver(&mut client, now, &[0x88, 0x00], &[Event::Close(None)])?;
    let n = ok!(client.poll_transmit(&mut wire));
    ensure!(n == 8 && wire[1] == 0x82);
    deliver(&mut server, now, &wire[..n], &[echo])?;
    // A peer that never answers our Close: the close timeout ends it.
    let mut client = conn(Role::Client, QUIET);
    ok!(client.close(CloseCode::GOING_AWAY, "", now));
    let _ = ok!(client.poll_transmit(&mut wire));
    let deadline = now + Config::DEFAULT.close_timeout;
    ensure!(client
        .handle_timeout(deadline - Duration::from_millis(1))
        .is_ok());
    ensure!(client.handle_timeout(deadline) == Err(Error::CloseTimeout));
    ensure!(Error::CloseTimeout.close_code().is_none());
    Ok(())
}
