//! Plain TCP echo, one thread per connection: read what came, write it
//! back. What a thread-per-connection server can reach at best.

use std::io::{self, Read, Write};
use std::net::TcpStream;

pub(super) fn serve(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}
