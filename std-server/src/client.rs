//! A blocking `ws://` and `wss://` client on the same engine as the server.
//!
//! ```no_run
//! use snowsocket_server::client::{self, ClientConfig};
//! use snowsocket_server::Message;
//!
//! let mut client = client::connect("ws://127.0.0.1:9001/", ClientConfig::default())?;
//! client.send_text("hello")?;
//! if let Some(Message::Text(reply)) = client.read_message()? {
//!     println!("{reply}");
//! }
//! client.close(snowsocket_server::CloseCode::NORMAL, "bye")?;
//! # Ok::<(), snowsocket_server::client::ClientError>(())
//! ```
//!
//! The opening handshake (TCP, TLS, HTTP upgrade) runs on the calling
//! thread; the connection then runs on the process's client event loop.
//! [`Client::sender`] gives a [`Sender`] (`Clone + Send + Sync`) to send
//! from other threads while one thread blocks in [`Client::read_message`]:
//! sends never wait behind it.
//!
//! Pings are answered while a thread reads (`read_message` takes one
//! message at a time). An application that does not read all the time (it
//! mostly sends) hands the connection to the server's [`Handler`] callbacks
//! with [`Client::spawn`]: the heartbeat then runs whatever the
//! application does.

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, Sender as ChannelSender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant as StdInstant;

#[cfg(feature = "tls")]
use rustls::pki_types::ServerName;
use snowsocket_core::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Parsed};
use snowsocket_core::{CloseCode, MessageKind};

use crate::close::{CloseCause, CloseInfo, SendError};
use crate::event_loop::command::{Command, LoopShared};
use crate::event_loop::conn::Adopted;
use crate::event_loop::{Loop, Service};
use crate::handle::{ConnectionHandle, Message, Upgraded};
use crate::handler::Handler;

mod blocking;
mod config;
mod error;
mod response;
mod route;
mod spawned;

use route::{client_loop, Delivery, Route, Target};

use crate::rng::Rng;
#[cfg(feature = "tls")]
use crate::session::TlsSession;
#[cfg(feature = "tls")]
use crate::tls::{self, TlsError};
use crate::transport::{deadline_in, set_deadline, Transport};
use crate::ServerConfig;
pub use blocking::BlockingSender;
use config::parse_url;
pub use config::ClientConfig;
pub use error::{ClientError, LEAF_CERT_COMMAND};
pub use response::{Response, MAX_REJECTION_BODY};
pub use spawned::Spawned;

use blocking::Room;

/// A handle to send on a client connection from any thread (the same type
/// as the server's [`ConnectionHandle`]).
pub type Sender = ConnectionHandle;

