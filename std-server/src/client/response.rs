//! The server's HTTP answer to the upgrade request: kept whole for the
//! application — the `101`'s headers ([`Client::response`]), or a
//! refusal's status, headers and body ([`ClientError::Rejected`]).
//!
//! [`Client::response`]: super::Client::response
//! [`ClientError::Rejected`]: super::ClientError::Rejected

use std::borrow::Cow;
use std::io::{self, Read};
use std::time::Instant as StdInstant;

use crate::transport::{set_deadline, Transport};

/// The most body bytes of a refusal kept (the rest is not read).
pub const MAX_REJECTION_BODY: usize = 64 * 1024;

/// The most headers of an answer read.
const MAX_HEADERS: usize = 64;

/// An HTTP response to the upgrade request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code (`101` for an accepted upgrade).
    pub status: u16,
    /// The reason phrase of the status line (`Switching Protocols`).
    pub reason: String,
    /// Every header, in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body: empty for a `101`; for a refusal, what the server sent
    /// (de-chunked), at most [`MAX_REJECTION_BODY`] bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// Parses the status line and headers at the start of `head` (a
    /// complete header block); `None` if it is not one.
    pub(super) fn from_head(head: &[u8]) -> Option<(Self, usize)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(consumed)) = response.parse(head) else {
            return None;
        };
        let parsed = Self {
            status: response.code?,
            reason: response.reason.unwrap_or_default().to_owned(),
            headers: response
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                .collect(),
            body: Vec::new(),
        };
        Some((parsed, consumed))
    }

    /// The body's framing, from the headers.
    fn framing(&self) -> Framing {
        let chunked = self.header("transfer-encoding").is_some_and(|v| {
            String::from_utf8_lossy(v)
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        });
        if chunked {
            return Framing::Chunked;
        }
        let length = self
            .header("content-length")
            .and_then(|v| core::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match length {
            Some(n) => Framing::Length(usize::try_from(n).unwrap_or(usize::MAX)),
            None if matches!(self.status, 100..=199 | 204 | 304) => Framing::Length(0),
            None => Framing::UntilEof,
        }
    }
}

/// How a body ends.
enum Framing {
    Length(usize),
    Chunked,
    UntilEof,
}

/// A refused upgrade: the answer whose head starts `buf`, with its body
/// read from `transport` (until its length, its last chunk, the server's
/// EOF, [`MAX_REJECTION_BODY`] or `deadline`, whichever comes first: the
/// refusal is reported however the body ends).
pub(super) fn read_rejection(
    transport: &mut Transport,
    mut buf: Vec<u8>,
    deadline: StdInstant,
) -> Option<Response> {
    let (mut response, head) = Response::from_head(&buf)?;
    let framing = response.framing();
    let complete = |body: &[u8]| match framing {
        Framing::Length(n) => body.len() >= n.min(MAX_REJECTION_BODY),
        Framing::Chunked => body.len() >= MAX_REJECTION_BODY || dechunk(body).1,
        Framing::UntilEof => body.len() >= MAX_REJECTION_BODY,
    };
    let mut chunk = [0u8; 4096];
    while !complete(&buf[head..]) {
        if set_deadline(transport.socket(), deadline).is_err() {
            break;
        }
        match transport.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let body = &buf[head..];
    let mut body = match framing {
        Framing::Chunked => dechunk(body).0,
        Framing::Length(n) => body[..body.len().min(n)].to_vec(),
        Framing::UntilEof => body.to_vec(),
    };
    body.truncate(MAX_REJECTION_BODY);
    response.body = body;
    Some(response)
}

/// The data of a chunked body, and whether its last chunk was seen.
fn dechunk(mut input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Ok(httparse::Status::Complete((start, size))) = httparse::parse_chunk_size(input)
        else {
            return (out, false);
        };
        if size == 0 {
            return (out, true);
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let data = &input[start..];
        let take = data.len().min(size);
        out.extend_from_slice(&data[..take]);
        // The chunk and its CRLF.
        match data.get(size..).and_then(|rest| rest.get(2..)) {
            Some(rest) => input = rest,
            None => return (out, false),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn head_and_headers() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\
            Content-Length: 4\r\n\r\nnope";
        let (response, head) = Response::from_head(raw).unwrap();
        assert_eq!(head, raw.len() - 4);
        assert_eq!(
            (response.status, response.reason.as_str()),
            (401, "Unauthorized")
        );
        assert_eq!(response.header("www-authenticate"), Some(&b"Basic"[..]));
        assert_eq!(response.header("X-Missing"), None);
        assert!(matches!(response.framing(), Framing::Length(4)));
        assert!(Response::from_head(b"HTTP/1.1 401 Unauth").is_none());
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\n\r\n"),
            (b"Wikipedia".to_vec(), true)
        );
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5\r\npe"),
            (b"Wikipe".to_vec(), false)
        );
        assert_eq!(dechunk(b"zz\r\n"), (Vec::new(), false));
    }
}
