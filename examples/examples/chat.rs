//! A browser chat: the server serves its own page (HTML and a few lines of
//! JavaScript, `chat.html`, no build step) and the WebSocket the page
//! opens, on the same port. Members are in rooms named by the URL path
//! (`/room/NAME`; `/` and `/ws` are room `lobby`). A message from one member
//! goes to every *other* member of the room, prefixed with the sender's name
//! (the sender's page shows it at once itself).
//!
//! The rooms are `snowsocket-pubsub`'s [`Rooms`]: alone, one process serves
//! them; with `--redis URL`, several instances (behind nginx, see
//! `scripts/cluster.sh`) share them through Redis pub/sub, and a message
//! from a member of any instance reaches the room's members on all of them.
//! A send never waits, so one member who stops reading holds up nobody.
//!
//! ```text
//! cargo run --release --example chat                        # open http://127.0.0.1:9002/
//! cargo run --release --example chat -- --addr 0.0.0.0:8080
//! cargo run --release --example chat -- --tls-cert cert.pem --tls-key key.pem   # https:// and wss://
//! cargo run --release --example chat -- --redis redis://127.0.0.1:6379/ --instance a
//! cargo run --release --example chat -- --demo              # 3 clients, one run, exits
//! ```
//!
//! `GET /` and `GET /room/NAME` are the page, `GET /health` answers `ok`;
//! the WebSocket is `/room/NAME?name=NAME` (or `/ws?name=NAME`, the lobby;
//! text only: a binary message is closed with 1003); anything else is a
//! 404. Ctrl-C or SIGTERM closes every member with 1001.
//! `scripts/browser.sh` drives it in two headless Chromium pages.

use std::process::ExitCode;
use std::sync::mpsc;

use snowsocket_examples::cli;
use snowsocket_pubsub::{room_from_path, Rooms, RoomsConfig};
use snowsocket_server::client::{self, ClientConfig};
use snowsocket_server::{
    Accept, CloseCode, CloseInfo, ConnectionHandle, Handler, HttpRequest, HttpResponse, Message,
    Server, ServerConfig, UpgradeRequest,
};

/// The page, served at `/` and `/room/NAME`.
const PAGE: &str = include_str!("chat.html");

/// The room of `/` and `/ws`.
const LOBBY: &str = "lobby";

const USAGE: &str = "usage: chat [--addr HOST:PORT] [--tls-cert PEM --tls-key PEM]
            [--redis URL] [--instance NAME] [--demo]

  --addr HOST:PORT   where to listen (default 127.0.0.1:9002; with --demo,
                     127.0.0.1:0, a free port)
  --tls-cert PEM     serve https:// and wss:// with this certificate chain
  --tls-key PEM      ... and this private key (both or neither)
  --redis URL        share the rooms with other instances through this Redis
                     (redis://HOST:PORT/); without it this process serves
                     them alone. While Redis is away each instance serves its
                     own members and logs it; it reconnects by itself
  --instance NAME    this instance's name in the join notices and in Redis
                     (default chat-PID)
  --demo             three clients join, one speaks, the others hear; exits
  -h, --help         this text";

/// A member: its name (from `?name=`: letters, digits, `-`, `_`) and room.
struct Member {
    name: String,
    room: String,
}

struct Chat {
    rooms: Rooms,
}

impl Chat {
    /// Sends `text` to every member of `conn`'s room but `conn`.
    fn say(&self, conn: &ConnectionHandle, text: &str) {
        if let Some(member) = conn.context::<Member>() {
            self.rooms.publish(&member.room, conn, Message::Text(text));
        }
    }
}

fn name_of(conn: &ConnectionHandle) -> &str {
    conn.context::<Member>().map_or("?", |m| m.name.as_str())
}

/// The room a path names: `/room/NAME`, or the lobby for `/ws`.
fn room_of(path: &str) -> Option<&str> {
    if path == "/ws" {
        Some(LOBBY)
    } else {
        room_from_path(path)
    }
}

impl Handler for Chat {
    fn on_request(&self, request: &HttpRequest<'_, '_>) -> HttpResponse {
        let path = request.path();
        let page = path == "/" || path == "/index.html" || room_from_path(path).is_some();
        match request.method() {
            "GET" | "HEAD" if page => {
                HttpResponse::html(PAGE).with_header("Cache-Control", "no-store")
            }
            "GET" | "HEAD" if path == "/health" => HttpResponse::text(200, "ok"),
            "GET" | "HEAD" if path == "/ws" => HttpResponse::upgrade_required(),
            _ if page || path == "/health" || path == "/ws" => {
                HttpResponse::text(405, "GET only").with_header("Allow", "GET, HEAD")
            }
            _ => HttpResponse::not_found(),
        }
    }

    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        let Some(room) = room_of(request.path()) else {
            return Accept::reject(404, "the chat is at /room/NAME or /ws");
        };
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
        Accept::upgrade().with_context(Member {
            name,
            room: room.to_owned(),
        })
    }

    fn on_connect(&self, conn: &ConnectionHandle) {
        if let Some(member) = conn.context::<Member>() {
            self.rooms.join(&member.room, conn);
        }
        self.say(conn, &format!("* {} joined", name_of(conn)));
    }

    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        match message {
            Message::Text(text) => self.say(conn, &format!("{}: {text}", name_of(conn))),
            Message::Binary(_) => {
                let _ = conn.close(CloseCode::UNSUPPORTED_DATA, "text only");
            }
        }
    }

    fn on_close(&self, conn: &ConnectionHandle, _info: CloseInfo) {
        self.say(conn, &format!("* {} left", name_of(conn)));
        if let Some(member) = conn.context::<Member>() {
            self.rooms.leave(&member.room, conn);
        }
    }
}

