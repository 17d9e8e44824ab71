//! [`Chat`]: a ready [`Handler`] whose rooms are named by the URL path.

use snowsocket_server::{Accept, CloseInfo, ConnectionHandle, Handler, Message, UpgradeRequest};

use crate::rooms::Rooms;

/// The longest room name.
pub const MAX_ROOM_NAME: usize = 64;

/// The room a request path names: `/room/NAME`, NAME of 1 to
/// [`MAX_ROOM_NAME`] ASCII letters, digits, `-`, `_` or `.`.
///
/// ```
/// use snowsocket_pubsub::room_from_path;
///
/// assert_eq!(room_from_path("/room/lobby"), Some("lobby"));
/// assert_eq!(room_from_path("/room/"), None);
/// assert_eq!(room_from_path("/room/a/b"), None);
/// assert_eq!(room_from_path("/"), None);
/// ```
pub fn room_from_path(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/room/")?;
    let ok = !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(name)
}

/// A chat server's handler: a client of `ws://HOST/room/NAME` joins room
/// NAME of [`Rooms`], and what it sends goes to the room's other members
/// on every instance. Other paths are refused with 404.
#[derive(Debug)]
pub struct Chat {
    rooms: Rooms,
}

/// The room of a connection (its context).
#[derive(Debug)]
struct RoomName(String);

impl Chat {
    /// A handler over `rooms`.
    pub const fn new(rooms: Rooms) -> Self {
        Self { rooms }
    }

    /// The rooms it serves.
    pub const fn rooms(&self) -> &Rooms {
        &self.rooms
    }
}

impl Handler for Chat {
    fn on_accept(&self, request: &UpgradeRequest<'_, '_>) -> Accept {
        match room_from_path(request.path()) {
            Some(name) => Accept::upgrade().with_context(RoomName(name.to_owned())),
            None => Accept::reject(
                404,
                "rooms are at /room/NAME (NAME: 1-64 of A-Z a-z 0-9 - _ .)",
            ),
        }
    }

    fn on_connect(&self, conn: &ConnectionHandle) {
        if let Some(RoomName(room)) = conn.context::<RoomName>() {
            self.rooms.join(room, conn);
        }
    }

    fn on_message(&self, conn: &ConnectionHandle, message: Message<'_>) {
        if let Some(RoomName(room)) = conn.context::<RoomName>() {
            self.rooms.publish(room, conn, message);
        }
    }

    fn on_close(&self, conn: &ConnectionHandle, _info: CloseInfo) {
        if let Some(RoomName(room)) = conn.context::<RoomName>() {
            self.rooms.leave(room, conn);
        }
    }
}
