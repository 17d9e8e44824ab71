//! A chat-style broadcast server: a message from one client goes to every
//! other client, straight from the handler. A send never waits, so one
//! member who stops reading holds up nobody: `broadcast` frames the message
//! once, hands it to every member's outbox and reports (and skips) those
//! whose outbox is full.
//!
//! ```text
//! cargo run --release --example broadcast                  # ws://127.0.0.1:9002
//! cargo run --release --example broadcast -- --addr HOST:PORT
//! cargo run --release --example broadcast -- --demo        # 3 clients, one run, exits
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, PoisonError};

use snowsocket_server::client::{self, ClientConfig};
use snowsocket_server::{
    broadcast, CloseCode, CloseInfo, ConnectionHandle, Handler, Message, Server, ServerConfig,
};

struct Chat {
    room: Mutex<HashMap<u64, ConnectionHandle>>,
    /// Told about every member who joined (the demo waits for them).
    joined: Mutex<Sender<u64>>,
}

impl Handler for Chat {
    fn on_connect(&self, conn: &ConnectionHandle) {
        lock(&self.room).insert(conn.id(), conn.clone());
        let _ = lock(&self.joined).send(conn.id());
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let others: Vec<ConnectionHandle> = lock(&self.room)
            .values()
            .filter(|member| member.id() != conn.id())
            .cloned()
            .collect();
        let report = broadcast(&others, message);
        if !report.full.is_empty() {
            eprintln!("broadcast: skipped {} slow member(s)", report.full.len());
        }
    }
    fn on_close(&self, conn: &ConnectionHandle, _info: CloseInfo) {
        lock(&self.room).remove(&conn.id());
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn main() -> ExitCode {
    let mut addr = "127.0.0.1:9002".to_owned();
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(a)) => addr = a,
            ("--demo", None) => demo = true,
            _ => {
                eprintln!("usage: broadcast [--addr HOST:PORT] [--demo]");
                return ExitCode::from(2);
            }
        }
    }
    if demo {
        addr = "127.0.0.1:0".into();
    }
    match run(&addr, demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("broadcast: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: &str, demo: bool) -> Result<(), Box<dyn core::error::Error>> {
    let (joined_tx, joined) = mpsc::channel();
    let chat = Chat {
        room: Mutex::new(HashMap::new()),
        joined: Mutex::new(joined_tx),
    };
    let server = Server::bind(addr, ServerConfig::default())?;
    let handle = server.spawn(chat)?;
    println!("listening on ws://{}/", handle.local_addr());
    if demo {
        run_demo(&format!("ws://{}/", handle.local_addr()), &joined)?;
    } else {
        let (stop_tx, stop_rx) = mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = stop_tx.send(());
        })?;
        let _ = stop_rx.recv();
    }
    handle.shutdown();
    Ok(())
}

/// Three clients join; the first speaks; the two others hear it.
fn run_demo(url: &str, joined: &mpsc::Receiver<u64>) -> Result<(), Box<dyn core::error::Error>> {
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(client::connect(url, ClientConfig::default())?);
        // The server has registered the member once on_connect ran.
        joined.recv_timeout(core::time::Duration::from_secs(10))?;
    }
    clients[0].send_text("hello, everyone")?;
    for (i, client) in clients.iter_mut().enumerate().skip(1) {
        match client.read_message()? {
            Some(Message::Text(text)) => println!("client {i} heard: {text}"),
            other => return Err(format!("client {i} got {other:?}").into()),
        }
    }
    for client in &mut clients {
        client.close(CloseCode::NORMAL, "bye")?;
    }
    Ok(())
}
