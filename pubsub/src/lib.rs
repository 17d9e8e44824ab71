//! snowsocket-pubsub: one chat (or dashboard, or lobby) served by many
//! snowsocket-server instances, the messages of each room fanned out
//! through Redis pub/sub.
//!
//! ```text
//!             clients ── nginx (least_conn, Upgrade) ──┬── instance a ─┐
//!                                                      ├── instance b ─┼── Redis: one channel per room
//!                                                      └── instance c ─┘
//! instance k:  event loops ── on_message ─► publish queue ─► publishing thread ─► PUBLISH
//!              subscribing thread ◄─ SUBSCRIBE (the rooms with members here)
//!                      └─► broadcast to the room's members here (never blocks)
//! ```
//!
//! [`Rooms`] is the library: join, leave, publish, called from a
//! [`Handler`](snowsocket_server::Handler)'s callbacks; [`Chat`] is a
//! ready handler with rooms named by the path (`/room/NAME`). The
//! `chat-cluster` binary serves it (`--redis URL --instance NAME`), and
//! `scripts/cluster.sh` runs several behind nginx.
//!
//! ```no_run
//! use snowsocket_pubsub::{Chat, Rooms, RoomsConfig};
//! use snowsocket_server::{Server, ServerConfig};
//!
//! let rooms = Rooms::start(RoomsConfig::new("a").redis("redis://127.0.0.1:6379/"))?;
//! let server = Server::bind("127.0.0.1:9003", ServerConfig::default())?;
//! let handle = server.spawn(Chat::new(rooms))?;
//! // ... later
//! handle.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod envelope;
mod handler;
pub mod harness;
mod publisher;
mod rooms;
mod state;
mod subscriber;

pub use config::RoomsConfig;
pub use handler::{room_from_path, Chat, MAX_ROOM_NAME};
pub use rooms::{Rooms, StartError};
pub use state::{SLOW_MEMBER_CODE, SLOW_MEMBER_REASON};
