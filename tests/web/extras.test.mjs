// Reactions with the emoji picker, threads and @mention autocomplete, driven
// through the thread panel (opened by its shareable link #/c/<id>?thread=<msg>):
// two users in two browser contexts; what one does shows on the other side
// live, and the server's state is checked over the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, newPage, registerUser, loginViaUi, axeViolations, screenshot, waitFor, DEADLINE_MS,
} from './lib.mjs';

let server;
let browser;
let alice;
let bob;
let channel;

async function call(user, method, path, body) {
  const res = await fetch(server.url + '/api/v1' + path, {
    method,
    headers: { Authorization: 'Bearer ' + user.token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  alice = await registerUser(server, 'alice');
  bob = await registerUser(server, 'bob');
  channel = await call(alice, 'POST', '/channels', { name: 'extras', description: 'threads and reactions' });
  await call(bob, 'POST', `/channels/${channel.id}/join`);
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

// A page logged in as `user`, live, with the thread of `rootId` open by its link.
async function openThreadPage(user, rootId, opts = {}) {
  const page = await newPage(browser, server, opts);
  await loginViaUi(page, user);
  await page.locator('.live-state[data-state="online"]').waitFor({ timeout: DEADLINE_MS });
  await page.evaluate((h) => { location.hash = h; }, `#/c/${channel.id}?thread=${rootId}`);
  const panel = page.getByRole('complementary', { name: 'Thread' });
  await panel.locator('.thread-root .message').waitFor({ timeout: DEADLINE_MS });
  return { page, panel };
}

// No page error nor console error happened on these pages; they close.
async function finish(...sides) {
  for (const side of sides) assert.deepEqual(side.page.errors, []);
  for (const side of sides) await side.page.context().close();
}

async function postRoot(content) {
  return call(alice, 'POST', `/channels/${channel.id}/messages`, { content });
}

test('a reply in the thread panel shows in the other user\'s open panel, live', async () => {
  const root = await postRoot('Where shall we meet?');
  const a = await openThreadPage(alice, root.id);
  const b = await openThreadPage(bob, root.id);
  await a.panel.getByText('Where shall we meet?').waitFor();
  assert.equal(await a.panel.getByText('0 replies').count(), 1);

  const box = b.panel.getByRole('textbox', { name: 'Reply in thread' });
  await box.click();
  await box.pressSequentially('At the station');
  await box.press('Shift+Enter');
  await box.pressSequentially('at noon');
  await box.press('Enter');
  await b.panel.locator('.thread-replies .message').filter({ hasText: 'At the station' }).waitFor();
  assert.equal(await box.inputValue(), '');
  // Alice's panel gets it from the live event.
  await a.panel.locator('.thread-replies .message').filter({ hasText: 'At the station' }).waitFor();
  await a.panel.getByText('1 reply').waitFor();
  assert.equal(await a.panel.locator('.thread-replies .message').count(), 1);

  const thread = await call(alice, 'GET', `/messages/${root.id}/thread`);
  assert.equal(thread.messages.length, 1);
  assert.equal(thread.messages[0].content, 'At the station\nat noon');
  assert.equal(thread.messages[0].thread_id, root.id);
  assert.equal(thread.messages[0].user_id, bob.id);

  await screenshot(a.page, 'extras-thread-light-desktop');
  await finish(a, b);
});

test('a reply whose answer is lost is sent again with the same idempotency key: one reply on the server', async () => {
  const root = await postRoot('Lost answers');
  const b = await openThreadPage(bob, root.id);
  // The first post reaches the server, but its answer never reaches the page.
  let cut = 0;
  const keys = [];
  await b.page.route(`**/api/v1/channels/${channel.id}/messages`, async (route) => {
    keys.push(JSON.parse(route.request().postData()).idempotency_key);
    if (cut++ === 0) {
      await route.fetch();
      await route.abort('failed');
    } else await route.continue();
  });
  const box = b.panel.getByRole('textbox', { name: 'Reply in thread' });
  await box.click();
  await box.pressSequentially('only once');
  await box.press('Enter');
  await waitFor('the first attempt to fail', () => cut === 1 && b.panel.getByRole('button', { name: 'Send' }).isEnabled());
  assert.equal(await box.inputValue(), 'only once'); // kept for another try
  await box.press('Enter');
  // (The reply may already show from its live event: the emptied box is the retry's success.)
  await waitFor('the retry to succeed', async () => (await box.inputValue()) === '');
  await b.panel.locator('.thread-replies .message').filter({ hasText: 'only once' }).waitFor();
  assert.equal(keys.length, 2);
  assert.ok(keys[0] && keys[0] === keys[1], 'the retry carries the same key');
  const thread = await call(bob, 'GET', `/messages/${root.id}/thread`);
  assert.deepEqual(thread.messages.map((m) => m.content), ['only once']);
  assert.equal(await b.panel.locator('.thread-replies .message').count(), 1);
  // The aborted request is the one error the page may log.
  b.page.errors = b.page.errors.filter((e) => !/ERR_FAILED/.test(e));
  await finish(b);
});

test('a reaction added with the keyboard through the picker shows on the other side; a click removes it', async () => {
  const root = await postRoot('Pizza on Friday?');
  const a = await openThreadPage(alice, root.id);
  const b = await openThreadPage(bob, root.id);
  const addButton = a.panel.locator('.thread-root').getByRole('button', { name: 'Add reaction' });

  // Keyboard only: Tab from the panel's heading to the root's "Add reaction".
  await waitFor('the focus in the panel', () => a.page.evaluate(() => document.activeElement && document.activeElement.closest('.thread-panel') !== null));
  for (let i = 0; i < 10; i++) {
    if (await addButton.evaluate((el) => el === document.activeElement)) break;
    await a.page.keyboard.press('Tab');
  }
  assert.ok(await addButton.evaluate((el) => el === document.activeElement), 'Tab reaches "Add reaction"');
  await a.page.keyboard.press('Enter');
  const picker = a.panel.getByRole('dialog', { name: 'Add reaction' });
  await picker.waitFor();
  assert.ok(await picker.getByRole('combobox', { name: 'Search emoji' }).evaluate((el) => el === document.activeElement));
  await a.page.keyboard.type('thumbs');
  await picker.getByRole('option', { name: 'thumbs up' }).waitFor();
  assert.equal(await picker.getByRole('option').count(), 2); // thumbs up, thumbs down

  assert.deepEqual(await axeViolations(a.page), []);
  await screenshot(a.page, 'extras-picker-light-desktop');

  await a.page.keyboard.press('ArrowRight');
  assert.equal(await picker.getByRole('option', { name: 'thumbs up' }).getAttribute('aria-selected'), 'true');
  await a.page.keyboard.press('Enter');
  await picker.waitFor({ state: 'detached' });
  // The focus is back on the button that opened the picker.
  assert.ok(await addButton.evaluate((el) => el === document.activeElement));

  const mine = a.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 1, by you$/ });
  await mine.waitFor();
  assert.equal(await mine.getAttribute('aria-pressed'), 'true');
  assert.equal((await mine.textContent()).replace(/\s/g, ''), '👍1');
  // Bob sees it live, not pressed, with Alice's name.
  const theirs = b.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 1, by alice$/ });
  await theirs.waitFor();
  assert.equal(await theirs.getAttribute('aria-pressed'), 'false');
  let now = await call(bob, 'GET', `/messages/${root.id}`);
  assert.deepEqual(now.reactions.map((r) => [r.emoji, r.count, r.users]), [['👍', 1, [alice.id]]]);

  // Bob adds the same one by a click on the pill: 2 on both sides.
  await theirs.click();
  await b.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 2, by alice, you$/ }).waitFor();
  await a.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 2, by you, bob$/ }).waitFor();

  // Alice's click on her pressed pill removes hers.
  await a.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 2/ }).click();
  await b.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 1, by you$/ }).waitFor();
  const left = a.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 1, by bob$/ });
  await left.waitFor();
  assert.equal(await left.getAttribute('aria-pressed'), 'false');
  now = await call(alice, 'GET', `/messages/${root.id}`);
  assert.deepEqual(now.reactions.map((r) => [r.emoji, r.count, r.users]), [['👍', 1, [bob.id]]]);

  // Bob's removal: no pill left on either side.
  await b.panel.locator('.thread-root').getByRole('button', { name: /^thumbs up: 1, by you$/ }).click();
  await a.panel.locator('.thread-root .reaction').waitFor({ state: 'detached' });
  await b.panel.locator('.thread-root .reaction').waitFor({ state: 'detached' });
  now = await call(alice, 'GET', `/messages/${root.id}`);
  assert.deepEqual(now.reactions, []);

  await finish(a, b);
});

