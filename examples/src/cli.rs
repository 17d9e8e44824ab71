//! What every example does with its command line and its logs: `--help`
//! prints what the example does and every flag, and exits 0; a wrong
//! argument exits 2; logs go to stderr through `env_logger`, filtered by
//! `RUST_LOG` (default `info`: the library's warnings and errors, TLS
//! failures and handler panics included).

use std::process::ExitCode;

/// The `RUST_LOG` paragraph every example's `--help` ends with.
pub const LOGGING_HELP: &str = "\
environment:
  RUST_LOG   which logs to print on stderr: error, warn, info (default),
             debug, trace, per module too (RUST_LOG=snowsocket_server=debug)";

/// Installs the logger: stderr, `RUST_LOG` or else `info`.
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

/// For an example that takes no arguments: `None` to run it; `Some` with
/// the exit status after `--help` (0, `help` printed on stdout) or a
/// wrong argument (2, said on stderr).
pub fn no_arguments(name: &str, help: &str) -> Option<ExitCode> {
    let first = std::env::args().nth(1)?;
    if first == "-h" || first == "--help" {
        println!("{help}\n\n{LOGGING_HELP}");
        return Some(ExitCode::SUCCESS);
    }
    eprintln!("{name}: unexpected argument {first} (it takes none; --help tells more)");
    Some(ExitCode::from(2))
}
