//! [`Rooms`]: this instance's rooms, fanned out through Redis.

use core::hash::BuildHasher;
use core::sync::atomic::Ordering;
use std::collections::HashMap;
use std::hash::RandomState;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use snowsocket_server::{ConnectionHandle, Message};

use crate::config::RoomsConfig;
use crate::publisher::{self, Outgoing};
use crate::state::{lock, Flow, Member, Room, Shared};
use crate::subscriber;

/// The rooms of one instance of a cluster: members join with their
/// connection, and what a member sends reaches every other member of its
/// room, on this instance and on every instance that shares the Redis.
///
/// - **Exactly once, in Redis's order, never to the author.** With Redis,
///   a message goes to Redis first, also for members of this instance:
///   every instance delivers a room's messages in the order Redis put
///   them on the room's channel, so all members see the same order.
/// - **Nothing blocks the event loops.** [`Rooms::publish`] queues the
///   message (bounded: [`RoomsConfig::publish_queue`]) for a publishing
///   thread; a subscribing thread reads the channels and sends into the
///   members' connections (sends never block). Two threads per instance,
///   whatever the number of rooms and members.
/// - **Redis may go away.** Then both threads reconnect with doubling
///   waits ([`RoomsConfig::backoff_min`] to [`RoomsConfig::backoff_max`]);
///   meanwhile each room is served on each instance alone (members of
///   other instances miss what is said), and the log says so (`warn`),
///   and says when Redis is back (`info`: `Redis connected`). Messages of
///   this instance that Redis took and had not delivered back when it
///   went away are delivered here, so the members of this instance miss
///   none; those of other instances may.
/// - **A member too slow for its room is closed.** A message goes into
///   each member's outbox (bounded by
///   [`ServerConfig::max_buffered_bytes`](snowsocket_server::ServerConfig::max_buffered_bytes),
///   and by the server's
///   [`output_budget`](snowsocket_server::ServerConfig::output_budget)
///   for a member with output waiting when all outboxes together hold
///   that much); a member whose outbox cannot take it would miss it
///   without knowing, so it is closed instead: it reads what it had not
///   read yet, then a Close
///   [`SLOW_MEMBER_CODE`](crate::SLOW_MEMBER_CODE) (1008,
///   [`SLOW_MEMBER_REASON`](crate::SLOW_MEMBER_REASON)), and may come
///   back. What it received is every message of the room up to the
///   Close, in order, without a gap. The log says so (`warn`).
/// - **The join notice.** Once a member's room is live (subscribed in
///   Redis, or served here alone while Redis is away) the member gets a
///   text message `* joined room NAME on instance NAME` (turn it off with
///   [`RoomsConfig::notice`]): from then on it misses nothing sent to the
///   room through Redis.
///
/// The rooms of an instance are the rooms its members are in: the
/// subscriber subscribes to a room's channel when its first member here
/// joins and unsubscribes when its last one leaves.
#[derive(Debug)]
pub struct Rooms {
    shared: Arc<Shared>,
    outgoing: Option<SyncSender<Outgoing>>,
    threads: Vec<JoinHandle<()>>,
}

impl Rooms {
    /// Starts the instance's rooms: with [`RoomsConfig::redis_url`], its
    /// publishing and subscribing threads (they connect by themselves,
    /// and keep trying while Redis is away); without, every room is
    /// served here alone.
    ///
    /// Fails on a Redis URL that does not parse, or when a thread cannot
    /// be started.
    pub fn start(config: RoomsConfig) -> Result<Self, StartError> {
        let client = match &config.redis_url {
            Some(url) => Some(redis::Client::open(url.as_str()).map_err(StartError::Url)?),
            None => None,
        };
        let capacity = config.publish_queue.max(1);
        let shared = Arc::new(Shared {
            config,
            origin: RandomState::new().hash_one(std::process::id()),
            rooms: Mutex::new(HashMap::new()),
            flow: Mutex::new(Flow::default()),
            rooms_changed: false.into(),
            stop: false.into(),
            to_redis: Mutex::new(None),
        });
        let mut rooms = Self {
            shared: Arc::clone(&shared),
            outgoing: None,
            threads: Vec::new(),
        };
        if let Some(client) = client {
            let (tx, rx) = mpsc::sync_channel(capacity);
            *lock(&shared.to_redis) = Some(tx.clone());
            rooms.outgoing = Some(tx);
            let name = |role: &str| format!("redis-{role}");
            let (s, c) = (Arc::clone(&shared), client.clone());
            rooms.threads.push(
                std::thread::Builder::new()
                    .name(name("sub"))
                    .spawn(move || subscriber::run(&s, &c))
                    .map_err(StartError::Thread)?,
            );
            rooms.threads.push(
                std::thread::Builder::new()
                    .name(name("pub"))
                    .spawn(move || publisher::run(&shared, &client, &rx))
                    .map_err(StartError::Thread)?,
            );
        }
        Ok(rooms)
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.shared.config.instance
    }

