// The client's parts together, as a user meets them: a message sent while the
// other side was offline shows once after it reconnects; a reaction, a thread
// reply and a mention made in the channel view reach the other user; search
// jumps into the channel view; an admin's ban from the admin view logs the
// user's open client out. Each part has its own tests; these check the seams.
// With PARLEY_WEB_TLS=1 (make test-web-tls) every browser test runs over TLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, registerUser, loginViaUi, apiCall, waitFor, DEADLINE_MS } from './lib.mjs';

let server;
let browser;
let admin;
let alice;
let bob;
let general;
let random;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  admin = await registerUser(server, 'root');
  alice = await registerUser(server, 'alice');
  bob = await registerUser(server, 'bob');
  general = await apiCall(server, alice, 'POST', '/channels', { name: 'general' });
  random = await apiCall(server, alice, 'POST', '/channels', { name: 'random' });
  for (const c of [general, random]) await apiCall(server, bob, 'POST', `/channels/${c.id}/join`);
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function openChannel(page, user, channel) {
  await loginViaUi(page, user);
  await page.evaluate((h) => { location.hash = h; }, `#/c/${channel.id}`);
  await page.locator('.channel-header h1', { hasText: channel.name }).waitFor({ timeout: DEADLINE_MS });
  await page.locator('.live-state[data-state="online"]').waitFor({ timeout: DEADLINE_MS });
}

const messageByText = (p, text) => p.locator('[data-message-id]').filter({ hasText: text });
const sidebarItem = (p, label) => p.locator('nav .channel-item', { hasText: label });

test('messages sent while the client was offline show once after it reconnects', async () => {
  const page = await newPage(browser, server);
  const sockets = { refuse: false, open: [] };
  await page.routeWebSocket(/\/api\/v1\/ws/, (ws) => {
    if (sockets.refuse) {
      ws.close({ code: 1011, reason: 'refused by the test' });
      return;
    }
    sockets.open.push(ws);
    ws.connectToServer();
  });
  await openChannel(page, bob, general);
  await apiCall(server, alice, 'POST', `/channels/${general.id}/messages`, { content: 'before the drop' });
  await messageByText(page, 'before the drop').waitFor();

  sockets.refuse = true;
  for (const ws of sockets.open.splice(0)) ws.close({ code: 1011, reason: 'dropped by the test' });
  await page.locator('.live-state:not([data-state="online"])').waitFor();
  for (const n of [1, 2, 3]) {
    await apiCall(server, alice, 'POST', `/channels/${general.id}/messages`, { content: `while away ${n}` });
  }
  assert.equal(await messageByText(page, 'while away').count(), 0);

  // The network is back: the browser says so, the client reconnects at once
  // and resumes from the last event it saw.
  sockets.refuse = false;
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  await page.locator('.live-state[data-state="online"]').waitFor();
  for (const n of [1, 2, 3]) await messageByText(page, `while away ${n}`).waitFor();
  await apiCall(server, alice, 'POST', `/channels/${general.id}/messages`, { content: 'after the return' });
  await messageByText(page, 'after the return').waitFor();
  for (const text of ['before the drop', 'while away 1', 'while away 2', 'while away 3', 'after the return']) {
    assert.equal(await messageByText(page, text).count(), 1, text);
  }
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a reaction, a thread reply and a mention made in the channel view reach the other user', async () => {
  const a = await newPage(browser, server);
  const b = await newPage(browser, server);
  await openChannel(a, alice, general);
  await openChannel(b, bob, general);
  const root = await apiCall(server, bob, 'POST', `/channels/${general.id}/messages`, { content: 'lunch at noon?' });
  await messageByText(a, 'lunch at noon?').waitFor();

  // The reaction, through the picker of the message in the history.
  const msgA = messageByText(a, 'lunch at noon?');
  await msgA.hover();
  await msgA.getByRole('button', { name: 'Add reaction' }).click();
  const picker = a.getByRole('dialog', { name: 'Add reaction' });
  await a.keyboard.type('thumbs');
  await picker.getByRole('option', { name: 'thumbs up' }).waitFor();
  await a.keyboard.press('Enter');
  await messageByText(b, 'lunch at noon?').locator('.reaction', { hasText: '1' }).waitFor();

  // The thread reply, from the message's "Reply" action.
  await msgA.hover();
  await msgA.getByRole('button', { name: 'Reply in thread' }).click();
  const panel = a.getByRole('complementary', { name: 'Thread' });
  const box = panel.getByRole('textbox', { name: 'Reply in thread' });
  await box.fill('yes, the usual place');
  await box.press('Enter');
  await messageByText(b, 'lunch at noon?').locator('.reply-count', { hasText: '1 reply' }).waitFor();
  const thread = await apiCall(server, bob, 'GET', `/messages/${root.id}/thread`);
  assert.ok(JSON.stringify(thread).includes('yes, the usual place'));

  // The mention, with the composer's autocomplete, in another channel: bob's
  // sidebar shows the mention.
  await a.evaluate((h) => { location.hash = h; }, `#/c/${random.id}`);
  await a.locator('.channel-header h1', { hasText: 'random' }).waitFor();
  const composer = a.locator('textarea.composer-input');
  await composer.click();
  await composer.pressSequentially('@bo');
  await a.getByRole('option', { name: /bob/ }).first().waitFor();
  await composer.press('Enter');
  await waitFor('the mention inserted', async () => (await composer.inputValue()) === '@bob ');
  await composer.pressSequentially('see #random');
  await composer.press('Enter');
  await sidebarItem(b, 'random').locator('.badge-mention', { hasText: '@1' }).waitFor();
  const page1 = await apiCall(server, bob, 'GET', `/channels/${random.id}/messages?limit=5`);
  const mentioned = page1.messages.find((m) => m.content.includes('see #random'));
  assert.deepEqual(mentioned.mentions.map((m) => (typeof m === 'string' ? m : m.id || m.user_id)), [bob.id]);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context().close();
  await b.context().close();
});

