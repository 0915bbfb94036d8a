// Settings: GET /admin/settings as a form by type (the bounds of
// docs/admin.md), PATCH with only what changed; a 422 is shown at the field
// it names (details.field, e.g. "rate_limits.auth"), and nothing changes.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { toast } from '../store.js';
import { ErrorText, bytes, formatWhen, useLoad } from './common.jsx';

// What docs/admin.md says of each setting; a setting the server adds later
// is shown by the type of its value.
const META = {
  server_name: { label: 'Server name', type: 'string', hint: '1-64 characters' },
  server_description: { label: 'Description', type: 'text', hint: 'at most 500 characters' },
  registration: { label: 'Registration', type: 'enum', options: ['open', 'invite', 'closed'], hint: 'who may register' },
  require_mfa_for_admins: { label: 'Require two-factor authentication for admins', type: 'boolean' },
  max_upload_bytes: { label: 'Largest upload (bytes)', type: 'number', min: 1, max: 2 ** 40, bytes: true },
  allowed_types: { label: 'Allowed upload types', type: 'list', hint: 'MIME globs, one a line (image/*, */*)' },
  message_retention_days: { label: 'Message retention (days)', type: 'number', min: 0, max: 36500, hint: '0 keeps messages for ever' },
  default_channel: { label: 'Default channel (id)', type: 'nullable', hint: 'a public channel every new account joins; empty for none' },
  rate_limits: { label: 'Rate limits (requests a minute, 0: none)', type: 'object', min: 0, max: 1000000 },
  trusted_proxies: { label: 'Trusted proxies', type: 'list', hint: 'addresses or CIDR ranges, one a line' },
  cors_origins: { label: 'CORS origins', type: 'list', hint: 'exact origins (https://chat.example.org), one a line' },
  audit_max_entries: { label: 'Audit log: entries kept', type: 'number', min: 1, max: 100000000 },
  audit_max_days: { label: 'Audit log: days kept', type: 'number', min: 0, max: 36500, hint: '0: no age bound' },
  storage_quota_bytes: { label: 'Storage quota per user (bytes)', type: 'number', min: 0, max: 2 ** 50, bytes: true, hint: '0: no quota' },
  upload_bytes_per_minute: { label: 'Upload budget per user (bytes a minute)', type: 'number', min: 0, max: 2 ** 40, bytes: true, hint: '0: no budget' },
  hsts_max_age_seconds: { label: 'HSTS max-age (seconds)', type: 'number', min: 0, max: 63072000, hint: 'sent only over TLS; 0: not sent' },
};
const READ_ONLY = new Set(['overridden', 'retention_sweep']);

function metaOf(name, value) {
  if (META[name]) return META[name];
  const type = typeof value === 'boolean' ? 'boolean' : typeof value === 'number' ? 'number'
    : Array.isArray(value) ? 'list' : value && typeof value === 'object' ? 'object' : 'string';
  return { label: name, type };
}

// The form's value of a setting (strings for inputs, booleans for boxes).
function toForm(meta, v) {
  switch (meta.type) {
    case 'boolean': return !!v;
    case 'number': return v == null ? '' : String(v);
    case 'list': return (v || []).join('\n');
    case 'nullable': return v == null ? '' : String(v);
    case 'object': return Object.fromEntries(Object.entries(v || {}).map(([k, x]) => [k, String(x)]));
    default: return v == null ? '' : String(v);
  }
}

// Back to the API's type. A number that does not parse is sent as typed,
// so the server's own 422 tells what is wrong.
function fromForm(meta, v) {
  const num = (s) => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);
  switch (meta.type) {
    case 'number': return num(v);
    case 'list': return v.split('\n').map((s) => s.trim()).filter(Boolean);
    case 'object': return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, num(x)]));
    default: return v;
  }
}

// {name: value} of what differs from the answer; objects by member.
export function changedSettings(data, form) {
  const patch = {};
  for (const name of Object.keys(form)) {
    const meta = metaOf(name, data[name]);
    const before = toForm(meta, data[name]);
    if (meta.type === 'object') {
      const sub = {};
      for (const k of Object.keys(form[name])) if (form[name][k] !== before[k]) sub[k] = fromForm({ type: 'number' }, form[name][k]);
      if (Object.keys(sub).length) patch[name] = sub;
    } else if (form[name] !== before) {
      patch[name] = fromForm(meta, form[name]);
    }
  }
  return patch;
}

function fieldId(name) {
  return 'admin-setting-' + name.replace(/[^a-z0-9_-]/gi, '-');
}

function Hint({ meta, value, id }) {
  const bounds = meta.type === 'number' && meta.min != null ? `${meta.min.toLocaleString('en-US')}–${meta.max.toLocaleString('en-US')}` : '';
  const size = meta.bytes && value !== '' && Number.isFinite(Number(value)) ? ` (${bytes(Number(value))})` : '';
  const text = [bounds, meta.hint].filter(Boolean).join('; ') + size;
  return text ? <span class="admin-hint" id={id}>{text}</span> : null;
}

