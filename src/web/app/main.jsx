// The web client's entry: finds out whether the session cookie still names a
// login (GET /users/me), then shows the login page or the chat, and starts
// the router and the live connection. Each part of the interface is its own
// module (see src/web/README.md for which file holds what).
import { render } from 'preact';
import { useEffect } from 'preact/hooks';
import { api, csrfToken, onSessionEnd } from './api.js';
import { state, update, useStore } from './store.js';
import { startRouter } from './router.js';
import { applyTheme, loggedIn, loggedOut } from './session.js';
import { AuthView } from './auth.jsx';
import { Shell } from './shell.jsx';
import './app.css';

function App() {
  const me = useStore((s) => s.me);
  const ready = useStore((s) => s.ready);
  useEffect(() => {
    onSessionEnd((err) => {
      if (state.me) loggedOut(err && err.code !== 'AUTHENTICATION_REQUIRED' ? err.message : 'Your session has ended. Please log in again.');
    });
    // No CSRF cookie: no session cookie either (they are set and cleared
    // together), so there is nothing to ask the server.
    if (!csrfToken()) {
      update({ ready: true });
      return;
    }
    api('GET', '/users/me', { noSessionEnd: true })
      .then((user) => loggedIn(user))
      .catch((err) => {
        // A ban or a blocked address: say so on the login page.
        if (err.code === 'ACCOUNT_BANNED' || err.code === 'IP_BLOCKED') update({ authNotice: err.message });
      })
      .finally(() => update({ ready: true }));
  }, []);
  if (!ready) return <div class="splash" role="status">Loading…</div>;
  return me ? <Shell /> : <AuthView />;
}

applyTheme(localStorage.getItem('parley.theme') || 'system');
startRouter();
render(<App />, document.getElementById('app'));
