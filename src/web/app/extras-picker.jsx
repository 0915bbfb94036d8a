// The emoji picker: a dialog with a search box and a grid of emoji (a
// listbox), recently used first. Keyboard: the search box keeps the focus,
// the arrows move through the grid (aria-activedescendant), Enter picks the
// active emoji (the first match when none is), Esc closes; focus goes back
// to where it was (the button that opened it) when the picker closes.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { CATEGORIES, emojiInfo, noteEmojiUsed, recentEmoji, searchEmoji } from './emoji.js';
import './extras-picker.css';

const COLUMNS = 8;
let pickerCount = 0;

// onPick(char): an emoji was chosen (the picker then closes through onClose,
// which the caller gets right after). onClose(): Esc, a click outside, or
// after a pick.
export function EmojiPicker({ onPick, onClose, label = 'Emoji picker' }) {
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(-1);
  const idBase = useMemo(() => 'emoji-picker-' + ++pickerCount, []);
  const ref = useRef(null);
  const input = useRef(null);
  const grid = useRef(null);

  // Groups shown: with a query, the matches; without, recents then categories.
  const groups = useMemo(() => {
    if (query.trim()) return [{ id: 'results', name: 'Search results', emoji: searchEmoji(query) }];
    const recent = recentEmoji().map(emojiInfo);
    return [...(recent.length ? [{ id: 'recent', name: 'Recently used', emoji: recent }] : []), ...CATEGORIES];
  }, [query]);
  const flat = useMemo(() => groups.flatMap((g) => g.emoji), [groups]);

  useEffect(() => {
    const prev = document.activeElement;
    input.current.focus();
    // Opens upwards when there is no room below (a message low on the screen).
    const box = ref.current.getBoundingClientRect();
    if (box.bottom > window.innerHeight && box.height + 40 < box.top) ref.current.classList.add('emoji-picker-up');
    const outside = (e) => {
      if (ref.current && !ref.current.contains(e.target)) onClose();
    };
    document.addEventListener('mousedown', outside, true);
    return () => {
      document.removeEventListener('mousedown', outside, true);
      if (prev && prev.isConnected && prev.focus) prev.focus();
    };
  }, []);

  useEffect(() => {
    const el = active >= 0 && grid.current && grid.current.querySelector(`#${idBase}-${active}`);
    if (el && el.scrollIntoView) el.scrollIntoView({ block: 'nearest' });
  }, [active]);

  const pick = (e) => {
    noteEmojiUsed(e.char);
    onPick(e.char);
    onClose();
  };

  const onKeyDown = (e) => {
    const n = flat.length;
    const move = (to) => {
      e.preventDefault();
      if (n) setActive(Math.max(0, Math.min(n - 1, to)));
    };
    switch (e.key) {
      case 'Escape':
        e.preventDefault();
        e.stopPropagation();
        onClose();
        break;
      case 'Enter':
        e.preventDefault();
        e.stopPropagation();
        if (n) pick(flat[active >= 0 ? active : 0]);
        break;
      case 'ArrowRight':
        move(active + 1);
        break;
      case 'ArrowLeft':
        move(active - 1);
        break;
      case 'ArrowDown':
        move(active < 0 ? 0 : active + COLUMNS);
        break;
      case 'ArrowUp':
        move(active - COLUMNS);
        break;
      case 'Home':
        if (active >= 0) move(0);
        break;
      case 'End':
        if (active >= 0) move(n - 1);
        break;
      default:
    }
  };

  const jump = (id) => {
    const el = grid.current && grid.current.querySelector(`[data-group="${id}"]`);
    if (el && el.scrollIntoView) el.scrollIntoView({ block: 'start' });
    const first = flat.indexOf(groups.find((g) => g.id === id).emoji[0]);
    setActive(first);
    input.current.focus();
  };

  let index = 0;
  const activeEntry = active >= 0 ? flat[active] : null;
  return (
    <div class="emoji-picker" role="dialog" aria-label={label} ref={ref} onKeyDown={onKeyDown}>
      <input
        ref={input}
        type="search"
        class="emoji-search"
        role="combobox"
        aria-label="Search emoji"
        aria-expanded="true"
        aria-controls={idBase + '-list'}
        aria-autocomplete="list"
        aria-activedescendant={active >= 0 ? `${idBase}-${active}` : undefined}
        placeholder="Search emoji"
        autocomplete="off"
        value={query}
        onInput={(e) => {
          setQuery(e.currentTarget.value);
          setActive(-1);
        }}
      />
      {!query.trim() && (
        <div class="emoji-tabs" role="toolbar" aria-label="Emoji categories">
          {groups.map((g) => (
            <button type="button" class="emoji-tab" key={g.id} title={g.name} aria-label={g.name} tabIndex={-1}
              onClick={() => jump(g.id)}>{g.icon || '🕘'}</button>
          ))}
        </div>
      )}
      <div class="emoji-grid" id={idBase + '-list'} role="listbox" aria-label="Emoji" ref={grid}>
        {groups.map((g) => (
          <div role="group" aria-label={g.name} key={g.id} data-group={g.id}>
            <div class="emoji-group-name" aria-hidden="true">{g.name}</div>
            <div class="emoji-cells">
              {g.emoji.map((e) => {
                const i = index++;
                return (
                  <div
                    key={g.id + e.char}
                    id={`${idBase}-${i}`}
                    role="option"
                    aria-selected={i === active ? 'true' : 'false'}
                    aria-label={e.name}
                    title={e.name}
                    class={'emoji-cell' + (i === active ? ' active' : '')}
                    onMouseDown={(ev) => ev.preventDefault()}
                    onClick={() => pick(e)}
                  >
                    {e.char}
                  </div>
                );
              })}
            </div>
          </div>
        ))}
        {!flat.length && <p class="emoji-none">No emoji found</p>}
      </div>
      <div class="emoji-footer" aria-live="polite">{activeEntry ? `${activeEntry.char} ${activeEntry.name}` : ''}</div>
    </div>
  );
}
