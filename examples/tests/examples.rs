//! The examples as a user runs them: `--help` exits 0 and names every flag,
//! a wrong argument or a zero limit exits 2 naming it, and echo_server
//! shuts down gracefully on SIGTERM and SIGINT (its clients get Close 1001).
//! Every child process is killed if it outlives its deadline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use snowsocket_server::client::{self, ClientConfig};
use snowsocket_server::{CloseCause, CloseCode};

const DEADLINE: Duration = Duration::from_secs(60);

/// Where the example binary `name` is (cargo builds the examples before
/// the tests: they sit beside the test's own directory).
fn example_path(name: &str) -> PathBuf {
    let mut dir: PathBuf = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// The example binary `name`, its output piped.
fn example(name: &str) -> Command {
    let mut command = Command::new(example_path(name));
    command
        .stdin(Stdio::null())
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
            panic!("the example did not exit within {DEADLINE:?}");
        }
    }
}

/// The URL `child` printed first ("listening on ws://…/").
fn listening(child: &mut Child) -> String {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned()
}

fn run(name: &str, args: &[&str]) -> Output {
    finish(example(name).args(args).spawn().unwrap())
}

#[test]
fn help_exits_0_and_names_every_flag() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "echo_server",
            &[
                "--addr",
                "--tls-cert",
                "--tls-key",
                "--ping-interval",
                "--pong-timeout",
                "--max-message-size",
                "--output-budget",
                "--help",
                "SIGTERM",
            ],
        ),
        ("tls_demo", &["--help"]),
        ("embedded_tls_client", &["--help"]),
    ];
    // On tokio, with no logger: what they print goes to stderr as it is.
    let tokio: [(&str, &[&str]); 2] = [
        (
            "tokio_echo_server",
            &[
                "--addr",
                "--max-message-size",
                "--max-connections",
                "--write-timeout",
                "--threads",
                "--deflate",
                "--help",
            ],
        ),
        ("hyper_upgrade", &["--addr", "--help"]),
    ];
    let logging = cases.iter().map(|case| (case, &["RUST_LOG"][..]));
    for ((name, flags), logs) in logging.chain(tokio.iter().map(|case| (case, &[][..]))) {
        let output = run(name, &["--help"]);
        assert_eq!(output.status.code(), Some(0), "{name} --help");
        let help = String::from_utf8(output.stdout).unwrap();
        for flag in flags.iter().chain(logs) {
            assert!(help.contains(flag), "{name} --help does not name {flag}");
        }
        let output = run(name, &["--no-such-flag"]);
        assert_eq!(output.status.code(), Some(2), "{name} --no-such-flag");
    }
}

#[test]
fn echo_server_refuses_zero_limits_naming_them() {
    for (flag, field) in [
        ("--pong-timeout", "connection.pong_timeout"),
        ("--max-message-size", "connection.max_message_size"),
        ("--output-budget", "output_budget"),
    ] {
        let output = run("echo_server", &["--addr", "127.0.0.1:0", flag, "0"]);
        assert_eq!(output.status.code(), Some(2), "{flag} 0");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(&format!("{field} is 0")), "{stderr}");
    }
}

#[test]
fn echo_server_shuts_down_gracefully_on_sigterm_and_sigint() {
    for signal in ["-TERM", "-INT"] {
        let mut child = example("echo_server")
            .args(["--addr", "127.0.0.1:0"])
            .spawn()
            .unwrap();
        let url = listening(&mut child);
        let mut client = client::connect(&url, ClientConfig::default()).unwrap();
        client.send_text("before").unwrap();
        assert!(client.read_message().unwrap().is_some());
        let kill = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(kill.success());
        // The client receives the server's Close 1001, then the server exits 0.
        assert!(client.read_message().unwrap().is_none());
        let info = client.close_info().unwrap();
        assert_eq!(info.cause, CloseCause::PeerClosed, "{signal}");
        assert_eq!(info.code, Some(CloseCode::GOING_AWAY), "{signal}");
        let output = finish(child);
        assert_eq!(output.status.code(), Some(0), "{signal}");
    }
}

