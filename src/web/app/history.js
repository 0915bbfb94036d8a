// Channel histories: the messages slice of the store and everything that
// changes it. state.messages[channelId] = {list, hasOlder, hasNewer, loading}:
// list holds the loaded messages oldest first (ids sort in creation order),
// then the messages being sent (pending: true, or failed: true) at the end;
// hasOlder / hasNewer say whether the server has more before / after the
// list (hasNewer only after a jump into the past); loading: a page is on its
// way. Other parts replace a message object by id (reactions) and keep the shape.
//   loadLatest, loadOlder, loadNewer, loadAround: pages of GET .../messages
//   sendMessage, retrySend, editMessage, deleteMessage: the writes
// The live events (message.created/updated/deleted, resync) are applied here.
import { api } from './api.js';
import { state, update, rememberUsers } from './store.js';
import { onEvent } from './live.js';

const PAGE = 50;
const BIG_PAGE = 100;

function path(channelId) {
  return `/channels/${encodeURIComponent(channelId)}/messages`;
}

export function slice(channelId) {
  return state.messages[channelId] || { list: [], hasOlder: false, hasNewer: false, loading: false };
}

function setSlice(channelId, fn) {
  update((s) => {
    const cur = s.messages[channelId] || { list: [], hasOlder: false, hasNewer: false, loading: false };
    const next = fn(cur);
    if (!next || next === cur) return null;
    return { messages: { ...s.messages, [channelId]: next } };
  });
}

function senders(list) {
  rememberUsers(list.map((m) => m.sender).filter(Boolean));
}

const isLocal = (m) => m.pending || m.failed;

// Inserts or replaces server messages in a list, keeping the order by id and
// the local (pending/failed) entries at the end.
function merge(list, incoming) {
  const byId = new Map(incoming.map((m) => [m.id, m]));
  let out = list.map((m) => (byId.has(m.id) ? byId.get(m.id) : m));
  const known = new Set(list.map((m) => m.id));
  const fresh = incoming.filter((m) => !known.has(m.id));
  if (!fresh.length) return out;
  const server = out.filter((m) => !isLocal(m));
  const local = out.filter(isLocal);
  server.push(...fresh);
  // Already in order when the fresh ones are all newer (the usual case).
  const sorted = server.every((m, i) => i === 0 || server[i - 1].id < m.id);
  if (!sorted) server.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return server.concat(local);
}

const loads = new Map(); // channel id -> the page request running

function guarded(channelId, fn) {
  if (loads.get(channelId)) return loads.get(channelId);
  setSlice(channelId, (c) => ({ ...c, loading: true }));
  const p = fn()
    .catch((err) => {
      setSlice(channelId, (c) => ({ ...c, error: err.message }));
    })
    .finally(() => {
      loads.delete(channelId);
      setSlice(channelId, (c) => ({ ...c, loading: false }));
    });
  loads.set(channelId, p);
  return p;
}

// The newest page: the history as the channel opens.
export function loadLatest(channelId) {
  loads.delete(channelId);
  return guarded(channelId, async () => {
    const page = await api('GET', path(channelId), { query: { limit: PAGE } });
    const list = page.messages || [];
    senders(list);
    setSlice(channelId, (c) => ({
      ...c,
      list: list.concat(c.list.filter(isLocal)),
      hasOlder: !!page.has_more,
      hasNewer: false,
      error: '',
    }));
  });
}

export function loadOlder(channelId) {
  const c = slice(channelId);
  const first = c.list.find((m) => !isLocal(m));
  if (!first || !c.hasOlder) return Promise.resolve();
  return guarded(channelId, async () => {
    const page = await api('GET', path(channelId), { query: { limit: BIG_PAGE, before: first.id } });
    const list = page.messages || [];
    senders(list);
    setSlice(channelId, (cur) => ({ ...cur, list: merge(cur.list, list), hasOlder: !!page.has_more }));
  });
}

export function loadNewer(channelId) {
  const c = slice(channelId);
  const server = c.list.filter((m) => !isLocal(m));
  const last = server[server.length - 1];
  if (!last || !c.hasNewer) return Promise.resolve();
  return guarded(channelId, async () => {
    const page = await api('GET', path(channelId), { query: { limit: BIG_PAGE, after: last.id } });
    const list = page.messages || [];
    senders(list);
    setSlice(channelId, (cur) => ({ ...cur, list: merge(cur.list, list), hasNewer: !!page.has_more }));
  });
}

// The history around one message (a jump from search or a link): the pages
// just before and just after it. Resolves to false when there is no such
// message in this channel.
export function loadAround(channelId, messageId) {
  loads.delete(channelId);
  let found = true;
  return guarded(channelId, async () => {
    let target;
    try {
      target = await api('GET', `/messages/${encodeURIComponent(messageId)}`);
    } catch {
      target = null;
    }
    if (!target || target.channel_id !== channelId) {
      found = false;
      const page = await api('GET', path(channelId), { query: { limit: PAGE } });
      setSlice(channelId, (c) => ({ ...c, list: page.messages || [], hasOlder: !!page.has_more, hasNewer: false }));
      return;
    }
    const [before, after] = await Promise.all([
      api('GET', path(channelId), { query: { limit: PAGE, before: messageId } }),
      api('GET', path(channelId), { query: { limit: PAGE, after: messageId } }),
    ]);
    const list = [...(before.messages || []), target, ...(after.messages || [])];
    senders(list);
    setSlice(channelId, (c) => ({
      ...c,
      list: list.concat(c.list.filter(isLocal)),
      hasOlder: !!before.has_more,
      hasNewer: !!after.has_more,
      error: '',
    }));
  }).then(() => found);
}

