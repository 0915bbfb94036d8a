// Reactions under a message and the emoji picker that adds one.
// To be built (issue 18); the signature is the contract.

// message: the API's message object (message.reactions: [{emoji, count, users}]).
export function Reactions({ message }) {
  const list = message.reactions || [];
  if (!list.length) return null;
  return (
    <div class="reactions">
      {list.map((r) => <span class="reaction" key={r.emoji}>{r.emoji} {r.count}</span>)}
    </div>
  );
}
