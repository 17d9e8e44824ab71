//! tungstenite as its documentation shows it: `accept`, then `read` and
//! `send` (write and flush) per message, default configuration, one thread
//! per connection.

use std::io;
use std::net::TcpStream;

use tungstenite::Message;

pub(super) fn serve(stream: TcpStream) -> io::Result<()> {
    let mut ws = tungstenite::accept(stream).map_err(io::Error::other)?;
    loop {
        match ws.read() {
            Ok(msg @ (Message::Binary(_) | Message::Text(_))) => {
                ws.send(msg).map_err(io::Error::other)?;
            }
            Ok(_) => {}
            // Closed, reset or a protocol error: the connection is over.
            Err(_) => return Ok(()),
        }
    }
}
