// ChannelView: a channel's header (name, description, members, Join), its
// history and the composer, with a drop zone for files over the whole view.
// The history (history.js holds the data) is windowed: of the loaded
// messages, at most MAX are in the DOM, a slice [start, end) that moves by
// STEP as the user nears an edge, the scroll position kept by measuring the
// element on screen before and after (the browser's own scroll anchoring is
// off). At the top of what is loaded, older pages come; after a jump into
// the past, newer ones at the bottom. Day separators, grouping of one
// sender's messages within 5 minutes, the "New messages" marker (from the
// channel's unread_count as it opens), live messages (kept at the bottom
// when the user is there, else a "New messages ↓" button), read markers.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, items } from './api.js';
import { state, update, useStore } from './store.js';
import { markRead } from './unread.js';
import { formatDay } from './ui.jsx';
import { MessageItem } from './message.jsx';
import { Composer } from './composer.jsx';
import { navigate, channelHash } from './router.js';
import { loadAround, loadLatest, loadNewer, loadOlder, newestId } from './history.js';
import './channel.css';

export const MAX = 150;   // message elements in the DOM at most
const STEP = 50;          // how far the window moves at an edge
const EDGE = 800;         // px from an edge that moves it
const INITIAL = 80;       // messages shown as the channel opens
const GROUP_MS = 5 * 60 * 1000;

export function ChannelView({ channelId, messageId }) {
  // One instance per channel: its state (the window, the marker) is that channel's.
  return <ChannelScreen key={channelId} channelId={channelId} messageId={messageId} />;
}

// The channel object, whether I am a member, and the members' names (a
// direct conversation is named after them).
function useChannel(channelId) {
  const me = useStore((s) => s.me);
  const [info, setInfo] = useState({ channel: null, member: true, names: [], error: '' });
  const reload = async () => {
    try {
      const channel = await api('GET', `/channels/${encodeURIComponent(channelId)}`);
      let member = false;
      const names = [];
      for (let page = 1; page <= 20; page++) {
        const res = await api('GET', `/channels/${encodeURIComponent(channelId)}/members`, { query: { page, limit: 100 } });
        const list = items(res.members ? res.members : res);
        for (const m of list) {
          if (me && m.user_id === me.id) member = true;
          else if (names.length < 5) names.push(m.username);
        }
        if (member || list.length < 100) break;
      }
      setInfo({ channel, member, names, error: '' });
      return channel;
    } catch (err) {
      setInfo((i) => ({ ...i, error: err.status === 404 ? 'There is no such channel, or it is not yours to read.' : err.message }));
      return null;
    }
  };
  return [info, reload, setInfo];
}

function channelTitle(channel, names) {
  if (!channel) return '';
  if (channel.type === 'direct') return names.length ? names.join(', ') : 'Direct conversation';
  return '#' + channel.name;
}

function dayKey(iso) {
  const d = new Date(iso);
  return d.getFullYear() + '-' + d.getMonth() + '-' + d.getDate();
}

// A read marker at most once a second per view.
function useMarkRead(channelId) {
  const last = useRef({ id: null, at: 0, timer: 0 });
  useEffect(() => () => clearTimeout(last.current.timer), []);
  return (id) => {
    const l = last.current;
    if (!id || id === l.id || document.visibilityState !== 'visible') return;
    const wait = l.at + 1000 - Date.now();
    clearTimeout(l.timer);
    if (wait > 0) {
      l.timer = setTimeout(() => {
        l.at = Date.now();
        l.id = id;
        markRead(channelId, id);
      }, wait);
      return;
    }
    l.at = Date.now();
    l.id = id;
    markRead(channelId, id);
  };
}

