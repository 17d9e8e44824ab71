//! 7. The thread count is constant.

use super::*;

/// 200 connections that each send one message (echoed) and stay open: the
/// server's threads are its event loops before, during and after, and
/// none once it has shut down.
///
/// An engine with a thread per active connection has 200 more.
#[test]
fn the_thread_count_is_the_event_loops_whatever_the_connections_do() {
    bounded(60, || {
        let (server, events) = start(ServerConfig::default().connection(NO_PINGS), None);
        let port = server.local_addr().port();
        let loops = server.event_loops();
        // The loops name their threads as they start.
        wait_for("the loops running", WAIT, || server_threads(port) >= loops);
        assert_eq!(server_threads(port), loops, "before");
        let mut clients = Vec::new();
        for i in 0..200 {
            let mut raw = Raw::connect(server.local_addr());
            let text = format!("hello {i}");
            raw.send(&client_frame(true, OpCode::Text, text.as_bytes()));
            assert_eq!(raw.frame(), Some((OpCode::Text, text.into_bytes())));
            clients.push(raw);
            if i % 50 == 49 {
                assert_eq!(server_threads(port), loops, "with {} connections", i + 1);
            }
        }
        for _ in 0..200 {
            events.connection();
        }
        assert_eq!(server.connections(), 200);
        assert_eq!(server_threads(port), loops, "with 200 open");
        drop(clients);
        for _ in 0..200 {
            events.close();
        }
        assert_eq!(server.connections(), 0);
        assert_eq!(server_threads(port), loops, "after");
        server.shutdown();
        assert_eq!(server_threads_after_join(port), 0);
    });
}
