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

/// The largest buffer kept: a batch sized in advance that grew once past
/// its size. A turn writes its replies together up to 1 MiB at a time, so
/// the buffers of a busy loop reach this size (4 MiB); a loop thread keeps
/// at most one of them.
const MAX_KEPT: usize = 2 * crate::handle::BATCH_HINT_MAX;

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

/// Buffers up to this size are handed out for any batch.
const SMALL: usize = 16 * 1024;

/// The buffer kept on this thread (empty, with its capacity) for a batch
/// of about `want` bytes, if one is kept and it is not much larger than
/// that (at most 4 times, or [`SMALL`]): a connection whose peer stops
/// reading keeps its buffer while it waits, and a large buffer left by
/// another connection's burst would otherwise multiply what each such
/// connection holds.
pub(crate) fn take(want: usize) -> Vec<u8> {
    SPARE.with(|spare| {
        let kept = spare.take();
        if kept.capacity() <= want.saturating_mul(4).max(SMALL) {
            kept
        } else {
            spare.set(kept);
            Vec::new()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_of_two_buffers_is_kept_once_and_oversized_ones_never() {
        give(Vec::with_capacity(100));
        give(Vec::with_capacity(50));
        let kept = take(10);
        assert!(kept.capacity() >= 100 && kept.is_empty());
        assert_eq!(take(10).capacity(), 0, "taken once");
        give(Vec::with_capacity(MAX_KEPT + 1));
        assert_eq!(take(MAX_KEPT).capacity(), 0, "too large to keep");
        let mut used = Vec::with_capacity(64);
        used.extend_from_slice(b"written");
        give(used);
        assert!(take(10).is_empty(), "kept empty");
    }

    #[test]
    fn a_large_buffer_goes_only_to_a_batch_of_its_size() {
        give(Vec::with_capacity(200 * 1024));
        assert_eq!(take(100).capacity(), 0, "a small batch allocates its own");
        assert!(
            take(64 * 1024).capacity() >= 200 * 1024,
            "still kept for this one"
        );
        give(Vec::with_capacity(SMALL));
        assert!(take(1).capacity() >= SMALL, "small buffers go to any batch");
    }
}
