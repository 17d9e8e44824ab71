//! A cluster on loopback for the tests and the benchmark: Redis
//! (`redis-server`) and nginx (`nginx`) from the system, chat instances
//! (the `chat-cluster` binary) as child processes, every port chosen at
//! run time, every file in one directory that is removed at the end.
//! Dropping a [`Cluster`] stops every process it started and waits for
//! them.
//!
//! Each process has its type ([`Redis`], [`Instance`], [`Nginx`]), the
//! benchmark reads their CPU time ([`cpu_ticks`]), and a [`Member`] is a
//! chat client whose messages arrive on a channel.

use core::net::SocketAddr;
use core::time::Duration;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

mod member;
mod process;

pub use member::{Heard, Member};
pub use process::{children, cpu_ticks, Instance, Nginx, Redis, NGINX_CONF};

/// How long a process has to start (listen) or to stop.
const START: Duration = Duration::from_secs(20);

/// A failure of the harness, said in words.
pub type Error = String;

/// A free port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
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
