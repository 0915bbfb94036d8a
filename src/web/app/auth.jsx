// Logging in and registering, with the session as an HttpOnly cookie
// ("session": true): the client never holds a token. A login of an account
// with two-factor on answers 401 MFA_REQUIRED with a temp_token; the code
// step sends it with the code to /auth/mfa/verify. Registration by
// invitation: the invite code field shows when the page's address carries
// one (#/register?invite=<code>, or ?invite= where the server serves the
// page with a query string) or the server says one is needed.
import { useState } from 'preact/hooks';
import { useSubmit } from './core-form.js';
import { api } from './api.js';
import { loggedIn } from './session.js';
import { update, useStore } from './store.js';
import './auth.css';

function inviteFromUrl() {
  const fromSearch = new URLSearchParams(location.search).get('invite');
  const qs = location.hash.split('?')[1];
  return fromSearch || (qs && new URLSearchParams(qs).get('invite')) || '';
}

async function finishLogin() {
  const me = await api('GET', '/users/me', { noSessionEnd: true });
  loggedIn(me);
}

function ErrorLine({ error }) {
  return error ? <p class="error" role="alert">{error}</p> : null;
}

function LoginForm({ onMfa }) {
  const { error, busy, submit } = useSubmit(async (form) => {
    try {
      await api('POST', '/auth/login', {
        body: { username_or_email: form.get('username'), password: form.get('password'), session: true },
        noSessionEnd: true,
      });
    } catch (err) {
      if (err.code === 'MFA_REQUIRED' && err.details.temp_token) {
        onMfa(err.details.temp_token);
        return;
      }
      throw err;
    }
    await finishLogin();
  });
  return (
    <form onSubmit={submit} aria-label="Log in">
      <label>Username <input name="username" autocomplete="username" required autofocus /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
      <ErrorLine error={error} />
      <button type="submit" disabled={busy}>Log in</button>
    </form>
  );
}

function MfaForm({ tempToken, onCancel }) {
  const { error, busy, submit } = useSubmit(async (form) => {
    await api('POST', '/auth/mfa/verify', {
      body: { temp_token: tempToken, mfa_code: String(form.get('code')).replace(/\s+/g, ''), session: true },
      noSessionEnd: true,
    });
    await finishLogin();
  });
  return (
    <form onSubmit={submit} aria-label="Two-factor code">
      <p>Enter the 6-digit code from your authenticator app.</p>
      <label>Code
        <input name="code" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,8}" maxLength={8} required autofocus />
      </label>
      <ErrorLine error={error} />
      <button type="submit" disabled={busy}>Verify</button>
      <button type="button" class="link-button" onClick={onCancel}>Back to log in</button>
    </form>
  );
}

function RegisterForm() {
  const initialInvite = inviteFromUrl();
  const [needInvite, setNeedInvite] = useState(!!initialInvite);
  const { error, busy, submit } = useSubmit(async (form) => {
    const body = {
      username: form.get('username'),
      email: form.get('email'),
      password: form.get('password'),
      session: true,
    };
    const invite = form.get('invite_code');
    if (invite) body.invite_code = String(invite).trim();
    try {
      await api('POST', '/auth/register', { body, noSessionEnd: true });
    } catch (err) {
      if ((err.details && err.details.field === 'invite_code') || err.code === 'INVITE_INVALID') setNeedInvite(true);
      throw err;
    }
    await finishLogin();
  });
  return (
    <form onSubmit={submit} aria-label="Create an account">
      <label>Username <input name="username" autocomplete="username" required minLength={3} maxLength={32} pattern="[A-Za-z0-9_.\-]+" /></label>
      <label>Email <input name="email" type="email" autocomplete="email" required /></label>
      <label>Password <input name="password" type="password" autocomplete="new-password" required minLength={8} maxLength={128} /></label>
      {needInvite && (
        <label>Invite code <input name="invite_code" autocomplete="off" required defaultValue={initialInvite} /></label>
      )}
      <ErrorLine error={error} />
      <button type="submit" disabled={busy}>Create account</button>
    </form>
  );
}

export function AuthView() {
  const notice = useStore((s) => s.authNotice);
  const [mode, setMode] = useState(inviteFromUrl() ? 'register' : 'login');
  const [tempToken, setTempToken] = useState('');
  const switchTo = (m) => {
    update({ authNotice: '' });
    setMode(m);
  };
  return (
    <main class="auth" id="main">
      <h1>Parley</h1>
      {notice && <p class="auth-notice" role="alert">{notice}</p>}
      {mode === 'login' && (
        <>
          <h2>Log in</h2>
          <LoginForm onMfa={(t) => { setTempToken(t); setMode('mfa'); }} />
          <p>No account yet? <button type="button" class="link-button" onClick={() => switchTo('register')}>Create one</button></p>
        </>
      )}
      {mode === 'mfa' && (
        <>
          <h2>Two-factor authentication</h2>
          <MfaForm tempToken={tempToken} onCancel={() => setMode('login')} />
        </>
      )}
      {mode === 'register' && (
        <>
          <h2>Create an account</h2>
          <RegisterForm />
          <p>Have an account? <button type="button" class="link-button" onClick={() => switchTo('login')}>Log in</button></p>
        </>
      )}
      <footer class="auth-footer"><a href="/docs">API documentation</a> · <a href="/redoc">Reference</a></footer>
    </main>
  );
}
