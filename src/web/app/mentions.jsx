// @mention autocomplete for the composer: suggests users as the word before
// the caret starts with @, and tells the composer which one was picked.
// To be built (issue 18); the signature is the contract.

// text: the composer's text; caret: the caret's offset in it; channelId: the
// channel (members first); onPick(user, start, end): replace text[start, end)
// with "@username ". Renders nothing when there is nothing to suggest.
export function MentionSuggest({ text, caret, channelId, onPick }) {
  return null;
}