/// Starts echo_server with `args` (and `--addr 127.0.0.1:0`); its address.
fn echo_server(args: &[&str]) -> (Child, String) {
    let mut child = example("echo_server")
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .spawn()
        .unwrap();
    let url = listening(&mut child);
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{url:?}"))
        .to_owned();
    (child, addr)
}

/// A raw client upgraded at `addr` (the 101 read to its end).
fn raw_client(addr: &str) -> std::net::TcpStream {
    use std::io::Read;
    let mut stream = raw_upgrade(addr);
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    stream
}

/// Sends `count` binary messages of `size` bytes on `stream` (message i:
/// bytes of value i, masked with a zero key), from a thread of its own.
fn send_numbered(
    stream: &std::net::TcpStream,
    count: usize,
    size: usize,
) -> thread::JoinHandle<()> {
    use std::io::Write;

    use snowsocket_core::{encode_frame_vec, FrameHeader, OpCode};

    let mut writer = stream.try_clone().unwrap();
    thread::spawn(move || {
        for i in 0..count {
            let header = FrameHeader {
                fin: true,
                opcode: OpCode::Binary,
                mask: Some([0; 4]),
                payload_len: size as u64,
            };
            let mut frame = Vec::new();
            encode_frame_vec(header, &vec![i as u8; size], &mut frame);
            writer.write_all(&frame).unwrap();
        }
    })
}

/// Reads the echoes of [`send_numbered`]'s messages: all of them, in
/// order and intact.
fn read_numbered(stream: &mut std::net::TcpStream, count: usize, size: usize) {
    use std::io::Read;

    use snowsocket_core::{FrameHeader, OpCode};

    let mut wire = Vec::new();
    let mut echoes = 0;
    let mut chunk = vec![0u8; 1 << 16];
    while echoes < count {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server hung up after {echoes} echoes");
        wire.extend_from_slice(&chunk[..n]);
        while let Ok(Some((header, used))) = FrameHeader::decode(&wire) {
            let end = used + header.payload_len as usize;
            if wire.len() < end {
                break;
            }
            assert_eq!(header.opcode, OpCode::Binary);
            assert_eq!(header.payload_len, size as u64, "echo {echoes}");
            assert!(
                wire[used..end].iter().all(|&b| b == echoes as u8),
                "echo {echoes} is not message {echoes}"
            );
            echoes += 1;
            wire.drain(..end);
        }
    }
}

/// A client that sends 64 MiB of messages before it reads any echo (four
/// times what the server lets wait for one connection, 16 MiB): the
/// echo server pauses reading instead of dropping echoes, and every echo
/// comes back, in order and intact, once the client reads.
#[test]
fn echo_server_slows_a_client_that_does_not_read_and_loses_no_echo() {
    const MESSAGES: usize = 64;
    const SIZE: usize = 1 << 20;
    // No heartbeat: this client answers no Ping.
    let (child, addr) = echo_server(&["--ping-interval", "0"]);
    let mut stream = raw_client(&addr);
    let sending = send_numbered(&stream, MESSAGES, SIZE);
    // Let the server's output for us fill up before reading any of it.
    thread::sleep(Duration::from_secs(1));
    read_numbered(&mut stream, MESSAGES, SIZE);
    sending.join().unwrap();
    let mut child = child;
    child.kill().unwrap();
    let _ = finish(child);
}

