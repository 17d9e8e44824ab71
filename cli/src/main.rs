//! `snowsocket`: a WebSocket client for the command line, on
//! snowsocket-server's blocking client.
//!
//! ```text
//! cargo install --path cli
//! echo hello | snowsocket ws://127.0.0.1:9001/
//! snowsocket wss://localhost:9443/ --ca cert.pem -H 'Authorization: Bearer x'
//! snowsocket --echo 'ws://127.0.0.1:9001/runCase?case=1&agent=snowsocket'
//! ```
//!
//! Each line of standard input is sent as a text message; each message
//! received is printed (binary as hexadecimal, or raw with `--raw`). The
//! end of input sends Close 1000 and waits for the answer; the exit status
//! tells how the connection ended (`snowsocket --help` lists the options
//! and the exit statuses).
//!
//! Two threads: this one reads messages ([`Client::read_message`]) and
//! prints them; another reads standard input and sends each line through a
//! [`BlockingSender`] (which waits, rather than fails, while the outbox is
//! full). Sends do not wait for the reading thread: the connection runs on
//! the client's event loop.
//!
//! [`Client::read_message`]: snowsocket_server::client::Client::read_message
//! [`BlockingSender`]: snowsocket_server::client::BlockingSender

mod args;
mod exit;
mod insecure;
mod session;

use std::process::ExitCode;

use args::Parsed;

fn main() -> ExitCode {
    let options = match args::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            print!("{}", args::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("snowsocket {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!(
                "snowsocket: {e}\nusage: snowsocket [OPTIONS] URL (snowsocket --help tells more)"
            );
            return ExitCode::from(exit::USAGE);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    ExitCode::from(session::run(&options))
}
