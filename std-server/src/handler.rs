//! What the application gives the server: the [`Handler`] callbacks, and
//! what `on_accept` sees ([`UpgradeRequest`]) and answers ([`Accept`],
//! [`Context`]). `on_request` sees and answers plain HTTP (see
//! [`crate::http`]).

use core::any::Any;
use core::fmt;
use core::net::SocketAddr;
use std::sync::Arc;

use snowsocket_core::handshake::{Header, Request};

use crate::close::CloseInfo;
use crate::handle::{ConnectionHandle, Message};
use crate::http::{HttpRequest, HttpResponse};

/// What the server does with connections. Every method has a default; a
/// handler is shared by all event loops (`Send + Sync`).
///
/// For each connection: [`on_accept`](Handler::on_accept) decides on the
/// upgrade request (a request that is no upgrade at all goes to
/// [`on_request`](Handler::on_request) instead); if accepted, [`on_connect`](Handler::on_connect), then
/// [`on_message`](Handler::on_message) for every message (and
/// [`on_drain`](Handler::on_drain) after a send found the outbox full),
/// then [`on_close`](Handler::on_close) exactly once, whatever ended it.
///
/// **Callbacks run on the connection's event loop, one at a time, and must
/// not block**: while one runs, no other connection of that loop is served.
/// They may send on any [`ConnectionHandle`], this one included (sends
/// never block). Hand long work (a database query, a file, a computation)
/// to threads of your own with a clone of the handle, and send the answer
/// from there:
///
/// ```
/// use snowsocket_server::{ConnectionHandle, Handler, Message};
///
/// struct Slow;
/// impl Handler for Slow {
///     fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
///         let question = match message {
///             Message::Text(text) => text.as_bytes().to_vec(),
///             Message::Binary(data) => data.to_vec(),
///         };
///         let conn = conn.clone();
///         std::thread::spawn(move || {
///             let answer = question.len().to_string(); // stands for slow work
///             let _ = conn.send_text(&answer);
///         });
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Decides on an upgrade request. Default: accept, no subprotocol.
    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        let _ = request;
        Accept::upgrade()
    }

    /// Answers a request that is not a WebSocket upgrade (no `Upgrade`
    /// header names `websocket`: a health check, a page, a form; another
    /// upgrade such as `h2c` is ignored): HTTP beside the
    /// WebSocket on the same port. Default: `426 Upgrade Required`
    /// ([`HttpResponse::upgrade_required`]), a WebSocket-only server.
    ///
    /// Like every callback it runs on the event loop and **must not
    /// block**: answer from memory (a page built at start-up, a counter).
    /// The answer is written through the connection's non-blocking output,
    /// then the connection is closed (`Connection: close`: one request per
    /// connection). For `HEAD` the server sends the head only. A request
    /// body is read first (its `Content-Length` bytes, within
    /// [`HandshakeLimits::max_request_size`](crate::HandshakeLimits) with
    /// the header block, else 413; no `Content-Length` with a
    /// `Transfer-Encoding`: 411). An answer that breaks
    /// [`HttpResponse::check`], or whose body is larger than
    /// [`ServerConfig::max_buffered_bytes`](crate::ServerConfig::max_buffered_bytes),
    /// is logged and replaced by a 500; a panic here is a 500 too. These
    /// requests never become connections: `max_connections` does not
    /// apply, while the handshake bounds (`max_pending_handshakes`,
    /// `max_handshakes_per_ip`, `handshake_timeout`) do.
    ///
    /// ```
    /// use snowsocket_server::{Handler, HttpRequest, HttpResponse};
    ///
    /// struct Site;
    /// impl Handler for Site {
    ///     fn on_request(&self, request: &HttpRequest<'_, '_>) -> HttpResponse {
    ///         match request.path() {
    ///             "/" => HttpResponse::html("<script>new WebSocket('/ws')</script>"),
    ///             "/health" => HttpResponse::text(200, "ok"),
    ///             "/old" => HttpResponse::redirect(308, "/"),
    ///             _ => HttpResponse::not_found(),
    ///         }
    ///     }
    /// }
    /// ```
    fn on_request(&self, request: &HttpRequest<'_, '_>) -> HttpResponse {
        let _ = request;
        HttpResponse::upgrade_required()
    }

    /// A connection is open.
    fn on_connect(&self, conn: &ConnectionHandle) {
        let _ = conn;
    }

    /// A complete message arrived (borrowed: copy what you keep).
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let _ = (conn, message);
    }

    /// A send to this connection was refused with
    /// [`SendError::Full`](crate::SendError::Full) or
    /// [`SendError::OverBudget`](crate::SendError::OverBudget) (see
    /// [`SendError::waits_for_drain`](crate::SendError::waits_for_drain)),
    /// and everything sent has now been written to the socket: sending may
    /// resume.
    fn on_drain(&self, conn: &ConnectionHandle) {
        let _ = conn;
    }

    /// The connection ended; `info` says how. Runs once the socket is
    /// closed (after our Close went out and the peer answered, hung up or
    /// ran out of time).
    fn on_close(&self, conn: &ConnectionHandle, info: CloseInfo) {
        let _ = (conn, info);
    }
}

