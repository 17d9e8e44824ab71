//! A cluster on loopback for the tests and the benchmark: Redis
//! (`redis-server`) and nginx (`nginx`) from the system, chat instances
//! (the `chat-cluster` binary) as child processes, every port chosen at
//! run time, every file in one directory that is removed at the end.
//! Dropping a [`Cluster`] stops every process it started and waits for
//! them.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use snowsocket_server::client::{self, ClientConfig, Spawned};
use snowsocket_server::{CloseInfo, ConnectionHandle, Handler, Message};

use crate::state::lock;

/// The nginx configuration, with `@DIR@`, `@LISTEN@` and `@SERVERS@` to
/// fill in.
pub const NGINX_CONF: &str = include_str!("../nginx/cluster.conf");

/// How long a process has to start (listen) or to stop.
const START: Duration = Duration::from_secs(20);

/// A failure of the harness, said in words.
pub type Error = String;

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Waits until `addr` accepts a TCP connection.
fn await_listening(addr: SocketAddr, what: &str, child: &mut Child) -> Result<(), Error> {
    let end = Instant::now() + START;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited at start: {status}"));
        }
        if Instant::now() > end {
            return Err(format!("{what} did not listen on {addr} within {START:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit, at most `within`; kills it after that.
fn reap(child: &mut Child, within: Duration) {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `redis-server` on a loopback port, without persistence.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts Redis on a free port, its files in `dir`.
    pub fn start(dir: &Path) -> Result<Self, Error> {
        let mut redis = Self {
            child: None,
            port: free_port()?,
            dir: dir.to_owned(),
        };
        redis.restart()?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills Redis (as a crash would) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Redis again on the same port (after [`Redis::kill`]).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill();
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--maxclients", "1000", "--loglevel", "warning"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server (Debian: redis-server): {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let ready = await_listening(addr, "redis-server", &mut child);
        self.child = Some(child);
        ready
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `chat-cluster` process, its log lines collected.
#[derive(Debug)]
pub struct Instance {
    /// Its `--instance` name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    lines: Receiver<String>,
}

impl Instance {
    /// Starts `binary` as instance `name` on a free port, with `redis`
    /// (or alone) and `extra` arguments.
    pub fn start(
        binary: &Path,
        name: &str,
        redis: Option<&str>,
        extra: &[&str],
    ) -> Result<Self, Error> {
        let mut cmd = Command::new(binary);
        cmd.args(["--addr", "127.0.0.1:0", "--instance", name]);
        if let Some(url) = redis {
            cmd.args(["--redis", url]);
        }
        let mut child = cmd
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = mpsc::channel();
        if let Some(err) = child.stderr.take() {
            let (log, tx) = (Arc::clone(&log), tx.clone());
            std::thread::spawn(move || forward(BufReader::new(err), &log, &tx));
        }
        let Some(out) = child.stdout.take() else {
            return Err("no stdout".into());
        };
        let (addr_tx, addr_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("listening on ws://") {
                    let _ = addr_tx.send(a.trim_end_matches('/').to_owned());
                }
            }
        });
        let mut instance = Self {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            log,
            lines,
        };
        let addr = addr_rx
            .recv_timeout(START)
            .map_err(|_| format!("instance {name} did not say where it listens"))?;
        instance.addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        Ok(instance)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a log line containing `text` that comes after the lines
    /// already seen by this call's earlier uses (at most `within`).
    pub fn await_log(&self, text: &str, within: Duration) -> Result<String, Error> {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "instance {}: no log line with {text:?} within {within:?}; log:\n{}",
                        self.name,
                        lock(&self.log).join("\n")
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("instance {}: exited", self.name))
                }
            }
        }
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// Kills the process (as a crash would) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(reader: impl BufRead, log: &Mutex<Vec<String>>, tx: &Sender<String>) {
    for line in reader.lines().map_while(Result::ok) {
        lock(log).push(line.clone());
        let _ = tx.send(line);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx in front of some instances.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx on a free port, proxying to `upstreams`, its files in
    /// `dir`.
    pub fn start(dir: &Path, upstreams: &[SocketAddr]) -> Result<Self, Error> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let servers: String = upstreams
            .iter()
            .map(|a| format!("        server {a};\n"))
            .collect();
        let conf = NGINX_CONF
            .replace("@DIR@", &dir.display().to_string())
            .replace("@LISTEN@", &addr.to_string())
            .replace("@SERVERS@", servers.trim_end());
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut child = Command::new(nginx_binary())
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run nginx (Debian: nginx): {e}"))?;
        await_listening(addr, "nginx", &mut child)?;
        Ok(Self {
            child,
            dir: dir.to_owned(),
            addr,
        })
    }

    /// The master's and the workers' process ids.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        pids.extend(crate::harness::children(self.child.id()));
        pids
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master stops its workers (a SIGKILL would orphan them).
        let _ = Command::new(nginx_binary())
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        reap(&mut self.child, Duration::from_secs(10));
    }
}

