// The client over HTTPS (a self-signed certificate made by certtool): the
// login through the form sets the session cookies with Secure (HttpOnly for
// the session), the live connection (wss:) comes up, and the page has no
// error; a message posted over the API reaches the live connection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, registerUser, loginViaUi, waitFor, DEADLINE_MS } from './lib.mjs';

let server;
let browser;
before(async () => {
  server = await startServer({ tls: true });
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('over https the login sets Secure cookies and the live connection comes up', async () => {
  assert.match(server.url, /^https:/);
  const user = await registerUser(server);
  const page = await newPage(browser, server);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws));
  await loginViaUi(page, user);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'parley_session');
  const csrf = cookies.find((c) => c.name === 'parley_csrf');
  assert.ok(session, 'a session cookie: ' + JSON.stringify(cookies.map((c) => c.name)));
  assert.equal(session.secure, true);
  assert.equal(session.httpOnly, true);
  assert.ok(csrf, 'a CSRF cookie');
  assert.equal(csrf.secure, true);
  assert.equal(csrf.httpOnly, false); // the client reads it to send the CSRF header
  await page.locator('.live-state[data-state=online]').waitFor({ timeout: DEADLINE_MS });
  assert.ok(sockets.some((ws) => ws.url().startsWith('wss://127.0.0.1:')), sockets.map((ws) => ws.url()).join(' '));

  // A message posted over the API (by the user's own token) reaches the
  // page's live connection.
  const ws = sockets.find((w) => w.url().startsWith('wss://'));
  const frames = [];
  ws.on('framereceived', (f) => frames.push(String(f.payload)));
  const headers = { Authorization: 'Bearer ' + user.token, 'Content-Type': 'application/json' };
  const ch = await (await fetch(server.url + '/api/v1/channels', {
    method: 'POST', headers, body: JSON.stringify({ name: 'tls-room' + process.pid }),
  })).json();
  const channelId = (ch.channel || ch.data || ch).id;
  assert.ok(channelId, JSON.stringify(ch));
  const text = 'hello over tls ' + Date.now();
  const posted = await fetch(server.url + `/api/v1/channels/${channelId}/messages`, {
    method: 'POST', headers, body: JSON.stringify({ content: text }),
  });
  assert.equal(posted.status, 201);
  await waitFor('a live frame with the posted message', () => frames.some((f) => f.includes(text)));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
