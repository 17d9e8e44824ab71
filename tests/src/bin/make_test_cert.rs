//! Writes a fresh self-signed certificate for `localhost` and `127.0.0.1`
//! (rcgen, ECDSA P-256) as `cert.pem` and `key.pem` into the directory
//! given: the browser test's `wss://` certificate (`scripts/browser.sh`).
//!
//! ```text
//! cargo run -p snowsocket-tests --bin make_test_cert -- DIR
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: make_test_cert DIR");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("make_test_cert: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let (cert, key) = snowsocket_tests::tls::identity().write_pem(&dir);
    println!("{} {}", cert.display(), key.display());
    ExitCode::SUCCESS
}
