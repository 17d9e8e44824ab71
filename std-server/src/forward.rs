//! Payloads written from where they were read: a large send from a
//! connection's own callback whose payload lies in the input its loop is
//! feeding it (an echo, a relay of what was just read) is not copied into
//! the outbox. The outbox gets the frame's header; the payload stays in
//! the loop's read buffer as a [`Piece`], and the loop writes headers and
//! payloads together with one vectored write, copying only what the socket
//! does not take. At 64 KiB pipelined echoes that copy was the largest
//! part of the server's own (user-space) time.
//!
//! Only for plain `ws://` connections on the server side (a TLS session
//! copies into its records anyway; a client masks its payloads) and for
//! uncompressed frames of at least [`MIN`] bytes. The loop keeps the read
//! buffer's bytes in place until it has written or copied them: while it
//! holds replies back for a larger write, its next reads go to the buffer
//! past them (see `Conn::read_turn`), and every other path that takes
//! the outbox copies them in first.

use core::cell::{Cell, RefCell};

use crate::handle::Shared;

/// Payloads shorter than this are copied into the outbox, where the copy
/// is cheap next to a piece's bookkeeping and the extra part of the
/// write. Chosen, not tuned: the benchmark's messages are 16 B, 1 KiB,
/// 16 KiB and 64 KiB.
pub(crate) const MIN: usize = 8 * 1024;

/// A payload left in the loop's read buffer: the `len` bytes at offset
/// `start` there go after the first `at` bytes of output (of the outbox's
/// frames while the outbox holds it, of the connection's write buffer once
/// the loop took them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) at: usize,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

/// The input being fed, by address: which connection, where the read
/// buffer starts, and the range the input takes in it.
#[derive(Clone, Copy)]
struct Window {
    owner: usize,
    base: usize,
    start: usize,
    end: usize,
}

std::thread_local! {
    static WINDOW: Cell<Option<Window>> = const { Cell::new(None) };
    /// The pieces of the connection being fed, in the order of its output.
    static PIECES: RefCell<Vec<Piece>> = const { RefCell::new(Vec::new()) };
    /// How many there are: checked on every read and flush, where there
    /// are usually none, more cheaply than the list itself.
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

/// While it lives, sends from `owner`'s callbacks on this thread may leave
/// payloads that lie in `input` (which starts `offset` bytes into the
/// loop's read buffer) where they are.
pub(crate) struct Open {
    previous: Option<Window>,
}

impl Open {
    pub(crate) fn new(owner: &Shared, input: &[u8], offset: usize) -> Self {
        let start = input.as_ptr() as usize;
        let window = Window {
            owner: core::ptr::from_ref(owner) as usize,
            base: start - offset,
            start,
            end: start + input.len(),
        };
        Self {
            previous: WINDOW.with(|w| w.replace(Some(window))),
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        WINDOW.with(|w| w.set(self.previous));
    }
}

/// Where `payload` lies in the read buffer (its offset there), if it is
/// part of the input being fed to `owner` and large enough to be left
/// there.
#[inline]
pub(crate) fn locate(owner: &Shared, payload: &[u8]) -> Option<usize> {
    if payload.len() < MIN {
        return None;
    }
    let w = WINDOW.with(Cell::get)?;
    let at = payload.as_ptr() as usize;
    (w.owner == core::ptr::from_ref(owner) as usize && at >= w.start && at + payload.len() <= w.end)
        .then(|| at - w.base)
}

/// Records a payload left in the read buffer.
pub(crate) fn note(piece: Piece) {
    #[cfg(test)]
    NOTED.with(|n| n.set(n.get() + 1));
    PIECES.with(|p| p.borrow_mut().push(piece));
    COUNT.with(|c| c.set(c.get() + 1));
}

#[cfg(test)]
std::thread_local! {
    static NOTED: Cell<usize> = const { Cell::new(0) };
}

/// How many payloads were left in a read buffer on this thread.
#[cfg(test)]
pub(crate) fn noted() -> usize {
    NOTED.with(Cell::get)
}

/// Whether payloads wait in the read buffer.
#[inline]
pub(crate) fn pending() -> bool {
    COUNT.with(Cell::get) != 0
}

/// Moves the pieces `by` bytes further into the output: the outbox's
/// frames went after `by` bytes of the write buffer.
pub(crate) fn rebase(by: usize) {
    if !pending() {
        return;
    }
    PIECES.with(|p| {
        for piece in p.borrow_mut().iter_mut() {
            piece.at += by;
        }
    });
}

/// Hands the pieces to `f` and forgets them (keeping the list's memory).
pub(crate) fn take<T>(f: impl FnOnce(&[Piece]) -> T) -> T {
    PIECES.with(|p| {
        let mut pieces = p.borrow_mut();
        let result = f(&pieces);
        pieces.clear();
        COUNT.with(|c| c.set(0));
        result
    })
}

/// Forgets the pieces (their connection ended).
pub(crate) fn clear() {
    if pending() {
        take(|_| ());
    }
}

/// `out` and the pieces in it as one stream: the parts from `from` (bytes
/// of `out` before it are written or taken), in order, without empty ones;
/// `read` finds a piece's bytes.
pub(crate) fn parts<'a>(
    out: &'a [u8],
    from: usize,
    pieces: &'a [Piece],
    read: impl Fn(&Piece) -> &'a [u8] + 'a,
) -> impl Iterator<Item = &'a [u8]> {
    let tail = pieces.last().map_or(from, |p| p.at);
    pieces
        .iter()
        .scan(from, move |at, p| {
            let head = &out[*at..p.at];
            *at = p.at;
            Some([head, read(p)])
        })
        .flatten()
        .chain(core::iter::once(&out[tail..]))
        .filter(|part| !part.is_empty())
}
