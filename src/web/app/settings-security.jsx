// Settings, Security: change the password (PUT /auth/change-password) and
// two-factor authentication (POST /auth/mfa/setup shows the otpauth URI as a
// QR code and the secret as text; /mfa/enable and /mfa/disable take a code).
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { state, update, useStore } from './store.js';
import { QrCode } from './qr.jsx';
import { useNotice } from './settings.jsx';

function PasswordForm() {
  const me = useStore((s) => s.me) || {};
  const notice = useNotice();
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const current = String(f.get('current_password') || '');
    const next = String(f.get('new_password') || '');
    if (next !== String(f.get('confirm_password') || '')) {
      notice.fail(new Error('The new password and its repetition differ.'));
      return;
    }
    setBusy(true);
    notice.clear();
    try {
      await api('PUT', '/auth/change-password', {
        body: { current_password: current, new_password: next },
        noSessionEnd: true, // a wrong current password is a 401 that ends nothing
      });
      form.reset();
      notice.ok('Password changed. Your other logins and your API keys were ended.');
    } catch (err) {
      notice.fail(err.status === 401 ? new Error('The current password is not right.') : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="settings-card" onSubmit={submit} aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      {/* For password managers: the account the new password belongs to. */}
      <input type="text" name="username" autocomplete="username" value={me.username || ''} readOnly hidden />
      <label>Current password
        <input name="current_password" type="password" autocomplete="current-password" required />
      </label>
      <label>New password
        <input name="new_password" type="password" autocomplete="new-password" minLength={8} maxLength={128} required />
      </label>
      <label>Repeat the new password
        <input name="confirm_password" type="password" autocomplete="new-password" minLength={8} maxLength={128} required />
      </label>
      <div class="settings-actions"><button type="submit" disabled={busy}>Change password</button></div>
      {notice.view}
    </form>
  );
}

function CodeForm({ label, action, onCode, busy }) {
  const submit = (e) => {
    e.preventDefault();
    const code = String(new FormData(e.currentTarget).get('code') || '').replace(/\s+/g, '');
    onCode(code, e.currentTarget);
  };
  return (
    <form class="code-form" onSubmit={submit} aria-label={action}>
      <label>{label}
        <input name="code" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,8}" maxLength={8} required />
      </label>
      <button type="submit" disabled={busy}>{action}</button>
    </form>
  );
}

function TwoFactor() {
  const me = useStore((s) => s.me) || {};
  const notice = useNotice();
  const [setup, setSetup] = useState(null); // {secret, otpauth_url} while pending
  const [busy, setBusy] = useState(false);
  const run = async (fn) => {
    setBusy(true);
    notice.clear();
    try {
      await fn();
    } catch (err) {
      notice.fail(err.status === 401 || err.status === 422 ? new Error('That code is not right; try the current one.') : err);
    } finally {
      setBusy(false);
    }
  };
  const begin = () => run(async () => {
    setSetup(await api('POST', '/auth/mfa/setup', { body: {} }));
  });
  const enable = (code) => run(async () => {
    await api('POST', '/auth/mfa/enable', { body: { code }, noSessionEnd: true });
    setSetup(null);
    update({ me: { ...state.me, mfa_enabled: true } });
    notice.ok('Two-factor authentication is on: logins ask for a code from your app.');
  });
  const disable = (code) => run(async () => {
    await api('POST', '/auth/mfa/disable', { body: { code }, noSessionEnd: true });
    update({ me: { ...state.me, mfa_enabled: false } });
    notice.ok('Two-factor authentication is off.');
  });
  return (
    <section class="settings-card" aria-labelledby="mfa-title">
      <h2 id="mfa-title">Two-factor authentication</h2>
      {me.mfa_enabled ? (
        <>
          <p class="mfa-state">Two-factor authentication is <strong>on</strong>.</p>
          <CodeForm label="Code from your app" action="Turn off two-factor" onCode={disable} busy={busy} />
        </>
      ) : setup ? (
        <div class="mfa-setup">
          <p>Scan this code with an authenticator app, or type the secret into it, then enter the code it shows.</p>
          <QrCode text={setup.otpauth_url} label="QR code of the two-factor secret" size={200} />
          <p class="mfa-secret-line">Secret: <code class="mfa-secret">{setup.secret}</code></p>
          <CodeForm label="Code from your app" action="Turn on two-factor" onCode={enable} busy={busy} />
          <button type="button" onClick={() => setSetup(null)}>Cancel</button>
        </div>
      ) : (
        <>
          <p class="mfa-state">Two-factor authentication is <strong>off</strong>. With it, a login also needs a code from an app on your phone.</p>
          <div class="settings-actions"><button type="button" onClick={begin} disabled={busy}>Set up two-factor</button></div>
        </>
      )}
      {notice.view}
    </section>
  );
}

export function SecuritySettings() {
  return (
    <>
      <PasswordForm />
      <TwoFactor />
    </>
  );
}
