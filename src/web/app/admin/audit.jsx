// Audit log: GET /admin/audit-log, newest first, by pages, filtered by
// action (exact, or a prefix ending in a dot), actor (id or username),
// target and time; each entry's details as a readable list.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Facts, PagedTable, formatWhen, isoFromLocal, useLoad } from './common.jsx';

export const AUDIT_ACTIONS = [
  'auth.', 'auth.register', 'auth.login', 'auth.login_failed', 'auth.lockout', 'auth.login_refused',
  'auth.password_change', 'mfa.', 'api_key.', 'user.', 'user.create', 'user.ban', 'user.unban',
  'user.mute', 'user.unmute', 'user.roles', 'user.delete', 'report.resolve', 'settings.update',
  'invite.', 'ip.', 'system.snapshot', 'backup.', 'retention.sweep', 'message.delete',
  'channel.delete', 'file.delete', 'tls.',
];

const COLUMNS = [
  { key: 'time', label: 'When', render: (e) => formatWhen(e.timestamp) },
  { key: 'actor', label: 'Actor', render: (e) => (e.actor ? e.actor.username || e.actor.id : '—') },
  { key: 'action', label: 'Action', render: (e) => <code>{e.action}</code> },
  { key: 'target', label: 'Target', render: (e) => <span class="admin-break">{e.target || '—'}</span> },
  { key: 'ip', label: 'Address', render: (e) => e.ip || '—' },
  { key: 'details', label: 'Details', render: (e) => <Facts obj={e.details} class="admin-facts-compact" /> },
];

export function AuditTab() {
  const empty = { action: '', actor: '', target: '', from: '', to: '' };
  const [draft, setDraft] = useState(empty);
  const [filters, setFilters] = useState(empty);
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('GET', '/admin/audit-log', {
    query: { ...filters, from: isoFromLocal(filters.from), to: isoFromLocal(filters.to), page, limit: 50 },
  }), [filters, page]);
  const field = (name, label, props = {}) => (
    <label>
      {label}
      <input value={draft[name]} onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} {...props} />
    </label>
  );
  return (
    <div class="admin-audit">
      <form class="admin-filters" role="search" aria-label="Filter the audit log"
        onSubmit={(e) => { e.preventDefault(); setPage(1); setFilters({ ...draft, action: draft.action.trim(), actor: draft.actor.trim(), target: draft.target.trim() }); }}>
        {field('action', 'Action', { list: 'admin-audit-actions', placeholder: 'user. or user.ban' })}
        <datalist id="admin-audit-actions">{AUDIT_ACTIONS.map((a) => <option key={a} value={a} />)}</datalist>
        {field('actor', 'Actor', { placeholder: 'username or id' })}
        {field('target', 'Target')}
        {field('from', 'From', { type: 'datetime-local' })}
        {field('to', 'To', { type: 'datetime-local' })}
        <button type="submit">Filter</button>
        <button type="button" onClick={() => { setDraft(empty); setFilters(empty); setPage(1); }}>Clear</button>
      </form>
      <PagedTable list={list} rowsKey="entries" onPage={setPage} label="Pages of the audit log"
        caption="Audit log entries" columns={COLUMNS} rowKey={(e) => e.id} empty="No entry matches." />
    </div>
  );
}
