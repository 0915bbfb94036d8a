// Starting and ending the logged-in state: who is logged in, the live
// connection, and everything that belongs to that login.
import { update } from './store.js';
import { startLive, stopLive } from './live.js';

export function loggedIn(me) {
  update({ me });
  startLive();
}

export function loggedOut() {
  stopLive();
  update({ me: null, channels: {}, messages: {}, presence: {}, typing: {}, panel: null });
}

export function applyTheme(theme) {
  const dark = theme === 'dark' || (theme === 'system' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}
