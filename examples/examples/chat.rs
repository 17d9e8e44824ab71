//! A browser chat: the server serves its own page (HTML and a few lines of
//! JavaScript, `chat.html`, no build step) and the WebSocket the page
//! opens, on the same port. A message from one member goes to every
//! *other* member, prefixed with the sender's name (the sender's page shows
//! it at once itself). A send never waits, so one member who stops reading
//! holds up nobody: `broadcast` frames the message once, hands it to every
//! member's outbox and reports (and skips) those whose outbox is full.
//!
//! ```text
//! cargo run --release --example chat                        # open http://127.0.0.1:9002/
//! cargo run --release --example chat -- --addr 0.0.0.0:8080
//! cargo run --release --example chat -- --tls-cert cert.pem --tls-key key.pem   # https:// and wss://
//! cargo run --release --example chat -- --demo              # 3 clients, one run, exits
//! ```
//!
//! `GET /` is the page, `GET /health` answers `ok`, `/ws?name=NAME` is the
//! WebSocket (text only: a binary message is closed with 1003); anything
//! else is a 404. Ctrl-C closes every member with 1001.
//! `scripts/browser.sh` drives it in two headless Chromium pages.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, PoisonError};

use snowsocket_examples::cli;
use snowsocket_server::client::{self, ClientConfig};
use snowsocket_server::{
    broadcast, Accept, CloseCode, CloseInfo, ConnectionHandle, Handler, HttpRequest, HttpResponse,
    Message, Server, ServerConfig, UpgradeRequest,
};

/// The page, served at `/`.
const PAGE: &str = include_str!("chat.html");

const USAGE: &str = "usage: chat [--addr HOST:PORT] [--tls-cert PEM --tls-key PEM] [--demo]

  --addr HOST:PORT   where to listen (default 127.0.0.1:9002; with --demo,
                     127.0.0.1:0, a free port)
  --tls-cert PEM     serve https:// and wss:// with this certificate chain
  --tls-key PEM      ... and this private key (both or neither)
  --demo             three clients join, one speaks, the others hear; exits
  -h, --help         this text";

/// A member's name, from `/ws?name=...` (letters, digits, `-`, `_`).
struct Name(String);

struct Chat {
    room: Mutex<HashMap<u64, ConnectionHandle>>,
    /// Told about every member who joined (the demo waits for them).
    joined: Mutex<Sender<u64>>,
}

impl Chat {
    /// Sends `message` to every member but `from`.
    fn relay(&self, from: u64, message: Message<'_>) {
        let others: Vec<ConnectionHandle> = lock(&self.room)
            .values()
            .filter(|member| member.id() != from)
            .cloned()
            .collect();
        let report = broadcast(&others, message);
        if !report.full.is_empty() {
            eprintln!("chat: skipped {} slow member(s)", report.full.len());
        }
    }
}

fn name_of(conn: &ConnectionHandle) -> &str {
    conn.context::<Name>().map_or("?", |name| name.0.as_str())
}

impl Handler for Chat {
    fn on_request(&self, request: &HttpRequest<'_, '_>) -> HttpResponse {
        match (request.method(), request.path()) {
            ("GET" | "HEAD", "/" | "/index.html") => {
                HttpResponse::html(PAGE).with_header("Cache-Control", "no-store")
            }
            ("GET" | "HEAD", "/health") => HttpResponse::text(200, "ok"),
            ("GET" | "HEAD", "/ws") => HttpResponse::upgrade_required(),
            (_, "/" | "/health" | "/ws") => {
                HttpResponse::text(405, "GET only").with_header("Allow", "GET, HEAD")
            }
            _ => HttpResponse::not_found(),
        }
    }

    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        if request.path() != "/ws" {
            return Accept::reject(404, "the chat is at /ws");
        }
        let name: String = request
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(24)
            .collect();
        let name = if name.is_empty() {
            "anonymous".into()
        } else {
            name
        };
        Accept::upgrade().with_context(Name(name))
    }

    fn on_connect(&self, conn: &ConnectionHandle) {
        self.relay(
            conn.id(),
            Message::Text(&format!("* {} joined", name_of(conn))),
        );
        lock(&self.room).insert(conn.id(), conn.clone());
        let _ = lock(&self.joined).send(conn.id());
    }

    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        match message {
            Message::Text(text) => {
                let line = format!("{}: {text}", name_of(conn));
                self.relay(conn.id(), Message::Text(&line));
            }
            Message::Binary(_) => {
                let _ = conn.close(CloseCode::UNSUPPORTED_DATA, "text only");
            }
        }
    }

    fn on_close(&self, conn: &ConnectionHandle, _info: CloseInfo) {
        if lock(&self.room).remove(&conn.id()).is_some() {
            self.relay(
                conn.id(),
                Message::Text(&format!("* {} left", name_of(conn))),
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Options {
    addr: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    demo: bool,
}

/// The options; `Ok(None)` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        addr: None,
        cert: None,
        key: None,
        demo: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => options.addr = Some(value()?),
            "--tls-cert" => options.cert = Some(value()?),
            "--tls-key" => options.key = Some(value()?),
            "--demo" => options.demo = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.cert.is_some() != options.key.is_some() {
        return Err("--tls-cert and --tls-key go together".into());
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}\n\n{}", cli::LOGGING_HELP);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("chat: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    cli::init_logging();
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), Box<dyn core::error::Error>> {
    let default_addr = if options.demo {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:9002"
    };
    let addr = options.addr.as_deref().unwrap_or(default_addr);
    let mut config = ServerConfig::default();
    if let (Some(cert), Some(key)) = (&options.cert, &options.key) {
        config = config.tls(snowsocket_server::tls::server_config_from_pem(cert, key)?);
    }
    let (http, ws) = if config.tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let (joined_tx, joined) = mpsc::channel();
    let chat = Chat {
        room: Mutex::new(HashMap::new()),
        joined: Mutex::new(joined_tx),
    };
    let server = Server::bind(addr, config).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let handle = server.spawn(chat)?;
    let local = handle.local_addr();
    println!("listening on {http}://{local}/ (the page; its WebSocket: {ws}://{local}/ws)");
    if options.demo {
        let client_config = match (&options.cert, http) {
            (Some(cert), "https") => ClientConfig::default().add_root_pem(cert)?,
            _ => ClientConfig::default(),
        };
        run_demo(&format!("{ws}://{local}/ws"), client_config, &joined)?;
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
fn run_demo(
    url: &str,
    config: ClientConfig,
    joined: &mpsc::Receiver<u64>,
) -> Result<(), Box<dyn core::error::Error>> {
    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(client::connect(
            &format!("{url}?name=client{i}"),
            config.clone(),
        )?);
        // The server has registered the member once on_connect ran.
        joined.recv_timeout(core::time::Duration::from_secs(10))?;
    }
    clients[0].send_text("hello, everyone")?;
    for (i, client) in clients.iter_mut().enumerate().skip(1) {
        // Skip the news of those who joined later.
        loop {
            match client.read_message()? {
                Some(Message::Text(text)) if text.starts_with("* ") => {}
                Some(Message::Text(text)) => {
                    println!("client {i} heard: {text}");
                    break;
                }
                other => return Err(format!("client {i} got {other:?}").into()),
            }
        }
    }
    for client in &mut clients {
        client.close(CloseCode::NORMAL, "bye")?;
    }
    Ok(())
}
