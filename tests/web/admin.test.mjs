// The admin view (#/admin/<tab>) in a real browser against the real binary:
// what the UI shows is what the API answers, and what the UI does is what
// the API then shows. The first registered account is the server's admin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { startServer, launchBrowser, newPage, registerUser, loginViaUi, axeViolations, screenshot, waitFor, DEADLINE_MS } from './lib.mjs';

let server;
let browser;
let admin;
let bob;
let carol;
let channel;

// A call of the API with a user's bearer token; the parsed body (null when none).
async function call(user, method, path, body) {
  const res = await fetch(server.url + '/api/v1' + path, {
    method,
    headers: { Authorization: 'Bearer ' + user.token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return json;
}

// A logged-in admin page at #/admin/<tab>, its admin requests counted.
async function adminPage(tab, opts = {}) {
  const page = await newPage(browser, server, opts);
  page.adminRequests = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/admin')) page.adminRequests.push(r.url());
  });
  if (opts.clock) await page.clock.install();
  await loginViaUi(page, opts.user || admin);
  await openTab(page, tab);
  return page;
}

async function openTab(page, tab) {
  await page.evaluate((t) => { location.hash = '#/admin/' + t; }, tab);
  await page.locator(`.admin-body[data-tab="${tab}"]`).waitFor({ timeout: DEADLINE_MS });
}

async function noAxe(page, what) {
  assert.deepEqual(await axeViolations(page), [], `axe on ${what}`);
}

// No page error; `refused`: the status of an answer the test provoked, which
// the browser logs as a failed resource.
async function done(page, refused) {
  const expected = (e) => refused && e.includes(`status of ${refused}`);
  assert.deepEqual(page.errors.filter((e) => !expected(e)), []);
  await page.context().close();
}

// RFC 6238 TOTP of a base32 secret, for the settings test's MFA.
function totp(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30000)));
  const h = createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

