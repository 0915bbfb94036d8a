// The client's one way to the server: fetch with the session cookie, the
// CSRF token on every write, JSON in and out, and the API's error shape
// turned into an ApiError. Nothing here keeps a token: the session is the
// HttpOnly cookie the server set at login (docs/operations.md, "Browsers").

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || 'HTTP_' + status;
    this.details = err.details || {};
  }
}

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)parley_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

// Listeners told when an answer says the login is over (401), so the app
// can show the login page; the ban and logout paths end up here too.
const sessionEndListeners = new Set();
export function onSessionEnd(fn) {
  sessionEndListeners.add(fn);
  return () => sessionEndListeners.delete(fn);
}

function query(params) {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// api('GET', '/channels', {query: {limit: 50}}) -> the parsed JSON body.
// Options: query, body (JSON), headers, signal, raw (the Response itself).
export async function api(method, path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  const res = await fetch(API + path + query(opts.query), {
    method,
    headers,
    body,
    credentials: 'same-origin',
    signal: opts.signal,
  });
  if (opts.raw) return res;
  const text = await res.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    const error = new ApiError(res.status, json);
    if (res.status === 401 && !opts.noSessionEnd) sessionEndListeners.forEach((fn) => fn(error));
    throw error;
  }
  return json;
}

// The list of a paged answer, whatever key the route uses for it.
export function items(page) {
  if (Array.isArray(page)) return page;
  if (!page) return [];
  for (const k of ['data', 'items', 'results', 'messages', 'channels', 'users', 'files']) {
    if (Array.isArray(page[k])) return page[k];
  }
  return [];
}
