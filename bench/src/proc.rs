//! What the benchmark reads about a process from `/proc` (Linux): resident
//! memory, thread count, CPU time; and pinning a process to one core.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on Linux
/// whatever the kernel's own tick rate).
const TICKS_PER_SECOND: f64 = 100.0;

/// One field of `/proc/PID/status` (`VmRSS`, `Threads`, …), as a number
/// (kB for the memory fields).
fn status_field(pid: u32, name: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
}

/// Resident memory of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    status_field(pid, "VmRSS")
}

/// The number of threads of `pid`.
pub(crate) fn threads(pid: u32) -> Result<u64, String> {
    status_field(pid, "Threads")
}

/// User plus system CPU time of `pid` so far, in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which ends with the last ')': state
    // is field 3, utime 14, stime 15.
    let rest = stat
        .rfind(')')
        .and_then(|at| stat.get(at + 1..))
        .ok_or("malformed /proc/PID/stat")?;
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || -> Result<u64, String> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| "malformed /proc/PID/stat".to_string())
    };
    let ticks = next()? + next()?;
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// The load average line of `/proc/loadavg` (1, 5, 15 minutes).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// A thread that samples a process's thread count every 50 ms and keeps
/// the largest; [`ThreadWatch::finish`] returns it with a last reading.
pub(crate) struct ThreadWatch {
    pid: u32,
    max: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
}

/// How often [`ThreadWatch`] looks.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

impl ThreadWatch {
    pub(crate) fn start(pid: u32) -> Self {
        let max = Arc::new(AtomicU64::new(threads(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (max2, stop2) = (Arc::clone(&max), Arc::clone(&stop));
        let sampler = thread::Builder::new()
            .name("thread-watch".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match threads(pid) {
                        Ok(n) => {
                            max2.fetch_max(n, Ordering::Relaxed);
                        }
                        Err(_) => return, // the process is gone
                    }
                    thread::sleep(SAMPLE_EVERY);
                }
            })
            .ok();
        Self {
            pid,
            max,
            stop,
            sampler,
        }
    }

    /// The thread count now, and the largest seen since [`Self::start`].
    pub(crate) fn finish(mut self) -> Threads {
        let now = threads(self.pid).unwrap_or(0);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        Threads {
            end: now,
            max: self.max.load(Ordering::Relaxed).max(now),
        }
    }
}

impl Drop for ThreadWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A server process's thread count at the end of a cell and the largest
/// during it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Threads {
    pub(crate) end: u64,
    pub(crate) max: u64,
}

/// The cores this process may run on (its affinity mask).
pub(crate) fn cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// Pins the calling thread, and every thread it starts afterwards, to
/// `core` (`sched_setaffinity`). Call it before the process starts any
/// thread to pin the whole process.
pub(crate) fn pin_to(core: usize) -> Result<(), String> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(format!("cannot pin to core {core}"))
    }
}

/// Raises this process's open-files limit to `wanted`, the hard limit too
/// where allowed (as root); returns the soft limit now in force.
pub(crate) fn raise_nofile(wanted: u64) -> u64 {
    use rlimit::Resource;
    if let Ok((soft, hard)) = Resource::NOFILE.get() {
        if hard < wanted && Resource::NOFILE.set(wanted, wanted).is_ok() {
            return wanted;
        }
        if soft >= wanted {
            return soft;
        }
    }
    rlimit::increase_nofile_limit(wanted).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).is_ok_and(|kib| kib > 0));
        assert!(threads(pid).is_ok_and(|n| n >= 1));
        assert!(cpu_seconds(pid).is_ok_and(|s| s >= 0.0));
    }
}
