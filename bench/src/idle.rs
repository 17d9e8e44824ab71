//! Idle memory: what an open, idle connection costs a server.
//!
//! A fresh server process per server; `n` connections complete their
//! handshake, and the growth of the process's resident memory (`VmRSS`),
//! divided by `n`, is the cost of one connection. A second figure is taken
//! after one 16 B echo on every connection (buffers allocated on first
//! use), and a third after the connections then stayed idle for a while
//! (a server may give resources back from idle connections); one more echo
//! on each then checks that they all still work. The client sockets live
//! in the load generator's process, so they do not count.

use core::fmt::Write as _;
use core::time::Duration;
use std::io::{Read, Write};
use std::thread;

use snowsocket_core::Connection;

use crate::child::ServerProcess;
use crate::client::{client_connection, connect, connect_tls, Stream, XorShift, STEP_TIMEOUT};
use crate::loadgen::FILL;
use crate::proc::{self, ThreadWatch, Threads};
use crate::report::{bytes_label, one_line, threads_label};
use crate::servers::Kind;
use crate::Options;

/// Server RSS per connection, in bytes: after the handshakes, after one
/// echo on each, after `settle` with nothing sent; and the thread counts.
struct IdleFigures {
    per_connection: [f64; 3],
    threads: Threads,
}

fn measure(kind: Kind, n: usize, settle: Duration, opts: &Options) -> Result<IdleFigures, String> {
    let server = ServerProcess::start(kind, &opts.serve_options(Some(n)))?;
    let pid = server.pid();
    let watch = ThreadWatch::start(pid);
    let before = proc::rss_kib(pid)?;
    let mut rng = XorShift::seeded();
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = match &server.tls {
            None => Stream::Plain(connect(server.addr, None, kind.is_websocket(), &mut rng)?),
            Some(config) => connect_tls(server.addr, config, &mut rng)?,
        };
        if !kind.is_websocket() {
            // Make sure the server has accepted it.
            echo_once(&mut stream, &[FILL], 1)?;
        }
        conns.push(stream);
    }
    let after_handshake = proc::rss_kib(pid)?;
    let mut client = client_connection();
    echo_each(&mut conns, kind, &mut client)?;
    let after_message = proc::rss_kib(pid)?;
    thread::sleep(settle);
    let after_idle = proc::rss_kib(pid)?;
    // Every connection still works.
    echo_each(&mut conns, kind, &mut client)?;
    let threads = watch.finish();
    // The server's sockets close first: TIME_WAIT stays on its side.
    server.kill()?;
    drop(conns);
    let per = |kib: u64| kib.saturating_sub(before) as f64 * 1024.0 / n as f64;
    Ok(IdleFigures {
        per_connection: [per(after_handshake), per(after_message), per(after_idle)],
        threads,
    })
}

/// One 16 B echo on each connection (a WebSocket frame from `client` for
/// the WebSocket servers).
fn echo_each(
    conns: &mut [Stream],
    kind: Kind,
    client: &mut Connection<Vec<u8>, XorShift>,
) -> Result<(), String> {
    let payload = [FILL; 16];
    let mut frame = [0u8; 32];
    for stream in conns {
        if kind.is_websocket() {
            let len = client
                .send_binary(&payload, &mut frame)
                .map_err(|e| e.to_string())?;
            echo_once(stream, &frame[..len], 18)?;
        } else {
            echo_once(stream, &payload, 16)?;
        }
    }
    Ok(())
}

/// Sends `data` and reads `expect` bytes back.
fn echo_once(stream: &mut Stream, data: &[u8], expect: usize) -> Result<(), String> {
    if let Stream::Plain(socket) = stream {
        socket
            .set_read_timeout(Some(STEP_TIMEOUT))
            .map_err(|e| e.to_string())?;
    }
    stream.write_all(data).map_err(|e| format!("write: {e}"))?;
    let mut back = [0u8; 64];
    let back = back.get_mut(..expect).ok_or("echo too long")?;
    stream
        .read_exact(back)
        .map_err(|e| format!("reading the echo: {e}"))?;
    if back.last() != Some(&FILL) {
        return Err("the echo differs from what was sent".into());
    }
    Ok(())
}

/// The idle-memory table for `kinds` (our server over `wss://` too, right
/// after it over `ws://`). False if any server failed.
pub(crate) fn run(opts: &Options) -> bool {
    let n = opts.idle;
    let settle = opts.idle_settle;
    let mut table = format!(
        "\n### Idle memory: server RSS growth per connection ({n} connections)\n\n\
         | server | after handshake | after one 16 B echo | then idle for {} s | server threads |\n\
         |---|---:|---:|---:|---:|\n",
        settle.as_secs_f64()
    );
    let mut ok = true;
    // wss:// is measured after ws:// (a raw TLS echo keeps no WebSocket
    // state worth comparing).
    let kinds = opts.servers.iter().flat_map(|&kind| match kind {
        Kind::Ours => vec![Kind::Ours, Kind::OursTls],
        kind if kind.is_tls() => vec![],
        kind => vec![kind],
    });
    for kind in kinds {
        match measure(kind, n, settle, opts) {
            Ok(IdleFigures {
                per_connection: [handshake, message, idle],
                threads,
            }) => {
                eprintln!(
                    "bench: idle {:<18} {handshake:.0} B / {message:.0} B / {idle:.0} B \
                     per connection, threads {}",
                    kind.name(),
                    threads_label(threads)
                );
                let _ = writeln!(
                    table,
                    "| {} | {} | {} | {} | {} |",
                    kind.label(),
                    bytes_label(handshake),
                    bytes_label(message),
                    bytes_label(idle),
                    threads_label(threads)
                );
            }
            Err(e) => {
                eprintln!("bench: idle {:<18} FAILED: {e}", kind.name());
                ok = false;
                let _ = writeln!(
                    table,
                    "| {} | failed: {} | – | – | – |",
                    kind.label(),
                    one_line(&e)
                );
            }
        }
    }
    println!("{table}");
    ok
}
