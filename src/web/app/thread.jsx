// The thread side panel: a message, its replies, a composer for the thread.
// To be built (issue 18); the signatures are the contract.
import { update } from './store.js';

// Opens the side panel on the thread of `messageId` (shell.jsx renders it).
export function openThread(messageId) {
  update({ panel: { kind: 'thread', messageId } });
}

export function ThreadPanel({ messageId }) {
  return <aside class="panel" aria-label="Thread"><p>Thread of {messageId}</p></aside>;
}
