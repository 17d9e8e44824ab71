//! The publishing thread: takes the members' messages from a bounded
//! queue and publishes them on their rooms' channels, many per round trip.

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::sync::mpsc::{Receiver, RecvTimeoutError};

use snowsocket_server::Message;

use crate::config::Backoff;
use crate::envelope::Envelope;
use crate::state::{lock, Published, Shared};

/// The most messages published in one round trip.
const BATCH: usize = 256;
/// How often a waiting thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);

/// A member's message on its way to Redis (owned: it leaves the callback).
#[derive(Debug)]
pub(crate) struct Outgoing {
    room: String,
    author: u64,
    text: bool,
    payload: Vec<u8>,
    /// Whether it comes back to this instance (its room is subscribed
    /// here): only then is it tracked until seen back. A message a room
    /// held when its last member here left has no one here to return to.
    pub(crate) returns: bool,
}

impl Outgoing {
    /// The message, as its author sent it.
    pub(crate) fn message(&self) -> Option<Message<'_>> {
        if self.text {
            core::str::from_utf8(&self.payload).ok().map(Message::Text)
        } else {
            Some(Message::Binary(&self.payload))
        }
    }

    /// Its author's connection id.
    pub(crate) const fn author(&self) -> u64 {
        self.author
    }

    pub(crate) fn new(room: &str, author: u64, message: Message<'_>) -> Self {
        let (text, payload) = match message {
            Message::Text(t) => (true, t.as_bytes()),
            Message::Binary(b) => (false, b),
        };
        Self {
            room: room.to_owned(),
            author,
            text,
            payload: payload.to_vec(),
            returns: true,
        }
    }

    fn envelope(&self, origin: u64, seq: u64) -> Option<Vec<u8>> {
        let message = if self.text {
            Message::Text(core::str::from_utf8(&self.payload).ok()?)
        } else {
            Message::Binary(&self.payload)
        };
        Some(
            Envelope {
                origin,
                seq,
                author: self.author,
                message,
            }
            .encode(),
        )
    }
}

/// The thread's body: until the queue is closed or the stop flag is set.
pub(crate) fn run(shared: &Shared, client: &redis::Client, queue: &Receiver<Outgoing>) {
    let config = &shared.config;
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    // The connection, and the subscriber's generation it was made in.
    let mut conn: Option<(redis::Connection, u64)> = None;
    let mut batch: Vec<u64> = Vec::with_capacity(BATCH);
    loop {
        let first = match queue.recv_timeout(TICK) {
            Ok(out) => out,
            Err(RecvTimeoutError::Timeout) if !shared.stop.load(Ordering::Acquire) => continue,
            Err(_) => return,
        };
        let mut outs = vec![first];
        outs.extend(queue.try_iter().take(BATCH - 1));

        let generation = lock(&shared.flow).generation;
        if conn.as_ref().is_none_or(|(_, g)| *g != generation) {
            conn = None;
            match client.get_connection_with_timeout(config.command_timeout) {
                Ok(c) => {
                    let _ = c.set_read_timeout(Some(config.command_timeout));
                    let _ = c.set_write_timeout(Some(config.command_timeout));
                    conn = Some((c, generation));
                    backoff.reset();
                }
                Err(e) => {
                    let wait = backoff.next_wait();
                    log::warn!(
                        "instance {}: cannot publish to Redis ({e}); {} message(s) delivered on this instance only; retrying in {wait:?}",
                        config.instance,
                        outs.len()
                    );
                    for out in &outs {
                        deliver_here(shared, out);
                    }
                    pause(shared, wait);
                    continue;
                }
            }
        }
        let Some((c, _)) = conn.as_mut() else {
            continue;
        };

        // Numbered and recorded in flight under the lock that says
        // whether Redis is up, so a loss of Redis sees all of them.
        let mut flow = lock(&shared.flow);
        if !flow.up {
            drop(flow);
            for out in &outs {
                deliver_here(shared, out);
            }
            continue;
        }
        let mut pipe = redis::pipe();
        for out in &outs {
            let seq = flow.next_seq;
            flow.next_seq += 1;
            let Some(bytes) = out.envelope(shared.origin, seq) else {
                continue;
            };
            let channel = format!("{}{}", config.channel_prefix, out.room);
            pipe.cmd("PUBLISH").arg(channel).arg(&bytes[..]).ignore();
            if !out.returns {
                continue;
            }
            flow.in_flight.push_back(Published {
                seq,
                room: out.room.clone(),
                bytes,
            });
            batch.push(seq);
        }
        // Bounded: the oldest of what never came back (a subscriber that
        // has not noticed a new Redis yet) is delivered here; should it
        // still come back, the subscriber finds it gone and skips it.
        let excess = flow.in_flight.len().saturating_sub(config.publish_queue);
        let overdue: Vec<Published> = flow.in_flight.drain(..excess).collect();
        drop(flow);
        if !overdue.is_empty() {
            log::warn!(
                "instance {}: {} message(s) not back from Redis delivered on this instance only",
                config.instance,
                overdue.len()
            );
            shared.deliver_published(overdue);
        }

        if let Err(e) = pipe.exec(c) {
            log::warn!(
                "instance {}: publishing to Redis failed ({e}); reconnecting",
                config.instance
            );
            conn = None;
            // What is still in flight never reached the channel (or the
            // subscriber would have taken it out): deliver it here.
            let mut flow = lock(&shared.flow);
            let mut lost = Vec::new();
            for seq in &batch {
                if let Some(at) = flow.in_flight.iter().position(|p| p.seq == *seq) {
                    lost.extend(flow.in_flight.remove(at));
                }
            }
            drop(flow);
            shared.deliver_published(lost);
            pause(shared, backoff.next_wait());
        }
        batch.clear();
    }
}

/// Delivers `out` to its room on this instance only.
fn deliver_here(shared: &Shared, out: &Outgoing) {
    if let Some(message) = out.message() {
        shared.deliver(&out.room, out.author, message);
    }
}

/// Sleeps `wait`, or less when the stop flag is set.
pub(crate) fn pause(shared: &Shared, wait: Duration) {
    let end = std::time::Instant::now() + wait;
    while !shared.stop.load(Ordering::Acquire) {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(TICK));
    }
}
