//! The tables the benchmark prints (Markdown, ready for the README), and
//! the statistics behind them.

use core::fmt::Write as _;

use crate::proc::Threads;
use crate::servers::Kind;
use crate::throughput::{Sample, Shape};

/// The median (the mean of the middle two for an even count); NaN if empty.
pub(crate) fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Minimum, median and maximum; NaN if empty.
fn spread(values: &[f64]) -> [f64; 3] {
    let min = values.iter().copied().fold(f64::NAN, f64::min);
    let max = values.iter().copied().fold(f64::NAN, f64::max);
    [min, median(values.iter().copied()), max]
}

pub(crate) fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

pub(crate) fn bytes_label(bytes: f64) -> String {
    if bytes >= 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}

/// `1234567.8` → `1,234,568`.
pub(crate) fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fixed(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "–".into()
    }
}

/// `end (max)`, or just `end` when the count did not move.
pub(crate) fn threads_label(t: Threads) -> String {
    if t.max > t.end {
        format!(
            "{} (max {})",
            thousands(t.end as f64),
            thousands(t.max as f64)
        )
    } else {
        thousands(t.end as f64)
    }
}

/// The throughput results: `samples[shape][server]`, one sample per round
/// or the first failure.
pub(crate) struct ThroughputResults<'a> {
    pub(crate) shapes: &'a [Shape],
    pub(crate) servers: &'a [Kind],
    pub(crate) samples: &'a [Vec<Result<Vec<Sample>, String>>],
}

