//! A server running in a child process (this binary with `--serve KIND`),
//! seen from the load generator: its address, its pid for `/proc`, and
//! stopping it.

use core::net::SocketAddr;
use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Instant as StdInstant;

use snowsocket_server::rustls;

use crate::client::{tls_client_config, unhex};
use crate::servers::{Kind, ServeOptions};

/// A serving child process. Dropping it kills and reaps it.
pub(crate) struct ServerProcess {
    kind: Kind,
    child: Child,
    /// Closing it asks the server to stop.
    stdin: Option<ChildStdin>,
    pub(crate) addr: SocketAddr,
    /// Under TLS: a client configuration that trusts the server.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

/// How long a child may take to print its address (a debug build under
/// valgrind is slow; a release build takes milliseconds).
const START_TIMEOUT: Duration = Duration::from_secs(20);

impl ServerProcess {
    pub(crate) fn start(kind: Kind, opts: &ServeOptions) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg("--serve")
            .arg(kind.name())
            .args(opts.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the {} server process: {e}", kind.name()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut process = Self {
            kind,
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
        };
        let stdout = stdout.ok_or("no stdout from the server process")?;
        // The child prints its address, or exits (end of file); a reader
        // thread bounds the wait (dropping `process` kills the child).
        let (line_tx, line_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let line = line_rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            format!(
                "the {} server process printed no address in {} s",
                kind.name(),
                START_TIMEOUT.as_secs()
            )
        })?;
        let mut words = line.split_whitespace();
        process.addr = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("the {} server process printed {line:?}", kind.name()))?;
        if let Some(cert) = words.next() {
            let cert = unhex(cert).ok_or("the server process printed a bad certificate")?;
            process.tls = Some(tls_client_config(cert)?);
        }
        Ok(process)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has ended (crashed) already.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "the {} server process ended early ({status})",
                self.kind.name()
            )),
            Err(e) => Err(format!("waiting for the server process: {e}")),
        }
    }

    /// Asks the server to stop (end of its standard input) and waits up
    /// to `grace` for it to exit; kills it after that. An error if it had
    /// ended before it was asked, or did not exit in time.
    pub(crate) fn stop(mut self, grace: Duration) -> Result<(), String> {
        self.check_alive()?;
        drop(self.stdin.take());
        let deadline = StdInstant::now() + grace;
        while StdInstant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("waiting for the server process: {e}")),
            }
        }
        Err(format!(
            "the {} server process did not stop within {:.1} s",
            self.kind.name(),
            grace.as_secs_f64()
        ))
    }

    /// Kills the server at once (SIGKILL), so that its sockets close
    /// before the clients' and TIME_WAIT stays on the server's side. An
    /// error if it had ended before.
    pub(crate) fn kill(mut self) -> Result<(), String> {
        self.check_alive()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
