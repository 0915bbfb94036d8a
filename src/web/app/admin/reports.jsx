// Reports: the queue of GET /admin/reports (open ones first), each with the
// reported message as it was, its author and reporter, and the resolution
// (POST /admin/reports/{id}/resolve: dismiss, delete the message, ban or
// mute the author).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { toast } from '../store.js';
import { DurationSelect, ErrorText, Pager, formatWhen, untilFrom, useAction, useLoad } from './common.jsx';

const ACTIONS = [
  ['dismiss', 'Dismiss (nothing to do)'],
  ['delete_message', 'Delete the message'],
  ['ban_author', 'Ban the author'],
  ['mute_author', 'Mute the author'],
];

// Usernames of reporters, fetched once each.
const names = new Map();
function useUsername(id) {
  const res = useLoad(async () => {
    if (!id) return null;
    if (!names.has(id)) names.set(id, api('GET', '/admin/users/' + encodeURIComponent(id)).then((u) => u.username || 'deleted user', () => id));
    return names.get(id);
  }, [id]);
  return res.data || id;
}

function Resolve({ report, onDone }) {
  const [action, setAction] = useState('dismiss');
  const [reason, setReason] = useState('');
  const [duration, setDuration] = useState('');
  const [run, busy, error] = useAction();
  const restricts = action === 'ban_author' || action === 'mute_author';
  const submit = (e) => {
    e.preventDefault();
    const body = { action };
    if (restricts) {
      if (reason.trim()) body.reason = reason.trim();
      const until = untilFrom(duration);
      if (until) body.until = until;
    }
    run(async () => {
      await api('POST', `/admin/reports/${encodeURIComponent(report.id)}/resolve`, { body });
      toast('Report closed');
      onDone();
    });
  };
  return (
    <form class="admin-form admin-resolve" onSubmit={submit} aria-label={`Resolve report ${report.id}`}>
      <label>
        Action
        <select value={action} onChange={(e) => setAction(e.currentTarget.value)}>
          {ACTIONS.map(([v, t]) => <option key={v} value={v}>{t}</option>)}
        </select>
      </label>
      {restricts && (
        <>
          <label>
            Reason
            <input value={reason} onInput={(e) => setReason(e.currentTarget.value)} maxLength={500} />
          </label>
          <DurationSelect value={duration} onChange={setDuration} />
        </>
      )}
      <button type="submit" disabled={busy}>Resolve</button>
      <ErrorText error={error} />
    </form>
  );
}

function ReportCard({ report, onDone }) {
  const reporter = useUsername(report.reporter_id);
  const m = report.message || {};
  const author = m.author || {};
  return (
    <li class="admin-report" data-report={report.id} data-status={report.status}>
      <div class="admin-report-head">
        <span class={'admin-badge admin-badge-' + report.status}>{report.status}</span>
        <span>Reported by <strong>{reporter}</strong> · {formatWhen(report.created_at)}</span>
      </div>
      <p class="admin-report-reason"><span class="admin-muted">Reason: </span>{report.reason}</p>
      <blockquote class="admin-report-message">
        <p class="admin-muted">{author.username || 'deleted user'} · {formatWhen(m.created_at)} · <a href={'#/c/' + encodeURIComponent(report.channel_id) + '/m/' + encodeURIComponent(report.message_id)}>open</a></p>
        <p class="admin-report-content">{m.content}{m.content_truncated ? ' …' : ''}</p>
      </blockquote>
      {report.status === 'open'
        ? <Resolve report={report} onDone={onDone} />
        : <p class="admin-muted">{report.action || report.status} · {formatWhen(report.resolved_at)}</p>}
    </li>
  );
}

export function ReportsTab() {
  const [status, setStatus] = useState('open');
  const [page, setPage] = useState(1);
  const list = useLoad(() => api('GET', '/admin/reports', { query: { status: status || undefined, page, limit: 25 } }), [status, page]);
  const d = list.data;
  // Open first, then the others newest first (the API's order).
  const reports = d ? [...d.reports].sort((a, b) => (a.status === 'open' ? 0 : 1) - (b.status === 'open' ? 0 : 1)) : [];
  return (
    <div class="admin-reports">
      <div class="admin-filters">
        <label>
          Show
          <select value={status} onChange={(e) => { setStatus(e.currentTarget.value); setPage(1); }}>
            <option value="open">Open</option>
            <option value="resolved">Resolved</option>
            <option value="dismissed">Dismissed</option>
            <option value="">All</option>
          </select>
        </label>
      </div>
      <ErrorText error={list.error} />
      {d && (reports.length
        ? <ul class="admin-report-list">{reports.map((r) => <ReportCard key={r.id} report={r} onDone={list.reload} />)}</ul>
        : <p class="admin-empty">{status === 'open' ? 'No open report.' : 'No report.'}</p>)}
      {d && <Pager page={d.page} pages={d.pages} total={d.total} onPage={setPage} label="Pages of reports" />}
    </div>
  );
}