test('the picker lists recently used emoji first and searches by name', async () => {
  const root = await postRoot('Recents');
  const a = await openThreadPage(alice, root.id);
  const addButton = a.panel.locator('.thread-root').getByRole('button', { name: 'Add reaction' });
  await addButton.click();
  let picker = a.panel.getByRole('dialog', { name: 'Add reaction' });
  await picker.getByRole('combobox', { name: 'Search emoji' }).fill('party');
  await picker.getByRole('option', { name: 'party popper' }).click();
  await a.panel.locator('.thread-root').getByRole('button', { name: /^party popper: 1, by you$/ }).waitFor();
  await addButton.click();
  picker = a.panel.getByRole('dialog', { name: 'Add reaction' });
  const recent = picker.getByRole('group', { name: 'Recently used' });
  await recent.waitFor();
  assert.equal(await recent.getByRole('option').first().getAttribute('aria-label'), 'party popper');
  await a.page.keyboard.press('Escape');
  await picker.waitFor({ state: 'detached' });
  await finish(a);
});

test('@mention autocomplete in the thread composer: "@al" suggests alice, Enter inserts her, the post mentions her', async () => {
  const root = await postRoot('Who has the keys?');
  const b = await openThreadPage(bob, root.id);
  const box = b.panel.getByRole('textbox', { name: 'Reply in thread' });
  await box.click();
  await box.pressSequentially('ask @al');
  const list = b.panel.getByRole('listbox', { name: 'Mention a user' });
  await list.waitFor();
  const option = list.getByRole('option').filter({ hasText: '@alice' });
  await option.waitFor();
  assert.equal(await list.getByRole('option').count(), 1);
  assert.equal(await option.getAttribute('aria-selected'), 'true');
  assert.equal(await box.getAttribute('aria-activedescendant'), await option.getAttribute('id'));
  await screenshot(b.page, 'extras-mentions-light-desktop');

  await box.press('Enter'); // picks, does not send
  await list.waitFor({ state: 'detached' });
  assert.equal(await box.inputValue(), 'ask @alice ');
  assert.equal(await box.getAttribute('aria-activedescendant'), null);
  await box.pressSequentially('please');
  await box.press('Enter');
  await b.panel.locator('.thread-replies .message').filter({ hasText: 'ask @alice please' }).waitFor();

  const thread = await call(bob, 'GET', `/messages/${root.id}/thread`);
  assert.equal(thread.messages.length, 1);
  assert.equal(thread.messages[0].content, 'ask @alice please');
  assert.deepEqual(thread.messages[0].mentions, [alice.id]);

  // Esc closes the list without touching the text; the panel stays.
  await box.pressSequentially('@');
  await list.getByRole('option').filter({ hasText: '@alice' }).waitFor();
  await box.press('Escape');
  await list.waitFor({ state: 'detached' });
  assert.equal(await box.inputValue(), '@');
  assert.equal(await b.panel.count(), 1);
  await finish(b);
});

