// The channel switcher (Ctrl/Cmd+K): a modal with a filter; arrows move,
// Enter opens, Esc closes. Lists the channels and conversations I am in.
import { useState } from 'preact/hooks';
import { useStore } from './store.js';
import { Modal } from './ui.jsx';
import { channelHash, navigate } from './router.js';
import { channelLabel } from './core-channels.js';
import { sidebarChannels } from './sidebar.jsx';
import './switcher.css';

export function switcherMatches(channels, query) {
  const { named, direct } = sidebarChannels(channels);
  const q = query.trim().toLowerCase().replace(/^#/, '');
  const all = [...named, ...direct];
  if (!q) return all;
  const starts = all.filter((c) => channelLabel(c).toLowerCase().startsWith(q));
  const within = all.filter((c) => !starts.includes(c) && channelLabel(c).toLowerCase().includes(q));
  return [...starts, ...within];
}

export function Switcher({ onClose }) {
  const channels = useStore((s) => s.channels);
  useStore((s) => s.users); // names of conversations
  const [query, setQuery] = useState('');
  const [index, setIndex] = useState(0);
  const matches = switcherMatches(channels, query);
  const current = Math.min(index, Math.max(0, matches.length - 1));
  const open = (c) => {
    onClose();
    navigate(channelHash(c.id));
  };
  const onKey = (e) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setIndex(matches.length ? (current + 1) % matches.length : 0);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setIndex(matches.length ? (current - 1 + matches.length) % matches.length : 0);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      if (matches[current]) open(matches[current]);
    }
  };
  return (
    <Modal title="Jump to a conversation" onClose={onClose}>
      <input type="text" class="switcher-input" role="combobox" aria-label="Channel or person"
        aria-expanded="true" aria-controls="switcher-list" aria-autocomplete="list"
        aria-activedescendant={matches[current] ? 'switch-' + matches[current].id : undefined}
        value={query} placeholder="Type a channel or a name"
        onInput={(e) => { setQuery(e.target.value); setIndex(0); }} onKeyDown={onKey} autocomplete="off" />
      <ul id="switcher-list" class="switcher-list" role="listbox" aria-label="Matches">
        {matches.map((c, i) => (
          <li key={c.id} id={'switch-' + c.id} role="option" aria-selected={i === current}
            class={'switcher-option' + (i === current ? ' selected' : '')}
            onClick={() => open(c)} onMouseMove={() => i !== current && setIndex(i)}>
            <span aria-hidden="true">{c.type === 'direct' ? '@' : c.is_private ? '🔒' : '#'}</span> {channelLabel(c)}
            {c.unread_count > 0 && <span class="switcher-unread"> · {c.unread_count} unread</span>}
          </li>
        ))}
        {!matches.length && <li class="switcher-none" role="option" aria-selected="false" aria-disabled="true">Nothing matches</li>}
      </ul>
    </Modal>
  );
}
