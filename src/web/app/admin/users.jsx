// Users: GET /admin/users with its filters and pages; per account a dialog
// with its details (logins, sessions) and the actions: ban/unban,
// mute/unmute, roles, delete.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Modal } from '../ui.jsx';
import { toast } from '../store.js';
import { Choice, DataTable, DurationSelect, ErrorText, Pager, bytes, formatNumber, formatWhen, untilFrom, useAction, useEscape, useLoad } from './common.jsx';

export function userStatus(u) {
  const out = [];
  if (u.is_deleted) out.push(['deleted', 'Deleted']);
  else if (!u.is_active) out.push(['deactivated', 'Deactivated']);
  if (u.is_banned) out.push(['banned', u.banned_until ? 'Banned until ' + formatWhen(u.banned_until) : 'Banned']);
  if (u.is_muted) out.push(['muted', u.muted_until ? 'Muted until ' + formatWhen(u.muted_until) : 'Muted']);
  if (!out.length) out.push(['active', 'Active']);
  return out;
}

export function StatusBadges({ user }) {
  return (
    <span class="admin-badges">
      {userStatus(user).map(([kind, text]) => <span key={kind} class={'admin-badge admin-badge-' + kind}>{text}</span>)}
    </span>
  );
}

const COLUMNS = (onManage) => [
  {
    key: 'user', label: 'User', render: (u) => (
      <span class="admin-user">
        <strong>{u.display_name || u.username || 'Deleted user'}</strong>
        <span class="admin-muted">@{u.username || '—'}</span>
        {u.email && <span class="admin-muted">{u.email}</span>}
      </span>
    ),
  },
  { key: 'status', label: 'Status', render: (u) => <StatusBadges user={u} /> },
  { key: 'roles', label: 'Role', render: (u) => ((u.roles || []).includes('admin') ? 'Admin' : 'User') },
  { key: 'created', label: 'Created', render: (u) => formatWhen(u.created_at) },
  { key: 'seen', label: 'Last seen', render: (u) => formatWhen(u.last_login || u.last_seen) },
  {
    key: 'actions', label: 'Actions', render: (u) => (
      <button type="button" onClick={() => onManage(u.id)} aria-label={`Manage ${u.username || u.id}`}>Manage</button>
    ),
  },
];

export function UsersTab() {
  const [filters, setFilters] = useState({ search: '', status: '', role: '', sort: 'created_at', order: 'desc', include_inactive: false, page: 1 });
  const [text, setText] = useState('');
  const [managing, setManaging] = useState(null);
  const list = useLoad(() => api('GET', '/admin/users', {
    query: { ...filters, include_inactive: filters.include_inactive ? 'true' : undefined, limit: 25 },
  }), [filters]);
  const set = (patch) => setFilters((f) => ({ ...f, page: 1, ...patch }));
  const d = list.data;
  return (
    <div class="admin-users">
      <form class="admin-filters" role="search" aria-label="Find users" onSubmit={(e) => { e.preventDefault(); set({ search: text.trim() }); }}>
        <label class="admin-grow">
          Search
          <input type="search" value={text} onInput={(e) => setText(e.currentTarget.value)} placeholder="Username, name or email" maxLength={100} />
        </label>
        <Choice label="Status" value={filters.status} onChange={(status) => set({ status })}
          options={[['', 'All but deactivated'], ['active', 'Active'], ['banned', 'Banned'], ['deactivated', 'Deactivated']]} />
        <Choice label="Role" value={filters.role} onChange={(role) => set({ role })}
          options={[['', 'Any'], ['admin', 'Admin'], ['user', 'User']]} />
        <label>
          Sort by
          <select value={filters.sort + ':' + filters.order} onChange={(e) => { const [sort, order] = e.currentTarget.value.split(':'); set({ sort, order }); }}>
            <option value="created_at:desc">Newest</option>
            <option value="created_at:asc">Oldest</option>
            <option value="username:asc">Username</option>
            <option value="last_login:desc">Last login</option>
          </select>
        </label>
        <label class="admin-check">
          <input type="checkbox" checked={filters.include_inactive} onChange={(e) => set({ include_inactive: e.currentTarget.checked })} />
          Include deleted
        </label>
        <button type="submit">Search</button>
      </form>
      <ErrorText error={list.error} />
      {d && (
        <>
          <DataTable caption="Accounts" columns={COLUMNS(setManaging)} rows={d.users} rowKey={(u) => u.id} empty="No account matches." />
          <Pager page={d.page} pages={d.pages} total={d.total} onPage={(page) => setFilters((f) => ({ ...f, page }))} label="Pages of users" />
        </>
      )}
      {managing && <UserDialog id={managing} onClose={() => setManaging(null)} onChanged={list.reload} />}
    </div>
  );
}