function ChannelScreen({ channelId, messageId }) {
  const me = useStore((s) => s.me);
  const sl = useStore((s) => s.messages[channelId]);
  const [info, reloadInfo, setInfo] = useChannel(channelId);
  const [marker, setMarker] = useState(undefined); // undefined: not computed yet; null: none
  const [highlight, setHighlight] = useState(null);
  const [showNew, setShowNew] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [, setTick] = useState(0);
  const rerender = () => setTick((t) => t + 1);
  const scroller = useRef(null);
  const inner = useRef(null);
  const addFilesRef = useRef(null);
  const win = useRef(null);            // {start, end, firstId, len}
  const anchor = useRef(null);         // {id, top}: the row to keep in place
  const atBottom = useRef(true);
  const jump = useRef(null);           // a message id to scroll to once loaded
  const lastSeen = useRef(null);       // the newest message id seen so far
  const sendRead = useMarkRead(channelId);

  // The channel's facts and the first page (or the page around a message).
  useEffect(() => {
    let gone = false;
    const opened = reloadInfo();
    const loaded = messageId ? loadAround(channelId, messageId) : loadLatest(channelId);
    // The jump waits for the page around the message (the list it replaces
    // may hold the message too, at another place).
    if (messageId) {
      loaded.then((found) => {
        if (gone || !found) return;
        jump.current = messageId;
        win.current = null;
        rerender();
      });
    }
    Promise.all([opened, loaded]).then(([channel]) => {
      if (gone || marker !== undefined) return;
      const list = (state.messages[channelId] || { list: [] }).list.filter((m) => !m.pending && !m.failed);
      const unread = (channel && channel.unread_count) || 0;
      const first = !messageId && unread > 0 && unread <= list.length ? list[list.length - unread] : null;
      setMarker(first && first.user_id !== (state.me && state.me.id) ? first.id : null);
    });
    return () => {
      gone = true;
    };
  }, [channelId, messageId]);

  // A history dropped by a resync is loaded again.
  useEffect(() => {
    if (!sl && marker !== undefined) {
      win.current = null;
      loadLatest(channelId);
    }
  }, [sl, marker]);

  // (A public channel looked at without membership is subscribed by the
  // shell: shell.jsx useChannelSubscription.)

  const list = (sl && sl.list) || [];

  // The window over the list, carried across changes of the list.
  let w = win.current;
  if (w && list.length && w.firstId !== list[0].id) {
    const shift = list.findIndex((m) => m.id === w.firstId);
    w = shift >= 0 ? { ...w, start: w.start + shift, end: w.end + shift, len: w.len + shift } : null;
  }
  if (jump.current && list.some((m) => m.id === jump.current)) {
    const i = list.findIndex((m) => m.id === jump.current);
    w = { start: Math.max(0, i - MAX / 2 + 10), end: Math.min(list.length, i + MAX / 2 - 10) };
  } else if (!w || !list.length) {
    w = { start: Math.max(0, list.length - INITIAL), end: list.length };
  } else if (list.length !== w.len && w.end >= w.len) {
    // Messages came at the end while the window reached it.
    if (atBottom.current) w = { start: Math.max(w.start, list.length - MAX), end: list.length };
    else w = { start: w.start, end: Math.min(list.length, w.start + MAX) };
  }
  w = { start: Math.max(0, Math.min(w.start, list.length)), end: Math.min(list.length, w.end) };
  w.firstId = list.length ? list[0].id : null;
  w.len = list.length;
  win.current = w;

  const newest = newestId(channelId);
  const hasNewer = !!(sl && sl.hasNewer);

  // Moves the window, or loads a page, when the view is near an edge.
  const check = () => {
    const el = scroller.current;
    if (!el || !sl) return;
    const cur = win.current;
    const fromBottom = el.scrollHeight - el.scrollTop - el.clientHeight;
    atBottom.current = fromBottom < 40 && cur.end >= list.length && !sl.hasNewer;
    if (atBottom.current && showNew) setShowNew(false);
    if (el.scrollTop < EDGE) {
      if (cur.start > 0) {
        anchor.current = rowAt(el, 'first');
        const start = Math.max(0, cur.start - STEP);
        win.current = { ...cur, start, end: Math.min(cur.end, start + MAX) };
        rerender();
        return;
      }
      if (sl.hasOlder && !sl.loading) loadOlder(channelId);
    }
    if (fromBottom < EDGE) {
      if (cur.end < list.length) {
        anchor.current = rowAt(el, 'last');
        const end = Math.min(list.length, cur.end + STEP);
        win.current = { ...cur, end, start: Math.max(cur.start, end - MAX) };
        rerender();
        return;
      }
      if (sl.hasNewer && !sl.loading) loadNewer(channelId);
    }
    if (atBottom.current && marker !== undefined) sendRead(newestId(channelId));
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (jump.current) {
      const row = el.querySelector(`[data-row="${CSS.escape(jump.current)}"]`);
      if (row) {
        row.scrollIntoView({ block: 'center' });
        setHighlight(jump.current);
        jump.current = null;
        atBottom.current = false;
      }
    } else if (anchor.current) {
      const a = anchor.current;
      anchor.current = null;
      const row = el.querySelector(`[data-row="${CSS.escape(a.id)}"]`);
      if (row) el.scrollTop += row.getBoundingClientRect().top - a.top;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
    // A new message at the end while the user reads older ones: the button.
    if (newest && newest !== lastSeen.current) {
      const msg = list.find((m) => m.id === newest);
      if (lastSeen.current && !atBottom.current && msg && (!me || msg.user_id !== me.id)) setShowNew(true);
      lastSeen.current = newest;
    }
    check();
  });

  // Images and edits change heights: the bottom stays the bottom.
  useEffect(() => {
    if (!inner.current || typeof ResizeObserver !== 'function') return undefined;
    const ro = new ResizeObserver(() => {
      const el = scroller.current;
      if (el && atBottom.current && !anchor.current) el.scrollTop = el.scrollHeight;
    });
    ro.observe(inner.current);
    return () => ro.disconnect();
  }, [!!sl]);

  useEffect(() => {
    const onVisible = () => check();
    document.addEventListener('visibilitychange', onVisible);
    return () => document.removeEventListener('visibilitychange', onVisible);
  });

  const toBottom = () => {
    setShowNew(false);
    atBottom.current = true;
    if (hasNewer || messageId) {
      win.current = null;
      if (messageId) navigate(channelHash(channelId));
      else loadLatest(channelId);
    } else {
      win.current = null;
      rerender();
    }
  };

  const join = async () => {
    try {
      await api('POST', `/channels/${encodeURIComponent(channelId)}/join`);
      const channel = await reloadInfo();
      if (channel) update((s) => ({ channels: { ...s.channels, [channelId]: { ...s.channels[channelId], ...channel } } }));
    } catch (err) {
      setInfo((i) => ({ ...i, error: err.message }));
    }
  };

  const onDragOver = (e) => {
    if (!e.dataTransfer || !Array.from(e.dataTransfer.types || []).includes('Files')) return;
    e.preventDefault();
    if (!dragging) setDragging(true);
  };
  const onDragLeave = (e) => {
    if (!e.currentTarget.contains(e.relatedTarget)) setDragging(false);
  };
  const onDrop = (e) => {
    setDragging(false);
    const files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) return;
    e.preventDefault();
    if (info.member && addFilesRef.current) addFilesRef.current(files);
  };

  const { channel, member, names } = info;
  if (info.error && !channel) {
    return <section class="channel-view" aria-label="Channel"><p class="channel-error" role="alert">{info.error}</p></section>;
  }
  const title = channelTitle(channel, names);
  const canJoin = channel && !member && channel.type !== 'direct' && !channel.is_private;

  const rows = [];
  for (let i = w.start; i < w.end; i++) {
    const m = list[i];
    const prev = i > 0 ? list[i - 1] : null;
    const newDay = !prev || dayKey(prev.created_at) !== dayKey(m.created_at);
    if (newDay) {
      rows.push(<div class="day-separator" role="separator" key={'day-' + (m.id)}><span>{formatDay(m.created_at)}</span></div>);
    }
    const marked = marker && m.id === marker;
    if (marked) rows.push(<div class="new-marker" role="separator" key="new-marker"><span>New messages</span></div>);
    const grouped = !!prev && !newDay && !marked && prev.user_id === m.user_id && !prev.is_deleted &&
      new Date(m.created_at) - new Date(prev.created_at) < GROUP_MS;
    const id = m.localKey ? 'local-' + m.localKey : m.id;
    rows.push(
      <div class={'history-row' + (highlight === m.id ? ' highlighted' : '')} data-row={id} key={id}>
        <MessageItem message={m} grouped={grouped} />
      </div>,
    );
  }

  const loadingOlder = sl && sl.loading && w.start === 0 && list.length > 0;
  return (
    <section class={'channel-view' + (dragging ? ' dragging' : '')} aria-label={title || 'Channel'}
      onDragEnter={onDragOver} onDragOver={onDragOver} onDragLeave={onDragLeave} onDrop={onDrop}>
      <header class="channel-header">
        <div class="channel-title">
          <h1>{title}</h1>
          {channel && channel.description && <p class="channel-topic">{channel.description}</p>}
        </div>
        {channel && channel.type !== 'direct' && (
          <span class="channel-members">{channel.member_count === 1 ? '1 member' : (channel.member_count || 0) + ' members'}</span>
        )}
        {canJoin && <button type="button" class="primary" onClick={join}>Join</button>}
      </header>
      <div class="history" ref={scroller} onScroll={check} role="log" aria-label={'Messages of ' + (title || 'the channel')}
        tabIndex={0} aria-busy={sl && sl.loading ? 'true' : 'false'}>
        <div class="history-inner" ref={inner}>
          {sl && w.start === 0 && !sl.hasOlder && sl.list.length > 0 && !sl.loading && (
            <p class="history-start">This is the beginning of {title || 'the channel'}.</p>
          )}
          {sl && !sl.loading && !list.length && <p class="history-start">No messages yet. Say hello!</p>}
          {loadingOlder && <p class="history-loading" role="status">Loading older messages…</p>}
          {rows}
          {sl && sl.loading && !list.length && <p class="history-loading" role="status">Loading…</p>}
        </div>
      </div>
      {(showNew || hasNewer) && (
        <button type="button" class="to-bottom" onClick={toBottom}>{showNew ? 'New messages ↓' : 'Jump to the present ↓'}</button>
      )}
      {member || !channel ? (
        <Composer channelId={channelId} label={'Message ' + (title || '')} addFilesRef={addFilesRef}
          beforeSend={() => { if (hasNewer || messageId) toBottom(); else atBottom.current = true; }} />
      ) : (
        <div class="composer-join">
          <p>You are reading {title} without being a member.</p>
          {canJoin && <button type="button" class="primary" onClick={join}>Join {title}</button>}
        </div>
      )}
      {dragging && <div class="drop-zone" aria-hidden="true"><p>Drop files to attach them</p></div>}
    </section>
  );
}

// The first or last row on screen, with where it is: the row to keep in place
// while the window moves.
function rowAt(el, which) {
  const box = el.getBoundingClientRect();
  const rows = el.querySelectorAll('[data-row]');
  let found = null;
  for (const r of rows) {
    const b = r.getBoundingClientRect();
    if (b.bottom > box.top && b.top < box.bottom) {
      found = r;
      if (which === 'first') break;
    }
  }
  if (!found) found = which === 'first' ? rows[0] : rows[rows.length - 1];
  return found ? { id: found.dataset.row, top: found.getBoundingClientRect().top } : null;
}
