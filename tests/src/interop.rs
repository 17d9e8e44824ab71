//! The peers of the interop tests (`tests/tests/interop.rs`): Python
//! `websockets` and Node's `ws`, each running a script of `tests/interop/`
//! (`peer.py`, `peer.js`: one line protocol, described in `peer.py`) as a
//! child process, driven by lines on its stdin and reporting by lines on its
//! stdout.
//!
//! Their runtimes are installed by `scripts/interop-setup.sh` (the `interop`
//! stage of `scripts/test.sh` runs it): `websockets` at the version pinned in
//! `tests/interop/requirements.txt` into the virtual environment
//! `target/venv` (`$CARGO_TARGET_DIR/venv`), and `ws` from
//! `tests/interop/package-lock.json` into `tests/interop/node_modules`. When
//! one is missing the tests fail and say so, unless the environment variable
//! [`SKIP_VAR`] is set (to anything but `0`), which marks them skipped.
//!
//! Every wait is bounded; dropping a [`Peer`] kills its process, and a peer
//! also exits by itself when its stdin ends (the test process is gone).

use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Instant;

use crate::tls::{self, Identity};

/// Set (to anything but `0`) to skip the interop tests instead of failing
/// them when a peer's runtime is not installed.
pub const SKIP_VAR: &str = "SNOWSOCKET_SKIP_INTEROP";

/// Set to print what each peer said (its lines and its stderr) when it
/// is dropped, also when the test passes.
pub const VERBOSE_VAR: &str = "SNOWSOCKET_INTEROP_VERBOSE";

/// The command that installs the peers' runtimes.
pub const SETUP: &str = "scripts/interop-setup.sh";

/// Whether the interop tests are to be skipped ([`SKIP_VAR`] is set); says
/// so on stderr.
pub fn skip() -> bool {
    let skip = std::env::var_os(SKIP_VAR).is_some_and(|v| !v.is_empty() && v != "0");
    if skip {
        eprintln!("interop test skipped: {SKIP_VAR} is set");
    }
    skip
}

/// Which library the peer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Python `websockets` (asyncio implementation), `tests/interop/peer.py`.
    Python,
    /// Node's `ws`, `tests/interop/peer.js`.
    Node,
}

impl Lang {
    /// The library's name, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Python => "Python websockets",
            Self::Node => "Node ws",
        }
    }

    /// The program and the script to run, once the runtime is checked; the
    /// check runs once per process. Panics, saying how to install the
    /// runtime, when it is missing.
    fn command(self) -> (PathBuf, PathBuf) {
        static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let (checked, script) = match self {
            Self::Python => (PYTHON.get_or_init(check_python), "peer.py"),
            Self::Node => (NODE.get_or_init(check_node), "peer.js"),
        };
        match checked {
            Ok(program) => (program.clone(), interop_dir().join(script)),
            Err(why) => panic!(
                "the interop tests need {}, which is not ready: {why}.\n\
                 Install it with `{SETUP}` (or run `./scripts/test.sh --only interop`), \
                 or set {SKIP_VAR}=1 to skip these tests.",
                self.name()
            ),
        }
    }
}

fn workspace_dir() -> &'static Path {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests.parent().unwrap_or(tests)
}

/// `tests/interop`: the peers' scripts and their pinned packages.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// The virtual environment of the test scripts (as `venv_python` in
/// `scripts/lib.sh`): `$CARGO_TARGET_DIR/venv`, else `target/venv`.
fn venv_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
    workspace_dir().join(target).join("venv")
}

/// The version after `marker` in `text`, up to the next `"` or line end.
fn version_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split(['"', '\n', '\r']).next().map(str::trim)
}

