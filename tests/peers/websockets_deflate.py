"""Python `websockets` as an independent permessage-deflate peer for
tests/tests/deflate.rs (run by scripts/python-peers.sh).

    websockets_deflate.py client URL PARAMS SIZES
        connects to URL offering permessage-deflate with PARAMS, sends one
        text and one binary message of each size (bytes), checks each echo,
        prints the negotiated parameters as JSON, closes with 1000.
    websockets_deflate.py server PARAMS
        serves on 127.0.0.1:0 with permessage-deflate PARAMS, prints
        "listening PORT", echoes every message, prints each connection's
        negotiated parameters as JSON and exits after the first connection.

PARAMS: comma-separated of snct, cnct, smwb=N, cmwb=N (the four RFC 7692
parameters); "-" for none. Every loop is bounded by the caller's timeout.
"""

import json
import os
import sys

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
    ServerPerMessageDeflateFactory,
)
from websockets.sync.client import connect
from websockets.sync.server import serve


def parse(params):
    out = {}
    for p in params.split(","):
        if p in ("", "-"):
            continue
        if p == "snct":
            out["server_no_context_takeover"] = True
        elif p == "cnct":
            out["client_no_context_takeover"] = True
        elif p.startswith("smwb="):
            out["server_max_window_bits"] = int(p[5:])
        elif p.startswith("cmwb="):
            out["client_max_window_bits"] = int(p[5:])
        else:
            raise SystemExit("unknown parameter " + p)
    return out


def payload(size, seed):
    # JSON-like text, deterministic: compressible but not trivially.
    chunk = '{"id":%d,"name":"user%d","tags":["a","b"],"ok":true},'
    parts, n, total = [], seed, 0
    while total < size:
        s = chunk % (n, n % 97)
        parts.append(s)
        total += len(s)
        n += 1
    return "".join(parts)[:size]


def negotiated(ws):
    for ext in ws.protocol.extensions:
        if isinstance(ext, PerMessageDeflate):
            return {
                "server_no_context_takeover": ext.remote_no_context_takeover
                if ws.protocol.side.name == "CLIENT"
                else ext.local_no_context_takeover,
                "client_no_context_takeover": ext.local_no_context_takeover
                if ws.protocol.side.name == "CLIENT"
                else ext.remote_no_context_takeover,
                "server_max_window_bits": ext.remote_max_window_bits
                if ws.protocol.side.name == "CLIENT"
                else ext.local_max_window_bits,
                "client_max_window_bits": ext.local_max_window_bits
                if ws.protocol.side.name == "CLIENT"
                else ext.remote_max_window_bits,
            }
    return None


def client(url, params, sizes):
    kw = parse(params)
    # The client factory takes client_max_window_bits=True for a bare offer.
    factory = ClientPerMessageDeflateFactory(**kw)
    with connect(url, extensions=[factory], max_size=None, open_timeout=10,
                 close_timeout=10, compression=None) as ws:
        print(json.dumps({"negotiated": negotiated(ws)}), flush=True)
        for i, size in enumerate(int(s) for s in sizes.split(",")):
            text = payload(size, i)
            ws.send(text)
            got = ws.recv(timeout=60)
            if got != text:
                raise SystemExit("text echo of %d bytes differs" % size)
            data = text.encode()
            ws.send(data)
            got = ws.recv(timeout=60)
            if got != data:
                raise SystemExit("binary echo of %d bytes differs" % size)
        print(json.dumps({"echoed": sizes}), flush=True)


def server(params):
    kw = parse(params)
    factory = ServerPerMessageDeflateFactory(**kw)

    def handler(ws):
        print(json.dumps({"negotiated": negotiated(ws)}), flush=True)
        for message in ws:
            ws.send(message)
        # The client closed (the close handshake is done): one connection
        # is all a test needs.
        sys.stdout.flush()
        os._exit(0)

    with serve(handler, "127.0.0.1", 0, extensions=[factory], max_size=None,
               compression=None) as srv:
        print("listening %d" % srv.socket.getsockname()[1], flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        raise SystemExit(__doc__)
