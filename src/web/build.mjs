// Builds the web client and the documentation pages into one directory of
// assets, and writes the two files that embed them in the binary:
//   node src/web/build.mjs <outdir>      (the Makefile runs it: build/web)
// <outdir>/dist/     the assets: pages (index.html, docs.html, redoc.html) and
//                    hashed bundles (assets/<name>-<hash>.js|css), each with
//                    .gz and .br variants when they are worth it
// <outdir>/assets.S  .incbin of every file (the bytes, read-only)
// <outdir>/assets.c  the table h_web.c serves from (path, type, ETag, variants)
// Pages are served with `Cache-Control: no-cache` and name the bundles by
// content hash, so bundles can be cached for a year.
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, gzipSync, constants as zlib } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node src/web/build.mjs <outdir>');
  process.exit(2);
}
const dist = join(out, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, 'assets'), { recursive: true });

// Each page: its URL, its HTML template (written to dist/<out>) and the entry
// points whose bundles it loads. The documentation pages are bundles of their
// own: Swagger UI and Redoc weigh far more than the client and are loaded
// only by /docs and /redoc.
const pages = [
  { url: '/', html: 'index.html', out: 'index.html', entries: { app: 'app/main.jsx' } },
  { url: '/docs', html: 'docs/docs.html', out: 'docs.html', entries: { docs: 'docs/swagger.js' } },
  { url: '/redoc', html: 'docs/redoc.html', out: 'redoc.html', entries: { redoc: 'docs/redoc.js' } },
];
// Files served as they are under a fixed name, revalidated like the pages.
const statics = [
  { url: '/favicon.svg', file: 'favicon.svg', out: 'favicon.svg' },
];

const entryPoints = {};
for (const page of pages) {
  for (const [name, file] of Object.entries(page.entries)) entryPoints[name] = join(here, file);
}

// Offline means offline: Redoc's sidebar shows its logo from a CDN. The
// plugin empties that address in Redoc's bundle (the image's error handler
// then hides it); the build fails if the string is no longer found, so an
// upgrade of Redoc is looked at again.
const offline = {
  name: 'offline',
  setup(build) {
    build.onLoad({ filter: /redoc[\\/]bundles[\\/]redoc\.browser\.lib\.js$/ }, (args) => {
      const cdn = '"https://cdn.redoc.ly/redoc/logo-mini.svg"';
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes(cdn)) throw new Error(`${args.path}: ${cdn} not found (see the offline plugin)`);
      return { contents: text.replaceAll(cdn, '""'), loader: 'js' };
    });
  },
};

const result = await esbuild.build({
  plugins: [offline],
  entryPoints,
  outdir: join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  bundle: true,
  splitting: false,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  loader: { '.svg': 'file', '.woff2': 'file', '.png': 'file' },
  // React (under Redoc) picks its production build by this.
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  logLevel: 'warning',
});

// The bundles of each entry point, by kind, as URLs.
const bundles = {};
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  if (!info.entryPoint) continue;
  const name = Object.keys(entryPoints).find((k) => entryPoints[k] === join(process.cwd(), info.entryPoint));
  const url = '/assets/' + basename(file);
  bundles[name] = bundles[name] || {};
  bundles[name].js = url;
  if (info.cssBundle) bundles[name].css = '/assets/' + basename(info.cssBundle);
}

// Pages: the template with {{name.js}} / {{name.css}} replaced by the bundles' URLs.
for (const page of pages) {
  let html = readFileSync(join(here, page.html), 'utf8');
  html = html.replace(/\{\{(\w+)\.(js|css)\}\}/g, (all, name, kind) => {
    const url = bundles[name] && bundles[name][kind];
    if (!url) throw new Error(`${page.html}: no ${kind} bundle for ${name}`);
    return url;
  });
  writeFileSync(join(dist, page.out), html);
}
for (const file of statics) writeFileSync(join(dist, file.out), readFileSync(join(here, file.file)));

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
};

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

// The table: one row per served file; a variant is kept when it saves a tenth.
const rows = [];
for (const file of walk(dist).sort()) {
  const ext = file.slice(file.lastIndexOf('.'));
  const type = types[ext];
  if (!type) throw new Error(`${file}: no content type for ${ext}`);
  const rel = relative(dist, file);
  const page = pages.find((p) => p.out === rel) || statics.find((p) => p.out === rel);
  const url = page ? page.url : '/' + rel;
  const bytes = readFileSync(file);
  const row = {
    url,
    type,
    file,
    etag: createHash('sha256').update(bytes).digest('hex').slice(0, 20),
    immutable: !page,
    size: bytes.length,
  };
  const gz = gzipSync(bytes, { level: 9 });
  if (gz.length < bytes.length * 0.9) {
    writeFileSync(file + '.gz', gz);
    row.gz = file + '.gz';
    row.gzSize = gz.length;
  }
  const br = brotliCompressSync(bytes, {
    params: { [zlib.BROTLI_PARAM_QUALITY]: 11, [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  if (br.length < bytes.length * 0.9) {
    writeFileSync(file + '.br', br);
    row.br = file + '.br';
    row.brSize = br.length;
  }
  rows.push(row);
}
rows.sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));

// assets.S: the bytes. assets.c: the table, sorted by URL for bsearch.
let asm = '/* Generated by src/web/build.mjs: the web client\'s files as read-only bytes. */\n' +
  '    .section .rodata\n';
const sym = (i, v) => `web_asset_${i}_${v}`;
rows.forEach((row, i) => {
  for (const v of ['id', 'gz', 'br']) {
    const path = v === 'id' ? row.file : row[v];
    if (!path) continue;
    asm += `    .global ${sym(i, v)}\n    .global ${sym(i, v)}_end\n    .balign 16\n` +
      `${sym(i, v)}:\n    .incbin "${path}"\n${sym(i, v)}_end:\n`;
  }
});
asm += '    .section .note.GNU-stack,"",@progbits\n';
writeFileSync(join(out, 'assets.S'), asm);

let c = '/* Generated by src/web/build.mjs: the table of the web client\'s files (h_web.c). */\n' +
  '#include <stddef.h>\n\n#include "web_assets.h"\n\n';
rows.forEach((row, i) => {
  for (const v of ['id', 'gz', 'br']) {
    if (v !== 'id' && !row[v]) continue;
    c += `extern const unsigned char ${sym(i, v)}[], ${sym(i, v)}_end[];\n`;
  }
});
const variant = (i, row, v) => (v === 'id' || row[v])
  ? `{${sym(i, v)}, ${sym(i, v)}_end}` : '{NULL, NULL}';
c += '\nconst web_asset_t web_assets[] = {\n';
rows.forEach((row, i) => {
  c += `    {${JSON.stringify(row.url)}, ${JSON.stringify(row.type)}, "\\"${row.etag}\\"", ${row.immutable ? 1 : 0},\n` +
    `     ${variant(i, row, 'id')}, ${variant(i, row, 'gz')}, ${variant(i, row, 'br')}},\n`;
});
c += '};\n\nconst size_t web_assets_count = sizeof(web_assets) / sizeof(web_assets[0]);\n';
writeFileSync(join(out, 'assets.c'), c);

// manifest.json: sizes for make bench and the budget check.
writeFileSync(join(out, 'manifest.json'), JSON.stringify(rows.map((r) => ({
  url: r.url, type: r.type, size: r.size, gzip: r.gzSize || r.size, brotli: r.brSize || r.size,
})), null, 2) + '\n');
