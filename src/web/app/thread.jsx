// The thread side panel: a message, its replies, a composer for the thread.
// A reply is a message posted with `reply_to` (the root, or any message of
// the thread); the server gives it the root's id as `thread_id`. The panel
// loads GET /messages/{id}/thread (the replies; its `thread_id` is the root)
// and the root itself, keeps them in state.threads[rootId], and appends the
// live replies (message.created whose thread_id is the root).
// Shareable: a channel link with ?thread=<message> (#/c/<channel>?thread=<id>)
// opens the panel on that message's thread; openThread() puts it in the URL.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, items } from './api.js';
import { onEvent } from './live.js';
import { rememberUsers, state, subscribe, toast, update, useStore } from './store.js';
import { MessageItem } from './message.jsx';
import { MentionSuggest } from './mentions.jsx';
import './thread.css';

function threadParam(hash) {
  const qs = hash.split('?')[1];
  return qs ? new URLSearchParams(qs).get('thread') : null;
}

function hashWithThread(hash, messageId) {
  const [path, qs] = hash.split('?');
  const params = new URLSearchParams(qs || '');
  if (messageId) params.set('thread', messageId);
  else params.delete('thread');
  const s = params.toString();
  return path + (s ? '?' + s : '');
}

function setHashQuietly(hash) {
  if (hash !== location.hash) history.replaceState(history.state, '', hash || '#/');
}

// Opens the side panel on the thread of `messageId` (shell.jsx renders it);
// on a channel's route the link then names the thread too.
export function openThread(messageId) {
  update({ panel: { kind: 'thread', messageId } });
  if (/^#\/c\//.test(location.hash)) setHashQuietly(hashWithThread(location.hash, messageId));
}

export function closeThread() {
  if (state.panel && state.panel.kind === 'thread') update({ panel: null });
  if (threadParam(location.hash)) setHashQuietly(hashWithThread(location.hash, null));
}

function fromHash() {
  const id = threadParam(location.hash);
  const panel = state.panel;
  if (id) {
    if (!panel || panel.kind !== 'thread' || panel.messageId !== id) {
      update({ panel: { kind: 'thread', messageId: id, fromLink: true } });
    }
  } else if (panel && panel.kind === 'thread' && panel.fromLink) {
    update({ panel: null });
  }
}
window.addEventListener('hashchange', fromHash);
fromHash();

// A logout forgets the threads with the rest of the login's state.
subscribe(() => {
  if (!state.me && state.threads && Object.keys(state.threads).length) update({ threads: {} });
});

function setThread(rootId, fn) {
  update((s) => {
    const t = (s.threads || {})[rootId];
    const next = fn(t);
    return next === t ? null : { threads: { ...s.threads, [rootId]: next } };
  });
}

function addReply(rootId, message) {
  setThread(rootId, (t) => {
    if (!t || t.replies.some((m) => m.id === message.id)) return t;
    return { ...t, replies: [...t.replies, message] };
  });
}

// In the threads only: the channel's own history is its part's.
function changeInThreads(id, fn) {
  for (const [rootId, t] of Object.entries(state.threads || {})) {
    if (t.root && t.root.id === id) setThread(rootId, (x) => ({ ...x, root: fn(x.root) }));
    if (t.replies && t.replies.some((m) => m.id === id)) {
      setThread(rootId, (x) => ({ ...x, replies: x.replies.map((m) => (m.id === id ? fn(m) : m)) }));
    }
  }
}

onEvent('message.created', (m) => {
  if (m && m.thread_id && state.threads && state.threads[m.thread_id]) {
    rememberUsers([m.sender]);
    addReply(m.thread_id, m);
  }
});
onEvent('message.updated', (m) => m && m.id && changeInThreads(m.id, () => m));
onEvent('message.deleted', (d) => d && d.id && changeInThreads(d.id, (m) => ({ ...m, is_deleted: true, content: null })));

const rootOf = new Map(); // any message id of a loaded thread -> its root's id

async function loadThread(messageId) {
  const page = await api('GET', `/messages/${encodeURIComponent(messageId)}/thread`);
  const rootId = page.thread_id || messageId;
  const root = await api('GET', `/messages/${encodeURIComponent(rootId)}`);
  const replies = items(page.messages ? page.messages : page);
  rememberUsers([root.sender, ...replies.map((m) => m.sender)]);
  rootOf.set(messageId, rootId);
  setThread(rootId, (t) => {
    // Replies that came live while loading stay.
    const seen = new Set(replies.map((m) => m.id));
    const live = t ? t.replies.filter((m) => !seen.has(m.id)) : [];
    return { root, replies: [...replies, ...live], total: page.total };
  });
  return rootId;
}

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
}

