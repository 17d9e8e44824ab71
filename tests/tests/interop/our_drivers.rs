//! The core's drivers as servers (the blocking one over a std `TcpStream`,
//! the async one on tokio), the peer as their client: after failing a
//! connection the drivers read past what the peer still sends until its
//! Close, so the peer reads our 1009 every time.

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use snowsocket_core::std_io::StdIo;
use snowsocket_core::{DriverError, Error, Instant as CoreInstant, Parts, ProtocolError};

use super::*;

/// Connections per driver: every send of [`over_limit_sends`], in turn.
const ROUNDS: usize = 51;

/// The drivers' limits: [`LIMIT`], no heartbeat.
fn driver_config() -> Config {
    Config::DEFAULT
        .ping_interval(None)
        .max_message_size(LIMIT)
        .max_frame_size(LIMIT)
}

/// Whether `outcome` is the failure a message over the limit causes.
fn over_limit<E: core::fmt::Debug>(outcome: &Result<(), DriverError<E>>) -> bool {
    matches!(
        outcome,
        Err(DriverError::Connection(Error::Protocol(
            ProtocolError::FrameTooLarge { .. } | ProtocolError::MessageTooLarge { .. }
        )))
    )
}

/// The peer sends past the limit `ROUNDS` times to the server at `url`;
/// each connection's outcome on our side comes from `outcomes`.
fn rounds<E: core::fmt::Debug>(
    lang: Lang,
    driver: &str,
    url: &str,
    outcomes: &mpsc::Receiver<Result<(), DriverError<E>>>,
) {
    let sends = over_limit_sends();
    for round in 0..ROUNDS {
        let send = &sends[round % sends.len()];
        let mut peer = interop::client(lang, url).spawn();
        let _ = peer.opened();
        peer.command(send);
        let (code, reason) = peer.closed(SLOW_WAIT);
        assert_eq!(
            code, 1009,
            "{driver} round {round}, {send}: the peer saw {code} {reason:?}"
        );
        let outcome = outcomes
            .recv_timeout(SLOW_WAIT)
            .unwrap_or_else(|_| peer.fail(&format!("{driver}: no outcome in round {round}")));
        assert!(over_limit(&outcome), "{driver} round {round}: {outcome:?}");
    }
}

pub(super) fn drivers_over_limit(lang: Lang, certs: Option<&CertFiles>) {
    if certs.is_some() {
        // The drivers run over plain TCP here (TLS is the transport's).
        return;
    }
    // The blocking driver, a connection at a time.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, outcomes) = mpsc::channel();
    let server = thread::spawn(move || {
        let origin = Instant::now();
        let clock =
            move || CoreInstant::from_micros(u64::try_from(origin.elapsed().as_micros()).unwrap());
        for seed in 0..ROUNDS {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let (mut read, mut write) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
            let parts = Parts::server(&mut read, &mut write, Vec::new(), clock, seed as u64)
                .config(driver_config());
            let outcome =
                snowsocket_core::WebSocket::accept(StdIo::new(stream), parts).and_then(|mut ws| {
                    while ws.respond(snowsocket_core::echo)? {}
                    Ok(())
                });
            if tx.send(outcome).is_err() {
                return;
            }
        }
    });
    rounds(lang, "blocking driver", &url, &outcomes);
    server.join().unwrap();

    // The async driver on tokio, a task per connection.
    let runtime = snowsocket_tests::asynch::runtime();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (tx, outcomes) = mpsc::channel();
    runtime.spawn(async move {
        let mut seed = 0;
        while let Ok((stream, _)) = listener.accept().await {
            seed += 1;
            let tx = tx.clone();
            tokio::spawn(async move {
                let outcome =
                    snowsocket_examples::tokio_ws::echo(stream, driver_config(), seed).await;
                let _ = tx.send(outcome);
            });
        }
    });
    rounds(lang, "async driver", &url, &outcomes);
}
