// @mention autocomplete for the composer: suggests users as the word before
// the caret starts with @, and tells the composer which one was picked.
// Suggestions: the channel's members first (GET /channels/{id}/members,
// cached per channel), then other users (GET /users?search=), at most 8.
// The server finds the mentions in the text (@username after a space, at the
// start or after "("), so the picked "@username " is all a post needs.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, items } from './api.js';
import { rememberUsers, state } from './store.js';
import { Avatar, displayName } from './ui.jsx';
import './mentions.css';

const MAX = 8;
const NAME = /[A-Za-z0-9_.-]/;

// The "@prefix" ending at `caret` in `text`: {start (the @), prefix}, or null.
export function mentionAt(text, caret) {
  let i = caret;
  while (i > 0 && NAME.test(text[i - 1])) i--;
  if (i === 0 || text[i - 1] !== '@') return null;
  const at = i - 1;
  if (at > 0 && !/[\s(]/.test(text[at - 1])) return null;
  const prefix = text.slice(i, caret);
  return prefix.length > 32 ? null : { start: at, prefix };
}

// The text with the mention at `m` replaced by "@username ", and the caret after it.
export function insertMention(text, caret, m, username) {
  let end = caret;
  while (end < text.length && NAME.test(text[end])) end++;
  const rest = text.slice(end).replace(/^ /, '');
  const before = text.slice(0, m.start) + '@' + username + ' ';
  return { text: before + rest, caret: before.length };
}

const memberCache = new Map(); // channel id -> Promise([user])
function channelMembers(channelId) {
  if (!channelId) return Promise.resolve([]);
  if (!memberCache.has(channelId)) {
    const p = api('GET', `/channels/${encodeURIComponent(channelId)}/members`, { query: { limit: 100 } })
      .then((page) => items(page.members ? page.members : page).map((m) => ({
        id: m.user_id || m.id, username: m.username, ...(state.users[m.user_id || m.id] || {}),
      })))
      .catch(() => {
        memberCache.delete(channelId);
        return [];
      });
    memberCache.set(channelId, p);
  }
  return memberCache.get(channelId);
}

function matches(u, prefix) {
  const p = prefix.toLowerCase();
  return (u.username || '').toLowerCase().startsWith(p) ||
    (u.display_name || '').toLowerCase().split(/\s+/).some((w) => w.startsWith(p));
}

async function suggest(channelId, prefix) {
  const me = state.me && state.me.id;
  const members = (await channelMembers(channelId)).filter((u) => u.id !== me && matches(u, prefix));
  let found = members.slice(0, MAX);
  if (found.length < MAX && prefix) {
    try {
      const page = await api('GET', '/users', { query: { search: prefix, limit: MAX * 2 } });
      const others = items(page);
      rememberUsers(others);
      const seen = new Set(found.map((u) => u.id));
      for (const u of others) {
        if (found.length >= MAX) break;
        if (u.id !== me && !seen.has(u.id) && matches(u, prefix) && u.is_active !== false) {
          seen.add(u.id);
          found.push(u);
        }
      }
    } catch {
      /* suggestions are a convenience: the members are shown */
    }
  }
  return found;
}

let listCount = 0;

export function MentionSuggest({ textareaRef, channelId, onPick }) {
  const [open, setOpen] = useState(null); // {start, prefix}
  const [list, setList] = useState([]);
  const [active, setActive] = useState(0);
  const listId = useMemo(() => 'mention-list-' + ++listCount, []);
  const live = useRef({});
  live.current = { open, list, active, onPick, channelId };
  const asked = useRef(0);

  const close = () => {
    setOpen(null);
    setList([]);
  };

  const pick = (user) => {
    const ta = textareaRef.current;
    const { open: m, onPick: cb } = live.current;
    if (!ta || !m) return;
    const r = insertMention(ta.value, ta.selectionStart, m, user.username);
    close();
    cb(r.text, r.caret, user);
  };

  useEffect(() => {
    const ta = textareaRef.current;
    if (!ta) return undefined;
    const check = () => {
      const m = ta.selectionStart === ta.selectionEnd ? mentionAt(ta.value, ta.selectionStart) : null;
      if (!m) {
        if (live.current.open) close();
        return;
      }
      const n = ++asked.current;
      setOpen(m);
      setList((l) => l.filter((u) => matches(u, m.prefix))); // until the answer
      suggest(live.current.channelId, m.prefix).then((found) => {
        if (n !== asked.current) return;
        setList(found);
        setActive(0);
      });
    };
    const onKey = (e) => {
      const { open: m, list: l, active: a } = live.current;
      if (!m || !l.length) return;
      let handled = true;
      if (e.key === 'ArrowDown') setActive((a + 1) % l.length);
      else if (e.key === 'ArrowUp') setActive((a - 1 + l.length) % l.length);
      else if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') pick(l[a]);
      else if (e.key === 'Escape') {
        asked.current++;
        close();
      } else handled = false;
      if (handled) {
        e.preventDefault();
        e.stopImmediatePropagation();
      }
    };
    const onBlur = () => {
      asked.current++;
      close();
    };
    const onKeyUp = (e) => {
      if (e.key === 'ArrowLeft' || e.key === 'ArrowRight' || e.key === 'Home' || e.key === 'End') check();
    };
    ta.addEventListener('input', check);
    ta.addEventListener('click', check);
    ta.addEventListener('keyup', onKeyUp);
    ta.addEventListener('blur', onBlur);
    ta.addEventListener('keydown', onKey, true);
    return () => {
      ta.removeEventListener('input', check);
      ta.removeEventListener('click', check);
      ta.removeEventListener('keyup', onKeyUp);
      ta.removeEventListener('blur', onBlur);
      ta.removeEventListener('keydown', onKey, true);
    };
  }, [textareaRef.current]);

  const shown = open && list.length > 0;
  useEffect(() => {
    const ta = textareaRef.current;
    if (!ta) return;
    ta.setAttribute('aria-autocomplete', 'list');
    if (shown) {
      ta.setAttribute('aria-controls', listId);
      ta.setAttribute('aria-activedescendant', `${listId}-${active}`);
    } else {
      ta.removeAttribute('aria-controls');
      ta.removeAttribute('aria-activedescendant');
    }
  }, [shown, active, textareaRef.current]);

  if (!shown) return null;
  return (
    <ul class="mention-suggest" id={listId} role="listbox" aria-label="Mention a user">
      {list.map((u, i) => (
        <li
          key={u.id}
          id={`${listId}-${i}`}
          role="option"
          aria-selected={i === active ? 'true' : 'false'}
          class={'mention-option' + (i === active ? ' active' : '')}
          onMouseDown={(e) => e.preventDefault()}
          onClick={() => pick(u)}
        >
          <Avatar user={u} size={20} />
          <span class="mention-name">{displayName(u)}</span>
          <span class="mention-username">@{u.username}</span>
        </li>
      ))}
    </ul>
  );
}