impl ThroughputResults<'_> {
    /// The ratios to the reference (`Kind::reference`: the raw echo, or
    /// the raw TLS echo for a `wss://` server), round by round, for one
    /// cell.
    fn ratios(&self, shape: usize, server: usize) -> Vec<f64> {
        let wanted = self.servers[server].reference();
        let reference = self.servers.iter().position(|&k| k == wanted);
        let (Some(Ok(mine)), Some(Ok(theirs))) = (
            self.samples[shape].get(server),
            reference.and_then(|r| self.samples[shape].get(r)),
        ) else {
            return Vec::new();
        };
        mine.iter()
            .zip(theirs)
            .map(|(m, r)| m.rate / r.rate)
            .collect()
    }

    /// The async driver against the best tokio peer of the same round
    /// (tokio-websockets, fastwebsockets, tokio-tungstenite: whichever was
    /// fastest in that round), for one shape: the ratios, round by round,
    /// and how many rounds each peer was the best. Empty without
    /// `tokio-ours` or without a peer.
    fn tokio_ratios(&self, shape: usize) -> (Vec<f64>, Vec<(Kind, usize)>) {
        let rates = |kind: Kind| {
            let k = self.servers.iter().position(|&s| s == kind)?;
            match self.samples[shape].get(k) {
                Some(Ok(list)) => Some(list.iter().map(|x| x.rate).collect::<Vec<_>>()),
                _ => None,
            }
        };
        let Some(ours) = rates(Kind::TokioOurs) else {
            return (Vec::new(), Vec::new());
        };
        let peers: Vec<(Kind, Vec<f64>)> = Kind::TOKIO_PEERS
            .iter()
            .filter_map(|&kind| Some((kind, rates(kind)?)))
            .collect();
        let mut ratios = Vec::new();
        let mut best_counts: Vec<(Kind, usize)> = peers.iter().map(|(k, _)| (*k, 0)).collect();
        for (round, &mine) in ours.iter().enumerate() {
            let best = peers
                .iter()
                .enumerate()
                .filter_map(|(i, (_, r))| Some((i, *r.get(round)?)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, rate)) = best {
                ratios.push(mine / rate);
                best_counts[i].1 += 1;
            }
        }
        (ratios, best_counts)
    }

    /// The table of [`ThroughputResults::tokio_ratios`], if there is one.
    fn render_tokio(&self, rounds: usize) -> String {
        let mut out = String::new();
        for (s, shape) in self.shapes.iter().enumerate() {
            let (ratios, best) = self.tokio_ratios(s);
            if ratios.is_empty() {
                continue;
            }
            if out.is_empty() {
                let _ = write!(
                    out,
                    "\n#### The async driver on tokio against the best tokio peer of each round \
                     ({rounds} round(s))\n\n\
                     | shape | tokio-ours ÷ best peer: min / median / max | best peer (rounds) |\n\
                     |---|---:|---|\n"
                );
            }
            let [lo, mid, hi] = spread(&ratios);
            let best = best
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| format!("{} ({n})", k.name()))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "| {} | {} / **{}** / {} | {best} |",
                shape.short(),
                fixed(lo, 2),
                fixed(mid, 2),
                fixed(hi, 2)
            );
        }
        out
    }

    /// One table per shape, then a summary of the median ratios.
    pub(crate) fn render(&self, rounds: usize) -> String {
        let mut out = String::new();
        let reference = if self.servers.iter().any(|k| k.is_tls()) {
            "raw-mio (wss://: × raw-mio-tls)"
        } else {
            "raw-mio"
        };
        for (s, shape) in self.shapes.iter().enumerate() {
            let _ = write!(
                out,
                "\n#### {}\n\n\
                 | server | echoes/s (median) | × {reference}: min / median / max | \
                 server CPU µs per echo | server threads |\n\
                 |---|---:|---:|---:|---:|\n",
                shape.title()
            );
            for (k, kind) in self.servers.iter().enumerate() {
                let _ = write!(out, "| {} |", kind.label());
                match &self.samples[s][k] {
                    Err(e) => {
                        let _ = writeln!(out, " failed: {} | – | – | – |", one_line(e));
                    }
                    Ok(list) => {
                        let rate = median(list.iter().map(|x| x.rate));
                        let cpu = median(list.iter().map(|x| x.server_cpu_micros));
                        let threads = Threads {
                            end: list.iter().map(|x| x.threads.end).max().unwrap_or(0),
                            max: list.iter().map(|x| x.threads.max).max().unwrap_or(0),
                        };
                        let [lo, mid, hi] = spread(&self.ratios(s, k));
                        let _ = writeln!(
                            out,
                            " {} | {} / **{}** / {} | {} | {} |",
                            thousands(rate),
                            fixed(lo, 2),
                            fixed(mid, 2),
                            fixed(hi, 2),
                            fixed(cpu, 2),
                            threads_label(threads)
                        );
                    }
                }
            }
        }
        let _ = write!(
            out,
            "\n#### Summary: median ratio to the event-loop raw echo ({rounds} round(s){})\n\n| server |",
            if reference == "raw-mio" { "" } else { "; wss:// servers to the raw TLS echo" }
        );
        for shape in self.shapes {
            let _ = write!(out, " {} |", shape.short());
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.shapes.len()));
        out.push('\n');
        for (k, kind) in self.servers.iter().enumerate() {
            let _ = write!(out, "| {} |", kind.label());
            for s in 0..self.shapes.len() {
                let cell = match &self.samples[s][k] {
                    Err(_) => "failed".to_string(),
                    Ok(_) => fixed(median(self.ratios(s, k)), 2),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out.push_str(&self.render_tokio(rounds));
        out
    }
}

/// An error message on one table line.
pub(crate) fn one_line(e: &str) -> String {
    e.replace(['\n', '|'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
        assert_eq!(spread(&[0.9, 1.1, 1.0]), [0.9, 1.0, 1.1]);
    }

    #[test]
    fn against_the_best_tokio_peer_round_by_round() {
        let sample = |rate| Sample {
            rate,
            server_cpu_micros: 1.0,
            client_cpu_micros: 1.0,
            threads: Threads { end: 2, max: 2 },
        };
        let shape = Shape {
            connections: 64,
            in_flight: 16,
            size: 65536,
        };
        let servers = [Kind::TokioOurs, Kind::FastWebsockets, Kind::TokioWebsockets];
        // Round 1: fastwebsockets is the best (200); round 2: tokio-websockets (300).
        let samples = vec![vec![
            Ok(vec![sample(100.0), sample(330.0)]),
            Ok(vec![sample(200.0), sample(150.0)]),
            Ok(vec![sample(50.0), sample(300.0)]),
        ]];
        let results = ThroughputResults {
            shapes: &[shape],
            servers: &servers,
            samples: &samples,
        };
        let (ratios, best) = results.tokio_ratios(0);
        assert_eq!(ratios, vec![0.5, 1.1]);
        assert!(best.contains(&(Kind::FastWebsockets, 1)));
        assert!(best.contains(&(Kind::TokioWebsockets, 1)));
        let table = results.render_tokio(2);
        assert!(
            table.contains("| 64×16, 64 KiB | 0.50 / **0.80** / 1.10 |"),
            "{table}"
        );
    }

    #[test]
    fn labels() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(size_label(16), "16 B");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(bytes_label(7065.6), "6.9 KiB");
        assert_eq!(threads_label(Threads { end: 3, max: 3 }), "3");
        assert_eq!(
            threads_label(Threads {
                end: 4,
                max: 10_004
            }),
            "4 (max 10,004)"
        );
    }
}
