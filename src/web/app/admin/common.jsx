// The admin view's shared pieces: loading an answer, showing the API's
// error, the responsive table (a list at phone width), paging, durations
// and times. Everything is rendered as text.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

// useLoad(() => api(...), [deps]) -> {data, error, loading, reload}.
// An answer that arrives after a newer request (or after unmount) is dropped.
export function useLoad(fn, deps) {
  const [res, setRes] = useState({ data: null, error: null, loading: true });
  const gen = useRef(0);
  const reload = useCallback(() => {
    const mine = ++gen.current;
    setRes((r) => ({ ...r, loading: true }));
    return Promise.resolve()
      .then(fn)
      .then(
        (data) => mine === gen.current && setRes({ data, error: null, loading: false }),
        (error) => mine === gen.current && setRes((r) => ({ data: r.data, error, loading: false })),
      );
  }, deps);
  useEffect(() => {
    reload();
    return () => {
      gen.current++;
    };
  }, [reload]);
  return { ...res, reload };
}

// The API's error as the user should read it: its message, and the field
// it names when there is one.
export function ErrorText({ error, id }) {
  if (!error) return null;
  const field = error.details && error.details.field;
  return (
    <p class="error admin-error" role="alert" id={id}>
      {error.message}
      {field ? ` (${field})` : ''}
    </p>
  );
}

// Runs an action, keeping its pending state and error: [run, busy, error, clear].
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (err) {
      setError(err);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return [run, busy, error, () => setError(null)];
}

// A table whose rows become cards at phone width: each cell carries its
// column's name (data-label), shown before it by admin.css.
// columns: [{key, label, render(row)}]
export function DataTable({ columns, rows, rowKey, caption, empty }) {
  if (!rows || !rows.length) return <p class="admin-empty">{empty || 'Nothing here.'}</p>;
  return (
    <div class="admin-table-wrap">
      <table class="admin-table">
        {caption && <caption class="visually-hidden">{caption}</caption>}
        <thead>
          <tr>{columns.map((c) => <th scope="col" key={c.key}>{c.label}</th>)}</tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} data-row={rowKey(row)}>
              {columns.map((c) => (
                <td key={c.key} data-label={c.label}>{c.render ? c.render(row) : String(row[c.key] ?? '')}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// Previous / next over {page, pages}.
export function Pager({ page, pages, total, onPage, label }) {
  if (!pages || pages <= 1) return total != null ? <p class="admin-pager-info">{plural(total, 'entry', 'entries')}</p> : null;
  return (
    <nav class="admin-pager" aria-label={label || 'Pages'}>
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>Previous</button>
      <span>Page {page} of {pages}{total != null ? ` · ${plural(total, 'entry', 'entries')}` : ''}</span>
      <button type="button" disabled={page >= pages} onClick={() => onPage(page + 1)}>Next</button>
    </nav>
  );
}

export function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

export function formatNumber(n) {
  if (typeof n !== 'number') return n == null ? '—' : String(n);
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

export function formatWhen(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString([], { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

export function formatDuration(seconds) {
  if (seconds == null) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

export function bytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i ? v.toFixed(1) : String(v)) + ' ' + units[i];
}

// The durations a ban, a mute or a block may take; '' is "until lifted".
export const DURATIONS = [
  ['', 'Permanent (until lifted)'],
  ['3600', '1 hour'],
  ['86400', '1 day'],
  ['604800', '7 days'],
  ['2592000', '30 days'],
];

// The RFC 3339 end of a duration in seconds from now, or undefined.
export function untilFrom(seconds) {
  return seconds ? new Date(Date.now() + Number(seconds) * 1000).toISOString() : undefined;
}

// A <select> of DURATIONS with its label.
export function DurationSelect({ value, onChange, label = 'Duration', name }) {
  return (
    <label>
      {label}
      <select name={name} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {DURATIONS.map(([v, text]) => <option key={v} value={v}>{text}</option>)}
      </select>
    </label>
  );
}

// A datetime-local value (local time) as RFC 3339 UTC, or undefined when empty.
export function isoFromLocal(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toISOString();
}

// Facts of an object as a definition list (nested objects flattened a.b).
export function Facts({ obj, class: cls }) {
  const rows = [];
  const walk = (o, prefix) => {
    for (const [k, v] of Object.entries(o || {})) {
      const key = prefix ? prefix + '.' + k : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, key);
      else rows.push([key, Array.isArray(v) ? v.join(', ') : v === null ? 'null' : String(v)]);
    }
  };
  walk(obj, '');
  if (!rows.length) return <span class="admin-muted">—</span>;
  return (
    <dl class={'admin-facts ' + (cls || '')}>
      {rows.map(([k, v]) => (
        <div key={k}><dt>{k}</dt><dd>{v}</dd></div>
      ))}
    </dl>
  );
}

// Esc anywhere closes what an admin dialog opened, also when the focus left
// it (a button disabled while its action runs drops the focus to the body).
// The Modal's own handler stops the key first when the focus is inside.
export function useEscape(fn) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    const onKey = (e) => {
      if (e.key === 'Escape') ref.current();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);
}

// A paged answer ({<key>: [...], page, pages, total}) of useLoad as a
// DataTable with its Pager, and the load's error.
export function PagedTable({ list, rowsKey, onPage, label, ...table }) {
  const d = list.data;
  return (
    <>
      <ErrorText error={list.error} />
      {d && <DataTable {...table} rows={d[rowsKey]} />}
      {d && <Pager page={d.page} pages={d.pages} total={d.total} onPage={onPage} label={label} />}
    </>
  );
}

// A labelled <select> of [value, text] options.
export function Choice({ label, value, onChange, options }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {options.map(([v, text]) => <option key={v} value={v}>{text}</option>)}
      </select>
    </label>
  );
}
