//! Without the `tls` feature: a session type that cannot exist.

use core::convert::Infallible;
use std::io::{self, Read, Write};

use crate::ServerConfig;

/// What a read brought (never made without the `tls` feature).
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum TlsRead {
    Bytes(usize),
    WouldBlock,
    Eof,
}

/// Why the session failed (never made without the `tls` feature).
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum TlsFailure {
    Io(io::Error),
    Tls(Infallible),
}

/// No TLS session can exist without the `tls` feature: every method
/// is unreachable, and `Option<Box<TlsSession>>` is always `None`.
#[derive(Debug)]
pub(crate) enum TlsSession {}

#[allow(clippy::unused_self, dead_code)]
impl TlsSession {
    pub(crate) fn is_handshaking(&self) -> bool {
        match *self {}
    }
    pub(crate) fn wants_write(&self) -> bool {
        match *self {}
    }
    pub(crate) fn drained(&self) -> bool {
        match *self {}
    }
    pub(crate) fn release(&mut self) {
        match *self {}
    }
    pub(crate) fn read<S: Read + Write>(
        &mut self,
        _: &mut S,
        _: &mut [u8],
    ) -> Result<TlsRead, TlsFailure> {
        match *self {}
    }
    pub(crate) fn handshake_step<S: Read + Write>(
        &mut self,
        _: &mut S,
    ) -> Result<TlsRead, TlsFailure> {
        match *self {}
    }
    pub(crate) fn encrypt(&mut self, _: &[u8]) -> Result<usize, Infallible> {
        match *self {}
    }
    pub(crate) fn close_notify(&mut self) -> Result<(), Infallible> {
        match *self {}
    }
    pub(crate) fn send<S: Write>(&mut self, _: &mut S) -> io::Result<usize> {
        match *self {}
    }
}

/// Without the `tls` feature a server serves `ws://` only.
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn server_session(_: &ServerConfig) -> Result<Option<Box<TlsSession>>, String> {
    Ok(None)
}
