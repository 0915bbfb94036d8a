// Presence dots and the typing indicator, kept current from the live events
// (presence, typing). To be built (issue 18); the signatures are the contract.
import { useStore } from './store.js';

export function PresenceDot({ userId }) {
  const status = useStore((s) => s.presence[userId] || 'offline');
  return <span class={'presence presence-' + status} role="img" aria-label={status} />;
}

// "alice is typing…" for a channel (not counting oneself).
export function TypingIndicator({ channelId }) {
  return <div class="typing" aria-live="polite" />;
}

// The composer calls this on each input; it sends typing_start at most every
// few seconds and typing_stop when the text is sent or cleared.
export function noteTyping(channelId, hasText) {}
