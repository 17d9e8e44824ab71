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

/// The example binary `name` (cargo builds the examples before the tests:
/// they sit beside the test's own directory).
fn example(name: &str) -> Command {
    let mut dir: PathBuf = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let mut command = Command::new(dir.join("examples").join(name));
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
                "--help",
                "SIGTERM",
            ],
        ),
        ("tls_demo", &["--help"]),
        ("embedded_tls_client", &["--help"]),
    ];
    for (name, flags) in cases {
        let output = run(name, &["--help"]);
        assert_eq!(output.status.code(), Some(0), "{name} --help");
        let help = String::from_utf8(output.stdout).unwrap();
        for flag in flags.iter().chain(&["RUST_LOG"]) {
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
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
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

/// A client that sends 64 MiB of messages before it reads any echo (four
/// times what the server lets wait for one connection, 16 MiB): the
/// echo server pauses reading instead of dropping echoes, and every echo
/// comes back, in order and intact, once the client reads.
#[test]
fn echo_server_slows_a_client_that_does_not_read_and_loses_no_echo() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use snowsocket_core::{encode_frame_vec, FrameHeader, OpCode};

    const MESSAGES: usize = 64;
    const SIZE: usize = 1 << 20;
    // No heartbeat: this client answers no Ping.
    let mut child = example("echo_server")
        .args(["--addr", "127.0.0.1:0", "--ping-interval", "0"])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");

    // Message i: SIZE bytes of i, masked with a zero key.
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        for i in 0..MESSAGES {
            let header = FrameHeader {
                fin: true,
                opcode: OpCode::Binary,
                mask: Some([0; 4]),
                payload_len: SIZE as u64,
            };
            let mut frame = Vec::new();
            encode_frame_vec(header, &vec![i as u8; SIZE], &mut frame);
            writer.write_all(&frame).unwrap();
        }
    });
    // Let the server's output for us fill up before reading any of it.
    thread::sleep(Duration::from_secs(1));
    let mut wire = Vec::new();
    let mut echoes = 0;
    let mut chunk = vec![0u8; 1 << 16];
    while echoes < MESSAGES {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the server hung up after {echoes} echoes");
        wire.extend_from_slice(&chunk[..n]);
        while let Ok(Some((header, used))) = FrameHeader::decode(&wire) {
            let end = used + header.payload_len as usize;
            if wire.len() < end {
                break;
            }
            assert_eq!(header.opcode, OpCode::Binary);
            assert_eq!(header.payload_len, SIZE as u64, "echo {echoes}");
            assert!(
                wire[used..end].iter().all(|&b| b == echoes as u8),
                "echo {echoes} is not message {echoes}"
            );
            echoes += 1;
            wire.drain(..end);
        }
    }
    sending.join().unwrap();
    child.kill().unwrap();
    let _ = finish(child);
}
