// The dashboard: the figures of GET /admin/stats as cards, charts of
// GET /admin/stats/timeseries (uPlot, following the theme and the window's
// width), and GET /admin/system/status refreshed every 30 s while shown.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api } from '../api.js';
import { ErrorText, Facts, bytes, formatDuration, formatNumber, formatWhen, useLoad } from './common.jsx';

export const STATUS_REFRESH_MS = 30000;

export const METRICS = [
  ['messages', 'Messages'],
  ['active_users', 'Active users'],
  ['signups', 'Signups'],
  ['uploads', 'Uploads'],
  ['logins', 'Logins'],
];

// Ranges per bucket, in hours; each series stays well under 10,000 points.
const RANGES = {
  hour: [[24, 'Last 24 hours'], [48, 'Last 2 days'], [168, 'Last 7 days'], [720, 'Last 30 days']],
  day: [[168, 'Last 7 days'], [720, 'Last 30 days'], [2160, 'Last 90 days'], [8760, 'Last year']],
};

function StatCards({ stats }) {
  const cards = [
    ['Users', stats.users && stats.users.total, stats.users && `${formatNumber(stats.users.banned)} banned · ${formatNumber(stats.users.deactivated)} deactivated`],
    ['Active 24 h', stats.users && stats.users.active_24h, stats.users && `${formatNumber(stats.users.active_7d)} in 7 days`],
    ['Channels', stats.channels && stats.channels.total, stats.channels && `${formatNumber(stats.channels.public)} public · ${formatNumber(stats.channels.private)} private · ${formatNumber(stats.channels.direct)} direct`],
    ['Messages', stats.messages && stats.messages.total, 'ever posted'],
    ['Files', stats.files && stats.files.live, stats.files && `${bytes(stats.files.bytes)} · ${bytes(stats.files.dedup_saved_bytes)} saved`],
    ['Connections', stats.realtime && stats.realtime.websockets + stats.realtime.event_streams, stats.realtime && `${formatNumber(stats.realtime.websockets)} WebSockets · ${formatNumber(stats.realtime.event_streams)} streams`],
    ['Requests/s', stats.requests_per_second, 'last 60 s'],
    ['Log', stats.wal && bytes(stats.wal.bytes), stats.wal && `${formatNumber(stats.wal.segments)} segments · LSN ${formatNumber(stats.wal.last_lsn)}`],
    ['Uptime', formatDuration(stats.uptime_seconds), stats.snapshot && stats.snapshot.time ? `snapshot ${formatWhen(stats.snapshot.time)}` : 'no snapshot yet'],
  ];
  return (
    <dl class="admin-cards">
      {cards.map(([label, value, note]) => (
        <div class="admin-card" key={label} data-stat={label}>
          <dt>{label}</dt>
          <dd class="admin-card-value">{formatNumber(value)}</dd>
          {note && <dd class="admin-card-note">{note}</dd>}
        </div>
      ))}
    </dl>
  );
}

// The colours of the theme now, from app.css's custom properties.
function themeColors() {
  const cs = getComputedStyle(document.documentElement);
  const get = (name, dflt) => cs.getPropertyValue(name).trim() || dflt;
  return { fg: get('--fg-soft', '#555'), grid: get('--border', '#ddd'), line: get('--accent', '#2f5fd0') };
}

// One uPlot chart of a series; rebuilt when the theme changes, resized with
// its container.
export function SeriesChart({ title, points, bucket }) {
  const box = useRef(null);
  const [theme, setTheme] = useState(document.documentElement.dataset.theme || '');
  useEffect(() => {
    const mo = new MutationObserver(() => setTheme(document.documentElement.dataset.theme || ''));
    mo.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => mo.disconnect();
  }, []);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const c = themeColors();
    const xs = points.map((p) => Date.parse(p.t) / 1000);
    const ys = points.map((p) => p.value);
    const axis = { stroke: c.fg, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } };
    const width = () => Math.max(200, el.clientWidth);
    const chart = new uPlot({
      width: width(),
      height: 180,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [{ ...axis }, { ...axis, size: 44 }],
      series: [
        { label: bucket === 'day' ? 'day' : 'hour' },
        { label: title, stroke: c.line, width: 2, fill: /^#[0-9a-f]{6}$/i.test(c.line) ? c.line + '22' : undefined, points: { show: false } },
      ],
    }, [xs, ys], el);
    const onResize = () => chart.setSize({ width: width(), height: 180 });
    let ro = null;
    if (typeof ResizeObserver !== 'undefined') {
      ro = new ResizeObserver(onResize);
      ro.observe(el);
    }
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      if (ro) ro.disconnect();
      chart.destroy();
    };
  }, [points, theme, bucket, title]);
  const total = points.reduce((s, p) => s + p.value, 0);
  return (
    <figure class="admin-chart" data-metric={title}>
      <figcaption>{title} <span class="admin-muted">({formatNumber(total)} in all)</span></figcaption>
      <div class="admin-chart-plot" ref={box} role="img" aria-label={`${title} per ${bucket}`} />
    </figure>
  );
}

