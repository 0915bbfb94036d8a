// The core of the web client in a real browser: registration, login (with
// the two-factor step), logout; the sidebar (create, browse and join,
// unread and mention badges, direct conversations); the live connection
// (a drop and its resume, counted once; a ban back to the login page);
// typing and presence; the Ctrl+K switcher; accessibility and screenshots.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  startServer, launchBrowser, newPage, registerUser, loginViaUi, axeViolations, screenshot, waitFor, DEADLINE_MS,
} from './lib.mjs';

let server;
let browser;
let admin;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  admin = await registerUser(server, 'root' + process.pid); // the first account: the admin
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

// The API as `user` (its bearer token).
async function call(user, method, path, body) {
  const headers = { Authorization: 'Bearer ' + user.token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(server.url + '/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of text.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

// RFC 6238: HMAC-SHA1 of the 30 s step, dynamic truncation, 6 digits.
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}

let names = 0;
const unique = (prefix) => `${prefix}${process.pid % 10000}n${++names}`;

const sidebarItem = (page, label) => page.locator('nav .channel-item', { hasText: label });

async function newChannel(owner, name, extra = {}) {
  return call(owner, 'POST', '/channels', { name, ...extra });
}

// The browser logs each 4xx answer as a console error: the `n` refusals a
// test caused on purpose must be all the errors there are, then are forgotten.
function expectRefusals(page, n) {
  assert.deepEqual(page.errors, Array(n).fill('console: Failed to load resource: the server responded with a status of 401 (Unauthorized)'));
  page.errors.length = 0;
}

// Two new users, alice and bob, both members of a new channel of alice's.
async function twoInAChannel(prefix) {
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const c = await newChannel(alice, unique(prefix));
  await call(bob, 'POST', `/channels/${c.id}/join`);
  return { alice, bob, c };
}

async function closePage(page) {
  assert.deepEqual(page.errors, []);
  await page.context().close();
}

test('register through the form, log out, log in again', async () => {
  const page = await newPage(browser, server);
  await page.goto('/');
  await page.getByRole('button', { name: 'Create one' }).click();
  const username = unique('reg');
  const form = page.getByRole('form', { name: 'Create an account' });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Email').fill(username + '@example.test');
  const password = form.getByLabel('Password');
  assert.equal(await password.getAttribute('autocomplete'), 'new-password');
  await password.fill('a fine password ' + username);
  await form.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.shell').waitFor({ timeout: DEADLINE_MS });
  await page.locator('.sidebar-me-name', { hasText: username }).waitFor();
  // No token in the page's storage: the session is the HttpOnly cookie.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.doesNotMatch(stored, /parley_session|eyJ|access_token|refresh/);

  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('form', { name: 'Log in' }).waitFor();
  // The server ended that login: the cookie no longer works.
  const me = await page.evaluate(() => fetch('/api/v1/users/me').then((r) => r.status));
  assert.equal(me, 401);

  // A wrong password shows the API's message.
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password', { exact: true }).fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /\S/);

  // The test's own 401 probe and the wrong password.
  expectRefusals(page, 2);
  await loginViaUi(page, { username, password: 'a fine password ' + username });
  await page.locator('.sidebar-me-name', { hasText: username }).waitFor();
  await closePage(page);
});

test('the login page: accessible, in both themes, at both widths', async () => {
  for (const colorScheme of ['light', 'dark']) {
    for (const [size, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
      const page = await newPage(browser, server, { viewport, colorScheme });
      await page.goto('/');
      await page.getByLabel('Username').waitFor();
      assert.deepEqual(await axeViolations(page), []);
      await screenshot(page, `core-login-${colorScheme}-${size}`);
      await closePage(page);
    }
  }
});

test('two-factor login asks for the code and takes it', async () => {
  const user = await registerUser(server);
  const setup = await call(user, 'POST', '/auth/mfa/setup');
  const step = Math.floor(Date.now() / 30000);
  await call(user, 'POST', '/auth/mfa/enable', { code: totp(setup.secret, step - 1) });
  const page = await newPage(browser, server);
  await page.goto('/');
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  const code = page.getByLabel('Code', { exact: true });
  await code.waitFor();
  assert.equal(await code.getAttribute('autocomplete'), 'one-time-code');
  // A wrong code: the API's message, still on the code step.
  await code.fill('000000' === totp(setup.secret, step + 1) ? '111111' : '000000');
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.getByRole('alert').waitFor();
  await code.fill(totp(setup.secret, step + 1));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.locator('.shell').waitFor({ timeout: DEADLINE_MS });
  await page.locator('.sidebar-me-name', { hasText: user.username }).waitFor();
  expectRefusals(page, 2); // MFA_REQUIRED, then the wrong code
  await closePage(page);
});

test('A creates a channel, B browses and joins it; messages make unread and mention badges', async () => {
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const other = await newChannel(bob, unique('elsewhere'));
  const pa = await newPage(browser, server);
  const pb = await newPage(browser, server);
  await loginViaUi(pa, alice);
  await loginViaUi(pb, bob);

  const name = unique('plans');
  await pa.getByRole('button', { name: 'Create a channel' }).click();
  const dialog = pa.getByRole('dialog', { name: 'Create a channel' });
  await dialog.getByLabel('Name').fill(name);
  await dialog.getByLabel('Description').fill('what we will do');
  await dialog.getByRole('button', { name: 'Create' }).click();
  await sidebarItem(pa, name).waitFor();
  await waitFor('alice on the new channel', async () => (await sidebarItem(pa, name).getAttribute('aria-current')) === 'page');
  const channelId = await sidebarItem(pa, name).getAttribute('data-channel-id');
  assert.ok(channelId);
  assert.equal((await call(alice, 'GET', '/channels/' + channelId)).is_private, false);

  // B: not in it, so not in the sidebar; found in "Browse channels".
  assert.equal(await sidebarItem(pb, name).count(), 0);
  await pb.getByRole('button', { name: 'Browse channels' }).click();
  const browse = pb.getByRole('dialog', { name: 'Browse channels' });
  await browse.getByText('what we will do').waitFor();
  assert.deepEqual(await axeViolations(pb), []);
  await browse.getByRole('button', { name: 'Join ' + name }).click();
  await sidebarItem(pb, name).waitFor();
  const members = await call(alice, 'GET', `/channels/${channelId}/members`);
  assert.ok(members.members.some((m) => m.user_id === bob.id));

  // B looks elsewhere; A posts twice, the second mentioning B.
  await sidebarItem(pb, other.name).waitFor();
  await pb.evaluate((id) => { location.hash = '#/c/' + id; }, other.id);
  await waitFor('bob on his channel', async () => (await sidebarItem(pb, other.name).getAttribute('aria-current')) === 'page');
  await call(alice, 'POST', `/channels/${channelId}/messages`, { content: 'the plan is ready' });
  await sidebarItem(pb, name).locator('.badge', { hasText: /^1$/ }).waitFor();
  assert.equal(await sidebarItem(pb, name).locator('.badge-mention').count(), 0);
  await call(alice, 'POST', `/channels/${channelId}/messages`, { content: `@${bob.username} have a look` });
  await sidebarItem(pb, name).locator('.badge-mention', { hasText: '@1' }).waitFor();
  await sidebarItem(pb, name).locator('.badge:not(.badge-mention)', { hasText: /^2$/ }).waitFor();
  assert.match(await sidebarItem(pb, name).getAttribute('class'), /has-mention/);
  // A, who has it open and wrote nothing, has no badge; its own posts never count.
  assert.equal(await sidebarItem(pa, name).locator('.badge').count(), 0);
  await closePage(pa);
  await closePage(pb);
});

test('a direct conversation by username shows in both sidebars, with presence', async () => {
  const alice = await registerUser(server);
  const bob = await registerUser(server);
  const pa = await newPage(browser, server);
  const pb = await newPage(browser, server);
  await loginViaUi(pa, alice);
  await loginViaUi(pb, bob);
  await pb.locator('.live-state[data-state="online"]').waitFor();

  await pa.getByRole('button', { name: 'New conversation' }).click();
  const dialog = pa.getByRole('dialog', { name: 'New conversation' });
  await dialog.getByLabel(/Usernames/).fill('@' + bob.username);
  await dialog.getByRole('button', { name: 'Start' }).click();
  const inA = sidebarItem(pa, bob.username);
  await inA.waitFor();
  assert.equal(await inA.getAttribute('aria-current'), 'page');
  await sidebarItem(pb, alice.username).waitFor();
  const direct = await call(bob, 'GET', '/channels/' + await inA.getAttribute('data-channel-id'));
  assert.equal(direct.type, 'direct');

  // Presence: B is online while its page is open, offline once it is closed.
  await inA.locator(`.presence-online[data-user-id="${bob.id}"]`).waitFor();
  await closePage(pb);
  await inA.locator(`.presence-offline[data-user-id="${bob.id}"]`).waitFor({ timeout: DEADLINE_MS });
  await closePage(pa);
});

test('typing from another client shows "… is typing…" and goes away', async () => {
  const { alice, bob, c } = await twoInAChannel('typing');
  const pa = await newPage(browser, server);
  const pb = await newPage(browser, server);
  await loginViaUi(pa, alice);
  await loginViaUi(pb, bob);
  await pa.evaluate((id) => { location.hash = '#/c/' + id; }, c.id);
  await pa.locator('.live-state[data-state="online"]').waitFor();
  // B's own socket, authorised by B's cookie, sends typing_start.
  await pb.evaluate((channelId) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/api/v1/ws`);
    window.typingSocket = ws;
    ws.onmessage = (e) => {
      if (JSON.parse(e.data).type === 'ready') {
        ws.send(JSON.stringify({ type: 'typing_start', channel_id: channelId }));
        resolve();
      }
    };
    ws.onerror = () => reject(new Error('socket failed'));
  }), c.id);
  const line = pa.locator('.typing', { hasText: `${bob.username} is typing…` });
  await line.waitFor();
  await pb.evaluate((channelId) => window.typingSocket.send(JSON.stringify({ type: 'typing_stop', channel_id: channelId })), c.id);
  await waitFor('the typing line to clear', async () => (await pa.locator('.typing').first().textContent()) === '');
  await closePage(pa);
  await closePage(pb);
});

test('a dropped connection shows the banner and resumes: a message sent meanwhile counts once', async () => {
  const { alice, bob, c } = await twoInAChannel('blip');
  const { page: pb, sockets } = await pageWithRoutedSockets();
  await loginViaUi(pb, bob);
  await pb.locator('.live-state[data-state="online"]').waitFor();
  await sidebarItem(pb, c.name).waitFor();
  await pb.evaluate(() => { location.hash = '#/settings'; });

  sockets.cut();
  await pb.locator('.reconnect-banner', { hasText: 'Reconnecting' }).waitFor();
  await call(alice, 'POST', `/channels/${c.id}/messages`, { content: 'said while you were away' });
  sockets.refuse = false;
  await pb.locator('.live-state[data-state="online"][data-transport="websocket"]').waitFor({ timeout: DEADLINE_MS });
  await sidebarItem(pb, c.name).locator('.badge', { hasText: /^1$/ }).waitFor();
  assert.equal(await pb.locator('.reconnect-banner').count(), 0);
  // One more, live: two in all, as the server counts them (none seen twice).
  await call(alice, 'POST', `/channels/${c.id}/messages`, { content: 'and one more' });
  await sidebarItem(pb, c.name).locator('.badge', { hasText: /^2$/ }).waitFor();
  const listed = (await call(bob, 'GET', '/channels?limit=100')).channels.find((x) => x.id === c.id);
  assert.equal(listed.unread_count, 2);
  await closePage(pb);
});

// A page whose WebSockets the test can refuse (closed before `ready`) or cut.
async function pageWithRoutedSockets(options) {
  const page = await newPage(browser, server, options);
  const sockets = { refuse: false, open: [] };
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
    if (sockets.refuse) {
      ws.close({ code: 1011, reason: 'refused by the test' });
      return;
    }
    sockets.open.push(ws);
    ws.connectToServer();
  });
  sockets.cut = () => {
    sockets.refuse = true;
    for (const ws of sockets.open.splice(0)) ws.close({ code: 1011, reason: 'dropped by the test' });
  };
  return { page, sockets };
}

test('a drop longer than the server keeps events: resync reloads the counts over HTTP', async () => {
  // A server of its own that keeps only 16 events (the least it takes) for resumes (the helpers
  // above use the module's `server`: swapped for the test's length).
  const main = server;
  server = await startServer({ args: ['--event-ring', '16'] });
  try {
    const { alice, bob, c } = await twoInAChannel('ring');
    const { page, sockets } = await pageWithRoutedSockets();
    await loginViaUi(page, bob);
    await page.locator('.live-state[data-state="online"]').waitFor();
    await sidebarItem(page, c.name).waitFor();
    await page.evaluate(() => { location.hash = '#/settings'; });
    sockets.cut();
    await page.locator('.reconnect-banner').waitFor();
    for (let i = 0; i < 20; i++) await call(alice, 'POST', `/channels/${c.id}/messages`, { content: 'lost event ' + i });
    sockets.refuse = false;
    await page.locator('.live-state[data-state="online"]').waitFor({ timeout: DEADLINE_MS });
    await sidebarItem(page, c.name).locator('.badge', { hasText: /^20$/ }).waitFor();
    await call(alice, 'POST', `/channels/${c.id}/messages`, { content: 'live again' });
    await sidebarItem(page, c.name).locator('.badge', { hasText: /^21$/ }).waitFor();
    await closePage(page);
  } finally {
    const own = server;
    server = main;
    await own.stop();
  }
});

test('no WebSocket: the event stream takes over, and events still count', async () => {
  const { alice, bob, c } = await twoInAChannel('stream');
  const { page, sockets } = await pageWithRoutedSockets();
  sockets.refuse = true;
  await loginViaUi(page, bob);
  await page.locator('.live-state[data-state="online"][data-transport="sse"]').waitFor({ timeout: DEADLINE_MS });
  await sidebarItem(page, c.name).waitFor();
  await page.evaluate(() => { location.hash = '#/settings'; });
  await call(alice, 'POST', `/channels/${c.id}/messages`, { content: 'over the stream' });
  await sidebarItem(page, c.name).locator('.badge', { hasText: /^1$/ }).waitFor();
  await call(alice, 'POST', `/channels/${c.id}/messages`, { content: `@${bob.username} and a mention` });
  await sidebarItem(page, c.name).locator('.badge-mention', { hasText: '@1' }).waitFor();
  await sidebarItem(page, c.name).locator('.badge:not(.badge-mention)', { hasText: /^2$/ }).waitFor();
  await closePage(page);
});

test('the admin bans the user: the page goes back to the login page with the message', async () => {
  const user = await registerUser(server);
  const page = await newPage(browser, server);
  await loginViaUi(page, user);
  await page.locator('.live-state[data-state="online"]').waitFor();
  await call(admin, 'POST', `/admin/users/${user.id}/ban`, { reason: 'spam' });
  await page.getByRole('form', { name: 'Log in' }).waitFor({ timeout: DEADLINE_MS });
  const notice = page.locator('.auth-notice');
  await notice.waitFor();
  assert.match(await notice.textContent(), /banned/i);
  assert.equal(await page.locator('.shell').count(), 0);
  await call(admin, 'POST', `/admin/users/${user.id}/unban`);
  await closePage(page);
});

test('Ctrl+K switches channel; the shell is accessible at both widths', async () => {
  const user = await registerUser(server);
  const first = await newChannel(user, unique('alpha'));
  const second = await newChannel(user, unique('zulu'));
  for (const colorScheme of ['light', 'dark']) {
    const page = await newPage(browser, server, { colorScheme });
    await loginViaUi(page, user);
    await sidebarItem(page, second.name).waitFor();
    await page.evaluate((id) => { location.hash = '#/c/' + id; }, first.id);
    await waitFor('the first channel', async () => (await sidebarItem(page, first.name).getAttribute('aria-current')) === 'page');
    await page.locator('.live-state[data-state="online"]').waitFor();
    assert.deepEqual(await axeViolations(page), []);
    await screenshot(page, `core-shell-${colorScheme}-desktop`);

    await page.keyboard.press('Control+k');
    const dialog = page.getByRole('dialog', { name: 'Jump to a conversation' });
    await dialog.waitFor();
    const input = dialog.getByRole('combobox', { name: 'Channel or person' });
    await input.fill(second.name.slice(0, 4));
    await dialog.getByRole('option', { name: new RegExp(second.name) }).waitFor();
    assert.equal(await dialog.getByRole('option').count(), 1);
    assert.deepEqual(await axeViolations(page), []);
    await screenshot(page, `core-switcher-${colorScheme}-desktop`);
    await input.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await waitFor('the second channel', async () => (await sidebarItem(page, second.name).getAttribute('aria-current')) === 'page');
    assert.equal(new URL(page.url()).hash, '#/c/' + second.id);

    // Arrows move the choice; Esc closes without moving.
    await page.keyboard.press('Control+k');
    await dialog.waitFor();
    await input.press('ArrowDown');
    await dialog.locator('[role="option"][aria-selected="true"]', { hasText: second.name }).waitFor();
    await input.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(new URL(page.url()).hash, '#/c/' + second.id);
    await closePage(page);
  }
});

test('phone width: the sidebar opens and closes with its button', async () => {
  const user = await registerUser(server);
  const c = await newChannel(user, unique('phone'));
  for (const colorScheme of ['light', 'dark']) {
    const page = await newPage(browser, server, { viewport: { width: 390, height: 844 }, colorScheme });
    await loginViaUi(page, user);
    await page.locator('.live-state[data-state="online"]').waitFor();
    const item = sidebarItem(page, c.name);
    assert.equal(await item.isVisible(), false);
    await screenshot(page, `core-shell-${colorScheme}-phone`);
    const toggle = page.getByRole('button', { name: 'Open the sidebar' });
    await toggle.click();
    await item.waitFor({ state: 'visible' });
    assert.deepEqual(await axeViolations(page), []);
    await screenshot(page, `core-sidebar-${colorScheme}-phone`);
    await page.keyboard.press('Escape');
    await item.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Open the sidebar' }).click();
    await item.click();
    await item.waitFor({ state: 'hidden' });
    assert.equal(new URL(page.url()).hash, '#/c/' + c.id);
    await closePage(page);
  }
});

test('the sidebar links to search and settings, and to the admin view for the admin only', async () => {
  const user = await registerUser(server);
  for (const [who, isAdmin] of [[admin, true], [user, false]]) {
    const page = await newPage(browser, server);
    await loginViaUi(page, who);
    const nav = page.getByRole('navigation', { name: 'Channels and conversations' });
    await nav.getByRole('link', { name: 'Settings' }).waitFor();
    assert.equal(await nav.getByRole('link', { name: 'Search' }).getAttribute('href'), '#/search');
    assert.equal(await nav.getByRole('link', { name: 'Admin' }).count(), isAdmin ? 1 : 0);
    await closePage(page);
  }
});

test('registration by invitation: the invite code field shows when the server asks for one', async () => {
  await call(admin, 'PATCH', '/admin/settings', { registration: 'invite' });
  try {
    const page = await newPage(browser, server);
    await page.goto('/');
    await page.getByRole('button', { name: 'Create one' }).click();
    const form = page.getByRole('form', { name: 'Create an account' });
    assert.equal(await form.getByLabel('Invite code').count(), 0);
    const username = unique('invited');
    await form.getByLabel('Username').fill(username);
    await form.getByLabel('Email').fill(username + '@example.test');
    await form.getByLabel('Password').fill('a fine password ' + username);
    await form.getByRole('button', { name: 'Create account' }).click();
    await form.getByRole('alert').waitFor();
    const code = form.getByLabel('Invite code');
    await code.waitFor();
    const invite = await call(admin, 'POST', '/admin/invites', { max_uses: 1 });
    await code.fill(invite.code);
    await form.getByRole('button', { name: 'Create account' }).click();
    await page.locator('.sidebar-me-name', { hasText: username }).waitFor({ timeout: DEADLINE_MS });
    page.errors = page.errors.filter((e) => !/status of 422/.test(e)); // the refusal without a code
    await closePage(page);
    // An address with the code (in the hash: the page's query string is the
    // server's, which takes none) opens the form with the code filled in.
    const other = await call(admin, 'POST', '/admin/invites', { max_uses: 1 });
    const second = await newPage(browser, server);
    await second.goto('/#/register?invite=' + other.code);
    assert.equal(await second.getByRole('form', { name: 'Create an account' }).getByLabel('Invite code').inputValue(), other.code);
    await closePage(second);
  } finally {
    await call(admin, 'PATCH', '/admin/settings', { registration: null });
  }
});