function FieldError({ error, id }) {
  return error ? <span class="error admin-field-error" id={id} role="alert">{error.message}</span> : null;
}

function Field({ name, meta, value, onChange, error, overridden }) {
  const id = fieldId(name);
  const described = [id + '-hint', error ? id + '-error' : ''].filter(Boolean).join(' ');
  const common = { id, name, 'aria-describedby': described, 'aria-invalid': error ? 'true' : undefined };
  const badge = overridden ? <span class="admin-badge admin-badge-overridden" title="changed through the API">set here</span> : null;
  if (meta.type === 'boolean') {
    return (
      <div class="admin-setting admin-setting-bool" data-setting={name}>
        <label class="admin-check" for={id}>
          <input type="checkbox" {...common} checked={value} onChange={(e) => onChange(e.currentTarget.checked)} />
          {meta.label} {badge}
        </label>
        <FieldError error={error} id={id + '-error'} />
      </div>
    );
  }
  let input;
  if (meta.type === 'enum') {
    input = (
      <select {...common} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {meta.options.map((o) => <option key={o} value={o}>{o}</option>)}
      </select>
    );
  } else if (meta.type === 'text' || meta.type === 'list') {
    input = <textarea {...common} rows={meta.type === 'list' ? 3 : 2} value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
  } else if (meta.type === 'number') {
    input = <input {...common} type="number" inputMode="numeric" min={meta.min} max={meta.max} step="1" value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
  } else {
    input = <input {...common} value={value} onInput={(e) => onChange(e.currentTarget.value)} />;
  }
  return (
    <div class="admin-setting" data-setting={name}>
      <label for={id}>{meta.label} {badge}</label>
      {input}
      <Hint meta={meta} value={value} id={id + '-hint'} />
      <FieldError error={error} id={id + '-error'} />
    </div>
  );
}

function ObjectField({ name, meta, value, onChange, errorFor, overridden }) {
  return (
    <fieldset class="admin-setting admin-setting-object" data-setting={name}>
      <legend>{meta.label} {overridden ? <span class="admin-badge admin-badge-overridden">set here</span> : null}</legend>
      <div class="admin-setting-grid">
        {Object.keys(value).map((k) => (
          <Field key={k} name={name + '.' + k} meta={{ label: k, type: 'number', min: meta.min, max: meta.max }}
            value={value[k]} error={errorFor(name + '.' + k)} onChange={(v) => onChange({ ...value, [k]: v })} />
        ))}
      </div>
    </fieldset>
  );
}

export function AdminSettingsTab() {
  const settings = useLoad(() => api('GET', '/admin/settings'), []);
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const data = settings.data;
  useEffect(() => {
    if (!data) return;
    const f = {};
    for (const [k, v] of Object.entries(data)) if (!READ_ONLY.has(k)) f[k] = toForm(metaOf(k, v), v);
    setForm(f);
  }, [data]);
  if (!data || !form) return <ErrorText error={settings.error} />;
  const patch = changedSettings(data, form);
  const dirty = Object.keys(patch).length > 0;
  const errField = error && error.details && error.details.field;
  const errorFor = (name) => (errField === name ? error : null);
  const overridden = new Set(data.overridden || []);
  const submit = async (e) => {
    e.preventDefault();
    if (!dirty) return;
    setBusy(true);
    setError(null);
    try {
      await api('PATCH', '/admin/settings', { body: patch });
      toast('Settings saved');
      await settings.reload();
    } catch (err) {
      setError(err);
      const field = err.details && err.details.field;
      const el = field && document.getElementById(fieldId(field));
      if (el) el.focus();
    } finally {
      setBusy(false);
    }
  };
  const set = (name) => (v) => {
    setForm((f) => ({ ...f, [name]: v }));
  };
  const sweep = data.retention_sweep;
  return (
    <form class="admin-settings" onSubmit={submit} noValidate aria-label="Server settings">
      {Object.keys(form).map((name) => {
        const meta = metaOf(name, data[name]);
        return meta.type === 'object'
          ? <ObjectField key={name} name={name} meta={meta} value={form[name]} onChange={set(name)} errorFor={errorFor} overridden={overridden.has(name)} />
          : <Field key={name} name={name} meta={meta} value={form[name]} onChange={set(name)} error={errorFor(name)} overridden={overridden.has(name)} />;
      })}
      {error && (!errField || !(errField in form || errField.includes('.'))) && <ErrorText error={error} />}
      {sweep && <p class="admin-muted">Retention sweep: last run {formatWhen(sweep.last_run_at)}, {sweep.messages_deleted} messages deleted since the start.</p>}
      <div class="admin-sticky-actions">
        <button type="submit" disabled={!dirty || busy}>Save changes</button>
        <button type="button" disabled={!dirty || busy} onClick={() => { setError(null); settings.reload(); }}>Discard</button>
        {dirty && <span class="admin-muted">{Object.keys(patch).length} changed</span>}
      </div>
    </form>
  );
}
