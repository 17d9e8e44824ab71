//! permessage-deflate (RFC 7692) in the async driver (feature `deflate`):
//! the handshakes that negotiate it, turning it on, and writing a
//! compressed frame. What it costs and guarantees is in the
//! [module](super) docs.

use embedded_io_async::{Read, Write};
use rand_core::RngCore;

use super::websocket::{transmit, write_all};
use super::{Clock, WebSocket};
use crate::buffer::MessageBuffer;
use crate::connection::{ClientSide, ServerSide, Side};
use crate::deflate::{negotiate, DeflateParams, PerMessageDeflate};
use crate::driver::{Decision, DriverError, Parts};
use crate::handshake::{self, ClientRequest, Request};
use crate::session::{self, DeflateSend, Output};

impl<T, B, R, C, S> WebSocket<'_, T, B, R, C, S>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
    S: Side,
{
    /// Turns permessage-deflate on with `params`, agreed elsewhere (a
    /// connection upgraded by hyper, say, whose answer carried
    /// [`DeflateParams::answer`]): the connection inflates what it
    /// receives, and whole messages of at least `options.min_size` bytes
    /// are sent compressed at `options.level`. Call it before the first
    /// message is sent or received. [`accept_deflate`](WebSocket::accept_deflate)
    /// and [`connect_deflate`](WebSocket::connect_deflate) call it.
    pub fn enable_deflate(&mut self, params: &DeflateParams, options: &PerMessageDeflate) {
        let role = self.session.conn.role();
        self.session.conn.enable_deflate(params, options.level);
        self.deflate = Some(DeflateSend::new(role, *params, options));
    }

    /// The permessage-deflate agreement, if it is on.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref().map(|tx| &tx.params)
    }
}

impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ServerSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    /// [`accept`](WebSocket::accept), agreeing to permessage-deflate with
    /// `options` when the client offers it (the first acceptable offer,
    /// see [`negotiate`]); without an acceptable offer the connection
    /// opens without it.
    pub async fn accept_deflate(
        io: T,
        parts: Parts<'buf, B, R, C>,
        options: &PerMessageDeflate,
    ) -> Result<Self, DriverError<T::Error>> {
        Self::accept_with_deflate(io, parts, options, |_| Decision::Accept {
            subprotocol: None,
        })
        .await
    }

    /// [`accept_with`](WebSocket::accept_with) with permessage-deflate, as
    /// [`accept_deflate`](WebSocket::accept_deflate).
    pub async fn accept_with_deflate<'d>(
        io: T,
        parts: Parts<'buf, B, R, C>,
        options: &PerMessageDeflate,
        decide: impl FnOnce(&Request<'_, '_>) -> Decision<'d>,
    ) -> Result<Self, DriverError<T::Error>> {
        let mut agreed = None;
        let answer = |out: &mut [u8], request: &Request<'_, '_>, subprotocol: Option<&str>| {
            agreed = negotiate(request.headers(), &options.params);
            let agreed = agreed.as_ref();
            handshake::write_accept_with_deflate_keyed(out, request, subprotocol, agreed, &[], None)
        };
        let mut ws = Self::accept_answering(io, parts, decide, answer).await?;
        if let Some(params) = agreed {
            ws.enable_deflate(&params, options);
        }
        Ok(ws)
    }
}

impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ClientSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    /// [`connect`](WebSocket::connect), offering permessage-deflate with
    /// `options`. A server that declines gives a connection without it
    /// ([`deflate`](WebSocket::deflate) is `None`); an answer we must
    /// refuse (see [`crate::deflate`]) fails the handshake with
    /// [`HandshakeError::UnexpectedExtensions`](crate::handshake::HandshakeError::UnexpectedExtensions),
    /// as in every client of ours.
    pub async fn connect_deflate(
        io: T,
        parts: Parts<'buf, B, R, C>,
        request: &ClientRequest<'_>,
        options: &PerMessageDeflate,
    ) -> Result<(Self, Option<usize>), DriverError<T::Error>> {
        let offer = &options.params;
        let mut agreed = None;
        let (mut ws, chosen) = Self::connect_checking(
            io,
            parts,
            request,
            |output, request, rng| session::client_request_deflate(output, request, rng, offer),
            |read, key, request, limits| {
                let done = session::client_handshake_deflate(read, key, request, limits, offer)?;
                Ok(done.map(|(consumed, chosen, params)| {
                    agreed = params;
                    (consumed, chosen)
                }))
            },
        )
        .await?;
        if let Some(params) = agreed {
            ws.enable_deflate(&params, options);
        }
        Ok((ws, chosen))
    }
}

/// Writes an encoded frame (a compressed message) after what waits in
/// `output`: copied into the output when it fits (where it may stay while
/// `hold`, to go out with the replies to more input that is already here),
/// else straight from `frame` once the output is written.
#[cfg(feature = "deflate")]
pub(super) async fn write_encoded<T: Write>(
    io: &mut T,
    output: &mut Output<'_>,
    frame: &[u8],
    hold: bool,
) -> Result<(), DriverError<T::Error>> {
    if output.push(frame) {
        if hold {
            return Ok(());
        }
        return transmit(io, output).await;
    }
    transmit(io, output).await?;
    write_all(io, frame).await?;
    io.flush().await.map_err(DriverError::Io)
}