// A server message (an answer or an event) into its channel's history. A
// pending entry of mine with the same text is that message (its event can
// come before the answer to the POST): it is replaced, never shown twice.
export function applyMessage(msg) {
  if (!msg || !msg.id || !msg.channel_id) return;
  if (msg.sender) rememberUsers([msg.sender]);
  setSlice(msg.channel_id, (c) => {
    if (c.list.some((m) => m.id === msg.id)) return { ...c, list: merge(c.list, [msg]) };
    if (!state.messages[msg.channel_id]) return null; // not loaded: it comes with the first page
    let list = c.list;
    if (state.me && msg.user_id === state.me.id) {
      const i = list.findIndex((m) => isLocal(m) && (m.content || '').trim() === (msg.content || '').trim() &&
        (m.attachments || []).length === (msg.attachments || []).length);
      if (i >= 0) list = list.filter((_, j) => j !== i);
    }
    if (c.hasNewer) return list === c.list ? null : { ...c, list }; // a gap: it comes with loadNewer
    return { ...c, list: merge(list, [msg]) };
  });
}

function applyDeleted(data) {
  const id = data.id || data.message_id;
  if (!id || !data.channel_id) return;
  setSlice(data.channel_id, (c) => {
    const i = c.list.findIndex((m) => m.id === id);
    if (i < 0) return null;
    const list = c.list.slice();
    list[i] = { ...list[i], is_deleted: true, content: '', attachments: [], reactions: [] };
    return { ...c, list };
  });
}

onEvent('message.created', (m) => applyMessage(m.message || m));
onEvent('message.updated', (m) => {
  const msg = m.message || m;
  // An edit only replaces what is loaded.
  if (state.messages[msg.channel_id] && state.messages[msg.channel_id].list.some((x) => x.id === msg.id)) applyMessage(msg);
});
onEvent('message.deleted', applyDeleted);
// After a gap the live connection could not fill: every history is reloaded
// when next shown; the open one at once (ChannelView reloads a missing slice).
onEvent('resync', () => {
  update({ messages: {} });
});

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2);
}

// Sends a message: shown at once as pending, replaced by the server's. The
// idempotency key goes with every try of the same message (retrySend), so a
// retry after a lost answer returns the first message instead of a second.
// attachments: the API's file objects (already uploaded).
export function sendMessage(channelId, content, attachments = []) {
  const key = newKey();
  const me = state.me || {};
  const entry = {
    id: 'local:' + key,
    localKey: key,
    pending: true,
    channel_id: channelId,
    user_id: me.id,
    sender: { id: me.id, username: me.username, display_name: me.display_name, avatar_url: me.avatar_url },
    content,
    created_at: new Date().toISOString(),
    attachments,
    reactions: [],
    mentions: [],
  };
  setSlice(channelId, (c) => ({ ...c, list: c.list.concat([entry]) }));
  return post(channelId, entry);
}

export function retrySend(channelId, localKey) {
  const entry = slice(channelId).list.find((m) => m.localKey === localKey);
  if (!entry) return Promise.resolve();
  setSlice(channelId, (c) => ({ ...c, list: c.list.map((m) => (m.localKey === localKey ? { ...m, pending: true, failed: false, error: '' } : m)) }));
  return post(channelId, entry);
}

export function discardFailed(channelId, localKey) {
  setSlice(channelId, (c) => ({ ...c, list: c.list.filter((m) => m.localKey !== localKey) }));
}

async function post(channelId, entry) {
  const body = { content: entry.content, idempotency_key: entry.localKey };
  if (entry.attachments && entry.attachments.length) body.attachments = entry.attachments.map((f) => f.id);
  try {
    const msg = await api('POST', path(channelId), { body });
    setSlice(channelId, (c) => {
      const list = c.list.filter((m) => m.localKey !== entry.localKey);
      if (list.some((m) => m.id === msg.id) || c.hasNewer) return { ...c, list };
      return { ...c, list: merge(list, [msg]) };
    });
    return msg;
  } catch (err) {
    setSlice(channelId, (c) => ({
      ...c,
      list: c.list.map((m) => (m.localKey === entry.localKey ? { ...m, pending: false, failed: true, error: err.message } : m)),
    }));
    return null;
  }
}

export async function editMessage(message, content) {
  const msg = await api('PUT', `/messages/${encodeURIComponent(message.id)}`, { body: { content } });
  applyMessage(msg);
  return msg;
}

export async function deleteMessage(message) {
  await api('DELETE', `/messages/${encodeURIComponent(message.id)}`);
  applyDeleted({ id: message.id, channel_id: message.channel_id });
}

// The newest message of the channel that is on the server (for read markers).
export function newestId(channelId) {
  const c = slice(channelId);
  if (c.hasNewer) return null;
  for (let i = c.list.length - 1; i >= 0; i--) if (!isLocal(c.list[i])) return c.list[i].id;
  return null;
}
