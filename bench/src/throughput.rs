//! The throughput cells: one server process, a number of connections with
//! a number of messages in flight on each, a warm-up, then a timed window.
//! The servers take turns within each shape of each round, so that a
//! disturbance on the machine hits them alike and each round's ratios
//! compare runs seconds apart.

use core::time::Duration;
use std::time::Instant as StdInstant;

use crate::child::ServerProcess;
use crate::client::{connect_link, XorShift};
use crate::loadgen::{Load, Workload};
use crate::proc::{self, ThreadWatch, Threads};
use crate::report::{self, size_label, thousands, ThroughputResults};
use crate::servers::Kind;
use crate::Options;

/// Connections × messages in flight on each × payload size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) connections: usize,
    pub(crate) in_flight: usize,
    pub(crate) size: usize,
}

impl Shape {
    pub(crate) fn title(&self) -> String {
        if self.in_flight == 1 {
            format!(
                "One message in flight: {} connections × {}",
                self.connections,
                size_label(self.size)
            )
        } else {
            format!(
                "Pipelined: {} connections × {} in flight, {}",
                self.connections,
                self.in_flight,
                size_label(self.size)
            )
        }
    }

    /// A column heading: `64×16, 16 B` or `100×1, 20 B`.
    pub(crate) fn short(&self) -> String {
        format!(
            "{}×{}, {}",
            self.connections,
            self.in_flight,
            size_label(self.size)
        )
    }
}

/// One measured cell.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// Echoes completed per second in the timed window.
    pub(crate) rate: f64,
    /// The server process's CPU time (user + system) per echo, µs.
    pub(crate) server_cpu_micros: f64,
    /// The load generator's, µs.
    pub(crate) client_cpu_micros: f64,
    /// The server process's threads at the end of the window, and the
    /// most during warm-up and window.
    pub(crate) threads: Threads,
}

/// How long a server may take to exit once asked (ours closes every
/// connection gracefully first; its clients are gone by then).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A slow run (a debug build, a server under valgrind) may complete
/// nothing in a short window: it is extended up to this long.
const EXTEND_UP_TO: Duration = Duration::from_secs(10);

/// Starts `kind` (or uses the one at `--attach`), loads it with `shape`,
/// stops it.
pub(crate) fn cell(kind: Kind, shape: Shape, opts: &Options) -> Result<Sample, String> {
    let server = match opts.attach {
        Some(_) => None,
        None => Some(ServerProcess::start(kind, &opts.serve_options(None))?),
    };
    let addr = match (&server, opts.attach) {
        (Some(server), _) => server.addr,
        (None, Some(addr)) => addr,
        (None, None) => return Err("no server".into()),
    };
    let tls = match &server {
        Some(server) => server.tls.as_ref(),
        None => opts.attach_tls.as_ref(),
    };
    if kind.is_tls() != tls.is_some() {
        return Err(format!(
            "{}: no certificate to trust (--attach-cert)",
            kind.name()
        ));
    }
    let pid = server.as_ref().map(ServerProcess::pid);
    let mut rng = XorShift::seeded();
    let streams = (0..shape.connections)
        .map(|_| connect_link(addr, tls, kind.is_websocket(), &mut rng))
        .collect::<Result<Vec<_>, _>>()?;
    let watch = pid.map(ThreadWatch::start);
    let workload = Workload::new(
        shape.size,
        shape.in_flight,
        kind.is_websocket(),
        opts.verify,
    )?;
    let limit = opts.warmup + opts.measure + EXTEND_UP_TO + Duration::from_secs(30);
    let mut load = Load::start(streams, workload, opts.client_threads, false, limit)?;
    let server_cpu = || pid.map_or(Ok(f64::NAN), proc::cpu_seconds);
    let client_cpu = || proc::cpu_seconds(std::process::id());
    load.wait(opts.warmup)?;
    let (c0, t0, s0, g0) = (
        load.completed(),
        StdInstant::now(),
        server_cpu()?,
        client_cpu()?,
    );
    load.wait(opts.measure)?;
    while load.completed() == c0 && t0.elapsed() < opts.measure + EXTEND_UP_TO {
        load.wait(Duration::from_millis(50))?;
    }
    let (c1, t1, s1, g1) = (
        load.completed(),
        StdInstant::now(),
        server_cpu()?,
        client_cpu()?,
    );
    let threads = watch.map(ThreadWatch::finish).unwrap_or_default();
    let streams = load.stop()?;
    drop(streams);
    if let Some(server) = server {
        server.stop(STOP_GRACE)?;
    }
    if c1 == c0 {
        return Err("no echo completed in the timed window".into());
    }
    let echoes = (c1 - c0) as f64;
    Ok(Sample {
        rate: echoes / (t1 - t0).as_secs_f64(),
        server_cpu_micros: (s1 - s0) * 1e6 / echoes,
        client_cpu_micros: (g1 - g0) * 1e6 / echoes,
        threads,
    })
}

/// Every shape × server × round; prints the tables. False if any cell
/// failed.
pub(crate) fn run(shapes: &[Shape], opts: &Options) -> bool {
    let mut samples: Vec<Vec<Result<Vec<Sample>, String>>> = shapes
        .iter()
        .map(|_| opts.servers.iter().map(|_| Ok(Vec::new())).collect())
        .collect();
    for round in 1..=opts.rounds {
        for (s, &shape) in shapes.iter().enumerate() {
            for (k, &kind) in opts.servers.iter().enumerate() {
                let result = cell(kind, shape, opts);
                let label = format!(
                    "round {round}/{} {:<16} {:<18}",
                    opts.rounds,
                    shape.short(),
                    kind.name()
                );
                match &result {
                    Ok(x) => eprintln!(
                        "bench: {label} {:>10} echoes/s  server {:.2} µs/echo, \
                         client {:.2} µs/echo, threads {}",
                        thousands(x.rate),
                        x.server_cpu_micros,
                        x.client_cpu_micros,
                        report::threads_label(x.threads)
                    ),
                    Err(e) => eprintln!("bench: {label} FAILED: {e}"),
                }
                let slot = &mut samples[s][k];
                match (slot.as_mut(), result) {
                    (Ok(list), Ok(sample)) => list.push(sample),
                    (Ok(_), Err(e)) => *slot = Err(e),
                    (Err(_), _) => {}
                }
            }
        }
    }
    let ok = samples.iter().flatten().all(Result::is_ok);
    let results = ThroughputResults {
        shapes,
        servers: &opts.servers,
        samples: &samples,
    };
    println!("{}", results.render(opts.rounds));
    ok
}
