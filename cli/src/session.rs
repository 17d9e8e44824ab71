//! One connection: connect, pump standard input into it (or echo), print
//! what arrives, and tell how it ended.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, Ordering};
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};

use snowsocket_server::client::{self, BlockingSender, Client, ClientConfig, ClientError, Sender};
use snowsocket_server::PerMessageDeflate;
use snowsocket_server::{CloseCode, CloseInfo, Message, MessageKind, SendError};

use crate::args::Options;
use crate::{exit, insecure};

/// Runs the session `options` describe; returns the exit status.
pub(crate) fn run(options: &Options) -> u8 {
    let say = |text: &str| {
        if !options.quiet {
            eprintln!("snowsocket: {text}");
        }
    };
    let config = match client_config(options) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("snowsocket: {e}");
            return exit::CONNECT_FAILED;
        }
    };
    if options.insecure {
        eprintln!("{}", insecure::WARNING);
    }
    // SIGINT, SIGTERM, SIGHUP: Close 1001 once connected (a second signal,
    // or one while connecting, exits at once).
    let signalled = Arc::new(AtomicBool::new(false));
    let target: Arc<Mutex<Option<Sender>>> = Arc::default();
    let (flag, to_close) = (Arc::clone(&signalled), Arc::clone(&target));
    let caught = ctrlc::set_handler(move || {
        let handle = to_close
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match handle {
            Some(handle) if !flag.swap(true, Ordering::SeqCst) => {
                let _ = handle.close(CloseCode::GOING_AWAY, "");
            }
            _ => std::process::exit(exit::SIGNALLED.into()),
        }
    });
    if let Err(e) = caught {
        log::warn!("cannot catch SIGINT/SIGTERM: {e}");
    }
    let mut client = match client::connect(&options.url, config) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("snowsocket: {}: {e}", options.url);
            return exit::CONNECT_FAILED;
        }
    };
    let chosen = match client.subprotocol() {
        Some(p) => format!(" (subprotocol {p})"),
        None => String::new(),
    };
    let mode = if options.echo {
        "echoing"
    } else if io::stdin().is_terminal() {
        "type a line to send it, Ctrl-D to close"
    } else {
        "sending standard input"
    };
    *target.lock().unwrap_or_else(PoisonError::into_inner) = Some(client.sender());
    say(&format!("connected to {}{chosen}; {mode}", options.url));

    let status = if options.echo {
        echo(&mut client)
    } else {
        let sender = client.blocking_sender();
        let quiet = options.quiet;
        // Not joined: it may be blocked reading a terminal when the server
        // closes, and the process ends with this thread.
        let pump = std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || pump_stdin(&sender, quiet));
        if let Err(e) = pump {
            eprintln!("snowsocket: cannot start the standard input thread: {e}");
            let _ = client.close(CloseCode::GOING_AWAY, "");
            return exit::ABNORMAL;
        }
        print(&mut client, options.raw)
    };
    let ended = client.close_info().cloned();
    let status = match (status, ended) {
        (Some(status), _) => status,
        (None, Some(info)) => {
            let status = exit::status(&info);
            let end = describe(&info);
            if status != 0 {
                eprintln!("snowsocket: {end}");
            } else {
                say(&end);
            }
            status
        }
        (None, None) => exit::ABNORMAL,
    };
    if signalled.load(Ordering::SeqCst) {
        exit::SIGNALLED
    } else {
        status
    }
}

/// How it ended, in one line: `closed by the peer: 1001 "server shutdown"`.
fn describe(info: &CloseInfo) -> String {
    match info.code {
        Some(code) if info.reason.is_empty() => format!("{}: {}", info.cause, code.0),
        Some(code) => format!("{}: {} {:?}", info.cause, code.0, info.reason),
        None => info.cause.to_string(),
    }
}