/// `nginx` on the PATH, else Debian's `/usr/sbin/nginx` (not on a
/// normal user's PATH).
fn nginx_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("nginx")
    }
}

/// The child processes of `pid` (from /proc).
pub fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/PID/stat`, in clock ticks (100 per second on Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Redis, `n` instances and nginx in front of them.
#[derive(Debug)]
pub struct Cluster {
    /// The instances, in start order (`a`, `b`, ...).
    pub instances: Vec<Instance>,
    /// The broker.
    pub redis: Redis,
    /// Where nginx listens.
    pub addr: SocketAddr,
    nginx: Option<Nginx>,
    dir: PathBuf,
}

impl Cluster {
    /// Starts Redis, `n` instances of `binary` (with `extra` arguments)
    /// and nginx, in a new directory under `base`.
    pub fn start(binary: &Path, base: &Path, n: usize, extra: &[&str]) -> Result<Self, Error> {
        let dir = base.join(format!(
            "cluster-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let redis = Redis::start(&dir)?;
        let mut cluster = Self {
            instances: Vec::new(),
            redis,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            nginx: None,
            dir,
        };
        for i in 0..n {
            let name = char::from(b'a' + (i % 26) as u8).to_string();
            let url = cluster.redis.url();
            cluster
                .instances
                .push(Instance::start(binary, &name, Some(&url), extra)?);
        }
        for instance in &cluster.instances {
            instance.await_log("Redis connected", START)?;
        }
        let upstreams: Vec<SocketAddr> = cluster.instances.iter().map(|i| i.addr).collect();
        let nginx = Nginx::start(&cluster.dir, &upstreams)?;
        cluster.addr = nginx.addr;
        cluster.nginx = Some(nginx);
        Ok(cluster)
    }

    /// `ws://NGINX/room/NAME`.
    pub fn url(&self, room: &str) -> String {
        format!("ws://{}/room/{room}", self.addr)
    }

    /// The instance named `name`.
    pub fn instance(&self, name: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// nginx's process ids (master and workers).
    pub fn nginx_pids(&self) -> Vec<u32> {
        self.nginx.as_ref().map(Nginx::pids).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nginx = None;
        self.instances.clear();
        self.redis.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a [`Member`] heard.
#[derive(Debug)]
pub enum Heard {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The connection ended.
    Closed(CloseInfo),
}

/// A chat client whose messages arrive on a channel.
#[derive(Debug)]
pub struct Member {
    /// The instance its join notice named.
    pub instance: String,
    /// The join notice.
    pub notice: String,
    /// What it hears, in order.
    pub heard: Receiver<Heard>,
    spawned: Spawned,
}

struct Forward(Mutex<Sender<Heard>>);

impl Handler for Forward {
    fn on_message(&self, _conn: &ConnectionHandle, message: Message<'_>) {
        let heard = match message {
            Message::Text(t) => Heard::Text(t.to_owned()),
            Message::Binary(b) => Heard::Binary(b.to_vec()),
        };
        let _ = lock(&self.0).send(heard);
    }
    fn on_close(&self, _conn: &ConnectionHandle, info: CloseInfo) {
        let _ = lock(&self.0).send(Heard::Closed(info));
    }
}

impl Member {
    /// Connects to `url` and waits for the join notice (at most
    /// `within`).
    pub fn join(url: &str, within: Duration) -> Result<Self, Error> {
        let config = ClientConfig::default().handshake_timeout(within);
        let client = client::connect(url, config).map_err(|e| format!("connect {url}: {e}"))?;
        let (tx, heard) = mpsc::channel();
        let spawned = client
            .spawn(Forward(Mutex::new(tx)))
            .map_err(|e| e.to_string())?;
        let first = heard
            .recv_timeout(within)
            .map_err(|_| format!("no join notice from {url} within {within:?}"))?;
        let (instance, notice) = match first {
            Heard::Text(t) if t.starts_with("* joined room") => (
                t.split(" on instance ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .unwrap_or_default()
                    .to_owned(),
                t,
            ),
            other => return Err(format!("expected a join notice, got {other:?}")),
        };
        Ok(Self {
            instance,
            notice,
            heard,
            spawned,
        })
    }

    /// Sends a text message (never blocks).
    pub fn say(&self, text: &str) -> Result<(), Error> {
        self.spawned
            .sender()
            .send_text(text)
            .map_err(|e| e.to_string())
    }

    /// A handle to send from other threads.
    pub fn sender(&self) -> ConnectionHandle {
        self.spawned.sender()
    }
}
