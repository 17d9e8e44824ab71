//! Size and count limits with the default configuration: 16 MiB messages,
//! 131,072 fragments; refusals come from headers, before storage grows.

use snowsocket_core::{
    Config, Connection, Error, Instant, MessageBuffer, ProtocolError, Role, SliceBuffer,
};
use snowsocket_tests::{
    close_code, feed_chunks, feed_split, frame, header, Ev, FixedRng, Outcome, QUIET,
};

const MIB16: usize = 16 << 20;

/// Feeds a server→client stream to a client over `buf`, in `chunk`-byte
/// pieces.
fn feed_client<B: MessageBuffer>(buf: B, config: Config, wire: &[u8], chunk: usize) -> Outcome {
    let mut c = Connection::new(
        Role::Client,
        config,
        buf,
        FixedRng::rfc_mask(),
        Instant::ZERO,
    );
    feed_chunks(&mut c, wire, &mut || chunk, Instant::ZERO)
}

#[test]
fn a_16_mib_message_is_accepted_with_the_defaults() {
    assert_eq!(Config::DEFAULT.max_message_size, MIB16);
    let payload: Vec<u8> = (0..MIB16).map(|i| (i % 253) as u8).collect();
    let wire = frame(true, 0, 2, None, &payload);
    // In 1 MiB pieces, so that it is assembled in the growable buffer.
    let mut buf = Vec::new();
    let o = feed_client(&mut buf, QUIET, &wire, 1 << 20);
    assert_eq!(o.error, None);
    assert_eq!(o.events.len(), 1);
    assert!(matches!(&o.events[0], Ev::Binary(b) if *b == payload));
    assert!(buf.capacity() >= MIB16);
}

#[test]
fn one_byte_over_16_mib_is_refused_from_the_header() {
    let mut buf: Vec<u8> = Vec::new();
    let mut c = Connection::new(
        Role::Client,
        QUIET,
        &mut buf,
        FixedRng::rfc_mask(),
        Instant::ZERO,
    );
    let mut wire = header(true, 0, 2, None, (MIB16 + 1) as u64);
    let err = c.handle_read(&mut wire, Instant::ZERO).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(
                ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. }
            )
        ),
        "{err:?}"
    );
    assert_eq!(err.close_code().map(|c| c.0), Some(1009));
    let mut out = [0u8; 139];
    let n = c.poll_transmit(&mut out).unwrap();
    assert_eq!(close_code(&out[..n]), Some(1009));
    drop(c);
    assert!(
        buf.capacity() < 1024,
        "the buffer grew to {}",
        buf.capacity()
    );

    // Fragmented: 16 MiB in the first fragment, then a continuation
    // declaring one byte more, refused from its header.
    let mut buf: Vec<u8> = Vec::new();
    let mut wire = header(false, 0, 2, None, MIB16 as u64);
    wire.extend(vec![7u8; MIB16]);
    let first_len = wire.len();
    wire.extend(header(true, 0, 0, None, 1));
    let o = feed_client(&mut buf, QUIET, &wire, 1 << 20);
    assert_eq!(
        o.error,
        Some(Error::Protocol(ProtocolError::MessageTooLarge {
            max: MIB16
        }))
    );
    assert!(o.fed_at_error > first_len);
    assert_eq!(o.close_code(), Some(1009));
}

/// A message made of 65,536 fragments of 64 bytes (4 MiB) passes with the
/// default fragment limit.
#[test]
fn four_mib_in_64_byte_fragments() {
    let mut wire = Vec::with_capacity(66 * 65_536);
    let mut expected = Vec::with_capacity(4 << 20);
    for i in 0..65_536u32 {
        let chunk = [(i % 251) as u8; 64];
        expected.extend_from_slice(&chunk);
        wire.extend(frame(i == 65_535, 0, u8::from(i == 0) * 2, None, &chunk));
    }
    let o = feed_client(Vec::new(), QUIET, &wire, 1 << 16);
    assert_eq!(o.error, None);
    assert_eq!(o.events, vec![Ev::Binary(expected)]);
}

