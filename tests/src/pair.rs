//! Two connections in memory.

use super::*;

/// Which end of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client.
    Client,
    /// The server.
    Server,
}

impl Side {
    /// The other side.
    pub const fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// One end of a [`Pair`]: its connection, the bytes in flight towards it,
/// and what it received.
#[derive(Debug)]
pub struct Peer<B> {
    /// The connection.
    pub conn: Connection<B, XorShiftRng>,
    /// Bytes sent to this end (those before an internal read position have
    /// been consumed).
    pub inbox: Vec<u8>,
    /// Events this end received, in order.
    pub events: Vec<Ev>,
    /// The error that failed this end (from a read or a timeout), if any.
    pub error: Option<Error>,
    /// Every frame this end sent, as parsed from the wire.
    pub sent: Vec<WireFrame>,
    /// A dead peer: bytes sent to this end are dropped, never read.
    pub deaf: bool,
    /// Bytes of `inbox` already consumed by the connection.
    read: usize,
    /// Bytes after those already given to the connection and left
    /// unconsumed (a partial header).
    held: usize,
}

/// A client and a server [`Connection`] talking through memory on virtual
/// time: what one sends lands in the other's inbox, and [`Pair::run`]
/// delivers it (in chunks of [`Pair::chunk`] bytes) until both are quiet.
#[derive(Debug)]
pub struct Pair<B = Vec<u8>> {
    /// The client end.
    pub client: Peer<B>,
    /// The server end.
    pub server: Peer<B>,
    /// The virtual time.
    pub now: Instant,
    /// How many bytes are delivered per `handle_read` call at most.
    pub chunk: usize,
}

impl Pair<Vec<u8>> {
    /// Both ends with `config` and growable buffers, at [`Instant::ZERO`].
    pub fn new(config: Config) -> Self {
        Self::with(config, config, Vec::new(), Vec::new())
    }
}

impl<B: MessageBuffer> Pair<B> {
    /// Each end with its own config and message buffer.
    pub fn with(client: Config, server: Config, client_buf: B, server_buf: B) -> Self {
        let peer = |role, config, buf, seed| Peer {
            conn: Connection::new(role, config, buf, XorShiftRng::new(seed), Instant::ZERO),
            inbox: Vec::new(),
            events: Vec::new(),
            error: None,
            sent: Vec::new(),
            deaf: false,
            read: 0,
            held: 0,
        };
        Self {
            client: peer(Role::Client, client, client_buf, 1),
            server: peer(Role::Server, server, server_buf, 2),
            now: Instant::ZERO,
            chunk: usize::MAX,
        }
    }

    /// The end on `side`.
    pub fn peer(&mut self, side: Side) -> &mut Peer<B> {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    fn ends(&mut self, from: Side) -> (&mut Peer<B>, &mut Peer<B>) {
        match from {
            Side::Client => (&mut self.client, &mut self.server),
            Side::Server => (&mut self.server, &mut self.client),
        }
    }

    /// Puts frame bytes `from` one side on the wire towards the other.
    pub fn wire(&mut self, from: Side, bytes: &[u8]) {
        let (me, other) = self.ends(from);
        me.sent.extend(parse_frames(bytes));
        if !other.deaf {
            other.inbox.extend_from_slice(bytes);
        }
    }

    /// Sends a whole message from `side` (on the wire; call [`Pair::run`]).
    pub fn send(&mut self, side: Side, kind: MessageKind, payload: &[u8]) {
        let mut out = vec![0; payload.len() + FrameHeader::MAX_LEN];
        let n = self
            .peer(side)
            .conn
            .send(kind, payload, &mut out)
            .expect("send");
        self.wire(side, &out[..n]);
    }

    /// Sends one fragment from `side`.
    pub fn send_fragment(&mut self, side: Side, kind: MessageKind, payload: &[u8], fin: bool) {
        let mut out = vec![0; payload.len() + FrameHeader::MAX_LEN];
        let n = self
            .peer(side)
            .conn
            .send_fragment(kind, payload, fin, &mut out)
            .expect("send_fragment");
        self.wire(side, &out[..n]);
    }

    /// Sends a Ping from `side`.
    pub fn ping(&mut self, side: Side, payload: &[u8]) {
        let mut out = [0u8; 139];
        let n = self.peer(side).conn.ping(payload, &mut out).expect("ping");
        self.wire(side, &out[..n]);
    }

    /// Starts the close handshake from `side`.
    pub fn close(&mut self, side: Side, code: u16, reason: &str) {
        let now = self.now;
        self.peer(side)
            .conn
            .close(snowsocket_core::CloseCode(code), reason, now)
            .expect("close");
    }

    /// Moves virtual time forward and runs both ends' timers, then
    /// [`Pair::run`].
    pub fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        let now = self.now;
        for side in [Side::Client, Side::Server] {
            let p = self.peer(side);
            if p.error.is_none() && !p.conn.is_closed() {
                if let Err(e) = p.conn.handle_timeout(now) {
                    p.error = Some(e);
                }
            }
        }
        self.run();
    }

    /// Pumps bytes both ways (poll_transmit → the other's inbox →
    /// handle_read) until neither end has anything to send or read.
    pub fn run(&mut self) {
        for _ in 0..1_000_000 {
            let mut progress = false;
            for side in [Side::Client, Side::Server] {
                progress |= self.transmit(side);
                progress |= self.deliver(side);
            }
            if !progress {
                return;
            }
        }
        panic!("the pair did not settle");
    }

    fn transmit(&mut self, from: Side) -> bool {
        let mut tx = [0u8; 139];
        let mut any = false;
        loop {
            let n = self
                .peer(from)
                .conn
                .poll_transmit(&mut tx)
                .expect("139 bytes always fit");
            if n == 0 {
                return any;
            }
            self.wire(from, &tx[..n]);
            any = true;
        }
    }

    fn deliver(&mut self, to: Side) -> bool {
        let now = self.now;
        let chunk = self.chunk.max(1);
        let p = self.peer(to);
        if p.inbox.len() == p.read || p.error.is_some() || p.conn.is_closed() {
            return false;
        }
        let base = p.read;
        let end = p.inbox.len().min(base + p.held.saturating_add(chunk));
        if end == base + p.held {
            return false;
        }
        let mut input: Vec<u8> = p.inbox[base..end].to_vec();
        let mut start = 0;
        loop {
            match p.conn.handle_read(&mut input[start..], now) {
                Ok((consumed, event)) => {
                    let ev = event.map(Ev::from);
                    start += consumed;
                    match ev {
                        Some(ev) if !p.conn.is_closed() => p.events.push(ev),
                        Some(ev) => {
                            p.events.push(ev);
                            break;
                        }
                        None => break,
                    }
                }
                Err(e) => {
                    p.error = Some(e);
                    p.inbox.clear();
                    p.read = 0;
                    p.held = 0;
                    return true;
                }
            }
        }
        p.read += start;
        p.held = end - p.read;
        if p.read == p.inbox.len() || p.read > 1 << 16 {
            p.inbox.drain(..p.read);
            p.read = 0;
        }
        true
    }

    /// The events `side` received so far, taken.
    pub fn take_events(&mut self, side: Side) -> Vec<Ev> {
        core::mem::take(&mut self.peer(side).events)
    }
}
