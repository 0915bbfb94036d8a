// W2 of `make bench`: the first contentful paint of a page in Debian's
// chromium (headless, playwright-core), each load in a new browser context
// (an empty cache, no cookie), and of a baseline measured in the same run: a
// tiny static HTML page answered by a bare node HTTP server on loopback.
//   node scripts/bench/first_paint.mjs <url> [loads]   prints one JSON line:
//   {"page": {"median": ms, "p95": ms, "n": N}, "baseline": {...}}
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const { chromium } = createRequire(join(ROOT, 'src/web/package.json'))('playwright-core');

const url = process.argv[2];
const loads = Number(process.argv[3] || 20);
if (!url) {
  console.error('usage: node scripts/bench/first_paint.mjs <url> [loads]');
  process.exit(2);
}

const tiny = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>baseline</title></head>' +
  '<body><h1>Hello</h1><p>A tiny static page.</p></body></html>';
const hello = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(tiny) });
  res.end(tiny);
});
await new Promise((ok) => hello.listen(0, '127.0.0.1', ok));
const baseUrl = `http://127.0.0.1:${hello.address().port}/`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});

async function fcp(target) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(target, { waitUntil: 'load' });
  const ms = await page.evaluate(() => new Promise((ok) => {
    const seen = performance.getEntriesByName('first-contentful-paint');
    if (seen.length) return ok(seen[0].startTime);
    new PerformanceObserver((list) => {
      const e = list.getEntriesByName('first-contentful-paint');
      if (e.length) ok(e[0].startTime);
    }).observe({ type: 'paint', buffered: true });
  }));
  await context.close();
  return ms;
}

function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.ceil(q * v.length) - 1)];
  return { median: at(0.5), p95: at(0.95), n: v.length };
}

// Alternate the two so that both see the same machine; one warm-up each.
await fcp(url);
await fcp(baseUrl);
const page = [];
const base = [];
for (let i = 0; i < loads; i++) {
  page.push(await fcp(url));
  base.push(await fcp(baseUrl));
}
await browser.close();
hello.close();
console.log(JSON.stringify({ page: stats(page), baseline: stats(base) }));