before(async () => {
  server = await startServer();
  admin = await registerUser(server, 'boss');
  bob = await registerUser(server, 'bob');
  carol = await registerUser(server, 'carol');
  channel = await call(admin, 'POST', '/channels', { name: 'general' });
  await call(bob, 'POST', `/channels/${channel.id}/join`);
  for (const content of ['one', 'two', 'three']) await call(admin, 'POST', `/channels/${channel.id}/messages`, { content });
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('dashboard: the stats as cards, the charts, the status refreshed', async () => {
  const page = await adminPage('dashboard', { clock: true });
  const stats = await call(admin, 'GET', '/admin/stats');
  const card = (label) => page.locator(`.admin-card[data-stat="${label}"] .admin-card-value`);
  await card('Users').waitFor();
  assert.equal(await card('Users').textContent(), String(stats.users.total));
  assert.equal(stats.users.total, 3);
  assert.equal(await card('Messages').textContent(), String(stats.messages.total));
  assert.equal(stats.messages.total, 3);
  assert.equal(await card('Channels').textContent(), String(stats.channels.total));
  // One chart per metric, each a canvas drawn by uPlot; the messages chart counts the three.
  await waitFor('five charts', async () => (await page.locator('.admin-chart .uplot canvas').count()) === 5);
  assert.match(await page.locator('.admin-chart[data-metric="Messages"] figcaption').textContent(), /\(3 in all\)/);
  // The day switch asks the API for day buckets.
  const dayAsked = page.waitForRequest((r) => r.url().includes('/admin/stats/timeseries') && r.url().includes('bucket=day'));
  await page.getByText('Per day').click();
  await dayAsked;
  await waitFor('the day charts', async () => (await page.locator('.admin-chart .uplot canvas').count()) === 5);
  // The system status, then its refresh 30 s later (the page's clock moved on).
  await page.locator('[data-status="health"] .admin-card-value').waitFor();
  assert.equal(await page.locator('[data-status="health"] .admin-card-value').textContent(), 'healthy');
  const statusCalls = () => page.adminRequests.filter((u) => u.includes('/admin/system/status')).length;
  assert.equal(statusCalls(), 1);
  await page.clock.fastForward(31000);
  await waitFor('a second status request', () => statusCalls() >= 2);
  await noAxe(page, 'the dashboard');
  await screenshot(page, 'admin-dashboard-light-desktop');
  // Leaving the tab stops the timer: no request after another 31 s.
  await openTab(page, 'invites');
  const after = statusCalls();
  await page.clock.fastForward(31000);
  await page.locator('.admin-invites').waitFor();
  assert.equal(statusCalls(), after);
  await done(page);
});

test('dashboard and users: screenshots in dark and at phone width', async () => {
  for (const [scheme, size, viewport] of [['dark', 'desktop', { width: 1280, height: 800 }], ['light', 'phone', { width: 390, height: 844 }], ['dark', 'phone', { width: 390, height: 844 }]]) {
    const page = await adminPage('dashboard', { colorScheme: scheme, viewport });
    await waitFor('five charts', async () => (await page.locator('.admin-chart .uplot canvas').count()) === 5);
    await page.locator('[data-status="health"]').waitFor();
    await screenshot(page, `admin-dashboard-${scheme}-${size}`);
    await noAxe(page, `the dashboard, ${scheme} ${size}`);
    await openTab(page, 'users');
    await page.locator('.admin-table tr[data-row]').first().waitFor();
    await screenshot(page, `admin-users-${scheme}-${size}`);
    await noAxe(page, `the users, ${scheme} ${size}`);
    if (size === 'phone') {
      // The table is a list of cards: one row is no wider than the screen.
      const box = await page.locator('.admin-table tr[data-row]').first().boundingBox();
      assert.ok(box.width <= 390, `row width ${box.width}`);
    }
    await done(page);
  }
});

test('users: search, ban with a reason, unban, roles, mute', async () => {
  const page = await adminPage('users');
  await page.getByLabel('Search', { exact: true }).fill('bo');
  await page.getByRole('button', { name: 'Search' }).click();
  await waitFor('the search to find bob and boss only', async () => (await page.locator('.admin-table tr[data-row]').count()) === 2);
  await page.getByLabel('Search', { exact: true }).fill('bob');
  await page.getByRole('button', { name: 'Search' }).click();
  await waitFor('only bob', async () => (await page.locator('.admin-table tr[data-row]').count()) === 1);
  assert.equal(await page.locator(`tr[data-row="${bob.id}"]`).count(), 1);
  await screenshot(page, 'admin-users-light-desktop');

  await page.getByRole('button', { name: 'Manage bob' }).click();
  const dialog = page.getByRole('dialog', { name: 'Manage bob' });
  await dialog.waitFor();
  await noAxe(page, 'the user dialog');
  await dialog.getByLabel('Ban reason').fill('spamming the channel');
  await dialog.getByRole('button', { name: 'Ban', exact: true }).click();
  await dialog.getByRole('button', { name: 'Unban' }).waitFor();
  let u = await call(admin, 'GET', `/admin/users/${bob.id}`);
  assert.equal(u.is_banned, true);
  assert.equal(u.ban_reason, 'spamming the channel');
  assert.equal(u.banned_until, null);
  assert.equal(await page.locator(`tr[data-row="${bob.id}"] .admin-badge-banned`).count(), 1);

  await dialog.getByRole('button', { name: 'Unban' }).click();
  await dialog.getByLabel('Ban reason').waitFor();
  u = await call(admin, 'GET', `/admin/users/${bob.id}`);
  assert.equal(u.is_banned, false);

  await dialog.getByLabel('Mute reason').fill('cool down');
  await dialog.getByLabel('Mute duration').selectOption({ label: '1 day' });
  await dialog.getByRole('button', { name: 'Mute', exact: true }).click();
  await dialog.getByRole('button', { name: 'Unmute' }).waitFor();
  u = await call(admin, 'GET', `/admin/users/${bob.id}`);
  assert.equal(u.is_muted, true);
  assert.equal(u.mute_reason, 'cool down');
  const hours = (Date.parse(u.muted_until) - Date.now()) / 3600000;
  assert.ok(hours > 23 && hours <= 24, `muted for ${hours} h`);
  await dialog.getByRole('button', { name: 'Unmute' }).click();
  await dialog.getByLabel('Mute reason').waitFor();
  assert.equal((await call(admin, 'GET', `/admin/users/${bob.id}`)).is_muted, false);

  await dialog.getByRole('button', { name: 'Make admin' }).click();
  await dialog.getByRole('button', { name: 'Remove the admin role' }).waitFor();
  assert.deepEqual((await call(admin, 'GET', `/admin/users/${bob.id}`)).roles.sort(), ['admin', 'user']);
  await dialog.getByRole('button', { name: 'Remove the admin role' }).click();
  await dialog.getByRole('button', { name: 'Make admin' }).waitFor();
  assert.deepEqual((await call(admin, 'GET', `/admin/users/${bob.id}`)).roles, ['user']);

  // Esc closes the dialog.
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  await done(page);
});

test('users: the API\'s refusal is shown (the admin cannot ban itself)', async () => {
  const page = await adminPage('users');
  await page.getByRole('button', { name: 'Manage boss' }).click();
  const dialog = page.getByRole('dialog', { name: 'Manage boss' });
  await dialog.getByLabel('Ban reason').fill('oops');
  await dialog.getByRole('button', { name: 'Ban', exact: true }).click();
  await dialog.getByRole('alert').waitFor();
  assert.match(await dialog.getByRole('alert').textContent(), /./);
  assert.equal((await call(admin, 'GET', `/admin/users/${admin.id}`)).is_banned, false);
  await done(page, 403);
});

test('users: delete asks for the username, then the account is gone', async () => {
  const erin = await registerUser(server, 'erin');
  const page = await adminPage('users');
  await page.getByRole('button', { name: 'Manage erin' }).click();
  const dialog = page.getByRole('dialog', { name: 'Manage erin' });
  await dialog.getByRole('button', { name: 'Delete account…' }).click();
  const confirm = dialog.getByRole('button', { name: 'Delete for good' });
  assert.equal(await confirm.isDisabled(), true);
  await dialog.getByLabel('Username to confirm').fill('eri');
  assert.equal(await confirm.isDisabled(), true);
  await dialog.getByLabel('Username to confirm').fill('erin');
  await confirm.click();
  await dialog.waitFor({ state: 'detached' });
  await page.locator(`tr[data-row="${erin.id}"]`).waitFor({ state: 'detached' });
  assert.equal((await call(admin, 'GET', `/admin/users/${erin.id}`)).is_deleted, true);
  await done(page);
});

test('audit log: the ban made through the UI is there, with its reason', async () => {
  const page = await adminPage('audit');
  await page.getByLabel('Action').fill('user.ban');
  await page.getByRole('button', { name: 'Filter' }).click();
  const row = page.locator('.admin-table tr[data-row]', { hasText: 'spamming the channel' });
  await row.waitFor();
  assert.match(await row.textContent(), new RegExp(bob.id));
  assert.match(await row.textContent(), /boss/);
  await waitFor('only user.ban entries', async () => {
    const actions = await page.locator('.admin-table tr[data-row] td[data-label="Action"]').allTextContents();
    return actions.length > 0 && actions.every((a) => a === 'user.ban');
  });
  await noAxe(page, 'the audit log');
  await done(page);
});

test('reports: a report shows with its message, and resolving it empties the open queue', async () => {
  const msg = await call(admin, 'POST', `/channels/${channel.id}/messages`, { content: 'buy <img src=x onerror=alert(1)> now' });
  const report = await call(bob, 'POST', `/messages/${msg.id}/report`, { reason: 'spam link' });
  const page = await adminPage('reports');
  const card = page.locator(`[data-report="${report.id}"]`);
  await card.waitFor();
  assert.equal(await card.locator('.admin-report-content').textContent(), 'buy <img src=x onerror=alert(1)> now');
  await waitFor('the reporter\'s name', async () => /Reported by bob/.test(await card.textContent()));
  assert.match(await card.textContent(), /spam link/);
  await noAxe(page, 'the reports');
  await card.getByLabel('Action').selectOption('dismiss');
  await card.getByRole('button', { name: 'Resolve' }).click();
  await card.waitFor({ state: 'detached' });
  await page.getByText('No open report.').waitFor();
  const open = await call(admin, 'GET', '/admin/reports?status=open');
  assert.equal(open.total, 0);
  const all = await call(admin, 'GET', '/admin/reports');
  assert.equal(all.reports.find((r) => r.id === report.id).status, 'dismissed');
  await done(page);
});

test('blocked addresses: add, the API\'s refusal with its suggestion, delete', async () => {
  const page = await adminPage('blocked');
  await page.getByLabel('Address or range').fill('203.0.113.0/24');
  await page.getByLabel('Reason').fill('scraper');
  await page.getByRole('button', { name: 'Block', exact: true }).click();
  await page.locator('.admin-table tr[data-row]', { hasText: '203.0.113.0/24' }).waitFor();
  let list = await call(admin, 'GET', '/admin/blocked-ips');
  assert.deepEqual(list.blocked_ips.map((b) => [b.ip, b.reason]), [['203.0.113.0/24', 'scraper']]);

  await page.getByLabel('Address or range').fill('10.1.2.3/8');
  await page.getByRole('button', { name: 'Block', exact: true }).click();
  await page.getByRole('alert').waitFor();
  assert.match(await page.getByRole('alert').textContent(), /10\.0\.0\.0\/8/);
  await page.getByRole('button', { name: 'Use 10.0.0.0/8' }).click();
  assert.equal(await page.getByLabel('Address or range').inputValue(), '10.0.0.0/8');
  await noAxe(page, 'the blocked addresses');

  await page.getByRole('button', { name: 'Unblock 203.0.113.0/24' }).click();
  await page.getByText('No address is blocked.').waitFor();
  list = await call(admin, 'GET', '/admin/blocked-ips');
  assert.equal(list.total, 0);
  await done(page, 422);
});

test('invites: create with uses, the link shown, revoke', async () => {
  const page = await adminPage('invites');
  await page.getByLabel('Uses (empty: unlimited)').fill('2');
  await page.getByRole('button', { name: 'Create invite' }).click();
  const link = page.getByLabel('New invite link');
  await link.waitFor();
  const list = await call(admin, 'GET', '/admin/invites');
  assert.equal(list.total, 1);
  const inv = list.invites[0];
  assert.equal(inv.max_uses, 2);
  assert.equal(await link.inputValue(), inv.url);
  const row = page.locator(`tr[data-row="${inv.code}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), /0 of 2/);
  await noAxe(page, 'the invites');
  await row.getByRole('button', { name: /^Revoke/ }).click();
  await row.waitFor({ state: 'detached' });
  assert.equal((await call(admin, 'GET', '/admin/invites')).total, 0);
  await done(page);
});

test('backups: the download link answers a tar archive; store, list, delete', async () => {
  const page = await adminPage('backups');
  const href = await page.getByRole('link', { name: 'Download a backup now' }).getAttribute('href');
  assert.equal(href, '/api/v1/admin/backup?include_files=true');
  const got = await page.evaluate(async (url) => {
    const res = await fetch(url, { credentials: 'same-origin' });
    const buf = new Uint8Array(await res.arrayBuffer());
    let s = '';
    for (const b of buf) s += String.fromCharCode(b);
    return { status: res.status, type: res.headers.get('content-type'), body: btoa(s) };
  }, href);
  assert.equal(got.status, 200);
  assert.equal(got.type, 'application/zstd');
  const tar = spawnSync('zstd', ['-dc'], { input: Buffer.from(got.body, 'base64') });
  assert.equal(tar.status, 0, String(tar.stderr));
  assert.equal(tar.stdout.subarray(257, 262).toString(), 'ustar');

  await page.getByRole('button', { name: 'Store a backup on the server' }).click();
  const row = page.locator('.admin-table tr[data-row]');
  await row.waitFor();
  const stored = await call(admin, 'GET', '/admin/backups');
  assert.equal(stored.backups.length, 1);
  const name = stored.backups[0].name;
  assert.equal(await row.getAttribute('data-row'), name);
  assert.equal(await row.getByRole('link', { name: 'Download' }).getAttribute('href'), `/api/v1/admin/backups/${name}`);
  await noAxe(page, 'the backups');
  await row.getByRole('button', { name: `Delete ${name}` }).click();
  await row.getByRole('button', { name: 'Delete for good' }).click();
  await page.getByText('No stored backup.').waitFor();
  assert.equal((await call(admin, 'GET', '/admin/backups')).backups.length, 0);
  await done(page);
});

test('a non-admin sees the refusal and makes no admin request', async () => {
  const page = await newPage(browser, server);
  const adminCalls = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/admin')) adminCalls.push(r.url());
  });
  await loginViaUi(page, carol);
  await page.evaluate(() => { location.hash = '#/admin/users'; });
  await page.getByText('This needs the admin role').waitFor();
  assert.equal(await page.locator('.admin-tabs').count(), 0);
  await noAxe(page, 'the refusal');
  assert.deepEqual(adminCalls, []);
  await done(page);
});

// Last: turning on require_mfa_for_admins needs an admin with MFA.
test('settings: a number and a boolean saved; an out-of-bounds value refused at its field', async () => {
  const dana = await registerUser(server, 'dana');
  await call(admin, 'PUT', `/admin/users/${dana.id}/roles`, { roles: ['user', 'admin'] });
  const page = await adminPage('settings', { user: dana });
  // Two-factor on for dana (after the login: the session goes on).
  const setup = await call(dana, 'POST', '/auth/mfa/setup');
  await call(dana, 'POST', '/auth/mfa/enable', { code: totp(setup.secret) });

  const sent = [];
  page.on('request', (r) => {
    if (r.method() === 'PATCH' && r.url().includes('/admin/settings')) sent.push(JSON.parse(r.postData()));
  });
  await page.getByLabel('Message retention (days)').fill('30');
  await page.getByLabel('Require two-factor authentication for admins').check();
  await page.getByLabel('auth', { exact: true }).fill('7');
  await noAxe(page, 'the settings');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await waitFor('the settings saved', async () => {
    const s = await call(dana, 'GET', '/admin/settings');
    return s.message_retention_days === 30 && s.require_mfa_for_admins === true && s.rate_limits.auth === 7;
  });
  // Only what changed was sent.
  assert.deepEqual(sent, [{ message_retention_days: 30, require_mfa_for_admins: true, rate_limits: { auth: 7 } }]);
  await page.getByRole('button', { name: 'Save changes' }).and(page.locator(':disabled')).waitFor();

  await page.getByLabel('Audit log: days kept').fill('99999');
  await page.getByRole('button', { name: 'Save changes' }).click();
  const fieldError = page.locator('[data-setting="audit_max_days"] .admin-field-error');
  await fieldError.waitFor();
  assert.match(await fieldError.textContent(), /36500/);
  assert.equal(await page.getByLabel('Audit log: days kept').getAttribute('aria-invalid'), 'true');
  await waitFor('the focus at the refused field', () => page.evaluate(() => document.activeElement && document.activeElement.id === 'admin-setting-audit_max_days'));
  assert.equal((await call(dana, 'GET', '/admin/settings')).audit_max_days, 0);
  await screenshot(page, 'admin-settings-light-desktop');

  // Put things back for an admin without MFA.
  await call(dana, 'PATCH', '/admin/settings', { require_mfa_for_admins: false });
  await done(page, 422);
});
