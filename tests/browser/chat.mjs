// The chat example in a real browser: two headless Chromium pages open the
// page the example serves, and a message typed in one appears in the other,
// over ws:// and then over wss:// (https://localhost with the test
// certificate, trusted through Chromium's SPKI allowlist flag).
//
//   node chat.mjs CHAT_BINARY CERT_PEM KEY_PEM SCREENSHOT_PNG
//
// Run by scripts/browser.sh, which installs what it needs. Everything is
// bounded: each wait has a timeout and the whole run is killed at DEADLINE_MS.

import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const DEADLINE_MS = 120_000;
const WAIT_MS = 15_000;

const [chatBinary, certPem, keyPem, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error('usage: node chat.mjs CHAT_BINARY CERT_PEM KEY_PEM SCREENSHOT_PNG');
  process.exit(2);
}

const children = new Set();
let context;
let userDataDir;

function cleanUp() {
  for (const child of children) child.kill('SIGKILL');
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
}

const deadline = setTimeout(() => {
  console.error(`browser test: not done within ${DEADLINE_MS / 1000} s`);
  cleanUp();
  process.exit(1);
}, DEADLINE_MS);

/// Starts the chat example on a free port; resolves with its port once it
/// prints the address it listens on.
function startChat(tls) {
  const args = ['--addr', '127.0.0.1:0'];
  if (tls) args.push('--tls-cert', certPem, '--tls-key', keyPem);
  const child = spawn(chatBinary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('chat did not print its address')), WAIT_MS);
    child.on('error', reject);
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const match = /listening on https?:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
      if (!match) return reject(new Error(`unexpected first line: ${line}`));
      resolve({ child, port: Number(match[1]), exited });
    });
  });
}

/// Stops the chat with SIGINT (its graceful shutdown) and checks it exits 0.
async function stopChat({ child, exited }) {
  child.kill('SIGINT');
  const { code, signal } = await Promise.race([
    exited,
    new Promise((resolve) => setTimeout(() => resolve({ code: null, signal: 'timeout' }), WAIT_MS)),
  ]);
  children.delete(child);
  if (code !== 0) throw new Error(`chat ended with code ${code}, signal ${signal}`);
}

/// The base64 SHA-256 of the certificate's public key, for
/// --ignore-certificate-errors-spki-list.
function spkiHash(pem) {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

async function expectLine(page, text) {
  await page.locator('#log p', { hasText: text }).first().waitFor({ timeout: WAIT_MS });
}

async function say(page, text) {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
}

/// Alice and Bob open the page; Bob speaks, Alice hears; Alice answers,
/// Bob hears. The sender's own page shows "you: ...", not the relay.
async function conversation(base, scheme) {
  const alice = await context.newPage();
  const bob = await context.newPage();
  try {
    await alice.goto(`${base}/?name=alice`, { timeout: WAIT_MS });
    await alice.locator('#status', { hasText: 'connected as alice' }).waitFor({ timeout: WAIT_MS });
    const statusText = await alice.textContent('#status');
    if (!statusText.includes(`${scheme}://`)) throw new Error(`not over ${scheme}: ${statusText}`);
    await bob.goto(`${base}/?name=bob`, { timeout: WAIT_MS });
    await bob.locator('#status', { hasText: 'connected as bob' }).waitFor({ timeout: WAIT_MS });
    await expectLine(alice, '* bob joined');
    const hello = `hello from bob over ${scheme}://`;
    await say(bob, hello);
    await expectLine(alice, `bob: ${hello}`);
    await expectLine(bob, `you: ${hello}`);
    const answer = `hi bob, alice here (${scheme})`;
    await say(alice, answer);
    await expectLine(bob, `alice: ${answer}`);
    // The sender is excluded from the relay: Bob's page has its own line once.
    const relayed = await bob.locator('#log p', { hasText: `bob: ${hello}` }).count();
    if (relayed !== 0) throw new Error('the sender got its own message back');
    console.log(`${scheme}://: bob -> alice and alice -> bob delivered`);
    return { alice, bob };
  } catch (e) {
    await alice.close();
    await bob.close();
    throw e;
  }
}

async function main() {
  userDataDir = mkdtempSync(join(tmpdir(), 'snowsocket-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 560, height: 420 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Trust the test certificate's key only (not every certificate).
      `--ignore-certificate-errors-spki-list=${spkiHash(readFileSync(certPem, 'utf8'))}`,
    ],
    timeout: WAIT_MS,
  });
  console.log(`chromium ${context.browser()?.version() ?? ''} started`);

  const plain = await startChat(false);
  const ws = await conversation(`http://127.0.0.1:${plain.port}`, 'ws');
  await ws.alice.close();
  await ws.bob.close();
  await stopChat(plain);

  const secure = await startChat(true);
  const wss = await conversation(`https://localhost:${secure.port}`, 'wss');
  await wss.alice.screenshot({ path: screenshot });
  console.log(`screenshot: ${screenshot}`);
  await wss.alice.close();
  await wss.bob.close();
  await stopChat(secure);
  await context.close();
}

main().then(
  () => {
    clearTimeout(deadline);
    cleanUp();
    console.log('browser test: passed');
  },
  async (e) => {
    console.error(`browser test: FAILED: ${e.stack || e}`);
    if (context) await context.close().catch(() => {});
    clearTimeout(deadline);
    cleanUp();
    process.exit(1);
  },
);