impl<H: Handler> Handler for Arc<H> {
    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        (**self).on_accept(request)
    }
    fn on_request(&self, request: &HttpRequest<'_, '_>) -> HttpResponse {
        (**self).on_request(request)
    }
    fn on_connect(&self, conn: &ConnectionHandle) {
        (**self).on_connect(conn);
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        (**self).on_message(conn, message);
    }
    fn on_drain(&self, conn: &ConnectionHandle) {
        (**self).on_drain(conn);
    }
    fn on_close(&self, conn: &ConnectionHandle, info: CloseInfo) {
        (**self).on_close(conn, info);
    }
}

/// A [`Handler`] made of a closure called for every message.
///
/// ```no_run
/// use snowsocket_server::{on_message, Message, Server, ServerConfig};
///
/// let server = Server::bind("127.0.0.1:0", ServerConfig::default())?;
/// server.serve(on_message(|conn, message| {
///     let _ = match message {
///         Message::Text(text) => conn.send_text(text),
///         Message::Binary(data) => conn.send_binary(data),
///     };
/// }))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn on_message<F>(f: F) -> MessageFn<F>
where
    F: Fn(&ConnectionHandle, Message<'_>) + Send + Sync + 'static,
{
    MessageFn(f)
}

/// See [`on_message`].
pub struct MessageFn<F>(F);

impl<F> fmt::Debug for MessageFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageFn")
    }
}

impl<F> Handler for MessageFn<F>
where
    F: Fn(&ConnectionHandle, Message<'_>) + Send + Sync + 'static,
{
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        (self.0)(conn, message);
    }
}

/// The upgrade request, as [`Handler::on_accept`] sees it.
#[derive(Debug)]
pub struct UpgradeRequest<'h, 'b> {
    pub(crate) request: Request<'h, 'b>,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
}

impl<'h, 'b> UpgradeRequest<'h, 'b> {
    /// The path (request target up to `?`).
    pub fn path(&self) -> &'b str {
        self.request.path()
    }
    /// The query (after `?`), if any.
    pub fn query(&self) -> Option<&'b str> {
        self.request.query()
    }
    /// The `Host` header.
    pub const fn host(&self) -> &'b str {
        self.request.host()
    }
    /// The `Origin` header, if sent (browsers always send it).
    pub const fn origin(&self) -> Option<&'b str> {
        self.request.origin()
    }
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.request.header(name)
    }
    /// Every header, in order.
    pub const fn headers(&self) -> &'h [Header<'b>] {
        self.request.headers()
    }
    /// The subprotocols the client offers, in its order of preference.
    pub fn subprotocols(&self) -> impl Iterator<Item = &'b str> + 'h {
        self.request.subprotocols()
    }
    /// The peer's address.
    pub const fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
    /// Whether the connection is `wss://`.
    pub const fn is_tls(&self) -> bool {
        self.tls
    }
    /// The core's parsed request, for anything else.
    pub const fn request(&self) -> &Request<'h, 'b> {
        &self.request
    }
}