/// Connects to `url` (`ws://` or `wss://`), runs the TLS handshake (SNI =
/// the URL's host) and the WebSocket upgrade.
///
/// Fails with [`ClientError::Config`] for a configuration value that
/// cannot work, [`ClientError::Rejected`] (status, headers and body) when
/// the server refuses the upgrade, [`ClientError::TlsHandshake`] and
/// [`ClientError::ServerSpeaksTls`] for TLS trouble (their `Display` says
/// what to do about the usual causes).
pub fn connect(url: &str, config: ClientConfig) -> Result<Client, ClientError> {
    config.validate()?;
    let url = parse_url(url)?;
    let deadline = deadline_in(config.handshake_timeout);
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port).to_socket_addrs()?.collect();
    let mut last_error = io::Error::new(io::ErrorKind::NotFound, "no address for host");
    let mut socket = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(StdInstant::now());
        if left.is_zero() {
            return Err(ClientError::HandshakeTimeout);
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                socket = Some(s);
                break;
            }
            Err(e) => last_error = e,
        }
    }
    let socket = Arc::new(socket.ok_or(last_error)?);
    let _ = socket.set_nodelay(true);
    let mut transport = if url.tls {
        tls_transport(socket, &url, &config)?
    } else {
        Transport::Plain(socket)
    };
    transport.complete_handshake(deadline)?;
    let mut rng = Rng::from_os();
    let key = handshake::generate_key(&mut rng);
    let subprotocols: Vec<&str> = config.subprotocols.iter().map(String::as_str).collect();
    let extra: Vec<(&str, &[u8])> = config
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let request = ClientRequest {
        host: &url.authority,
        path: &url.path,
        origin: config.origin.as_deref(),
        subprotocols: &subprotocols,
        extra_headers: &extra,
    };
    let mut out = vec![0u8; 1024];
    let offer = config.deflate.as_ref().map(|d| d.params);
    let n = match handshake::write_request_with_deflate(&mut out, &request, &key, offer.as_ref()) {
        Err(handshake::WriteError::InsufficientSize(e)) => {
            out.resize(e.required, 0);
            handshake::write_request_with_deflate(&mut out, &request, &key, offer.as_ref())
        }
        other => other,
    }
    .map_err(|e| ClientError::InvalidUrl(format!("{e:?}")))?;
    set_deadline(transport.socket(), deadline)?;
    transport.write_all(&out[..n])?;
    transport.flush()?;

    let limits = HandshakeLimits::DEFAULT;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // A plain request answered by a TLS server: its alert record.
    let speaks_tls = |buf: &[u8]| !url.tls && matches!(buf, [0x14..=0x17, 0x03, ..]);
    let (chosen, deflate, consumed) = loop {
        set_deadline(transport.socket(), deadline)?;
        let n = match transport.read(&mut chunk) {
            Ok(0) if speaks_tls(&buf) => return Err(ClientError::ServerSpeaksTls),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) if speaks_tls(&buf) => return Err(ClientError::ServerSpeaksTls),
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [handshake::EMPTY_HEADER; 64];
        match handshake::parse_response_with_deflate(
            &buf,
            &mut headers,
            &key,
            &subprotocols,
            offer.as_ref(),
            &limits,
        ) {
            Ok(Parsed::Incomplete) if speaks_tls(&buf) => return Err(ClientError::ServerSpeaksTls),
            Ok(Parsed::Incomplete) => {}
            Ok(Parsed::Complete {
                value: (value, deflate),
                consumed,
            }) => {
                break (value.subprotocol().map(str::to_owned), deflate, consumed);
            }
            Err(HandshakeError::BadStatus(status)) => {
                return Err(
                    match response::read_rejection(&mut transport, buf, deadline) {
                        Some(response) => ClientError::Rejected(Box::new(response)),
                        None => ClientError::Handshake(HandshakeError::BadStatus(status)),
                    },
                );
            }
            Err(_) if speaks_tls(&buf) => return Err(ClientError::ServerSpeaksTls),
            Err(e) => return Err(ClientError::Handshake(e)),
        }
    };
    // The core parsed this head (the same parser and header limit): it
    // cannot fail here.
    let response = Response::from_head(&buf[..consumed])
        .map(|(response, _)| response)
        .ok_or(ClientError::Handshake(HandshakeError::BadStatus(101)))?;
    let (socket, tls) = transport.into_parts();
    let socket = Arc::try_unwrap(socket)
        .map_err(|_| io::Error::other("the client socket is still shared"))?;
    socket.set_read_timeout(None)?;
    socket.set_write_timeout(None)?;
    socket.set_nonblocking(true)?;
    let peer = socket.peer_addr()?;
    let (path, query) = match url.path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url.path.as_str(), None),
    };
    let upgraded = Upgraded::new(path, query, chosen, None);
    let (events_tx, events) = mpsc::channel();
    let route = Arc::new(Route {
        target: Mutex::new(Target::Queue(events_tx)),
        room: Room::default(),
    });
    let mut service_config = ServerConfig::default()
        .connection(config.connection)
        .write_timeout(config.write_timeout)
        .max_buffered_bytes(config.max_buffered_bytes)
        .read_buffer_size(route::READ_BUFFER);
    service_config.deflate = config.deflate;
    let service = Arc::new(Service::new(
        service_config,
        Arc::clone(&route) as Arc<dyn Handler>,
    ));
    let (ready, handle) = mpsc::sync_channel(1);
    let adopted = Adopted {
        socket: mio::net::TcpStream::from_std(socket),
        peer,
        tls: tls.map(Box::new),
        service,
        upgraded,
        leftover: buf.split_off(consumed),
        id: crate::next_id(),
        deflate,
        ready,
    };
    client_loop()?.send(Command::Adopt(Box::new(adopted)));
    let handle = handle
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| io::Error::other("the client event loop did not take the connection"))?;
    Ok(Client {
        handle,
        events,
        route,
        current: Received::None,
        ended: None,
        spawned: false,
        response,
    })
}

/// A rustls client session over `socket`, for `wss://`: SNI and
/// certificate verification for the URL's host.
#[cfg(feature = "tls")]
fn tls_transport(
    socket: Arc<TcpStream>,
    url: &config::Url,
    config: &ClientConfig,
) -> Result<Transport, ClientError> {
    let tls_config = match &config.tls {
        Some(c) => Arc::clone(c),
        None => tls::client_config(&config.roots, config.webpki_roots)?,
    };
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| ClientError::InvalidUrl(url.host.clone()))?;
    let session =
        TlsSession::client(tls_config, name).map_err(|e| ClientError::Tls(TlsError::Rustls(e)))?;
    Ok(Transport::Tls(socket, Box::new(session)))
}

