// Blocked addresses: GET/POST/DELETE /admin/blocked-ips. An address or a
// CIDR range, an optional reason and expiry; the API's refusals (host bits
// with their suggestion, blocking oneself) shown as it gives them.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { toast } from '../store.js';
import { ErrorText, PagedTable, formatWhen, isoFromLocal, useAction, useLoad } from './common.jsx';

export function BlockedTab() {
  const [status, setStatus] = useState('all');
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('GET', '/admin/blocked-ips', { query: { status, page, limit: 50 } }), [status, page]);
  const [ip, setIp] = useState('');
  const [reason, setReason] = useState('');
  const [expires, setExpires] = useState('');
  const [run, busy, error, clear] = useAction();
  const add = (e) => {
    e.preventDefault();
    const body = { ip: ip.trim() };
    if (reason.trim()) body.reason = reason.trim();
    if (expires) body.expires_at = isoFromLocal(expires);
    run(async () => {
      await api('POST', '/admin/blocked-ips', { body });
      toast('Blocked ' + body.ip);
      setIp('');
      setReason('');
      setExpires('');
      list.reload();
    });
  };
  const remove = (b) => run(async () => {
    await api('DELETE', '/admin/blocked-ips/' + encodeURIComponent(b.id));
    toast('Unblocked ' + b.ip);
    list.reload();
  });
  const suggestion = error && error.details && error.details.suggestion;
  const columns = [
    { key: 'ip', label: 'Address or range', render: (b) => <code>{b.ip}</code> },
    { key: 'reason', label: 'Reason', render: (b) => b.reason || '—' },
    { key: 'created', label: 'Blocked', render: (b) => formatWhen(b.created_at) },
    { key: 'expires', label: 'Expires', render: (b) => (b.expires_at ? formatWhen(b.expires_at) : 'Never') },
    { key: 'active', label: 'State', render: (b) => (b.is_active ? 'Active' : 'Expired') },
    { key: 'actions', label: 'Actions', render: (b) => <button type="button" disabled={busy} onClick={() => remove(b)} aria-label={`Unblock ${b.ip}`}>Unblock</button> },
  ];
  return (
    <div class="admin-blocked">
      <form class="admin-form admin-inline-form" onSubmit={add} aria-label="Block an address">
        <label>
          Address or range
          <input value={ip} onInput={(e) => { setIp(e.currentTarget.value); clear(); }} placeholder="203.0.113.7 or 10.0.0.0/8" required aria-invalid={error && error.details && error.details.field === 'ip' ? 'true' : undefined} />
        </label>
        <label>
          Reason
          <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={500} />
        </label>
        <label>
          Expires (optional)
          <input type="datetime-local" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy}>Block</button>
      </form>
      <ErrorText error={error} />
      {suggestion && <p><button type="button" onClick={() => { setIp(suggestion); clear(); }}>Use {suggestion}</button></p>}
      <div class="admin-filters">
        <label>
          Show
          <select value={status} onChange={(e) => { setStatus(e.currentTarget.value); setPage(1); }}>
            <option value="all">All blocks</option>
            <option value="active">Active only</option>
          </select>
        </label>
      </div>
      <PagedTable list={list} rowsKey="blocked_ips" onPage={setPage} label="Pages of blocks"
        caption="Blocked addresses" columns={columns} rowKey={(b) => b.id} empty="No address is blocked." />
    </div>
  );
}
