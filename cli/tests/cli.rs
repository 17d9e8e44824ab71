//! The `snowsocket` binary against snowsocket-server on 127.0.0.1:0:
//! through a pipe, in echo mode, over wss:// (--ca, --insecure), with
//! headers and subprotocols, and its exit statuses. Every child process is
//! killed if it outlives its deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use snowsocket_server::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use snowsocket_server::{
    on_message, Accept, CloseCode, CloseInfo, ConnectionHandle, Handler, Message, Server,
    ServerConfig, ServerHandle, UpgradeRequest,
};

const DEADLINE: Duration = Duration::from_secs(30);

fn snowsocket(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_snowsocket"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits for `child` (killed after [`DEADLINE`]).
fn finish(child: Child) -> Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(id.to_string())
                .status();
            panic!("snowsocket did not exit within {DEADLINE:?}");
        }
    }
}

/// Runs snowsocket with `input` on its standard input.
fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = snowsocket(args).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    finish(child)
}

/// Runs snowsocket with `input` on its standard input, which stays open
/// until it exits (the end comes from the server).
fn run_open(args: &[&str], input: &[u8]) -> Output {
    let mut child = snowsocket(args).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let output = finish(child);
    drop(stdin);
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Echoes text; answers `bin` with the bytes DE AD 00 0A; closes with the
/// code a `close NNNN` message names; drops the TCP connection for `drop`.
struct Scripted {
    closed: mpsc::Sender<CloseInfo>,
}

impl Handler for Scripted {
    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        if request.path() == "/private" && request.header("authorization") != Some(&b"Bearer t"[..])
        {
            return Accept::reject(401, "who are you?");
        }
        let chosen = request.subprotocols().find(|p| *p == "chat");
        match chosen {
            Some(p) => Accept::upgrade().with_subprotocol(p),
            None => Accept::upgrade(),
        }
    }
    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        let _ = match message {
            Message::Text("bin") => conn.send_binary(&[0xde, 0xad, 0x00, 0x0a]),
            Message::Text(t) if t.starts_with("close ") => {
                let code = t["close ".len()..].parse().unwrap();
                conn.close(CloseCode(code), "as asked")
            }
            Message::Text(t) => conn.send_text(t),
            Message::Binary(b) => conn.send_binary(b),
        };
    }
    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        let _ = self.closed.send(info);
    }
}

fn scripted(config: ServerConfig) -> (ServerHandle, mpsc::Receiver<CloseInfo>) {
    let (closed, ends) = mpsc::channel();
    let server = Server::bind("127.0.0.1:0", config).unwrap();
    (server.spawn(Scripted { closed }).unwrap(), ends)
}

fn ws_url(server: &ServerHandle, path: &str) -> String {
    format!("ws://127.0.0.1:{}{path}", server.local_addr().port())
}

#[test]
fn a_pipe_sends_each_line_and_prints_each_answer() {
    let (server, ends) = scripted(ServerConfig::default());
    let url = ws_url(&server, "/");
    let output = run(
        &[&url],
        "hello\r\nsnow socket\n\nbin\nlast line without newline".as_bytes(),
    );
    assert_eq!(
        text(&output.stdout),
        "hello\nsnow socket\n\ndead000a\nlast line without newline\n",
        "{}",
        text(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("connected to"), "{stderr}");
    // Standard input's end closed with 1000.
    let info = ends.recv_timeout(DEADLINE).unwrap();
    assert_eq!(info.code, Some(CloseCode::NORMAL));
    // --raw writes binary as it is; -q prints nothing on stderr.
    let output = run(&["-q", "--raw", &url], b"bin\n");
    assert_eq!(output.stdout, [0xde, 0xad, 0x00, 0x0a]);
    assert_eq!(output.stderr, b"");
    assert_eq!(output.status.code(), Some(0));
    server.shutdown();
}

#[test]
fn the_exit_status_tells_how_it_ended() {
    let (server, _ends) = scripted(ServerConfig::default());
    let url = ws_url(&server, "/");
    for (code, status) in [(1000, 0), (1001, 101), (1011, 111), (4000, 4)] {
        let line = format!("close {code}\n");
        let output = run_open(&["-q", &url], line.as_bytes());
        assert_eq!(output.status.code(), Some(status), "close {code}");
    }
    // The server shuts down (1001).
    let mut child = snowsocket(&[&url]).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("connected"), "{line}");
    server.shutdown();
    let output = finish(child);
    assert_eq!(output.status.code(), Some(101));
    // Nothing listens: could not connect.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = listener.local_addr().unwrap().port();
    drop(listener);
    let output = run(&[&format!("ws://127.0.0.1:{closed_port}/")], b"");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn an_abnormal_end_exits_3() {
    // A server that answers the upgrade, then drops the connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        ws.send(tungstenite::Message::text("bye")).unwrap();
    });
    let mut child = snowsocket(&[&format!("ws://{addr}/")]).spawn().unwrap();
    // Standard input stays open: the end comes from the server.
    let _stdin = child.stdin.take();
    server.join().unwrap();
    let output = finish(child);
    assert_eq!(text(&output.stdout), "bye\n");
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("without a close handshake"));
}

