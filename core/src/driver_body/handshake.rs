//! The opening handshake, for both drivers (see
//! [`super::driver_body!`]): [`WebSocket::accept`] and
//! [`WebSocket::accept_with`] (server) and [`WebSocket::connect`]
//! (client), each a loop of reads around the shared steps
//! (`crate::session`), and the generic forms that the async driver's
//! permessage-deflate handshakes also use.
//!
//! [`WebSocket::accept`]: crate::WebSocket::accept
//! [`WebSocket::accept_with`]: crate::WebSocket::accept_with
//! [`WebSocket::connect`]: crate::WebSocket::connect

/// `impl WebSocket<.., ServerSide>` and `impl WebSocket<.., ClientSide>`:
/// the opening handshakes.
macro_rules! handshake_methods {
    ($m:tt $($async:tt)?) => {
impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ServerSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    by_mode! { $m {
        /// Server side: reads the upgrade request from `io`, accepts it with no
        /// subprotocol, and returns the open WebSocket. An invalid request is
        /// answered with the matching HTTP error (400, 426, 431, …) and returned
        /// as [`DriverError::Handshake`].
    } {
        /// Server side: reads the upgrade request, accepts it with no
        /// subprotocol; see [`crate::WebSocket::accept`].
    }
    pub $($async)? fn accept(io: T, parts: Parts<'buf, B, R, C>) -> Result<Self, DriverError<T::Error>> {
        let decide = |_: &Request<'_, '_>| Decision::Accept { subprotocol: None };
        io!($m, Self::accept_answering(io, parts, decide, |out, request, subprotocol| {
            handshake::write_accept_keyed(out, request, subprotocol, None, &[], None)
        }))
    }
    }

    by_mode! { $m {
        /// Server side, letting `decide` look at the request (path, query,
        /// headers, Origin, offered subprotocols) and accept or reject it.
    } {
        /// Server side, letting `decide` accept or reject the request; see
        /// [`crate::WebSocket::accept_with`].
    }
    pub $($async)? fn accept_with<'d>(
        io: T,
        parts: Parts<'buf, B, R, C>,
        decide: impl FnOnce(&Request<'_, '_>) -> Decision<'d>,
    ) -> Result<Self, DriverError<T::Error>> {
        io!($m, Self::accept_answering(io, parts, decide, |out, request, subprotocol| {
            handshake::write_accept_keyed(out, request, subprotocol, None, &[], None)
        }))
    }
    }

    /// [`accept_with`](Self::accept_with), the accepting answer written by
    /// `accept` (into the buffer, for the request, with the subprotocol;
    /// the accept key's place held, see `session::server_handshake_with`).
    pub(crate) $($async)? fn accept_answering<'d, A>(
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
            mut clock,
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
            match io!($m, read_handshake(&mut io, room, &mut clock, deadline)) {
                Ok(n) => filled += n,
                Err(DriverError::Handshake(e)) => break session::refuse(&mut output, e),
                Err(e) => return Err(e),
            }
        };
        io!($m, transmit(&mut io, &mut output))?;
        let consumed = outcome.open()?;
        let conn = Connection::new(ServerSide, config, message_buf, rng, clock.now());
        let input = Input::new(read_buf, consumed, filled)?;
        Ok(assemble!($m, io, conn, clock, input, output))
    }
}

impl<'buf, T, B, R, C> WebSocket<'buf, T, B, R, C, ClientSide>
where
    T: Read + Write,
    B: MessageBuffer,
    R: RngCore,
    C: Clock,
{
    by_mode! { $m {
        /// Client side: sends the upgrade `request`, checks the server's answer
        /// (status 101, the accept key, the subprotocol) and returns the open
        /// WebSocket and the subprotocol the server chose (an index into
        /// `request.subprotocols`).
        pub fn connect(
            io: T,
            parts: Parts<'buf, B, R, C>,
            request: &ClientRequest<'_>,
        ) -> Result<(Self, Option<usize>), DriverError<T::Error>>
    } {
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
        ) -> impl core::future::Future<Output = Result<(Self, Option<usize>), DriverError<T::Error>>>
               + use<'buf, 'r, 'h, T, B, R, C>
    } {
        Self::connect_checking(
            io,
            parts,
            request,
            session::client_request,
            session::client_handshake,
        )
    } }

    /// [`connect`](Self::connect) with the request written by `write` and
    /// the answer checked by `check` (which keeps what else was agreed).
    #[allow(clippy::type_complexity)]
    pub(crate) $($async)? fn connect_checking(
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
            mut clock,
            config,
            limits,
            handshake_timeout,
        } = parts;
        config.validate().map_err(DriverError::InvalidConfig)?;
        let mut output = Output::new(write_buf)?;
        let deadline = handshake_timeout.map(|t| clock.now() + t);
        let accept = write(&mut output, request, &mut rng).map_err(DriverError::Request)?;
        io!($m, transmit(&mut io, &mut output))?;
        let mut filled = 0;
        let (consumed, chosen) = loop {
            let read = read_buf.get(..filled).unwrap_or_default();
            if let Some(done) =
                check(read, &accept, request, &limits).map_err(DriverError::Handshake)?
            {
                break done;
            }
            let room = read_buf.get_mut(filled..).unwrap_or_default();
            filled += io!($m, read_handshake(&mut io, room, &mut clock, deadline))?;
        };
        let conn = Connection::new(ClientSide, config, message_buf, rng, clock.now());
        let input = Input::new(read_buf, consumed, filled)?;
        Ok((assemble!($m, io, conn, clock, input, output), chosen))
    }
}
    };
}
pub(crate) use handshake_methods;
