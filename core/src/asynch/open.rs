//! The async driver's opening handshake: [`WebSocket::accept`],
//! [`WebSocket::accept_with`] (server) and [`WebSocket::connect`]
//! (client), each a loop of reads racing the handshake's deadline around
//! the shared steps (`crate::session`), and the generic forms the
//! permessage-deflate ones (`super::deflate`) use.

use core::future::Future;

use embedded_io_async::{Error as _, Read, Write};
use rand_core::RngCore;

use super::websocket::{is_tick, transmit};
use super::{until, Clock, WebSocket};
use crate::buffer::MessageBuffer;
use crate::connection::{ClientSide, Connection, ServerSide};
use crate::driver::{Decision, DriverError, Parts};
use crate::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Request};
use crate::session::{self, Input, Output, ServerHandshake, Session};
use crate::time::Instant;

impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ServerSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    /// Server side: reads the upgrade request, accepts it with no
    /// subprotocol; see [`crate::WebSocket::accept`].
    pub async fn accept(io: T, parts: Parts<'buf, B, R, C>) -> Result<Self, DriverError<T::Error>> {
        let decide = |_: &Request<'_, '_>| Decision::Accept { subprotocol: None };
        Self::accept_answering(io, parts, decide, |out, request, subprotocol| {
            handshake::write_accept_keyed(out, request, subprotocol, None, &[], None)
        })
        .await
    }

    /// Server side, letting `decide` accept or reject the request; see
    /// [`crate::WebSocket::accept_with`].
    pub async fn accept_with<'d>(
        io: T,
        parts: Parts<'buf, B, R, C>,
        decide: impl FnOnce(&Request<'_, '_>) -> Decision<'d>,
    ) -> Result<Self, DriverError<T::Error>> {
        Self::accept_answering(io, parts, decide, |out, request, subprotocol| {
            handshake::write_accept_keyed(out, request, subprotocol, None, &[], None)
        })
        .await
    }

    /// [`accept_with`](Self::accept_with), the accepting answer written by
    /// `accept` (into the buffer, for the request, with the subprotocol;
    /// the accept key's place held, see `session::server_handshake_with`).
    pub(super) async fn accept_answering<'d, A>(
        mut io: T,
        parts: Parts<'buf, B, R, C>,
        decide: impl FnOnce(&Request<'_, '_>) -> Decision<'d>,
        mut accept: A,
    ) -> Result<Self, DriverError<T::Error>>
    where
        A: FnMut(&mut [u8], &Request<'_, '_>, Option<&str>) -> Result<usize, handshake::WriteError>,
    {
        let Parts {
            read_buf,
            write_buf,
            message_buf,
            rng,
            clock,
            config,
            limits,
            handshake_timeout,
        } = parts;
        config.validate().map_err(DriverError::InvalidConfig)?;
        let mut output = Output::new(write_buf)?;
        let deadline = handshake_timeout.map(|t| clock.now() + t);
        let mut decide = Some(decide);
        let mut filled = 0;
        let outcome = loop {
            let read = read_buf.get(..filled).unwrap_or_default();
            match session::server_handshake_with(
                read,
                &mut output,
                &limits,
                &mut decide,
                &mut accept,
            )
            .map_err(DriverError::Request)?
            {
                ServerHandshake::Answered(outcome) => break outcome,
                ServerHandshake::Incomplete => {}
            }
            let room = read_buf.get_mut(filled..).unwrap_or_default();
            match read_handshake(&mut io, room, &clock, deadline).await {
                Ok(n) => filled += n,
                Err(DriverError::Handshake(e)) => break session::refuse(&mut output, e),
                Err(e) => return Err(e),
            }
        };
        transmit(&mut io, &mut output).await?;
        let consumed = outcome.open()?;
        let conn = Connection::new(ServerSide, config, message_buf, rng, clock.now());
        Ok(Self {
            io,
            session: Session::new(conn),
            clock,
            input: Input::new(read_buf, consumed, filled)?,
            output,
            #[cfg(feature = "deflate")]
            deflate: None,
        })
    }
}

impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ClientSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    /// Client side: sends the upgrade `request` and checks the answer; see
    /// [`crate::WebSocket::connect`]. (Await it as an `async fn`.)
    // A plain `fn` returning the handshake's future rather than an `async
    // fn` awaiting it: one future, not one inside another (RAM in an
    // embassy task).
    #[allow(clippy::type_complexity)]
    pub fn connect<'r, 'h>(
        io: T,
        parts: Parts<'buf, B, R, C>,
        request: &'r ClientRequest<'h>,
    ) -> impl Future<Output = Result<(Self, Option<usize>), DriverError<T::Error>>>
           + use<'buf, 'r, 'h, T, B, R, C> {
        Self::connect_checking(
            io,
            parts,
            request,
            session::client_request,
            session::client_handshake,
        )
    }

    /// [`connect`](Self::connect) with the request written by `write` and
    /// the answer checked by `check` (which keeps what else was agreed).
    #[allow(clippy::type_complexity)]
    pub(super) async fn connect_checking(
        mut io: T,
        parts: Parts<'buf, B, R, C>,
        request: &ClientRequest<'_>,
        write: impl FnOnce(
            &mut Output<'_>,
            &ClientRequest<'_>,
            &mut R,
        ) -> Result<[u8; 28], handshake::WriteError>,
        mut check: impl FnMut(
            &[u8],
            &[u8; 28],
            &ClientRequest<'_>,
            &HandshakeLimits,
        ) -> Result<Option<(usize, Option<usize>)>, HandshakeError>,
    ) -> Result<(Self, Option<usize>), DriverError<T::Error>> {
        let Parts {
            read_buf,
            write_buf,
            message_buf,
            mut rng,
            clock,
            config,
            limits,
            handshake_timeout,
        } = parts;
        config.validate().map_err(DriverError::InvalidConfig)?;
        let mut output = Output::new(write_buf)?;
        let deadline = handshake_timeout.map(|t| clock.now() + t);
        let accept = write(&mut output, request, &mut rng).map_err(DriverError::Request)?;
        transmit(&mut io, &mut output).await?;
        let mut filled = 0;
        let (consumed, chosen) = loop {
            let read = read_buf.get(..filled).unwrap_or_default();
            if let Some(done) =
                check(read, &accept, request, &limits).map_err(DriverError::Handshake)?
            {
                break done;
            }
            let room = read_buf.get_mut(filled..).unwrap_or_default();
            filled += read_handshake(&mut io, room, &clock, deadline).await?;
        };
        let conn = Connection::new(ClientSide, config, message_buf, rng, clock.now());
        let ws = Self {
            io,
            session: Session::new(conn),
            clock,
            input: Input::new(read_buf, consumed, filled)?,
            output,
            #[cfg(feature = "deflate")]
            deflate: None,
        };
        Ok((ws, chosen))
    }
}

/// One read during the opening handshake, racing its deadline: the bytes
/// read (0 on a tick), or an error when the buffer is full, the peer left,
/// or time is up.
async fn read_handshake<T: Read, C: Clock>(
    io: &mut T,
    room: &mut [u8],
    clock: &C,
    deadline: Option<Instant>,
) -> Result<usize, DriverError<T::Error>> {
    session::handshake_room(room.len(), clock.now(), deadline)?;
    match until(clock, deadline, io.read(room)).await {
        None => Err(DriverError::HandshakeTimeout),
        Some(Ok(0)) => Err(DriverError::UnexpectedEof),
        Some(Ok(n)) => Ok(n),
        Some(Err(e)) if is_tick(e.kind()) => Ok(0),
        Some(Err(e)) => Err(DriverError::Io(e)),
    }
}
