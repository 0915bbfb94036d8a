// Settings, API keys: the list (GET /auth/api-keys, no secrets), a new key
// (POST /auth/api-keys {name, permissions, expires_at}: its secret is shown
// once, with a copy button) and revoking one (DELETE, after a confirmation).
import { useEffect, useState } from 'preact/hooks';
import { api, items } from './api.js';
import { Modal, formatDay } from './ui.jsx';
import { useNotice } from './settings.jsx';

const EXPIRY = [
  ['', 'Never'],
  ['7', 'In 7 days'],
  ['30', 'In 30 days'],
  ['90', 'In 90 days'],
  ['365', 'In a year'],
];

function expiresAt(days) {
  if (!days) return undefined;
  return new Date(Date.now() + Number(days) * 86400000).toISOString();
}

function NewKey({ created, onDone }) {
  const [copied, setCopied] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied('Copied.');
    } catch {
      setCopied('The browser did not allow copying: select the key and copy it.');
    }
  };
  return (
    <div class="api-key-secret" role="group" aria-labelledby="new-key-title">
      <h3 id="new-key-title">{'Key “' + created.name + '” created'}</h3>
      <p>Copy it now: it is shown only this once.</p>
      <div class="secret-row">
        <input class="secret-value" readOnly value={created.key} aria-label="The new API key" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy}>Copy</button>
      </div>
      {copied && <p class="hint" role="status">{copied}</p>}
      <button type="button" onClick={onDone}>Done</button>
    </div>
  );
}

export function ApiKeySettings() {
  const [keys, setKeys] = useState(null);
  const [created, setCreated] = useState(null);
  const [revoking, setRevoking] = useState(null);
  const [busy, setBusy] = useState(false);
  const notice = useNotice();
  const load = () => api('GET', '/auth/api-keys').then((p) => setKeys(items(p.api_keys ? p.api_keys : p)), (err) => {
    setKeys([]);
    notice.fail(err);
  });
  useEffect(() => {
    load();
  }, []);

  const create = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const permissions = ['read', 'write'].filter((p) => f.get('perm_' + p));
    if (!permissions.length) {
      notice.fail(new Error('Choose at least one permission.'));
      return;
    }
    setBusy(true);
    notice.clear();
    try {
      const body = { name: String(f.get('name') || '').trim(), permissions };
      const exp = expiresAt(String(f.get('expiry') || ''));
      if (exp) body.expires_at = exp;
      const key = await api('POST', '/auth/api-keys', { body });
      setCreated(key);
      form.reset();
      form.elements.expiry.value = '90';
      await load();
    } catch (err) {
      notice.fail(err);
    } finally {
      setBusy(false);
    }
  };

  const revoke = async () => {
    const key = revoking;
    setRevoking(null);
    notice.clear();
    try {
      await api('DELETE', '/auth/api-keys/' + encodeURIComponent(key.id));
      notice.ok('Key “' + key.name + '” revoked.');
      await load();
    } catch (err) {
      notice.fail(err);
    }
  };

  return (
    <>
      <section class="settings-card" aria-labelledby="keys-title">
        <h2 id="keys-title">API keys</h2>
        <p class="hint">A key lets a script or a bot use the API as you (header <code>X-API-Key</code>). It cannot change your password, two-factor or keys.</p>
        {created && <NewKey created={created} onDone={() => setCreated(null)} />}
        {keys === null ? <p role="status">Loading…</p> : keys.length === 0 ? <p class="hint">No keys yet.</p> : (
          <ul class="api-key-list" aria-label="Your API keys">
            {keys.map((k) => (
              <li key={k.id} class="api-key">
                <span class="api-key-name">{k.name}</span>
                <span class="api-key-meta">
                  {(k.permissions || []).join(' + ') || 'no permissions'}
                  {' · '}
                  {k.expires_at ? 'expires ' + formatDay(k.expires_at) : 'never expires'}
                  {k.created_at ? ' · made ' + formatDay(k.created_at) : ''}
                </span>
                <button type="button" onClick={() => setRevoking(k)} aria-label={'Revoke ' + k.name}>Revoke</button>
              </li>
            ))}
          </ul>
        )}
        {notice.view}
      </section>
      <form class="settings-card" onSubmit={create} aria-labelledby="new-key-form-title">
        <h2 id="new-key-form-title">New key</h2>
        <label>Name
          <input name="name" required maxLength={100} autocomplete="off" placeholder="e.g. deploy bot" />
        </label>
        <fieldset class="settings-choices">
          <legend>Permissions</legend>
          <label class="choice"><input type="checkbox" name="perm_read" value="1" defaultChecked /> Read</label>
          <label class="choice"><input type="checkbox" name="perm_write" value="1" /> Write</label>
        </fieldset>
        <label>Expires
          <select name="expiry">
            {EXPIRY.map(([v, l]) => <option key={v} value={v} selected={v === '90'}>{l}</option>)}
          </select>
        </label>
        <div class="settings-actions"><button type="submit" disabled={busy}>Create key</button></div>
      </form>
      {revoking && (
        <Modal title="Revoke the key?" onClose={() => setRevoking(null)}>
          <p>{'“' + revoking.name + '” stops working at once, for every program that uses it.'}</p>
          <div class="settings-actions">
            <button type="button" onClick={() => setRevoking(null)}>Keep it</button>
            <button type="button" class="danger" onClick={revoke}>Revoke key</button>
          </div>
        </Modal>
      )}
    </>
  );
}
