// The Node `ws` peer of snowsocket's interop tests.
//
// tests/tests/interop.rs runs this script (node, with the ws version pinned
// in package.json / package-lock.json installed into node_modules here by
// scripts/interop-setup.sh) as a child process and drives it by lines on
// stdin; it reports by lines on stdout. It speaks the same protocol as
// peer.py (see its docstring for the lines in and out), with these
// differences:
//
// - --no-auto-pong: ws's `autoPong: false`: the peer reads everything but
//   answers no Ping (a peer that is alive but silent to our heartbeat).
// - The server accepts permessage-deflate (ws's server default is off; it is
//   on here, as in websockets, so that an offer from our client would be
//   taken). The client offers it, as ws does by default.
// - Without --subprotocols the server picks no subprotocol (ws's default
//   would pick the first one offered).
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const readline = require('readline');
const { WebSocket, WebSocketServer } = require('ws');

const UNIT = 'añ€😀'; // 10 bytes of UTF-8
const INVALID_UTF8 = Buffer.from('snow \xc3\x28', 'latin1'); // a 2-byte sequence cut short
const BLOCK = Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 31 + 7) & 0xff));

function textPattern(n) {
  const unitLen = Buffer.byteLength(UNIT);
  let tail = '';
  for (const c of UNIT) {
    if (Buffer.byteLength(tail + c) > n % unitLen) break;
    tail += c;
  }
  return UNIT.repeat(Math.floor(n / unitLen)) + tail;
}

function binaryPattern(n) {
  return n === 0 ? Buffer.alloc(0) : Buffer.alloc(n, BLOCK);
}

function patternBytes(kind, n) {
  return kind === 'text' ? Buffer.from(textPattern(n)) : binaryPattern(n);
}

function say(...words) {
  process.stdout.write(words.join(' ') + '\n');
}

function parseArgs(argv) {
  const args = { maxSize: 64 << 20, compression: true, echo: false, autoPong: true };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--ca') args.ca = value();
    else if (a === '--cert') args.cert = value();
    else if (a === '--key') args.key = value();
    else if (a === '--subprotocols') args.subprotocols = value().split(',');
    else if (a === '--no-compression') args.compression = false;
    else if (a === '--echo') args.echo = true;
    else if (a === '--max-size') args.maxSize = Number(value());
    else if (a === '--no-auto-pong') args.autoPong = false;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else rest.push(a);
  }
  [args.role, args.url] = rest;
  if (args.role !== 'client' && args.role !== 'server') throw new Error('client URL | server');
  if (args.role === 'client' && !args.url) throw new Error('client needs a URL');
  return args;
}

let current = null;
// Commands that came before the connection opened (client), run at `open`.
const pending = [];

function session(ws, offered) {
  current = ws;
  say('open', ws.protocol || '-', offered, ws.extensions || '-');
  pending.splice(0).forEach(run);
  ws.on('message', (data, isBinary) => {
    const kind = isBinary ? 'binary' : 'text';
    const ok = data.equals(patternBytes(kind, data.length));
    say('message', kind, data.length, ok ? 'ok' : 'bad');
    if (args.echo) ws.send(data, { binary: isBinary });
  });
  ws.on('pong', (data) => say('pong', data.toString()));
  ws.on('error', (e) => say('error', `ws: ${e.message}`));
  ws.on('close', (code, reason) => say('closed', code, reason.toString()));
}

function sending(ws, op) {
  op((err) => (err ? say('send-failed', err.message) : say('sent')));
}

function command(line) {
  const words = line.split(' ');
  const [op, ...rest] = words;
  const ws = current;
  if (op === '') return;
  if (!ws) return void pending.push(line);
  switch (op) {
    case 'send': {
      const [kind, n, count = '1'] = rest;
      // invalid-text: a Text frame that is not UTF-8 (ws does not check
      // what it sends; the receiver must fail the connection with 1007).
      const data = kind === 'invalid-text' ? INVALID_UTF8 : patternBytes(kind, Number(n));
      return sending(ws, (done) => {
        for (let i = 1; i <= Number(count); i++) {
          ws.send(data, { binary: kind === 'binary' }, i === Number(count) ? done : undefined);
        }
      });
    }
    case 'fragments': {
      const [kind, sizes, ping] = rest;
      const lens = sizes.split(',').map(Number);
      const data = patternBytes(kind, lens.reduce((a, b) => a + b, 0));
      let at = 0;
      return sending(ws, (done) => {
        lens.forEach((len, i) => {
          const last = i + 1 === lens.length;
          const chunk = data.subarray(at, at + len);
          at += len;
          ws.send(chunk, { binary: kind === 'binary', fin: last }, last ? done : undefined);
          if (ping === 'ping' && !last) ws.ping(`f${i}`);
        });
      });
    }
    case 'ping':
      return ws.ping(rest[0]);
    case 'close':
      // `close` alone: a Close with no status code.
      if (rest.length === 0) ws.close();
      else ws.close(Number(rest[0]), rest.slice(1).join(' '));
      return say('sent');
    case 'pause':
      return ws.pause();
    case 'resume':
      return ws.resume();
    default:
      return say('error', `unknown command ${JSON.stringify(line)}`);
  }
}

function run(line) {
  try {
    command(line);
  } catch (e) {
    say('error', `${line}: ${e.message}`);
  }
}

function serve() {
  const server = args.cert
    ? https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) })
    : http.createServer();
  const options = {
    server,
    maxPayload: args.maxSize,
    perMessageDeflate: args.compression,
    autoPong: args.autoPong,
    handleProtocols: (offered) => (args.subprotocols || []).find((p) => offered.has(p)) || false,
  };
  const wss = new WebSocketServer(options);
  wss.on('connection', (ws, request) => {
    const offered = request.headers['sec-websocket-protocol'];
    session(ws, offered ? offered.replace(/ /g, '') : '-');
  });
  wss.on('error', (e) => say('error', `server: ${e.message}`));
  server.listen(0, '127.0.0.1', () => say('listening', server.address().port));
}

function connect() {
  const ws = new WebSocket(args.url, args.subprotocols || [], {
    ca: args.ca ? fs.readFileSync(args.ca) : undefined,
    maxPayload: args.maxSize,
    perMessageDeflate: args.compression,
    autoPong: args.autoPong,
  });
  ws.on('open', () => session(ws, '-'));
  ws.on('unexpected-response', (_req, res) => say('error', `upgrade refused: ${res.statusCode}`));
  ws.on('error', (e) => {
    if (current !== ws) say('error', `connecting: ${e.message}`);
  });
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  say('error', e.message);
  process.exit(2);
}
if (args.role === 'server') serve();
else connect();
// stdin ended: the test is done with this peer.
readline
  .createInterface({ input: process.stdin })
  .on('line', run)
  .on('close', () => process.exit(0));