#[test]
fn echo_mode_sends_every_message_back() {
    let (got, received) = mpsc::channel();
    let (ended, ends) = mpsc::channel();
    struct Talker {
        got: mpsc::Sender<String>,
        ended: mpsc::Sender<CloseInfo>,
    }
    impl Handler for Talker {
        fn on_connect(&self, conn: &ConnectionHandle) {
            conn.send_text("one").unwrap();
            conn.send_binary(&[1, 2, 3]).unwrap();
            conn.send_text("two").unwrap();
        }
        fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
            let seen = format!("{message:?}");
            let _ = self.got.send(seen);
            if message == Message::Text("two") {
                let _ = conn.close(CloseCode::NORMAL, "");
            }
        }
        fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
            let _ = self.ended.send(info);
        }
    }
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
    let server = server.spawn(Talker { got, ended }).unwrap();
    let output = run(
        &["--echo", &ws_url(&server, "/")],
        b"standard input is not read\n",
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(output.stdout, b"");
    let echoed: Vec<String> = received.try_iter().collect();
    assert_eq!(
        echoed,
        [r#"Text("one")"#, "Binary([1, 2, 3])", r#"Text("two")"#]
    );
    assert_eq!(
        ends.recv_timeout(DEADLINE).unwrap().code,
        Some(CloseCode::NORMAL)
    );
    server.shutdown();
}

#[test]
fn headers_subprotocols_and_refusals() {
    let (server, _ends) = scripted(ServerConfig::default());
    let url = ws_url(&server, "/private");
    let output = run(&[&url], b"");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains("who are you?"), "{stderr}");
    let output = run(
        &[
            &url,
            "-H",
            "Authorization: Bearer t",
            "--subprotocol",
            "mqtt",
            "--subprotocol",
            "chat",
        ],
        b"in\n",
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "in\n");
    assert!(text(&output.stderr).contains("(subprotocol chat)"));
    server.shutdown();
}

#[test]
fn wss_with_a_trusted_certificate_or_insecure() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let tls =
        snowsocket_server::tls::server_config_from_der(vec![certified.cert.der().clone()], key)
            .unwrap();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default().tls(tls)).unwrap();
    let server = server
        .spawn(on_message(|conn, message| {
            if let Message::Text(t) = message {
                let _ = conn.send_text(t);
            }
        }))
        .unwrap();
    let url = format!("wss://localhost:{}/", server.local_addr().port());
    let dir = std::env::temp_dir().join(format!("snowsocket-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("cert.pem");
    std::fs::write(&ca, certified.cert.pem()).unwrap();
    // Untrusted: refused, with the hint.
    let output = run(&[&url], b"x\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--ca"),
        "{}",
        text(&output.stderr)
    );
    // Trusted with --ca.
    let output = run(&[&url, "--ca", ca.to_str().unwrap()], b"over tls\n");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "over tls\n");
    // --insecure: works, and says loudly what it costs.
    let output = run(&["--insecure", "-q", &url], b"unverified\n");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "unverified\n");
    assert!(text(&output.stderr).contains("WARNING: --insecure"));
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown();
}

#[test]
fn sigterm_closes_with_1001() {
    let (server, ends) = scripted(ServerConfig::default());
    let mut child = snowsocket(&[&ws_url(&server, "/")]).spawn().unwrap();
    let _stdin = child.stdin.take();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("connected"), "{line}");
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let output = finish(child);
    assert_eq!(output.status.code(), Some(130));
    let info = ends.recv_timeout(DEADLINE).unwrap();
    assert_eq!(info.code, Some(CloseCode::GOING_AWAY));
    server.shutdown();
}

#[test]
fn help_and_usage_errors() {
    let output = run(&["--help"], b"");
    assert_eq!(output.status.code(), Some(0));
    let help = text(&output.stdout);
    for flag in [
        "--echo",
        "--raw",
        "--ca",
        "--insecure",
        "-H, --header",
        "--subprotocol",
        "--origin",
        "--ping",
        "--max-message-size",
        "--quiet",
        "--version",
        "RUST_LOG",
        "exit status",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    for bad in [&["--bogus", "ws://x/"][..], &[], &["ws://a/", "ws://b/"]] {
        let output = run(bad, b"");
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
    }
    let output = run(&["-V"], b"");
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).starts_with("snowsocket "));
}