/// KiB of memory `pid` holds: `VmRSS` now, or `VmHWM` (its peak).
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Eight clients that each send 24 MiB before reading any echo: with a
/// 4 MiB output budget the server holds about the budget and an echo per
/// client, not up to 16 MiB each (`max_buffered_bytes`, whose default let
/// eight such clients take 150 MB); and every echo still comes back.
#[test]
fn echo_server_keeps_to_its_output_budget_against_clients_that_do_not_read() {
    const CLIENTS: usize = 8;
    const MESSAGES: usize = 24;
    const SIZE: usize = 1 << 20;
    let budget = (4 << 20).to_string();
    let (mut child, addr) = echo_server(&["--ping-interval", "0", "--output-budget", &budget]);
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| raw_client(&addr)).collect();
    let before = memory_kib(child.id(), "VmRSS:");
    let sending: Vec<_> = clients
        .iter()
        .map(|c| send_numbered(c, MESSAGES, SIZE))
        .collect();
    // Long enough for every client's echoes to fill what the server lets
    // wait, and for the server to stop reading them.
    thread::sleep(Duration::from_secs(2));
    let grown = memory_kib(child.id(), "VmHWM:").saturating_sub(before);
    let readers: Vec<_> = clients
        .drain(..)
        .map(|mut c| thread::spawn(move || read_numbered(&mut c, MESSAGES, SIZE)))
        .collect();
    for t in readers.into_iter().chain(sending) {
        t.join().unwrap();
    }
    child.kill().unwrap();
    let _ = finish(child);
    assert!(grown < 64 << 10, "the server grew by {grown} KiB");
}

/// Seconds of CPU `pid` has used (user and system), from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command's name, in parentheses: state is field 3, utime
    // and stime fields 14 and 15, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// A raw upgrade request to `addr`; the answer is the caller's to read.
fn raw_upgrade(addr: &str) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream
}

/// Whether `stream` receives a 101 answer within `within`.
fn answered(stream: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(within)).unwrap();
    let mut head = [0u8; 12];
    match stream.read_exact(&mut head) {
        Ok(()) => {
            assert_eq!(&head, b"HTTP/1.1 101");
            true
        }
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "{e}"
            );
            false
        }
    }
}

/// tokio_echo_server serves at most `--max-connections` at once: the next
/// peer waits (in the kernel's accept queue) and is served as soon as one
/// of them leaves.
#[test]
fn tokio_echo_server_serves_at_most_max_connections() {
    let mut child = example("tokio_echo_server")
        .args(["--addr", "127.0.0.1:0", "--max-connections", "2"])
        .spawn()
        .unwrap();
    let url = listening(&mut child);
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let mut first = raw_upgrade(addr);
    let mut second = raw_upgrade(addr);
    assert!(answered(&mut first, DEADLINE));
    assert!(answered(&mut second, DEADLINE));
    let mut third = raw_upgrade(addr);
    assert!(!answered(&mut third, Duration::from_millis(500)));
    drop(first);
    assert!(answered(&mut third, DEADLINE));
    child.kill().unwrap();
    let _ = finish(child);
}

/// Out of file descriptors, tokio_echo_server rests between accepts
/// (accept fails at once with EMFILE; retrying straight away spun a core)
/// and serves again once descriptors are free.
#[test]
fn tokio_echo_server_rests_while_out_of_file_descriptors() {
    const PEERS: usize = 48;
    // 32 descriptors: the runtime's few, then connections until none is
    // left. Its log goes nowhere: a full pipe would stop the spinning.
    let mut server = Command::new("prlimit")
        .arg("--nofile=32:32")
        .arg(example_path("tokio_echo_server"))
        .args(["--addr", "127.0.0.1:0", "--threads", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = listening(&mut server);
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    // Connections that send nothing: each holds a descriptor until its
    // handshake times out or it closes.
    let peers: Vec<_> = (0..PEERS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(300));
    let before = cpu_seconds(server.id());
    thread::sleep(Duration::from_secs(2));
    let spent = cpu_seconds(server.id()) - before;
    assert!(
        spent < 0.5,
        "{spent} s of CPU in 2 s while out of descriptors"
    );
    drop(peers);
    let mut client = client::connect(&url, ClientConfig::default()).unwrap();
    client.send_text("after").unwrap();
    assert!(client.read_message().unwrap().is_some());
    drop(client);
    server.kill().unwrap();
    let _ = finish(server);
}
