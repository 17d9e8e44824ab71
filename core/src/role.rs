//! Which end of a connection this is ([`Role`]), and how a connection
//! knows it: at run time, or fixed when compiling ([`Side`]).

use core::fmt;

/// Which end of the connection this is. Clients mask what they send and
/// refuse masked frames; servers require masked frames and never mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that sent the upgrade request.
    Client,
    /// The end that accepted it.
    Server,
}

/// How a [`Connection`](crate::Connection) knows its role: at run time ([`Role`], one type for
/// both ends) or when compiling ([`ServerSide`], [`ClientSide`]: the other
/// end's masking and checks are then not in the program at all, which
/// saves flash on a microcontroller). The blocking driver's
/// [`WebSocket::accept`](crate::WebSocket::accept) and
/// [`WebSocket::connect`](crate::WebSocket::connect) use the compile-time
/// sides.
pub trait Side: Copy + fmt::Debug {
    /// The role.
    fn role(self) -> Role;
}

impl Side for Role {
    fn role(self) -> Role {
        self
    }
}

/// The server's [`Side`], fixed when compiling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServerSide;

impl Side for ServerSide {
    fn role(self) -> Role {
        Role::Server
    }
}

/// The client's [`Side`], fixed when compiling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientSide;

impl Side for ClientSide {
    fn role(self) -> Role {
        Role::Client
    }
}
