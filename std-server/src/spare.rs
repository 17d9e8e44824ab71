//! A loop thread's spare write buffer: the allocation of the last output
//! a connection wrote out, kept for the next connection's batch of frames.
//!
//! A connection gives its write buffers back when it goes quiet (an idle
//! connection holds none), so without this every read turn of a busy
//! connection would allocate a buffer for its replies and free it after
//! the write. The loop's thread keeps one emptied buffer instead, for
//! whichever connection sends next on that thread; other threads never
//! give one, so their sends allocate as before.

use core::cell::Cell;

/// The largest buffer kept: as large as a batch is sized in advance.
const MAX_KEPT: usize = 256 * 1024;

std::thread_local! {
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Keeps `buf`'s allocation for the next batch on this thread, unless it
/// is larger than [`MAX_KEPT`] or the one kept already is at least as large.
pub(crate) fn give(mut buf: Vec<u8>) {
    let capacity = buf.capacity();
    if capacity == 0 || capacity > MAX_KEPT {
        return;
    }
    buf.clear();
    SPARE.with(|spare| {
        let kept = spare.take();
        spare.set(if kept.capacity() >= capacity {
            kept
        } else {
            buf
        });
    });
}

/// The buffer kept on this thread, if any (empty, with its capacity).
pub(crate) fn take() -> Vec<u8> {
    SPARE.with(Cell::take)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_of_two_buffers_is_kept_once_and_oversized_ones_never() {
        give(Vec::with_capacity(100));
        give(Vec::with_capacity(50));
        let kept = take();
        assert!(kept.capacity() >= 100 && kept.is_empty());
        assert_eq!(take().capacity(), 0, "taken once");
        give(Vec::with_capacity(MAX_KEPT + 1));
        assert_eq!(take().capacity(), 0, "too large to keep");
        let mut used = Vec::with_capacity(64);
        used.extend_from_slice(b"written");
        give(used);
        assert!(take().is_empty(), "kept empty");
    }
}