function Charts() {
  const [bucket, setBucket] = useState('hour');
  const [hours, setHours] = useState(24);
  const series = useLoad(() => {
    const to = new Date();
    const from = new Date(to.getTime() - hours * 3600 * 1000);
    return Promise.all(METRICS.map(([metric]) => api('GET', '/admin/stats/timeseries', {
      query: { metric, bucket, from: from.toISOString(), to: to.toISOString() },
    })));
  }, [bucket, hours]);
  const pickBucket = (b) => {
    setBucket(b);
    if (!RANGES[b].some(([h]) => h === hours)) setHours(b === 'day' ? 720 : 24);
  };
  return (
    <section class="admin-charts" aria-labelledby="admin-charts-title">
      <div class="admin-toolbar">
        <h3 id="admin-charts-title">Activity</h3>
        <fieldset class="admin-segmented">
          <legend class="visually-hidden">Bucket</legend>
          {[['hour', 'Per hour'], ['day', 'Per day']].map(([b, text]) => (
            <label key={b} class={bucket === b ? 'active' : ''}>
              <input type="radio" name="admin-bucket" value={b} checked={bucket === b} onChange={() => pickBucket(b)} />
              {text}
            </label>
          ))}
        </fieldset>
        <label class="admin-inline">
          Range
          <select value={String(hours)} onChange={(e) => setHours(Number(e.currentTarget.value))}>
            {RANGES[bucket].map(([h, text]) => <option key={h} value={String(h)}>{text}</option>)}
          </select>
        </label>
      </div>
      <ErrorText error={series.error} />
      {series.data && (
        <div class="admin-chart-grid">
          {series.data.map((s, i) => (
            <SeriesChart key={METRICS[i][0]} title={METRICS[i][1]} points={s.points || []} bucket={s.bucket || bucket} />
          ))}
        </div>
      )}
    </section>
  );
}

function SystemStatus() {
  const status = useLoad(() => api('GET', '/admin/system/status'), []);
  const { reload } = status;
  useEffect(() => {
    const timer = setInterval(reload, STATUS_REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const [checkedAt, setCheckedAt] = useState(null);
  useEffect(() => {
    if (status.data) setCheckedAt(new Date());
  }, [status.data]);
  const s = status.data;
  return (
    <section class="admin-status" aria-labelledby="admin-status-title">
      <div class="admin-toolbar">
        <h3 id="admin-status-title">System status</h3>
        <button type="button" onClick={reload} disabled={status.loading}>Refresh</button>
        {checkedAt && <span class="admin-muted" aria-live="polite">Checked at {checkedAt.toLocaleTimeString()}</span>}
      </div>
      <ErrorText error={status.error} />
      {s && (
        <>
          <dl class="admin-cards admin-cards-small">
            <div class="admin-card" data-status="health">
              <dt>Health</dt>
              <dd class={'admin-card-value ' + (s.status === 'degraded' ? 'error' : 'admin-ok')}>{s.status}</dd>
              <dd class="admin-card-note">log {s.log && s.log.state}{s.log && s.log.error ? ': ' + s.log.error : ''}</dd>
            </div>
            <div class="admin-card"><dt>Version</dt><dd class="admin-card-value">{s.version}</dd><dd class="admin-card-note">up {formatDuration(s.uptime_seconds)}</dd></div>
            <div class="admin-card"><dt>Disk available</dt><dd class="admin-card-value">{bytes(s.disk && s.disk.available_bytes)}</dd><dd class="admin-card-note">{s.disk && `${bytes(s.disk.used_bytes)} used of ${bytes(s.disk.total_bytes)}`}</dd></div>
            <div class="admin-card"><dt>Log</dt><dd class="admin-card-value">{bytes(s.wal && s.wal.bytes)}</dd><dd class="admin-card-note">{s.wal && `${formatNumber(s.wal.segments)} segments · fsync p99 ${formatNumber(s.wal.fsync && s.wal.fsync.p99_us)} µs`}</dd></div>
            <div class="admin-card"><dt>Connections</dt><dd class="admin-card-value">{s.connections && formatNumber(s.connections.websockets + s.connections.event_streams)}</dd><dd class="admin-card-note">{s.connections && `${formatNumber(s.connections.http_in_flight)} HTTP in flight`}</dd></div>
            <div class="admin-card"><dt>Memory</dt><dd class="admin-card-value">{bytes(s.process && s.process.rss_bytes)}</dd><dd class="admin-card-note">{s.process && `${formatNumber(s.process.open_fds)} open files`}</dd></div>
          </dl>
          <details class="admin-details">
            <summary>Every figure</summary>
            <Facts obj={s} />
          </details>
        </>
      )}
    </section>
  );
}

export function Dashboard() {
  const stats = useLoad(() => api('GET', '/admin/stats'), []);
  return (
    <div class="admin-dashboard">
      <ErrorText error={stats.error} />
      {stats.data && <StatCards stats={stats.data} />}
      <Charts />
      <SystemStatus />
    </div>
  );
}
