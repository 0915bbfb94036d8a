// The documentation pages: /docs (Swagger UI) and /redoc (Redoc) render the
// server's OpenAPI document from the binary itself, offline (every request
// the page makes goes to the server's own origin), without a script error or
// a CSP violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, screenshot, axeViolations, DEADLINE_MS } from './lib.mjs';

let server;
let browser;
let loginSummary;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const doc = await (await fetch(server.url + '/api/v1/openapi.json')).json();
  loginSummary = doc.paths['/api/v1/auth/login'].post.summary;
  assert.ok(loginSummary, 'the login operation has a summary');
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

// A page that records every request that leaves the server's origin.
async function docsPage(opts) {
  const page = await newPage(browser, server, opts);
  page.foreign = [];
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(server.url + '/') && !url.startsWith('data:') && !url.startsWith('blob:')) page.foreign.push(url);
  });
  return page;
}

for (const [path, name] of [['/docs', 'swagger'], ['/redoc', 'redoc']]) {
  test(`${path} renders the operations of the OpenAPI document`, async () => {
    const page = await docsPage();
    const res = await page.goto(path);
    assert.equal(res.status(), 200);
    const csp = res.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /unsafe-eval/);
    await page.getByText(loginSummary, { exact: true }).filter({ visible: true }).first().waitFor({ timeout: DEADLINE_MS });
    // More than one operation: the register operation's summary too.
    const doc = await (await fetch(server.url + '/api/v1/openapi.json')).json();
    await page.getByText(doc.paths['/api/v1/auth/register'].post.summary, { exact: true }).filter({ visible: true }).first().waitFor({ timeout: DEADLINE_MS });
    assert.equal(await page.getByRole('link', { name: 'Client', exact: true }).getAttribute('href'), '/');
    if (path === '/docs') {
      // Swagger UI needs no exception to the client's policy.
      assert.doesNotMatch(csp, /unsafe-inline/);
      await page.getByText(loginSummary, { exact: true }).filter({ visible: true }).first().click();
      await page.getByRole('button', { name: 'Try it out' }).waitFor({ timeout: DEADLINE_MS });
    } else {
      // Redoc's injected <style> elements need 'unsafe-inline' for styles, nothing more.
      assert.match(csp, /style-src 'self' 'unsafe-inline';/);
    }
    // Our part of the page (the header with its links); Swagger UI's and
    // Redoc's own markup has upstream findings (docs/web.md).
    assert.deepEqual(await axeViolations(page, '.docs-header'), []);
    await screenshot(page, `docs-${name}-light-desktop`);
    assert.deepEqual(page.foreign, []);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
}

test('/docs and /redoc work at phone width', async () => {
  for (const [path, name] of [['/docs', 'swagger'], ['/redoc', 'redoc']]) {
    const page = await docsPage({ viewport: { width: 390, height: 844 } });
    await page.goto(path);
    await page.getByText(loginSummary, { exact: true }).filter({ visible: true }).first().waitFor({ timeout: DEADLINE_MS });
    await screenshot(page, `docs-${name}-light-phone`);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  }
});
