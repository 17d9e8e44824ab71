//! [`WebSocket`]: the async driver in one value.

use core::fmt;
use core::future::Future;

use embedded_io_async::{Error as _, ErrorKind, Read, Write};
use rand_core::RngCore;

use super::{until, Clock};
use crate::buffer::MessageBuffer;
use crate::close::CloseCode;
use crate::connection::{ClientSide, Connection, Error, Event, MessageKind, Payload, Role};
use crate::connection::{ServerSide, Side, UnborrowedEvent};
use crate::driver::{Decision, DriverError, Message, Parts};
pub(super) use crate::driver_body::is_tick;
use crate::driver_body::{assemble, by_mode, driver_body, io, linger};
use crate::frame::FrameHeader;
use crate::handshake::{self, ClientRequest, HandshakeError, HandshakeLimits, Request};
#[cfg(feature = "deflate")]
use crate::session::DeflateSend;
use crate::session::{self, lingers, FrameWrite, Input, Output, ServerHandshake, Session, Step};
use crate::time::Instant;

/// A WebSocket over an async byte stream `T`: the async twin of
/// [`crate::WebSocket`], with the same buffers, methods and errors (see
/// the [module](super) docs for time and cancellation).
pub struct WebSocket<'buf, T, B, R, C, S = Role> {
    pub(super) io: T,
    pub(super) session: Session<B, R, S>,
    pub(super) clock: C,
    pub(super) input: Input<'buf>,
    pub(super) output: Output<'buf>,
    /// permessage-deflate's sending half, once agreed.
    #[cfg(feature = "deflate")]
    pub(super) deflate: Option<DeflateSend>,
}

driver_body!([async] async);

/// Whether a read that brought data showed that the transport held no
/// more: for the async driver, never. Its next read races the deadline,
/// and only a read that loses that race (nothing was ready) shows it,
/// at no cost in time: an overdue deadline wins at once against a read
/// that would wait. So a transport that hands out less than it holds
/// (one TLS record per read) is read through before a deadline is judged.
#[inline(always)]
const fn short_read_is_through(_n: usize, _asked: usize) -> bool {
    false
}

/// A read into `room` racing the connection's next deadline (`None` when
/// the deadline came first). A plain `fn` returning [`until`]'s future:
/// one future, not one inside another.
fn read_some<'a, T: Read, C: Clock>(
    io: &'a mut T,
    room: &'a mut [u8],
    clock: &'a mut C,
    deadline: impl FnOnce() -> Option<Instant>,
) -> impl Future<Output = Option<Result<usize, T::Error>>> + 'a {
    until(&*clock, deadline(), io.read(room))
}
