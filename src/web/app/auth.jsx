// Logging in and registering, with the session as an HttpOnly cookie
// ("session": true): the client never holds a token.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { loggedIn } from './session.js';

export function AuthView() {
  const [error, setError] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    try {
      await api('POST', '/auth/login', {
        body: { username: form.get('username'), password: form.get('password'), session: true },
        noSessionEnd: true,
      });
      const me = await api('GET', '/users/me');
      loggedIn(me);
    } catch (err) {
      setError(err.message);
    }
  };
  return (
    <main class="auth">
      <h1>Parley</h1>
      <form onSubmit={submit} aria-label="Log in">
        <label>Username <input name="username" autocomplete="username" required /></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit">Log in</button>
      </form>
    </main>
  );
}
