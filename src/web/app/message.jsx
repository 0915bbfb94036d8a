// MessageItem: one message of a history (channel view, thread panel, search
// results): sender, time, content (formatted by building DOM nodes, never
// HTML strings), attachments, reactions, and the actions of its menu.
// To be built (issue 18); the signature is the contract.
import { displayName, formatTime } from './ui.jsx';
import { Attachments } from './files.jsx';
import { Reactions } from './reactions.jsx';

// message: the API's message object; grouped: a follow-up by the same sender
// (no name line); inThread: rendered in the thread panel (no reply count).
export function MessageItem({ message, grouped = false, inThread = false }) {
  return (
    <article class="message" data-message-id={message.id} aria-label={'Message from ' + displayName(message.sender)}>
      {!grouped && <header><strong>{displayName(message.sender)}</strong> <time dateTime={message.created_at}>{formatTime(message.created_at)}</time></header>}
      <p class="message-content">{message.content}</p>
      <Attachments files={message.attachments || []} />
      <Reactions message={message} />
    </article>
  );
}
