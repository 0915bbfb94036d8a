// Invites: GET/POST/DELETE /admin/invites. Create with a number of uses and
// an expiry, copy the link, revoke.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { toast } from '../store.js';
import { ErrorText, PagedTable, formatWhen, isoFromLocal, useAction, useLoad } from './common.jsx';

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast('Link copied');
  } catch {
    toast('Copy the link from its field', 'error');
  }
}

export function InvitesTab() {
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('GET', '/admin/invites', { query: { page, limit: 50 } }), [page]);
  const [uses, setUses] = useState('');
  const [expires, setExpires] = useState('');
  const [made, setMade] = useState(null);
  const [run, busy, error] = useAction();
  const create = (e) => {
    e.preventDefault();
    const body = {};
    if (uses.trim()) body.max_uses = Number.isFinite(Number(uses)) ? Number(uses) : uses;
    if (expires) body.expires_at = isoFromLocal(expires);
    run(async () => {
      const inv = await api('POST', '/admin/invites', { body });
      setMade(inv);
      setUses('');
      setExpires('');
      list.reload();
    });
  };
  const revoke = (inv) => run(async () => {
    await api('DELETE', '/admin/invites/' + encodeURIComponent(inv.code));
    toast('Invite revoked');
    if (made && made.code === inv.code) setMade(null);
    list.reload();
  });
  const columns = [
    { key: 'code', label: 'Code', render: (i) => <code class="admin-code">{i.code.slice(0, 8)}…</code> },
    { key: 'uses', label: 'Uses', render: (i) => `${i.uses} of ${i.max_uses == null ? 'unlimited' : i.max_uses}` },
    { key: 'expires', label: 'Expires', render: (i) => (i.expires_at ? formatWhen(i.expires_at) : 'Never') },
    { key: 'created', label: 'Created', render: (i) => formatWhen(i.created_at) },
    {
      key: 'actions', label: 'Actions', render: (i) => (
        <span class="admin-row-actions">
          <button type="button" onClick={() => copy(i.url)} aria-label={`Copy link of invite ${i.code.slice(0, 8)}`}>Copy link</button>
          <button type="button" class="danger" disabled={busy} onClick={() => revoke(i)} aria-label={`Revoke invite ${i.code.slice(0, 8)}`}>Revoke</button>
        </span>
      ),
    },
  ];
  return (
    <div class="admin-invites">
      <form class="admin-form admin-inline-form" onSubmit={create} noValidate aria-label="Create an invite">
        <label>
          Uses (empty: unlimited)
          <input type="number" min="1" max="1000000" step="1" inputMode="numeric" value={uses} onInput={(e) => setUses(e.currentTarget.value)} />
        </label>
        <label>
          Expires (optional)
          <input type="datetime-local" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>Create invite</button>
      </form>
      <ErrorText error={error} />
      {made && (
        <div class="admin-made" role="status">
          <label>
            New invite link
            <input readOnly value={made.url} onFocus={(e) => e.currentTarget.select()} />
          </label>
          <button type="button" onClick={() => copy(made.url)}>Copy link</button>
        </div>
      )}
      <PagedTable list={list} rowsKey="invites" onPage={setPage} label="Pages of invites"
        caption="Invites" columns={columns} rowKey={(i) => i.code} empty="No invite." />
    </div>
  );
}
