"""The Python `websockets` peer of snowsocket's interop tests.

tests/tests/interop.rs runs this script (with the interpreter of the virtual
environment target/venv, where scripts/interop-setup.sh installs the version
pinned in requirements.txt) as a child process, and drives it by lines on
stdin; it reports what happens by lines on stdout. peer.js is the same peer
over Node's `ws`: both speak the protocol below.

    python peer.py client URL [options]   connect to URL
    python peer.py server [options]       serve on 127.0.0.1, a free port

Options:
    --ca PEM             trust this certificate (wss:// client)
    --cert PEM --key PEM serve wss:// with this certificate and key
    --subprotocols A,B   subprotocols to offer (client) or accept, in this
                         order of preference (server)
    --no-compression     do not offer or accept permessage-deflate (it is on
                         by default, as in the library)
    --echo               (server) send every message received back
    --max-size N         largest message accepted (default 64 MiB; the
                         library's own default, 1 MiB, is below the tests')
    --no-auto-pong       not supported by websockets (peer.js only): refused

Lines out (tokens separated by one space; '-' stands for nothing):
    listening PORT                        (server) ready for connections
    open SUBPROTOCOL OFFERED EXTENSIONS   a connection is open: the chosen
                                          subprotocol, the subprotocols the
                                          client offered (server; comma-
                                          separated), the negotiated
                                          Sec-WebSocket-Extensions (rest of
                                          the line)
    message KIND LEN ok|bad               a message (text/binary, LEN bytes)
                                          arrived: whether it is the test
                                          pattern of its length
    pong PAYLOAD                          the pong to our ping PAYLOAD
    sent                                  a send, fragments or close command
                                          finished
    send-failed TEXT                      it could not
    closed CODE REASON                    the connection is closed: the code
                                          and reason of the Close received
                                          (1006 when none was received)
    error TEXT                            anything unexpected

Lines in (commands apply to the newest connection):
    send KIND LEN [COUNT]          send the pattern of LEN bytes (COUNT
                                   times, back to back); KIND invalid-text:
                                   a Text frame that is not UTF-8 (LEN is
                                   ignored)
    fragments KIND SIZES [ping]    send the pattern in fragments of the
                                   comma-separated SIZES bytes (text split
                                   as bytes, so possibly inside a
                                   character), with a Ping "fN" after
                                   fragment N when "ping" is given
    ping PAYLOAD                   send a Ping
    close [CODE REASON]            start the close handshake (without a
                                   code: peer.js sends a Close with no
                                   status code, websockets sends 1000)
    pause / resume                 stop / restart reading the socket

The pattern: binary byte i is (i * 31 + 7) mod 256; text is "añ€😀"
repeated, cut after the last whole character that fits in LEN bytes (as
payload() and text() in tests/src/server.rs).
"""

import argparse
import asyncio
import os
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

UNIT = "añ€😀"  # 10 bytes of UTF-8
BLOCK = bytes((i * 31 + 7) & 0xFF for i in range(256))
INVALID_UTF8 = b"snow \xc3\x28"  # a 2-byte sequence cut short


def text_pattern(n):
    full, rest = divmod(n, len(UNIT.encode()))
    tail = ""
    for c in UNIT:
        if len((tail + c).encode()) > rest:
            break
        tail += c
    return UNIT * full + tail


