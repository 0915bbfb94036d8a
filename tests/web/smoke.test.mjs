// The smoke set `make test` runs: the client loads from the binary, a user
// logs in through the form, the page has no script error and no serious
// accessibility violation; /docs and /redoc render the OpenAPI document.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, registerUser, loginViaUi, axeViolations, DEADLINE_MS } from './lib.mjs';

let server;
let browser;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test('the client loads, logs in and shows the chat', async () => {
  const user = await registerUser(server);
  const page = await newPage(browser, server);
  await loginViaUi(page, user);
  assert.equal(await page.title(), 'Parley');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('the login page has no serious accessibility violation', async () => {
  const page = await newPage(browser, server);
  await page.goto('/');
  await page.getByLabel('Username').waitFor();
  assert.deepEqual(await axeViolations(page), []);
  await page.context().close();
});

test('the documentation pages render the OpenAPI document', async () => {
  const doc = await (await fetch(server.url + '/api/v1/openapi.json')).json();
  const summary = doc.paths['/api/v1/auth/login'].post.summary;
  for (const path of ['/docs', '/redoc']) {
    const page = await newPage(browser, server);
    await page.goto(path);
    await page.getByText(summary, { exact: true }).filter({ visible: true }).first().waitFor({ timeout: DEADLINE_MS });
    assert.deepEqual(page.errors, [], path);
    await page.context().close();
  }
});
