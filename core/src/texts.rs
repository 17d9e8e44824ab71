//! Tables of short static texts packed end to end, for the tables that a
//! firmware links (close reasons, HTTP error bodies, header names).
//!
//! A `[&str; N]` lookup costs a pointer and a length per entry (8 bytes on
//! a 32-bit target) on top of the text; packed, an entry costs its 2-byte
//! end offset. The packing happens at compile time, from the same `[&str]`
//! the public `const fn` accessors index, so each text is written once.

/// `N` texts, `LEN` bytes in all, end to end.
pub(crate) struct Texts<const N: usize, const LEN: usize> {
    bytes: [u8; LEN],
    /// Where each text ends in `bytes` (it starts where the previous one ends).
    ends: [u16; N],
}

/// The total length of `texts`, the `LEN` of their [`Texts`].
pub(crate) const fn total_len(texts: &[&str]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < texts.len() {
        len += texts[i].len();
        i += 1;
    }
    len
}

impl<const N: usize, const LEN: usize> Texts<N, LEN> {
    /// Packs `texts`; `LEN` must be their [`total_len`] (checked at compile
    /// time, as this runs in a `const`).
    pub(crate) const fn new(texts: &[&str; N]) -> Self {
        let mut bytes = [0u8; LEN];
        let mut ends = [0u16; N];
        let mut at = 0;
        let mut i = 0;
        while i < N {
            let text = texts[i].as_bytes();
            let mut j = 0;
            while j < text.len() {
                bytes[at] = text[j];
                at += 1;
                j += 1;
            }
            assert!(at <= u16::MAX as usize);
            ends[i] = at as u16;
            i += 1;
        }
        assert!(at == LEN);
        Self { bytes, ends }
    }

    /// The `i`th text (empty past the end).
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        nth(&self.bytes, &self.ends, i)
    }
}

/// The `i`th text of `bytes` split at `ends`: one copy for every table
/// (the compiler inlines it where only one table is linked).
fn nth<'t>(bytes: &'t [u8], ends: &[u16], i: usize) -> &'t [u8] {
    let end = ends.get(i).copied().unwrap_or(0);
    let start = match i.checked_sub(1) {
        Some(before) => ends.get(before).copied().unwrap_or(0),
        None => 0,
    };
    bytes
        .get(usize::from(start)..usize::from(end))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_come_back_in_order() {
        const LIST: [&str; 4] = ["one", "", "three", "é"];
        const PACKED: Texts<4, { total_len(&LIST) }> = Texts::new(&LIST);
        for (i, text) in LIST.iter().enumerate() {
            assert_eq!(PACKED.get(i), text.as_bytes());
        }
        assert_eq!(PACKED.get(4), b"");
    }
}
