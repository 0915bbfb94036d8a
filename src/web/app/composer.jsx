// The composer: a labelled multi-line textarea (Enter sends, Shift+Enter is a
// newline, Up in an empty composer edits my last message), attachments by
// the button, by paste and by drag-and-drop onto the channel view (each an
// UploadChip with its progress, sent as `attachments` once uploaded),
// @mention suggestions (mentions.jsx) and typing notes (presence.jsx).
//   <Composer channelId label addFilesRef beforeSend />: addFilesRef.current
//   is set to addFiles(FileList|File[]) for the channel view's drop zone;
//   beforeSend() runs before a send (the view jumps back to the present).
import { useEffect, useRef, useState } from 'preact/hooks';
import { state, update, toast } from './store.js';
import { startUpload } from './uploads.js';
import { UploadChip } from './files.jsx';
import { MentionSuggest } from './mentions.jsx';
import { TypingIndicator, noteTyping } from './presence.jsx';
import { sendMessage } from './history.js';
import { lastOwnMessage } from './message.jsx';
import './composer.css';

const drafts = new Map(); // channel id -> text not yet sent

export function Composer({ channelId, label, addFilesRef, beforeSend }) {
  const [text, setText] = useState(() => drafts.get(channelId) || '');
  const [uploads, setUploads] = useState([]); // [{localId, entry, abort}]
  const ref = useRef(null);
  const fileInput = useRef(null);

  useEffect(() => {
    setText(drafts.get(channelId) || '');
    setUploads([]);
  }, [channelId]);

  const addFiles = (files) => {
    for (const file of Array.from(files || [])) {
      const up = startUpload(file, (entry) => {
        setUploads((list) => list.map((u) => (u.localId === entry.localId ? { ...u, entry } : u)));
      });
      setUploads((list) => list.concat([{ localId: up.entry.localId, entry: { ...up.entry }, abort: up.abort }]));
    }
  };
  if (addFilesRef) addFilesRef.current = addFiles;

  const change = (value) => {
    setText(value);
    drafts.set(channelId, value);
    noteTyping(channelId, value.trim().length > 0);
  };

  const send = () => {
    const content = text.trim();
    if (uploads.some((u) => !u.entry.file && !u.entry.error)) {
      toast('Wait for the uploads to finish', 'info');
      return;
    }
    const files = uploads.filter((u) => u.entry.file).map((u) => u.entry.file);
    if (!content && !files.length) return;
    if (content.length > 4000) {
      toast('A message holds at most 4000 characters', 'error');
      return;
    }
    if (beforeSend) beforeSend();
    sendMessage(channelId, content, files);
    setText('');
    drafts.delete(channelId);
    setUploads([]);
    noteTyping(channelId, false);
  };

  const onKeyDown = (e) => {
    if (e.isComposing) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      send();
    } else if (e.key === 'ArrowUp' && !text) {
      const last = lastOwnMessage(channelId);
      if (last) {
        e.preventDefault();
        update({ editing: last.id });
      }
    } else if (e.key === 'Escape' && state.editing) {
      e.preventDefault();
      update({ editing: null });
    }
  };

  const onPaste = (e) => {
    const files = e.clipboardData && Array.from(e.clipboardData.files || []);
    if (files && files.length) {
      e.preventDefault();
      addFiles(files);
    }
  };

  const remove = (u) => {
    if (!u.entry.file && !u.entry.error && u.abort) u.abort();
    setUploads((list) => list.filter((x) => x.localId !== u.localId));
  };

  const inputId = 'composer-' + channelId;
  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); send(); }} aria-label="Send a message">
      {uploads.length > 0 && (
        <div class="composer-uploads" aria-label="Attachments">
          {uploads.map((u) => <UploadChip key={u.localId} upload={u.entry} onRemove={() => remove(u)} />)}
        </div>
      )}
      <div class="composer-row">
        <label class="icon-button composer-attach" title="Attach files">
          <span aria-hidden="true" class="composer-attach-icon">+</span>
          <span class="visually-hidden">Attach files</span>
          <input ref={fileInput} type="file" multiple class="visually-hidden"
            onChange={(e) => { addFiles(e.currentTarget.files); e.currentTarget.value = ''; }} />
        </label>
        <label class="visually-hidden" for={inputId}>{label || 'Message'}</label>
        <textarea id={inputId} ref={ref} class="composer-input" rows={Math.min(8, text.split('\n').length)}
          placeholder={label || 'Message'} value={text} autocomplete="off"
          onInput={(e) => change(e.currentTarget.value)} onKeyDown={onKeyDown} onPaste={onPaste} />
        <MentionSuggest textareaRef={ref} channelId={channelId} onPick={(value, caret) => {
          change(value);
          requestAnimationFrame(() => {
            const el = ref.current;
            if (el) {
              el.focus();
              el.setSelectionRange(caret, caret);
            }
          });
        }} />
        <button type="submit" class="composer-send" aria-label="Send">Send</button>
      </div>
      <TypingIndicator channelId={channelId} />
    </form>
  );
}
