//! The state an instance's rooms share between the event loops (joins,
//! leaves, messages from members) and the Redis threads (messages from
//! the channels, the connection's ups and downs).
//!
//! Lock order: `rooms` before `flow`, never the other way.

use core::sync::atomic::AtomicBool;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Mutex, MutexGuard, PoisonError};

use snowsocket_server::{broadcast, CloseCode, ConnectionHandle, Message};

use crate::config::RoomsConfig;
use crate::envelope::Envelope;
use crate::publisher::Outgoing;

/// Everything the [`Rooms`](crate::Rooms) handle and its threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RoomsConfig,
    /// This instance's token in every envelope it publishes.
    pub(crate) origin: u64,
    /// The rooms with members on this instance.
    pub(crate) rooms: Mutex<HashMap<String, Room>>,
    pub(crate) flow: Mutex<Flow>,
    /// A room appeared or went away: the subscriber has channels to change.
    pub(crate) rooms_changed: AtomicBool,
    /// The threads are to end.
    pub(crate) stop: AtomicBool,
    /// The publisher's queue (with Redis; taken when the rooms stop), for
    /// the subscriber to send what a room held until it went live.
    pub(crate) to_redis: Mutex<Option<SyncSender<Outgoing>>>,
}

/// A room's members on this instance.
#[derive(Debug, Default)]
pub(crate) struct Room {
    pub(crate) members: Vec<Member>,
    /// Redis delivers the room's channel to this instance: messages go
    /// through Redis (else they are delivered here only).
    pub(crate) live: bool,
    /// Messages said while Redis was up but before the room went live
    /// here (its subscription takes a moment): published, in order, when
    /// it does, so that they reach the other instances too.
    pub(crate) held: Vec<Outgoing>,
}

impl Room {
    /// Publishes what the room (`name`) held, in order (called under the
    /// rooms' lock, so nothing said later can overtake it). What the
    /// publisher's queue cannot take goes to the room's members here only.
    pub(crate) fn release_held(&mut self, name: &str, shared: &Shared) {
        if self.held.is_empty() {
            return;
        }
        let sender = lock(&shared.to_redis).clone();
        for out in core::mem::take(&mut self.held) {
            let refused = match &sender {
                Some(sender) => match sender.try_send(out) {
                    Ok(()) => continue,
                    Err(TrySendError::Full(out) | TrySendError::Disconnected(out)) => out,
                },
                None => out,
            };
            if let Some(message) = refused.message() {
                fan_out(name, &self.members, refused.author(), message);
            }
        }
    }
}

/// A member, and whether it got its join notice.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) conn: ConnectionHandle,
    pub(crate) noticed: bool,
}

/// The state of the path through Redis.
#[derive(Debug, Default)]
pub(crate) struct Flow {
    /// The subscriber is connected and subscribed to every live room.
    pub(crate) up: bool,
    /// Counts the subscriber's losses of Redis: the publisher reconnects
    /// when it sees a new value (Redis may have restarted under it).
    pub(crate) generation: u64,
    /// This instance's messages published and not seen back on their
    /// channel yet, oldest first: if Redis goes away they are delivered
    /// here, so no member of this instance misses one (or gets it twice).
    pub(crate) in_flight: VecDeque<Published>,
    /// The next message number.
    pub(crate) next_seq: u64,
}

/// A message of this instance, as published.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) seq: u64,
    pub(crate) room: String,
    /// The envelope's bytes.
    pub(crate) bytes: Vec<u8>,
}

/// The Close a member too slow for its room gets (see [`Rooms`]): 1008,
/// as the member broke the rule that it keeps up.
///
/// [`Rooms`]: crate::Rooms
pub const SLOW_MEMBER_CODE: CloseCode = CloseCode::POLICY_VIOLATION;

/// The reason of [`SLOW_MEMBER_CODE`]'s Close.
pub const SLOW_MEMBER_REASON: &str = "too slow: missed a message";

/// Sends `message` to `members` of `room`, but not to the connection
/// `author` (0: no author here); closes those whose outbox could not take
/// it, so that no member misses a message without being told.
fn fan_out(room: &str, members: &[Member], author: u64, message: Message<'_>) {
    let conns = members.iter().map(|m| &m.conn);
    let mut full = broadcast(conns.filter(|c| c.id() != author), message).full;
    if full.is_empty() {
        return;
    }
    full.sort_unstable();
    for m in members {
        if full.binary_search(&m.conn.id()).is_ok() {
            // After what it has not read yet; later messages are refused.
            let _ = m.conn.close(SLOW_MEMBER_CODE, SLOW_MEMBER_REASON);
        }
    }
    log::warn!(
        "room {room}: {} member(s) too slow to take a message (outbox full): closed with {}",
        full.len(),
        SLOW_MEMBER_CODE.0
    );
}

/// Locks `m`; a panic elsewhere never poisons the rooms.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Sends `message` to the members of `room` on this instance, but not
    /// to the connection `author` (0: no author here).
    pub(crate) fn deliver(&self, room: &str, author: u64, message: Message<'_>) {
        let rooms = lock(&self.rooms);
        if let Some(r) = rooms.get(room) {
            fan_out(room, &r.members, author, message);
        }
    }

    /// Delivers published messages here, from their envelopes (after
    /// Redis lost them or never took them).
    pub(crate) fn deliver_published(&self, published: impl IntoIterator<Item = Published>) {
        for p in published {
            if let Ok(e) = Envelope::decode(&p.bytes) {
                self.deliver(&p.room, e.author, e.message);
            }
        }
    }

    /// The join notice for a member of `room`.
    pub(crate) fn notice(&self, room: &str, through_redis: bool) -> String {
        let mut text = format!("* joined room {room} on instance {}", self.config.instance);
        if !through_redis && self.config.redis_url.is_some() {
            text.push_str(" (Redis unavailable: this instance only)");
        }
        text
    }

    /// Sends their notice to the members of `room` who have none yet.
    pub(crate) fn notify(&self, name: &str, room: &mut Room, through_redis: bool) {
        if !self.config.notice {
            return;
        }
        let text = self.notice(name, through_redis);
        for m in room.members.iter_mut().filter(|m| !m.noticed) {
            m.noticed = true;
            let _ = m.conn.send_text(&text);
        }
    }

    /// Redis went away: every room is served here alone, and this
    /// instance's messages in flight are delivered here.
    pub(crate) fn go_down(&self) {
        let mut rooms = lock(&self.rooms);
        for (name, room) in rooms.iter_mut() {
            room.live = false;
            // Those who waited for the room to go live are served here.
            self.notify(name, room, false);
        }
        let mut flow = lock(&self.flow);
        let was_up = flow.up;
        flow.up = false;
        flow.generation += 1;
        let lost: Vec<Published> = flow.in_flight.drain(..).collect();
        drop(flow);
        drop(rooms);
        if was_up {
            log::warn!(
                "instance {}: lost Redis; serving rooms on this instance only",
                self.config.instance
            );
        }
        if !lost.is_empty() {
            log::info!(
                "instance {}: {} message(s) in flight delivered here",
                self.config.instance,
                lost.len()
            );
        }
        self.deliver_published(lost);
    }
}
