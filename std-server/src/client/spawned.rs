//! [`Spawned`]: a client connection whose events go to a handler.

use std::sync::mpsc::Receiver;

use snowsocket_core::CloseCode;

use super::Sender;
use crate::close::{CloseCause, CloseInfo};

/// A client whose events go to a handler (see [`Client::spawn`](super::Client::spawn)).
/// Dropping it closes the connection (Close 1000) and waits for the end.
#[derive(Debug)]
pub struct Spawned {
    pub(super) sender: Sender,
    pub(super) done: Receiver<CloseInfo>,
    pub(super) info: Option<CloseInfo>,
}

impl Spawned {
    /// A handle to send from any thread.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Whether the connection has ended (`on_close` has run).
    pub fn is_finished(&mut self) -> bool {
        if self.info.is_none() {
            self.info = self.done.try_recv().ok();
        }
        self.info.is_some()
    }

    /// Starts the close handshake and waits for the end (at most the close
    /// timeout after the Close is written): how it ended.
    pub fn close(mut self, code: CloseCode, reason: &str) -> CloseInfo {
        let _ = self.sender.close(code, reason);
        self.wait()
    }

    /// Waits until the connection ends (the server closes it, or a send
    /// fails, or the heartbeat gives up): how it ended.
    pub fn join(mut self) -> CloseInfo {
        self.wait()
    }

    fn wait(&mut self) -> CloseInfo {
        if let Some(info) = self.info.take() {
            return info;
        }
        self.done
            .recv()
            .unwrap_or_else(|_| CloseInfo::new(CloseCause::UnexpectedEof, None, ""))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.info.is_none() {
            let _ = self.sender.close(CloseCode::NORMAL, "");
            self.info = Some(self.wait());
        }
    }
}