/// The answer to an upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Accept {
    /// Upgrade to a WebSocket.
    Upgrade {
        /// The chosen subprotocol: one the client offered.
        subprotocol: Option<String>,
        /// More response headers (token names, values without CR/LF).
        headers: Vec<(String, String)>,
        /// Data for the connection's life (see [`Accept::with_context`]).
        context: Context,
    },
    /// Refuse with an HTTP status (300–599, not 304), a plain-text body
    /// and extra headers (`WWW-Authenticate` on a 401, `Location` on a
    /// redirect).
    Reject {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: String,
        /// More response headers (token names, values without CR/LF; not
        /// `Connection`, `Content-Type`, `Content-Length`,
        /// `Transfer-Encoding`, `Upgrade` or `Sec-WebSocket-Version`,
        /// which the server writes).
        headers: Vec<(String, String)>,
    },
}

impl Accept {
    /// Accept, no subprotocol, no extra header.
    pub const fn upgrade() -> Self {
        Self::Upgrade {
            subprotocol: None,
            headers: Vec::new(),
            context: Context(None),
        }
    }

    /// Refuse with `status` and `body`; add headers with
    /// [`with_header`](Self::with_header):
    ///
    /// ```
    /// use snowsocket_server::Accept;
    ///
    /// let who = Accept::reject(401, "token needed").with_header("WWW-Authenticate", "Bearer");
    /// let moved = Accept::reject(308, "").with_header("Location", "wss://example.com/chat");
    /// # let _ = (who, moved);
    /// ```
    ///
    /// A status outside 300–599 (or 304), or a header that is not valid
    /// (a name that is not a token, a value with CR, LF or another control
    /// character, a header the server writes itself), is never sent: the
    /// server logs the reason and answers 500.
    pub fn reject(status: u16, body: impl Into<String>) -> Self {
        Self::Reject {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// Chooses `subprotocol` (no effect on a rejection).
    #[must_use]
    pub fn with_subprotocol(mut self, name: impl Into<String>) -> Self {
        if let Self::Upgrade { subprotocol, .. } = &mut self {
            *subprotocol = Some(name.into());
        }
        self
    }

    /// Adds a response header, to the 101 or to the rejection. Checked
    /// when the answer is written: an invalid header (see
    /// [`Accept::Upgrade::headers`] and [`Accept::Reject::headers`]) is
    /// never sent; the server logs why and answers 500 instead.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        match &mut self {
            Self::Upgrade { headers, .. } | Self::Reject { headers, .. } => {
                headers.push((name.into(), value.into()));
            }
        }
        self
    }
}

impl Default for Accept {
    fn default() -> Self {
        Self::upgrade()
    }
}

impl Accept {
    /// Attaches `value` to the connection (no effect on a rejection): what
    /// `on_accept` learned from the request (a user authenticated by a
    /// token, a room named in the path) that the later callbacks need.
    /// [`ConnectionHandle::context`] gives it back.
    ///
    /// ```
    /// use snowsocket_server::{Accept, ConnectionHandle, Handler, Message, UpgradeRequest};
    ///
    /// struct User(String);
    /// struct Chat;
    /// impl Handler for Chat {
    ///     fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
    ///         match request.query().and_then(|q| q.strip_prefix("user=")) {
    ///             Some(name) => Accept::upgrade().with_context(User(name.to_string())),
    ///             None => Accept::reject(401, "who are you?"),
    ///         }
    ///     }
    ///     fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
    ///         if let (Some(User(name)), Message::Text(text)) = (conn.context::<User>(), message) {
    ///             let _ = conn.send_text(&format!("{name} ({}): {text}", conn.path()));
    ///         }
    ///     }
    /// }
    /// ```
    #[must_use]
    pub fn with_context(mut self, value: impl Any + Send + Sync) -> Self {
        if let Self::Upgrade { context, .. } = &mut self {
            *context = Context(Some(Arc::new(value)));
        }
        self
    }
}

/// What [`Accept::with_context`] attached to a connection (opaque).
/// Clones share the value; two contexts are equal when they are the same
/// value (or both empty).
#[derive(Clone, Default)]
pub struct Context(pub(crate) Option<Arc<dyn Any + Send + Sync>>);

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Context(..)"
        } else {
            "Context(None)"
        })
    }
}

impl PartialEq for Context {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Context {}
