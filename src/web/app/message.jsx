// MessageItem: one message of a history (channel view, thread panel, search
// results): sender, time, content (formatted by building DOM nodes, never
// HTML strings: format.js), attachments, reactions, and the actions of its
// menu (reply in thread, edit, delete), shown on hover and on keyboard focus.
// It takes everything from the message object and the store, so it renders
// the same wherever it is placed. Editing is inline: state.editing holds the
// id of the message being edited (the composer's Up key sets it too).
import { useEffect, useRef, useState } from 'preact/hooks';
import { state, update, useStore, toast } from './store.js';
import { Avatar, Modal, displayName, formatTime } from './ui.jsx';
import { Attachments } from './files.jsx';
import { Reactions } from './reactions.jsx';
import { PresenceDot } from './presence.jsx';
import { openThread } from './thread.jsx';
import { formatContent, mentionsMe } from './format.js';
import { deleteMessage, discardFailed, editMessage, retrySend } from './history.js';
import './message.css';

// The replies each message of a list has (those whose thread_id names it),
// counted once per list.
const replyCache = new WeakMap();
export function replyCounts(list) {
  if (!list) return {};
  let counts = replyCache.get(list);
  if (!counts) {
    counts = {};
    for (const m of list) if (m.thread_id && m.thread_id !== m.id && !m.is_deleted) counts[m.thread_id] = (counts[m.thread_id] || 0) + 1;
    replyCache.set(list, counts);
  }
  return counts;
}

export function fullDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleString([], { dateStyle: 'full', timeStyle: 'medium' });
}

function EditBox({ message }) {
  const [text, setText] = useState(message.content || '');
  const [busy, setBusy] = useState(false);
  const ref = useRef(null);
  useEffect(() => {
    const el = ref.current;
    if (el) {
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    }
  }, []);
  const close = () => update({ editing: null });
  const save = async () => {
    const content = text.trim();
    if (!content || content === message.content) return close();
    setBusy(true);
    try {
      await editMessage(message, content);
      close();
    } catch (err) {
      toast('The edit failed: ' + err.message, 'error');
      setBusy(false);
    }
  };
  const onKey = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      save();
    }
  };
  return (
    <div class="message-edit">
      <textarea ref={ref} aria-label="Edit message" value={text} rows={Math.min(8, text.split('\n').length + 1)}
        onInput={(e) => setText(e.currentTarget.value)} onKeyDown={onKey} disabled={busy} />
      <div class="message-edit-actions">
        <span class="hint">Enter to save · Esc to cancel</span>
        <button type="button" onClick={close}>Cancel</button>
        <button type="button" class="primary" onClick={save} disabled={busy}>Save</button>
      </div>
    </div>
  );
}

function ConfirmDelete({ message, onClose }) {
  const remove = async () => {
    try {
      await deleteMessage(message);
    } catch (err) {
      toast('The message could not be deleted: ' + err.message, 'error');
    }
    onClose();
  };
  return (
    <Modal title="Delete message?" onClose={onClose}>
      <p>This message will be deleted for everyone. This cannot be undone.</p>
      <blockquote class="delete-preview">{(message.content || '').slice(0, 300)}</blockquote>
      <div class="modal-actions">
        <button type="button" onClick={onClose}>Cancel</button>
        <button type="button" class="danger" onClick={remove}>Delete</button>
      </div>
    </Modal>
  );
}

// message: the API's message object (or a local one being sent: pending,
// failed); grouped: a follow-up by the same sender (no name line);
// inThread: rendered in the thread panel (no reply count, no reply action).
export function MessageItem({ message, grouped = false, inThread = false }) {
  const me = useStore((s) => s.me);
  const editing = useStore((s) => s.editing) === message.id;
  const replies = useStore((s) => replyCounts(s.messages[message.channel_id] && s.messages[message.channel_id].list)[message.id] || 0);
  const [confirming, setConfirming] = useState(false);
  const mine = !!me && message.user_id === me.id;
  const local = message.pending || message.failed;
  const admin = !!me && (me.roles || []).includes('admin');
  const name = displayName(message.sender);
  const classes = ['message'];
  if (grouped) classes.push('grouped');
  if (message.pending) classes.push('pending');
  if (message.failed) classes.push('failed');
  if (message.is_deleted) classes.push('deleted');
  if (!mine && mentionsMe(message, me)) classes.push('mentions-me');
  const inReply = !inThread && message.thread_id && message.thread_id !== message.id;
  return (
    <article class={classes.join(' ')} data-message-id={local ? undefined : message.id} data-local-key={message.localKey}
      aria-label={'Message from ' + name} aria-busy={message.pending ? 'true' : undefined}>
      <div class="message-gutter">
        {grouped ? <time class="message-time-short" dateTime={message.created_at} title={fullDate(message.created_at)}>{formatTime(message.created_at)}</time>
          : <Avatar user={message.sender} size={36} />}
      </div>
      <div class="message-body">
        {!grouped && (
          <header class="message-head">
            <strong class="message-sender">{name}</strong>
            {message.sender && message.sender.id && <PresenceDot userId={message.sender.id} />}
            <time dateTime={message.created_at} title={fullDate(message.created_at)}>{formatTime(message.created_at)}</time>
          </header>
        )}
        {inReply && (
          <button type="button" class="link-button in-thread" onClick={() => openThread(message.thread_id)}>↳ in a thread</button>
        )}
        {message.is_deleted ? (
          <p class="message-content message-deleted">This message was deleted.</p>
        ) : editing ? (
          <EditBox message={message} />
        ) : (
          <div class="message-content">
            {formatContent(message.content, { me })}
            {message.is_edited && <span class="edited" title={fullDate(message.updated_at)}> (edited)</span>}
          </div>
        )}
        {!message.is_deleted && <Attachments files={message.attachments || []} />}
        {!local && !message.is_deleted && <Reactions message={message} />}
        {!inThread && replies > 0 && (
          <button type="button" class="link-button reply-count" onClick={() => openThread(message.id)}>
            {replies === 1 ? '1 reply' : replies + ' replies'}
          </button>
        )}
        {message.pending && <span class="message-status">Sending…</span>}
        {message.failed && (
          <span class="message-status error" role="alert">
            Not sent{message.error ? ': ' + message.error : ''}.{' '}
            <button type="button" onClick={() => retrySend(message.channel_id, message.localKey)}>Retry</button>{' '}
            <button type="button" onClick={() => discardFailed(message.channel_id, message.localKey)}>Discard</button>
          </span>
        )}
      </div>
      {!local && !message.is_deleted && !editing && (
        <div class="message-actions" role="toolbar" aria-label={'Actions on the message from ' + name}>
          {!inThread && <button type="button" onClick={() => openThread(message.id)} aria-label="Reply in thread">Reply</button>}
          {mine && <button type="button" onClick={() => update({ editing: message.id })} aria-label="Edit message">Edit</button>}
          {(mine || admin) && <button type="button" onClick={() => setConfirming(true)} aria-label="Delete message">Delete</button>}
        </div>
      )}
      {confirming && <ConfirmDelete message={message} onClose={() => setConfirming(false)} />}
    </article>
  );
}

// The last message of mine in a channel that can still be edited (the
// composer's Up key).
export function lastOwnMessage(channelId) {
  const c = state.messages[channelId];
  if (!c || !state.me) return null;
  for (let i = c.list.length - 1; i >= 0; i--) {
    const m = c.list[i];
    if (m.user_id === state.me.id && !m.pending && !m.failed && !m.is_deleted) return m;
  }
  return null;
}
