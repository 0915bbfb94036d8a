// Reactions under a message and the emoji picker that adds one. A pill per
// emoji (its count; pressed when I am among those who reacted; a click
// toggles mine), and "Add reaction" opening the picker. The live events
// reaction.added / reaction.removed keep every copy of the message current
// (the channel's history and the threads: extras-messages.js).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { onEvent } from './live.js';
import { rememberUsers, state, toast, useStore } from './store.js';
import { displayName } from './ui.jsx';
import { emojiInfo } from './emoji.js';
import { EmojiPicker } from './extras-picker.jsx';
import { myId, patchMessage, replaceMessage } from './extras-messages.js';
import './reactions.css';

export { EmojiPicker };

// A reaction event applied to a message: that emoji's count as the server
// says, the user added to or removed from its users (twice is once).
export function applyReactionEvent(message, data, added) {
  const list = message.reactions || [];
  const i = list.findIndex((r) => r.emoji === data.emoji);
  const old = i >= 0 ? list[i] : { emoji: data.emoji, count: 0, users: [] };
  const others = (old.users || []).filter((u) => u !== data.user_id);
  const users = added ? [...others, data.user_id] : others;
  const count = typeof data.count === 'number' ? data.count : users.length;
  const next = { ...old, count, users };
  const reactions = list.slice();
  if (i >= 0) {
    if (count > 0) reactions[i] = next;
    else reactions.splice(i, 1);
  } else if (count > 0) reactions.push(next);
  return { ...message, reactions };
}

onEvent('reaction.added', (d) => patchMessage(d.channel_id, d.message_id, (m) => applyReactionEvent(m, d, true)));
onEvent('reaction.removed', (d) => patchMessage(d.channel_id, d.message_id, (m) => applyReactionEvent(m, d, false)));

// Adds (or removes) my reaction `emoji` on `message`; the answer is the
// message as it now is.
export async function toggleReaction(message, emoji) {
  const mine = (message.reactions || []).some((r) => r.emoji === emoji && (r.users || []).includes(myId()));
  const path = `/messages/${encodeURIComponent(message.id)}/reactions`;
  try {
    const now = mine
      ? await api('DELETE', `${path}/${encodeURIComponent(emoji)}`)
      : await api('POST', path, { body: { emoji } });
    replaceMessage(now);
  } catch (err) {
    toast(err.status === 409 ? err.message : 'Could not change the reaction: ' + err.message, 'error');
  }
}

// Names of users the client has not seen yet are asked for once.
const asked = new Set();
function wantUsers(ids) {
  for (const id of ids) {
    if (state.users[id] || asked.has(id)) continue;
    asked.add(id);
    api('GET', `/users/${encodeURIComponent(id)}`)
      .then((u) => rememberUsers([u]))
      .catch(() => {});
  }
}

function whoReacted(r, users) {
  const me = myId();
  const names = (r.users || []).map((id) => (id === me ? 'you' : displayName(users[id])));
  const shown = names.slice(0, 10).join(', ');
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown;
}

// message: the API's message object (message.reactions: [{emoji, count, users}]).
export function Reactions({ message }) {
  const list = message.reactions || [];
  const users = useStore((s) => s.users);
  const me = useStore((s) => (s.me && s.me.id) || '');
  const [open, setOpen] = useState(false);
  const button = useRef(null);
  useEffect(() => wantUsers(list.flatMap((r) => r.users || [])), [list]);
  if (message.is_deleted) return null;
  return (
    <div class={'reactions' + (list.length ? '' : ' reactions-empty')}>
      {list.map((r) => {
        const pressed = (r.users || []).includes(me);
        const label = `${emojiInfo(r.emoji).name}: ${r.count}, by ${whoReacted(r, users)}`;
        return (
          <button
            type="button"
            key={r.emoji}
            class={'reaction' + (pressed ? ' reaction-mine' : '')}
            aria-pressed={pressed ? 'true' : 'false'}
            aria-label={label}
            title={label}
            onClick={() => toggleReaction(message, r.emoji)}
          >
            <span class="reaction-emoji" aria-hidden="true">{r.emoji}</span>
            <span class="reaction-count" aria-hidden="true">{r.count}</span>
          </button>
        );
      })}
      <span class="reaction-add-wrap">
        <button
          type="button"
          ref={button}
          class="reaction-add"
          aria-label="Add reaction"
          title="Add reaction"
          aria-haspopup="dialog"
          aria-expanded={open ? 'true' : 'false'}
          onClick={() => setOpen(!open)}
        >
          <span aria-hidden="true">☺︎+</span>
        </button>
        {open && (
          <EmojiPicker
            label="Add reaction"
            onPick={(emoji) => {
              const already = list.some((r) => r.emoji === emoji && (r.users || []).includes(me));
              if (!already) toggleReaction(message, emoji);
            }}
            onClose={() => setOpen(false)}
          />
        )}
      </span>
    </div>
  );
}
