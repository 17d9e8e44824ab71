//! A chat client for the tests and the benchmark.

use core::time::Duration;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use snowsocket_server::client::{self, ClientConfig, Spawned};
use snowsocket_server::{CloseInfo, ConnectionHandle, Handler, Message};

use super::Error;
use crate::state::lock;

/// What a [`Member`] heard.
#[derive(Debug)]
pub enum Heard {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The connection ended.
    Closed(CloseInfo),
}

/// A chat client whose messages arrive on a channel.
#[derive(Debug)]
pub struct Member {
    /// The instance its join notice named.
    pub instance: String,
    /// The join notice.
    pub notice: String,
    /// What it hears, in order.
    pub heard: Receiver<Heard>,
    spawned: Spawned,
}

struct Forward(Mutex<Sender<Heard>>);

impl Handler for Forward {
    fn on_message(&self, _conn: &ConnectionHandle, message: Message<'_>) {
        let heard = match message {
            Message::Text(t) => Heard::Text(t.to_owned()),
            Message::Binary(b) => Heard::Binary(b.to_vec()),
        };
        let _ = lock(&self.0).send(heard);
    }
    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        let _ = lock(&self.0).send(Heard::Closed(info));
    }
}

impl Member {
    /// Connects to `url` and waits for the join notice (at most
    /// `within`).
    pub fn join(url: &str, within: Duration) -> Result<Self, Error> {
        let config = ClientConfig::default().handshake_timeout(within);
        let client = client::connect(url, config).map_err(|e| format!("connect {url}: {e}"))?;
        let (tx, heard) = mpsc::channel();
        let spawned = client
            .spawn(Forward(Mutex::new(tx)))
            .map_err(|e| e.to_string())?;
        let first = heard
            .recv_timeout(within)
            .map_err(|_| format!("no join notice from {url} within {within:?}"))?;
        let (instance, notice) = match first {
            Heard::Text(t) if t.starts_with("* joined room") => (
                t.split(" on instance ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap_or_default()
                    .to_owned(),
                t,
            ),
            other => return Err(format!("expected a join notice, got {other:?}")),
        };
        Ok(Self {
            instance,
            notice,
            heard,
            spawned,
        })
    }

    /// Sends a text message (never blocks).
    pub fn say(&self, text: &str) -> Result<(), Error> {
        self.spawned
            .sender()
            .send_text(text)
            .map_err(|e| e.to_string())
    }

    /// A handle to send from other threads.
    pub fn sender(&self) -> ConnectionHandle {
        self.spawned.sender()
    }
}
