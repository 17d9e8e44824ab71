//! What the tokio-based servers share: a runtime on a thread of its own and
//! the accept loop (Nagle off, a task per connection).

use core::future::Future;
use std::io;
use std::thread;

use super::{listen, Running};

/// Binds, builds a current-thread runtime (as the crates' echo examples
/// do; with timers, which the async driver of snowsocket-core uses for its
/// deadlines) and runs `serve` on it, on a thread of its own.
pub(super) fn current_thread<F, Fut>(name: &'static str, serve: F) -> Result<Running, String>
where
    F: FnOnce(std::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<()>>,
{
    let (listener, addr) = listen().map_err(|e| format!("bind: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("listener: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    thread::Builder::new()
        .name("tokio-rt".into())
        .spawn(move || {
            if let Err(e) = rt.block_on(serve(listener)) {
                eprintln!("{name}: {e}");
            }
        })
        .map_err(|e| format!("runtime thread: {e}"))?;
    Ok(Running {
        addr,
        cert: None,
        stop: None,
    })
}

/// Accepts connections for ever, handing each (Nagle off) to `each`.
pub(super) async fn accept_each(
    listener: std::net::TcpListener,
    mut each: impl FnMut(tokio::net::TcpStream),
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let mut errors = 0;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: bounded retries.
            Err(_) if errors < 1000 => {
                errors += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        each(stream);
    }
}
