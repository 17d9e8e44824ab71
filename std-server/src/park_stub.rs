//! Idle connections without a thread: not available on this platform (it
//! needs mio's Unix file-descriptor sources). Connections keep their thread.

use std::io;

use crate::engine::{ConnectionHandle, Kick, Reader};

/// A connection waiting for input with no thread.
pub(crate) struct Parked {
    pub(crate) reader: Reader,
    pub(crate) handle: ConnectionHandle,
}

/// Never made: [`Parking::new`] fails here.
pub(crate) struct Parking {
    _never: core::convert::Infallible,
}

/// Stands for mio's `Poll`.
pub(crate) struct Poll;

impl Parking {
    pub(crate) fn new() -> io::Result<(Self, Poll)> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(crate) fn park(&self, parked: Parked) -> Result<(), Box<Parked>> {
        Err(Box::new(parked))
    }

    pub(crate) fn wake(&self) {}

    pub(crate) fn stop(&self) {}

    pub(crate) fn len(&self) -> usize {
        0
    }

    pub(crate) fn run(&self, _poll: Poll, _resume: impl FnMut(Parked), _reap: impl FnMut()) {}
}

impl Kick for Parking {
    fn kick(&self, _id: u64) {}
}
