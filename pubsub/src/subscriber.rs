//! The subscribing thread: keeps this instance subscribed to the channels
//! of its rooms, hands what arrives to the members here, and notices when
//! Redis goes away and comes back.

use core::sync::atomic::Ordering;
use core::time::Duration;
use std::collections::HashSet;
use std::time::Instant;

use crate::config::Backoff;
use crate::envelope::Envelope;
use crate::publisher::pause;
use crate::state::{lock, Shared};

/// How long a read waits before the thread looks at its rooms and the
/// stop flag again: the longest a new room waits for its subscription.
const POLL: Duration = Duration::from_millis(20);
/// Silence after which the thread pings Redis, to find a dead peer.
const IDLE: Duration = Duration::from_secs(1);

/// The thread's body: sessions with Redis, waits between them, until the
/// stop flag is set.
pub(crate) fn run(shared: &Shared, client: &redis::Client) {
    let config = &shared.config;
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max);
    while !shared.stop.load(Ordering::Acquire) {
        let result = session(shared, client, &mut backoff);
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        shared.go_down();
        if let Err(e) = result {
            let wait = backoff.next_wait();
            log::warn!(
                "instance {}: Redis unavailable ({e}); rooms are served on this instance only; reconnecting in {wait:?}",
                config.instance
            );
            pause(shared, wait);
        }
    }
}

/// One connection to Redis, from connect to failure (or stop).
fn session(
    shared: &Shared,
    client: &redis::Client,
    backoff: &mut Backoff,
) -> redis::RedisResult<()> {
    let config = &shared.config;
    let mut conn = client.get_connection_with_timeout(config.command_timeout)?;
    conn.set_write_timeout(Some(config.command_timeout))?;
    let mut ps = conn.as_pubsub();
    let mut subscribed = HashSet::new();
    ps.set_read_timeout(Some(config.command_timeout))?;
    shared.rooms_changed.store(false, Ordering::Release);
    sync(shared, &mut ps, &mut subscribed)?;
    {
        let rooms = lock(&shared.rooms);
        lock(&shared.flow).up = true;
        drop(rooms);
    }
    backoff.reset();
    log::info!(
        "instance {}: Redis connected, {} room(s) subscribed",
        config.instance,
        subscribed.len()
    );

    let mut short = false;
    let mut last_heard = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        if shared.rooms_changed.swap(false, Ordering::AcqRel) {
            ps.set_read_timeout(Some(config.command_timeout))?;
            short = false;
            sync(shared, &mut ps, &mut subscribed)?;
        }
        if last_heard.elapsed() > IDLE {
            ps.set_read_timeout(Some(config.command_timeout))?;
            short = false;
            let _: redis::Value = ps.ping()?;
            last_heard = Instant::now();
        }
        if !short {
            ps.set_read_timeout(Some(POLL))?;
            short = true;
        }
        match ps.get_message() {
            Ok(msg) => {
                last_heard = Instant::now();
                let channel = msg.get_channel_name();
                if let Some(room) = channel.strip_prefix(config.channel_prefix.as_str()) {
                    hand_out(shared, room, msg.get_payload_bytes());
                }
            }
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Subscribes to the rooms that have members here and unsubscribes from
/// those that have none; then the subscribed rooms are live, and their
/// members who waited get their notice.
fn sync(
    shared: &Shared,
    ps: &mut redis::PubSub<'_>,
    subscribed: &mut HashSet<String>,
) -> redis::RedisResult<()> {
    let prefix = &shared.config.channel_prefix;
    let wanted: HashSet<String> = lock(&shared.rooms).keys().cloned().collect();
    let gone: Vec<String> = subscribed.difference(&wanted).cloned().collect();
    let new: Vec<String> = wanted.difference(subscribed).cloned().collect();
    if !gone.is_empty() {
        let channels: Vec<String> = gone.iter().map(|r| format!("{prefix}{r}")).collect();
        ps.unsubscribe(channels)?;
        for room in &gone {
            subscribed.remove(room);
        }
        // Our messages to rooms nobody here is in any more come back to
        // nobody: forget them.
        lock(&shared.flow)
            .in_flight
            .retain(|p| !gone.contains(&p.room));
    }
    if !new.is_empty() {
        let channels: Vec<String> = new.iter().map(|r| format!("{prefix}{r}")).collect();
        ps.subscribe(channels)?;
        subscribed.extend(new);
    }
    let mut rooms = lock(&shared.rooms);
    for (name, room) in rooms.iter_mut() {
        if !room.live && subscribed.contains(name) {
            room.live = true;
            room.release_held(name, shared);
            shared.notify(name, room, true);
        }
    }
    Ok(())
}

/// Delivers what arrived on `room`'s channel to its members here.
fn hand_out(shared: &Shared, room: &str, bytes: &[u8]) {
    let envelope = match Envelope::decode(bytes) {
        Ok(e) => e,
        Err(e) => {
            log::warn!("room {room}: ignored a message on its channel: {e}");
            return;
        }
    };
    if envelope.origin == shared.origin {
        // Ours: deliver it unless it was delivered here already (when
        // publishing seemed to fail).
        let mut flow = lock(&shared.flow);
        let Some(at) = flow.in_flight.iter().position(|p| p.seq == envelope.seq) else {
            return;
        };
        flow.in_flight.remove(at);
        drop(flow);
        shared.deliver(room, envelope.author, envelope.message);
    } else {
        shared.deliver(room, 0, envelope.message);
    }
}
