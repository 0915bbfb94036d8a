// The client's state: one plain object, changed only through update(), which
// hands a draft-free copy-on-write path to the listeners. Components read it
// with useStore(selector) and render again when what they selected changed.
// Each part of the app owns its slice (see the keys below) and the event
// handlers that keep it current (live.js onEvent).
import { useEffect, useState } from 'preact/hooks';

export const state = {
  me: null,            // the logged-in user (GET /users/me), null when logged out
  route: { view: 'home' }, // router.js: {view, channelId, messageId, ...}
  channels: {},        // id -> channel (GET /channels), with unread_count, mention_count
  users: {},           // id -> user, as seen in answers and events
  messages: {},        // channel id -> {list: [message, oldest first; local pending/failed ones last], hasOlder, hasNewer, loading} (history.js)
  editing: null,       // id of the message being edited inline (message.jsx)
  presence: {},        // user id -> 'online' | 'offline'
  typing: {},          // channel id -> {user id -> expiry ms}
  live: { state: 'offline', seq: 0 }, // live.js: connecting | online | offline, last seq
  panel: null,         // the side panel: {kind: 'thread', messageId} | {kind: 'search'} | null
  theme: 'system',     // settings: light | dark | system
  toast: null,         // {text, kind} shown briefly
  threads: {},         // thread.jsx: root message id -> {root, replies: [oldest first], total}
  authNotice: '',      // session.js: why the login ended (a ban, a blocked address), shown on the login page
  sidebarOpen: false,  // shell.jsx: the sidebar shown over the view at phone width
};

const listeners = new Set();

// update(s => ({channels: {...s.channels, [id]: c}})): the returned keys
// replace the state's; listeners run once per update.
export function update(fn) {
  const patch = typeof fn === 'function' ? fn(state) : fn;
  if (!patch) return;
  Object.assign(state, patch);
  listeners.forEach((l) => l());
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function useStore(selector) {
  const [value, setValue] = useState(() => selector(state));
  useEffect(() => {
    const check = () => setValue(() => selector(state));
    check();
    return subscribe(check);
  }, []);
  return value;
}

// Remember users from any answer that carries them.
export function rememberUsers(list) {
  if (!list || !list.length) return;
  update((s) => {
    const users = { ...s.users };
    for (const u of list) if (u && u.id) users[u.id] = { ...users[u.id], ...u };
    return { users };
  });
}

let toastTimer = 0;
export function toast(text, kind = 'info') {
  update({ toast: { text, kind } });
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => update({ toast: null }), 4000);
}
