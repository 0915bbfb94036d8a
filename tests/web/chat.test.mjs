// The channel view in a real browser: two users chat live both ways through
// the composer, edits and deletions reach the other side, a retried send
// never duplicates, files by drag-and-drop and by the button show their
// preview on both sides, long histories scroll back (300 messages; 10,000
// with a bounded number of message elements in the DOM), a link to a message
// jumps to it, and markup in contents, names and file names stays text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, newPage, registerUser, loginViaUi, axeViolations, screenshot, waitFor, DEADLINE_MS,
} from './lib.mjs';

let server;
let browser;
let alice;
let bob;
let general;

async function call(user, method, path, body, headers = {}) {
  const res = await fetch(server.url + '/api/v1' + path, {
    method,
    headers: { Authorization: 'Bearer ' + user.token, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return json;
}

async function newChannel(user, name, extra = {}) {
  return call(user, 'POST', '/channels', { name, ...extra });
}

// Posts `count` messages (content(i)) over POST /api/v1/batch, 50 a request,
// `parallel` requests at a time (in order when parallel is 1).
async function seed(user, channelId, count, content, parallel = 1) {
  const batches = [];
  for (let i = 0; i < count; i += 50) {
    batches.push(Array.from({ length: Math.min(50, count - i) }, (_, j) => ({
      method: 'POST', path: `/api/v1/channels/${channelId}/messages`, body: { content: content(i + j) },
    })));
  }
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const ops = batches[next++];
      const res = await call(user, 'POST', '/batch', { operations: ops });
      assert.equal(res.failed, 0, JSON.stringify(res.results.find((r) => r.status >= 300)));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

async function serverMessages(user, channelId) {
  const out = [];
  let before;
  for (;;) {
    const page = await call(user, 'GET', `/channels/${channelId}/messages?limit=100${before ? '&before=' + before : ''}`);
    out.unshift(...page.messages);
    if (!page.has_more) return out;
    before = page.next_cursor;
  }
}

async function open(browserPage, user, channelId, suffix = '') {
  await loginViaUi(browserPage, user);
  await browserPage.evaluate((h) => { location.hash = h; }, `#/c/${channelId}${suffix}`);
  await browserPage.locator('.channel-header h1').filter({ hasText: /\S/ }).waitFor({ timeout: DEADLINE_MS });
}

const composer = (p) => p.locator('textarea.composer-input');
const messageByText = (p, text) => p.locator('[data-message-id]').filter({ hasText: text });

async function hoverAction(p, text, action) {
  const msg = messageByText(p, text).first();
  await msg.hover();
  await msg.getByRole('button', { name: action }).click();
}

before(async () => {
  server = await startServer({ args: ['--fsync', 'none'] });
  browser = await launchBrowser();
  alice = await registerUser(server, 'alice');
  bob = await registerUser(server, 'bob');
  general = await newChannel(alice, 'general', { description: 'Talk about anything' });
  await call(bob, 'POST', `/channels/${general.id}/join`);
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('two users chat live both ways; Shift+Enter, edit and delete reach the other side', async () => {
  await call(alice, 'POST', `/channels/${general.id}/messages`, { content: 'written before bob came' });
  const a = await newPage(browser, server);
  const b = await newPage(browser, server);
  await open(a, alice, general.id);
  await open(b, bob, general.id);
  assert.equal(await a.locator('.channel-header h1').textContent(), '#general');
  // Bob had not read it: the marker is above it; reading it clears his unread count.
  await b.locator('.new-marker + .history-row').filter({ hasText: 'written before bob came' }).waitFor();
  await waitFor('bob\'s read marker', async () => (await call(bob, 'GET', `/channels/${general.id}`)).unread_count === 0);
  assert.match(await a.locator('.channel-header').textContent(), /Talk about anything/);

  await composer(a).fill('hello from alice');
  await composer(a).press('Enter');
  await messageByText(b, 'hello from alice').waitFor();
  assert.equal(await composer(a).inputValue(), '');

  await composer(b).click();
  await b.keyboard.type('line one');
  await b.keyboard.press('Shift+Enter');
  await b.keyboard.type('line two');
  await b.keyboard.press('Enter');
  await messageByText(a, 'line two').waitFor();
  const shown = await messageByText(a, 'line two').locator('.message-content').innerText();
  assert.match(shown, /^line one\nline two/);

  // Once on each side, and once on the server.
  await waitFor('alice\'s message on both sides once', async () =>
    (await messageByText(a, 'hello from alice').count()) === 1 && (await messageByText(b, 'hello from alice').count()) === 1);
  const stored = await serverMessages(alice, general.id);
  assert.equal(stored.filter((m) => m.content === 'hello from alice').length, 1);
  assert.equal(stored.filter((m) => m.content === 'line one\nline two').length, 1);

  // Up in the empty composer edits my last message; Enter saves.
  await composer(a).click();
  await a.keyboard.press('ArrowUp');
  const edit = a.getByRole('textbox', { name: 'Edit message' });
  await edit.waitFor();
  await edit.fill('hello from alice, edited');
  await edit.press('Enter');
  await messageByText(b, 'hello from alice, edited').filter({ hasText: '(edited)' }).waitFor();

  // Esc cancels an edit.
  await hoverAction(a, 'hello from alice, edited', 'Edit message');
  await a.getByRole('textbox', { name: 'Edit message' }).fill('never saved');
  await a.getByRole('textbox', { name: 'Edit message' }).press('Escape');
  await a.getByRole('textbox', { name: 'Edit message' }).waitFor({ state: 'detached' });
  assert.equal(await messageByText(a, 'never saved').count(), 0);

  // Delete asks first.
  await hoverAction(b, 'line two', 'Delete message');
  const dialog = b.getByRole('dialog', { name: 'Delete message?' });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
  await messageByText(a, 'This message was deleted.').waitFor();
  assert.equal(await messageByText(a, 'line two').count(), 0);
  const after = await serverMessages(alice, general.id);
  assert.equal(after.filter((m) => m.is_deleted).length, 1);

  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context().close();
  await b.context().close();
});

test('a send that failed is retried with its idempotency key: never twice', async () => {
  const a = await newPage(browser, server);
  const b = await newPage(browser, server);
  await open(a, alice, general.id);
  await open(b, bob, general.id);
  // First try: the request never reaches the server; second: it does, but
  // its answer is lost; the third goes through.
  let tries = 0;
  await a.route('**/api/v1/channels/*/messages', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    tries++;
    if (tries === 1) return route.abort('failed');
    if (tries === 2) {
      await route.fetch();
      return route.abort('failed');
    }
    return route.continue();
  });
  await composer(a).fill('retry me');
  await composer(a).press('Enter');
  await a.getByRole('button', { name: 'Retry' }).click();
  // The second try's event may bring the message before its Retry shows.
  await waitFor('the message sent or its retry offered', async () =>
    (await a.locator('[data-message-id]').filter({ hasText: 'retry me' }).count()) === 1 ||
    (await a.getByRole('button', { name: 'Retry' }).count()) === 1);
  if (await a.getByRole('button', { name: 'Retry' }).count()) await a.getByRole('button', { name: 'Retry' }).click();
  await messageByText(b, 'retry me').waitFor();
  await waitFor('no failed entry left', async () => (await a.locator('.message.failed, .message.pending').count()) === 0);
  assert.equal(await messageByText(a, 'retry me').count(), 1);
  assert.equal(await messageByText(b, 'retry me').count(), 1);
  const stored = await serverMessages(alice, general.id);
  assert.equal(stored.filter((m) => m.content === 'retry me').length, 1);
  assert.ok(tries >= 2);
  assert.deepEqual(b.errors, []);
  await a.context().close();
  await b.context().close();
});

// A small PNG made by the page's canvas, as base64.
async function pngBase64(p, colour) {
  return p.evaluate(async (c) => {
    const canvas = document.createElement('canvas');
    canvas.width = 40;
    canvas.height = 30;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = c;
    ctx.fillRect(0, 0, 40, 30);
    return canvas.toDataURL('image/png').split(',')[1];
  }, colour);
}

async function imageShown(p, name) {
  await p.waitForFunction((n) => [...document.querySelectorAll('img.attachment-image')]
    .some((img) => img.alt === n && img.complete && img.naturalWidth === 40), name, { timeout: DEADLINE_MS });
}

test('files by drag-and-drop and by the button show their preview on both sides', async () => {
  const a = await newPage(browser, server);
  const b = await newPage(browser, server);
  await open(a, alice, general.id);
  await open(b, bob, general.id);

  // Dropped onto the view: a DataTransfer holding a PNG made in the page.
  const red = await pngBase64(a, '#d22');
  await a.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
    const view = document.querySelector('.channel-view');
    view.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true, cancelable: true }));
    view.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, red);
  await a.locator('.upload-chip').filter({ hasText: 'dropped.png' }).waitFor();
  await a.locator('.upload-chip[data-state=done]').waitFor();
  await composer(a).fill('a red square');
  await composer(a).press('Enter');
  await imageShown(a, 'dropped.png');
  await imageShown(b, 'dropped.png');
  assert.equal(await a.locator('.upload-chip').count(), 0);

  // By the button (the labelled file input).
  const blue = await pngBase64(a, '#22d');
  await b.getByLabel('Attach files').setInputFiles({ name: 'chosen.png', mimeType: 'image/png', buffer: Buffer.from(blue, 'base64') });
  await b.locator('.upload-chip[data-state=done]').waitFor();
  await composer(b).press('Enter');
  await imageShown(b, 'chosen.png');
  await imageShown(a, 'chosen.png');

  // Pasted into the composer.
  const green = await pngBase64(a, '#2d2');
  await a.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'pasted.png', { type: 'image/png' }));
    document.querySelector('textarea.composer-input').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }, green);
  await a.locator('.upload-chip').filter({ hasText: 'pasted.png' }).waitFor();
  await a.locator('.upload-chip[data-state=done]').waitFor();
  await composer(a).press('Enter');
  await imageShown(b, 'pasted.png');

  const stored = await serverMessages(alice, general.id);
  const withFiles = stored.filter((m) => (m.attachments || []).length);
  assert.deepEqual(withFiles.map((m) => m.attachments[0].original_filename || m.attachments[0].filename), ['dropped.png', 'chosen.png', 'pasted.png']);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context().close();
  await b.context().close();
});

