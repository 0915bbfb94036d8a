// The "files" part of the web client: search (form, filters, <mark>ed
// matches, paging, the jump link), attachments in the results (image
// previews, file cards, the lightbox) and the settings (profile, avatar,
// theme, notifications, password, two-factor with its QR code, API keys).
// Data is seeded over the API; what the user sees is asserted in the page
// and, where it matters, the server's state over the API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';
import {
  startServer, launchBrowser, newPage, registerUser, loginViaUi, axeViolations, screenshot, waitFor, DEADLINE_MS,
} from './lib.mjs';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await registerUser(server); // the first account is the admin; the tests' users are ordinary ones
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

const XSS_NAME = '<img src=x onerror=window.__xss=1>.png';

async function call(user, method, path, body, headers = {}) {
  const h = { Authorization: 'Bearer ' + user.token, ...headers };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const res = await fetch(server.url + '/api/v1' + path, { method, headers: h, body: payload });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function ok(user, method, path, body) {
  const r = await call(user, method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

// A valid RGB PNG of w x h pixels.
function png(w, h, rgb = [200, 60, 60]) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw.set(rgb, y * (w * 3 + 1) + 1 + x * 3);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

async function upload(user, name, bytes, type) {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), name);
  return ok(user, 'POST', '/files', form);
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret.
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 15;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, '0');
}

async function apiLogin(username, password, extra = {}) {
  const res = await fetch(server.url + '/api/v1/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password, ...extra }),
  });
  return { status: res.status, body: await res.json() };
}

async function noViolations(page, what) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], what + ': ' + JSON.stringify(v, null, 1));
}

// Waits until the focus is inside `selector` (a dialog moves it there once shown).
function focusIn(page, selector) {
  return waitFor('the focus in ' + selector, () => page.evaluate((sel) => {
    const el = document.querySelector(sel);
    return !!el && el.contains(document.activeElement);
  }, selector));
}

// The page's errors but the browser's own line for an answer of `status`
// that the test caused on purpose (Chromium logs every failed request).
function unexpectedErrors(page, ...statuses) {
  return page.errors.filter((e) => !statuses.some((s) => e.includes(`the server responded with a status of ${s} `)));
}

async function xssFired(page) {
  return page.evaluate(() => window.__xss);
}