struct Options {
    addr: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    redis: Option<String>,
    instance: Option<String>,
    demo: bool,
}

/// The options; `Ok(None)` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        addr: None,
        cert: None,
        key: None,
        redis: None,
        instance: None,
        demo: false,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => options.addr = Some(value()?),
            "--tls-cert" => options.cert = Some(value()?),
            "--tls-key" => options.key = Some(value()?),
            "--redis" => options.redis = Some(value()?),
            "--instance" => options.instance = Some(value()?),
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
    let instance = options
        .instance
        .clone()
        .unwrap_or_else(|| format!("chat-{}", std::process::id()));
    let mut rooms = RoomsConfig::new(instance);
    if let Some(url) = &options.redis {
        rooms = rooms.redis(url.clone());
    }
    let chat = Chat {
        rooms: Rooms::start(rooms)?,
    };
    let server = Server::bind(addr, config).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let handle = server.spawn(chat)?;
    let local = handle.local_addr();
    // Signals are caught before the URL is printed (see echo_server).
    let stop = if options.demo {
        None
    } else {
        let (stop_tx, stop_rx) = mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = stop_tx.send(());
        })?;
        Some(stop_rx)
    };
    println!("listening on {http}://{local}/ (the page; rooms: {ws}://{local}/room/NAME)");
    if options.demo {
        let client_config = match (&options.cert, http) {
            (Some(cert), "https") => ClientConfig::default().add_root_pem(cert)?,
            _ => ClientConfig::default(),
        };
        run_demo(&format!("{ws}://{local}/room/demo"), client_config)?;
    } else if let Some(stop_rx) = stop {
        let _ = stop_rx.recv();
    }
    handle.shutdown();
    Ok(())
}

/// Three clients join; the first speaks; the two others hear it.
fn run_demo(url: &str, config: ClientConfig) -> Result<(), Box<dyn core::error::Error>> {
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut client = client::connect(&format!("{url}?name=client{i}"), config.clone())?;
        // The rooms say when the member is in (its room is live).
        loop {
            match client.read_message()? {
                Some(Message::Text(text)) if text.starts_with("* joined room") => break,
                Some(Message::Text(text)) if text.starts_with("* ") => {}
                other => return Err(format!("client {i} got {other:?}").into()),
            }
        }
        clients.push(client);
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
