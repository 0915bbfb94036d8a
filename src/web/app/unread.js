// Unread and mention counts of channels, kept in state.channels from the
// answers of GET /channels (unread_count) and the live events: a message of
// someone else in a channel not open, or open while the tab is hidden,
// counts one unread; one that mentions me (its `mentions` holds my id) also
// one mention (the server keeps no mention count: the client counts them
// from the events it sees, and forgets them when the channel is read).
// The channel view reports what the user has read with markRead().
import { api } from './api.js';
import { onEvent } from './live.js';
import { state, update } from './store.js';
import { ensureChannel } from './core-channels.js';
import { notifyMessage } from './notify.js';

// The user has read `channelId` up to `messageId` (the newest message seen):
// tells the server (POST /channels/{id}/read) and clears the channel's badge.
export function markRead(channelId, messageId) {
  update((s) => {
    const c = s.channels[channelId];
    return c ? { channels: { ...s.channels, [channelId]: { ...c, unread_count: 0, mention_count: 0 } } } : null;
  });
  return api('POST', `/channels/${encodeURIComponent(channelId)}/read`, { body: messageId ? { message_id: messageId } : {} }).catch(() => {});
}

export function isOpen(channelId) {
  return state.route.view === 'channel' && state.route.channelId === channelId;
}

export function mentionsMe(message) {
  return !!(state.me && Array.isArray(message.mentions) && message.mentions.includes(state.me.id));
}

onEvent('message.created', async (message) => {
  if (!message || !message.channel_id) return;
  const mine = state.me && message.user_id === state.me.id;
  const known = !!state.channels[message.channel_id];
  const c = await ensureChannel(message.channel_id);
  if (!c) return;
  // A channel just fetched already counts this message in its unread_count.
  const counts = !mine && known && (!isOpen(message.channel_id) || document.hidden);
  update((s) => {
    const old = s.channels[message.channel_id];
    if (!old) return null;
    const next = { ...old, last_message: message };
    if (counts && old.is_member !== false) {
      next.unread_count = Math.min(1000, (old.unread_count || 0) + 1);
      if (mentionsMe(message)) next.mention_count = (old.mention_count || 0) + 1;
    }
    return { channels: { ...s.channels, [message.channel_id]: next } };
  });
  if (!mine && (mentionsMe(message) || c.type === 'direct')) notifyMessage(message, c);
});
