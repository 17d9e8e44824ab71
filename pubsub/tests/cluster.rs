//! The chat as 3 instances behind nginx, fanning out through Redis: real
//! `redis-server`, `nginx` and `chat-cluster` processes on loopback ports
//! chosen at run time. They need the Debian packages redis-server and
//! nginx, so they are ignored by a plain `cargo test`; the suite's
//! `cluster` stage installs the packages and runs them:
//!
//! ```text
//! scripts/test.sh --only cluster
//! cargo test -p snowsocket-pubsub --test cluster -- --ignored --test-threads 1
//! ```

// Test helpers fail the test the plain way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Instant;

use snowsocket_pubsub::harness::{Cluster, Heard, Member};

const BINARY: &str = env!("CARGO_BIN_EXE_chat-cluster");
const MEMBERS: usize = 30;
/// How long anything that should come at once may take.
const WAIT: Duration = Duration::from_secs(20);

/// Runs `body` on a thread; fails the test if it takes over `secs`.
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

fn cluster(extra: &[&str]) -> Cluster {
    Cluster::start(
        Path::new(BINARY),
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        3,
        extra,
    )
    .unwrap()
}

fn join_all(cluster: &Cluster, room: &str, n: usize) -> Vec<Member> {
    (0..n)
        .map(|_| Member::join(&cluster.url(room), WAIT).unwrap())
        .collect()
}

/// What each member heard until it heard every one of `expected` that it
/// did not send itself (`expected[k]` = (sender index, text)), and then
/// the closing markers (one from member `a`, one from member `b`): every
/// duplicate of a message would have come before them.
fn round(members: &[Member], tag: &str, senders: &[usize]) {
    let mut expected = Vec::new();
    for &s in senders {
        let text = format!("{tag}:{s}");
        members[s].say(&text).unwrap();
        expected.push((s, text));
    }
    let heard: Vec<Vec<String>> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let want = expected.iter().filter(|(s, _)| *s != i).count();
            collect(m, i, want, |t| t.starts_with(tag))
        })
        .collect();
    // Now the markers: published after everything above was delivered.
    let (a, b) = (senders[0], (senders[0] + 1) % members.len());
    members[a].say(&format!("{tag}:end:{a}")).unwrap();
    members[b].say(&format!("{tag}:end:{b}")).unwrap();
    for (i, m) in members.iter().enumerate() {
        let markers = usize::from(i != a) + usize::from(i != b);
        let late = collect(m, i, markers, |t| t.starts_with(&format!("{tag}:end:")));
        let mut all = heard[i].clone();
        all.extend(late.iter().filter(|t| !t.contains(":end:")).cloned());
        // Exactly once each, none of its own.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for t in &all {
            *counts.entry(t).or_default() += 1;
        }
        for (s, text) in &expected {
            let n = counts.get(text.as_str()).copied().unwrap_or(0);
            let want = usize::from(*s != i);
            assert_eq!(n, want, "member {i} heard {text} {n} time(s)");
        }
        assert_eq!(all.len(), expected.iter().filter(|(s, _)| *s != i).count());
    }
    // Redis's order: any two members heard the messages neither of them
    // sent in the same order.
    let order = |i: usize, j: usize| -> Vec<&String> {
        heard[i]
            .iter()
            .filter(|t| *t != &format!("{tag}:{j}") && *t != &format!("{tag}:{i}"))
            .collect()
    };
    for i in 0..members.len() {
        for j in i + 1..members.len() {
            assert_eq!(
                order(i, j),
                order(j, i),
                "members {i} and {j} disagree on the order"
            );
        }
    }
}

/// The next `n` texts member `i` hears that `keep` accepts (others are
/// collected too and returned; a close fails the test).
fn collect(m: &Member, i: usize, n: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let end = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut kept = 0;
    while kept < n {
        let left = end.saturating_duration_since(Instant::now());
        match m.heard.recv_timeout(left) {
            Ok(Heard::Text(t)) => {
                kept += usize::from(keep(&t));
                got.push(t);
            }
            other => panic!("member {i} ({}): {other:?} after {got:?}", m.instance),
        }
    }
    got
}

#[test]
#[ignore = "needs redis-server and nginx: scripts/test.sh --only cluster"]
fn a_message_reaches_the_29_others_once_each_in_one_order() {
    bounded(120, || {
        let cluster = cluster(&[]);
        let members = join_all(&cluster, "lobby", MEMBERS);
        // least_conn spread them over every instance.
        for i in &cluster.instances {
            let here = members.iter().filter(|m| m.instance == i.name).count();
            assert!(here > 0, "no member on instance {}", i.name);
        }
        // Everyone speaks, all at once.
        round(&members, "all", &(0..MEMBERS).collect::<Vec<_>>());
        // Another room hears nothing of this one.
        let other = Member::join(&cluster.url("other"), WAIT).unwrap();
        round(&members, "again", &[3, 17]);
        assert!(other.heard.try_recv().is_err());
    });
}

