//! The blocking driver over real TCP (`std_io::StdIo`): after failing a
//! connection it reads past what the peer still sends until the peer's
//! Close, so its Close (1009) is never destroyed by a reset.

use core::time::Duration;
use std::net::TcpListener;
use std::thread;
use std::time::Instant as StdInstant;

use snowsocket_core::std_io::StdIo;
use snowsocket_core::{Config, Instant, Parts, WebSocket};
use snowsocket_tests::linger::{is_frame_too_large, oversize_peer, OVERSIZED};

const ROUNDS: usize = 50;

#[test]
fn a_peer_sending_past_the_limit_reads_the_1009_every_time() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = StdInstant::now();
    let server = thread::spawn(move || {
        let origin = StdInstant::now();
        let clock = move || Instant::from_micros(origin.elapsed().as_micros() as u64);
        for round in 0..ROUNDS {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            let config = Config::default()
                .ping_interval(None)
                .max_message_size(OVERSIZED / 64)
                .max_frame_size(OVERSIZED / 64)
                .close_timeout(Duration::from_secs(5));
            let (mut read, mut write) = ([0u8; 4096], [0u8; 4096]);
            let parts = Parts::server(&mut read, &mut write, Vec::new(), clock, round as u64)
                .config(config);
            let mut ws = WebSocket::accept(StdIo::new(stream), parts).unwrap();
            let err = loop {
                match ws.respond(snowsocket_core::echo) {
                    Ok(true) => {}
                    Ok(false) => panic!("the peer closed first"),
                    Err(e) => break e,
                }
            };
            assert!(is_frame_too_large(&err), "{err:?}");
            // The socket is dropped here, right after the error.
        }
    });
    for round in 0..ROUNDS {
        assert_eq!(oversize_peer(addr), Ok(1009), "round {round}");
    }
    server.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