def binary_pattern(n):
    return (BLOCK * (n // len(BLOCK) + 1))[:n]


def pattern_bytes(kind, n):
    return text_pattern(n).encode() if kind == "text" else binary_pattern(n)


def say(*words):
    print(" ".join(str(w) for w in words), flush=True)


def describe(message):
    if isinstance(message, str):
        data = message.encode()
        return "text", len(data), data == text_pattern(len(data)).encode()
    return "binary", len(message), message == binary_pattern(len(message))


class Peer:
    def __init__(self, args):
        self.args = args
        self.current = None
        self.tasks = set()

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def session(self, ws, offered):
        """Reports the opening, every message, and the close of `ws`."""
        self.current = ws
        headers = ws.response.headers
        extensions = headers.get("Sec-WebSocket-Extensions") or "-"
        say("open", ws.subprotocol or "-", offered, extensions)
        try:
            async for message in ws:
                kind, length, ok = describe(message)
                say("message", kind, length, "ok" if ok else "bad")
                if self.args.echo:
                    await ws.send(message)
        except ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001 - reported to the test
            say("error", f"receiving: {e!r}")
        await ws.wait_closed()
        say("closed", ws.close_code, ws.close_reason or "")

    async def command(self, line):
        words = line.split(" ")
        op, rest = words[0], words[1:]
        ws = self.current
        if op == "":
            return
        if ws is None:
            say("error", f"no connection for {line!r}")
            return
        if op == "send":
            kind, n = rest[0], int(rest[1])
            count = int(rest[2]) if len(rest) > 2 else 1
            if kind == "invalid-text":
                # A Text frame that is not UTF-8 (the receiver must fail
                # the connection with 1007).
                message = INVALID_UTF8
            else:
                message = text_pattern(n) if kind == "text" else binary_pattern(n)
            await self.sending(self.send_many(ws, message, count, kind != "binary"))
        elif op == "fragments":
            await self.sending(ws.send(self.fragments(ws, rest), text=rest[0] == "text"))
        elif op == "ping":
            await self.ping(ws, rest[0])
        elif op == "close" and rest:
            await self.sending(ws.close(int(rest[0]), " ".join(rest[1:])))
        elif op == "close":
            # websockets cannot send a Close without a code: 1000 it is.
            await self.sending(ws.close())
        elif op == "pause":
            ws.transport.pause_reading()
        elif op == "resume":
            ws.transport.resume_reading()
        else:
            say("error", f"unknown command {line!r}")

    async def send_many(self, ws, message, count, text):
        for _ in range(count):
            await ws.send(message, text=text)

    async def fragments(self, ws, rest):
        kind, sizes = rest[0], [int(s) for s in rest[1].split(",")]
        pings = len(rest) > 2 and rest[2] == "ping"
        data = pattern_bytes(kind, sum(sizes))
        at = 0
        for i, size in enumerate(sizes):
            yield data[at : at + size]
            at += size
            if pings and i + 1 < len(sizes):
                await self.ping(ws, f"f{i}")

    async def ping(self, ws, payload):
        waiter = await ws.ping(payload)

        async def report():
            try:
                await waiter
                say("pong", payload)
            except ConnectionClosed:
                pass

        self.spawn(report())

    async def sending(self, coro):
        try:
            await coro
            say("sent")
        except ConnectionClosed as e:
            say("send-failed", f"{e}")


def tls_client(args):
    if not args.ca:
        return None
    return ssl.create_default_context(cafile=args.ca)


def tls_server(args):
    if not args.cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    return context


async def commands(peer):
    """Runs the commands of stdin, one at a time, until it ends."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        await peer.command(line.decode().rstrip("\n"))


async def main(args):
    peer = Peer(args)
    subprotocols = args.subprotocols.split(",") if args.subprotocols else None
    compression = None if args.no_compression else "deflate"
    if args.role == "client":
        async with connect(
            args.url,
            ssl=tls_client(args),
            subprotocols=subprotocols,
            compression=compression,
            max_size=args.max_size,
        ) as ws:
            peer.spawn(peer.session(ws, "-"))
            await commands(peer)
    else:

        async def handler(ws):
            offered = ws.request.headers.get("Sec-WebSocket-Protocol") or "-"
            await peer.session(ws, offered.replace(" ", ""))

        async with serve(
            handler,
            "127.0.0.1",
            0,
            ssl=tls_server(args),
            subprotocols=subprotocols,
            compression=compression,
            max_size=args.max_size,
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            say("listening", port)
            await commands(peer)


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=["client", "server"])
    parser.add_argument("url", nargs="?")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--subprotocols")
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--echo", action="store_true")
    parser.add_argument("--max-size", type=int, default=64 << 20)
    parser.add_argument("--no-auto-pong", action="store_true")
    args = parser.parse_args()
    if args.no_auto_pong:
        parser.error("websockets always answers pings (--no-auto-pong is peer.js's)")
    if args.role == "client" and not args.url:
        parser.error("client needs a URL")
    return args


if __name__ == "__main__":
    try:
        asyncio.run(main(arguments()))
    except Exception as e:  # noqa: BLE001 - reported to the test
        say("error", f"{e!r}")
    # stdin ended: the test is done with this peer.
    os._exit(0)