fn check_python() -> Result<PathBuf, String> {
    let requirements = interop_dir().join("requirements.txt");
    let text = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let pinned = version_after(&text, "websockets==")
        .ok_or_else(|| format!("no websockets== pin in {}", requirements.display()))?;
    let python = venv_dir().join("bin").join("python");
    let out = Command::new(&python)
        .args(["-c", "import websockets; print(websockets.__version__)"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import websockets: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let installed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if installed != pinned {
        return Err(format!(
            "{} has websockets {installed}; {} pins {pinned}",
            python.display(),
            requirements.display()
        ));
    }
    Ok(python)
}

fn check_node() -> Result<PathBuf, String> {
    let node = PathBuf::from("node");
    let out = Command::new(&node)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("no `node` on PATH ({e})"))?;
    if !out.status.success() {
        return Err("`node --version` failed".into());
    }
    let manifest = interop_dir().join("package.json");
    let text =
        std::fs::read_to_string(&manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let pinned = version_after(&text, "\"ws\": \"")
        .ok_or_else(|| format!("no ws dependency in {}", manifest.display()))?;
    let installed = interop_dir().join("node_modules/ws/package.json");
    let text = std::fs::read_to_string(&installed)
        .map_err(|e| format!("ws is not installed ({}: {e})", installed.display()))?;
    match version_after(&text, "\"version\": \"") {
        Some(v) if v == pinned => Ok(node),
        other => Err(format!(
            "{} is ws {}; package.json pins {pinned}",
            installed.display(),
            other.unwrap_or("of no version")
        )),
    }
}

/// How to start a peer: [`client`] or [`server`], options, then
/// [`PeerSpec::spawn`].
#[derive(Debug)]
pub struct PeerSpec {
    lang: Lang,
    args: Vec<String>,
}

/// A peer that connects to `url` (`ws://` or `wss://`).
pub fn client(lang: Lang, url: &str) -> PeerSpec {
    PeerSpec {
        lang,
        args: vec!["client".into(), url.into()],
    }
}

/// A peer that serves on 127.0.0.1, on a port it reports
/// ([`Peer::listening`]).
pub fn server(lang: Lang) -> PeerSpec {
    PeerSpec {
        lang,
        args: vec!["server".into()],
    }
}

impl PeerSpec {
    fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// `wss://` with `certs`: a client trusts the certificate, a server
    /// presents it. `None`: plain `ws://`.
    #[must_use]
    pub fn tls(self, certs: Option<&CertFiles>) -> Self {
        match certs {
            None => self,
            Some(c) if self.args[0] == "client" => self.arg("--ca").arg(c.cert_arg()),
            Some(c) => self
                .arg("--cert")
                .arg(c.cert_arg())
                .arg("--key")
                .arg(c.key.display().to_string()),
        }
    }

    /// Subprotocols to offer (client) or accept (server), in order.
    #[must_use]
    pub fn subprotocols(self, names: &[&str]) -> Self {
        self.arg("--subprotocols").arg(names.join(","))
    }

    /// (Server) sends every message back.
    #[must_use]
    pub fn echo(self) -> Self {
        self.arg("--echo")
    }

    /// Answers no Ping while reading everything (Node `ws` only:
    /// `autoPong: false`).
    #[must_use]
    pub fn no_auto_pong(self) -> Self {
        self.arg("--no-auto-pong")
    }

    /// Starts the peer.
    pub fn spawn(self) -> Peer {
        let (program, script) = self.lang.command();
        let mut child = Command::new(&program)
            .arg(&script)
            .args(&self.args)
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {}: {e}", program.display(), script.display()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&stderr_text);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_str(&text);
            }
        });
        let stdin = child.stdin.take();
        Peer {
            lang: self.lang,
            args: self.args,
            child,
            stdin,
            lines,
            backlog: VecDeque::new(),
            seen: Vec::new(),
            stderr: stderr_text,
        }
    }
}

/// A running peer process. Dropping it kills the process.
#[derive(Debug)]
pub struct Peer {
    lang: Lang,
    args: Vec<String>,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Lines read and not yet asked for, in order.
    backlog: VecDeque<String>,
    /// Every line read, for failure messages.
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

/// A connection as the peer saw it open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The subprotocol chosen, if any.
    pub subprotocol: Option<String>,
    /// (Peer server) the subprotocols the client offered, in order.
    pub offered: Vec<String>,
    /// The negotiated `Sec-WebSocket-Extensions`, if any.
    pub extensions: Option<String>,
}

/// A message as the peer received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// `"text"` or `"binary"`.
    pub kind: String,
    /// Its length in bytes.
    pub len: usize,
    /// Whether it is the test pattern of its length
    /// ([`payload`](crate::server::payload) / [`text`](crate::server::text)).
    pub pattern: bool,
}

