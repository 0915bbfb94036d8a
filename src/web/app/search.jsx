// SearchView (route #/search?q=&channel=&sender=&from=&to=): the search form
// with its filters, GET /search/messages, results with the matched words as
// <mark> elements (built as nodes from the API's highlighted content, never
// parsed as HTML), each result a link to #/c/<channel>/m/<message> with its
// message's attachments, and "More results" for the next page.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, items } from './api.js';
import { useStore } from './store.js';
import { channelHash, navigate } from './router.js';
import { Avatar, displayName, formatDay, formatTime } from './ui.jsx';
import { Attachments } from './files.jsx';
import './search.css';

export const SEARCH_PAGE = 20;

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };
function unescapeText(s) {
  return s.replace(/&(?:amp|lt|gt|quot|#39);/g, (e) => ENTITIES[e]);
}

// The search API's content: HTML-escaped text where the matched words are
// wrapped in <mark>…</mark> (h_search.c). Returns the pieces as
// [{text, mark}]: the tags are split off, the rest unescaped to plain text.
export function highlightParts(content) {
  const parts = [];
  String(content || '').split(/(<mark>|<\/mark>)/).reduce((inMark, piece) => {
    if (piece === '<mark>') return true;
    if (piece === '</mark>') return false;
    if (piece) parts.push({ text: unescapeText(piece), mark: inMark });
    return inMark;
  }, false);
  return parts;
}

// The highlighted content as Preact nodes: text and <mark> elements.
export function Highlighted({ content }) {
  return highlightParts(content).map((p, i) => (p.mark ? <mark key={i}>{p.text}</mark> : p.text));
}

// The route's parameters as a search hash (empty values left out).
export function searchHash(params) {
  const q = new URLSearchParams();
  for (const k of ['q', 'channel', 'sender', 'from', 'to']) if (params[k]) q.set(k, params[k]);
  const s = q.toString();
  return '#/search' + (s ? '?' + s : '');
}

// The channels the caller can search in: the sidebar's list when it is
// loaded, else the API's first page.
function useChannelList() {
  const known = useStore((s) => s.channels);
  const [fetched, setFetched] = useState(null);
  const have = known && Object.keys(known).length > 0;
  useEffect(() => {
    if (have || fetched) return;
    api('GET', '/channels', { query: { limit: 100 } }).then((p) => setFetched(items(p)), () => setFetched([]));
  }, [have]);
  const list = have ? Object.values(known) : fetched || [];
  return list.slice().sort((a, b) => channelLabel(a).localeCompare(channelLabel(b)));
}

function channelLabel(c) {
  if (!c) return '';
  if (c.type === 'direct') return c.name || 'direct message';
  return '#' + (c.name || c.id);
}

// The id of a username: GET /users?search= (a 404 of /users/by-username
// would be a console error for a typo), the exact name among the matches.
async function senderId(username) {
  const page = await api('GET', '/users', { query: { search: username, limit: 100, fields: 'id,username' } });
  const want = username.toLowerCase();
  const user = items(page).find((u) => (u.username || '').toLowerCase() === want);
  if (!user) throw new Error(`No user is named “${username}”.`);
  return user.id;
}

// One page of results for the route's parameters.
async function searchPage(params, page) {
  const query = { q: params.q, page, limit: SEARCH_PAGE };
  if (params.channel) query.channel_id = params.channel;
  if (params.sender) query.sender_id = await senderId(params.sender.replace(/^@/, ''));
  if (params.from) query.date_from = params.from;
  if (params.to) query.date_to = params.to;
  return api('GET', '/search/messages', { query });
}

// The attachments of the results' messages (the search answer has none):
// GET /messages/{id}?fields=attachments each, in parallel.
async function attachmentsOf(results) {
  const out = {};
  await Promise.all(results.map(async (r) => {
    try {
      const m = await api('GET', '/messages/' + encodeURIComponent(r.message_id), { query: { fields: 'attachments' } });
      if (m.attachments && m.attachments.length) out[r.message_id] = m.attachments;
    } catch {
      // a message deleted since: shown without its files
    }
  }));
  return out;
}

function SearchForm({ params, channels }) {
  const submit = (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const next = {};
    for (const k of ['q', 'channel', 'sender', 'from', 'to']) next[k] = String(f.get(k) || '').trim();
    navigate(searchHash(next));
  };
  // Keyed by the route so the fields show the route's values after a navigation.
  return (
    <form class="search-form" role="search" aria-label="Search messages" onSubmit={submit} key={searchHash(params)}>
      <div class="search-query">
        <label class="visually-hidden" for="search-q">Search messages</label>
        <input id="search-q" name="q" type="search" defaultValue={params.q || ''} placeholder="Search messages"
          required maxLength={1000} autocomplete="off" />
        <button type="submit">Search</button>
      </div>
      <fieldset class="search-filters">
        <legend class="visually-hidden">Filters</legend>
        <div class="search-filter">
          <label for="search-channel">Channel</label>
          <select id="search-channel" name="channel">
            <option value="">All channels</option>
            {channels.map((c) => <option key={c.id} value={c.id} selected={c.id === params.channel}>{channelLabel(c)}</option>)}
          </select>
        </div>
        <div class="search-filter">
          <label for="search-sender">Sender</label>
          <input id="search-sender" name="sender" defaultValue={params.sender || ''} placeholder="username" autocomplete="off"
            autocapitalize="off" spellcheck={false} />
        </div>
        <div class="search-filter">
          <label for="search-from">From</label>
          <input id="search-from" name="from" type="date" defaultValue={params.from || ''} />
        </div>
        <div class="search-filter">
          <label for="search-to">To</label>
          <input id="search-to" name="to" type="date" defaultValue={params.to || ''} />
        </div>
      </fieldset>
    </form>
  );
}

function Result({ hit, files }) {
  const sender = hit.sender || {};
  return (
    <li class="search-hit" data-message-id={hit.message_id}>
      <a class="search-hit-link" href={channelHash(hit.channel_id, hit.message_id)}>
        <span class="search-hit-head">
          <Avatar user={sender} size={24} />
          <strong class="search-hit-sender">{displayName(sender)}</strong>
          <span class="search-hit-channel">{hit.channel_name ? '#' + hit.channel_name : 'direct message'}</span>
          <time dateTime={hit.created_at}>{formatDay(hit.created_at) + ', ' + formatTime(hit.created_at)}</time>
        </span>
        <span class="search-hit-text"><Highlighted content={hit.content} /></span>
      </a>
      {files && <Attachments files={files} />}
    </li>
  );
}

export function SearchView({ params = {} }) {
  const channels = useChannelList();
  const [res, setRes] = useState({ status: 'idle', results: [], files: {}, page: 0, pages: 0, total: 0 });
  const run = useRef(0);
  const key = searchHash(params);

  const load = async (page) => {
    const mine = ++run.current;
    setRes((r) => ({ ...r, status: page === 1 ? 'loading' : 'more', error: '' }));
    try {
      const answer = await searchPage(params, page);
      const list = answer.results || [];
      const files = await attachmentsOf(list);
      if (mine !== run.current) return;
      setRes((r) => ({
        status: 'done',
        results: page === 1 ? list : r.results.concat(list),
        files: page === 1 ? files : { ...r.files, ...files },
        page,
        pages: answer.pages || 0,
        total: answer.total || 0,
        truncated: !!answer.truncated,
      }));
    } catch (err) {
      if (mine !== run.current) return;
      setRes((r) => ({ ...r, status: 'error', error: err.message || 'The search failed.' }));
    }
  };

  useEffect(() => {
    if (params.q) load(1);
    else setRes({ status: 'idle', results: [], files: {}, page: 0, pages: 0, total: 0 });
  }, [key]);

  return (
    <section class="search-view" aria-labelledby="search-title">
      <header class="view-head"><h1 id="search-title">Search</h1></header>
      <SearchForm params={params} channels={channels} />
      <div class="search-status" role="status">
        {res.status === 'loading' && 'Searching…'}
        {res.status === 'done' && res.results.length > 0 &&
          `${res.total}${res.truncated ? '+' : ''} ${res.total === 1 ? 'message' : 'messages'} found`}
        {res.status === 'done' && res.results.length === 0 && 'No messages match.'}
        {res.status === 'idle' && 'Type words to find messages; every word must occur.'}
      </div>
      {res.status === 'error' && <p class="error" role="alert">{res.error}</p>}
      {res.results.length > 0 && (
        <ol class="search-results" aria-label="Search results">
          {res.results.map((hit) => <Result key={hit.message_id} hit={hit} files={res.files[hit.message_id]} />)}
        </ol>
      )}
      {res.page > 0 && res.page < res.pages && res.status !== 'error' && (
        <button type="button" class="search-more" disabled={res.status === 'more'} onClick={() => load(res.page + 1)}>
          {res.status === 'more' ? 'Loading…' : 'More results'}
        </button>
      )}
    </section>
  );
}
