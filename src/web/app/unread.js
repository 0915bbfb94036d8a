// Unread and mention counts of channels, kept in state.channels from the
// answers of GET /channels and the live events; the channel view reports
// what the user has read. To be built (issue 18); the signature is the contract.
import { api } from './api.js';
import { update } from './store.js';

// The user has read `channelId` up to `messageId` (the newest message seen):
// tells the server (POST /channels/{id}/read) and clears the channel's badge.
export function markRead(channelId, messageId) {
  update((s) => {
    const c = s.channels[channelId];
    return c ? { channels: { ...s.channels, [channelId]: { ...c, unread_count: 0, mention_count: 0 } } } : null;
  });
  return api('POST', `/channels/${encodeURIComponent(channelId)}/read`, { body: messageId ? { message_id: messageId } : {} }).catch(() => {});
}
