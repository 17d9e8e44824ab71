//! The cluster's figures: end-to-end fan-out latency (p50, p99) and
//! delivered messages per second, 1,000 clients in one room spread over
//! 1, 2 and 4 instances behind nginx with Redis between them, beside the
//! same chat on one instance without Redis (clients connected to it
//! directly); the CPU time of Redis, nginx, the instances and the load
//! generator (this process) over each run.
//!
//! ```text
//! cargo build --release -p snowsocket-pubsub --bins
//! target/release/cluster-bench [--clients 1000] [--rates 20,200] [--secs 10] [--instances 0,1,2,4]
//! ```
//!
//! Instances `0` is the single instance without Redis or nginx. It needs
//! `redis-server` and `nginx` (Debian packages of those names) and the
//! `chat-cluster` binary beside this one; files go under the target
//! directory's `tmp/`, and every process started is stopped at the end.

// A benchmark's setup failures end it with their message.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use snowsocket_pubsub::harness::{cpu_ticks, Cluster, Instance};
use snowsocket_server::client::{self, ClientConfig, Spawned};
use snowsocket_server::{ConnectionHandle, Handler, Message};

struct Args {
    clients: usize,
    rates: Vec<u32>,
    secs: u64,
    instances: Vec<usize>,
}

fn parse() -> Result<Option<Args>, String> {
    let mut a = Args {
        clients: 1000,
        rates: vec![20, 200],
        secs: 10,
        instances: vec![0, 1, 2, 4],
    };
    let list = |v: &str| -> Result<Vec<u64>, String> {
        v.split(',')
            .map(|x| x.parse().map_err(|_| format!("not a number: {x}")))
            .collect()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let v = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => a.clients = v.parse().map_err(|_| format!("--clients {v}"))?,
            "--secs" => a.secs = v.parse().map_err(|_| format!("--secs {v}"))?,
            "--rates" => {
                a.rates = list(&v)?
                    .into_iter()
                    .map(|r| u32::try_from(r).map_err(|_| format!("rate {r}")))
                    .collect::<Result<_, _>>()?;
            }
            "--instances" => {
                a.instances = list(&v)?.into_iter().map(|n| n as usize).collect();
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.clients < 2 || a.secs == 0 || a.rates.contains(&0) || a.instances.iter().any(|&n| n > 4) {
        return Err("need --clients >= 2, --secs > 0, rates > 0, instances 0..=4".into());
    }
    Ok(Some(a))
}

fn main() -> ExitCode {
    match parse() {
        Ok(Some(args)) => match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cluster-bench: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(None) => {
            println!(
                "usage: cluster-bench [--clients N] [--rates R,R] [--secs S] [--instances 0,1,2,4]"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cluster-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// What the clients report.
struct Stats {
    epoch: Instant,
    /// Fan-out latencies in microseconds.
    latencies: Mutex<Vec<u32>>,
    delivered: AtomicU64,
    joined: Mutex<usize>,
    joined_cv: Condvar,
}

struct Load(Arc<Stats>);

impl Handler for Load {
    fn on_message(&self, _conn: &ConnectionHandle, message: Message<'_>) {
        let Message::Text(text) = message else { return };
        let stats = &self.0;
        if text.starts_with("* joined") {
            let mut joined = stats.joined.lock().unwrap_or_else(|p| p.into_inner());
            *joined += 1;
            stats.joined_cv.notify_all();
            return;
        }
        let Some(sent) = text.split(':').next().and_then(|t| t.parse::<u64>().ok()) else {
            return;
        };
        let now = stats.epoch.elapsed().as_nanos() as u64;
        let micros = u32::try_from(now.saturating_sub(sent) / 1000).unwrap_or(u32::MAX);
        stats
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(micros);
        stats.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().ok_or("no directory")?.to_owned();
    let binary = dir.join("chat-cluster");
    let tmp = dir
        .parent()
        .map_or_else(|| dir.clone(), Path::to_path_buf)
        .join("tmp");
    println!(
        "{} clients in one room; rates in messages/s sent (each delivered to {} others); {} s per run",
        args.clients,
        args.clients - 1,
        args.secs
    );
    println!("| setup | sent/s | delivered/s | p50 | p99 | lost | CPU: instances | Redis | nginx | load generator |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for &n in &args.instances {
        for &rate in &args.rates {
            let row = one(&binary, &tmp, n, rate, args)?;
            println!("{row}");
        }
    }
    Ok(())
}

/// The processes of one setup.
enum Setup {
    Alone(Instance),
    Cluster(Cluster),
}

impl Setup {
    fn url(&self) -> String {
        match self {
            Self::Alone(i) => format!("ws://{}/room/bench", i.addr),
            Self::Cluster(c) => c.url("bench"),
        }
    }
    /// (instances, Redis, nginx) process ids.
    fn pids(&self) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        match self {
            Self::Alone(i) => (vec![i.pid()], vec![], vec![]),
            Self::Cluster(c) => (
                c.instances.iter().map(Instance::pid).collect(),
                c.redis.pid().into_iter().collect(),
                c.nginx_pids(),
            ),
        }
    }
}

fn one(binary: &Path, tmp: &Path, n: usize, rate: u32, args: &Args) -> Result<String, String> {
    std::fs::create_dir_all(tmp).map_err(|e| e.to_string())?;
    let setup = if n == 0 {
        Setup::Alone(Instance::start(binary, "alone", None, &[])?)
    } else {
        Setup::Cluster(Cluster::start(binary, tmp, n, &[])?)
    };
    let stats = Arc::new(Stats {
        epoch: Instant::now(),
        latencies: Mutex::new(Vec::new()),
        delivered: AtomicU64::new(0),
        joined: Mutex::new(0),
        joined_cv: Condvar::new(),
    });
    let url = setup.url();
    let mut clients: Vec<Spawned> = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let c =
            client::connect(&url, ClientConfig::default()).map_err(|e| format!("{url}: {e}"))?;
        clients.push(
            c.spawn(Load(Arc::clone(&stats)))
                .map_err(|e| e.to_string())?,
        );
    }
    {
        let joined = stats.joined.lock().unwrap_or_else(|p| p.into_inner());
        let (joined, timeout) = stats
            .joined_cv
            .wait_timeout_while(joined, Duration::from_secs(30), |j| *j < args.clients)
            .unwrap_or_else(|p| p.into_inner());
        if timeout.timed_out() {
            return Err(format!(
                "only {} of {} clients joined",
                *joined, args.clients
            ));
        }
    }
    let senders: Vec<ConnectionHandle> = clients.iter().map(Spawned::sender).collect();
    let (inst, redis, nginx) = setup.pids();
    let me = std::process::id();
    let ticks = |pids: &[u32]| pids.iter().filter_map(|&p| cpu_ticks(p)).sum::<u64>();
    let before = (ticks(&inst), ticks(&redis), ticks(&nginx), ticks(&[me]));

    // Open loop: message k goes at start + k / rate, from client k mod N.
    let start = Instant::now();
    let total = u64::from(rate) * args.secs;
    let mut sent = 0u64;
    for k in 0..total {
        let at = start + Duration::from_secs_f64(k as f64 / f64::from(rate));
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now = stats.epoch.elapsed().as_nanos();
        if senders[(k as usize) % senders.len()]
            .send_text(&format!("{now}:{k}"))
            .is_ok()
        {
            sent += 1;
        }
    }
    let expected = sent * (args.clients as u64 - 1);
    // Drain: until everything arrived, or 10 s without progress.
    let mut last = (stats.delivered.load(Ordering::Relaxed), Instant::now());
    while last.0 < expected {
        std::thread::sleep(Duration::from_millis(20));
        let d = stats.delivered.load(Ordering::Relaxed);
        if d != last.0 {
            last = (d, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let elapsed = last.1.duration_since(start).as_secs_f64();
    let after = (ticks(&inst), ticks(&redis), ticks(&nginx), ticks(&[me]));
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let mut lat = stats
        .latencies
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or("-".to_owned(), |us| {
                format!("{:.1} ms", f64::from(*us) / 1000.0)
            })
    };
    // Ticks are 1/100 s: percent of one core over the run.
    let cpu = |a: u64, b: u64| format!("{:.0}%", (b - a) as f64 / elapsed);
    let name = match n {
        0 => "1 instance, no Redis, no nginx".to_owned(),
        1 => "1 instance + Redis + nginx".to_owned(),
        n => format!("{n} instances + Redis + nginx"),
    };
    drop(clients);
    drop(setup);
    Ok(format!(
        "| {name} | {rate} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
        delivered as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        expected.saturating_sub(delivered),
        cpu(before.0, after.0),
        if n == 0 {
            "-".into()
        } else {
            cpu(before.1, after.1)
        },
        if n == 0 {
            "-".into()
        } else {
            cpu(before.2, after.2)
        },
        cpu(before.3, after.3),
    ))
}