/// 131,072 empty fragments are fine; the 131,073rd fails with 1008.
#[test]
fn fragment_count_limit() {
    assert_eq!(Config::DEFAULT.max_fragments, 131_072);
    let message = |frames: u32| {
        let mut wire = Vec::with_capacity(2 * frames as usize);
        for i in 0..frames {
            wire.extend(frame(i + 1 == frames, 0, u8::from(i == 0), None, b""));
        }
        wire
    };
    let o = feed_client(Vec::new(), QUIET, &message(131_072), usize::MAX);
    assert_eq!(o.error, None);
    assert_eq!(o.events, vec![Ev::Text(String::new())]);

    let wire = message(131_073);
    let o = feed_client(Vec::new(), QUIET, &wire, 4096);
    assert_eq!(
        o.error,
        Some(Error::Protocol(ProtocolError::TooManyFragments {
            max: 131_072
        }))
    );
    assert_eq!(o.close_code(), Some(1008));
    assert!(o.events.is_empty());
}

/// A fixed buffer lowers the message limit to its size, and a message is
/// accepted or refused the same way however it arrives.
#[test]
fn fixed_buffers_bound_the_message_size() {
    for chunk in [1, 7, 100, usize::MAX] {
        // Exactly the buffer size: accepted, whole or fragmented.
        let mut store = [0u8; 100];
        let wire = frame(true, 0, 2, None, &[1; 100]);
        let o = feed_client(SliceBuffer::new(&mut store[..]), QUIET, &wire, chunk);
        assert_eq!(o.events, vec![Ev::Binary(vec![1; 100])], "chunk {chunk}");

        let mut wire = frame(false, 0, 2, None, &[1; 60]);
        wire.extend(frame(true, 0, 0, None, &[2; 40]));
        let o = feed_client(heapless::Vec::<u8, 100>::new(), QUIET, &wire, chunk);
        assert_eq!(o.events.len(), 1, "chunk {chunk}");

        // One more: refused from a header, with 1009.
        let wire = frame(true, 0, 2, None, &[1; 101]);
        let o = feed_client(SliceBuffer::new([0u8; 100]), QUIET, &wire, chunk);
        assert_eq!(
            o.error,
            Some(Error::Protocol(ProtocolError::MessageTooLarge { max: 100 })),
            "chunk {chunk}"
        );
        assert_eq!(
            o.fed_at_error,
            chunk.max(2).min(wire.len()),
            "refused at the header"
        );
        let mut wire = frame(false, 0, 2, None, &[1; 60]);
        wire.extend(frame(true, 0, 0, None, &[2; 41]));
        let o = feed_client(heapless::Vec::<u8, 100>::new(), QUIET, &wire, chunk);
        assert_eq!(o.close_code(), Some(1009), "chunk {chunk}");
    }
}

/// A configured frame limit below the message limit refuses a large frame
/// even when the message would fit.
#[test]
fn frame_limit() {
    let config = QUIET.max_frame_size(1000);
    let o = feed_split(
        Role::Client,
        config,
        &frame(true, 0, 2, None, &[0; 1000]),
        &[],
    );
    assert_eq!(o.error, None);
    let o = feed_split(Role::Client, config, &header(true, 0, 2, None, 1001), &[]);
    assert_eq!(
        o.error,
        Some(Error::Protocol(ProtocolError::FrameTooLarge {
            len: 1001,
            max: 1000
        }))
    );
    assert_eq!(o.close_code(), Some(1009));
    // Control frames are bounded by 125 bytes, not by this limit.
    let config = QUIET.max_frame_size(10);
    let o = feed_split(
        Role::Client,
        config,
        &frame(true, 0, 9, None, &[0; 100]),
        &[],
    );
    assert_eq!(o.events, vec![Ev::Ping(vec![0; 100])]);
}
