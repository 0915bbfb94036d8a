// Screenshots of the client's main views for review (build/screens/), light
// and dark, desktop (1280x800) and phone (390x844), over a realistic
// conversation seeded over the API: several users, a channel with a morning's
// messages and a picture. With SCREENS_UPDATE=1 the desktop light chat view
// is also copied to docs/screens/chat.png (the README's screenshot).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, newPage, registerUser, loginViaUi, screenshot, ROOT } from './lib.mjs';

let server;
let browser;
let seed;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  seed = await seedConversation();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

async function call(user, method, path, body) {
  const res = await fetch(server.url + '/api/v1' + path, {
    method,
    headers: { Authorization: 'Bearer ' + user.token, ...(body instanceof FormData ? {} : { 'Content-Type': 'application/json' }) },
    body: body instanceof FormData ? body : body && JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const idOf = (obj, key) => (obj[key] || obj.data || obj).id;

// A picture made by the browser itself (a screenshot of a drawn scene).
async function makePicture() {
  const page = await browser.newPage({ viewport: { width: 480, height: 300 } });
  await page.setContent('<body style="margin:0"><div style="width:480px;height:300px;' +
    'background:linear-gradient(#1d3b72,#e8875b 70%,#f4c27a);position:relative">' +
    '<div style="position:absolute;left:300px;top:150px;width:80px;height:80px;border-radius:50%;background:#ffd98a"></div>' +
    '<div style="position:absolute;bottom:0;width:100%;height:70px;background:#22344f"></div></div></body>');
  const png = await page.screenshot({ type: 'png' });
  await page.close();
  return png;
}

async function seedConversation() {
  const ada = await registerUser(server, 'ada'); // the first account: the admin
  const ben = await registerUser(server, 'ben');
  const chloe = await registerUser(server, 'chloe');
  await call(ada, 'PUT', '/users/me', { display_name: 'Ada Lovelace' });
  await call(ben, 'PUT', '/users/me', { display_name: 'Ben Okafor' });
  await call(chloe, 'PUT', '/users/me', { display_name: 'Chloé Martin' });
  const general = idOf(await call(ada, 'POST', '/channels', { name: 'general', description: 'Everything and nothing' }), 'channel');
  const trip = idOf(await call(ada, 'POST', '/channels', { name: 'weekend-trip', description: 'Planning the hike' }), 'channel');
  for (const u of [ben, chloe]) {
    await call(u, 'POST', `/channels/${general}/join`);
    await call(u, 'POST', `/channels/${trip}/join`);
  }
  const say = (u, ch, content, extra = {}) => call(u, 'POST', `/channels/${ch}/messages`, { content, ...extra });
  await say(ada, general, 'Good morning! The new server is up: this is Parley, our own chat.');
  await say(ben, general, 'Morning Ada. Works on my phone too.');
  await say(chloe, general, 'Nice. Is there a way to search old messages?');
  await say(ada, general, 'Yes: the search box finds words in every channel you are in.');
  await say(ben, trip, 'Saturday then? The forecast says sun all day.');
  await say(chloe, trip, 'I can drive. Three seats left.');
  const form = new FormData();
  form.append('file', new Blob([await makePicture()], { type: 'image/png' }), 'sunset-from-the-ridge.png');
  form.append('channel_id', trip);
  const file = await call(ben, 'POST', '/files', form);
  await say(ben, trip, 'The view from the ridge last time:', { attachments: [idOf(file, 'file')] });
  await say(ada, trip, 'Beautiful. Count me in, I will bring the sandwiches.');
  return { ada, general, trip };
}

const variants = [
  { scheme: 'light', size: 'desktop', viewport: { width: 1280, height: 800 } },
  { scheme: 'dark', size: 'desktop', viewport: { width: 1280, height: 800 } },
  { scheme: 'light', size: 'phone', viewport: { width: 390, height: 844 } },
  { scheme: 'dark', size: 'phone', viewport: { width: 390, height: 844 } },
];

for (const v of variants) {
  test(`screenshots of the main views, ${v.scheme}, ${v.size}`, async () => {
    const page = await newPage(browser, server, { viewport: v.viewport, colorScheme: v.scheme });
    await page.goto('/');
    await page.getByLabel('Username').waitFor();
    await screenshot(page, `build-login-${v.scheme}-${v.size}`);
    await loginViaUi(page, seed.ada);
    const views = [
      ['chat', `#/c/${seed.trip}`],
      ['search', '#/search?q=ridge'],
      ['settings', '#/settings'],
      ['admin', '#/admin'],
    ];
    for (const [name, hash] of views) {
      await page.evaluate((h) => { location.hash = h; }, hash);
      await page.waitForFunction((h) => location.hash === h, hash);
      await page.locator('.shell').waitFor();
      // Let the view's requests settle before the picture (a condition, not a guess).
      await page.waitForLoadState('networkidle');
      await screenshot(page, `build-${name}-${v.scheme}-${v.size}`);
    }
    if (v.scheme === 'light' && v.size === 'desktop' && process.env.SCREENS_UPDATE === '1') {
      mkdirSync(join(ROOT, 'docs/screens'), { recursive: true });
      copyFileSync(join(ROOT, 'build/screens/build-chat-light-desktop.png'), join(ROOT, 'docs/screens/chat.png'));
    }
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}
