//! The TLS layer the server's and the client's connections share:
//! rustls's unbuffered API over buffers we own ([`TlsSession`]). Without
//! the `tls` feature a type that cannot exist, so that the engine's TLS
//! paths compile to nothing and no connection can take them.
//!
//! rustls's buffered `Connection` keeps a receive buffer of about 4 KiB per
//! connection for as long as the connection lives; here the TLS bytes
//! received and the TLS bytes to send live in our vectors, which
//! [`TlsSession::release`] gives up whenever they hold nothing (no partial
//! record, nothing unsent), so an idle `wss://` connection holds only
//! rustls's session state. (A loop thread keeps one emptied buffer of each
//! kind for the next connection that reads or writes: a busy connection
//! then neither allocates nor zeroes them on every turn.)

#[cfg(not(feature = "tls"))]
mod disabled;
#[cfg(feature = "tls")]
mod outgoing;
#[cfg(feature = "tls")]
mod step;
#[cfg(all(test, feature = "tls"))]
mod tests;
#[cfg(feature = "tls")]
mod unbuffered;

#[cfg(not(feature = "tls"))]
use disabled as imp;
#[cfg(feature = "tls")]
use unbuffered as imp;

pub(crate) use imp::{server_session, TlsFailure, TlsRead, TlsSession};