/// The client configuration the options ask for.
fn client_config(options: &Options) -> Result<ClientConfig, String> {
    let mut config = ClientConfig::default();
    for ca in &options.ca {
        config = config.add_root_pem(ca).map_err(|e| e.to_string())?;
    }
    if options.insecure {
        let tls = insecure::config().map_err(|e| format!("TLS configuration: {e}"))?;
        config = config.tls(tls);
    }
    for (name, value) in &options.headers {
        config = config.header(name.as_str(), value.as_str());
    }
    for protocol in &options.subprotocols {
        config = config.subprotocol(protocol.as_str());
    }
    if let Some(origin) = &options.origin {
        config = config.origin(origin.as_str());
    }
    let mut connection = config.connection;
    if let Some(interval) = options.ping {
        connection = connection.ping_interval(interval);
    }
    if let Some(bytes) = options.max_message_size {
        connection = connection.max_message_size(bytes).max_frame_size(bytes);
        config.max_buffered_bytes = config.max_buffered_bytes.max(bytes.saturating_add(16));
    }
    if options.deflate {
        // What any server can accept: we reset our compressor after every
        // message (client_no_context_takeover), and the server may limit
        // our window (client_max_window_bits offered).
        config = config.permessage_deflate(
            PerMessageDeflate::default()
                .client_no_context_takeover(true)
                .client_max_window_bits(Some(15)),
        );
    }
    Ok(config.connection(connection))
}

/// Sends each line of standard input as a text message, then Close 1000.
fn pump_stdin(sender: &BlockingSender, quiet: bool) {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => number += 1,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("snowsocket: reading standard input: {e}");
                break;
            }
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let Ok(text) = core::str::from_utf8(text) else {
            eprintln!("snowsocket: line {number} of standard input is not UTF-8: not sent");
            continue;
        };
        match sender.send_text(text) {
            Ok(()) => {}
            Err(SendError::Closed) => {
                // The reading thread reports how it ended.
                if !quiet {
                    eprintln!(
                        "snowsocket: the connection is closed: line {number} and what follows \
                         were not sent"
                    );
                }
                return;
            }
            Err(e) => eprintln!("snowsocket: line {number} not sent: {e}"),
        }
    }
    // The end of input: the close handshake; the reading thread sees its end.
    let _ = sender.handle().close(CloseCode::NORMAL, "");
}

/// Prints every message until the connection ends; `Some(status)` when
/// the session must end with that status rather than the close's.
fn print(client: &mut Client, raw: bool) -> Option<u8> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut hex = String::new();
    loop {
        let written = match client.read_message() {
            Ok(Some(Message::Text(text))) => writeln!(out, "{text}"),
            Ok(Some(Message::Binary(data))) if raw => out.write_all(data),
            Ok(Some(Message::Binary(data))) => {
                hex.clear();
                for byte in data {
                    let _ = write!(hex, "{byte:02x}");
                }
                writeln!(out, "{hex}")
            }
            Ok(None) | Err(ClientError::Closed(_)) => return None,
            Err(e) => {
                eprintln!("snowsocket: {e}");
                return Some(exit::ABNORMAL);
            }
        };
        if let Err(e) = written.and_then(|()| out.flush()) {
            eprintln!("snowsocket: cannot write standard output: {e}");
            let _ = client.close(CloseCode::GOING_AWAY, "");
            return Some(exit::STDOUT_FAILED);
        }
    }
}

/// Sends every message back until the connection ends.
fn echo(client: &mut Client) -> Option<u8> {
    let sender = client.blocking_sender();
    loop {
        let sent = match client.read_message() {
            Ok(Some(Message::Text(text))) => sender.send(MessageKind::Text, text.as_bytes()),
            Ok(Some(Message::Binary(data))) => sender.send(MessageKind::Binary, data),
            Ok(None) | Err(ClientError::Closed(_)) => return None,
            Err(e) => {
                eprintln!("snowsocket: {e}");
                return Some(exit::ABNORMAL);
            }
        };
        match sent {
            // The server closed meanwhile: read_message reports how.
            Ok(()) | Err(SendError::Closed) => {}
            Err(e) => {
                eprintln!("snowsocket: {e}");
                let _ = client.close(CloseCode::INTERNAL_ERROR, "");
                return Some(exit::ABNORMAL);
            }
        }
    }
}
