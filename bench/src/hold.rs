//! Many connections held and echoing: `n` connections (50,000 by default)
//! open at once, then one 16 B message in flight on every one of them.
//!
//! One source address has about 28,000 ephemeral ports towards one server
//! port, so the client sockets are spread over several loopback addresses
//! (`127.0.S.2`, `127.0.S.3`, … with bind-before-connect, S = 1 + the
//! server's place in the list, so that no server meets another's sockets
//! in TIME_WAIT). Both processes raise their open-files limit. Reported:
//! the time to connect, the echo rate over the window, connections the
//! server dropped, its resident memory per connection and its threads.

use core::fmt::Write as _;
use core::time::Duration;
use std::time::Instant as StdInstant;

use crate::child::ServerProcess;
use crate::client::{connect, Sources, XorShift};
use crate::loadgen::{Load, Workload};
use crate::proc::{self, ThreadWatch, Threads};
use crate::report::{bytes_label, one_line, thousands, threads_label};
use crate::servers::Kind;
use crate::Options;

/// What one hold run measured.
struct Figures {
    connect_seconds: f64,
    rate: f64,
    dropped: u64,
    rss_per_connection: f64,
    threads: Threads,
    cpu_percent: f64,
    first_drop: Option<String>,
}

fn measure(kind: Kind, place: usize, opts: &Options) -> Result<Figures, String> {
    let n = opts.hold;
    let mut serve = opts.serve_options(Some(n));
    serve.max_connections = Some(n + 100);
    let mut server = ServerProcess::start(kind, &serve)?;
    let pid = server.pid();
    let watch = ThreadWatch::start(pid);
    let before = proc::rss_kib(pid)?;
    let mut rng = XorShift::seeded();
    let sources = Sources {
        third: u8::try_from(place + 1).map_err(|_| "too many servers to hold")?,
        per_address: opts.hold_per_address,
    };
    let started = StdInstant::now();
    // Each connection goes to the load generator as soon as it is open, so
    // that it answers pings; messages go once all are open.
    let workload = Workload::new(16, 1, kind.is_websocket(), opts.verify)?;
    let limit = Duration::from_secs(600) + opts.warmup + opts.hold_seconds;
    let mut load = Load::paused(workload, opts.client_threads, true, limit)?;
    for i in 0..n {
        let from = sources.get(i)?;
        let stream = connect(server.addr, Some(from), kind.is_websocket(), &mut rng)
            .map_err(|e| format!("connection {i} (from {from}): {e}"))?;
        load.add(stream)?;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    server.check_alive()?;
    load.resume();
    load.wait(opts.warmup)?;
    let (c0, cpu0, t0) = (load.completed(), proc::cpu_seconds(pid)?, StdInstant::now());
    load.wait(opts.hold_seconds)?;
    let (c1, cpu1, t1) = (load.completed(), proc::cpu_seconds(pid)?, StdInstant::now());
    let rss = proc::rss_kib(pid)?;
    let threads = watch.finish();
    let dropped = load.dropped();
    let first_drop = load.first_drop();
    let streams = load.stop()?;
    // The server's sockets close first: TIME_WAIT stays on its side.
    server.kill()?;
    drop(streams);
    let seconds = (t1 - t0).as_secs_f64();
    Ok(Figures {
        connect_seconds,
        rate: (c1 - c0) as f64 / seconds,
        dropped,
        rss_per_connection: rss.saturating_sub(before) as f64 * 1024.0 / n as f64,
        threads,
        cpu_percent: (cpu1 - cpu0) / seconds * 100.0,
        first_drop,
    })
}

/// Runs the hold figure for `--hold-servers` and prints its table; false
/// if a server failed or dropped connections.
pub(crate) fn run(opts: &Options) -> bool {
    let n = opts.hold;
    let limited = match opts.hold_asked {
        Some((asked, limit)) => format!(
            " ({} asked: the open-files limit here is {} and cannot be raised)",
            thousands(asked as f64),
            thousands(limit as f64)
        ),
        None => String::new(),
    };
    let mut table = format!(
        "\n### {} connections held{limited}, one 16 B message in flight on each ({} s)\n\n\
         | server | connecting | echoes/s | connections dropped | server RSS per connection | \
         server threads | server CPU, % of a core |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        thousands(n as f64),
        opts.hold_seconds.as_secs_f64()
    );
    let mut ok = true;
    for (place, &kind) in opts.hold_servers.iter().enumerate() {
        match measure(kind, place, opts) {
            Ok(f) => {
                eprintln!(
                    "bench: hold {:<18} {n} connections in {:.1} s, {} echoes/s, {} dropped, \
                     {} per connection, threads {}",
                    kind.name(),
                    f.connect_seconds,
                    thousands(f.rate),
                    f.dropped,
                    bytes_label(f.rss_per_connection),
                    threads_label(f.threads)
                );
                if let Some(why) = &f.first_drop {
                    eprintln!("bench: hold {:<18} the first dropped: {why}", kind.name());
                }
                ok &= f.dropped == 0 && f.rate > 0.0;
                let _ = writeln!(
                    table,
                    "| {} | {:.1} s | {} | {} | {} | {} | {:.0} % |",
                    kind.label(),
                    f.connect_seconds,
                    thousands(f.rate),
                    thousands(f.dropped as f64),
                    bytes_label(f.rss_per_connection),
                    threads_label(f.threads),
                    f.cpu_percent
                );
            }
            Err(e) => {
                eprintln!("bench: hold {:<18} FAILED: {e}", kind.name());
                ok = false;
                let _ = writeln!(
                    table,
                    "| {} | failed: {} | – | – | – | – | – |",
                    kind.label(),
                    one_line(&e)
                );
            }
        }
    }
    println!("{table}");
    ok
}
