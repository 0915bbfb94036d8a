// @mention autocomplete for the composer: suggests users as the word before
// the caret starts with @, and tells the composer which one was picked.
// To be built (issue 18); the signature is the contract.

// textareaRef: the composer's textarea (a ref); MentionSuggest listens to its
// input, caret and keys itself: while its list is open it handles ArrowUp,
// ArrowDown, Enter, Tab and Escape in a capture-phase keydown listener
// (preventDefault + stopImmediatePropagation), so the composer does not send
// on that Enter. channelId: the channel (its members first). onPick(text,
// caret): the composer's new text (with "@username ") and caret position.
// Renders nothing when there is nothing to suggest.
export function MentionSuggest({ textareaRef, channelId, onPick }) {
  return null;
}