impl Peer {
    /// Sends a command line (see `tests/interop/peer.py`).
    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            self.fail(&format!("writing {line:?} to the peer: {e}"));
        }
    }

    /// The rest of the next line that starts with the word `word`, taken
    /// from the backlog first (lines read meanwhile that start otherwise
    /// are kept for later). Fails the test on an `error` line, on a
    /// `closed` line when waiting for something else, and after `within`.
    pub fn expect(&mut self, word: &str, within: Duration) -> String {
        let matches = |line: &str| {
            line.strip_prefix(word)
                .filter(|rest| rest.is_empty() || rest.starts_with(' '))
                .map(|rest| rest.strip_prefix(' ').unwrap_or(rest).to_owned())
        };
        if let Some(i) = self.backlog.iter().position(|l| matches(l).is_some()) {
            let line = self.backlog.remove(i).unwrap_or_default();
            return matches(&line).unwrap_or_default();
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.fail(&format!("no '{word}' line within {within:?}"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Let the stderr reader catch up before reporting.
                    let _ = self.child.wait();
                    self.fail(&format!(
                        "the peer exited while the test waited for '{word}'"
                    ))
                }
            };
            self.seen.push(line.clone());
            if let Some(rest) = matches(&line) {
                return rest;
            }
            if line.starts_with("error") || (line.starts_with("closed") && word != "closed") {
                self.fail(&format!("'{line}' while waiting for '{word}'"));
            }
            self.backlog.push_back(line);
        }
    }

    /// (Server) the port it listens on.
    pub fn listening(&mut self) -> u16 {
        let port = self.expect("listening", Duration::from_secs(20));
        port.parse()
            .unwrap_or_else(|_| self.fail(&format!("bad port {port:?}")))
    }

    /// Waits for a connection to open (the peer's start included).
    pub fn opened(&mut self) -> Opened {
        let rest = self.expect("open", Duration::from_secs(20));
        let mut words = rest.splitn(3, ' ');
        let mut next = || match words.next() {
            Some("-") | None => None,
            Some(w) => Some(w.to_owned()),
        };
        Opened {
            subprotocol: next(),
            offered: next().map_or_else(Vec::new, |o| o.split(',').map(str::to_owned).collect()),
            extensions: next(),
        }
    }

    /// The next message the peer received.
    pub fn message(&mut self, within: Duration) -> Received {
        let rest = self.expect("message", within);
        let words: Vec<&str> = rest.split(' ').collect();
        match words[..] {
            [kind, len, pattern] => Received {
                kind: kind.to_owned(),
                len: len.parse().unwrap_or(usize::MAX),
                pattern: pattern == "ok",
            },
            _ => self.fail(&format!("bad message line {rest:?}")),
        }
    }

    /// Waits for the connection to close: the code and reason of the Close
    /// the peer received (1006 when it received none).
    pub fn closed(&mut self, within: Duration) -> (u16, String) {
        let rest = self.expect("closed", within);
        let (code, reason) = rest.split_once(' ').unwrap_or((&rest, ""));
        let code = code
            .parse()
            .unwrap_or_else(|_| self.fail(&format!("bad closed line {rest:?}")));
        (code, reason.to_owned())
    }

    /// Fails the test with `why`, what the peer said and its stderr.
    pub fn fail(&self, why: &str) -> ! {
        // A moment for the stderr reader to catch the peer's last words.
        thread::sleep(Duration::from_millis(100));
        let stderr = self
            .stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        panic!(
            "{} peer ({}): {why}\n--- its lines ---\n{}\n--- its stderr ---\n{stderr}",
            self.lang.name(),
            self.args.join(" "),
            self.seen.join("\n"),
        )
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os(VERBOSE_VAR).is_some() {
            let stderr = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
            eprintln!(
                "{} peer ({}):\n{}\n{}",
                self.lang.name(),
                self.args.join(" "),
                self.seen.join("\n"),
                stderr.trim_end()
            );
        }
    }
}

/// A certificate for `127.0.0.1` and `localhost` (rcgen, see
/// [`tls::identity`]) and its PEM files in a directory of their own,
/// removed on drop.
#[derive(Debug)]
pub struct CertFiles {
    /// The certificate and key.
    pub identity: Identity,
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    /// A fresh certificate, written out.
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "snowsocket-interop-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let identity = tls::identity();
        let (cert, key) = identity.write_pem(&dir);
        Self {
            identity,
            dir,
            cert,
            key,
        }
    }

    fn cert_arg(&self) -> String {
        self.cert.display().to_string()
    }
}

impl Default for CertFiles {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
