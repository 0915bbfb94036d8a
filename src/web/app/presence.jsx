// Presence dots and the typing indicator, kept current from the live events
// (presence {user_id, status}, typing {channel_id, user_id, is_typing}).
// The initial status comes from the users' `status` (core-channels.js
// rememberPresence). A typing entry expires 8 s after its last event (as
// the server's own), so a lost typing_stop never leaves it showing.
import { useEffect, useState } from 'preact/hooks';
import { onEvent, sendFrame } from './live.js';
import { state, update, useStore } from './store.js';
import { displayName } from './ui.jsx';
import { ensureUser } from './core-channels.js';
import './presence.css';

const TYPING_TTL_MS = 8000;
const TYPING_RESEND_MS = 3000;

onEvent('presence', (data) => {
  if (!data.user_id) return;
  update((s) => ({ presence: { ...s.presence, [data.user_id]: data.status === 'online' ? 'online' : 'offline' } }));
});

function setTyping(channelId, userId, until) {
  update((s) => {
    const forChannel = { ...(s.typing[channelId] || {}) };
    if (until) forChannel[userId] = until;
    else delete forChannel[userId];
    return { typing: { ...s.typing, [channelId]: forChannel } };
  });
}

onEvent('typing', (data) => {
  if (!data.channel_id || !data.user_id || (state.me && data.user_id === state.me.id)) return;
  setTyping(data.channel_id, data.user_id, data.is_typing === false ? 0 : Date.now() + TYPING_TTL_MS);
  if (data.is_typing !== false) ensureUser(data.user_id);
});

// Someone who posted has stopped typing.
onEvent('message.created', (m) => {
  if (m && m.channel_id && m.user_id && state.typing[m.channel_id] && state.typing[m.channel_id][m.user_id]) {
    setTyping(m.channel_id, m.user_id, 0);
  }
});

export function PresenceDot({ userId }) {
  const status = useStore((s) => s.presence[userId] || 'offline');
  return <span class={'presence presence-' + status} role="img" aria-label={status} title={status} data-user-id={userId} />;
}

// "alice is typing…", "alice and bob are typing…", "several people are typing…".
export function typingText(names) {
  if (!names.length) return '';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
  return 'Several people are typing…';
}

// "alice is typing…" for a channel (not counting oneself).
export function TypingIndicator({ channelId }) {
  const entries = useStore((s) => s.typing[channelId] || null);
  const users = useStore((s) => s.users);
  const [now, setNow] = useState(Date.now());
  const live = Object.entries(entries || {}).filter(([, until]) => until > now);
  // Re-render when the next entry expires (a clock for display, not a wait).
  useEffect(() => {
    if (!live.length) return undefined;
    const next = Math.min(...live.map(([, until]) => until)) - Date.now();
    const t = setTimeout(() => setNow(Date.now()), Math.max(50, next + 10));
    return () => clearTimeout(t);
  }, [entries, now]);
  useEffect(() => setNow(Date.now()), [entries]);
  const names = live.map(([id]) => displayName(users[id] || { username: 'someone' }));
  return <div class="typing" aria-live="polite">{typingText(names)}</div>;
}

// The composer calls this on each input; it sends typing_start at most every
// 3 s while there is text, and typing_stop when the text is sent or cleared.
const typingSent = new Map(); // channel id -> time of the last typing_start
export function noteTyping(channelId, hasText) {
  if (!channelId) return;
  const last = typingSent.get(channelId);
  if (hasText) {
    if (last && Date.now() - last < TYPING_RESEND_MS) return;
    if (sendFrame({ type: 'typing_start', channel_id: channelId })) typingSent.set(channelId, Date.now());
  } else if (last) {
    typingSent.delete(channelId);
    sendFrame({ type: 'typing_stop', channel_id: channelId });
  }
}