// Scrolls the history to the top until its beginning shows, counting the
// message elements all the way; returns the largest count seen.
async function scrollToBeginning(p, timeout) {
  await p.evaluate(() => { window.__maxRows = 0; });
  await p.waitForFunction(() => {
    const el = document.querySelector('.history');
    window.__maxRows = Math.max(window.__maxRows, document.querySelectorAll('[data-message-id]').length);
    if (document.querySelector('.history-start')) return true;
    el.scrollTop = 0;
    return false;
  }, null, { timeout, polling: 'raf' });
  return p.evaluate(() => window.__maxRows);
}

test('a history of 300 messages scrolls back to the first one; a link jumps to a message', async () => {
  const ch = await newChannel(alice, 'three-hundred');
  await seed(alice, ch.id, 300, (i) => `hist-${String(i).padStart(3, '0')}`);
  const stored = await serverMessages(alice, ch.id);
  assert.equal(stored.length, 300);
  const a = await newPage(browser, server);
  // History requests in flight: the view settles only once they are answered.
  let loading = 0;
  const isHistory = (r) => /\/messages(\?|$)/.test(r.url());
  a.on('request', (r) => { if (isHistory(r)) loading++; });
  for (const ev of ['requestfinished', 'requestfailed']) a.on(ev, (r) => { if (isHistory(r)) loading--; });
  await open(a, alice, ch.id);
  await messageByText(a, 'hist-299').waitFor();
  await scrollToBeginning(a, 60000);
  const first = a.locator('[data-message-id]').first();
  assert.equal(await first.getAttribute('data-message-id'), stored[0].id);
  assert.match(await first.textContent(), /hist-000/);

  // #/c/<id>/m/<msg>: loaded around it, scrolled to it, highlighted.
  const target = stored[120];
  await a.evaluate((h) => { location.hash = h; }, `#/c/${ch.id}/m/${target.id}`);
  const row = a.locator(`.history-row.highlighted [data-message-id="${target.id}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /hist-120/);
  const inView = await a.evaluate((id) => {
    const box = document.querySelector('.history').getBoundingClientRect();
    const r = document.querySelector(`[data-message-id="${id}"]`).getBoundingClientRect();
    return r.top >= box.top && r.bottom <= box.bottom;
  }, target.id);
  assert.equal(inView, true);
  assert.equal(await a.locator('.history-row.highlighted').count(), 1);
  // And forwards from there to the newest.
  await a.getByRole('button', { name: /Jump to the present/ }).click();
  await messageByText(a, 'hist-299').waitFor();

  // Reading older messages, a new one does not pull the view down: a button
  // does. (Scrolled up once the jump's pages are all in: a page answered
  // after the scroll would find the view at the bottom and keep it there.)
  await waitFor('the history to settle, then the view scrolled up', async () => {
    if (loading > 0) return false;
    // Still at the top two frames later, once the view has seen the scroll
    // (its scroll event comes a frame after, and a resize before it would
    // take the view back to the bottom).
    return a.evaluate(() => new Promise((resolve) => {
      const el = document.querySelector('.history');
      el.scrollTop = 0;
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(el.scrollTop === 0)));
    }));
  });
  await call(bob, 'POST', `/channels/${ch.id}/join`);
  await call(bob, 'POST', `/channels/${ch.id}/messages`, { content: 'news from bob' });
  const button = a.getByRole('button', { name: 'New messages ↓' });
  await button.waitFor();
  await button.click();
  await button.waitFor({ state: 'detached' });
  const visible = await a.evaluate(() => {
    const box = document.querySelector('.history').getBoundingClientRect();
    const rows = [...document.querySelectorAll('[data-message-id]')];
    const r = rows[rows.length - 1].getBoundingClientRect();
    return rows[rows.length - 1].textContent.includes('news from bob') && r.bottom <= box.bottom + 1 && r.top >= box.top;
  });
  assert.equal(visible, true);
  assert.deepEqual(a.errors, []);
  await a.context().close();
});

test('10,000 messages: scrolling to the top keeps the DOM bounded', { timeout: 600000 }, async () => {
  const ch = await newChannel(alice, 'ten-thousand');
  await seed(alice, ch.id, 10000, (i) => `bulk message ${i}`, 4);
  const oldest = await call(alice, 'GET', `/channels/${ch.id}/messages?skip=9999&limit=1`);
  const a = await newPage(browser, server);
  await open(a, alice, ch.id);
  await a.locator('[data-message-id]').first().waitFor();
  const most = await scrollToBeginning(a, 420000);
  assert.ok(most > 50, `${most} message elements at most`);
  assert.ok(most < 300, `${most} message elements at most`);
  assert.equal(await a.locator('[data-message-id]').first().getAttribute('data-message-id'), oldest.messages[0].id);
  assert.ok(await a.locator('[data-message-id]').count() < 300);
  assert.deepEqual(a.errors, []);
  await a.context().close();
});

const PAYLOADS = [
  '<img src=x onerror="window.__xss=1">',
  '<script>window.__xss=1</script>',
  '[x](javascript:window.__xss=1)',
  'javascript:window.__xss=1',
  '"><svg onload=window.__xss=1>',
];

test('markup in contents, channel names, display names and file names stays text', async () => {
  const evil = await registerUser(server, 'mallory');
  await call(evil, 'PUT', '/users/me', { display_name: PAYLOADS[0] });
  const ch = await newChannel(evil, PAYLOADS[4], { description: PAYLOADS[1] });
  await call(alice, 'POST', `/channels/${ch.id}/join`);
  for (const p of PAYLOADS) await call(evil, 'POST', `/channels/${ch.id}/messages`, { content: p });
  const form = new FormData();
  form.append('file', new Blob([Buffer.from('just text\n')], { type: 'text/plain' }), '<img src=x onerror=window.__xss=1>.txt');
  const res = await fetch(server.url + '/api/v1/files', { method: 'POST', headers: { Authorization: 'Bearer ' + evil.token }, body: form });
  assert.equal(res.status, 201, await res.clone().text());
  const file = await res.json();
  await call(evil, 'POST', `/channels/${ch.id}/messages`, { content: 'a file', attachments: [file.id] });

  const a = await newPage(browser, server);
  await open(a, alice, ch.id);
  await messageByText(a, 'a file').waitFor();
  assert.equal(await a.locator('.channel-header h1').textContent(), '#' + PAYLOADS[4]);
  assert.equal(await a.locator('.channel-topic').textContent(), PAYLOADS[1]);
  const texts = await a.locator('[data-message-id] .message-content').allTextContents();
  for (const p of PAYLOADS) assert.ok(texts.some((t) => t === p), `shown as text: ${p}`);
  assert.ok(await a.locator('.message-sender').filter({ hasText: PAYLOADS[0] }).count() > 0);
  await a.locator('.attachment').filter({ hasText: '<img src=x onerror=window.__xss=1>.txt' }).waitFor();
  const found = await a.evaluate(() => ({
    xss: window.__xss,
    img: document.querySelectorAll('img[src="x"], .channel-view img:not(.attachment-image):not(.avatar)').length,
    script: document.querySelectorAll('body script').length,
    // the only svg allowed is the drawn icon of a file card (files.jsx)
    svg: document.querySelectorAll('.channel-view svg:not(.file-card-icon), svg[onload]').length,
    jsLinks: document.querySelectorAll('a[href^="javascript"]').length,
  }));
  assert.deepEqual(found, { xss: undefined, img: 0, script: 0, svg: 0, jsLinks: 0 });
  assert.deepEqual(a.errors, []);
  await a.context().close();
});

test('formatting: links, code, bold and mentions are built as elements', async () => {
  const ch = await newChannel(bob, 'formatting');
  await call(alice, 'POST', `/channels/${ch.id}/join`);
  await call(bob, 'POST', `/channels/${ch.id}/messages`, {
    content: 'see https://example.org/a_(b). and `x < y` and **bold** for @alice\n```\nblock <b>\n```',
  });
  const a = await newPage(browser, server);
  await open(a, alice, ch.id);
  const msg = messageByText(a, 'see');
  await msg.waitFor();
  const link = msg.locator('a');
  assert.equal(await link.getAttribute('href'), 'https://example.org/a_(b)');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await msg.locator('code').first().textContent(), 'x < y');
  assert.equal(await msg.locator('.message-content strong').textContent(), 'bold');
  assert.equal(await msg.locator('.mention-me').textContent(), '@alice');
  assert.equal(await msg.locator('pre code').textContent(), 'block <b>');
  assert.match(await msg.getAttribute('class'), /mentions-me/);
  assert.deepEqual(a.errors, []);
  await a.context().close();
});

test('the channel view: no serious accessibility violation; screenshots', async () => {
  await call(bob, 'POST', `/channels/${general.id}/messages`, { content: 'Screens: **bold**, `code`, https://example.org and @alice' });
  await call(alice, 'POST', `/channels/${general.id}/messages`, { content: 'the last word before the screenshots' });
  for (const [scheme, size, viewport] of [
    ['light', 'desktop', { width: 1280, height: 800 }],
    ['dark', 'desktop', { width: 1280, height: 800 }],
    ['light', 'phone', { width: 390, height: 844 }],
    ['dark', 'phone', { width: 390, height: 844 }],
  ]) {
    const a = await newPage(browser, server, { viewport, colorScheme: scheme });
    await open(a, alice, general.id);
    await messageByText(a, 'the last word before the screenshots').waitFor();
    await composer(a).fill('a draft with @bob');
    assert.deepEqual(await axeViolations(a), [], `${scheme} ${size}`);
    await screenshot(a, `channel-view-${scheme}-${size}`);
    assert.deepEqual(a.errors, []);
    await a.context().close();
  }
});

test('a public channel is readable before joining; Join gives the composer', async () => {
  const ch = await newChannel(bob, 'open-house', { description: 'come in' });
  await call(bob, 'POST', `/channels/${ch.id}/messages`, { content: 'anyone there?' });
  const a = await newPage(browser, server);
  await open(a, alice, ch.id);
  await messageByText(a, 'anyone there?').waitFor();
  assert.equal(await composer(a).count(), 0);
  assert.match(await a.locator('.channel-members').textContent(), /^1 member$/);
  // Live while not a member (the view subscribes to the channel).
  await a.waitForFunction(() => document.querySelector('.live-state')?.dataset.state === 'online');
  await waitFor('a live message in a channel alice is not in', async () => {
    await call(bob, 'POST', `/channels/${ch.id}/messages`, { content: 'still there?' });
    return messageByText(a, 'still there?').first().waitFor({ timeout: 2000 }).then(() => true);
  });
  await a.locator('.channel-header').getByRole('button', { name: 'Join' }).click();
  await composer(a).waitFor();
  await a.locator('.channel-members').filter({ hasText: '2 members' }).waitFor();
  const members = await call(bob, 'GET', `/channels/${ch.id}/members`);
  assert.ok(members.members.some((m) => m.user_id === alice.id));
  await composer(a).fill('I am');
  await composer(a).press('Enter');
  await waitFor('the reply stored', async () => (await serverMessages(bob, ch.id)).some((m) => m.content === 'I am'));
  assert.deepEqual(a.errors, []);
  await a.context().close();
});
