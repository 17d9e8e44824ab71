//! What the permessage-deflate tests of both drivers share: the messages
//! they send and the extension answers a client must refuse.

use snowsocket_core::deflate::PerMessageDeflate;

/// JSON-like text of `len` bytes: compressible, not trivially.
pub fn json(len: usize, seed: usize) -> String {
    let mut s = String::with_capacity(len + 64);
    let mut i = seed;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user{}\",\"tags\":[\"a\",\"b\"],\"ok\":true}},",
            i % 97
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

/// Extension answers a client must refuse (RFC 7692 §5, §7.1), each with
/// what the client offered (`None`: no offer at all).
pub fn bad_answers() -> Vec<(&'static str, Option<PerMessageDeflate>)> {
    let offered = PerMessageDeflate::default();
    vec![
        // Nothing offered: any extension.
        ("permessage-deflate", None),
        // Another extension, two elements, an unknown parameter.
        ("x-foo", Some(offered)),
        ("permessage-deflate, permessage-deflate", Some(offered)),
        ("permessage-deflate; foo=1", Some(offered)),
        // A window limit on us that we did not allow, bad values.
        (
            "permessage-deflate; client_max_window_bits=10",
            Some(offered),
        ),
        (
            "permessage-deflate; server_max_window_bits=7",
            Some(offered),
        ),
        ("permessage-deflate; server_max_window_bits", Some(offered)),
        (
            "permessage-deflate; server_no_context_takeover=yes",
            Some(offered),
        ),
        // We asked for server_no_context_takeover: it must be granted.
        (
            "permessage-deflate",
            Some(offered.server_no_context_takeover(true)),
        ),
        // We asked for a window of at most 10 bits: 12 is more.
        (
            "permessage-deflate; server_max_window_bits=12",
            Some(offered.server_max_window_bits(Some(10))),
        ),
    ]
}

/// The venv's Python with `websockets` (`SNOWSOCKET_PYTHON`, set by
/// scripts/python-peers.sh), and the permessage-deflate peer script.
pub fn python() -> (String, String) {
    let python = std::env::var("SNOWSOCKET_PYTHON")
        .expect("SNOWSOCKET_PYTHON: the venv's python with websockets (scripts/python-peers.sh)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/websockets_deflate.py");
    (python, script.to_owned())
}

/// The message sizes the Python peer tests echo both ways.
pub const PY_SIZES: &str = "0,1,125,126,4096,65535,65536,1048576,16777216";

/// Kills the child when dropped (a failed test leaves no process).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
