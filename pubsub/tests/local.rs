//! Rooms on one instance, without a Redis server: what a plain
//! `cargo test` can check (the cluster itself is in tests/cluster.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;

use snowsocket_pubsub::harness::{free_port, Heard, Member};
use snowsocket_pubsub::{Chat, Rooms, RoomsConfig};
use snowsocket_server::{Server, ServerConfig, ServerHandle};

const WAIT: Duration = Duration::from_secs(10);

fn bounded(secs: u64, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => t.join().unwrap(),
        Err(RecvTimeoutError::Disconnected) => {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(RecvTimeoutError::Timeout) => panic!("test did not finish within {secs} s"),
    }
}

fn serve(config: RoomsConfig) -> ServerHandle {
    let rooms = Rooms::start(config).unwrap();
    let server = Server::bind("127.0.0.1:0", ServerConfig::default()).unwrap();
    server.spawn(Chat::new(rooms)).unwrap()
}

fn text(m: &Member) -> String {
    match m.heard.recv_timeout(WAIT) {
        Ok(Heard::Text(t)) => t,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_room_hears_its_members_and_no_other_room() {
    bounded(30, || {
        let server = serve(RoomsConfig::new("solo"));
        let url = |room: &str| format!("ws://{}/room/{room}", server.local_addr());
        let a1 = Member::join(&url("a"), WAIT).unwrap();
        let a2 = Member::join(&url("a"), WAIT).unwrap();
        let a3 = Member::join(&url("a"), WAIT).unwrap();
        let b = Member::join(&url("b"), WAIT).unwrap();
        assert_eq!(a1.instance, "solo");
        assert_eq!(a1.notice, "* joined room a on instance solo");
        a1.say("one").unwrap();
        assert_eq!(text(&a2), "one");
        assert_eq!(text(&a3), "one");
        // Then b speaks, and a2: the author hears neither its own nor
        // the other room's messages.
        b.say("elsewhere").unwrap();
        a2.say("two").unwrap();
        assert_eq!(text(&a1), "two");
        assert_eq!(text(&a3), "two");
        a3.say("three").unwrap();
        assert_eq!(text(&a2), "three");
        assert_eq!(text(&a1), "three");
        assert!(a1.heard.try_recv().is_err(), "a1 heard more");
        assert!(
            b.heard.try_recv().is_err(),
            "b heard its own message or room a"
        );
        // Binary goes through as binary.
        a1.sender().send_binary(&[1, 2, 3]).unwrap();
        match a2.heard.recv_timeout(WAIT) {
            Ok(Heard::Binary(data)) => assert_eq!(data, [1, 2, 3]),
            other => panic!("{other:?}"),
        }
        server.shutdown();
    });
}

#[test]
fn other_paths_are_refused() {
    bounded(30, || {
        let server = serve(RoomsConfig::new("solo"));
        for path in ["/", "/room/", "/room/a/b", "/room/sp%20ace", "/lobby"] {
            let url = format!("ws://{}{path}", server.local_addr());
            let err = Member::join(&url, WAIT).unwrap_err();
            assert!(err.contains("404"), "{path}: {err}");
        }
        server.shutdown();
    });
}

#[test]
fn without_redis_an_instance_serves_its_own_members_and_says_so() {
    bounded(30, || {
        // Nothing listens there: the subscriber keeps retrying.
        let url = format!("redis://127.0.0.1:{}/", free_port().unwrap());
        let server = serve(RoomsConfig::new("cut-off").redis(url));
        let room = format!("ws://{}/room/x", server.local_addr());
        let a = Member::join(&room, WAIT).unwrap();
        let b = Member::join(&room, WAIT).unwrap();
        assert_eq!(
            b.notice,
            "* joined room x on instance cut-off (Redis unavailable: this instance only)"
        );
        a.say("still here").unwrap();
        assert_eq!(text(&b), "still here");
        assert!(a.heard.try_recv().is_err());
        server.shutdown();
    });
}
