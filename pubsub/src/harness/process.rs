//! The processes of a cluster: Redis, the chat instances, nginx.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{free_port, Error, START};
use crate::state::lock;

/// The nginx configuration, with `@DIR@`, `@LISTEN@` and `@SERVERS@` to
/// fill in.
pub const NGINX_CONF: &str = include_str!("../../nginx/cluster.conf");
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
        let mut child = nginx_command(dir)
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
        pids.extend(children(self.child.id()));
        pids
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master stops its workers (a SIGKILL would orphan them).
        let _ = nginx_command(&self.dir)
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        reap(&mut self.child, Duration::from_secs(10));
    }
}

/// nginx with every file in `dir` (also the error log it opens before
/// reading its configuration, which is elsewhere not writable but by root).
fn nginx_command(dir: &Path) -> Command {
    let mut cmd = Command::new(nginx_binary());
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"));
    cmd
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
