//! The client's side of the event loop: the loop all clients share, and
//! how a client connection's events reach [`Client::read_message`] or a
//! handler ([`Client::spawn`]).

use super::*;

/// What the clients' loop reads at a time (their connections' services
/// say the same: a read takes `read_buffer_size`).
pub(super) const READ_BUFFER: usize = 64 * 1024;

/// The event loop all clients of the process run on, started by the
/// first connection.
pub(super) fn client_loop() -> io::Result<Arc<LoopShared>> {
    static LOOP: OnceLock<Arc<LoopShared>> = OnceLock::new();
    if let Some(shared) = LOOP.get() {
        return Ok(Arc::clone(shared));
    }
    let lp = Loop::new(None, READ_BUFFER)?;
    let shared = lp.shared();
    match LOOP.set(Arc::clone(&shared)) {
        Ok(()) => {
            std::thread::Builder::new()
                .name("ssk-client".into())
                .spawn(move || lp.run())?;
            Ok(shared)
        }
        // Another thread started it first.
        Err(_) => LOOP
            .get()
            .cloned()
            .ok_or_else(|| io::Error::other("client loop")),
    }
}

/// What a client connection's loop does with its events: queues them for
/// [`Client::read_message`], or hands them to a handler
/// ([`Client::spawn`]); and it wakes [`BlockingSender`]s when the outbox
/// has drained or the connection has ended.
pub(super) struct Route {
    pub(super) target: Mutex<Target>,
    pub(super) room: Room,
}

pub(super) enum Target {
    Queue(ChannelSender<Delivery>),
    Handler(Arc<dyn Handler>, ChannelSender<CloseInfo>),
}

/// An event queued for [`Client::read_message`].
pub(super) enum Delivery {
    Text(String),
    Binary(Vec<u8>),
    Closed(CloseInfo),
}

impl Route {
    pub(super) fn target(&self) -> MutexGuard<'_, Target> {
        self.target.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Handler for Route {
    fn on_connect(&self, _conn: &ConnectionHandle) {}

    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        match &*self.target() {
            Target::Queue(queue) => {
                // One message at a time: the next is parsed when the
                // application asks for it (bounded memory, and an answer
                // to this one goes out before anything a later frame
                // causes, a protocol error's Close included). Paused
                // before the message is handed over, so that the reader's
                // resume cannot come first and be lost.
                conn.pause_reading();
                let _ = queue.send(match message {
                    Message::Text(text) => Delivery::Text(text.to_owned()),
                    Message::Binary(data) => Delivery::Binary(data.to_vec()),
                });
            }
            Target::Handler(handler, _) => handler.on_message(conn, message),
        }
    }

    fn on_drain(&self, conn: &ConnectionHandle) {
        self.room.notify();
        if let Target::Handler(handler, _) = &*self.target() {
            handler.on_drain(conn);
        }
    }

    fn on_close(&self, conn: &ConnectionHandle, info: CloseInfo) {
        self.room.notify();
        match &*self.target() {
            Target::Queue(queue) => {
                let _ = queue.send(Delivery::Closed(info));
            }
            Target::Handler(handler, done) => {
                handler.on_close(conn, info.clone());
                let _ = done.send(info);
            }
        }
    }
}