test('search: matches are marked, the channel filter narrows, a result links to the message', async () => {
  const user = await registerUser(server);
  const tag = 'z' + process.pid;
  await ok(user, 'PUT', '/users/me', { display_name: '<img src=x onerror=window.__xss=3> Sam' });
  const alpha = await ok(user, 'POST', '/channels', { name: 'alpha-' + tag });
  const beta = await ok(user, 'POST', '/channels', { name: 'beta-' + tag });
  const m1 = await ok(user, 'POST', `/channels/${alpha.id}/messages`, { content: `the quick brown fox ${tag}` });
  await ok(user, 'POST', `/channels/${beta.id}/messages`, { content: `a quick grey wolf ${tag}` });
  await ok(user, 'POST', `/channels/${beta.id}/messages`, { content: `slow turtle ${tag}` });
  await ok(user, 'POST', `/channels/${alpha.id}/messages`, { content: `<img src=x onerror=window.__xss=2> payload ${tag}` });

  const page = await newPage(browser, server);
  await loginViaUi(page, user);
  await page.goto('/#/search');
  const query = page.getByRole('searchbox', { name: 'Search messages' });
  await query.fill(`quick ${tag}`);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  const hits = page.locator('.search-hit');
  await waitFor('two results', async () => (await hits.count()) === 2);
  assert.match(await page.evaluate(() => location.hash), new RegExp(`^#/search\\?q=quick`));
  // Every matched word is a <mark> element; the other words are plain text.
  const marks = await page.locator('.search-hit mark').allTextContents();
  assert.deepEqual(marks.map((m) => m.toLowerCase()).sort(), ['quick', 'quick', tag, tag].sort());
  const texts = await page.locator('.search-hit-text').allTextContents();
  assert.ok(texts.includes(`the quick brown fox ${tag}`), JSON.stringify(texts));
  // The sender's name with markup is text.
  assert.equal(await page.locator('.search-hit-sender').first().textContent(), '<img src=x onerror=window.__xss=3> Sam');
  await page.getByRole('status').filter({ hasText: '2 messages found' }).waitFor();
  await noViolations(page, 'search results');
  await screenshot(page, 'files-search-light-desktop');

  // The channel filter narrows the results to alpha's message.
  await page.getByLabel('Channel', { exact: true }).selectOption({ label: '#alpha-' + tag });
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await waitFor('one result', async () => (await hits.count()) === 1 && (await page.evaluate(() => location.hash)).includes('channel='));
  assert.equal(await hits.first().locator('.search-hit-channel').textContent(), '#alpha-' + tag);

  // The payload in a message's content is shown as text.
  await query.fill(`onerror ${tag}`);
  await page.getByLabel('Channel', { exact: true }).selectOption({ label: 'All channels' });
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.locator('.search-hit-text', { hasText: 'payload' }).waitFor();
  assert.equal(await page.locator('.search-hit-text').first().textContent(), `<img src=x onerror=window.__xss=2> payload ${tag}`);
  assert.equal(await page.locator('.search-hit img.attachment-image, .search-hit-text img').count(), 0);

  // No match: the empty state.
  await query.fill('nosuchword' + tag);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByText('No messages match.').waitFor();

  // A result is a link to the message in its channel.
  await page.goto(`/#/search?q=${encodeURIComponent('brown ' + tag)}`);
  await waitFor('the brown fox', async () => (await hits.count()) === 1);
  await hits.first().locator('a.search-hit-link').click();
  await waitFor('the message link', async () => (await page.evaluate(() => location.hash)) === `#/c/${alpha.id}/m/${m1.id}`);
  assert.equal(await xssFired(page), undefined);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('search: paging with "More results", the sender and date filters', async () => {
  const user = await registerUser(server);
  const other = await registerUser(server);
  const tag = 'p' + process.pid;
  const ch = await ok(user, 'POST', '/channels', { name: 'paging-' + tag });
  await ok(other, 'POST', `/channels/${ch.id}/join`, {});
  for (let i = 0; i < 23; i++) await ok(user, 'POST', `/channels/${ch.id}/messages`, { content: `entry ${i} ${tag}` });
  await ok(other, 'POST', `/channels/${ch.id}/messages`, { content: `entry from the other ${tag}` });
  const page = await newPage(browser, server, { viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
  await loginViaUi(page, user);
  await page.goto(`/#/search?q=${tag}`);
  const hits = page.locator('.search-hit');
  await waitFor('the first page', async () => (await hits.count()) === 20);
  await page.getByRole('button', { name: 'More results' }).click();
  await waitFor('the second page', async () => (await hits.count()) === 24);
  assert.equal(await page.getByRole('button', { name: 'More results' }).count(), 0);
  await screenshot(page, 'files-search-dark-phone');
  // Sender: only the other's message.
  await page.getByLabel('Sender').fill(other.username);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await waitFor('one message of the other', async () => (await hits.count()) === 1);
  assert.equal(await page.locator('.search-hit-text').textContent(), `entry from the other ${tag}`);
  // An unknown sender: an error, not a crash.
  await page.getByLabel('Sender').fill('nobody' + tag);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByRole('alert').filter({ hasText: 'No user is named' }).waitFor();
  // Dates: a range in the past finds nothing, today's finds them.
  await page.getByLabel('Sender').fill('');
  await page.getByLabel('From').fill('2020-01-01');
  await page.getByLabel('To').fill('2020-01-31');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByText('No messages match.').waitFor();
  const today = new Date().toISOString().slice(0, 10);
  await page.getByLabel('To').fill(today);
  await page.getByLabel('From').fill(today);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await waitFor('today\'s messages', async () => (await hits.count()) === 20);
  await noViolations(page, 'search on a phone');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('attachments in results: image previews, a file card, the lightbox', async () => {
  const user = await registerUser(server);
  const tag = 'a' + process.pid;
  const ch = await ok(user, 'POST', '/channels', { name: 'pictures-' + tag });
  const pic = await upload(user, 'sunset.png', png(300, 200), 'image/png');
  const evil = await upload(user, XSS_NAME, png(40, 80, [40, 120, 200]), 'image/png');
  const notes = await upload(user, 'notes.txt', Buffer.from('hello notes\n'.repeat(100)), 'text/plain');
  assert.equal(pic.width, 300);
  await ok(user, 'POST', `/channels/${ch.id}/messages`, { content: `holiday ${tag}`, attachments: [pic.id, evil.id, notes.id] });

  const page = await newPage(browser, server);
  await loginViaUi(page, user);
  await page.goto(`/#/search?q=${encodeURIComponent('holiday ' + tag)}`);
  const previews = page.locator('.search-hit img.attachment-image');
  await waitFor('two previews', async () => (await previews.count()) === 2);
  // Loaded under the page's CSP, sized from the file's width/height.
  await waitFor('the previews to load', () => previews.evaluateAll((imgs) => imgs.every((i) => i.complete && i.naturalWidth > 0)));
  assert.deepEqual(await previews.first().evaluate((i) => [i.getAttribute('width'), i.getAttribute('height'), i.naturalWidth]), ['300', '200', 300]);
  assert.equal(await previews.nth(1).getAttribute('alt'), XSS_NAME);
  // The text file: a card with its name, size and type, and a download link.
  const card = page.locator('.search-hit .file-card');
  await card.waitFor();
  assert.equal(await card.locator('.file-card-name').textContent(), 'notes.txt');
  assert.equal(await card.locator('.attachment-size').textContent(), '1.2 KB');
  assert.match(await card.locator('.attachment-type').textContent(), /^text\/plain/);
  assert.equal(await card.locator('a').getAttribute('href'), `/api/v1/files/${notes.id}/download`);
  await noViolations(page, 'attachments');
  await screenshot(page, 'files-attachments-light-desktop');

  // The lightbox: opens on the clicked image, arrows go to the other, Esc closes, focus returns.
  const thumb = page.getByRole('button', { name: 'Open image sunset.png' });
  await thumb.click();
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await focusIn(page, '[role=dialog]');
  assert.equal(await dialog.locator('h2').textContent(), 'sunset.png');
  assert.equal(await dialog.locator('.lightbox-count').textContent(), '1 of 2');
  await waitFor('the full image', () => dialog.locator('img.lightbox-image').evaluate((i) => i.complete && i.naturalWidth === 300));
  assert.equal(await dialog.getByRole('link', { name: 'Download' }).getAttribute('href'), `/api/v1/files/${pic.id}/download`);
  await noViolations(page, 'the lightbox');
  await screenshot(page, 'files-lightbox-light-desktop');
  await page.keyboard.press('ArrowRight');
  await waitFor('the second image', async () => (await dialog.locator('h2').textContent()) === XSS_NAME);
  assert.equal(await dialog.locator('.lightbox-count').textContent(), '2 of 2');
  await page.getByRole('button', { name: 'Next image' }).click();
  await waitFor('back to the first', async () => (await dialog.locator('h2').textContent()) === 'sunset.png');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await thumb.evaluate((el) => el === document.activeElement), true);
  // On a phone, in the dark theme: the lightbox fits the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await waitFor('the dark theme', () => page.evaluate(() => document.documentElement.dataset.theme === 'dark'));
  await thumb.click();
  await focusIn(page, '[role=dialog]');
  const box = await dialog.locator('img.lightbox-image').boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, JSON.stringify(box));
  await screenshot(page, 'files-lightbox-dark-phone');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await xssFired(page), undefined);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('settings: profile, avatar, markup shown as text', async () => {
  const user = await registerUser(server);
  const page = await newPage(browser, server);
  await loginViaUi(page, user);
  await page.goto('/#/settings/profile');
  const nameInput = page.getByLabel('Display name');
  await nameInput.fill('<b>Bold</b> Ana');
  await page.getByLabel('Bio').fill('<script>window.__xss=4</script> likes tea');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await page.getByText('Profile saved.').waitFor();
  const me = await ok(user, 'GET', '/users/me');
  assert.equal(me.display_name, '<b>Bold</b> Ana');
  assert.equal(me.bio, '<script>window.__xss=4</script> likes tea');
  // After a reload the fields show the saved values as text.
  await page.reload();
  await page.getByLabel('Display name').waitFor();
  assert.equal(await page.getByLabel('Display name').inputValue(), '<b>Bold</b> Ana');
  // Shown as text where others would see it, not as markup.
  const preview = page.getByRole('group', { name: 'How others see you' });
  await waitFor('the preview', async () => (await preview.locator('.profile-preview-name').textContent()) === '<b>Bold</b> Ana');
  assert.equal(await preview.locator('.profile-preview-bio').textContent(), '<script>window.__xss=4</script> likes tea');
  assert.equal(await page.locator('.settings-view b, .settings-view script').count(), 0);

  // Avatar: a PNG through the file input; the API's user then has avatar_url.
  await page.getByLabel('Upload an image').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png(64, 64, [20, 160, 90]) });
  await page.getByText('Avatar updated.').waitFor();
  const after = await ok(user, 'GET', '/users/me');
  assert.match(after.avatar_url, /^\/api\/v1\/files\/[^/]+\/download$/);
  const img = page.locator('.avatar-row img.avatar');
  await waitFor('the avatar image', async () => (await img.getAttribute('src')) === after.avatar_url);
  await waitFor('the avatar to load', () => img.evaluate((i) => i.complete && i.naturalWidth === 64));
  // A file that is no image is refused with a clear text.
  await page.getByLabel('Upload an image').setInputFiles({ name: 'not.png', mimeType: 'image/png', buffer: Buffer.from('just text, not a picture') });
  await page.getByRole('alert').filter({ hasText: 'not allowed' }).waitFor();
  assert.equal((await ok(user, 'GET', '/users/me')).avatar_url, after.avatar_url);
  await noViolations(page, 'profile');
  await screenshot(page, 'files-settings-profile-light-desktop');
  await page.getByRole('button', { name: 'Remove avatar' }).click();
  await page.getByText('Avatar removed.').waitFor();
  assert.ok(!(await ok(user, 'GET', '/users/me')).avatar_url);
  assert.equal(await xssFired(page), undefined);
  assert.deepEqual(unexpectedErrors(page, 415), []);
  await page.context().close();
});

test('settings: theme light, dark and system; notifications', async () => {
  const user = await registerUser(server);
  const page = await newPage(browser, server, { colorScheme: 'light' });
  await page.context().grantPermissions(['notifications']);
  await loginViaUi(page, user);
  await page.goto('/#/settings/appearance');
  const theme = () => page.evaluate(() => document.documentElement.dataset.theme);
  await page.getByLabel('Dark').check();
  await waitFor('the dark theme', async () => (await theme()) === 'dark');
  assert.equal(await page.evaluate(() => localStorage.getItem('parley.theme')), 'dark');
  await noViolations(page, 'appearance, dark');
  await screenshot(page, 'files-settings-appearance-dark-desktop');
  // Kept across a reload.
  await page.reload();
  await page.getByLabel('Dark').waitFor();
  assert.equal(await theme(), 'dark');
  assert.equal(await page.getByLabel('Dark').isChecked(), true);
  await page.getByLabel('Light').check();
  await waitFor('the light theme', async () => (await theme()) === 'light');
  // System: follows the context's colour scheme, also when it changes.
  await page.getByLabel('Same as the system').check();
  await waitFor('system = light', async () => (await theme()) === 'light');
  await page.emulateMedia({ colorScheme: 'dark' });
  await waitFor('system = dark', async () => (await theme()) === 'dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await waitFor('system = light again', async () => (await theme()) === 'light');
  await noViolations(page, 'appearance, light');

  await page.getByRole('link', { name: 'Notifications' }).click();
  const box = page.getByRole('checkbox', { name: /Notify me/ });
  await box.check();
  await page.getByText('Notifications are on.').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('parley.notify')), 'on');
  await box.uncheck();
  await page.getByText('Notifications are off.').waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('parley.notify')), 'off');
  await noViolations(page, 'notifications');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('settings: change password, two-factor with a QR code', async () => {
  const user = await registerUser(server);
  const page = await newPage(browser, server, { viewport: { width: 390, height: 844 } });
  await loginViaUi(page, user);
  await page.goto('/#/settings/security');
  const fresh = 'a new passphrase ' + user.username;
  await page.getByLabel('Current password').fill(user.password);
  await page.getByLabel('New password', { exact: true }).fill(fresh);
  await page.getByLabel('Repeat the new password').fill(fresh);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed.').waitFor();
  assert.equal((await apiLogin(user.username, fresh)).status, 200);
  assert.equal((await apiLogin(user.username, user.password)).status, 401);
  // A wrong current password: an error.
  await page.getByLabel('Current password').fill('not the password');
  await page.getByLabel('New password', { exact: true }).fill(fresh + '2');
  await page.getByLabel('Repeat the new password').fill(fresh + '2');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByRole('alert').filter({ hasText: 'not right' }).waitFor();
  await noViolations(page, 'security');

  await page.getByRole('button', { name: 'Set up two-factor' }).click();
  const qr = page.getByRole('img', { name: 'QR code of the two-factor secret' });
  await qr.waitFor();
  assert.ok(await qr.locator('rect').count() > 20, 'the QR code has modules');
  const secret = (await page.locator('.mfa-secret').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}=*$/);
  await noViolations(page, 'two-factor setup');
  await screenshot(page, 'files-settings-mfa-light-phone');
  await page.getByLabel('Code from your app').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on two-factor' }).click();
  await page.getByText('Two-factor authentication is on:').waitFor();
  // The server's state: a password login now asks for the code...
  const asked = await apiLogin(user.username, fresh);
  assert.equal(asked.status, 401);
  assert.equal(asked.body.error.code, 'MFA_REQUIRED');
  // ...and the page, loaded again, shows two-factor on (GET /users/me).
  await page.reload();
  await page.getByRole('button', { name: 'Turn off two-factor' }).waitFor();
  assert.equal(await page.locator('.mfa-state strong').textContent(), 'on');
  assert.deepEqual(unexpectedErrors(page, 401), []);
  await page.context().close();
});

test('settings: API keys are created (shown once, working) and revoked', async () => {
  const user = await registerUser(server);
  const page = await newPage(browser, server, { colorScheme: 'dark' });
  await loginViaUi(page, user);
  await page.goto('/#/settings/api-keys');
  await page.getByText('No keys yet.').waitFor();
  await page.getByLabel('Name').fill('deploy bot');
  await page.getByLabel('Write').check();
  await page.getByRole('button', { name: 'Create key' }).click();
  const secretInput = page.getByLabel('The new API key');
  await secretInput.waitFor();
  const key = await secretInput.inputValue();
  assert.match(key, /^plx_/);
  const list = page.getByRole('list', { name: 'Your API keys' });
  await list.getByText('deploy bot').waitFor();
  assert.match(await list.locator('.api-key-meta').textContent(), /read \+ write · expires/);
  const withKey = () => fetch(server.url + '/api/v1/users/me', { headers: { 'X-API-Key': key } }).then((r) => r.status);
  assert.equal(await withKey(), 200);
  const keys = await ok(user, 'GET', '/auth/api-keys');
  assert.equal(keys.api_keys.length, 1);
  assert.ok(keys.api_keys[0].expires_at, 'the key expires');
  await noViolations(page, 'api keys');
  await screenshot(page, 'files-settings-apikeys-dark-desktop');
  // Shown once: gone after "Done" and after a reload.
  await page.getByRole('button', { name: 'Done' }).click();
  assert.equal(await secretInput.count(), 0);
  // Revoke, after a confirmation (Esc keeps it).
  await page.getByRole('button', { name: 'Revoke deploy bot' }).click();
  await page.getByRole('dialog').waitFor();
  await focusIn(page, '[role=dialog]');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  assert.equal(await withKey(), 200);
  await page.getByRole('button', { name: 'Revoke deploy bot' }).click();
  await page.getByRole('button', { name: 'Revoke key' }).click();
  await page.getByText('Key “deploy bot” revoked.').waitFor();
  await page.getByText('No keys yet.').waitFor({ timeout: DEADLINE_MS });
  assert.equal(await withKey(), 401);
  assert.equal((await ok(user, 'GET', '/auth/api-keys')).api_keys.length, 0);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('uploads: a file over the server\'s limit is refused with the limit, the next one without sending', async () => {
  const small = await startServer({ args: ['--max-upload-bytes', '4096'] });
  try {
    await registerUser(small);
    const user = await registerUser(small);
    const page = await newPage(browser, small, { viewport: { width: 390, height: 844 }, colorScheme: 'dark' });
    await loginViaUi(page, user);
    await page.goto('/#/settings/profile');
    const big = png(200, 200); // about 1 KB compressed: make it large with noise
    const noisy = Buffer.concat([big, Buffer.alloc(8192, 7)]);
    const uploads = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/v1/users/me/avatar')) uploads.push(r.url());
    });
    await page.getByLabel('Upload an image').setInputFiles({ name: 'big.png', mimeType: 'image/png', buffer: noisy });
    await page.getByRole('alert').filter({ hasText: 'big.png is too large (the limit is 4.0 KB).' }).waitFor();
    assert.equal(uploads.length, 1);
    await page.getByLabel('Upload an image').setInputFiles({ name: 'big2.png', mimeType: 'image/png', buffer: noisy });
    await page.getByRole('alert').filter({ hasText: 'big2.png is too large (the limit is 4.0 KB).' }).waitFor();
    assert.equal(uploads.length, 1, 'the second file was not sent');
    const res = await fetch(small.url + '/api/v1/users/me', { headers: { Authorization: 'Bearer ' + user.token } });
    assert.equal(res.status, 200);
    assert.ok(!(await res.json()).avatar_url, 'no avatar was stored');
    await screenshot(page, 'files-settings-profile-dark-phone');
    assert.deepEqual(unexpectedErrors(page, 413), []);
    await page.context().close();
  } finally {
    await small.stop();
  }
});
