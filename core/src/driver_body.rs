//! The drivers' methods, written once: the blocking driver
//! ([`crate::driver`], over `embedded_io`) and the async driver
//! (`crate::asynch`, over `embedded_io_async`) are both made by
//! [`driver_body!`] from the text in this module's files, so they differ
//! only where an I/O call is awaited (`io!(mode, call)`: `call` in one,
//! `call.await` in the other), in their docs, and in what only one of them
//! has: the async driver races each read against the connection's next
//! deadline (the blocking one relies on the transport's read timeouts) and
//! sends permessage-deflate. Both run the same steps (`crate::session`)
//! and use only the connection's public API.
//!
//! The names in the bodies are those of the module that invokes the macro
//! (its `Read`, `Write`, `Clock`, `WebSocket`, and `read_some`, the one
//! read that differs), so each driver's module imports what they use.

use embedded_io::ErrorKind;

mod handshake;
mod helpers;
mod methods;

pub(crate) use handshake::handshake_methods;
pub(crate) use helpers::io_helpers;
pub(crate) use methods::connection_methods;

/// A read error that is a clock tick, not a failure (a transport's read
/// timeout, an interrupted call).
pub(crate) fn is_tick(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::TimedOut | ErrorKind::Interrupted)
}

/// `$e` in the blocking driver (`[]`), `$e.await` in the async one
/// (`[async]`).
macro_rules! io {
    ([], $e:expr) => {
        $e
    };
    ([async], $e:expr) => {
        $e.await
    };
}
pub(crate) use io;

/// The first group's tokens in the blocking driver (`[]`), the second's in
/// the async one (`[async]`), then the rest in both: docs that differ
/// before an item they share, or what only one driver has.
macro_rules! by_mode {
    ([] { $($blocking:tt)* } { $($asynch:tt)* } $($both:tt)*) => {
        $($blocking)* $($both)*
    };
    ([async] { $($blocking:tt)* } { $($asynch:tt)* } $($both:tt)*) => {
        $($asynch)* $($both)*
    };
}
pub(crate) use by_mode;

/// After the Close of the failure `$error` went out (for the callers that
/// still lend out the input, `fail_now`; the read loop lingers in
/// `Session::step`): reads and drops what the peer still sends until its
/// Close, its EOF, or the close timeout (see
/// [`Connection::handle_linger`](crate::Connection::handle_linger)).
/// `$pending`: bytes received and not consumed; `$scratch`: room to read
/// into (the write buffer, done with). A macro rather than a function:
/// inline where it runs, it adds no future of its own to the async
/// driver's reads.
macro_rules! linger {
    ($m:tt, $io:expr, $conn:expr, $pending:expr, $scratch:expr, $clock:expr, $error:expr) => {
        if lingers($error) {
            let mut more = $conn.handle_linger($pending, $clock.now());
            while more {
                let read = read_some($io, $scratch, $clock, || $conn.poll_timeout());
                let read: &[u8] = match $crate::driver_body::io!($m, read) {
                    Some(Ok(n)) if n > 0 => $scratch.get(..n).unwrap_or_default(),
                    // A tick, or the deadline came first.
                    Some(Err(e)) if is_tick(e.kind()) => &[],
                    None => &[],
                    // EOF, or a failed transport.
                    _ => break,
                };
                more = $conn.handle_linger(read, $clock.now());
            }
        }
    };
}
pub(crate) use linger;

/// A driver from its parts (the async one also has room for
/// permessage-deflate's sending half).
macro_rules! assemble {
    ($m:tt, $io:expr, $conn:expr, $clock:expr, $input:expr, $output:expr) => {
        $crate::driver_body::by_mode!($m {
            Self {
                io: $io,
                session: Session::new($conn),
                clock: $clock,
                input: $input,
                output: $output,
            }
        } {
            Self {
                io: $io,
                session: Session::new($conn),
                clock: $clock,
                input: $input,
                output: $output,
                #[cfg(feature = "deflate")]
                deflate: None,
            }
        })
    };
}
pub(crate) use assemble;

/// The driver's methods and I/O helpers: `driver_body!([])` in the
/// blocking driver's module, `driver_body!([async] async)` in the async
/// one's.
macro_rules! driver_body {
    ($m:tt $($async:tt)?) => {
        $crate::driver_body::connection_methods!($m $($async)?);
        $crate::driver_body::handshake_methods!($m $($async)?);
        $crate::driver_body::io_helpers!($m $($async)?);

        impl<T, B, R, C, S: Side> fmt::Debug for WebSocket<'_, T, B, R, C, S> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("WebSocket")
                    .field("conn", &self.session.conn)
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use driver_body;
