//! A client that echoes every message it receives back to the server, and
//! exits 0 once the connection closes cleanly.
//!
//! ```text
//! cargo run --release --example echo_client -- ws://127.0.0.1:9001/
//! cargo run --release --example echo_client -- wss://localhost:9001/ --ca cert.pem
//! ```
//!
//! `--ca` trusts a PEM certificate, e.g. the self-signed one the server
//! uses (an end-entity certificate, see `ClientConfig::add_root_pem`).
//! `--deflate` offers permessage-deflate (RFC 7692).

use std::process::ExitCode;

use snowsocket_server::client::{self, ClientConfig};
use snowsocket_server::Message;
use snowsocket_server::PerMessageDeflate;

const USAGE: &str = "usage: echo_client URL [--ca PEM] [--deflate]";

fn main() -> ExitCode {
    let mut url = None;
    let mut ca = None;
    let mut deflate = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ca" => ca = args.next(),
            "--deflate" => deflate = true,
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if url.is_none() && !arg.starts_with('-') => url = Some(arg),
            _ => {
                eprintln!("echo_client: unexpected argument {arg}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut config = ClientConfig::default();
    if deflate {
        // Offers what lets any server accept: we reset our compressor
        // after every message, and the server may limit our window.
        config = config.permessage_deflate(
            PerMessageDeflate::default()
                .client_no_context_takeover(true)
                .client_max_window_bits(Some(15)),
        );
    }
    if let Some(ca) = ca {
        config = match config.add_root_pem(&ca) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("echo_client: {e}");
                return ExitCode::FAILURE;
            }
        };
    }
    let mut client = match client::connect(&url, config) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("echo_client: {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sender = client.sender();
    let mut echoed = 0u64;
    loop {
        let sent = match client.read_message() {
            Ok(Some(Message::Text(text))) => sender.send_text(text),
            Ok(Some(Message::Binary(data))) => sender.send_binary(data),
            Ok(None) => {
                eprintln!("closed cleanly after {echoed} messages");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("echo_client: {e}");
                return ExitCode::FAILURE;
            }
        };
        match sent {
            Ok(()) => echoed += 1,
            // The server closed meanwhile: read_message reports how.
            Err(snowsocket_server::SendError::Closed) => {}
            Err(e) => {
                eprintln!("echo_client: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}