    /// Whether messages go through Redis now (connected and subscribed).
    pub fn is_connected(&self) -> bool {
        lock(&self.shared.flow).up
    }

    /// `conn` joins `room` (call it from `on_connect`). It gets the join
    /// notice at once when the room is live, else once it is.
    pub fn join(&self, room: &str, conn: &ConnectionHandle) {
        let mut rooms = lock(&self.shared.rooms);
        // Read under the rooms' lock: the subscriber changes both under it.
        let up = self.outgoing.is_some() && lock(&self.shared.flow).up;
        let entry = rooms.entry(room.to_owned()).or_insert_with(|| {
            self.shared.rooms_changed.store(true, Ordering::Release);
            Room::default()
        });
        entry.members.push(Member {
            conn: conn.clone(),
            noticed: false,
        });
        // Without Redis, or while it is away, the room is served here.
        if entry.live || !up {
            let live = entry.live;
            self.shared.notify(room, entry, live);
        }
    }

    /// `conn` leaves `room` (call it from `on_close`).
    pub fn leave(&self, room: &str, conn: &ConnectionHandle) {
        let mut rooms = lock(&self.shared.rooms);
        if let Some(r) = rooms.get_mut(room) {
            r.members.retain(|m| m.conn.id() != conn.id());
            if r.members.is_empty() {
                // What it held still goes to the other instances.
                for out in &mut r.held {
                    out.returns = false;
                }
                r.release_held(room, &self.shared);
                rooms.remove(room);
                self.shared.rooms_changed.store(true, Ordering::Release);
            }
        }
    }

    /// `author` said `message` in `room` (call it from `on_message`): it
    /// goes to every other member, through Redis when it is up. A room
    /// that is not live here yet (its subscription takes a moment after
    /// its first member here joined) holds the message and publishes it
    /// when it goes live, so a member who speaks at once is heard on every
    /// instance too. Without Redis, or while it is away, the message
    /// reaches the room's members on this instance. Never blocks.
    pub fn publish(&self, room: &str, author: &ConnectionHandle, message: Message<'_>) {
        let live = {
            let mut rooms = lock(&self.shared.rooms);
            let up = self.outgoing.is_some() && lock(&self.shared.flow).up;
            match rooms.get_mut(room) {
                Some(r) if up && !r.live && r.held.len() < self.shared.config.publish_queue => {
                    r.held.push(Outgoing::new(room, author.id(), message));
                    return;
                }
                Some(r) => r.live,
                None => false,
            }
        };
        let Some(outgoing) = self.outgoing.as_ref().filter(|_| live) else {
            self.shared.deliver(room, author.id(), message);
            return;
        };
        let out = Outgoing::new(room, author.id(), message);
        match outgoing.try_send(out) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                log::warn!(
                    "instance {}: {} messages wait for Redis; this one reaches room {room} on this instance only",
                    self.shared.config.instance,
                    self.shared.config.publish_queue
                );
                self.shared.deliver(room, author.id(), message);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.deliver(room, author.id(), message);
            }
        }
    }
}

impl Drop for Rooms {
    /// Stops the Redis threads and waits for them.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.outgoing = None;
        *lock(&self.shared.to_redis) = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Why [`Rooms::start`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The Redis URL does not parse.
    Url(redis::RedisError),
    /// A thread could not be started.
    Thread(std::io::Error),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Url(e) => write!(f, "bad Redis URL: {e}"),
            Self::Thread(e) => write!(f, "cannot start a Redis thread: {e}"),
        }
    }
}

impl core::error::Error for StartError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Url(e) => Some(e),
            Self::Thread(e) => Some(e),
        }
    }
}
