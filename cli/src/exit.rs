//! The exit status: how the connection ended, as `--help` documents it.

use snowsocket_server::{CloseCode, CloseInfo};

/// Could not connect.
pub(crate) const CONNECT_FAILED: u8 = 1;
/// Bad command line.
pub(crate) const USAGE: u8 = 2;
/// Ended without a close handshake.
pub(crate) const ABNORMAL: u8 = 3;
/// Closed with a code that has no status of its own.
pub(crate) const OTHER_CODE: u8 = 4;
/// Standard output could not be written.
pub(crate) const STDOUT_FAILED: u8 = 5;
/// Stopped by a signal (128 + SIGINT, as shells report it).
pub(crate) const SIGNALLED: u8 = 130;

/// The exit status for a connection that ended as `info` says.
pub(crate) fn status(info: &CloseInfo) -> u8 {
    if !info.is_clean() {
        return ABNORMAL;
    }
    match info.code {
        None | Some(CloseCode::NORMAL) | Some(CloseCode::NO_STATUS) => 0,
        Some(CloseCode(code @ 1001..=1015)) => {
            // 101..=115: fits.
            u8::try_from(code - 900).unwrap_or(OTHER_CODE)
        }
        Some(_) => OTHER_CODE,
    }
}

#[cfg(test)]
mod tests {
    use snowsocket_server::CloseCause;

    use super::*;

    fn info(cause: CloseCause, code: Option<u16>) -> CloseInfo {
        CloseInfo {
            code: code.map(CloseCode),
            reason: String::new(),
            cause,
        }
    }

    #[test]
    fn mapping() {
        let peer = |code| status(&info(CloseCause::PeerClosed, code));
        assert_eq!(peer(Some(1000)), 0);
        assert_eq!(peer(None), 0);
        assert_eq!(peer(Some(1001)), 101);
        assert_eq!(peer(Some(1008)), 108);
        assert_eq!(peer(Some(1011)), 111);
        assert_eq!(peer(Some(1015)), 115);
        assert_eq!(peer(Some(3000)), OTHER_CODE);
        assert_eq!(peer(Some(4999)), OTHER_CODE);
        assert_eq!(status(&info(CloseCause::ClosedByUs, Some(1000))), 0);
        assert_eq!(status(&info(CloseCause::PongTimeout, Some(1001))), ABNORMAL);
        assert_eq!(status(&info(CloseCause::UnexpectedEof, None)), ABNORMAL);
        assert_eq!(
            status(&info(CloseCause::CloseTimeout, Some(1000))),
            ABNORMAL
        );
    }
}
