//! Reading header fields: finding them by name, the ones that must appear
//! once ([`Scan`]), comma-separated tokens, and the character classes of
//! RFC 9110 and of `Sec-WebSocket-Key`.

use super::*;

/// The first header named `name` (case-insensitive).
pub(super) fn find_header<'b>(headers: &[Header<'b>], name: &str) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| eq_ignore_case(h.name.as_bytes(), name.as_bytes()))
        .map(|h| h.value)
}

/// A header that must appear at most once.
pub(super) enum Single<'b> {
    Absent,
    One(&'b [u8]),
    Many,
}

/// The headers the handshake checks, as indexes into a [`Scan`] and into
/// the side's table ([`SERVER_NAMES`] or [`CLIENT_NAMES`]: each side links
/// only the names it looks for). Both tables start with the names both
/// sides check.
pub(super) mod name {
    pub(in crate::handshake) const UPGRADE: usize = 0;
    pub(in crate::handshake) const CONNECTION: usize = 1;
    pub(in crate::handshake) const PROTOCOL: usize = 2;
    // The server's.
    pub(in crate::handshake) const HOST: usize = 3;
    pub(in crate::handshake) const VERSION: usize = 4;
    pub(in crate::handshake) const KEY: usize = 5;
    pub(in crate::handshake) const ORIGIN: usize = 6;
    pub(in crate::handshake) const TRANSFER_ENCODING: usize = 7;
    pub(in crate::handshake) const CONTENT_LENGTH: usize = 8;
    // The client's.
    pub(in crate::handshake) const ACCEPT: usize = 3;
    pub(in crate::handshake) const EXTENSIONS: usize = 4;
}

/// The header names a server checks (see [`name`]).
pub(super) const SERVER: [&str; 9] = [
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Protocol",
    "Host",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Key",
    "Origin",
    "Transfer-Encoding",
    "Content-Length",
];
/// The header names a client checks (see [`name`]).
pub(super) const CLIENT: [&str; 5] = [
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Extensions",
];

/// [`SERVER`], packed.
pub(super) static SERVER_NAMES: Texts<9, { total_len(&SERVER) }> = Texts::new(&SERVER);
/// [`CLIENT`], packed.
pub(super) static CLIENT_NAMES: Texts<5, { total_len(&CLIENT) }> = Texts::new(&CLIENT);

/// The most names a [`Scan`] counts (the server's).
pub(super) const MAX_NAMES: usize = SERVER.len();

/// What one pass over the headers found, for every header name either side
/// of the handshake checks (names compare case-insensitively). One pass
/// with one name comparison loop, rather than a search per header name,
/// keeps the parsers small.
pub(super) struct Scan<'b> {
    /// How many headers of each name (saturating).
    pub(super) count: [u8; MAX_NAMES],
    /// The first value of each name, trimmed of whitespace.
    pub(super) first: [&'b [u8]; MAX_NAMES],
    /// `websocket` is an element of an `Upgrade` list (any case).
    pub(super) upgrade_websocket: bool,
    /// `upgrade` is an element of a `Connection` list (any case).
    pub(super) connection_upgrade: bool,
    /// An element of a `Sec-WebSocket-Protocol` list is not an HTTP token.
    pub(super) invalid_subprotocol: bool,
    /// A `Sec-WebSocket-Extensions` list has a (non-empty) element.
    pub(super) extension: bool,
    /// A `Transfer-Encoding`, or a `Content-Length` other than 0.
    pub(super) body: bool,
}

impl<'b> Scan<'b> {
    /// Scans `headers` for the names one side checks: the server's
    /// ([`SERVER`]) if `IS_SERVER`, else the client's ([`CLIENT`]).
    pub(super) fn new<const IS_SERVER: bool>(headers: &[Header<'b>]) -> Self {
        let server = IS_SERVER;
        let mut scan = Self {
            count: [0; MAX_NAMES],
            first: [&[]; MAX_NAMES],
            upgrade_websocket: false,
            connection_upgrade: false,
            invalid_subprotocol: false,
            extension: false,
            body: false,
        };
        for header in headers {
            let name = header.name.as_bytes();
            let names = if server { SERVER.len() } else { CLIENT.len() };
            let Some(i) = (0..names).find(|&i| {
                let known = if server {
                    SERVER_NAMES.get(i)
                } else {
                    CLIENT_NAMES.get(i)
                };
                eq_ignore_case(name, known)
            }) else {
                continue;
            };
            let value = header.value;
            if let (Some(count), Some(first)) = (scan.count.get_mut(i), scan.first.get_mut(i)) {
                if *count == 0 {
                    *first = trim_ows(value);
                }
                *count = count.saturating_add(1);
            }
            for_each_element(value, |token| match (server, i) {
                (_, name::UPGRADE) => {
                    scan.upgrade_websocket |= eq_ignore_case(token, b"websocket");
                }
                (_, name::CONNECTION) => {
                    scan.connection_upgrade |= eq_ignore_case(token, b"upgrade");
                }
                // A client checks the one subprotocol chosen against those
                // it offered instead.
                (true, name::PROTOCOL) => scan.invalid_subprotocol |= !is_token(token),
                (false, name::EXTENSIONS) => scan.extension = true,
                _ => {}
            });
            match (server, i) {
                (true, name::TRANSFER_ENCODING) => scan.body = true,
                (true, name::CONTENT_LENGTH) => scan.body |= trim_ows(value) != b"0",
                _ => {}
            }
        }
        scan
    }

    /// Whether any header has the name of index `i` (see [`name`]).
    pub(super) fn has(&self, i: usize) -> bool {
        self.count.get(i).is_some_and(|&c| c > 0)
    }

    /// The header with the name of index `i` (see [`name`]), which must
    /// appear at most once (trimmed).
    pub(super) fn single(&self, i: usize) -> Single<'b> {
        match (self.count.get(i), self.first.get(i)) {
            (Some(1), Some(value)) => Single::One(value),
            (Some(0) | None, _) | (_, None) => Single::Absent,
            (Some(_), Some(_)) => Single::Many,
        }
    }
}

