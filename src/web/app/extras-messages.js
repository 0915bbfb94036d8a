// Changing one message wherever the client holds it: a channel's history
// (state.messages[channelId].list) and the threads (state.threads[rootId]:
// the root and its replies). Reactions and threads keep both current from
// the live events and from the server's answers.
import { state, update } from './store.js';

// Replaces message `id` of `channelId` by fn(old) (fn returns the new object,
// or the same one for no change) in every place it is held.
export function patchMessage(channelId, id, fn) {
  update((s) => {
    const patch = {};
    const hist = s.messages[channelId];
    if (hist && hist.list) {
      const i = hist.list.findIndex((m) => m.id === id);
      if (i >= 0) {
        const next = fn(hist.list[i]);
        if (next !== hist.list[i]) {
          const list = hist.list.slice();
          list[i] = next;
          patch.messages = { ...s.messages, [channelId]: { ...hist, list } };
        }
      }
    }
    let threads = null;
    for (const [rootId, t] of Object.entries(s.threads || {})) {
      let changed = null;
      if (t.root && t.root.id === id) {
        const root = fn(t.root);
        if (root !== t.root) changed = { ...t, root };
      }
      const i = t.replies ? t.replies.findIndex((m) => m.id === id) : -1;
      if (i >= 0) {
        const next = fn(t.replies[i]);
        if (next !== t.replies[i]) {
          const replies = t.replies.slice();
          replies[i] = next;
          changed = { ...(changed || t), replies };
        }
      }
      if (changed) {
        threads = threads || { ...s.threads };
        threads[rootId] = changed;
      }
    }
    if (threads) patch.threads = threads;
    return Object.keys(patch).length ? patch : null;
  });
}

// Puts the server's copy of a message (an answer or a message.updated event)
// in place of the one held.
export function replaceMessage(message) {
  if (message && message.id) patchMessage(message.channel_id, message.id, () => message);
}

// The logged-in user's id, or '' when logged out.
export function myId() {
  return (state.me && state.me.id) || '';
}