test('search finds an old message and jumps to it in the channel view', async () => {
  const target = await apiCall(server, alice, 'POST', `/channels/${random.id}/messages`, { content: 'the wifi password is on the fridge' });
  for (let i = 0; i < 80; i++) {
    await apiCall(server, alice, 'POST', `/channels/${random.id}/messages`, { content: `filler ${i}` });
  }
  const page = await newPage(browser, server);
  await loginViaUi(page, bob);
  await page.evaluate(() => { location.hash = '#/search'; });
  await page.getByRole('searchbox', { name: 'Search messages' }).fill('fridge');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  const hit = page.locator('.search-hit-link').first();
  await hit.waitFor();
  await hit.click();
  await page.locator(`.history-row.highlighted [data-message-id="${target.id}"]`).waitFor();
  await waitFor('the hit in view', () => page.locator(`[data-message-id="${target.id}"]`).isVisible());
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a ban from the admin view logs the user's open client out", async () => {
  const victim = await registerUser(server, 'mallory');
  await apiCall(server, victim, 'POST', `/channels/${general.id}/join`);
  const vp = await newPage(browser, server);
  await openChannel(vp, victim, general);

  const ap = await newPage(browser, server);
  await loginViaUi(ap, admin);
  await ap.evaluate(() => { location.hash = '#/admin/users'; });
  await ap.getByRole('button', { name: 'Manage mallory' }).click();
  const dialog = ap.getByRole('dialog', { name: 'Manage mallory' });
  await dialog.getByLabel('Ban reason').fill('spam');
  await dialog.getByRole('button', { name: 'Ban', exact: true }).click();

  await vp.getByLabel('Username').waitFor({ timeout: DEADLINE_MS });
  await vp.getByText(/banned/i).first().waitFor();
  const user = await apiCall(server, admin, 'GET', `/admin/users/${victim.id}`);
  assert.equal(user.is_banned, true);
  // The ban's 401/403 answers and the closed socket are the expected console lines.
  assert.deepEqual(vp.errors.filter((e) => !/Failed to load resource|WebSocket/.test(e)), []);
  assert.deepEqual(ap.errors, []);
  await vp.context().close();
  await ap.context().close();
});