/// Without the `tls` feature there is no `wss://`.
#[cfg(not(feature = "tls"))]
fn tls_transport(
    _: Arc<TcpStream>,
    url: &config::Url,
    _: &ClientConfig,
) -> Result<Transport, ClientError> {
    Err(ClientError::InvalidUrl(format!(
        "wss://{}: snowsocket-server was built without its `tls` feature",
        url.authority
    )))
}

/// The message [`Client::read_message`] lends out.
enum Received {
    None,
    Text(String),
    Binary(Vec<u8>),
}

/// A client connection. It runs on the process's client event loop (one
/// thread for all clients). [`Client::read_message`] takes one message at
/// a time: the next frame is parsed when the application asks for it, so a
/// client that stops reading holds one message and the kernel's buffers,
/// not a growing queue; pings are answered and the heartbeat runs while it
/// reads. An application that does not read all the time hands the
/// connection to a handler with [`Client::spawn`], and the loop then reads
/// whatever the application does. Send from this or (through
/// [`Client::sender`]) any other thread: sends never block. Dropping the
/// client closes the connection (Close 1000).
pub struct Client {
    handle: ConnectionHandle,
    events: Receiver<Delivery>,
    route: Arc<Route>,
    current: Received,
    ended: Option<CloseInfo>,
    /// Handed to a handler: dropping this no longer closes it.
    spawned: bool,
    /// The server's `101`.
    response: Response,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Blocks until the next message. `Ok(None)` when the connection closed
    /// cleanly (either side started the close handshake);
    /// `Err(ClientError::Closed)` when it ended otherwise (protocol error,
    /// pong timeout, I/O). Later calls repeat the outcome. Either way
    /// [`Client::close_info`] then tells how it ended: the close code and
    /// reason (the server's when it closed, 1000 and 1001 alike, ours when
    /// we did) and the [`CloseCause`].
    ///
    /// ```no_run
    /// use snowsocket_server::client::{self, ClientConfig};
    /// use snowsocket_server::{CloseCause, CloseCode};
    ///
    /// let mut client = client::connect("ws://127.0.0.1:9001/", ClientConfig::default())?;
    /// while let Some(message) = client.read_message()? {
    ///     println!("{message:?}");
    /// }
    /// if let Some(info) = client.close_info() {
    ///     if info.cause == CloseCause::PeerClosed && info.code == Some(CloseCode::GOING_AWAY) {
    ///         println!("the server is going away: {}", info.reason);
    ///     }
    /// }
    /// # Ok::<(), snowsocket_server::client::ClientError>(())
    /// ```
    pub fn read_message(&mut self) -> Result<Option<Message<'_>>, ClientError> {
        if self.ended.is_none() {
            // A message already waiting (one queued before this call) is
            // handed out as it is; only when none waits has the application
            // finished with the last one, and reading resumes.
            let next = self.events.try_recv().or_else(|_| {
                self.handle.resume_reading();
                self.events.recv()
            });
            match next {
                Ok(Delivery::Text(text)) => self.current = Received::Text(text),
                Ok(Delivery::Binary(data)) => self.current = Received::Binary(data),
                Ok(Delivery::Closed(info)) => self.ended = Some(info),
                Err(_) => {
                    self.ended = Some(CloseInfo::new(CloseCause::UnexpectedEof, None, ""));
                }
            }
        }
        match &self.ended {
            Some(info) if info.is_clean() => return Ok(None),
            Some(info) => return Err(ClientError::Closed(info.clone())),
            None => {}
        }
        Ok(Some(match &self.current {
            Received::Text(text) => Message::Text(text),
            Received::Binary(data) => Message::Binary(data),
            Received::None => Message::Binary(&[]),
        }))
    }

    /// Hands the connection to `handler` from now on:
    /// [`on_connect`](Handler::on_connect), then
    /// [`on_message`](Handler::on_message) for every message (those already
    /// queued first), then [`on_close`](Handler::on_close) once, as on the
    /// server (its `on_accept` is not used). They run on the client event
    /// loop and must not block. Send through [`Spawned::sender`] or the
    /// handle the callbacks get.
    ///
    /// ```no_run
    /// use snowsocket_server::client::{self, ClientConfig};
    /// use snowsocket_server::{on_message, CloseCode};
    ///
    /// let client = client::connect("ws://127.0.0.1:9001/", ClientConfig::default())?;
    /// let running = client.spawn(on_message(|_conn, message| println!("{message:?}")))?;
    /// running.sender().send_text("hello")?;
    /// // ... later:
    /// let info = running.close(CloseCode::NORMAL, "bye");
    /// assert!(info.is_clean());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn(mut self, handler: impl Handler) -> io::Result<Spawned> {
        let handler: Arc<dyn Handler> = Arc::new(handler);
        let (done_tx, done) = mpsc::channel();
        let sender = self.handle.clone();
        {
            // Holding the route: the loop waits while what was queued is
            // handed over, so the handler sees every message in order.
            let mut target = self.route.target();
            handler.on_connect(&sender);
            let mut ended = self.ended.take();
            for delivery in self.events.try_iter() {
                match delivery {
                    Delivery::Text(text) => handler.on_message(&sender, Message::Text(&text)),
                    Delivery::Binary(data) => handler.on_message(&sender, Message::Binary(&data)),
                    Delivery::Closed(info) => ended = Some(info),
                }
            }
            if let Some(info) = ended {
                handler.on_close(&sender, info.clone());
                let _ = done_tx.send(info);
            }
            *target = Target::Handler(handler, done_tx);
        }
        self.handle.resume_reading();
        // The connection now belongs to the `Spawned`.
        self.spawned = true;
        Ok(Spawned {
            sender,
            done,
            info: None,
        })
    }

    /// How the connection ended — close code, reason and cause — once
    /// [`Client::read_message`] (or [`Client::close`]) has seen the end;
    /// `None` before.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.ended.as_ref()
    }

    /// The server's answer to the upgrade (status 101): its headers
    /// (`Set-Cookie`, `Server`, …).
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// A handle to send from other threads.
    pub fn sender(&self) -> Sender {
        self.handle.clone()
    }

    /// A handle to send from other threads that waits, rather than fails,
    /// while the outbox is full (a producer faster than the network:
    /// piping a file into a connection).
    pub fn blocking_sender(&self) -> BlockingSender {
        BlockingSender {
            handle: self.handle.clone(),
            route: Arc::clone(&self.route),
        }
    }

    /// The subprotocol the server chose, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.handle.subprotocol()
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.handle.peer_addr()
    }

    /// Sends a text message.
    pub fn send_text(&self, text: &str) -> Result<(), SendError> {
        self.handle.send_text(text)
    }

    /// Sends a binary message.
    pub fn send_binary(&self, data: &[u8]) -> Result<(), SendError> {
        self.handle.send_binary(data)
    }

    /// Sends a message of `kind`.
    pub fn send(&self, kind: MessageKind, payload: &[u8]) -> Result<(), SendError> {
        self.handle.send(kind, payload)
    }

    /// Sends one fragment (see [`ConnectionHandle::send_fragment`]).
    pub fn send_fragment(
        &self,
        kind: MessageKind,
        payload: &[u8],
        fin: bool,
    ) -> Result<(), SendError> {
        self.handle.send_fragment(kind, payload, fin)
    }

    /// Sends a Ping.
    pub fn ping(&self, payload: &[u8]) -> Result<(), SendError> {
        self.handle.ping(payload)
    }

    /// Closes: sends a Close and waits for the server's (discarding
    /// messages that arrive meanwhile), at most the close timeout. Returns
    /// how it ended (also [`Client::close_info`]): normally
    /// [`CloseCause::ClosedByUs`] with our code, or how the connection had
    /// already ended cleanly before.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, ClientError> {
        match self.handle.close(code, reason) {
            Ok(()) | Err(SendError::Closed) => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            match self.read_message() {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Ok(self.ended.clone().unwrap_or_else(|| {
                        CloseInfo::new(CloseCause::ClosedByUs, Some(code), reason)
                    }))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.spawned {
            let _ = self.handle.close(CloseCode::NORMAL, "");
            // Nobody reads any more: let the loop take the answer.
            self.handle.resume_reading();
        }
    }
}
#[cfg(all(test, not(feature = "tls")))]
mod tests {
    use std::net::TcpListener;

    use super::{connect, ClientConfig, ClientError};

    #[test]
    fn wss_without_the_tls_feature_is_refused_with_a_reason() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("wss://{}/", listener.local_addr().expect("addr"));
        match connect(&url, ClientConfig::default()) {
            Err(ClientError::InvalidUrl(why)) => assert!(why.contains("`tls` feature"), "{why}"),
            Err(other) => panic!("wrong error: {other}"),
            Ok(_) => panic!("wss:// connected without TLS"),
        }
    }
}