/// `s` without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3)
/// around it: all the whitespace a header value that httparse accepted
/// can hold, so the same as `trim_ascii` there, in less code.
pub(super) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Calls `f` with each element of one comma-separated header value,
/// trimmed of whitespace, empty elements skipped. A loop over `position`
/// rather than `split().map().filter()`, whose iterator adapters cost
/// flash.
pub(super) fn for_each_element(value: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = value;
    loop {
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let (element, tail) = rest.split_at(end);
        let element = trim_ows(element);
        if !element.is_empty() {
            f(element);
        }
        match tail.split_first() {
            Some((_, tail)) => rest = tail,
            None => return,
        }
    }
}

/// The elements of a comma-separated header list over every header named
/// `name`: trimmed of whitespace, empty elements skipped.
#[derive(Clone, Debug)]
pub(super) struct Tokens<'h, 'b> {
    name: &'static str,
    headers: core::slice::Iter<'h, Header<'b>>,
    rest: Option<&'b [u8]>,
}

impl<'h, 'b> Tokens<'h, 'b> {
    pub(super) fn new(headers: &'h [Header<'b>], name: &'static str) -> Self {
        Self {
            name,
            headers: headers.iter(),
            rest: None,
        }
    }
}

impl<'b> Iterator for Tokens<'_, 'b> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        loop {
            let rest = match self.rest {
                Some(rest) => rest,
                None => {
                    let name = self.name;
                    self.headers
                        .find(|h| eq_ignore_case(h.name.as_bytes(), name.as_bytes()))?
                        .value
                }
            };
            let mut parts = rest.splitn(2, |&b| b == b',');
            let element = trim_ows(parts.next().unwrap_or_default());
            self.rest = parts.next();
            if !element.is_empty() {
                return Some(element);
            }
        }
    }
}

impl core::iter::FusedIterator for Tokens<'_, '_> {}

/// Whether any element of the `name` lists equals `token`, ignoring case.
#[cfg(test)]
pub(super) fn has_token(headers: &[Header<'_>], name: &'static str, token: &str) -> bool {
    Tokens::new(headers, name).any(|t| eq_ignore_case(t, token.as_bytes()))
}

/// `a` and `b` are equal ignoring ASCII case. One byte at a time: what
/// `<[u8]>::eq_ignore_ascii_case` does for the short names and tokens of a
/// handshake, without linking its word-at-a-time path (about 100 bytes of
/// flash on a Cortex-M).
#[inline(never)]
pub(super) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// An HTTP `tchar` (RFC 9110 §5.6.2).
pub(super) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// A non-empty HTTP token.
pub(super) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// A header value that cannot end the line: HTAB, visible ASCII, space and
/// obs-text; no CR, LF, NUL, other controls or DEL.
pub(super) fn is_field_value(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b == b'\t' || matches!(b, 0x20..=0x7e) || b >= 0x80)
}

/// Visible ASCII only (no space, no controls): hosts and request targets.
pub(super) fn is_visible_ascii(v: &[u8]) -> bool {
    v.iter().all(|&b| matches!(b, 0x21..=0x7e))
}

/// Whether `key` is the padded base64 of exactly 16 bytes (canonical, as a
/// strict decoder accepts it).
///
/// Checked by shape rather than by decoding (the nonce itself is never
/// used): 21 characters of the standard alphabet, then one whose low four
/// bits are zero (`A`, `Q`, `g` or `w`: the last two bits of the 16th byte
/// followed by zero padding bits), then `==`.
#[inline(never)]
pub(super) fn is_valid_key(key: &[u8]) -> bool {
    let [body @ .., last, b'=', b'='] = key else {
        return false;
    };
    body.len() == 21
        && body.iter().all(|&b| is_base64(b))
        && matches!(last, b'A' | b'Q' | b'g' | b'w')
}

/// A character of the standard base64 alphabet (RFC 4648 §4), padding
/// excluded.
pub(super) const fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}
