// The browser tests' harness: starts the real binary on a free loopback port
// with a temporary data directory, drives Debian's chromium with
// playwright-core (from src/web/node_modules), and waits on conditions with
// generous deadlines, never on guessed sleeps.
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { chmodSync, mkdtempSync, mkdirSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(join(ROOT, 'src/web/package.json'));
const { chromium } = require('playwright-core');

export const DEADLINE_MS = 30000;

export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

export async function waitFor(what, fn, timeoutMs = DEADLINE_MS) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A self-signed certificate for 127.0.0.1 and localhost made by certtool
// (gnutls-bin, as tests/e2e/tls_certs.py does): {cert, key} paths in `dir`.
export function makeCertificate(dir) {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.pem');
  const tmpl = join(dir, 'tls.tmpl');
  writeFileSync(tmpl, 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\n' +
    'tls_www_server\nsigning_key\nencryption_key\nexpiration_days = 3\n');
  execFileSync('certtool', ['--generate-privkey', '--key-type', 'ecdsa', '--outfile', key], { stdio: 'ignore' });
  chmodSync(key, 0o600);
  execFileSync('certtool', ['--generate-self-signed', '--load-privkey', key, '--template', tmpl, '--outfile', cert],
    { stdio: 'ignore' });
  return { cert, key };
}

// One parley process. `args`: extra flags of `parley serve` (rate limits are
// off unless the test passes its own). `tls: true`: HTTPS with a
// self-signed certificate (server.url is https://; newPage's contexts ignore
// the certificate's errors, and so does this process's fetch: it talks to
// loopback only).
export async function startServer({ args = [], env = {}, tls = process.env.PARLEY_WEB_TLS === '1' } = {}) {
  const bin = process.env.PARLEY_BIN ? resolve(ROOT, process.env.PARLEY_BIN) : join(ROOT, 'bin/parley');
  const dir = mkdtempSync(join(tmpdir(), 'parley-web-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const log = [];
  const tlsArgs = [];
  if (tls) {
    const pair = makeCertificate(dir);
    tlsArgs.push('--tls-cert', pair.cert, '--tls-key', pair.key);
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  }
  const proc = spawn(bin, ['serve', '--bind', '127.0.0.1', '--port', String(port), '--data-dir', dataDir,
    '--rate-limit', '0', ...tlsArgs, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => log.push(d.toString()));
  proc.stderr.on('data', (d) => log.push(d.toString()));
  const exited = new Promise((r) => proc.once('exit', (code, sig) => r({ code, sig })));
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const server = {
    url,
    port,
    tls,
    dataDir,
    log: () => log.join(''),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const { code, sig } = await exited;
      rmSync(dir, { recursive: true, force: true });
      if (code !== 0) throw new Error(`parley exited with ${code ?? sig}\n${log.join('')}`);
    },
  };
  await waitFor('the server to answer /api/health', async () => {
    if (proc.exitCode !== null) throw new Error('parley exited:\n' + log.join(''));
    const res = await fetch(url + '/api/health');
    return res.ok;
  });
  return server;
}

// A user made over the API (fast); returns {username, password, id}.
let userCounter = 0;
export async function registerUser(server, name) {
  const username = name || `user${process.pid}x${++userCounter}`;
  const password = 'correct horse battery ' + username;
  const res = await fetch(server.url + '/api/v1/auth/register', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, email: `${username}@example.test` }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`register ${username}: ${res.status} ${JSON.stringify(body)}`);
  const user = body.user || body.data || body;
  return { username, password, id: user.id, token: body.access_token || body.token };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

// A page in its own context (its own cookies), recording page errors and
// console errors so a test can assert none happened.
export async function newPage(browser, server, { viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ baseURL: server.url, viewport, colorScheme, ignoreHTTPSErrors: !!server.tls });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push('pageerror: ' + err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.errors.push('console: ' + msg.text());
  });
  return page;
}

// Logs in through the login form.
export async function loginViaUi(page, user) {
  await page.goto('/');
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForSelector('.shell', { timeout: DEADLINE_MS });
}

// axe-core's serious and critical violations on the page as it is now (or
// in the part that `selector` names, e.g. a page's own header beside a
// third-party widget).
export async function axeViolations(page, selector = null) {
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(source);
  const result = await page.evaluate(async (sel) => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(sel ? { include: [sel] } : document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  }, selector);
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export async function screenshot(page, name) {
  const dir = join(ROOT, 'build/screens');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, name + '.png') });
}

// A call of the API as `user` (its bearer token from registerUser): the
// parsed answer, or an Error naming the status and the body.
export async function apiCall(server, user, method, path, body) {
  const res = await fetch(server.url + '/api/v1' + path, {
    method,
    headers: { Authorization: 'Bearer ' + user.token, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