test('Esc closes the picker, then the panel; the link no longer names the thread', async () => {
  const root = await postRoot('Esc, twice');
  const a = await openThreadPage(alice, root.id);
  const addButton = a.panel.locator('.thread-root').getByRole('button', { name: 'Add reaction' });
  await addButton.click();
  const picker = a.panel.getByRole('dialog', { name: 'Add reaction' });
  await picker.waitFor();
  await a.page.keyboard.press('Escape');
  await picker.waitFor({ state: 'detached' });
  assert.equal(await a.panel.count(), 1);
  assert.ok(await addButton.evaluate((el) => el === document.activeElement));
  await a.page.keyboard.press('Escape');
  await a.panel.waitFor({ state: 'detached' });
  assert.equal(await a.page.evaluate(() => location.hash), `#/c/${channel.id}`);
  // The link opens it again.
  await a.page.evaluate((h) => { location.hash = h; }, `#/c/${channel.id}?thread=${root.id}`);
  await a.panel.locator('.thread-root .message').waitFor();
  await a.panel.getByRole('button', { name: 'Close thread' }).click();
  await a.panel.waitFor({ state: 'detached' });
  await finish(a);
});

test('the thread panel at phone width and in the dark theme, with no serious accessibility violation', async () => {
  const root = await postRoot('Phones too');
  await call(bob, 'POST', `/channels/${channel.id}/messages`, { content: 'Yes, phones too', reply_to: root.id });
  await call(bob, 'POST', `/messages/${root.id}/reactions`, { emoji: '🎉' });
  for (const [colorScheme, viewport, name] of [
    ['dark', { width: 390, height: 844 }, 'extras-thread-dark-phone'],
    ['light', { width: 390, height: 844 }, 'extras-thread-light-phone'],
    ['dark', { width: 1280, height: 800 }, 'extras-thread-dark-desktop'],
  ]) {
    const a = await openThreadPage(alice, root.id, { colorScheme, viewport });
    await a.panel.locator('.thread-replies .message').filter({ hasText: 'Yes, phones too' }).waitFor();
    await a.panel.locator('.thread-root').getByRole('button', { name: /^party popper: 1, by bob$/ }).waitFor();
    const box = await a.panel.boundingBox();
    assert.ok(box.width <= viewport.width && box.width > 300, `the panel fits: ${box.width}`);
    assert.deepEqual(await axeViolations(a.page), []);
    await screenshot(a.page, name);
    if (viewport.width < 700) {
      await a.panel.locator('.thread-root').getByRole('button', { name: 'Add reaction' }).click();
      const picker = a.panel.getByRole('dialog', { name: 'Add reaction' });
      await picker.waitFor();
      const pbox = await picker.boundingBox();
      assert.ok(pbox.x >= 0 && pbox.x + pbox.width <= viewport.width, 'the picker fits the phone');
      await screenshot(a.page, name.replace('thread', 'picker'));
      assert.deepEqual(await axeViolations(a.page), []);
    }
    await finish(a);
  }
});
