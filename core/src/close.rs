//! Close codes and close-frame payloads (RFC 6455 §5.5.1, §7.4).
//!
//! A leaf: it knows nothing of the connection or its errors ([`crate::error`]
//! depends on it, not the other way round).

use core::fmt;

/// A close status code (RFC 6455 §7.4).
///
/// A newtype over the wire value, with named constants for the registered
/// codes; [`CloseCode::is_valid_on_wire`] says whether a peer may send it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation, pong timeout).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1006: the connection closed without a close frame (never sent on the wire).
    pub const ABNORMAL: Self = Self(1006);
    /// 1007: message data inconsistent with its type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a policy violation.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: an unexpected condition inside the server.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway or proxy got an invalid response upstream.
    pub const BAD_GATEWAY: Self = Self(1014);
    /// 1015: the TLS handshake failed (never sent on the wire).
    pub const TLS_HANDSHAKE: Self = Self(1015);

    /// Whether this code may appear in a close frame on the wire
    /// (RFC 6455 §7.4.1 and the IANA registry): 1000–1003, 1007–1014 and
    /// 3000–4999. Everything else, including 1005, 1006 and 1015, is refused
    /// with a protocol error (1002) when a peer sends it.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u16> for CloseCode {
    fn from(v: u16) -> Self {
        Self(v)
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> Self {
        c.0
    }
}

/// The longest close reason that fits a control frame (125 − 2 bytes of code).
pub const MAX_REASON_LEN: usize = 123;

/// Why a close payload received from the peer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClosePayloadError {
    /// A payload of exactly one byte (a code needs two). Close 1002.
    OneByte,
    /// A code that may not be sent on the wire. Close 1002.
    InvalidCode(CloseCode),
    /// A reason that is not valid UTF-8. Close 1007.
    InvalidReason,
}

impl ClosePayloadError {
    /// The close code to fail the connection with.
    pub const fn close_code(self) -> CloseCode {
        match self {
            Self::OneByte | Self::InvalidCode(_) => CloseCode::PROTOCOL_ERROR,
            Self::InvalidReason => CloseCode::INVALID_PAYLOAD,
        }
    }
}

impl fmt::Display for ClosePayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OneByte => f.write_str("close frame payload of one byte"),
            Self::InvalidCode(c) => write!(f, "close code {} is not allowed on the wire", c.0),
            Self::InvalidReason => f.write_str("close reason is not valid UTF-8"),
        }
    }
}

impl core::error::Error for ClosePayloadError {}

/// Parses and validates a received close payload: `None` when it carries no
/// code, else the code and the UTF-8 reason. (The connection fails with
/// the [`ProtocolError`](crate::ProtocolError) this error converts into.)
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<(CloseCode, &str)>, ClosePayloadError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ClosePayloadError::OneByte),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ClosePayloadError::InvalidCode(code));
            }
            match core::str::from_utf8(reason) {
                Ok(reason) => Ok(Some((code, reason))),
                Err(_) => Err(ClosePayloadError::InvalidReason),
            }
        }
    }
}

/// Cuts `reason` to at most [`MAX_REASON_LEN`] bytes on a character boundary.
pub fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_follows_rfc_and_registry() {
        for code in 0..=u16::MAX {
            let valid = (1000..=1003).contains(&code)
                || (1007..=1014).contains(&code)
                || (3000..=4999).contains(&code);
            assert_eq!(CloseCode(code).is_valid_on_wire(), valid, "{code}");
        }
    }

    #[test]
    fn payload_parsing() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
        assert_eq!(parse_close_payload(&[3]), Err(ClosePayloadError::OneByte));
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, b'o', b'k']),
            Ok(Some((CloseCode::NORMAL, "ok")))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xed]),
            Err(ClosePayloadError::InvalidCode(CloseCode(1005)))
        );
        assert_eq!(
            parse_close_payload(&[0x03, 0xe8, 0xff]),
            Err(ClosePayloadError::InvalidReason)
        );
        assert_eq!(
            ClosePayloadError::OneByte.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
        assert_eq!(
            ClosePayloadError::InvalidReason.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
    }

    #[test]
    fn reasons_are_cut_on_char_boundaries() {
        let long = "é".repeat(100); // 200 bytes
        let cut = truncate_reason(&long);
        assert!(cut.len() <= MAX_REASON_LEN);
        assert_eq!(cut.len(), 122);
        assert_eq!(truncate_reason("short"), "short");
    }
}
