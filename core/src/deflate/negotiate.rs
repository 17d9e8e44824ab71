//! The permessage-deflate negotiation (RFC 7692 §5, §7.1): offers parsed
//! and accepted by a server, the client's offer written and the server's
//! answer checked against it.

use httparse::Header;

use crate::handshake::HandshakeError;

/// The extension's name.
const NAME: &[u8] = b"permessage-deflate";
/// The header that carries offers and answers.
const HEADER: &[u8] = b"Sec-WebSocket-Extensions";
/// The largest (and default) LZ77 window, in bits.
const MAX_WINDOW_BITS: u8 = 15;
/// The smallest window RFC 7692 allows, in bits.
const MIN_WINDOW_BITS: u8 = 8;

/// What this end offers (client) or accepts (server) of permessage-deflate.
/// The four parameters of RFC 7692 §7.1, each read from this end's role:
///
/// | field | as a server | as a client |
/// |---|---|---|
/// | `server_no_context_takeover` | we reset our compressor after every message (always stated in the answer) | we ask the server to |
/// | `client_no_context_takeover` | we ask the client to reset its compressor (also stated when the client's offer declares it) | we declare that we reset ours |
/// | `server_max_window_bits` | the largest window we compress with | we ask the server to compress with at most this window |
/// | `client_max_window_bits` | we ask the client for at most this window (only if its offer allows it) | we allow the server to limit our window (`Some(15)`: offered without a value; `Some(n)`: at most `n`) |
///
/// Window bits are 8 to 15; a value outside is raised to 8 or lowered to
/// 15. A client request the server cannot meet is answered by declining
/// that offer (RFC 7692 §5.1), never by ignoring it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// See the table above.
    pub server_no_context_takeover: bool,
    /// See the table above.
    pub client_no_context_takeover: bool,
    /// See the table above. `None`: no limit (15 bits).
    pub server_max_window_bits: Option<u8>,
    /// See the table above. `None`: not offered / not asked for.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateConfig {
    /// The default: context takeover both ways, 15-bit windows, nothing
    /// requested of the peer.
    pub const DEFAULT: Self = Self {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: None,
    };

    /// Sets [`DeflateConfig::server_no_context_takeover`].
    pub const fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }
    /// Sets [`DeflateConfig::client_no_context_takeover`].
    pub const fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }
    /// Sets [`DeflateConfig::server_max_window_bits`].
    pub const fn server_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.server_max_window_bits = clamp_bits(bits);
        self
    }
    /// Sets [`DeflateConfig::client_max_window_bits`].
    pub const fn client_max_window_bits(mut self, bits: Option<u8>) -> Self {
        self.client_max_window_bits = clamp_bits(bits);
        self
    }

    /// The client's offer: the value of its `Sec-WebSocket-Extensions`
    /// header (one `permessage-deflate` element with this configuration's
    /// parameters).
    pub fn offer(&self) -> ExtensionValue {
        let mut v = ExtensionValue::new();
        if self.client_no_context_takeover {
            v.push(b"; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            v.push(b"; server_no_context_takeover");
        }
        if let Some(bits) = clamp_bits(self.server_max_window_bits) {
            v.push_bits(b"; server_max_window_bits", Some(bits));
        }
        match clamp_bits(self.client_max_window_bits) {
            Some(MAX_WINDOW_BITS) => v.push(b"; client_max_window_bits"),
            Some(bits) => v.push_bits(b"; client_max_window_bits", Some(bits)),
            None => {}
        }
        v
    }
}

/// `bits` within 8..=15.
const fn clamp_bits(bits: Option<u8>) -> Option<u8> {
    match bits {
        Some(b) if b < MIN_WINDOW_BITS => Some(MIN_WINDOW_BITS),
        Some(b) if b > MAX_WINDOW_BITS => Some(MAX_WINDOW_BITS),
        other => other,
    }
}

/// A negotiated permessage-deflate: the server's answer, as both ends
/// apply it. `*_max_window_bits` are `None` when the answer does not state
/// them (15 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most this window.
    pub server_max_window_bits: Option<u8>,
    /// The client compresses with at most this window.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateParams {
    /// The server's answer: the value of its `Sec-WebSocket-Extensions`
    /// header.
    pub fn answer(&self) -> ExtensionValue {
        let mut v = ExtensionValue::new();
        if self.server_no_context_takeover {
            v.push(b"; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            v.push(b"; client_no_context_takeover");
        }
        v.push_bits(b"; server_max_window_bits", self.server_max_window_bits);
        v.push_bits(b"; client_max_window_bits", self.client_max_window_bits);
        v
    }
}

