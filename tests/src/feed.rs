//! Owned events and feeding.

use super::*;

/// An [`Event`] that owns its payload, for collecting and comparing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// [`Event::Text`].
    Text(String),
    /// [`Event::Binary`].
    Binary(Vec<u8>),
    /// [`Event::Ping`].
    Ping(Vec<u8>),
    /// [`Event::Pong`].
    Pong(Vec<u8>),
    /// [`Event::Close`]: code and reason.
    Close(Option<(u16, String)>),
}

impl From<Event<'_>> for Ev {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Text(t) => Self::Text(t.to_owned()),
            Event::Binary(b) => Self::Binary(b.to_vec()),
            Event::Ping(p) => Self::Ping(p.to_vec()),
            Event::Pong(p) => Self::Pong(p.to_vec()),
            Event::Close(c) => Self::Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
            other => panic!("unknown event {other:?}"),
        }
    }
}

/// What a connection made of some input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The events, in order.
    pub events: Vec<Ev>,
    /// The error that failed the connection, if any.
    pub error: Option<Error>,
    /// Everything `poll_transmit` handed out (after each read and at the end).
    pub sent: Vec<u8>,
    /// How many input bytes had been fed when the error came (all of them
    /// when there was none).
    pub fed_at_error: usize,
}

impl Outcome {
    /// The code of the Close the connection sent, if any.
    pub fn close_code(&self) -> Option<u16> {
        close_code(&self.sent)
    }
}

/// Feeds `bytes` to `conn` in chunks of the sizes `chunks` yields (cycled;
/// the last size repeats), keeping unconsumed bytes and feeding them again
/// with the next chunk, as the contract asks. Stops at the first error.
pub fn feed_chunks<B: MessageBuffer, R: RngCore>(
    conn: &mut Connection<B, R>,
    bytes: &[u8],
    chunks: &mut dyn FnMut() -> usize,
    now: Instant,
) -> Outcome {
    let mut out = Outcome {
        events: Vec::new(),
        error: None,
        sent: Vec::new(),
        fed_at_error: bytes.len(),
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut at = 0;
    let mut tx = [0u8; 256];
    // A closed connection is done with its input (its transport would be
    // closed now): what is left is not fed.
    while at < bytes.len() && !conn.is_closed() {
        let n = chunks().clamp(1, bytes.len() - at);
        pending.extend_from_slice(&bytes[at..at + n]);
        at += n;
        let mut start = 0;
        loop {
            let len = pending.len() - start;
            match conn.handle_read(&mut pending[start..], now) {
                Ok((consumed, event)) => {
                    assert!(consumed <= len, "consumed {consumed} of {len}");
                    let got = event.map(Ev::from);
                    start += consumed;
                    match got {
                        // Once closed (the peer answered our Close), the
                        // connection reads no more (later input is
                        // discarded): stop, as the call order says.
                        Some(ev) if !conn.is_closed() => out.events.push(ev),
                        Some(ev) => {
                            out.events.push(ev);
                            break;
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    out.error = Some(e);
                    out.fed_at_error = at;
                    break;
                }
            }
        }
        pending.drain(..start);
        assert!(
            out.error.is_some() || pending.len() < snowsocket_core::frame::MAX_CONTROL_FRAME,
            "{} bytes left unconsumed",
            pending.len()
        );
        loop {
            let n = conn.poll_transmit(&mut tx).expect("139 bytes always fit");
            if n == 0 {
                break;
            }
            out.sent.extend_from_slice(&tx[..n]);
        }
        if out.error.is_some() {
            break;
        }
    }
    out
}

/// A connection in `role` with a growable buffer and a fixed-key RNG,
/// opened at [`Instant::ZERO`].
pub fn connection(role: Role, config: Config) -> Connection<Vec<u8>, FixedRng> {
    Connection::new(
        role,
        config,
        Vec::new(),
        FixedRng::rfc_mask(),
        Instant::ZERO,
    )
}

/// Feeds `bytes` to a fresh connection, cut at each of `cuts` (sorted
/// offsets).
pub fn feed_split(role: Role, config: Config, bytes: &[u8], cuts: &[usize]) -> Outcome {
    let mut sizes = Vec::new();
    let mut last = 0;
    for &c in cuts.iter().chain(core::iter::once(&bytes.len())) {
        sizes.push(c.saturating_sub(last).max(1));
        last = c.max(last);
    }
    let mut i = 0;
    let mut next = move || {
        let s = sizes.get(i).copied().unwrap_or(usize::MAX);
        i += 1;
        s
    };
    feed_chunks(
        &mut connection(role, config),
        bytes,
        &mut next,
        Instant::ZERO,
    )
}

/// The frames in `bytes` other than Pongs. Which Pongs go out depends on
/// when `poll_transmit` runs: several Pings read before it may get one
/// Pong (RFC 6455 §5.5.3), and a failure drops a Pong not yet sent.
pub fn without_pongs(bytes: &[u8]) -> Vec<WireFrame> {
    parse_frames(bytes)
        .into_iter()
        .filter(|f| f.opcode != OpCode::Pong)
        .collect()
}

/// Feeds `bytes` whole, then cut at every split point, then byte by byte,
/// asserting that the events, the error and the frames sent (Pongs aside,
/// see [`without_pongs`]) are the same every time; returns the outcome of
/// the whole input. (The point at which an error is found may differ with
/// the chunking, so `fed_at_error` is the whole-input one.)
pub fn feed_every_way(role: Role, config: Config, bytes: &[u8]) -> Outcome {
    let whole = feed_split(role, config, bytes, &[]);
    let whole_sent = without_pongs(&whole.sent);
    let same = |o: &Outcome, how: &str| {
        assert_eq!(o.events, whole.events, "events differ when fed {how}");
        assert_eq!(o.error, whole.error, "error differs when fed {how}");
        assert_eq!(
            without_pongs(&o.sent),
            whole_sent,
            "frames sent differ when fed {how}"
        );
    };
    for cut in 1..bytes.len() {
        same(
            &feed_split(role, config, bytes, &[cut]),
            &format!("split at {cut}"),
        );
    }
    let bytewise = feed_chunks(
        &mut connection(role, config),
        bytes,
        &mut || 1,
        Instant::ZERO,
    );
    same(&bytewise, "byte by byte");
    whole
}

/// A config with the heartbeat and the fragment timeout off, so that
/// nothing happens unless a test makes it.
pub const QUIET: Config = Config::DEFAULT.ping_interval(None).fragment_timeout(None);