#[test]
#[ignore = "needs redis-server and nginx: scripts/test.sh --only cluster"]
fn killing_an_instance_drops_only_its_members_who_rejoin_elsewhere() {
    bounded(120, || {
        let mut cluster = cluster(&[]);
        let mut members = join_all(&cluster, "lobby", MEMBERS);
        let victim = cluster.instances[1].name.clone();
        let dropped: Vec<usize> = (0..MEMBERS)
            .filter(|&i| members[i].instance == victim)
            .collect();
        assert!(!dropped.is_empty());
        cluster.instances[1].kill();
        for &i in &dropped {
            match members[i].heard.recv_timeout(WAIT) {
                Ok(Heard::Closed(_)) => {}
                other => panic!("member {i} of the killed instance: {other:?}"),
            }
        }
        // The others are still in the room: they hear each other (and
        // nothing else, no close: `round` fails on anything else).
        let survivors: Vec<Member> = {
            let mut kept = Vec::new();
            for (i, m) in members.drain(..).enumerate() {
                if !dropped.contains(&i) {
                    kept.push(m);
                }
            }
            kept
        };
        round(&survivors, "survivors", &[0, survivors.len() - 1]);
        // The dropped ones come back through nginx, onto the others.
        let mut members = survivors;
        for _ in &dropped {
            let m = Member::join(&cluster.url("lobby"), WAIT).unwrap();
            assert_ne!(
                m.instance, victim,
                "nginx sent a member to the dead instance"
            );
            members.push(m);
        }
        assert_eq!(members.len(), MEMBERS);
        round(&members, "rejoined", &(0..MEMBERS).collect::<Vec<_>>());
    });
}

#[test]
#[ignore = "needs redis-server and nginx: scripts/test.sh --only cluster"]
fn restarting_redis_loses_nothing_sent_after_the_reconnect_is_reported() {
    bounded(120, || {
        let mut cluster = cluster(&[]);
        let members = join_all(&cluster, "lobby", MEMBERS);
        round(&members, "before", &[0, 1, 2]);
        cluster.redis.kill();
        for i in &cluster.instances {
            i.await_log("Redis unavailable", WAIT).unwrap();
        }
        // Meanwhile each instance serves its own members.
        let speaker = &members[0];
        members[0].say("alone").unwrap();
        for (k, m) in members.iter().enumerate().skip(1) {
            if m.instance == speaker.instance {
                let got = collect(m, k, 1, |t| t == "alone");
                assert_eq!(got, ["alone"], "member {k} on the speaker's instance");
            }
        }
        cluster.redis.restart().unwrap();
        for i in &cluster.instances {
            i.await_log("Redis connected", WAIT).unwrap();
        }
        // Drop what the members of other instances did not hear: nothing
        // (they got no "alone"); of the speaker's: nothing pending.
        round(&members, "after", &(0..MEMBERS).collect::<Vec<_>>());
    });
}

#[test]
#[ignore = "needs redis-server and nginx: scripts/test.sh --only cluster"]
fn the_heartbeat_closes_a_silent_client_behind_nginx() {
    bounded(60, || {
        // Ping every second, a second for the pong; nginx's own read
        // timeout is 75 s, so a close within 15 s is ours.
        let cluster = cluster(&["--ping-interval", "1", "--pong-timeout", "1"]);
        let mut tcp = TcpStream::connect(cluster.addr).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            tcp,
            "GET /room/quiet HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            cluster.addr
        )
        .unwrap();
        let start = Instant::now();
        let mut bytes = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match tcp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("no end after {:?}: {e}; got {bytes:?}", start.elapsed()),
            }
        }
        let took = start.elapsed();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        let head = text.find("\r\n\r\n").unwrap() + 4;
        // The join notice, then pings never answered.
        let opcodes = opcodes(&bytes[head..]);
        assert_eq!(opcodes.first(), Some(&1), "no join notice: {opcodes:?}");
        assert!(opcodes.contains(&9), "no ping: {opcodes:?}");
        // Our Close (after the pong timeout), then nginx hung up.
        assert_eq!(
            opcodes.last(),
            Some(&8),
            "no Close from the server: {opcodes:?}"
        );
        assert!(took < Duration::from_secs(15), "closed after {took:?}");
    });
}

/// The opcodes of the (unmasked, server-sent, short) frames in `bytes`.
fn opcodes(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let len = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => 4 + usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            n @ 0..=125 => 2 + usize::from(n),
            _ => break,
        };
        out.push(bytes[0] & 0x0f);
        bytes = &bytes[len.min(bytes.len())..];
    }
    out
}
