//! Idle connections under a heartbeat: what our server spends to keep many
//! open connections alive.
//!
//! Our server runs with a short ping interval; `n` connections complete
//! the handshake, then each sends one 16 B message (all at once) and gets
//! it back, then they stay idle while the load generator answers every
//! Ping with a Pong. After a short settle, the
//! server's CPU time over the window is given as a percentage of one core,
//! with its thread count (at the end, the most during the window, and the
//! most since the first connection). Every connection must survive and see
//! its pings.

use core::fmt::Write as _;
use core::time::Duration;
use std::time::Instant as StdInstant;

use crate::child::ServerProcess;
use crate::client::{connect, Sources, XorShift};
use crate::loadgen::{Load, Workload};
use crate::proc::{self, ThreadWatch, Threads};
use crate::report::{one_line, thousands, threads_label};
use crate::servers::Kind;
use crate::Options;

/// What one heartbeat run measured.
struct Figures {
    cpu_percent: f64,
    pings: u64,
    window: Threads,
    since_connect: Threads,
    connect_seconds: f64,
    echo_seconds: f64,
}

/// How long the one echo on every connection may take.
const ECHO_TIMEOUT: Duration = Duration::from_secs(60);

fn measure(opts: &Options) -> Result<Figures, String> {
    let n = opts.heartbeat;
    let mut serve = opts.serve_options(Some(n));
    serve.ping_interval = Some(opts.ping_interval);
    serve.pong_timeout = opts.pong_timeout;
    // The default limit (10,000) holds the default count; more need more.
    serve.max_connections = (n > 10_000).then_some(n + 100);
    let mut server = ServerProcess::start(Kind::Ours, &serve)?;
    let pid = server.pid();
    let all = ThreadWatch::start(pid);
    let started = StdInstant::now();
    let mut rng = XorShift::seeded();
    let sources = Sources {
        third: 200,
        per_address: opts.hold_per_address,
    };
    // Each connection goes to the load generator as soon as it is open, so
    // that it answers pings from then on (a connection left unanswered
    // while thousands more connect would time out). Once all are open,
    // each sends one 16 B message, all at once, and gets it back.
    let workload = Workload::new(16, 1, true, opts.verify)?.limited(1);
    let limit = Duration::from_secs(600) + opts.heartbeat_settle + opts.heartbeat_seconds;
    let mut load = Load::paused(workload, opts.client_threads, true, limit)?;
    for i in 0..n {
        let from = sources.get(i)?;
        let stream = connect(server.addr, Some(from), true, &mut rng)
            .map_err(|e| format!("connection {i} (from {from}): {e}"))?;
        load.add(stream)?;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    server.check_alive()?;
    let echoing = StdInstant::now();
    load.resume();
    while load.completed() < n as u64 && echoing.elapsed() < ECHO_TIMEOUT {
        load.wait(Duration::from_millis(20))?;
    }
    if load.completed() < n as u64 {
        return Err(format!(
            "{} of {n} echoes came back in {} s ({} connections closed; the first: {})",
            load.completed(),
            ECHO_TIMEOUT.as_secs(),
            load.dropped(),
            load.first_drop().unwrap_or_default()
        ));
    }
    let echo_seconds = echoing.elapsed().as_secs_f64();
    load.wait(opts.heartbeat_settle)?;
    server.check_alive()?;
    let window = ThreadWatch::start(pid);
    let (cpu0, pings0, t0) = (proc::cpu_seconds(pid)?, load.pings(), StdInstant::now());
    load.wait(opts.heartbeat_seconds)?;
    let (cpu1, pings1, t1) = (proc::cpu_seconds(pid)?, load.pings(), StdInstant::now());
    let window = window.finish();
    let since_connect = all.finish();
    let dropped = load.dropped();
    let first_drop = load.first_drop();
    let streams = load.stop()?;
    server.kill()?;
    drop(streams);
    if dropped > 0 {
        return Err(format!(
            "{dropped} of {n} connections were closed (the first: {})",
            first_drop.unwrap_or_default()
        ));
    }
    let seconds = (t1 - t0).as_secs_f64();
    let pings = pings1 - pings0;
    // Every connection is pinged about once per interval.
    let expected = n as f64 * seconds / opts.ping_interval.as_secs_f64();
    if (pings as f64) < expected * 0.5 {
        return Err(format!(
            "only {pings} pings arrived in {seconds:.1} s ({expected:.0} expected)"
        ));
    }
    Ok(Figures {
        cpu_percent: (cpu1 - cpu0) / seconds * 100.0,
        pings,
        window,
        since_connect,
        connect_seconds,
        echo_seconds,
    })
}

/// Runs the heartbeat figure and prints its table; false if it failed.
pub(crate) fn run(opts: &Options) -> bool {
    let n = opts.heartbeat;
    let interval = opts.ping_interval.as_secs_f64();
    let seconds = opts.heartbeat_seconds.as_secs_f64();
    let mut table = format!(
        "\n### {} idle connections, ping every {interval} s: server CPU over {seconds} s\n\n\
         | server | CPU, % of one core | pings answered | threads: end (max) in the window | \
         most threads since the first connection | connecting | one echo on each |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        thousands(n as f64)
    );
    let ok = match measure(opts) {
        Ok(f) => {
            eprintln!(
                "bench: heartbeat {n} connections: {:.2} % of a core, {} pings, threads {} \
                 (max {} since the first connection)",
                f.cpu_percent,
                f.pings,
                threads_label(f.window),
                f.since_connect.max
            );
            let _ = writeln!(
                table,
                "| {} | {:.2} % | {} | {} | {} | {:.1} s | {:.2} s |",
                Kind::Ours.label(),
                f.cpu_percent,
                thousands(f.pings as f64),
                threads_label(f.window),
                thousands(f.since_connect.max as f64),
                f.connect_seconds,
                f.echo_seconds
            );
            true
        }
        Err(e) => {
            eprintln!("bench: heartbeat FAILED: {e}");
            let _ = writeln!(
                table,
                "| {} | failed: {} | – | – | – | – | – |",
                Kind::Ours.label(),
                one_line(&e)
            );
            false
        }
    };
    println!("{table}");
    ok
}