// The reason and duration of a ban or a mute, and its button.
function Restrict({ verb, onDo, busy }) {
  const [reason, setReason] = useState('');
  const [duration, setDuration] = useState('');
  const submit = (e) => {
    e.preventDefault();
    const body = {};
    if (reason.trim()) body.reason = reason.trim();
    const until = untilFrom(duration);
    if (until) body.until = until;
    onDo(body);
  };
  return (
    <form class="admin-form" onSubmit={submit} aria-label={verb}>
      <label>
        {verb} reason
        <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={500} />
      </label>
      <DurationSelect label={`${verb} duration`} value={duration} onChange={setDuration} />
      <button type="submit" class="danger" disabled={busy}>{verb}</button>
    </form>
  );
}

function UserDialog({ id, onClose, onChanged }) {
  const user = useLoad(() => api('GET', '/admin/users/' + encodeURIComponent(id)), [id]);
  const [run, busy, error] = useAction();
  const [confirmDelete, setConfirmDelete] = useState('');
  const [deleting, setDeleting] = useState(false);
  useEscape(onClose);
  const u = user.data;
  const act = (method, path, body, done) => run(async () => {
    await api(method, '/admin/users/' + encodeURIComponent(id) + path, body ? { body } : {});
    toast(done);
    onChanged();
    if (method === 'DELETE') onClose();
    else await user.reload();
  });
  const isAdminUser = u && (u.roles || []).includes('admin');
  return (
    <Modal title={u ? `Manage ${u.username || 'deleted user'}` : 'Manage user'} onClose={onClose} wide>
      <ErrorText error={user.error} />
      {u && (
        <div class="admin-user-dialog">
          <div class="admin-user-summary">
            <StatusBadges user={u} />
            <dl class="admin-facts">
              <div><dt>Email</dt><dd>{u.email || '—'}</dd></div>
              <div><dt>Created</dt><dd>{formatWhen(u.created_at)}</dd></div>
              <div><dt>Last login</dt><dd>{formatWhen(u.last_login)}</dd></div>
              <div><dt>Logins</dt><dd>{formatNumber(u.login_count)}</dd></div>
              <div><dt>Messages</dt><dd>{formatNumber(u.message_count)}</dd></div>
              <div><dt>Storage</dt><dd>{bytes(u.storage_bytes)}</dd></div>
              {u.is_banned && <div><dt>Ban reason</dt><dd>{u.ban_reason || '—'}</dd></div>}
              {u.is_muted && <div><dt>Mute reason</dt><dd>{u.mute_reason || '—'}</dd></div>}
            </dl>
          </div>
          <ErrorText error={error} />
          {!u.is_deleted && (
            <div class="admin-actions-grid">
              {[['Ban', 'ban', u.is_banned, 'banned'], ['Mute', 'mute', u.is_muted, 'muted']].map(([verb, path, on, done]) => (
                <section aria-label={verb} key={path}>
                  <h3>{verb}</h3>
                  {on
                    ? <button type="button" disabled={busy} onClick={() => act('POST', '/un' + path, null, `${verb} lifted`)}>Un{path}</button>
                    : <Restrict verb={verb} busy={busy} onDo={(body) => act('POST', '/' + path, body, 'Account ' + done)} />}
                </section>
              ))}
              <section aria-label="Roles">
                <h3>Role</h3>
                <p>{isAdminUser ? 'Administrator' : 'User'}</p>
                <button type="button" disabled={busy}
                  onClick={() => act('PUT', '/roles', { roles: isAdminUser ? ['user'] : ['user', 'admin'] }, 'Roles changed')}>
                  {isAdminUser ? 'Remove the admin role' : 'Make admin'}
                </button>
              </section>
              <section aria-label="Delete">
                <h3>Delete</h3>
                {!deleting
                  ? <button type="button" class="danger" onClick={() => setDeleting(true)}>Delete account…</button>
                  : (
                    <form class="admin-form" aria-label="Confirm deletion" onSubmit={(e) => { e.preventDefault(); act('DELETE', '', null, 'Account deleted'); }}>
                      <p>The account is deactivated for good; its messages stay. Type <strong>{u.username}</strong> to confirm.</p>
                      <label>
                        Username to confirm
                        <input value={confirmDelete} onInput={(e) => setConfirmDelete(e.currentTarget.value)} autocomplete="off" />
                      </label>
                      <button type="submit" class="danger" disabled={busy || confirmDelete !== u.username}>Delete for good</button>
                    </form>
                  )}
              </section>
            </div>
          )}
          <section aria-label="Logins">
            <h3>Sessions ({(u.sessions || []).length})</h3>
            {(u.sessions || []).length
              ? (
                <ul class="admin-plain-list">
                  {u.sessions.map((s) => <li key={s.id}>{formatWhen(s.created_at)} — expires {formatWhen(s.expires_at)}</li>)}
                </ul>
              )
              : <p class="admin-muted">No live session.</p>}
            {(u.api_keys || []).length > 0 && (
              <>
                <h3>API keys</h3>
                <ul class="admin-plain-list">
                  {u.api_keys.map((k) => <li key={k.id}>{k.name} ({(k.permissions || []).join(', ')}) — created {formatWhen(k.created_at)}</li>)}
                </ul>
              </>
            )}
          </section>
        </div>
      )}
    </Modal>
  );
}