function ThreadComposer({ root }) {
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const key = useRef(newKey());
  const ta = useRef(null);
  const caret = useRef(null);

  useEffect(() => {
    if (caret.current !== null && ta.current) {
      ta.current.setSelectionRange(caret.current, caret.current);
      caret.current = null;
    }
  });

  const send = async () => {
    const content = text.trim();
    if (!content || sending) return;
    setSending(true);
    try {
      const m = await api('POST', `/channels/${encodeURIComponent(root.channel_id)}/messages`, {
        body: { content, reply_to: root.id, idempotency_key: key.current },
      });
      addReply(root.id, m);
      key.current = newKey();
      setText('');
    } catch (err) {
      toast('The reply was not sent: ' + err.message, 'error');
    } finally {
      setSending(false);
      if (ta.current) ta.current.focus();
    }
  };

  return (
    <form class="thread-composer" onSubmit={(e) => { e.preventDefault(); send(); }}>
      <div class="thread-composer-box">
        <textarea
          ref={ta}
          rows={2}
          aria-label="Reply in thread"
          placeholder="Reply…"
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              send();
            }
          }}
        />
        <MentionSuggest
          textareaRef={ta}
          channelId={root.channel_id}
          onPick={(t, c) => {
            caret.current = c;
            setText(t);
            if (ta.current) ta.current.focus();
          }}
        />
      </div>
      <button type="submit" class="primary" disabled={sending || !text.trim()}>Send</button>
    </form>
  );
}

function grouped(prev, m) {
  return !!prev && prev.user_id === m.user_id && !prev.is_deleted &&
    new Date(m.created_at) - new Date(prev.created_at) < 5 * 60 * 1000;
}

export function ThreadPanel({ messageId }) {
  const [rootId, setRootId] = useState(rootOf.get(messageId) || null);
  const [error, setError] = useState('');
  // useStore keeps its first selector: select the slice, then the thread.
  const threads = useStore((s) => s.threads || {});
  const thread = rootId ? threads[rootId] : null;
  const panel = useRef(null);
  const heading = useRef(null);

  useEffect(() => {
    let gone = false;
    setError('');
    setRootId(rootOf.get(messageId) || null);
    loadThread(messageId)
      .then((id) => !gone && setRootId(id))
      .catch((err) => !gone && setError(err.status === 404 ? 'This message is not there (deleted, or not visible to you).' : err.message));
    return () => {
      gone = true;
    };
  }, [messageId]);

  useEffect(() => {
    const prev = document.activeElement;
    if (heading.current) heading.current.focus();
    const onKey = (e) => {
      if (e.key === 'Escape' && !e.defaultPrevented) closeThread();
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      if (prev && prev.isConnected && prev.focus && prev !== document.body) prev.focus();
    };
  }, []);

  const replies = thread ? thread.replies : [];
  return (
    <aside class="panel thread-panel" aria-label="Thread" ref={panel}>
      <header class="thread-head">
        <h2 tabIndex={-1} ref={heading}>Thread</h2>
        <button type="button" class="icon-button" aria-label="Close thread" title="Close (Esc)" onClick={closeThread}>×</button>
      </header>
      <div class="thread-body">
        {error && <p class="error" role="alert">{error}</p>}
        {!error && !thread && <p class="thread-loading" role="status">Loading…</p>}
        {thread && (
          <>
            <div class="thread-root"><MessageItem message={thread.root} inThread /></div>
            <div class="thread-count">
              {replies.length === 1 ? '1 reply' : `${replies.length} replies`}
            </div>
            <div class="thread-replies" aria-live="polite" aria-label="Replies" role="log">
              {replies.map((m, i) => <MessageItem key={m.id} message={m} grouped={grouped(replies[i - 1], m)} inThread />)}
            </div>
          </>
        )}
      </div>
      {thread && !thread.root.is_deleted && <ThreadComposer root={thread.root} />}
    </aside>
  );
}
