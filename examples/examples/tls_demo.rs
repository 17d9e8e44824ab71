//! `wss://` end to end in one process: a self-signed ECDSA P-256
//! certificate made at start-up (rcgen), an echo server using it, and our
//! client trusting it, exchanging one message.
//!
//! ```text
//! cargo run --release --example tls_demo
//! ```

use std::process::ExitCode;

use snowsocket_examples::cli;
use snowsocket_server::client::{self, ClientConfig};
use snowsocket_server::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use snowsocket_server::{on_message, CloseCode, Message, Server, ServerConfig};

const HELP: &str = "\
tls_demo: wss:// end to end in one process: a self-signed certificate for
localhost made at start-up (rcgen), an echo server using it on a free port
of 127.0.0.1, and the blocking client trusting that certificate, exchanging
one message. Exits 0 when the echo matches.

usage: tls_demo [-h | --help]   (no other arguments)";

fn main() -> ExitCode {
    if let Some(status) = cli::no_arguments("tls_demo", HELP) {
        return status;
    }
    cli::init_logging();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tls_demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn core::error::Error>> {
    let names = vec!["localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let tls = snowsocket_server::tls::server_config_from_der(vec![cert.clone()], key)?;

    let server = Server::bind("127.0.0.1:0", ServerConfig::default().tls(tls))?;
    let port = server.local_addr()?.port();
    let handle = server.spawn(on_message(|conn, message| {
        let _ = match message {
            Message::Text(text) => conn.send_text(text),
            Message::Binary(data) => conn.send_binary(data),
        };
    }))?;
    let url = format!("wss://localhost:{port}/");
    println!("serving {url} with a self-signed certificate");

    let config = ClientConfig::default().add_root_der(cert.to_vec());
    let mut client = client::connect(&url, config)?;
    client.send_text("hello over wss://")?;
    let reply = match client.read_message()? {
        Some(Message::Text(text)) => text.to_owned(),
        other => return Err(format!("unexpected answer: {other:?}").into()),
    };
    println!("echoed: {reply}");
    client.close(CloseCode::NORMAL, "done")?;
    handle.shutdown();
    if reply != "hello over wss://" {
        return Err("the echo differs".into());
    }
    Ok(())
}