/// A `Sec-WebSocket-Extensions` value written by this module (at most 128
/// bytes: one element, four parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionValue(heapless::Vec<u8, 128>);

impl ExtensionValue {
    fn new() -> Self {
        let mut v = Self(heapless::Vec::new());
        v.push(NAME);
        v
    }

    /// The value's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn push(&mut self, bytes: &[u8]) {
        // At most 18 + 28 + 28 + 26 + 26 bytes in all: always fits.
        let _ = self.0.extend_from_slice(bytes);
    }

    fn push_bits(&mut self, name: &[u8], bits: Option<u8>) {
        if let Some(bits) = bits {
            self.push(name);
            self.push(b"=");
            if bits >= 10 {
                self.push(&[b'1', b'0' + bits - 10]);
            } else {
                self.push(&[b'0' + bits]);
            }
        }
    }
}

/// One offer or answer element, parsed: which parameters it has. `None`
/// for the window bits means absent; `Some(None)` a `client_max_window_bits`
/// without a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Element {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

/// Why an element is not a valid permessage-deflate one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Invalid {
    /// Another extension's name.
    OtherExtension,
    /// An unknown, repeated or malformed parameter.
    BadParameter,
}

/// Server side: the first acceptable permessage-deflate offer among the
/// request's `Sec-WebSocket-Extensions` headers (every element of every
/// such header, in order), answered as `config` says; `None` when there is
/// none (then answer without the extension). Offers with an unknown,
/// repeated or malformed parameter are declined, as are other extensions.
pub fn negotiate(headers: &[Header<'_>], config: &DeflateConfig) -> Option<DeflateParams> {
    let mut agreed = None;
    for_each_element(headers, |element| {
        if agreed.is_some() {
            return;
        }
        if let Ok(offer) = parse_element(element) {
            agreed = Some(accept_offer(&offer, config));
        }
    });
    agreed
}

/// The answer to a valid offer.
fn accept_offer(offer: &Element, config: &DeflateConfig) -> DeflateParams {
    // Our own window: what the offer asks (we can always use a smaller one),
    // stated when asked for or when we limit it.
    let ours = clamp_bits(config.server_max_window_bits);
    let server_max_window_bits = match (offer.server_max_window_bits, ours) {
        (Some(asked), Some(ours)) => Some(asked.min(ours)),
        (Some(asked), None) => Some(asked),
        (None, Some(ours)) if ours < MAX_WINDOW_BITS => Some(ours),
        (None, _) => None,
    };
    // The client's window: only limited when its offer allows it.
    let client_max_window_bits = match (
        offer.client_max_window_bits,
        clamp_bits(config.client_max_window_bits),
    ) {
        (Some(offered), Some(asked)) => Some(offered.map_or(asked, |o| o.min(asked))),
        _ => None,
    };
    DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        // Offered, it is the client's promise (RFC 7692 §7.1.1.2); stated
        // back, our inflater may forget its window after every message.
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    }
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` answer
/// against our `offer` (`None`: nothing offered). `Ok(None)`: the server
/// declined (no such header); `Err`: an answer we must refuse.
pub(crate) fn accept_answer(
    headers: &[Header<'_>],
    offer: Option<&DeflateConfig>,
) -> Result<Option<DeflateParams>, HandshakeError> {
    let mut count = 0usize;
    let mut answer = Err(Invalid::OtherExtension);
    for_each_element(headers, |element| {
        count += 1;
        answer = parse_element(element);
    });
    if count == 0 {
        return Ok(None);
    }
    let (Some(offer), 1, Ok(answer)) = (offer, count, answer) else {
        return Err(HandshakeError::UnexpectedExtensions);
    };
    let within = |got: Option<u8>, limit: Option<u8>| match (got, limit) {
        (Some(got), Some(limit)) => got <= limit,
        _ => true,
    };
    let ok = (answer.server_no_context_takeover || !offer.server_no_context_takeover)
        && (answer.server_max_window_bits.is_some() || offer.server_max_window_bits.is_none())
        && within(
            answer.server_max_window_bits,
            clamp_bits(offer.server_max_window_bits),
        )
        && match answer.client_max_window_bits {
            None => true,
            // A value is required in an answer, and only if we offered it.
            Some(None) => false,
            Some(Some(bits)) => offer.client_max_window_bits.is_some_and(|o| bits <= o),
        };
    if !ok {
        return Err(HandshakeError::UnexpectedExtensions);
    }
    Ok(Some(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        // What we declared in the offer binds us too.
        client_no_context_takeover: answer.client_no_context_takeover
            || offer.client_no_context_takeover,
        server_max_window_bits: answer.server_max_window_bits,
        client_max_window_bits: answer.client_max_window_bits.flatten(),
    }))
}

/// Calls `f` with every element of every `Sec-WebSocket-Extensions`
/// header, in order: split on commas outside quoted strings, trimmed,
/// empty elements skipped.
fn for_each_element(headers: &[Header<'_>], mut f: impl FnMut(&[u8])) {
    for header in headers {
        if !header.name.as_bytes().eq_ignore_ascii_case(HEADER) {
            continue;
        }
        split_outside_quotes(header.value, b',', |element| {
            let element = element.trim_ascii();
            if !element.is_empty() {
                f(element);
            }
        });
    }
}

/// Calls `f` with each part of `s` between `sep` bytes that are not inside
/// a quoted string (a backslash escapes the next byte inside one).
fn split_outside_quotes(s: &[u8], sep: u8, mut f: impl FnMut(&[u8])) {
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in s.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            f(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    f(s.get(start..).unwrap_or_default());
}

/// Parses one element: `permessage-deflate *( ";" param [ "=" value ] )`.
fn parse_element(element: &[u8]) -> Result<Element, Invalid> {
    let mut parsed = Element::default();
    let mut first = true;
    let mut result = Ok(());
    split_outside_quotes(element, b';', |part| {
        if result.is_err() {
            return;
        }
        let part = part.trim_ascii();
        if core::mem::take(&mut first) {
            if !part.eq_ignore_ascii_case(NAME) {
                result = Err(Invalid::OtherExtension);
            }
            return;
        }
        result = parse_param(part, &mut parsed);
    });
    result.map(|()| parsed)
}

/// Parses one parameter into `parsed`, refusing unknown, repeated and
/// malformed ones.
fn parse_param(part: &[u8], parsed: &mut Element) -> Result<(), Invalid> {
    let (name, value) = match part.iter().position(|&b| b == b'=') {
        Some(eq) => {
            let (name, value) = part.split_at(eq);
            let value = value.get(1..).unwrap_or_default().trim_ascii();
            (name.trim_ascii(), Some(unquote(value)?))
        }
        None => (part, None),
    };
    let flag = |seen: &mut bool| {
        if *seen || value.is_some() {
            return Err(Invalid::BadParameter);
        }
        *seen = true;
        Ok(())
    };
    if name.eq_ignore_ascii_case(b"server_no_context_takeover") {
        flag(&mut parsed.server_no_context_takeover)
    } else if name.eq_ignore_ascii_case(b"client_no_context_takeover") {
        flag(&mut parsed.client_no_context_takeover)
    } else if name.eq_ignore_ascii_case(b"server_max_window_bits") {
        match (parsed.server_max_window_bits, value) {
            (None, Some(v)) => parsed.server_max_window_bits = Some(window_bits(v)?),
            _ => return Err(Invalid::BadParameter),
        }
        Ok(())
    } else if name.eq_ignore_ascii_case(b"client_max_window_bits") {
        if parsed.client_max_window_bits.is_some() {
            return Err(Invalid::BadParameter);
        }
        parsed.client_max_window_bits = Some(value.map(window_bits).transpose()?);
        Ok(())
    } else {
        Err(Invalid::BadParameter)
    }
}

/// A token, or a quoted string without escapes (RFC 7692 §7.1: values are
/// tokens, possibly quoted).
fn unquote(value: &[u8]) -> Result<&[u8], Invalid> {
    match value {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') && !inner.contains(&b'"') => Ok(inner),
        v if !v.is_empty() && !v.contains(&b'"') => Ok(v),
        _ => Err(Invalid::BadParameter),
    }
}

/// A window size: an integer 8..=15 without leading zeros.
fn window_bits(v: &[u8]) -> Result<u8, Invalid> {
    match v {
        [d @ b'8'..=b'9'] => Ok(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + d - b'0'),
        _ => Err(Invalid::BadParameter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(value: &str) -> [Header<'_>; 1] {
        [Header {
            name: "Sec-WebSocket-Extensions",
            value: value.as_bytes(),
        }]
    }

    fn params(s: bool, c: bool, sb: Option<u8>, cb: Option<u8>) -> DeflateParams {
        DeflateParams {
            server_no_context_takeover: s,
            client_no_context_takeover: c,
            server_max_window_bits: sb,
            client_max_window_bits: cb,
        }
    }

    #[test]
    fn server_accepts_the_first_valid_offer() {
        let config = DeflateConfig::DEFAULT;
        let cases: &[(&str, Option<DeflateParams>)] = &[
            ("permessage-deflate", Some(params(false, false, None, None))),
            (
                "permessage-deflate; client_max_window_bits",
                Some(params(false, false, None, None)),
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
                Some(params(true, false, Some(10), None)),
            ),
            (
                "permessage-deflate; server_max_window_bits=\"9\"",
                Some(params(false, false, Some(9), None)),
            ),
            // Declined: unknown, repeated, malformed, out of range.
            ("permessage-deflate; foo", None),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
            ("permessage-deflate; server_no_context_takeover=1", None),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; server_max_window_bits=7", None),
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits=010", None),
            ("permessage-deflate; client_max_window_bits=1O", None),
            ("x-webkit-deflate-frame", None),
            // Several offers: the first valid one wins.
            (
                "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=12, permessage-deflate",
                Some(params(false, false, Some(12), None)),
            ),
            (
                "foo, permessage-deflate; client_no_context_takeover",
                Some(params(false, true, None, None)),
            ),
        ];
        for (offer, want) in cases {
            assert_eq!(negotiate(&ext(offer), &config), *want, "{offer}");
        }
    }

    #[test]
    fn server_config_shapes_the_answer() {
        let config = DeflateConfig::DEFAULT
            .server_no_context_takeover(true)
            .client_no_context_takeover(true)
            .server_max_window_bits(Some(11))
            .client_max_window_bits(Some(10));
        let got = negotiate(&ext("permessage-deflate; client_max_window_bits"), &config);
        assert_eq!(got, Some(params(true, true, Some(11), Some(10))));
        let answer = got.map(|p| p.answer());
        assert_eq!(
            answer.as_ref().map(ExtensionValue::as_bytes),
            Some(&b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10"[..])
        );
        // The client did not allow a limit on its window: none is stated.
        let got = negotiate(
            &ext("permessage-deflate; server_max_window_bits=9"),
            &config,
        );
        assert_eq!(got, Some(params(true, true, Some(9), None)));
        // Several headers combine.
        let headers = [
            Header {
                name: "sec-websocket-extensions",
                value: b"foo",
            },
            Header {
                name: "Sec-WebSocket-Extensions",
                value: b"permessage-deflate; client_max_window_bits=12",
            },
        ];
        assert_eq!(
            negotiate(&headers, &config),
            Some(params(true, true, Some(11), Some(10)))
        );
    }

    #[test]
    fn client_offer_and_answer() {
        let offer = DeflateConfig::DEFAULT
            .client_no_context_takeover(true)
            .server_no_context_takeover(true)
            .server_max_window_bits(Some(10))
            .client_max_window_bits(Some(15));
        assert_eq!(
            offer.offer().as_bytes(),
            b"permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits"
        );
        let ok = accept_answer(
            &ext("permessage-deflate; server_no_context_takeover; server_max_window_bits=9; client_max_window_bits=12"),
            Some(&offer),
        );
        assert_eq!(ok, Ok(Some(params(true, true, Some(9), Some(12)))));
        assert_eq!(accept_answer(&[], Some(&offer)), Ok(None));
        let refused = [
            // Lacks what we requested.
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover",
            // Larger than asked.
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            // Malformed, unknown, several, another extension.
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; x=1",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10, permessage-deflate",
            "x-foo",
        ];
        for answer in refused {
            assert_eq!(
                accept_answer(&ext(answer), Some(&offer)),
                Err(HandshakeError::UnexpectedExtensions),
                "{answer}"
            );
        }
        // A client_max_window_bits we did not offer; an answer to no offer.
        let plain = DeflateConfig::DEFAULT;
        assert_eq!(
            accept_answer(
                &ext("permessage-deflate; client_max_window_bits=10"),
                Some(&plain)
            ),
            Err(HandshakeError::UnexpectedExtensions)
        );
        assert_eq!(
            accept_answer(&ext("permessage-deflate"), None),
            Err(HandshakeError::UnexpectedExtensions)
        );
        assert_eq!(plain.offer().as_bytes(), b"permessage-deflate");
    }
}
