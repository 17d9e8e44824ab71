//! The TLS session type the engine carries: rustls's with the `tls`
//! feature; without it a type that cannot exist, so that the engine's TLS
//! paths compile to nothing and no connection can take them.

#[cfg(feature = "tls")]
mod imp {
    use std::sync::Arc;

    use crate::ServerConfig;

    /// A rustls session (client or server).
    pub(crate) type TlsSession = rustls::Connection;

    /// A new server session when `config` serves `wss://`; `Err` with why
    /// when rustls cannot start one.
    pub(crate) fn server_session(config: &ServerConfig) -> Result<Option<Box<TlsSession>>, String> {
        let Some(tls) = &config.tls else {
            return Ok(None);
        };
        match rustls::ServerConnection::new(Arc::clone(tls)) {
            Ok(c) => Ok(Some(Box::new(rustls::Connection::Server(c)))),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(not(feature = "tls"))]
mod imp {
    use core::convert::Infallible;
    use std::io;

    use crate::ServerConfig;

    /// No TLS session can exist without the `tls` feature: every method
    /// is unreachable, and `Option<Box<TlsSession>>` is always `None`.
    #[derive(Debug)]
    pub(crate) enum TlsSession {}

    #[allow(clippy::unused_self, dead_code)]
    impl TlsSession {
        pub(crate) fn reader(&mut self) -> &mut dyn io::Read {
            match *self {}
        }
        pub(crate) fn writer(&mut self) -> &mut dyn io::Write {
            match *self {}
        }
        pub(crate) fn read_tls(&mut self, _: &mut dyn io::Read) -> io::Result<usize> {
            match *self {}
        }
        pub(crate) fn write_tls(&mut self, _: &mut dyn io::Write) -> io::Result<usize> {
            match *self {}
        }
        pub(crate) fn process_new_packets(&mut self) -> Result<(), Infallible> {
            match *self {}
        }
        pub(crate) fn wants_write(&self) -> bool {
            match *self {}
        }
        pub(crate) fn send_close_notify(&mut self) {
            match *self {}
        }
        pub(crate) fn is_handshaking(&self) -> bool {
            match *self {}
        }
        pub(crate) fn complete_io(&mut self, _: &mut dyn io::Read) -> io::Result<(usize, usize)> {
            match *self {}
        }
    }

    /// Without the `tls` feature a server serves `ws://` only.
    #[allow(clippy::unnecessary_wraps)]
    pub(crate) fn server_session(_: &ServerConfig) -> Result<Option<Box<TlsSession>>, String> {
        Ok(None)
    }
}

pub(crate) use imp::{server_session, TlsSession};
