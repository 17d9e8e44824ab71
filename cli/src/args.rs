//! The command line: what `snowsocket` is asked to do.

use core::time::Duration;

/// `--help`'s text.
pub(crate) const HELP: &str = "\
snowsocket: a WebSocket client for the command line

usage: snowsocket [OPTIONS] URL

Sends each line of standard input as a text message (without its line
ending) and prints each message received: text as it is, one message per
line; binary as one line of hexadecimal (or as raw bytes with --raw). At
the end of input (Ctrl-D, or the end of a pipe) it sends Close 1000, waits
for the server's answer and exits. Ctrl-C or SIGTERM sends Close 1001 first.

URL is ws://HOST[:PORT][/PATH] or wss://... (TLS).

options:
  --echo                 send every message received back (text as text,
                         binary as binary); standard input is not read
                         (the Autobahn|Testsuite's client role)
  --raw                  write binary messages' bytes as they are instead
                         of as hexadecimal
  --ca FILE              trust the PEM certificate(s) in FILE for wss://
                         (e.g. a self-signed server's certificate)
  --insecure             do not verify the server's certificate (self-signed
                         test servers only: anyone on the path can read and
                         change the connection)
  -H, --header 'NAME: VALUE'
                         add a request header (repeatable)
  --subprotocol NAME     offer a subprotocol (repeatable, in order of
                         preference); the one chosen is printed on stderr
  --origin ORIGIN        send an Origin header
  --ping SECS            heartbeat: ping the server every SECS seconds and
                         fail the connection if no pong comes within 10 s
                         (default 30; 0 turns it off)
  --max-message-size BYTES
                         the largest message accepted (default 16777216)
  --deflate              offer permessage-deflate (RFC 7692); the server
                         decides whether messages are compressed
  -q, --quiet            print nothing on stderr but errors
  -h, --help             print this help and exit
  -V, --version          print the version and exit

exit status:
  0        closed with 1000 (either side) or with no code (1005)
  1        could not connect: address, TCP, TLS, the upgrade refused, a
           bad --ca file
  2        bad command line
  3        ended without a close handshake: protocol error, no pong in
           time, connection lost, TLS error, no answer to our Close
  4        closed with another code (3000-4999: the application's)
  5        standard output could not be written (closed with 1001)
  101-115  closed with code 1001-1015: 100 + (code - 1000), e.g. 1001
           (going away) -> 101, 1008 (policy) -> 108, 1011 -> 111
  130      stopped by SIGINT, SIGTERM or SIGHUP (after closing with 1001)

environment:
  RUST_LOG   log filter for the library's logs on stderr (error, warn,
             info, debug, trace; e.g. RUST_LOG=debug); default warn
";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub(crate) struct Options {
    pub(crate) url: String,
    pub(crate) echo: bool,
    pub(crate) raw: bool,
    pub(crate) ca: Vec<String>,
    pub(crate) insecure: bool,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) subprotocols: Vec<String>,
    pub(crate) origin: Option<String>,
    /// `None`: the default; `Some(None)`: off.
    pub(crate) ping: Option<Option<Duration>>,
    pub(crate) max_message_size: Option<usize>,
    pub(crate) deflate: bool,
    pub(crate) quiet: bool,
}

/// What to do instead of connecting.
#[derive(Debug, PartialEq)]
pub(crate) enum Parsed {
    Run(Box<Options>),
    Help,
    Version,
}

/// Parses the arguments (without the program name); `Err` is the message
/// for a bad command line.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut url = None;
    let mut options = Options {
        url: String::new(),
        echo: false,
        raw: false,
        ca: Vec::new(),
        insecure: false,
        headers: Vec::new(),
        subprotocols: Vec::new(),
        origin: None,
        ping: None,
        max_message_size: None,
        deflate: false,
        quiet: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--echo" => options.echo = true,
            "--raw" => options.raw = true,
            "--deflate" => options.deflate = true,
            "--insecure" => options.insecure = true,
            "-q" | "--quiet" => options.quiet = true,
            "--ca" => options.ca.push(value()?),
            "-H" | "--header" => {
                let header = value()?;
                let (name, value) = header
                    .split_once(':')
                    .filter(|(name, _)| !name.trim().is_empty())
                    .ok_or_else(|| format!("-H wants 'NAME: VALUE', not {header:?}"))?;
                options
                    .headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "--subprotocol" => options.subprotocols.push(value()?),
            "--origin" => options.origin = Some(value()?),
            "--ping" => {
                let v = value()?;
                let secs = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| format!("--ping: not a number of seconds: {v}"))?;
                let interval = Duration::from_secs_f64(secs);
                options.ping = Some((!interval.is_zero()).then_some(interval));
            }
            "--max-message-size" => {
                let v = value()?;
                let bytes = v
                    .parse::<usize>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| format!("--max-message-size: not a size above 0: {v}"))?;
                options.max_message_size = Some(bytes);
            }
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg} (one URL only)")),
        }
    }
    options.url = url.ok_or("no URL given")?;
    if options.insecure && !options.ca.is_empty() {
        return Err("--insecure and --ca do not go together".into());
    }
    Ok(Parsed::Run(Box::new(options)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|a| (*a).to_owned()))? {
            Parsed::Run(options) => Ok(*options),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags() {
        let o = run(&[
            "ws://h/",
            "-H",
            "Authorization: Bearer x:y",
            "--subprotocol",
            "a",
            "--subprotocol",
            "b",
            "--ping",
            "0",
            "--raw",
        ])
        .unwrap();
        assert_eq!(o.url, "ws://h/");
        assert_eq!(
            o.headers,
            [("Authorization".to_owned(), "Bearer x:y".to_owned())]
        );
        assert_eq!(o.subprotocols, ["a", "b"]);
        assert_eq!(o.ping, Some(None));
        assert!(o.raw && !o.echo && !o.insecure);
        let o = run(&["--echo", "--ping", "2.5", "wss://h/", "--ca", "c.pem"]).unwrap();
        assert_eq!(o.ping, Some(Some(Duration::from_millis(2500))));
        assert!(!o.deflate);
        assert!(run(&["--deflate", "ws://h/"]).unwrap().deflate);
        assert_eq!((o.echo, o.ca.as_slice()), (true, &["c.pem".to_owned()][..]));
        assert_eq!(parse(["-h".to_owned()]), Ok(Parsed::Help));
        assert_eq!(parse(["--version".to_owned()]), Ok(Parsed::Version));
    }

    #[test]
    fn refusals() {
        for bad in [
            &[][..],
            &["ws://a/", "ws://b/"],
            &["ws://a/", "--bogus"],
            &["ws://a/", "-H", "no colon"],
            &["ws://a/", "-H", ": empty name"],
            &["ws://a/", "--ping", "-1"],
            &["ws://a/", "--ping", "soon"],
            &["ws://a/", "--max-message-size", "0"],
            &["ws://a/", "--ca"],
            &["wss://a/", "--ca", "x.pem", "--insecure"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }
}
